#!/usr/bin/env bash
# On the GPU machine, session 9's closing call: the GPU test bundle (fixtures from the kit), then the prefill rows of
# the bench (bf16, T = 128, 512, 4096) and PyTorch's grouped_mm blocks on the same shapes, in one call. Outputs under $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PARTS=tests TESTS_S=${TESTS_S:-230} bash scripts/gpu/h200-final.sh
M=${M:-mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite}
timeout "${BENCH_S:-190}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$M" --dtypes bf16 --tokens 128,512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; head -16 "$OUT/bench-prefill.txt"
timeout "${TORCH_S:-110}" python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models "$M" --tokens 128,512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -14
true
