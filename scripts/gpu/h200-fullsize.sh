#!/usr/bin/env bash
# On the GPU machine (one H200), from the repository root with the kit carried: the full-size MoE layers.
#   kit: bash ../shared/gpu/make-kit.sh .gpu-kit; pnpm --filter @webmoe/bench bundle:gpu;
#        node scripts/gpu/build-one.mjs scripts/gpu/fullsize-hf.ts .gpu-kit/fullsize-hf.mjs;
#        cp apps/bench/torch/torch_baseline.py .gpu-kit/
# One part per call (each within the 10-minute command limit), outputs under $OUT:
#   bash scripts/gpu/h200-fullsize.sh bench deepseek-v3        # bf16 + fp8, T = 1..4096 (~3-4 min)
#   bash scripts/gpu/h200-fullsize.sh bench kimi-k2            # bf16 + fp8 (~4-6 min)
#   bash scripts/gpu/h200-fullsize.sh bench llama4-maverick    # bf16 (~2-4 min)
#   bash scripts/gpu/h200-fullsize.sh torch                    # PyTorch's blocks of the three (~3-5 min)
#   bash scripts/gpu/h200-fullsize.sh hf                       # real-size DeepSeek-V3 fp8 checkpoint via MoE.fromHuggingFace (~1-3 min)
# The bench runs --stack 8 --iters 10 (the caller's-view chains of a 20-100 ms forward at T = 4096 would otherwise
# take minutes per row); extra arguments after the model go to the bench.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
part=${1:-}
shift || true
case "$part" in
  bench)
    m=${1:?model}
    shift
    name=${m//\//_}
    timeout "${BENCH_S:-580}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$m" --stack 8 --iters 10 --json "$OUT/bench-$name.json" "$@" > "$OUT/bench-$name.txt" 2> "$OUT/bench-$name.err"
    echo "bench rc=$?" >> "$OUT/bench-$name.txt"
    grep -E "GB on the GPU|FAILED" "$OUT/bench-$name.err" | head -20
    head -14 "$OUT/bench-$name.txt"
    ;;
  torch)
    timeout "${TORCH_S:-580}" python3 .gpu-kit/torch_baseline.py "$OUT/torch-fullsize.json" --models "${MODELS:-deepseek-v3,kimi-k2,llama4-maverick}" --stack 8 --stack-gib 60 ${TORCH_ARGS:-} > "$OUT/torch-fullsize.txt" 2>&1
    echo "torch rc=$?" >> "$OUT/torch-fullsize.txt"
    tail -25 "$OUT/torch-fullsize.txt"
    ;;
  hf)
    dir=${HF_DIR:-/tmp/dsv3-fp8-layer}
    timeout "${HF_S:-400}" bash .gpu-kit/enter.sh node .gpu-kit/fullsize-hf.mjs "$dir" ${HF_ARGS:-} > "$OUT/fullsize-hf.txt" 2>&1
    echo "fullsize-hf rc=$?" >> "$OUT/fullsize-hf.txt"
    cat "$OUT/fullsize-hf.txt" | grep -v Warning | tail -12
    ;;
  *)
    echo "usage: h200-fullsize.sh bench MODEL [bench args] | torch | hf" >&2
    exit 2
    ;;
esac
