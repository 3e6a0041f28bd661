#!/usr/bin/env bash
# Builds .gpu-kit/bench-lingemv.mjs: the bench with the router linear of at most 4 tokens on the GEMV path (a workgroup
# per token and output, 256 lanes over K: Qwen3-30B's 128 router outputs at T = 1 in 128 workgroups) instead of the
# skinny kernel (a workgroup per 8 outputs: 16 workgroups), then plan.ts as it was (plan-variant.sh restores it, also
# on failure) and .gpu-kit/bench.mjs from it again. A measurement build: the GEMV path is the planner's own for other
# shapes (linear.gpu.test.ts runs it on every dtype).
#   bash scripts/gpu/build-bench-lingemv.sh
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" <<'PYEOF'
import sys
sys.path.insert(0, 'scripts/gpu')
from exact_edits import apply
apply(sys.argv[1], [(
    "  if (N <= skinny.maxOutputs && (N <= skinny.narrowOutputs || T * N <= skinny.maxTokenOutputs)) return 'skinny';\n",
    "  if (T <= 4) return 'gemv';\n"
    "  if (N <= skinny.maxOutputs && (N <= skinny.narrowOutputs || T * N <= skinny.maxTokenOutputs)) return 'skinny';\n",
)], 'build-bench-lingemv')
PYEOF
bench_as bench-lingemv.mjs
bench_planner
grep -q "if (T <= 4) return \"gemv\"" .gpu-kit/bench-lingemv.mjs && ! grep -q "if (T <= 4) return \"gemv\"" .gpu-kit/bench.mjs && echo ".gpu-kit/bench-lingemv.mjs and .gpu-kit/bench.mjs built"
