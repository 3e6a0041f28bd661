#!/usr/bin/env bash
# Session 25's last device call (docs/perf-h200/2026-12-06-s25, README): the GPU test bundle at the session's code
# (the longrun heap check, the fp8 64-96-row band), then the GPT-OSS-20B layer at T = 512 in bf16 and fp8 (the band's
# tile) and Mixtral T = 256 first in its process (the bench's warm-up until steady). Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
GPU_TESTS 330
timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models gpt-oss-20b,mixtral-8x7b --dtypes bf16,fp8 --tokens 512 --iters 10 --stack 2 --json "$OUT/layer-512.json" > "$OUT/layer-512.txt" 2>&1
echo "bench rc=$?"; grep -E "^(gpt|mixtral)\S* +(bf16|fp8) " "$OUT/layer-512.txt" | cut -c1-100; grep -o '"note": "[^"]*"' "$OUT/layer-512.json"
