#!/usr/bin/env bash
# On the GPU machine: what Dawn's validation and robustness cost, one call. For each mode of $MODES (Dawn toggles
# for WEBMOE_DAWN_ENABLE; "-" = none): host-cost (host CPU per forward, per WebGPU method), bench decode rows with
# per-stage device times, and gemv-bench. Outputs under $OUT.
#   kit: node scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost.mjs; ... gemv-bench.ts ...;
#        pnpm --filter @webmoe/bench bundle:gpu; fixtures.tar.xz (h200-tests.sh)
set -u
FINAL=${OUT:-/tmp/out}
OUT=/tmp/toggles-out # packed into $FINAL/toggles.tgz at the end (one file back)
mkdir -p "$OUT" "$FINAL" /tmp/fx
[ -d /tmp/fx/fixtures ] || tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/fx
for mode in ${MODES:-- skip_validation skip_validation,disable_robustness}; do
  m=${mode//,/+}; t=$([ "$mode" = - ] && echo "" || echo "$mode")
  (cd .gpu-kit && WEBMOE_DAWN_ENABLE=$t WEBMOE_TIME_CALLS=1 WEBMOE_FIXTURES=/tmp/fx/fixtures timeout "${HOST_S:-60}" bash enter.sh node host-cost.mjs qwen3_moe ${HOST_N:-2000} 1 8) > "$OUT/host-$m.txt" 2>&1
  echo "== host $m"; grep -vE "^\s*$" "$OUT/host-$m.txt" | grep -E "calls,|us|ms" | cut -c1-220 | head -40
  if [ "${BENCH_S:-150}" != 0 ]; then
    WEBMOE_DAWN_ENABLE=$t timeout "${BENCH_S:-150}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models ${BENCH_MODELS:-qwen3-30b-a3b,mixtral-8x7b} --dtypes ${BENCH_DTYPES:-bf16,int4} --tokens ${BENCH_TOKENS:-1} --iters 20 --stack 48 --profile-stages --json "$OUT/bench-$m.json" > "$OUT/bench-$m.txt" 2> "$OUT/bench-$m.err"
    echo "== bench $m rc=$?"; head -12 "$OUT/bench-$m.txt"
  fi
  if [ "${GEMV_S:-60}" != 0 ]; then
    WEBMOE_DAWN_ENABLE=$t timeout "${GEMV_S:-60}" bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models ${GEMV_MODELS:-mixtral,qwen3} --formats ${GEMV_FORMATS:-bf16,int4,fp8} --tokens 1 --kernels rows2 > "$OUT/gemv-$m.txt" 2>&1
    echo "== gemv $m"; grep -E "of copy" "$OUT/gemv-$m.txt" | cut -c1-120
  fi
done
tar czf "$FINAL/toggles.tgz" -C "$OUT" .
true
