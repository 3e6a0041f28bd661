#!/usr/bin/env bash
# On the GPU machine (session 9, last call): the bench's prefill rows with the shared scratch cache (hostUs and
# wallGpu against call 7's), then prefill-bench on the default tile and the 48x64 / 32x64 subgroup-block shapes.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
timeout "${BENCH_S:-110}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b --dtypes bf16 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; grep -E "^(model|mixtral|qwen3)|rc=" "$OUT/bench-prefill.txt" | grep -v "linear" | cut -c1-210
PREFILL_BENCH_MAX_S=${PB_S:-60} timeout $(( ${PB_S:-60} + 50 )) bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "sgmat-default,sgmat-m96n256k32,sgmat-m64n256k32" "mixtral,deepseek-v3-e32,qwen3" "512,4096" bf16 > "$OUT/prefill.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill.txt"; grep -E "bf16 T=[0-9]+:|WRONG|rc=|budget" "$OUT/prefill.txt" | cut -c1-600
true
