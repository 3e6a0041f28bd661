#!/usr/bin/env bash
# Prepared in session 22 for the next calls (session 22's H200 calls: docs/perf-h200/2026-12-06-s22).
#   1: the down GEMM split along K (#12's Mixtral T = 128 / 512, 3% and 52% slower than HF grouped_mm in session 22):
#      prefill-bench in rounds, the planner's tile against the same tile split 2 / 3 / 4 ways (random routing; bf16 and
#      int4; Mixtral, DeepSeek-V3-e32, Qwen3, GPT-OSS at T = 128 / 512), then the GPU tests of the split-K cases and
#      of session 22's goldens (hf-blocks).
#   2: the layer at T = 128 / 512 beside HF grouped_mm after a split-K rule (as h200-s21.sh 8's first half).
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    SK="=sgmat-default"
    for t in m144n256k32v m128n192k64va; do SK="$SK,=sgmat-$t-xh,=sgmat-$t-sk2-xh,=sgmat-$t-sk3-xh,=sgmat-$t-sk4-xh"; done
    SK="$SK,=sgmat-m64n128k32v,=sgmat-m64n128k32v-sk2,=sgmat-m64n128k32v-sk3,=sgmat-m64n128k32v-sk4"
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB splitk-512 200 240 6 "$SK" "mixtral,deepseek-v3-e32,qwen3,gpt-oss" "128,512" bf16,int4
    GPU_TESTS 200 grouped-gemm-fast hf-blocks
    ;;
  2)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512
    ;;
esac
