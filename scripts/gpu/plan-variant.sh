# Sourced by the bench-variant builders (build-bench-xs.sh, build-bench-staged-rows.sh), which edit the planner for a
# build: from the repository root, $plan (plan.ts) copied to $backup and restored from it when the builder exits, also
# on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
plan=packages/kernels-wgsl/src/kernels/plan.ts
backup=$(mktemp)
cp "$plan" "$backup"
trap 'cp "$backup" "$plan"; rm -f "$backup"' EXIT
