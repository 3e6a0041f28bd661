#!/usr/bin/env bash
# On the GPU machine, session 13's calls (kit: see h200-next.sh; outputs under $OUT):
#   1: the whole GPU test bundle (the float32 fix of 44d25c7 with the real builtins); prefill-bench bf16 with random
#      routing (PREFILL_BENCH_ROUTING=random: uneven rows per expert, the layer's partial row tiles) at Mixtral / GPT-OSS
#      T = 512 over the tiles that fit ~128 rows per expert; prefill-bench `sgmat-dequant` (packed experts decoded to
#      f16 first, then the f16 GEMM) against the staging decode, int4 / fp8 / MXFP4 beside bf16, Mixtral and GPT-OSS
#      shapes, T = 512 / 4096.
#   2: decode A/B of the combined down GEMV (h200-next.sh d, four models, bf16 and int4, T = 1 and 16, two runs of each
#      path alternating); gemv-bench --combined (its kernel per row-blocked variant); host-cost's calls and host us.
#      Needs .gpu-kit/{bench,gemv-bench,host-cost}.mjs.
#   2p: the layer's prefill rows with the packed experts decoded to f16 first (WEBMOE_PREFILL_DEQUANT=on) and at
#      staging (off), Mixtral bf16 / int4 / fp8 / mxfp4 and GPT-OSS mxfp4, T = 512 / 4096, --stack 2; host-cost of a
#      prefill forward (T = 512) with a CPU profile. Needs .gpu-kit/host-cost.mjs.
#   L: the layer's prefill rows at this commit (plan.ts after call 1: the decoding pass for packed experts from 512 rows
#      per expert, the 128 x 256 tile for 16-bit weights from 64) beside PyTorch's grouped_mm in the same call: Mixtral
#      and GPT-OSS bf16 / int4 / fp8 / mxfp4, T = 512 / 4096; then the decoding pass's variants while time is left.
#      The variants' bundles come from worktrees (not committed):
#        git worktree add /tmp/wm-dqn HEAD && sed -i 's/recordDequantHalf(rec, c.w, j, n, buf, dq.wide);/recordDequantHalf(rec,
#          c.w, j, n, buf, false);/' /tmp/wm-dqn/packages/kernels-wgsl/src/kernels/grouped-gemm-fast.ts   (8 values a thread)
#        /tmp/wm-dq2: recordDequantGemm alternating two scratch buffers (bufs[(j / per) % 2]) instead of one
#        WEBMOE_SRC_ROOT=/tmp/wm-dqn node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench-dqn.mjs
#        (and -dq2 likewise)
#   3: the layer's prefill rows at this commit beside PyTorch's grouped_mm in the same call (bf16, four models,
#      T = 128 / 512 / 4096, --stack 2), then Mixtral int4 / fp8 at T = 512 / 4096.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    GPU_TESTS 270
    PB prefill-dequant 150 180 10 "=sgmat-default,=sgmat-dequant" "mixtral,gpt-oss" "512,4096" bf16,f16,int4,fp8,mxfp4
    PREFILL_BENCH_ROUTING=random PB prefill-uneven 60 80 10 "=sgmat-default,sgmat-m128n256k32v-xh,sgmat-m128n128k32v-xh,=sgmat-m64n128k32v,=sgmat-m64n256k32v,=sgmat-m32n256k32v" "mixtral,gpt-oss" "512" bf16
    ;;
  2)
    for dc in separate fused separate fused; do
      WEBMOE_DOWN_COMBINE=$dc timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b --dtypes bf16,int4 --tokens 1,16 --iters 30 --stack 8 --json "$OUT/decode-$dc-$RANDOM.json" >> "$OUT/decode-$dc.txt" 2>&1
      echo "bench $dc rc=$?" >> "$OUT/decode-$dc.txt"
      WEBMOE_DOWN_COMBINE=$dc timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b --dtypes bf16,int4 --tokens 1,16 --iters 30 --stack 2 --json "$OUT/decode-mx-$dc-$RANDOM.json" >> "$OUT/decode-$dc.txt" 2>&1
      echo "bench mixtral $dc rc=$?" >> "$OUT/decode-$dc.txt"
    done
    grep -hE "^(model|qwen3|deepseek|mixtral|gpt)|rc=" "$OUT"/decode-*.txt | grep -v linear | cut -c1-200
    timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --combined --models qwen3,mixtral --formats bf16,int4,fp8 --tokens 1 --kernels rows1,rows2,rows4,rows2k2,rows2k4 > "$OUT/gemv-combined.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gemv-combined.txt"; sed -n '/== ranking/,/^{/p' "$OUT/gemv-combined.txt" | grep -E "end|rc=" | cut -c1-250; tail -1 "$OUT/gemv-combined.txt" | cut -c1-300
    mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    for dc in separate fused; do
      WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures WEBMOE_DOWN_COMBINE=$dc timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs qwen3_moe 3000 1 8 > "$OUT/host-cost-$dc.txt" 2>&1
      grep -E "calls per|us wall" "$OUT/host-cost-$dc.txt" | sed "s/{.*}//; s/^/$dc: /"
    done
    ;;
  2p)
    for pd in off on; do
      WEBMOE_PREFILL_DEQUANT=$pd timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b --dtypes $([ $pd = off ] && echo bf16,)int4,fp8,mxfp4 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/prefill-dq-$pd.json" > "$OUT/prefill-dq-$pd.txt" 2> "$OUT/prefill-dq-$pd.err"
      echo "bench $pd rc=$?" >> "$OUT/prefill-dq-$pd.txt"; grep -E "^(model|mixtral|gpt)|rc=" "$OUT/prefill-dq-$pd.txt" | grep -v linear | cut -c1-200 | sed "s/^/$pd /"
    done
    # host cost of a prefill forward (T = 512, the qwen3_moe fixture): WebGPU calls, host us inside each, a CPU profile
    mkdir -p /tmp/webmoe-fx "$OUT/prof" && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures WEBMOE_TIME_CALLS=1 timeout 60 bash .gpu-kit/enter.sh node --cpu-prof --cpu-prof-dir="$OUT/prof" .gpu-kit/host-cost.mjs qwen3_moe 500 512 0 > "$OUT/host-cost-512.txt" 2>&1
    grep -E "calls per|inside|us wall" "$OUT/host-cost-512.txt" | cut -c1-400
    ;;
  L)
    M=mixtral-8x7b,gpt-oss-20b
    timeout 220 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$M" --dtypes bf16,int4,fp8,mxfp4 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
    echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; grep -E "^(model|mixtral|gpt)|rc=" "$OUT/bench-prefill.txt" | grep -v linear | cut -c1-200
    timeout 100 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models "$M" --tokens 512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -8
    # the decoding pass's variants (bundles of worktrees): 8 values per thread (coalesced 16-byte stores), two scratch
    # buffers alternating (a range's decoding need not wait for the previous range's GEMM); while time is left
    for b in prefill-bench prefill-bench-dqn prefill-bench-dq2; do
      [ $SECONDS -lt 420 ] && PBIN=$b PB dq-$b 40 60 10 "=sgmat-dequant" mixtral 4096 int4,mxfp4
    done
    echo "elapsed ${SECONDS}s"
    ;;
  3)
    M=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$M" --dtypes bf16 --tokens 128,512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
    echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; grep -E "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT/bench-prefill.txt" | grep -v linear | cut -c1-200
    timeout 120 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models "$M" --tokens 128,512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -14
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b --dtypes int4,fp8 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-packed.json" > "$OUT/bench-packed.txt" 2> "$OUT/bench-packed.err"
    echo "bench rc=$?" >> "$OUT/bench-packed.txt"; grep -E "^(model|mixtral)|rc=" "$OUT/bench-packed.txt" | grep -v linear | cut -c1-200
    ;;
esac
grep -h "failed to compile" "$OUT"/*.txt 2>/dev/null | head -3
true
