#!/usr/bin/env bash
# Next device calls after session 28 (docs/perf-h200/2026-12-06-s28). Kit: bash scripts/gpu/build-kit.sh
#   1: the fp8 band to 511 rows per expert in the layer (session 28 measured the GEMMs only: Qwen3 T = 4096 3.63 ->
#      2.67 ms): bf16 and fp8 layers at T = 1024 / 2048 / 4096, Mixtral, Qwen3, GPT-OSS; the upload probe (writes of 4
#      MiB staged since f342ac7); the GPU tests of writeBufferStaged, forward(x, { out }) and the tile scan (session 28
#      timed writeBufferStaged on the H100 but never checked its bytes there) (~300 s).
#   2: int4 and MXFP4 (always word-staged) on the fp8 band's 128 x 256 tile against the planner's (144 x 256 from 64
#      rows per expert): GPT-OSS int4 / MXFP4 miss 1.3x at T = 512 (1.33-1.34x, session 28 call 3) (~150 s).
#   p: scripts/gpu/prefill-small-probe.ts (the narrow router linear and the vec4 combine against the old kernels).
#   4: the GPU test bundle and the bf16 layer beside HF at T = 512 / 4096 (session 29's second call); 5: the layer alone.
#   Several parts run in one call: "p 1".
#   3: the whole GPU test bundle (the fp8 band and word staging through the golden-large fixtures), 420 s.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
for part in ${1:-1}; do
case "$part" in
  1)
    UPLOAD_PROBE
    timeout 230 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b --dtypes bf16,fp8 --tokens 512,1024,2048,4096 --iters 8 --stack 2 --json "$OUT/layer-fp8-band.json" > "$OUT/layer-fp8-band.txt" 2>&1
    echo "bench rc=$?"; grep -hE "^(model|mixtral|qwen3|gpt)\S* +(dtype|bf16|fp8) " "$OUT/layer-fp8-band.txt" | cut -c1-150
    GPU_TESTS 120 upload-staging host-output tile-offsets
    ;;
  2)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB packed-band 150 190 5 "=sgmat-default,=sgmat-m128n256k32va-xh,=sgmat-m64n128k64-xh" gpt-oss,qwen3,mixtral 512,1024 int4g32,mxfp4
    ;;
  3)
    GPU_TESTS 420
    ;;
  4)
    # after call 1 (the narrow linear lost; GEMV routers past 32 tokens, half rows by registers from 2048 inputs): the
    # whole GPU test bundle, then the bf16 layer beside HF grouped_mm at T = 512 / 4096 (~450 s)
    GPU_TESTS 320
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 512,4096
    ;;
  5)
    # part 4's layer rows alone (device budget short of the bundle)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 512,4096
    ;;
  6)
    # the last of the budget: the bf16 layer at T = 512 (Mixtral, GPT-OSS, Qwen3) and HF grouped_mm for Mixtral and
    # GPT-OSS at T = 512 in the same call (~170 s)
    timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b,qwen3-30b-a3b --dtypes bf16 --tokens 512 --iters 10 --stack 2 --json "$OUT/layer-bf16.json" > "$OUT/layer-bf16.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-bf16.txt"; grep -hE "^(model|mixtral|qwen3|gpt)|rc=" "$OUT/layer-bf16.txt" | cut -c1-160
    timeout 70 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models mixtral-8x7b,gpt-oss-20b --tokens 512 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | cut -c1-200
    ;;
  p)
    # the router linear's kernels (gemv / narrow / tiled) and the combine (scalar / v4) at T = 128, 512, 4096 (~60 s)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/prefill-small-probe.mjs > "$OUT/prefill-small-probe.txt" 2>&1
    echo "probe rc=$?"; grep -E " T= " "$OUT/prefill-small-probe.txt"
    ;;
esac
done
