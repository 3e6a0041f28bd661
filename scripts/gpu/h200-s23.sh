#!/usr/bin/env bash
# Session 23's device calls (call 1-2: h200-s22.sh all / second, docs/perf-h200/2026-12-06-s23).
#   1: after session 23's planner change (16-bit weights on the 128 x 192 k64 tile from 8 rows per expert on 48 KiB
#      devices; the down GEMM split 3 ways at <= 32 rows per expert and < 512 tiles): the layer at T = 128 / 512 beside
#      HF grouped_mm in the same call, then the GPU tests of the matrix GEMMs, the hf-blocks goldens (now with
#      golden-large, T = 600: the prefill kernels) and the prefill goldens (~430 s).
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512
    GPU_TESTS 200 grouped-gemm-fast hf-blocks prefill-golden
    ;;
esac
