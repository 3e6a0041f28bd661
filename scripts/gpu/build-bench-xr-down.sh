#!/usr/bin/env bash
# Builds .gpu-kit/bench-xrd.mjs for h200-s37.sh D: the bench with the down GEMV of int4 / MXFP4 weights at one token row
# per pass on the x-in-registers kernel KERNEL (default rows8k4x; gemv-bench, session 37 call 1: faster than the
# planner's on every down GEMV measured, slower on gate_up), gate_up and the other formats on the planner's kernels; then
# moe-gemv.ts as it was (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs again.
#   bash scripts/gpu/build-bench-xr-down.sh [KERNEL]
kernel=${1:-rows8k4x}
PLAN_FILE=moe-gemv.ts
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "$kernel" <<'PYEOF'
import sys
p, k = sys.argv[1], sys.argv[2]
s = open(p).read()
a = "plannedKernel(mrRows, slots, chunks[0].gw, nout, { software: ctx.adapterInfo.software, workgroupBytes: ctx.limits.maxComputeWorkgroupStorageSize }));"
b = f"(mode === 'down' && mrRows === 1 && (chunks[0].gw.wfmt === 'int4' || chunks[0].gw.wfmt === 'mxfp4') ? '{k}' : plannedKernel(mrRows, slots, chunks[0].gw, nout, {{ software: ctx.adapterInfo.software, workgroupBytes: ctx.limits.maxComputeWorkgroupStorageSize }})));"
if s.count(a) != 1:
    sys.exit("build-bench-xr-down: moe-gemv.ts no longer holds the call it edits")
open(p, 'w').write(s.replace(a, b))
PYEOF
bench_as bench-xrd.mjs
bench_planner
grep -q "mode === \"down\" && mrRows === 1" .gpu-kit/bench-xrd.mjs && ! grep -q "mode === \"down\" && mrRows === 1" .gpu-kit/bench.mjs && echo "bench-xrd.mjs ($kernel on int4 / MXFP4 down GEMVs) and bench.mjs built"
