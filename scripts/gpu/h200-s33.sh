#!/usr/bin/env bash
# Device calls of session 33 (docs/perf-h200/2026-12-07-s33). Kit: bash scripts/gpu/build-kit.sh (or, for the test fix
# alone, node scripts/gpu/build-gpu-tests.mjs over a kit of 352a5b1 or later).
#   r: the GPU test files session 33's call 1 did not reach (its bundle stopped at 270 s) and linear.gpu (its grid test
#      fixed), then the layer in bf16 / int4 / MXFP4 / fp8 at T = 1 / 16 / 512 / 4096 for Mixtral, Qwen3 and GPT-OSS
#      (#11's packed decode rows, #12's packed-to-bf16 ratios) (~520 s)
#   t: r's test files alone (~200 s)
#   m: Mixtral T = 512's GEMMs (bf16, int4) on the planner's 144 x 256 tile and on the 128 x 256 one, each with and
#      without the tail dispatch (32 rows), one expert 17 rows past the even spread, then random routing (~100 s):
#      does a 128-row tile plus a tail for the rest beat 144 rows where the rows per expert sit around 128?
#   g: gemv-bench (its chained passes, --chain 8) at T = 1 on Mixtral, Qwen3, GPT-OSS: int4 / MXFP4 / fp8 / bf16 on
#      rows2, rows2i, rows1s, rows2s, rows4s (and the table kernel, its reference) (~120 s; the kit needs
#      gemv-bench.mjs: build-kit.sh builds it)
#   s: t, m and r's layer at T = 1 / 512 / 4096 in bf16 / int4 / fp8 (~480 s)
#   d: the decode layer at T = 1 (four models, bf16 / int4 / MXFP4 / fp8) with the planner's GEMVs (bench.mjs) and
#      with every one-row GEMV on the staged-x 'rows2s' (bench-xs.mjs: scripts/gpu/build-bench-xs.sh after build-kit.sh),
#      then the GPU test files of t and the GEMV tests (moe-gemv-quant: the staged kernels on every format) within the
#      call's ~290 s
#   f: full DeepSeek-V3 at T = 1, bf16 and fp8, with bench.mjs and bench-xs.mjs (#13's fp8 <= 0.6x bf16: 0.67x in
#      s25 / s26 on the H100) (~180 s)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
. "$(dirname "$0")/prefill-bench-run.sh"
REST="linear.gpu chunked-bench.gpu stage-profile.gpu moe/test/random.gpu sharded-quant.gpu moe/test/sharded.gpu shared-slots.gpu stack.gpu streamed.gpu nn/test/ sharding/test/"
# BENCH BUILD NAME TIMEOUT_S ARGS...: the kit's bench build BUILD (bench, bench-xs) with ARGS into $OUT/NAME.txt; prints
# its rows (one per model and dtype) and its exit status
BENCH() {
  local build=$1 name=$2 to=$3
  shift 3
  timeout "$to" bash .gpu-kit/enter.sh node ".gpu-kit/$build.mjs" "$@" > "$OUT/$name.txt" 2>&1
  echo "$build rc=$?" >> "$OUT/$name.txt"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/$name.txt" | cut -c1-120
}
# TILE128 MAX_S TIMEOUT_S: Mixtral T = 512's GEMMs on the 144- and 128-row tiles, each with and without the tail (part m)
TILE128() {
  local p="=sgmat-default,=sgmat-default+tail32,=sgmat-m128n256k32va-xh,=sgmat-m128n256k32va-xh+tail32" routing
  for routing in shift:17 random; do
    PREFILL_BENCH_ROUNDS=3 PREFILL_BENCH_ROUTING=$routing PB "tile128-${routing%%:*}" "$1" "$2" 5 "$p" mixtral 512 bf16,int4g32
  done
}
LAYER_MODELS=mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b
for part in ${1:-r}; do
case "$part" in
  r)
    GPU_TESTS 200 $REST
    BENCH bench layer-packed 320 --models $LAYER_MODELS --dtypes bf16,int4,mxfp4,fp8 --tokens 1,16,512,4096 --iters 10 --stack 2 --json "$OUT/layer-packed.json"
    ;;
  t)
    GPU_TESTS 200 $REST
    ;;
  m)
    TILE128 50 70
    ;;
  d)
    for b in bench bench-xs; do
      BENCH $b "decode-$b" 75 --models $LAYER_MODELS,deepseek-v2-lite --dtypes bf16,int4,mxfp4,fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/decode-$b.json"
    done
    GPU_TESTS $((285 - SECONDS)) moe-gemv-quant.gpu $REST
    ;;
  f)
    for b in bench bench-xs; do
      BENCH $b "dsv3-$b" 90 --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1
    done
    ;;
  g)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3,gpt-oss --formats int4,mxfp4,fp8,bf16 --kernels rows2,rows2i,rows1s,rows2s,rows4s --tokens 1 --iters 20 --chain 8 > "$OUT/gemv-staged.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gemv-staged.txt"; grep -E "T=1|rc=" "$OUT/gemv-staged.txt" | cut -c1-160 | tail -40
    ;;
  s)
    GPU_TESTS 200 $REST
    TILE128 45 60
    BENCH bench layer-packed 180 --models $LAYER_MODELS --dtypes bf16,int4,fp8 --tokens 1,512,4096 --iters 10 --stack 2 --json "$OUT/layer-packed.json"
    ;;
esac
done
