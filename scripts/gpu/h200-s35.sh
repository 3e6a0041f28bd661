#!/usr/bin/env bash
# Device calls of session 35 (docs/perf-h200/2026-12-07-s35). Kit: bash scripts/gpu/build-kit.sh (drop the bundles a call
# does not run: kit-size.sh). Calls 1-3 ran session 34's prepared parts (h200-s34.sh l, x, p) on session 34's code.
#   d: the decode layer at T = 1 with this session's planner (the combined down GEMV for 16-bit weights on GPUs, packed
#      weights on the two dispatches), four models in bf16 / int4 / fp8 / MXFP4, then full DeepSeek-V3 bf16 / fp8
#      (chunked stacks: the two dispatches) (~90 s)
#   p: the planner's tail on split-K down GEMMs (KERNEL_CROSSOVERS.sgmatTail) against none (+notail), Mixtral T = 256,
#      384, 512 (the split-K tiles: 128 x 192 at 47-109 rows per expert, 144 x 256 at 128) in bf16 and int4, one expert
#      17 rows past the even spread, then random routing (prefill-bench, three rounds) (~200 s)
#   t: the whole GPU test bundle (62 files; the combined down GEMV now runs every bf16 decode golden at T = 1) (~450 s)
#   s: decode at T = 16 over the real copy rate (the probe fixed in session 34; the target table's T = 16 ratios were
#      over the old, ~14% low probe), four models in bf16 and int4; then T = 4 in bf16 on Qwen3 and GPT-OSS with the
#      combined down GEMV (WEBMOE_DOWN_COMBINE=fused) against the planner's two dispatches (auto) (~300 s)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
# BENCH NAME TIMEOUT_S ARGS...: the kit's bench with ARGS into $OUT/NAME.txt; prints its rows and exit status
BENCH() {
  local name=$1 to=$2
  shift 2
  timeout "$to" bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs "$@" > "$OUT/$name.txt" 2>&1
  echo "bench rc=$?" >> "$OUT/$name.txt"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |copy|rc=" "$OUT/$name.txt" | cut -c1-120
}
for part in ${1:-d}; do
case "$part" in
  d)
    BENCH decode 100 --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16,int4,fp8,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/decode.json"
    BENCH dsv3 80 --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1 --json "$OUT/dsv3.json"
    ;;
  p)
    for routing in shift:17 random; do
      PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=$routing PB "tail-${routing%%:*}" 100 125 5 "=sgmat-default,=sgmat-default+notail" mixtral 256,384,512 bf16,int4g32
    done
    ;;
  t)
    GPU_TESTS $((590 - SECONDS))
    ;;
  s)
    BENCH decode16 220 --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16,int4 --tokens 16 --iters 20 --stack 4 --json "$OUT/decode16.json"
    for dc in auto fused; do
      WEBMOE_DOWN_COMBINE=$dc BENCH "t4-$dc" 120 --models qwen3-30b-a3b,gpt-oss-20b --dtypes bf16 --tokens 4 --iters 20 --stack 4 --json "$OUT/t4-$dc.json"
    done
    ;;
esac
done
