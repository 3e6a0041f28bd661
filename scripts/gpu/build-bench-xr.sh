#!/usr/bin/env bash
# Builds .gpu-kit/bench-xr.mjs for h200-s36.sh L: the bench with every packed one-row decode GEMV on the x-in-registers
# kernel KERNEL (default rows8k4x; plan.ts KERNEL_CROSSOVERS.gemvPackedKernel: oneRow, and the int4 / MXFP4 oneRow and
# longRows oneRow and down), then plan.ts as it was (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs again.
#   bash scripts/gpu/build-bench-xr.sh [KERNEL]
kernel=${1:-rows8k4x}
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "$kernel" <<'PYEOF'
import sys
sys.path.insert(0, 'scripts/gpu')
from exact_edits import apply
p, k = sys.argv[1], sys.argv[2]
apply(p, [
    ("  gemvPackedKernel: {\n    oneRow: 'rows2',", f"  gemvPackedKernel: {{\n    oneRow: '{k}',"),
    ("      int4: { oneRow: 'rows2i', moreRows: 'rows2i', longRows: { minCols: 2880, oneRow: 'rows4x', down: 'rows8k4x' } },", f"      int4: {{ oneRow: '{k}', moreRows: 'rows2i', longRows: {{ minCols: 2880, oneRow: '{k}', down: '{k}' }} }},"),
    ("      mxfp4: { oneRow: 'rows2i', moreRows: 'rows2i', longRows: { minCols: 2880, oneRow: 'rows4x', down: 'rows8k4x' } },", f"      mxfp4: {{ oneRow: '{k}', moreRows: 'rows2i', longRows: {{ minCols: 2880, oneRow: '{k}', down: '{k}' }} }},"),
], 'build-bench-xr')
PYEOF
bench_as bench-xr.mjs
bench_planner
grep -q "oneRow: \"$kernel\"" .gpu-kit/bench-xr.mjs && ! grep -q "oneRow: \"$kernel\"" .gpu-kit/bench.mjs && echo "bench-xr.mjs ($kernel) and bench.mjs built"
