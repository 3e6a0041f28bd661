#!/usr/bin/env bash
# On the GPU machine: the prefill GEMMs of two bundles in one call (.gpu-kit/prefill-bench-old.mjs vs
# .gpu-kit/prefill-bench.mjs), optionally after a subset of the GPU test bundle. Outputs under $OUT.
#   TESTS: file-name filters for gpu-tests.mjs (empty: no tests); PB_PATHS / PB_MODELS / PB_TS / PB_FORMATS: the new
#   bundle's prefill-bench filters; OLD_PATHS / OLD_FORMATS: the old bundle's (same models and Ts); PB_S / OLD_S: timeouts.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/smi.txt" 2>&1
if [ -n "${TESTS:-}" ]; then
  mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
  WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout "${TESTS_S:-200}" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs $TESTS > "$OUT/gpu-tests.txt" 2>&1
  echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"
  grep -E "FAIL|passed|failed|rc=" "$OUT/gpu-tests.txt" | tail -12
fi
M=${PB_MODELS:-mixtral,qwen3,gpt-oss,deepseek-v3-e32}
TS=${PB_TS:-512,4096}
PREFILL_BENCH_MAX_S=${PB_S:-240} timeout $(( ${PB_S:-240} + 60 )) bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "${PB_PATHS:-sgmat-default}" "$M" "$TS" "${PB_FORMATS:-bf16,f16}" > "$OUT/prefill-new.txt" 2>&1
echo "new rc=$?" >> "$OUT/prefill-new.txt"
if [ -f .gpu-kit/prefill-bench-old.mjs ]; then
  PREFILL_BENCH_MAX_S=${OLD_S:-120} timeout $(( ${OLD_S:-120} + 60 )) bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench-old.mjs 10 "${OLD_PATHS:-sgmat-default}" "$M" "$TS" "${OLD_FORMATS:-bf16}" > "$OUT/prefill-old.txt" 2>&1
  echo "old rc=$?" >> "$OUT/prefill-old.txt"
fi
if [ -n "${NOROBUST_MODELS:-}" ]; then
  # the new bundle again without Dawn's robustness transform (what the clamped workgroup indices cost)
  WEBMOE_DAWN_ENABLE=disable_robustness PREFILL_BENCH_MAX_S=${NR_S:-90} timeout $(( ${NR_S:-90} + 60 )) bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "${NOROBUST_PATHS:-sgmat-default}" "$NOROBUST_MODELS" "$TS" bf16 > "$OUT/prefill-norobust.txt" 2>&1
  echo "norobust rc=$?" >> "$OUT/prefill-norobust.txt"
fi
for f in prefill-new prefill-old prefill-norobust; do [ -f "$OUT/$f.txt" ] && { echo "== $f"; grep -vE "^\{|Warning" "$OUT/$f.txt" | grep -E "T=|rc=|budget" | grep -v "best " | tail -40; }; done
true
