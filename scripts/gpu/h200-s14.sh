#!/usr/bin/env bash
# On the GPU machine, the calls prepared in session 14 (no machine was lent then; outputs under $OUT). Kit as in
# h200-next.sh, rebuilt at the commit to measure:
#   node scripts/gpu/build-gpu-tests.mjs && pnpm --filter @webmoe/bench bundle:gpu && \
#   node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs && \
#   node scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost.mjs
# (the fixtures tarball of h200-next.sh a; onnxruntime moved out of the kit: the tree must stay under 64 MiB).
#   1: the whole GPU test bundle (with the real builtins: row skipping, the shared slot of route_decode, routed +
#      shared stacks two chunks per GEMV dispatch, MoE.decodeShared on the deepseek_v3 / llama4 / deepseek_v3_fp8
#      goldens); prefill-bench with the layer's uneven routing (PREFILL_BENCH_ROUTING=random), bf16, Mixtral and
#      GPT-OSS T = 512: plan.ts's tile against row skipping, the banded order, and both (decides FastGemmOptions
#      .sgmatRowSkip's default: session 11's version with duplicated loops cost 8-14% on full tiles).
#   2: decode A/B of MoE.decodeShared (WEBMOE_DECODE_SHARED=routed vs separate, alternating, two runs each; decides
#      KERNEL_CROSSOVERS.sharedExpertSlots.gpu, off until then):
#      DeepSeek-V3 stand-in (e32) bf16 / fp8 T = 1, 4 and 16, full DeepSeek-V3 bf16 / fp8 T = 1 (#13's fp8 <= 0.6x bf16,
#      now with fp8 shared experts as the checkpoint stores them); host-cost's dispatches and host us per forward.
#   L and 3: session 13's layer prefill rows (h200-s13.sh L, 3).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    GPU_TESTS 290
    PREFILL_BENCH_ROUTING=random PB prefill-rowskip 120 150 10 "=sgmat-default,=sgmat-rowskip,=sgmat-default-band2,=sgmat-rowskip-band2,=sgmat-rowskip-band4" "mixtral,gpt-oss" "512" bf16
    [ $SECONDS -lt 470 ] && PREFILL_BENCH_ROUTING=random PB prefill-rowskip-4096 60 80 10 "=sgmat-default,=sgmat-rowskip" "mixtral" "4096" bf16
    echo "elapsed ${SECONDS}s"
    ;;
  2)
    for ds in separate routed separate routed; do
      WEBMOE_DECODE_SHARED=$ds timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models deepseek-v3/e32 --dtypes bf16,fp8 --tokens 1,4,16 --iters 30 --stack 8 --json "$OUT/decode-e32-$ds-$RANDOM.json" >> "$OUT/decode-e32-$ds.txt" 2>&1
      echo "bench e32 $ds rc=$?" >> "$OUT/decode-e32-$ds.txt"
    done
    grep -hE "^(model|deepseek)|rc=" "$OUT"/decode-e32-*.txt | grep -v linear | cut -c1-200
    for ds in separate routed; do
      WEBMOE_DECODE_SHARED=$ds timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 30 --stack 2 --json "$OUT/decode-full-$ds.json" > "$OUT/decode-full-$ds.txt" 2>&1
      echo "bench full $ds rc=$?" >> "$OUT/decode-full-$ds.txt"; grep -E "^(model|deepseek)|rc=" "$OUT/decode-full-$ds.txt" | grep -v linear | cut -c1-200 | sed "s/^/$ds /"
    done
    mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
    for ds in separate routed; do
      WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures WEBMOE_DECODE_SHARED=$ds timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs deepseek_v3 3000 1 8 > "$OUT/host-cost-$ds.txt" 2>&1
      grep -E "calls per|kernels dispatched|us wall" "$OUT/host-cost-$ds.txt" | sed "s/{\"device.*}//; s/^/$ds: /" | cut -c1-300
    done
    echo "elapsed ${SECONDS}s"
    ;;
  L | 3)
    bash "$(dirname "$0")/h200-s13.sh" "$1"
    ;;
esac
grep -h "failed to compile" "$OUT"/*.txt 2>/dev/null | head -3
true
