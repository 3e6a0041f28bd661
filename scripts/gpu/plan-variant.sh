# Sourced by the bench-variant builders (build-bench-xs.sh, build-bench-staged-rows.sh, build-bench-xs-first.sh,
# build-bench-xr.sh, build-bench-longrows.sh, build-bench-lin.sh; build-bench-rdplain.sh and build-bench-rot.sh with
# VARIANT_SOURCE), which edit one source file for a build, the planner unless VARIANT_SOURCE names another: from the
# repository root, $plan (that file) copied to $backup and restored from it when the builder exits, also on failure;
# bench_as and bench_planner bundle the builds (the bench bundles the packages' sources).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
plan=${VARIANT_SOURCE:-packages/kernels-wgsl/src/kernels/plan.ts}
backup=$(mktemp)
cp "$plan" "$backup"
trap 'cp "$backup" "$plan"; rm -f "$backup"' EXIT
# bench_as OUT: the bench bundled from the file as the builder edited it, as .gpu-kit/OUT; then the file as it was
bench_as() {
  pnpm --filter @webmoe/bench bundle:gpu > /dev/null
  mv .gpu-kit/bench.mjs ".gpu-kit/$1"
  cp "$backup" "$plan"
}
# bench_planner: .gpu-kit/bench.mjs bundled again from the file as it was
bench_planner() {
  cp "$backup" "$plan"
  pnpm --filter @webmoe/bench bundle:gpu > /dev/null
}
