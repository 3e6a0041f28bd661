#!/usr/bin/env bash
# Device calls of session 37 (docs/perf-h200/2026-12-07-s37): the x-in-registers GEMV candidates of session 36, measured.
# Kit: node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs; bench.mjs;
# bash scripts/gpu/build-bench-xr.sh rows8k4x (.gpu-kit/bench-xr.mjs) and, renamed, rows8k8x (.gpu-kit/bench-xr88.mjs).
#   r: gemv-bench, the candidates (rows4k4x, rows8k4x, rows8k8x) beside the planner's kernels, T = 1, chained, gate_up and
#      down apart, Mixtral / GPT-OSS / Qwen3, four formats, ROUNDS rounds (default 1; ~120 s each)
#   L: the layer at T = 1, int4 / MXFP4 / fp8, four models: bench.mjs (planner), bench-xr.mjs (rows8k4x),
#      bench-xr88.mjs (rows8k8x), ROUNDS alternating rounds (default 2; ~3 x 45 s each)
#   D: the layer at T = 1, int4 / MXFP4, four models: bench.mjs (planner) against bench-xrd.mjs (build-bench-xr-down.sh at b34d7f1, removed since:
#      only the down GEMVs on rows8k4x, where gemv-bench's part r found it faster), ROUNDS_L alternating rounds (~2 x 35 s
#      each)
#   V: the planner of this session (int4 / MXFP4 down GEMVs of 2880 columns and more on rows8k4x) checked and timed: the
#      layer at T = 1, int4 / MXFP4, four models, one round (~2 x 35 s), then the GPU test files of the decode GEMVs and
#      the planner (~120 s)
#   G: gate_up candidates for the int4 / MXFP4 long-row GEMVs: gemv-bench (rows2i, rows2s, rows4x, rows2k4x, rows4k2x,
#      rows8k2x, rows4k4x, rows8k4x; Mixtral / GPT-OSS / Qwen3, T = 1, chained, split; ~100 s), then the layer at T = 1
#      (Mixtral, GPT-OSS, int4 / MXFP4) with bench.mjs and bench-gu-KERNEL.mjs (build-bench-gu.sh at 8697d10, since `build-bench-longrows.sh gu-KERNEL 2880 KERNEL rows8k4x`: the long-row rule's
#      gate_up on KERNEL), ROUNDS_G alternating rounds (default 2; ~5 x 25 s each)
#   t: the whole GPU test bundle (node scripts/gpu/build-gpu-tests.mjs; needs .gpu-kit/fixtures.tar.xz) (~330 s: cut
#      after 51 of 62 files in call 2); t2: the files call 2 did not reach
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
ROUNDS_R=${ROUNDS_R:-1}
ROUNDS_L=${ROUNDS_L:-2}
for part in ${1:-r}; do
case "$part" in
  r)
    for r in $(seq 1 "$ROUNDS_R"); do
      timeout 170 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,gpt-oss,qwen3 --formats bf16,int4,mxfp4,fp8 --tokens 1 --kernels rows2,rows2i,rows2s,rows4k4x,rows8k4x,rows8k8x --iters 20 --chain 8 --split > "$OUT/xr-$r.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/xr-$r.txt"
      echo "== round $r"; grep -E "T=1 +(rows|dense)|rc=" "$OUT/xr-$r.txt" | cut -c1-190
    done
    ;;
  L)
    for r in $(seq 1 "$ROUNDS_L"); do
      for b in planner xr xr88; do
        B=.gpu-kit/bench.mjs; [ $b = xr ] && B=.gpu-kit/bench-xr.mjs; [ $b = xr88 ] && B=.gpu-kit/bench-xr88.mjs
        timeout 100 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4,fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/xr-layer-$b-$r.json" > "$OUT/xr-layer-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/xr-layer-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/xr-layer-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  D)
    for r in $(seq 1 "$ROUNDS_L"); do
      for b in planner xrd; do
        B=.gpu-kit/bench.mjs; [ $b = xrd ] && B=.gpu-kit/bench-xrd.mjs
        timeout 100 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/xrd-layer-$b-$r.json" > "$OUT/xrd-layer-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/xrd-layer-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(int4|mxfp4) |moe_gemv|rc=" "$OUT/xrd-layer-$b-$r.txt" | cut -c1-110
      done
    done
    ;;
  V)
    timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/layer-new.json" > "$OUT/layer-new.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer-new.txt"
    grep -hE "^[a-z][a-z0-9./-]* +(int4|mxfp4) |moe_gemv|rc=" "$OUT/layer-new.txt" | cut -c1-200
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 200 moe-gemv-quant moe-gemv.gpu moe-gemv-combine chunked-experts plan
    ;;
  G)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,gpt-oss,qwen3 --formats int4,mxfp4 --tokens 1 --kernels rows2i,rows2s,rows4x,rows2k4x,rows4k2x,rows8k2x,rows4k4x,rows8k4x --iters 20 --chain 8 --split > "$OUT/gu-gemv.txt" 2>&1
    echo "gemv-bench rc=$?" >> "$OUT/gu-gemv.txt"
    grep -E "T=1 +rows|rc=" "$OUT/gu-gemv.txt" | cut -c1-190
    for r in $(seq 1 "${ROUNDS_G:-2}"); do
      for b in planner rows4x rows2k4x rows4k2x rows8k2x; do
        B=.gpu-kit/bench.mjs; [ $b != planner ] && B=.gpu-kit/bench-gu-$b.mjs
        timeout 60 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,gpt-oss-20b --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/gu-layer-$b-$r.json" > "$OUT/gu-layer-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/gu-layer-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(int4|mxfp4) |rc=" "$OUT/gu-layer-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  t)
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 330
    ;;
  t2)
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 300 sharded.gpu shared-slots.gpu stack.gpu streamed.gpu nn.gpu nn/test/random.gpu collectives.gpu ep.gpu transport.gpu
    ;;
esac
done
