#!/usr/bin/env bash
# Builds .gpu-kit/bench-NAME.mjs: the bench with the int4 / MXFP4 long-row rule (plan.ts KERNEL_CROSSOVERS
# .gemvPackedKernel.byFormat's longRows) set to { minCols: MINCOLS, oneRow: GATEUP, down: DOWN } for both formats (the
# one-row GEMVs of rows with at least MINCOLS columns on those kernels: gate_up on GATEUP, down on DOWN; MINCOLS 0:
# every one-row 4-bit GEMV), then plan.ts as it was (plan-variant.sh restores it, also on failure) and
# .gpu-kit/bench.mjs again. Session 37's build-bench-gu.sh was `build-bench-longrows.sh gu-KERNEL 2880 KERNEL rows8k4x`.
# FORMATS (default int4,mxfp4): the formats given the rule; fp8_e4m3, which has no entry of its own, gets one (its
# short-row kernels the rule's defaults, 'rows2' / 'rows4') with the long-row rule.
#   bash scripts/gpu/build-bench-longrows.sh NAME MINCOLS GATEUP DOWN [FORMATS]
[ $# -eq 4 ] || [ $# -eq 5 ] || { echo "usage: build-bench-longrows.sh NAME MINCOLS GATEUP DOWN [FORMATS]" >&2; exit 2; }
name=$1 mincols=$2 gateup=$3 down=$4 formats=${5:-int4,mxfp4}
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "$mincols" "$gateup" "$down" "$formats" <<'PYEOF'
import re, sys
p, mc, gu, dn, fmts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(',')
s = open(p).read()
new = f"longRows: {{ minCols: {mc}, oneRow: '{gu}', down: '{dn}' }} }},"
for f in fmts:
    if f == 'fp8_e4m3':
        anchor = re.search(r"\n      mxfp4: \{ oneRow: 'rows2i', [^\n]*\n", s)
        if not anchor or 'fp8_e4m3: { oneRow' in s[anchor.start() - 400:anchor.end() + 200]:
            sys.exit("build-bench-longrows: plan.ts no longer holds the MXFP4 rule the fp8 entry goes after")
        s = s[:anchor.end()] + f"      fp8_e4m3: {{ oneRow: 'rows2', moreRows: 'rows4', {new}\n" + s[anchor.end():]
        continue
    rule = re.compile(r"(      " + f + r": \{ oneRow: 'rows2i', moreRows: 'rows2i', )longRows: \{ minCols: \d+, oneRow: '\w+', down: '\w+' \} \},")
    s, n = rule.subn(lambda m: m.group(1) + new, s)
    if n != 1:
        sys.exit(f"build-bench-longrows: plan.ts no longer holds the {f} long-row rule it edits")
open(p, 'w').write(s)
PYEOF
bench_as "bench-$name.mjs"
grep -q "minCols: $mincols, oneRow: \"$gateup\", down: \"$down\"" ".gpu-kit/bench-$name.mjs" && echo "bench-$name.mjs built"
bench_planner
