#!/usr/bin/env bash
# Session 24's next device calls (session 24 itself ran on H100s: docs/perf-h200/2026-12-06-s24).
#   1: the target table's H200 cells after session 24's split-K rule (the down GEMM split up to 144 rows per expert):
#      the bf16 layer at T = 128 / 512 / 4096 beside HF grouped_mm in the same call, and Mixtral at T = 256 / 1024 (~250 s;
#      1024: 256 rows per expert, past the split rule's 144, with 352 down tiles: an expert past 256 rows adds a wave).
#   2: the whole GPU test bundle (~330 s; the split-K golden of quant.gpu.test.ts runs on the real builtins there).
#   3: packed prefill (#12: int4 / MXFP4 / fp8 at most 1.3x bf16 from T = 512): the layer, Mixtral, GPT-OSS-20B and
#      Qwen3-30B, bf16 and the packed formats in one bench run at T = 512 / 4096 (~200 s).
#   4: A/B of the packed staging's scale index (FastGemmVariant.blockShifts: shifts instead of integer divisions by
#      the scale blocks' sizes, two per 16-byte load for fp8 blocks, one for int blocks; session 24, not measured):
#      prefill-bench, the planner's tiles with shifts ('=sgmat-default') and with divisions ('+divide':
#      blockShifts false) in one process, the router's rows, three rounds; fp8 / int4 / int8 on Mixtral,
#      DeepSeek-V3-e32, GPT-OSS at T = 512 / 4096 (~200 s). Kit: build-kit.sh.
#   5: A/B of the bench's timed forwards: bench.mjs --drain-each (a drain and a timestamp readback after each forward,
#      the timing before session 24) then bench.mjs as is (back to back, one drain; not measured yet), same call: full
#      DeepSeek-V3 bf16 / fp8 at T = 1 (#13's 0.6x: its fp8 GEMVs at 60% of copy, gemv-bench's lone passes 2-3.6x slower
#      than chained ones), then Mixtral and Qwen3 bf16 / fp8 at T = 1 and bf16 at T = 256 / 512 (the rows whose
#      medians were bimodal) (~280 s). Kit: build-kit.sh.
#   all: 1 then 3 (one call of ~400 s); 2, 4 and 5 in calls of their own.
# Kit: bash scripts/gpu/build-kit.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
case "${1:-1}" in
  1)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1; cat "$OUT/gpu.txt"
    LAYER_VS_HF mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite 128,512,4096
    mkdir -p "$OUT/mixtral-mid" && OUT="$OUT/mixtral-mid" LAYER_VS_HF mixtral-8x7b 256,1024
    ;;
  2)
    GPU_TESTS 420
    ;;
  3)
    timeout 240 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,gpt-oss-20b,qwen3-30b-a3b --dtypes bf16,int4,mxfp4,fp8 --tokens 512,4096 --iters 10 --stack 2 --json "$OUT/layer-packed.json" > "$OUT/layer-packed.txt" 2>&1
    echo "bench rc=$?"; grep -E "^(mixtral|qwen3|gpt)\S* +(bf16|int4|mxfp4|fp8) " "$OUT/layer-packed.txt" | cut -c1-70
    ;;
  4)
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=random PB shifts 200 260 6 "=sgmat-default,=sgmat-default+divide" "mixtral,deepseek-v3-e32,gpt-oss" "512,4096" fp8,int4,int8
    ;;
  5)
    for mode in drain-each chained; do
      flag=$([ $mode = drain-each ] && echo --drain-each)
      timeout 70 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs $flag --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1 --json "$OUT/$mode-dsv3.json" > "$OUT/$mode-dsv3.txt" 2>&1; echo "$mode dsv3 rc=$?"
      grep -E "^deepseek-v3 +(bf16|fp8) " "$OUT/$mode-dsv3.txt" | cut -c1-70
      timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs $flag --models mixtral-8x7b,qwen3-30b-a3b --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 2 --json "$OUT/$mode-mq.json" > "$OUT/$mode-mq.txt" 2>&1; echo "$mode mq rc=$?"
      timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs $flag --models mixtral-8x7b,qwen3-30b-a3b --dtypes bf16 --tokens 256,512 --iters 20 --stack 2 --json "$OUT/$mode-mq512.json" > "$OUT/$mode-mq512.txt" 2>&1; echo "$mode mq512 rc=$?"
      grep -hE "^(mixtral|qwen3)\S* +(bf16|fp8) " "$OUT/$mode-mq.txt" "$OUT/$mode-mq512.txt" | cut -c1-70
    done
    ;;
  all)
    bash "$0" 1
    bash "$0" 3
    ;;
esac
