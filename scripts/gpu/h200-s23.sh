#!/usr/bin/env bash
# Session 23's device calls (call 1-2: h200-s22.sh all / second, docs/perf-h200/2026-12-06-s23).
#   1: after session 23's planner change (16-bit weights on the 128 x 192 k64 tile from 8 rows per expert on 48 KiB
#      devices; the down GEMM split 3 ways at <= 32 rows per expert and < 512 tiles): the layer at T = 128 / 512 beside
#      HF grouped_mm in the same call, then the GPU tests of the matrix GEMMs, the hf-blocks goldens (now with
#      golden-large, T = 600: the prefill kernels) and the prefill goldens (~430 s). Session 23 ran it on an H100 (no
#      H200 came): run it again on an H200 for the target table's H200 cells (T = 4096 too: add it to the tokens).
# 2: A/B of the decode GEMV kernels at T = 1 (bench-old.mjs: the planner as is; bench.mjs: built with 16-bit dense
#    weights on 'rows4k2' for <= 8 pairs and fp8 on 'rows4' at one row, the kernels gemv-bench --chain 8 found faster
#    for full DeepSeek-V3 in call 2: bf16 0.484 -> 0.378, fp8 0.479 -> 0.399): full DeepSeek-V3, then Mixtral and
#    Qwen3, each old then new (~200 s). Kit: build-kit.sh at HEAD, then the patched planner with KEEP_OLD=1.
# 3: the cost of one expert one row past the 144-row tile (session 23's bench layer: 145 rows at Mixtral T = 512):
#    prefill-bench on even rows, then with 17 rows moved to the first expert (PREFILL_BENCH_ROUTING=shift:17), bf16
#    and int4, the planner's tile and the 128 x 192 one (~150 s); the baseline for a tail of an expert's few rows
#    past its tiles (not written yet).
# all: the next H200 call (~560 s): mode 1 with T = 4096 too (the target table's H200 cells after session 23's planner),
#      then mode 3.
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
  2)
    for b in bench-old bench; do
      timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1 > "$OUT/$b-dsv3.txt" 2>&1; echo "$b dsv3 rc=$?"
      grep -E "^deepseek-v3 .*T=1:" "$OUT/$b-dsv3.txt" | cut -c1-200
    done
    for b in bench-old bench; do
      timeout 45 bash .gpu-kit/enter.sh node .gpu-kit/$b.mjs --models mixtral-8x7b,qwen3-30b-a3b --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 2 > "$OUT/$b-mq.txt" 2>&1; echo "$b mq rc=$?"
      grep -E "^(mixtral|qwen3)\S* +(bf16|fp8) +1 " "$OUT/$b-mq.txt" | cut -c1-60
    done
    ;;
  3)
    for r in shift:0 shift:17 shift:40; do
      PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=$r PB "tail-$r" 60 80 6 "=sgmat-default,=sgmat-m128n192k64va-xh" mixtral 512 bf16,int4
    done
    ;;
  all)
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512,4096
    bash "$0" 3
    ;;
esac
