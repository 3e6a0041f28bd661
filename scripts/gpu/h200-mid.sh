#!/usr/bin/env bash
# On the GPU machine, one call for kernel work in progress: where the host time of forward(Float32Array) goes
# (host-probe), an A/B of two bench bundles on decode rows (bench-old.mjs vs bench.mjs), the decode GEMV
# micro-benchmark (gemv-bench) and the prefill GEMM benchmark (prefill-bench), each skipped when its bundle
# is missing. Outputs under $OUT.
#   kit: node scripts/gpu/build-one.mjs scripts/gpu/{host-probe,gemv-bench,prefill-bench}.ts .gpu-kit/<name>.mjs;
#        pnpm --filter @webmoe/bench bundle:gpu (bench.mjs); a previous bench.mjs kept as bench-old.mjs
#        (or in a folder of its own with its check-worker.js: BENCH_OLD=.gpu-kit/old/bench.mjs)
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
run() { # name seconds cmd...
  local name=$1 s=$2; shift 2
  timeout "$s" bash .gpu-kit/enter.sh "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"
  echo "$name rc=$?" >> "$OUT/$name.txt"
}
[ -f .gpu-kit/host-probe.mjs ] && run host-probe "${PROBE_S:-60}" node .gpu-kit/host-probe.mjs 100 && cat "$OUT/host-probe.txt"
OLD=${BENCH_OLD:-.gpu-kit/bench-old.mjs} # a bundle of another commit (with its own check-worker.js beside it)
if [ -f "$OLD" ] && [ "${AB_S:-90}" != 0 ]; then
  ARGS=${AB_ARGS:---models qwen3-30b-a3b,mixtral-8x7b,deepseek-v2-lite --tokens 1,16 --dtypes bf16 --iters 20 --stack 8}
  run ab-old "${AB_S:-90}" node "$OLD" $ARGS --json "$OUT/ab-old.json"
  run ab-new "${AB_S:-90}" node .gpu-kit/bench.mjs $ARGS --json "$OUT/ab-new.json"
  head -12 "$OUT/ab-old.txt"; head -12 "$OUT/ab-new.txt"
fi
[ -f .gpu-kit/gemv-bench.mjs ] && [ "${GEMV_S:-180}" != 0 ] && run gemv-bench "${GEMV_S:-180}" node .gpu-kit/gemv-bench.mjs ${GEMV_ARGS:-} && grep -v "^{" "$OUT/gemv-bench.txt" | cut -c1-200 | head -80
[ -f .gpu-kit/prefill-bench.mjs ] && [ "${PREFILL_S:-240}" != 0 ] && run prefill-bench "${PREFILL_S:-240}" node .gpu-kit/prefill-bench.mjs ${PREFILL_ARGS:-5} && grep -E " T=" "$OUT/prefill-bench.txt" | grep -v "^{" | cut -c1-170
true
