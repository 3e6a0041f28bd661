# Sourced by the bench-variant builders (build-bench-xs.sh, build-bench-staged-rows.sh, build-bench-xs-first.sh,
# build-bench-xr.sh, build-bench-longrows.sh), which edit the planner for a build: from the repository root, $plan
# (plan.ts) copied to $backup and restored from it when the builder exits, also on failure; bench_as and bench_planner
# bundle the builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
plan=packages/kernels-wgsl/src/kernels/plan.ts
backup=$(mktemp)
cp "$plan" "$backup"
trap 'cp "$backup" "$plan"; rm -f "$backup"' EXIT
# bench_as OUT: the bench bundled from plan.ts as the builder edited it, as .gpu-kit/OUT; then plan.ts as it was
bench_as() {
  pnpm --filter @webmoe/bench bundle:gpu > /dev/null
  mv .gpu-kit/bench.mjs ".gpu-kit/$1"
  cp "$backup" "$plan"
}
# bench_planner: .gpu-kit/bench.mjs bundled again from plan.ts as it was
bench_planner() {
  cp "$backup" "$plan"
  pnpm --filter @webmoe/bench bundle:gpu > /dev/null
}
