#!/usr/bin/env bash
# Builds .gpu-kit/bench-xsfirst.mjs for h200-s36.sh l: the bench with GPUs' staged-x decode GEMVs issuing each lane's
# code and scale loads before the slice's x copy (plan.ts KERNEL_CROSSOVERS.stagedXLoadsFirst.gpu true), then plan.ts
# as it was (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs built again from it.
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
a = "  stagedXLoadsFirst: { gpu: false, software: false }"
if s.count(a) != 1:
    sys.exit("build-bench-xs-first: plan.ts no longer holds the rule it edits: " + a)
open(p, 'w').write(s.replace(a, "  stagedXLoadsFirst: { gpu: true, software: false }"))
PYEOF
pnpm --filter @webmoe/bench bundle:gpu > /dev/null
mv .gpu-kit/bench.mjs .gpu-kit/bench-xsfirst.mjs
cp "$backup" "$plan"
pnpm --filter @webmoe/bench bundle:gpu > /dev/null
grep -q "stagedXLoadsFirst: { gpu: true" .gpu-kit/bench-xsfirst.mjs && grep -q "stagedXLoadsFirst: { gpu: false" .gpu-kit/bench.mjs && echo "bench-xsfirst.mjs and bench.mjs built"
