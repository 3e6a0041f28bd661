#!/usr/bin/env bash
# Builds .gpu-kit/bench-NAME.mjs: the bench with the int4 / MXFP4 long-row rule (plan.ts KERNEL_CROSSOVERS
# .gemvPackedKernel.byFormat's longRows) set to { minCols: MINCOLS, oneRow: GATEUP, down: DOWN } for both formats (the
# one-row GEMVs of rows with at least MINCOLS columns on those kernels: gate_up on GATEUP, down on DOWN; MINCOLS 0:
# every one-row 4-bit GEMV), then plan.ts as it was (plan-variant.sh restores it, also on failure) and
# .gpu-kit/bench.mjs again. Session 37's build-bench-gu.sh was `build-bench-longrows.sh gu-KERNEL 2880 KERNEL rows8k4x`.
#   bash scripts/gpu/build-bench-longrows.sh NAME MINCOLS GATEUP DOWN
[ $# -eq 4 ] || { echo "usage: build-bench-longrows.sh NAME MINCOLS GATEUP DOWN" >&2; exit 2; }
name=$1 mincols=$2 gateup=$3 down=$4
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "$mincols" "$gateup" "$down" <<'PYEOF'
import re, sys
p, mc, gu, dn = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = open(p).read()
rule = re.compile(r"(      (?:int4|mxfp4): \{ oneRow: 'rows2i', moreRows: 'rows2i', )longRows: \{ minCols: \d+, oneRow: '\w+', down: '\w+' \} \},")
s, n = rule.subn(lambda m: f"{m.group(1)}longRows: {{ minCols: {mc}, oneRow: '{gu}', down: '{dn}' }} }},", s)
if n != 2:
    sys.exit("build-bench-longrows: plan.ts no longer holds the int4 and MXFP4 long-row rules it edits")
open(p, 'w').write(s)
PYEOF
bench_as "bench-$name.mjs"
grep -q "minCols: $mincols, oneRow: \"$gateup\", down: \"$down\"" ".gpu-kit/bench-$name.mjs" && echo "bench-$name.mjs built"
bench_planner
