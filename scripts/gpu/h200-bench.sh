#!/usr/bin/env bash
# On the GPU machine, from the repository root with the kit carried: the bench
# (every model, default dtypes + int4, onnxruntime's WebGPU QMoE beside it) and
# then PyTorch's baseline in the same call; outputs under $OUT.
#   kit: WITH_ORT=1 bash ../shared/gpu/make-kit.sh .gpu-kit; pnpm --filter @webmoe/bench bundle:gpu;
#        cp apps/bench/torch/torch_baseline.py .gpu-kit/
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
MODELS=${MODELS:-mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite,deepseek-v3/e32}
timeout "${BENCH_S:-380}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$MODELS" --peer onnxruntime --json "$OUT/bench.json" --html "$OUT/bench.html" "$@" > "$OUT/bench.txt" 2> "$OUT/bench.err"
echo "bench rc=$?" >> "$OUT/bench.txt"
timeout "${TORCH_S:-180}" python3 .gpu-kit/torch_baseline.py "$OUT/torch.json" ${TORCH_ARGS:-} > "$OUT/torch.txt" 2>&1
echo "torch rc=$?" >> "$OUT/torch.txt"
tail -3 "$OUT/bench.err"; tail -2 "$OUT/bench.txt"; tail -2 "$OUT/torch.txt"
