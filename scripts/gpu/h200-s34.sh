#!/usr/bin/env bash
# Device calls of session 34 (docs/perf-h200/2026-12-07-s34). Kit: bash scripts/gpu/build-kit.sh, with the previous
# planner's bench kept as .gpu-kit/bench-old.mjs (KEEP_OLD=1 over a kit of bf9b375).
#   a: the staged-x rule (int4 / MXFP4 at one row on 'rows2s' from 2880 columns) in the decode layer at T = 1 against the
#      previous planner ('rows2i' everywhere), two alternating rounds on Mixtral, Qwen3, GPT-OSS, DeepSeek-V2-Lite, then
#      full DeepSeek-V3 (gate_up K 7168 staged, down K 2048 not: a shape the rule was not fitted on) (~200 s)
#   t: the whole GPU test bundle (62 files) (~450 s)
#   p: the tail dispatch split as the main down GEMM (this session: it wrote whole K after the sums before) on the
#      planner's tiles, Mixtral / GPT-OSS / Qwen3 at T = 512 and 1024, bf16 and int4, one expert 17 rows past the even
#      spread, then random routing (prefill-bench, three rounds; s33 call 1's tail.txt ran the same with the old tail:
#      Mixtral T = 512 2.642 -> 2.572 ms, T = 1024 3.563 -> 3.785 with its down GEMM 1.18 -> 1.38) (~250 s)
#   m: int4 / MXFP4 at more token rows per pass on the staged-x kernels: gemv-bench (chained; it knows T = 1 and 16
#      only) at T = 16 on rows2i (the planner's), rows4i, rows2s, rows4s, then the layer at T = 4 and 16 with the
#      planner's bench.mjs against bench-mr2s.mjs / bench-mr4s.mjs (scripts/gpu/build-bench-staged-rows.sh), two
#      alternating rounds (the kit without gpu-tests.mjs and bench-old.mjs to stay under 64 MiB). Session 34's call
#      ran past its 420 s: each layer run needs more than its 70 s at T = 4 and 16 (give it 150 s, one round), and a
#      call returns only 8 files from $OUT
#   c: the decode forward's end at T = 1 (gemv-bench --combined, chained): the down GEMV + combine (two dispatches, the
#      planner's) against the combined down GEMV on each row-blocked kernel, split-K ones included (rows2k2, rows2k4,
#      rows1k8, rows4k2: k-fold fewer workgroups is what lost the combined GEMV its dispatch saving on GPUs, s17), Qwen3,
#      GPT-OSS, Mixtral in bf16 / int4 / fp8 (~120 s)
#   l: the decode layer at T = 1 ending on the combined down GEMV (WEBMOE_DOWN_COMBINE=fused; 16-bit weights on
#      'rows2k2', plan.ts combinedDownDenseKernel) against the planner's two dispatches (the default), bf16 and fp8, four
#      models, two alternating rounds (~200 s): call c's kernel-level gains (Qwen3 bf16 16.1 -> 10.5 us) in the layer?
#   x: full DeepSeek-V3 at T = 1, bf16 and fp8, its shared expert in the routed GEMVs (WEBMOE_DECODE_SHARED=routed)
#      and on its own (the default), two alternating rounds: #13's fp8 <= 0.6x bf16 (0.67x with the defaults; s16 on an
#      H200: routed fp8 2% faster, bf16 5% slower), each dtype on its best (~150 s; the combined down GEMV does not take
#      its chunked stacks)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
# BENCH BUILD NAME TIMEOUT_S ARGS...: the kit's bench build BUILD (bench, bench-old) with ARGS into $OUT/NAME.txt;
# prints its rows (one per model and dtype) and its exit status
BENCH() {
  local build=$1 name=$2 to=$3
  shift 3
  timeout "$to" bash .gpu-kit/enter.sh node ".gpu-kit/$build.mjs" "$@" > "$OUT/$name.txt" 2>&1
  echo "$build rc=$?" >> "$OUT/$name.txt"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/$name.txt" | cut -c1-120
}
for part in ${1:-a}; do
case "$part" in
  a)
    for round in 1 2; do
      for b in bench-old bench; do
        BENCH $b "decode-$b-$round" 60 --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/decode-$b-$round.json"
      done
    done
    for b in bench-old bench; do
      BENCH $b "dsv3-$b" 80 --models deepseek-v3 --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 1
    done
    ;;
  t)
    GPU_TESTS $((590 - SECONDS))
    ;;
  c)
    timeout 200 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --combined --models qwen3,gpt-oss,mixtral --formats bf16,int4,fp8 --kernels rows2,rows2i,rows2k2,rows2k4,rows1k8,rows4k2 --tokens 1 --iters 20 --chain 8 > "$OUT/gemv-combined.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gemv-combined.txt"; grep -E " end |rc=" "$OUT/gemv-combined.txt" | cut -c1-130
    ;;
  l)
    for round in 1 2; do
      for dc in auto fused; do
        WEBMOE_DOWN_COMBINE=$dc BENCH bench "combine-$dc-$round" 80 --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/combine-$dc-$round.json"
      done
    done
    ;;
  x)
    for round in 1 2; do
      for ds in separate routed; do
        WEBMOE_DECODE_SHARED=$ds BENCH bench "dsv3-$ds-$round" 70 --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1
      done
    done
    ;;
  p)
    for routing in shift:17 random; do
      PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=$routing PB "tail-${routing%%:*}" 100 125 5 "=sgmat-default,=sgmat-default+tail32" mixtral,gpt-oss,qwen3 512,1024 bf16,int4g32
    done
    ;;
  m)
    timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3,gpt-oss --formats int4,mxfp4 --kernels rows2i,rows4i,rows2s,rows4s --tokens 4,16 --iters 20 --chain 8 > "$OUT/gemv-staged-rows.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gemv-staged-rows.txt"; grep -E "T=(4|16) .*\|" "$OUT/gemv-staged-rows.txt" | cut -c1-160; grep rc= "$OUT/gemv-staged-rows.txt"
    for round in 1 2; do
      for b in bench bench-mr2s bench-mr4s; do
        BENCH $b "rows-$b-$round" 70 --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4 --tokens 4,16 --iters 20 --stack 4 --json "$OUT/rows-$b-$round.json"
      done
    done
    ;;
esac
done
