#!/usr/bin/env bash
# Builds .gpu-kit/bench-gu-KERNEL.mjs for h200-s37.sh G: the bench with the int4 / MXFP4 one-row gate_up GEMVs that the
# long-row rule takes (rows of 2880 columns and more: Mixtral, GPT-OSS) on KERNEL instead of the planner's (plan.ts
# KERNEL_CROSSOVERS.gemvPackedKernel.byFormat's longRows.oneRow, 'rows2s' in session 37's call 7, 'rows4x' since; the
# down GEMVs keep longRows.down), then plan.ts as it was
# (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs again.
#   bash scripts/gpu/build-bench-gu.sh KERNEL...
. "$(dirname "$0")/plan-variant.sh"
for kernel in "$@"; do
  python3 - "$plan" "$kernel" <<'PYEOF'
import sys
p, k = sys.argv[1], sys.argv[2]
s = open(p).read()
a = "longRows: { minCols: 2880, oneRow: 'rows4x', down: 'rows8k4x' } },"
if s.count(a) != 2:
    sys.exit("build-bench-gu: plan.ts no longer holds the int4 and MXFP4 long-row rules it edits")
open(p, 'w').write(s.replace(a, f"longRows: {{ minCols: 2880, oneRow: '{k}', down: 'rows8k4x' }} }},"))
PYEOF
  bench_as "bench-gu-$kernel.mjs"
  grep -q "oneRow: \"$kernel\", down" ".gpu-kit/bench-gu-$kernel.mjs" && echo "bench-gu-$kernel.mjs built"
done
bench_planner
