#!/usr/bin/env bash
# Device calls of session 40. Kit from HEAD (`131b352`): bench.mjs (pnpm --filter @webmoe/bench bundle:gpu), the
# route_decode variants bench-rot18.mjs.gz (`bash scripts/gpu/build-bench-rot.sh`) and bench-rot18u2.mjs.gz
# (`UNROLL=2 bash scripts/gpu/build-bench-rot.sh`), gpu-tests.mjs.gz (build-gpu-tests.mjs) and fixtures.tar.xz,
# host-cost.mjs (`node scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost.mjs`); the bundles gzipped
# (`gzip -9`) to keep scripts/gpu/kit-size.sh under 62 MiB, unpacked here first.
#   w: session 39's part w with bf16 only (the router is bf16 in every row): route_decode's router linear with rows'
#      chunks rotated by the row (rot18), plus two chunks a step (rot18u2), both with the GPU rule at 2^18 weights,
#      against HEAD (the rule at 2^16: Mixtral only), two alternating rounds (~150 s); then host-cost on the bench's
#      Qwen3 layer (bf16, T = 1, 2000 forwards, MoEStack x4) with each WebGPU method's host time (WEBMOE_TIME_CALLS=1)
#   m: w cut short (HEAD against rot18u2, bf16, two rounds) for the device time left after the failed starts
#   s: the GPU test files the router linear in route_decode reaches (route-linear, decode-grouping, jamba, long-rows,
#      down-combine, linear, router; ~60 s)
#   t: the whole GPU test bundle (64 files; ~420 s: give it 480)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for z in .gpu-kit/*.mjs.gz; do [ -e "$z" ] && gunzip -kf "$z"; done
for part in ${1:-w}; do
case "$part" in
  w)
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS rw 2 "head rot18 rot18u2" "^[a-z][a-z0-9./-]* +bf16 |T=1: " 90 bench --models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b,mixtral-8x7b --dtypes bf16 --tokens 1 --iters 20 --stack 4
    WEBMOE_TIME_CALLS=1 timeout 90 bash .gpu-kit/enter.sh node .gpu-kit/host-cost.mjs qwen3-30b-a3b 2000 1 4 > "$OUT/host-cost.txt" 2>&1
    echo "host-cost rc=$?"; grep -vE "^Warning" "$OUT/host-cost.txt" | cut -c1-400
    (cd "$OUT" && tar czf w.tgz rw-* host-cost.txt && rm -f rw-* host-cost.txt)
    ;;
  m)
    # w cut to the device time left after the failed starts: HEAD against rot18u2 only, bf16, two rounds (~80 s)
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS rm 2 "head rot18u2" "^[a-z][a-z0-9./-]* +bf16 |T=1: " 60 bench --models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b,mixtral-8x7b --dtypes bf16 --tokens 1 --iters 20 --stack 4
    (cd "$OUT" && tar czf m.tgz rm-* && rm -f rm-*)
    ;;
  s)
    # the GPU test files the router linear in route_decode reaches (c33ca64 changed its WGSL after session 39's runs)
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 150 route-linear decode-grouping jamba long-rows down-combine linear.gpu router.gpu
    ;;
  t)
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS "${T_TIMEOUT:-480}"
    ;;
esac
done
