#!/usr/bin/env bash
# Device calls prepared in session 38 for session 39; session 39 ran r, L1 and v (docs/perf-h200/2026-12-07-s39) and
# prepared w for the next one. Kit from HEAD: bench.mjs and
# decode-probe.mjs, bench-rdplain.mjs and decode-probe-rdplain.mjs (`bash scripts/gpu/build-bench-rdplain.sh`, which
# rebuilds bench.mjs and decode-probe.mjs from HEAD after the variant), gpu-tests.mjs + fixtures.tar.xz for part t
# (build-gpu-tests.mjs, then `rm -rf .gpu-kit/fixtures`: part t copies them from the tree). Keep
# scripts/gpu/kit-size.sh under 62 MiB.
#   L: what a dependent dispatch's shape costs before any work (decode-probe --launch: 1-12 written buffers, storage-only
#      or with the pool's usages incl. INDIRECT, 0-32 KB
#      of workgroup memory) beside the one-token route_decode cut short (--cuts), Qwen3 and DeepSeek-V3, twice; session
#      38's cuts had route_decode at 6.4 us returning at the start of main against an empty dispatch's 2.4 (~60 s)
#   c: the one-token route_decode writing its per-expert counts with plain stores (bench-rdplain / decode-probe-rdplain)
#      against HEAD: decode-probe (Qwen3, DeepSeek-V3, Mixtral) and the layer at T = 1 (Qwen3, DeepSeek-V2-Lite,
#      Mixtral; bf16, int4), two alternating rounds (~200 s)
#   t: the whole GPU test bundle (63 files; ~420 s: give it 480)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for part in ${1:-L}; do
case "$part" in
  L)
    for r in 1 2; do
      timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs --launch --cuts --models qwen3-30b-a3b,deepseek-v3 --reps 32 --iters 15 > "$OUT/launch-$r.txt" 2>&1
      echo "== launch $r rc=$?"; grep -vE "^\{" "$OUT/launch-$r.txt" | cut -c1-120
    done
    ;;
  c)
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS probe 2 "head rdplain" "touch \(1 workgroup of 256|T=1 route_decode" 60 decode-probe --models qwen3-30b-a3b,deepseek-v3,mixtral-8x7b --reps 32 --iters 15
    AB_RUNS rd 2 "head rdplain" "^[a-z][a-z0-9./-]* +(bf16|int4) " 90 bench --models qwen3-30b-a3b,deepseek-v2-lite,mixtral-8x7b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4
    ;;
  L1)
    # session 39: L once (its device time scarce)
    timeout 60 bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs --launch --cuts --models qwen3-30b-a3b,deepseek-v3 --reps 32 --iters 15 > "$OUT/launch-1.txt" 2>&1
    echo "== launch rc=$?"; grep -vE "^\{" "$OUT/launch-1.txt" | cut -c1-120
    ;;
  p)
    # session 39: c's probe half (HEAD before session 39's change = bench-old / decode-probe.mjs)
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS probe 2 "head rdplain" "touch \(1 workgroup of 256|T=1 route_decode" 60 decode-probe --models qwen3-30b-a3b,deepseek-v3,mixtral-8x7b --reps 32 --iters 15
    ;;
  r)
    # session 39: the layer at T = 1, builds before session 39 (old), with rdplain, and with the router linear in
    # route_decode for every router of these four (lin18: up to 2^18 weights), two alternating rounds
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS rd 2 "old rdplain lin18" "^[a-z][a-z0-9./-]* +(bf16|int4) " 90 bench --models qwen3-30b-a3b,deepseek-v2-lite,mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4
    ;;
  v)
    # session 39, after fa21b1c: the GPU tests the router linear in route_decode reaches (its own file, the decode
    # grouping, T = 1 goldens of jamba / long rows / down-combine), then the layer at T = 1 before (old) and after
    # (head: Mixtral's router in route_decode, GPT-OSS-20B's not), two alternating rounds
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 240 route-linear decode-grouping jamba long-rows down-combine
    AB_RUNS rv 2 "old head" "^[a-z][a-z0-9./-]* +(bf16|int4) " 90 bench --models mixtral-8x7b,gpt-oss-20b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4
    ;;
  w)
    # prepared in session 39, not run (no device time left): the router linear in route_decode with each row's chunks
    # rotated by the row (bench-rot18: `bash scripts/gpu/build-bench-rot.sh`, the GPU rule at 2^18 weights), and with
    # two chunks a step besides (bench-rot18u2: `UNROLL=2 bash scripts/gpu/build-bench-rot.sh`), against HEAD (head:
    # the rule at 2^16, Mixtral only), bf16 and int4, two alternating rounds (~300 s). If one SM then reads the router
    # weights well above call 1's ~5 GB/s, GPT-OSS-20B (92 K) and DeepSeek-V2-Lite (131 K) may gain a dispatch
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS rw 2 "head rot18 rot18u2" "^[a-z][a-z0-9./-]* +(bf16|int4) |T=1: " 90 bench --models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b,mixtral-8x7b --dtypes bf16,int4 --tokens 1 --iters 20 --stack 4
    ;;
  t)
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS "${T_TIMEOUT:-480}"
    ;;
esac
done
