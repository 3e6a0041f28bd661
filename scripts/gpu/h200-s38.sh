#!/usr/bin/env bash
# Device calls prepared in session 37 for the next session (nothing here ran yet). Kit from HEAD: bench.mjs
# (pnpm --filter @webmoe/bench bundle:gpu), gpu-tests.mjs + fixtures.tar.xz (build-kit.sh / build-gpu-tests.mjs), and
# for part s bench-lr-all.mjs (`bash scripts/gpu/build-bench-longrows.sh lr-all 0 rows4x rows8k4x`) and bench-lr-r8.mjs
# (`bash scripts/gpu/build-bench-longrows.sh lr-r8 0 rows8k2x rows8k4x`). Keep scripts/gpu/kit-size.sh under 62 MiB
# (a call that runs part t does not need the bench variants; one that runs s does not need the tests).
#   v: session 37's planner as committed (int4 / MXFP4 long-row GEMVs: gate_up 'rows4x', down 'rows8k4x'): the layer at
#      T = 1, four models, int4 / MXFP4 / fp8 / bf16, then full DeepSeek-V3 int4 / fp8 / bf16 (K 7168 gate_up on rows4x,
#      chunked experts; never measured with it) (~60 + ~100 s)
#   s: the short-row 4-bit GEMVs (Qwen3 K 2048 / 768, DeepSeek-V2-Lite K 2048 / 1408) on x-in-registers kernels: the
#      planner against bench-lr-all (every one-row 4-bit GEMV on rows4x / rows8k4x) and bench-lr-r8 (rows8k2x /
#      rows8k4x), Qwen3 and DeepSeek-V2-Lite, int4 / MXFP4, three alternating rounds (~9 x 25 s)
#   f: fp8 long rows on the x-in-registers kernels (bench-fp8-lr, bench-fp8-d from build-bench-longrows.sh ... fp8_e4m3)
#      against the planner, Mixtral / GPT-OSS fp8, two rounds (~6 x 20 s)
#   g: bench-rg / decode-probe-rg (unnormalised softmax max from the top-1; grouped without atomics) against HEAD,
#      DeepSeek-V3 / V2-Lite routing and the DeepSeek-V2-Lite layer, two rounds (~140 s)
#   z: Qwen3 / Mixtral bf16 / int4 T = 1 with and without Dawn's disable_workgroup_init, two rounds (~80 s)
#   q: decode-probe-rsel (the renormalised softmax routers without the softmax over all E); r: bench-rsel against
#      the planner, Qwen3 bf16 / int4 T = 1, two rounds
#   p: decode-probe (each small decode dispatch's device time in a chain of 32, five routers), then --cuts (the one-token
#      route_decode returning early at five points, three routers) (~90 s)
#   t: the whole GPU test bundle at HEAD (62 files; session 37's 330 s cut it after 51) (~400 s)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for part in ${1:-v}; do
case "$part" in
  v)
    timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b,qwen3-30b-a3b,gpt-oss-20b,deepseek-v2-lite --dtypes int4,mxfp4,fp8,bf16 --tokens 1 --iters 20 --stack 4 --json "$OUT/layer.json" > "$OUT/layer.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/layer.txt"
    grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|mxfp4|fp8) |rc=" "$OUT/layer.txt" | cut -c1-110
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models deepseek-v3 --dtypes int4,fp8,bf16 --tokens 1 --iters 20 --stack 1 --json "$OUT/dsv3.json" > "$OUT/dsv3.txt" 2>&1
    echo "bench rc=$?" >> "$OUT/dsv3.txt"
    grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4|fp8) |rc=" "$OUT/dsv3.txt" | cut -c1-110
    ;;
  s)
    for r in $(seq 1 "${S_ROUNDS:-3}"); do
      for b in planner lr-all lr-r8; do
        B=.gpu-kit/bench.mjs; [ $b != planner ] && B=.gpu-kit/bench-$b.mjs
        timeout 60 bash .gpu-kit/enter.sh node $B --models qwen3-30b-a3b,deepseek-v2-lite --dtypes int4,mxfp4 --tokens 1 --iters 20 --stack 4 --json "$OUT/short-$b-$r.json" > "$OUT/short-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/short-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(int4|mxfp4) |rc=" "$OUT/short-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  f)
    # fp8 one-row GEMVs of at least 2880 columns on the x-in-registers kernels (a new fp8 entry in the long-row rule):
    # bench-fp8-lr (gate_up 'rows4x', down 'rows8k4x') and bench-fp8-d (down 'rows8k4x' only) against the planner,
    # Mixtral and GPT-OSS fp8 (and bf16 for the ratio), two alternating rounds
    for r in 1 2; do
      for b in planner fp8-lr fp8-d; do
        B=.gpu-kit/bench.mjs; [ $b != planner ] && B=.gpu-kit/bench-$b.mjs
        timeout 60 bash .gpu-kit/enter.sh node $B --models mixtral-8x7b,gpt-oss-20b --dtypes fp8 --tokens 1 --iters 20 --stack 4 --json "$OUT/fp8-$b-$r.json" > "$OUT/fp8-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/fp8-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +fp8 |rc=" "$OUT/fp8-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  g)
    # session 38's second router change (bench-rg / decode-probe-rg: the unnormalised softmax routers' max from the
    # top-1 logit, one reduction fewer; the grouped routers' kept groups read from gkeep, no atomics) against HEAD:
    # the routing dispatches (decode-probe, the two routers it changes) and the DeepSeek-V2-Lite layer, two
    # alternating rounds
    for r in 1 2; do
      for b in head rg; do
        P=.gpu-kit/decode-probe.mjs; [ $b = rg ] && P=.gpu-kit/decode-probe-rg.mjs
        timeout 60 bash .gpu-kit/enter.sh node $P --models deepseek-v3,deepseek-v2-lite --reps 32 --iters 15 > "$OUT/probe-$b-$r.txt" 2>&1
        echo "== probe $b $r rc=$?"; grep -E "route_decode|router \(" "$OUT/probe-$b-$r.txt" | cut -c1-120
      done
    done
    for r in 1 2; do
      for b in head rg; do
        B=.gpu-kit/bench.mjs; [ $b = rg ] && B=.gpu-kit/bench-rg.mjs
        timeout 60 bash .gpu-kit/enter.sh node $B --models deepseek-v2-lite --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4 --json "$OUT/rg-$b-$r.json" > "$OUT/rg-$b-$r.txt" 2>&1
        echo "== $b $r rc=$?"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4) " "$OUT/rg-$b-$r.txt" | cut -c1-150
      done
    done
    ;;
  z)
    # what zero-initialising workgroup memory costs the layer (Dawn's disable_workgroup_init: a measurement only)
    for r in 1 2; do
      for z in on off; do
        if [ $z = off ]; then export WEBMOE_DAWN_ENABLE=disable_workgroup_init; else unset WEBMOE_DAWN_ENABLE; fi
        timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/bench-rg.mjs --models qwen3-30b-a3b,mixtral-8x7b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4 > "$OUT/zinit-$z-$r.txt" 2>&1
        echo "== workgroup init $z $r rc=$?"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4) " "$OUT/zinit-$z-$r.txt" | cut -c1-150
      done
    done
    unset WEBMOE_DAWN_ENABLE
    ;;
  q)
    # decode-probe of the build with the renormalised softmax routers' weights from the k selected logits (no softmax
    # over all E: Qwen3's router; bench-rsel / decode-probe-rsel), route_decode and router rows
    timeout 100 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe-rsel.mjs --reps 32 --iters 15 > "$OUT/decode-probe-rsel.txt" 2>&1
    echo "probe rc=$?" >> "$OUT/decode-probe-rsel.txt"
    grep -E "router \(|route_decode|rc=" "$OUT/decode-probe-rsel.txt" | cut -c1-130
    ;;
  r)
    # the layer with that router (bench-rsel) against the planner: Qwen3 bf16 / int4 at T = 1, two alternating rounds
    for r in 1 2; do
      for b in planner rsel; do
        B=.gpu-kit/bench.mjs; [ $b != planner ] && B=.gpu-kit/bench-$b.mjs
        timeout 60 bash .gpu-kit/enter.sh node $B --models qwen3-30b-a3b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4 --json "$OUT/rsel-$b-$r.json" > "$OUT/rsel-$b-$r.txt" 2>&1
        echo "bench rc=$?" >> "$OUT/rsel-$b-$r.txt"
        echo "== $b $r"; grep -hE "^[a-z][a-z0-9./-]* +(bf16|int4) |rc=" "$OUT/rsel-$b-$r.txt" | cut -c1-100
      done
    done
    ;;
  p)
    # where a decode forward's fixed time goes at HEAD (router linear, route_decode, combine; chained dispatches)
    timeout 120 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs --reps 32 --iters 15 > "$OUT/decode-probe.txt" 2>&1
    echo "probe rc=$?" >> "$OUT/decode-probe.txt"
    grep -vE "^\{" "$OUT/decode-probe.txt" | cut -c1-130
    timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs --cuts --reps 32 --iters 15 > "$OUT/decode-probe-cuts.txt" 2>&1
    echo "probe rc=$?" >> "$OUT/decode-probe-cuts.txt"
    grep -E "route_decode|rc=" "$OUT/decode-probe-cuts.txt" | cut -c1-130
    ;;
  t)
    # the moe tests' own fixtures beside the bundle (build-gpu-tests.mjs copies them there; copied here from the
    # carried tree instead, to keep the kit under the carry limit)
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS "${T_TIMEOUT:-540}"
    ;;
esac
done
