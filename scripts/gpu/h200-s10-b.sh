#!/usr/bin/env bash
# On the GPU machine (session 10, second call): packed prefill GEMMs on the 128 x 256 tile (prefill-bench, int4 / fp8
# beside bf16's planned tile), then the bench's bf16 prefill rows with the new planner and PyTorch's grouped_mm on the
# same shapes. Outputs under $OUT.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PREFILL_BENCH_MAX_S=150 timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs 10 "sgmat-default,sgmat-m128n256k32-xh,sgmat-m128n128k32-xh" "mixtral,deepseek-v3-e32,qwen3" "512,4096" bf16,int4,fp8 > "$OUT/prefill.txt" 2>&1
echo "prefill rc=$?" >> "$OUT/prefill.txt"; grep -E "T=[0-9]+:|rc=|budget" "$OUT/prefill.txt" | cut -c1-400
M=${M:-mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite}
timeout "${BENCH_S:-190}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$M" --dtypes bf16 --tokens 128,512,4096 --iters 10 --stack 2 --json "$OUT/bench-prefill.json" > "$OUT/bench-prefill.txt" 2> "$OUT/bench-prefill.err"
echo "bench rc=$?" >> "$OUT/bench-prefill.txt"; grep -E "^(model|mixtral|qwen3|gpt|deepseek)|rc=" "$OUT/bench-prefill.txt" | grep -v linear | cut -c1-200
timeout "${TORCH_S:-110}" python3 .gpu-kit/torch_baseline.py "$OUT/torch-prefill.json" --models "$M" --tokens 128,512,4096 --impls grouped_mm --iters 10 --stack 2 --stack-gib 60 > "$OUT/torch-prefill.txt" 2>&1
echo "torch rc=$?" >> "$OUT/torch-prefill.txt"; grep -E "grouped_mm|rc=" "$OUT/torch-prefill.txt" | tail -14
true
