#!/usr/bin/env bash
# Device call of session 41 (after the H100 call of this session that ran h200-s40.sh "w s" and t). Kit: bench.mjs and
# bench-lingemv.mjs (`bash scripts/gpu/build-bench-lingemv.sh`), host-cost.mjs from this checkout and
# host-cost-base.mjs from `0074b7b`'s library (`git worktree add /tmp/wt-base 0074b7b; WEBMOE_SRC_ROOT=/tmp/wt-base node
# scripts/gpu/build-one.mjs scripts/host-cost.ts .gpu-kit/host-cost-base.mjs`), each gzipped (unpacked here).
#   a: host-cost on the bench's full-size Qwen3 layer (bf16, T = 1, 3000 forwards, MoEStack x4), the library before
#      and after this session's host JavaScript change (graph key remembered, number keys for direct bindings, pooled
#      sizes), two alternating rounds, then each once with WEBMOE_NOOP_CALLS=1 (the library's own host code); then the
#      bench, HEAD against the router linear of <= 4 tokens on the GEMV path (lingemv), bf16 T = 1, two rounds (~200 s)
#   b: on an H100 (80 GB): the bench's Mixtral bf16 then int4 with --stack 48 after GpuContext.reclaimMemory, and the
#      GPU test files of this session's changes (kit: bench.mjs and gpu-tests.mjs.gz rebuilt at the commit that adds it);
#      BENCH_ONLY=1: the bench only (for the device time left after failed starts)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for z in .gpu-kit/*.mjs.gz; do [ -e "$z" ] && gunzip -kf "$z"; done
for part in ${1:-a}; do
case "$part" in
  a)
    for r in 1 2; do
      for b in base new; do
        bin=.gpu-kit/host-cost.mjs; [ "$b" = base ] && bin=.gpu-kit/host-cost-base.mjs
        timeout 90 bash .gpu-kit/enter.sh node "$bin" qwen3-30b-a3b 3000 1 4 > "$OUT/hc-$b-$r.txt" 2>&1
        echo "== hc $b $r rc=$?"; grep -E "calls, host|garbage" "$OUT/hc-$b-$r.txt" | sed -E 's/main-thread CPU per layer to issue, //' | cut -c1-150
      done
    done
    for b in base new; do
      bin=.gpu-kit/host-cost.mjs; [ "$b" = base ] && bin=.gpu-kit/host-cost-base.mjs
      WEBMOE_NOOP_CALLS=1 timeout 90 bash .gpu-kit/enter.sh node "$bin" qwen3-30b-a3b 3000 1 4 > "$OUT/hc-noop-$b.txt" 2>&1
      echo "== hc noop $b rc=$?"; grep -E "calls, host" "$OUT/hc-noop-$b.txt" | sed -E 's/main-thread CPU per layer to issue, //' | cut -c1-150
    done
    . "$(dirname "$0")/prefill-bench-run.sh"
    AB_RUNS lg 2 "head lingemv" "^[a-z][a-z0-9./-]* +bf16 |T=1: " 90 bench --models qwen3-30b-a3b,deepseek-v2-lite,gpt-oss-20b --dtypes bf16 --tokens 1 --iters 20 --stack 4
    (cd "$OUT" && tar czf a.tgz hc-* lg-* && rm -f hc-* lg-*)
    ;;
  b)
    # after this session's GpuContext.reclaimMemory (bench: between models and after a chain filled to the device's
    # memory): a chain of up to 60 bf16 Mixtral layers with a 200 GiB budget fills the card whichever it is (an 80 GB
    # H100: 30 layers with --stack 48 in call 4; an H200 ~49), and int4 Mixtral's
    # weights must then allocate (call 4 of this session: GpuValidationError, an invalid buffer, before the change);
    # then the GPU test files of this session's changes (reclaim, pool, graph; moe graph paths, output pool, stack)
    timeout 150 bash .gpu-kit/enter.sh node .gpu-kit/bench.mjs --models mixtral-8x7b --dtypes bf16,int4 --tokens 1,16 --iters 20 --stack 60 --stack-gib 200 --json "$OUT/reclaim.json" > "$OUT/reclaim.txt" 2>&1
    echo "bench rc=$?"; grep -E "^(model|mixtral)|FAILED" "$OUT/reclaim.txt" | cut -c1-230
    [ "${BENCH_ONLY:-0}" = 1 ] && continue
    mkdir -p .gpu-kit/fixtures && cp -r packages/moe/test/fixtures/compressed-tensors packages/moe/test/fixtures/hf-blocks .gpu-kit/fixtures/
    . "$(dirname "$0")/prefill-bench-run.sh"
    GPU_TESTS 150 reclaim pool.gpu graph.gpu graph-invalidation graph-paths output-pool stack.gpu
    ;;
esac
done
