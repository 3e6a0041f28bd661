#!/usr/bin/env bash
# The bytes a device call carries: the working tree (tracked and untracked-not-ignored files) plus .gpu-kit, against
# the run tool's 64 MiB. Session 34: 62.1 MiB went through, 63.2 MiB was refused as "larger than 64 MiB" (the tool
# counts more than these bytes), so this says "over" past 62 MiB. Exit status 1 when over.
#   bash scripts/gpu/kit-size.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
kit=$(du -sb .gpu-kit 2>/dev/null | cut -f1)
kit=${kit:-0}
limit=$((62 * 1024 * 1024))
total=$((tree + kit))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "carried: tree $(mib "$tree") + .gpu-kit $(mib "$kit") = $(mib "$total") (working limit $(mib "$limit"))"
if [ "$total" -gt "$limit" ]; then
  echo "over by $(mib $((total - limit))): move bundles this call does not run out of .gpu-kit (bench-old.mjs, gpu-tests.mjs, prefill-bench.mjs, ...)" >&2
  exit 1
fi
