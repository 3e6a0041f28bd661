#!/usr/bin/env bash
# On the GPU machine, one call: (1) the compressed-tensors fixtures (scripts/fixtures/make-compressed-tensors.py,
# torch + transformers there), (2) GPU test files matching $TESTS (the bundle, fixtures from the kit), (3) decode
# rows of the bench (bf16, T = 1 and 16, every default model). Outputs under $OUT.
#   kit: node scripts/gpu/build-gpu-tests.mjs; pnpm --filter @webmoe/bench bundle:gpu; fixtures.tar.xz (h200-tests.sh)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/webmoe-fx
timeout "${GEN_S:-90}" python3 scripts/fixtures/make-compressed-tensors.py "$OUT/compressed-tensors" > "$OUT/ct-gen.txt" 2>&1
echo "ct-gen rc=$?" >> "$OUT/ct-gen.txt"
tail -3 "$OUT/ct-gen.txt"
tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
export WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true
timeout "${TESTS_S:-170}" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs ${TESTS:-} > "$OUT/gpu-tests.txt" 2>&1
echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"
grep -E "^FAILED|passed, .* failed|rc=" "$OUT/gpu-tests.txt" | head -30
timeout "${BENCH_S:-100}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models ${MODELS:-mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite,deepseek-v3/e32} --tokens 1,16 --dtypes ${DTYPES:-bf16} --stack 8 --iters 10 --json "$OUT/bench.json" > "$OUT/bench.txt" 2> "$OUT/bench.err"
echo "bench rc=$?" >> "$OUT/bench.txt"
head -14 "$OUT/bench.txt"
