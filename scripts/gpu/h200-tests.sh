#!/usr/bin/env bash
# On the GPU machine, from the repository root with the kit carried: the GPU test
# bundle (every packages/*/test/*.gpu.test.ts, fixtures unpacked from the kit) and
# the prefill GEMM benchmark; outputs under $OUT.
#   kit: node scripts/gpu/build-gpu-tests.mjs; node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs;
#        (cd ../shared && tar cf - fixtures/hf-moe | xz > ../main/.gpu-kit/fixtures.tar.xz)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/webmoe-fx
tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
export WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
timeout "${TESTS_S:-330}" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs "$@" > "$OUT/gpu-tests.txt" 2>&1
echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"
grep -E "^FAILED|passed, .* failed" "$OUT/gpu-tests.txt" | head -40
[ "${PREFILL_S:-120}" = 0 ] || timeout "${PREFILL_S:-120}" bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 5 > "$OUT/prefill.txt" 2>&1
grep -E " T=" "$OUT/prefill.txt" | grep -v "^{" | cut -c1-160
