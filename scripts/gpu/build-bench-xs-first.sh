#!/usr/bin/env bash
# Builds the bench variants of h200-s36.sh l: .gpu-kit/bench-xsfirst.mjs with GPUs' staged-x decode GEMVs issuing each
# lane's code and scale loads before the slice's x copy (KERNEL_CROSSOVERS.stagedXLoadsFirst.gpu true), and
# .gpu-kit/bench-pf.mjs with GPUs' row-blocked GEMVs loading each lane's next step before the current one decodes
# (KERNEL_CROSSOVERS.gemvPrefetchCodes.gpu true); then plan.ts as it was (plan-variant.sh restores it, also on failure)
# and .gpu-kit/bench.mjs built again from it.
. "$(dirname "$0")/plan-variant.sh"
variant() { # RULE OUT: the bench with KERNEL_CROSSOVERS.RULE's gpu entry true, as .gpu-kit/OUT
  python3 - "$plan" "$1" <<'PYEOF'
import sys
p, rule = sys.argv[1], sys.argv[2]
s = open(p).read()
a = f"  {rule}: {{ gpu: false, software: false }}"
if s.count(a) != 1:
    sys.exit("build-bench-xs-first: plan.ts no longer holds the rule it edits: " + a)
open(p, 'w').write(s.replace(a, f"  {rule}: {{ gpu: true, software: false }}"))
PYEOF
  bench_as "$2"
  grep -q "$1: { gpu: true" ".gpu-kit/$2"
}
variant stagedXLoadsFirst bench-xsfirst.mjs
variant gemvPrefetchCodes bench-pf.mjs
bench_planner
grep -q "stagedXLoadsFirst: { gpu: false" .gpu-kit/bench.mjs && grep -q "gemvPrefetchCodes: { gpu: false" .gpu-kit/bench.mjs && echo "bench-xsfirst.mjs, bench-pf.mjs and bench.mjs built"
