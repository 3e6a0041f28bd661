# Sourced by the h200-*.sh call scripts: PB NAME MAX_S TIMEOUT_S ARGS... runs the kit's prefill-bench (or the bundle
# $PBIN names) with a time budget of MAX_S seconds under a TIMEOUT_S timeout, writes $OUT/NAME.txt and prints its
# result lines (per-T rows, rows per expert with random routing, WRONG flags, the exit status).
PB() {
  local name=$1 maxs=$2 to=$3
  shift 3
  PREFILL_BENCH_MAX_S=$maxs timeout "$to" bash .gpu-kit/enter.sh node ".gpu-kit/${PBIN:-prefill-bench}.mjs" "$@" > "$OUT/$name.txt" 2>&1
  echo "prefill rc=$?" >> "$OUT/$name.txt"
  grep -E "T=[0-9]+:|rows per|WRONG|rc=" "$OUT/$name.txt" | cut -c1-400
}
