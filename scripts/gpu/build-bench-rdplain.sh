#!/usr/bin/env bash
# Builds .gpu-kit/bench-rdplain.mjs and .gpu-kit/decode-probe-rdplain.mjs: the one-token route_decode writing the
# grouping's per-expert counts C with plain stores (C bound as array<u32> in that variant) instead of one atomicStore per
# expert, the candidate of session 38's --cuts run (the one-token grouping cost grew with E: +3 / +9.8 / +22 us for
# E = 8 / 128 / 256 at slow clocks; atomic stores to consecutive words may serialise per cache line). Then
# route-decode.ts as it was (restored also on failure) and .gpu-kit/bench.mjs, .gpu-kit/decode-probe.mjs again.
# With CHECK=1 it runs the routing and grouping GPU tests (lavapipe) on the edited source before restoring it.
# Edits route-decode.ts as it was before fa21b1c (session 39: its signature block changed; measured level then, not
# taken), so it stops there with the text it no longer finds.
#   bash scripts/gpu/build-bench-rdplain.sh
VARIANT_SOURCE=packages/kernels-wgsl/src/kernels/route-decode.ts
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" <<'PYEOF'
import sys
sys.path.insert(0, 'scripts/gpu')
from exact_edits import apply
apply(sys.argv[1], [
    ("    atomicStore(&C[e], hit);\n", "    C[e] = hit;\n"),
    ("      bindings: [...routerBindings(v), ...groupDecodeBindings('read_write').filter((b) => b.name !== 'IDX')],",
     "      bindings: [...routerBindings(v), ...groupDecodeBindings('read_write').filter((b) => b.name !== 'IDX').map((b) => (v.one && b.name === 'C' ? { ...b, type: 'array<u32>' } : b))],"),
], 'build-bench-rdplain')
PYEOF
if [ "${CHECK:-0}" = 1 ]; then
  pnpm --filter @webmoe/kernels-wgsl build > /dev/null
  (cd packages/kernels-wgsl && XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime} CI=true npx vitest run test/decode-grouping.gpu.test.ts test/router.gpu.test.ts test/grouping.gpu.test.ts 2>&1 | tail -4)
fi
pnpm --filter @webmoe/bench bundle:gpu > /dev/null
mv .gpu-kit/bench.mjs .gpu-kit/bench-rdplain.mjs
node scripts/gpu/build-one.mjs scripts/gpu/decode-probe.ts .gpu-kit/decode-probe-rdplain.mjs
cp "$backup" "$plan"
[ "${CHECK:-0}" = 1 ] && pnpm --filter @webmoe/kernels-wgsl build > /dev/null
pnpm --filter @webmoe/bench bundle:gpu > /dev/null
node scripts/gpu/build-one.mjs scripts/gpu/decode-probe.ts .gpu-kit/decode-probe.mjs
grep -q "C\[e\] = hit;" .gpu-kit/bench-rdplain.mjs && ! grep -q "C\[e\] = hit;" .gpu-kit/bench.mjs && echo "bench-rdplain.mjs, decode-probe-rdplain.mjs and bench.mjs, decode-probe.mjs built"
