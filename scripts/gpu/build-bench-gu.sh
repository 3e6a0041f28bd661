#!/usr/bin/env bash
# Builds .gpu-kit/bench-gu-KERNEL.mjs for h200-s37.sh G: the bench with the int4 / MXFP4 one-row gate_up GEMVs that the
# staged rule takes (rows of 2880 columns and more: Mixtral, GPT-OSS) on KERNEL instead of 'rows2s' (plan.ts
# KERNEL_CROSSOVERS.gemvPackedKernel.byFormat's staged.oneRow; the down GEMVs keep staged.down), then plan.ts as it was
# (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs again.
#   bash scripts/gpu/build-bench-gu.sh KERNEL...
. "$(dirname "$0")/plan-variant.sh"
for kernel in "$@"; do
  python3 - "$plan" "$kernel" <<'PYEOF'
import sys
p, k = sys.argv[1], sys.argv[2]
s = open(p).read()
a = "staged: { minCols: 2880, oneRow: 'rows2s', down: 'rows8k4x' } },"
if s.count(a) != 2:
    sys.exit("build-bench-gu: plan.ts no longer holds the int4 and MXFP4 staged rules it edits")
open(p, 'w').write(s.replace(a, f"staged: {{ minCols: 2880, oneRow: '{k}', down: 'rows8k4x' }} }},"))
PYEOF
  bench_as "bench-gu-$kernel.mjs"
  grep -q "oneRow: \"$kernel\", down" ".gpu-kit/bench-gu-$kernel.mjs" && echo "bench-gu-$kernel.mjs built"
done
bench_planner
