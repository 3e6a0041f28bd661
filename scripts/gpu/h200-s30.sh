#!/usr/bin/env bash
# Device calls of session 30 (docs/perf-h200/2026-12-06-s30). Kit: bash scripts/gpu/build-kit.sh
#   r: the router linear's kernels (gemv / tiled / skinny, linear.ts) for five routers at T = 1 .. 4096
#      (prefill-small-probe --linear-only, ~60 s)
#   2: int4 and MXFP4 on the fp8 band's 128 x 256 tile and the 64 x 128 k64 tile against the planner's (144 x 256 from
#      64 rows per expert): GPT-OSS int4 / MXFP4 miss 1.3x at T = 512 (session 28 call 3) (~150 s)
#   a: the bf16 layer with the router on the skinny kernel (bench.mjs) against the kit before (bench-old.mjs: GEMV /
#      tiles), T = 512 / 4096, and HF grouped_mm, one call. Session 30's planner kept GPUs off the skinny kernel; its kit
#      was built once as committed, then with a trial KERNEL_CROSSOVERS.linearSkinny.gpu ({ minTokens: 33, maxOutputs:
#      64, minWorkgroups: 512 }) by KEEP_OLD=1 bash scripts/gpu/build-kit.sh (bench-old.mjs the first build). Run in
#      session 31 call 1 (docs/perf-h200/2026-12-07-s31); the rule it led to is in plan.ts
#   s: r for four routers at T = 1-4096 and a for Mixtral and GPT-OSS without HF (the end of a session's budget)
#   4: the GPU test bundle and the bf16 layer beside HF at T = 512 / 4096 (~450 s); 5: the layer beside HF alone.
#   Several parts run in one call: "r 2".
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
for part in ${1:-r}; do
case "$part" in
  r)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/prefill-small-probe.mjs --linear-only --tokens 1,16,128,512,1024,4096 > "$OUT/router-linear-probe.txt" 2>&1
    echo "probe rc=$?"; grep -E " T= " "$OUT/router-linear-probe.txt"
    ;;
  2)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB packed-band 150 190 5 "=sgmat-default,=sgmat-m128n256k32va-xh,=sgmat-m64n128k64-xh" gpt-oss,qwen3,mixtral 512,1024 int4g32,mxfp4
    ;;
  a)
    for b in bench-old bench; do
      timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-$b.json" > "$OUT/layer-$b.txt" 2>&1
      echo "$b rc=$?" >> "$OUT/layer-$b.txt"; grep -hE "^(mixtral|qwen3|gpt|deepseek)\S* +bf16 |rc=" "$OUT/layer-$b.txt" | cut -c1-120
      grep -hE "T=[0-9]+: linear" "$OUT/layer-$b.txt" | cut -c1-110
    done
    timeout 100 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --tokens 512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | cut -c1-200
    ;;
  s)
    # the last of the budget: r for four routers and a for Mixtral and GPT-OSS without HF (~110 s)
    timeout 80 bash .gpu-kit/enter.sh node .gpu-kit/prefill-small-probe.mjs --linear-only --models mixtral-8x7b,gpt-oss-20b,deepseek-v2-lite,qwen3-30b-a3b --tokens 1,16,128,512,4096 > "$OUT/router-linear-probe.txt" 2>&1
    echo "probe rc=$?"; grep -E " T= " "$OUT/router-linear-probe.txt" | cut -c1-70
    for b in bench-old bench; do
      timeout 40 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes bf16 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-$b.json" > "$OUT/layer-$b.txt" 2>&1
      echo "$b rc=$?" >> "$OUT/layer-$b.txt"; grep -hE "^(mixtral|gpt)\S* +bf16 |rc=" "$OUT/layer-$b.txt" | cut -c1-100
      grep -hE "T=[0-9]+: linear" "$OUT/layer-$b.txt" | cut -c1-110
    done
    ;;
  4)
    GPU_TESTS 320
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 512,4096
    ;;
  5)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 512,4096
    ;;
esac
done
