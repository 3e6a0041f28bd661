#!/usr/bin/env bash
# Device calls of session 36 (docs/perf-h200/2026-12-07-s36). Kit: bash scripts/gpu/build-kit.sh, or only the bundles a
# part runs (node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs; kit-size.sh).
#   a: where the one-row decode GEMVs' time goes now (#11: int4 / MXFP4 at 0.40x of copy, fp8 0.65x bf16): gemv-bench
#      chained as the layer runs them (--chain 8, passes back to back; session 22's ablations were lone awaited passes,
#      2-3.6x the layer's time), Mixtral and Qwen3, bf16 / int4 / fp8, the planner's kernels (rows2, rows2i, rows2s),
#      gate_up and down apart (--split); as they are, then without each part (gemv-ablate.ts: weights, decode, x,
#      scale, reduce: the reduction's serial sums) and with Dawn's bounds clamps off (norobust), one process each (~7 x 60 s)
#   x: the staged-x GEMV (rows2s) with each lane's code and scale loads before the slice's x copy ('rows2s^',
#      GemvOptions.stagedXLoadsFirst) against after it, and rows2 / rows2s loading each lane's next step before the
#      current one decodes ('+', GemvOptions.prefetchCodes), beside rows2i, bf16 / int4 / MXFP4 / fp8 at T = 1, Mixtral,
#      GPT-OSS, Qwen3, chained (gemv-bench --xs-first --prefetch), two rounds (~2 x 130 s)
#   l: the same in the layer: bench.mjs / bench-xsfirst.mjs / bench-pf.mjs (build-bench-xs-first.sh: each GPU rule on),
#      T = 1, bf16 / int4 / MXFP4 / fp8, four models, two alternating rounds (~6 x 45 s)
#   m: full DeepSeek-V3 bf16 / fp8 at T = 1, bench.mjs then bench-pf.mjs (~2 x 80 s)
#   t: the whole GPU test bundle (node scripts/gpu/build-gpu-tests.mjs; 62 files) (~270 s)
#   g: the decode GEMVs' GPU test files only (~100 s)
#   r: (for the next session) the x-in-registers GEMV candidates ('rowsNkSx', GemvVariant.xr) against the planner's
#      kernels, gemv-bench --chain 8 --split, T = 1, four formats, Mixtral / GPT-OSS / Qwen3, two rounds (~2 x 120 s)
#   L: (for the next session) the layer at T = 1 with every packed one-row GEMV on an x-in-registers kernel
#      (build-bench-xr.sh [KERNEL]: bench-xr.mjs) against the planner's, int4 / MXFP4 / fp8, four models, two rounds
#      (~4 x 45 s)
#   f: the decode forward's small dispatches (decode-probe: router linear, route_decode, combine, an empty dispatch) (~60 s)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for part in ${1:-a}; do
case "$part" in
  a)
    i=0
    for ab in ${ABLATE_LIST:-none weights decode x scale reduce norobust}; do
      i=$((i + 1)); A=(); D=; case "$ab" in none) ;; norobust) D=disable_robustness ;; *) A=(--ablate "$ab") ;; esac
      WEBMOE_DAWN_ENABLE=$D timeout 80 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,qwen3 --formats bf16,int4,fp8 --tokens 1 --kernels rows2,rows2i,rows2s --iters 20 --chain 8 --split ${A[@]+"${A[@]}"} > "$OUT/ablate-$i-$ab.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/ablate-$i-$ab.txt"
      echo "== $ab"; grep -E "T=1 +rows|copy .*GB/s|rc=" "$OUT/ablate-$i-$ab.txt" | cut -c1-190
    done
    ;;
  x)
    for r in 1 2; do
      timeout 170 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,gpt-oss,qwen3 --formats bf16,int4,mxfp4,fp8 --tokens 1 --kernels rows2,rows2i,rows2s --xs-first --prefetch --iters 20 --chain 8 --split > "$OUT/xs-$r.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/xs-$r.txt"
      echo "== round $r"; grep -E "T=1 +rows2[si]?[\^+]? |rc=" "$OUT/xs-$r.txt" | cut -c1-190
    done
    ;;
  l)
    for r in 1 2; do
      for b in after first pf; do
        B=.gpu-kit/bench.mjs; [ $b = first ] && B=.gpu-kit/bench-xsfirst.mjs; [ $b = pf ] && B=.gpu-kit/bench-pf.mjs
        timeout 100 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes bf16,int4,mxfp4,fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/layer-$b-$r.json" > "$OUT/layer-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/layer-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/layer-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  m)
    # full DeepSeek-V3 (#13's fp8 at 0.6x bf16), the planner's order against the prefetching one, one round each
    for b in after pf; do
      B=.gpu-kit/bench.mjs; [ $b = pf ] && B=.gpu-kit/bench-pf.mjs
      timeout 90 bash .gpu-kit/enter.sh node $B --models deepseek-v3 --dtypes bf16,fp8 --tokens 1 --iters 20 --stack 1 --json "$OUT/dsv3-$b.json" > "$OUT/dsv3-$b.txt" 2>&1
      echo "bench rc=$?" >> "$OUT/dsv3-$b.txt"
      echo "== $b"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|fp8) |rc=" "$OUT/dsv3-$b.txt" | cut -c1-100
    done
    ;;
  t)
    # the whole GPU test bundle at this session's code (the quant test's other orders of loads bit-equal on a GPU)
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 330
    ;;
  g)
    # the decode GEMVs' GPU test files only (the quant test's other orders of loads, xsFirst and pf, bit-equal on a GPU)
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 200 moe-gemv-quant moe-gemv.gpu moe-gemv-combine
    ;;
  r)
    # the x-in-registers candidates (rows4k4x, rows8k4x, rows8k8x; session 36, unmeasured on a GPU) against the planner's
    # kernels, one token row, chained, gate_up and down apart, two rounds
    for r in 1 2; do
      timeout 170 bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs --models mixtral,gpt-oss,qwen3 --formats bf16,int4,mxfp4,fp8 --tokens 1 --kernels rows2,rows2i,rows2s,rows4k4x,rows8k4x,rows8k8x --iters 20 --chain 8 --split > "$OUT/xr-$r.txt" 2>&1
      echo "gemv-bench rc=$?" >> "$OUT/xr-$r.txt"
      echo "== round $r"; grep -E "T=1 +(rows|dense)|rc=" "$OUT/xr-$r.txt" | cut -c1-190
    done
    ;;
  L)
    # the layer with every packed one-row GEMV on an x-in-registers kernel (build-bench-xr.sh) against the planner's
    for r in 1 2; do
      for b in planner xr; do
        B=.gpu-kit/bench.mjs; [ $b = xr ] && B=.gpu-kit/bench-xr.mjs
        timeout 100 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4,fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/xr-layer-$b-$r.json" > "$OUT/xr-layer-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/xr-layer-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/xr-layer-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  f)
    timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs > "$OUT/decode-probe.txt" 2>&1
    echo "decode-probe rc=$?" >> "$OUT/decode-probe.txt"; cut -c1-160 "$OUT/decode-probe.txt" | tail -40
    ;;
esac
done
