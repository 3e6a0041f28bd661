#!/usr/bin/env bash
# Builds .gpu-kit/bench-xs.mjs for h200-s33.sh d: the bench with every one-row decode GEMV on the staged-x kernel
# 'rows2s' (plan.ts: gemvPackedKernel oneRow and byFormat int4 / MXFP4 oneRow, and gemvDenseKernelFor's 'rows2'), then
# plan.ts as it was (restored from a copy, also on failure) and .gpu-kit/bench.mjs built again from it. After
# build-kit.sh. Keep the kit and the tree under 64 MiB (drop bench-old.mjs / prefill-small-probe.mjs where needed).
# Session 33's A/B: it edits plan.ts as of bf9b375 and stops with its message on later ones (session 34 wrote the
# int4 / MXFP4 rule with a `staged` entry; scripts/gpu/build-bench-staged-rows.sh edits that one).
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
for a, b in [
    ("    oneRow: 'rows2',\n    moreRows: 'rows4',\n    byFormat: { int4: { oneRow: 'rows2i', moreRows: 'rows2i' }, mxfp4: { oneRow: 'rows2i', moreRows: 'rows2i' } },",
     "    oneRow: 'rows2s',\n    moreRows: 'rows4',\n    byFormat: { int4: { oneRow: 'rows2s', moreRows: 'rows2i' }, mxfp4: { oneRow: 'rows2s', moreRows: 'rows2i' } },"),
    ("  return T * k <= c.rows2MaxPairs ? 'rows2' : 'rows4';", "  return T * k <= c.rows2MaxPairs ? 'rows2s' : 'rows4';"),
]:
    if s.count(a) != 1:
        sys.exit(f"build-bench-xs: plan.ts no longer holds the rule it edits: {a[:60]}...")
    s = s.replace(a, b)
open(p, 'w').write(s)
PYEOF
bench_as bench-xs.mjs
bench_planner
grep -c "oneRow: \"rows2s\"" .gpu-kit/bench-xs.mjs > /dev/null && ! grep -q "oneRow: \"rows2s\"" .gpu-kit/bench.mjs && echo "bench-xs.mjs and bench.mjs built"
