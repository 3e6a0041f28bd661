#!/usr/bin/env bash
# Builds the bench with int4 and MXFP4 decode GEMVs on a staged-x kernel at more than one token row per pass too
# (plan.ts gemvPackedKernel.byFormat int4 / mxfp4 moreRows 'rows2s' -> .gpu-kit/bench-mr2s.mjs, 'rows4s' ->
# .gpu-kit/bench-mr4s.mjs), for h200-s34.sh m; plan.ts restored from a copy (also on failure) and .gpu-kit/bench.mjs
# built again from it. After build-kit.sh. The 4-bit slices of 4 token rows take 45 KB of workgroup memory: a GPU's
# 48 KiB holds them (a 32 KiB device would refuse these builds' T > 1 rows with a LimitError).
# Session 34's A/B: it edits the rule's `staged` entry (plan.ts before 6c276d8) and stops with its message on later
# ones (the entry is `longRows` since; build-bench-longrows.sh edits that one).
. "$(dirname "$0")/plan-variant.sh"
for k in rows2s rows4s; do
  python3 - "$plan" "$k" <<'PYEOF'
import sys
p, k = sys.argv[1], sys.argv[2]
s = open(p).read()
for f in ('int4', 'mxfp4'):
    a = f"      {f}: {{ oneRow: 'rows2i', moreRows: 'rows2i', staged: {{ minCols: 2880, oneRow: 'rows2s' }} }},"
    if s.count(a) != 1:
        sys.exit(f"build-bench-staged-rows: plan.ts no longer holds the rule it edits: {a}")
    s = s.replace(a, a.replace("moreRows: 'rows2i'", f"moreRows: '{k}'"))
open(p, 'w').write(s)
PYEOF
  bench_as "bench-mr${k#rows}.mjs"
done
bench_planner
grep -q "moreRows: \"rows4s\"" .gpu-kit/bench-mr4s.mjs && grep -q "moreRows: \"rows2s\"" .gpu-kit/bench-mr2s.mjs && ! grep -q "moreRows: \"rows[24]s\"" .gpu-kit/bench.mjs && echo "bench-mr2s.mjs, bench-mr4s.mjs and bench.mjs built"
