#!/usr/bin/env bash
# On the GPU machine, the next session's first two calls (prepared in sessions 10 and 11, not yet run):
#   a: the vector-array probe (f32 result stores into vec4<u32> arrays, what the `oa` shapes need); the matrix-tile
#      tests with the real builtins (grouped-gemm-fast, sgmat-wide-staging, packed-staging: the word-at-a-time
#      packed staging, every code; its f16 subnormals need unpack2x16float to keep them); prefill-bench A/B of the
#      packed staging (sgmat-default = word at a time, sgmat-default-vdec = one value at a time) for int4 / fp8 / mxfp4
#      at T = 512 / 4096; the partial tiles' skipped row blocks against b32bd1a's build (bf16, Mixtral / GPT-OSS).
#   b: prefill-bench bf16: plan.ts's tile against the banded work order (sgmat-default-band*), the `oa` shapes and the
#      16-subgroup (512-thread) tiles;
#      then the bench's layer rows, bf16 and packed, with PyTorch's grouped_mm in the same call.
#   c: prefill-bench, every path, Mixtral and GPT-OSS at T = 128 / 512 (where the layer is slower than HF).
#   d: decode A/B of the combined down GEMV (session 12: WEBMOE_DOWN_COMBINE=fused vs separate, alternating, bench
#      rows at T = 1 / 16 and host-cost's WebGPU calls and host us per forward); decides
#      KERNEL_CROSSOVERS.combinedDownMaxTokens.gpu (0 until then), and gemv-bench --combined: the down GEMV + combine
#      against the combined GEMV per row-blocked kernel (which kernel the combined GEMV should take: it launches k
#      times fewer workgroups). Needs .gpu-kit/host-cost.mjs and .gpu-kit/gemv-bench.mjs:
#      node scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost.mjs (and the fixtures tarball of call a)
#      node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs
#   cp scripts/gpu/sgmat-*.mjs .gpu-kit/ && node scripts/gpu/build-gpu-tests.mjs && node scripts/gpu/build-one.mjs \
#     scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs && pnpm --filter @webmoe/bench bundle:gpu
#   git worktree add /tmp/wm-prev b32bd1a && cp scripts/gpu/prefill-bench.ts /tmp/wm-prev/scripts/gpu/ && \
#     WEBMOE_SRC_ROOT=/tmp/wm-prev node scripts/gpu/build-one.mjs /tmp/wm-prev/scripts/gpu/prefill-bench.ts \
#     .gpu-kit/prefill-bench-prev.mjs   (call a's A/B build: this script on b32bd1a's kernels)
#   run: bash scripts/gpu/h200-next.sh a   (then b, c)
# The tree and the kit travel together under 64 MiB: the kit is ~57 MiB with onnxruntime-node, which these calls do
# not need (move .gpu-kit/node_modules/{onnxruntime-node,onnxruntime-common,protobufjs,@protobufjs} aside for them).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-a}" in
  a)
    bash .gpu-kit/enter.sh node .gpu-kit/sgmat-vec-probe.mjs > "$OUT/vec-probe.txt" 2>&1; grep -v Warning "$OUT/vec-probe.txt" | tail -3
    mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout 240 bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs grouped-gemm-fast sgmat-wide-staging packed-staging moe-gemv-combine down-combine > "$OUT/gpu-tests.txt" 2>&1
    echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"; grep -E "not ok|passed|failed|rc=" "$OUT/gpu-tests.txt" | tail -8
    PB prefill-packed 150 190 10 "=sgmat-default,=sgmat-default-vdec" "mixtral,deepseek-v3-e32" "512,4096" int4,fp8,mxfp4
    # partial tiles skip their empty row blocks' multiplies (after b32bd1a): this build against b32bd1a's, bf16
    PB prefill-skip-now 60 90 10 "=sgmat-default" "mixtral,gpt-oss" "512,4096" bf16
    PBIN=prefill-bench-prev PB prefill-skip-prev 60 90 10 "=sgmat-default" "mixtral,gpt-oss" "512,4096" bf16
    ;;
  b)
    PB prefill-bf16 170 220 10 "=sgmat-default,sgmat-default-band,sgmat-m128n256k32va-xh,sgmat-m128n192k64va-xh,sgmat-m128n192k32va-xh,sgmat-m128n256k32v16-xh,sgmat-m128n128k32v16-xh" "mixtral,qwen3,gpt-oss,deepseek-v3-e32" "512,4096" bf16
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,deepseek-v2-lite --dtypes bf16,int4,fp8 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-packed.json" > "$OUT/bench-packed.txt" 2> "$OUT/bench-packed.err"
    echo "bench rc=$?" >> "$OUT/bench-packed.txt"; grep -E "^(model|mixtral|deepseek)|rc=" "$OUT/bench-packed.txt" | grep -v linear | cut -c1-200
    timeout 110 python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models mixtral-8x7b,deepseek-v2-lite --tokens 512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -8
    ;;
  c)
    # every path at the sizes where the layer is slower than HF (Mixtral T = 128 / 512, GPT-OSS T = 512): which tile,
    # split and band plan.ts should take there (the layer at T = 512: ~128 +- 11 rows per expert, partial tiles)
    PB prefill-small 300 380 10 - "mixtral,gpt-oss" "128,512" bf16
    ;;
  d)
    for dc in separate fused separate fused; do
      WEBMOE_DOWN_COMBINE=$dc timeout 140 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models qwen3-30b-a3b,deepseek-v2-lite,mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4 --tokens 1,16 --iters 20 --stack 8 --json "$OUT/decode-$dc-$RANDOM.json" >> "$OUT/decode-$dc.txt" 2>&1
      echo "bench $dc rc=$?" >> "$OUT/decode-$dc.txt"
    done
    grep -hE "^(model|qwen3|deepseek|mixtral|gpt)|rc=" "$OUT"/decode-*.txt | grep -v linear | cut -c1-200
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --combined --models qwen3,mixtral --formats bf16,int4,fp8 --tokens 1,16 --kernels rows1,rows2,rows4,rows2k2,rows2k4,rows4k2 > "$OUT/gemv-combined.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gemv-combined.txt"; sed -n '/== ranking/,/^{/p' "$OUT/gemv-combined.txt" | grep -E "end|rc=" | cut -c1-250; tail -1 "$OUT/gemv-combined.txt"
    mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    for dc in separate fused; do
      WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures WEBMOE_DOWN_COMBINE=$dc timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs qwen3_moe 3000 1 8 > "$OUT/host-cost-$dc.txt" 2>&1
      grep -E "calls per|us wall" "$OUT/host-cost-$dc.txt" | sed "s/{.*}//; s/^/$dc: /"
    done
    ;;
esac
# warm-up compiles only plan.ts's tiles since session 10 (sgmatTilesOf): any compile failure falls back loudly
grep -h "failed to compile" "$OUT"/*.err "$OUT"/*.txt 2>/dev/null | head -3
true
