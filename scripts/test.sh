#!/usr/bin/env bash
# The README's test command: sets up a fresh machine (lavapipe, pnpm,
# chromium), installs, builds, checks that no package's sources import each
# other in a circle (scripts/check-cycles.mjs), that the GPU test files use
# only what the GPU bundle's vitest shim defines (scripts/check-gpu-shim.mjs)
# and that the committed API
# reports api/*.api.md match the built declarations (scripts/api-report.mjs),
# checks the packages as a consumer gets them
# (scripts/consumer-check.sh) and runs every package's tests, the browser
# test included. With CI=true, GPU tests fail when no WebGPU adapter exists.
#
# Skipping untouched packages: with WEBMOE_CI_BASE=<commit> (an ancestor of
# HEAD, e.g. the last commit whose CI passed), only the packages changed
# since that commit and the packages depending on them run their tests,
# unless a file outside packages/ and apps/ changed (a root config, the
# lockfile, scripts/), which runs everything. Without a base, or when the
# base is unknown to this clone, every package runs: a clean clone of main
# cannot tell on its own which commits were already tested.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime}
mkdir -p "$XDG_RUNTIME_DIR"
pnpm install --frozen-lockfile
pnpm build
node scripts/check-cycles.mjs
node scripts/check-gpu-shim.mjs
node scripts/api-report.mjs
bash scripts/consumer-check.sh
filter=()
base=${WEBMOE_CI_BASE:-}
if [ -n "$base" ] && git rev-parse -q --verify "$base^{commit}" >/dev/null && git merge-base --is-ancestor "$base" HEAD; then
  outside=$(git diff --name-only "$base" HEAD | grep -Ev '^(packages|apps)/|^docs/|\.md$' || true)
  if [ -n "$outside" ]; then
    echo "test: files outside the packages changed since $base ($(echo "$outside" | head -3 | tr '\n' ' ')...): every package"
  else
    filter=("--filter=...[$base]")
    echo "test: only packages changed since $base and their dependents"
  fi
else
  echo "test: ${base:+base $base not found in this clone; }every package (set WEBMOE_CI_BASE to a tested ancestor commit to skip untouched ones)"
fi
pnpm test "${filter[@]}"
pnpm test:browser
