#!/usr/bin/env bash
# On the GPU machine, session 16's one call (its device budget left room for one; outputs under $OUT). Kit as in
# h200-s14.sh, rebuilt at a2fe0f8 (session 16: the GPU test bundle includes default-device.gpu.test.ts). In order of what decides most:
#   1. the whole GPU test bundle with the real builtins (row skipping, the shared slot of route_decode, routed + shared
#      stacks two chunks per GEMV dispatch, MoE.decodeShared on the deepseek_v3 / llama4 / deepseek_v3_fp8 goldens);
#   2. prefill-bench with the layer's uneven routing, bf16 Mixtral T = 512: plan.ts's tile against row skipping and the
#      banded order (decides FastGemmOptions.sgmatRowSkip's default);
#   3. full DeepSeek-V3 T = 1, bf16 and fp8 (#13: fp8 <= 0.6x bf16), MoE.decodeShared 'routed' then 'separate' while
#      time is left (decides KERNEL_CROSSOVERS.sharedExpertSlots.gpu).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
GPU_TESTS 250
PREFILL_BENCH_ROUTING=random PB prefill-rowskip 90 110 10 "=sgmat-default,=sgmat-rowskip,=sgmat-default-band2,=sgmat-rowskip-band2" "mixtral" "512" bf16
for ds in routed separate; do
  [ $SECONDS -gt 430 ] && break
  WEBMOE_DECODE_SHARED=$ds timeout $((575 - SECONDS)) bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 30 --stack 2 --json "$OUT/decode-full-$ds.json" > "$OUT/decode-full-$ds.txt" 2>&1
  echo "bench full $ds rc=$?" >> "$OUT/decode-full-$ds.txt"; grep -E "^(model|deepseek)|rc=" "$OUT/decode-full-$ds.txt" | grep -v linear | cut -c1-200 | sed "s/^/$ds /"
done
echo "elapsed ${SECONDS}s"
grep -h "failed to compile" "$OUT"/*.txt 2>/dev/null | head -3
true
