#!/usr/bin/env bash
# On the GPU machine, one call of the session's closing measurements, in parts chosen by $PARTS (space
# separated, run in order, each under its own timeout); outputs under $OUT.
#   tests      the GPU test bundle (fixtures from the kit)                                     TESTS_S
#   fullsize   bench rows of $FULL_MODELS (bf16 + fp8, T = $FULL_TOKENS), --stack 8            FULL_S
#   torchfull  PyTorch's blocks of $FULL_MODELS at $FULL_TOKENS                                 TORCHF_S
#   decode     bench decode rows of the default models beside onnxruntime (T = 1, 16)           DECODE_S
#   torchdec   PyTorch's blocks of the default models at T = 1, 16                              TORCHD_S
#   hf         a real-size DeepSeek-V3 fp8 checkpoint through MoE.fromHuggingFace              HF_S
#   kit: node scripts/gpu/build-gpu-tests.mjs; pnpm --filter @webmoe/bench bundle:gpu;
#        node scripts/gpu/build-one.mjs scripts/gpu/fullsize-hf.ts .gpu-kit/fullsize-hf.mjs; cp apps/bench/torch/torch_baseline.py .gpu-kit/
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
FULL_MODELS=${FULL_MODELS:-deepseek-v3}
FULL_TOKENS=${FULL_TOKENS:-1,16,128,512,4096}
DEFAULT_MODELS=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite,deepseek-v3/e32
for part in ${PARTS:-tests fullsize torchfull}; do
  case "$part" in
    tests)
      mkdir -p /tmp/webmoe-fx && tar xJf .gpu-kit/fixtures.tar.xz -C /tmp/webmoe-fx
      WEBMOE_FIXTURES=/tmp/webmoe-fx/fixtures CI=true timeout "${TESTS_S:-240}" bash .gpu-kit/enter.sh node .gpu-kit/gpu-tests.mjs ${TESTS:-} > "$OUT/gpu-tests.txt" 2>&1
      echo "gpu-tests rc=$?" >> "$OUT/gpu-tests.txt"
      grep -E "^FAILED|passed, .* failed|rc=" "$OUT/gpu-tests.txt" | head -30 ;;
    fullsize)
      timeout "${FULL_S:-240}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "$FULL_MODELS" --dtypes "${FULL_DTYPES:-bf16,fp8}" --tokens "$FULL_TOKENS" --stack 8 --iters 10 --json "$OUT/bench-full.json" > "$OUT/bench-full.txt" 2> "$OUT/bench-full.err"
      echo "bench rc=$?" >> "$OUT/bench-full.txt"
      grep -E "GB on the GPU|FAILED" "$OUT/bench-full.err" | head; head -16 "$OUT/bench-full.txt" ;;
    torchfull)
      timeout "${TORCHF_S:-120}" python3 .gpu-kit/torch_baseline.py "$OUT/torch-full.json" --models "$FULL_MODELS" --tokens "$FULL_TOKENS" --stack 8 --stack-gib 60 > "$OUT/torch-full.txt" 2>&1
      echo "torch rc=$?" >> "$OUT/torch-full.txt"; tail -14 "$OUT/torch-full.txt" ;;
    decode)
      timeout "${DECODE_S:-240}" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models "${DECODE_MODELS:-$DEFAULT_MODELS}" --dtypes "${DECODE_DTYPES:-bf16,int4}" --tokens 1,16 --peer onnxruntime --json "$OUT/bench-decode.json" > "$OUT/bench-decode.txt" 2> "$OUT/bench-decode.err"
      echo "bench rc=$?" >> "$OUT/bench-decode.txt"; grep FAILED "$OUT/bench-decode.err" | head; head -30 "$OUT/bench-decode.txt" ;;
    torchdec)
      timeout "${TORCHD_S:-150}" python3 .gpu-kit/torch_baseline.py "$OUT/torch-decode.json" --models "${DECODE_MODELS:-$DEFAULT_MODELS}" --tokens 1,16 > "$OUT/torch-decode.txt" 2>&1
      echo "torch rc=$?" >> "$OUT/torch-decode.txt"; tail -14 "$OUT/torch-decode.txt" ;;
    hf)
      timeout "${HF_S:-240}" bash .gpu-kit/enter.sh node .gpu-kit/fullsize-hf.mjs "${HF_DIR:-/tmp/dsv3-fp8-layer}" ${HF_ARGS:-} > "$OUT/fullsize-hf.txt" 2>&1
      echo "fullsize-hf rc=$?" >> "$OUT/fullsize-hf.txt"; grep -v Warning "$OUT/fullsize-hf.txt" | tail -12 ;;
  esac
done
true
