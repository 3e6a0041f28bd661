#!/usr/bin/env bash
# Builds .gpu-kit/bench-rot18.mjs: the bench with route_decode's router linear reading each row's chunks rotated by
# the row (row r starts at chunk r * lanes mod kc: one step's loads of a group's rows at different offsets within their
# rows; the same offset in every row is the candidate cause of one SM reading router weights at ~5 GB/s in session
# 39's call 1), with the GPU rule at 2^18 weights (build-bench-lin.sh 18), then route-decode.ts as it was
# (plan-variant.sh restores it, also on failure) and .gpu-kit/bench.mjs from it again. Checked on lavapipe in session 39 (route-linear.gpu.test.ts:
# 10 passed with the edit); not yet measured on a GPU. With CHECK=1 it runs that test on the edited source first.
#   bash scripts/gpu/build-bench-rot.sh             # bench-rot18.mjs
#   UNROLL=2 bash scripts/gpu/build-bench-rot.sh    # bench-rot18u2.mjs: two chunks a step (see below)
VARIANT_SOURCE=packages/kernels-wgsl/src/kernels/route-decode.ts
. "$(dirname "$0")/plan-variant.sh"
python3 - "$plan" "${UNROLL:-1}" <<'PYEOF'
import sys
sys.path.insert(0, 'scripts/gpu')
from exact_edits import apply
edits = [
    ("  const product = (j: number) => (lin.linVec4 ? `dot(x, ldw4(r${j} + q))` : `x * ldw(r${j} + q)`);\n",
     "  const product = (j: number) =>\n"
     "    `{ let c = select(q + o${j}, q + o${j} - u.kc, q + o${j} >= u.kc); a${j} += ${lin.linVec4 ? `dot(X[c], ldw4(r${j} + c))` : `X[c] * ldw(r${j} + c)`}; }`;\n"),
    ("${js.map((j) => `  let r${j} = min(g + ${j * G}u, u.E - 1u) * u.kc; var a${j} = 0.0;`).join('\\n')}\n",
     "${js.map((j) => `  let e${j} = min(g + ${j * G}u, u.E - 1u); let r${j} = e${j} * u.kc; let o${j} = (e${j} * ${lanes}u) % u.kc; var a${j} = 0.0;`).join('\\n')}\n"),
    ("    let x = X[q];\n${js.map((j) => `    a${j} += ${product(j)};`).join('\\n')}\n",
     "${js.map((j) => `    ${product(j)}`).join('\\n')}\n"),
]
if sys.argv[2] == '2':
    # UNROLL=2: each lane's step loads two chunks of its rows (the second clamped into the row, its products added only
    # where it is the lane's): twice the loads in flight per step, half the steps
    edits += [
        ("  const pass = (p: number) => {\n",
         "  const product2 = (j: number) => product(j).replace(`a${j} += `, `a${j} += select(0.0, `).replace(/; }$/, ', more); }');\n"
         "  const pass = (p: number) => {\n"),
        ("  for (var q = i; q < u.kc; q += ${lanes}u) {\n${js.map((j) => `    ${product(j)}`).join('\\n')}\n  }\n",
         "  for (var q0 = i; q0 < u.kc; q0 += ${2 * lanes}u) {\n"
         "    let q = q0;\n"
         "${js.map((j) => `    ${product(j)}`).join('\\n')}\n"
         "    {\n"
         "      let q = min(q0 + ${lanes}u, u.kc - 1u);\n"
         "      let more = q0 + ${lanes}u < u.kc;\n"
         "${js.map((j) => `      ${product2(j)}`).join('\\n')}\n"
         "    }\n"
         "  }\n"),
    ]
apply(sys.argv[1], edits, 'build-bench-rot')
PYEOF
if [ "${CHECK:-0}" = 1 ]; then
  pnpm --filter @webmoe/kernels-wgsl build > /dev/null
  (cd packages/kernels-wgsl && XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-runtime} CI=true npx vitest run test/route-linear.gpu.test.ts 2>&1 | tail -4)
fi
out=bench-rot18$([ "${UNROLL:-1}" = 2 ] && echo u2 || true).mjs
bash scripts/gpu/build-bench-lin.sh 18
mv .gpu-kit/bench-lin18.mjs ".gpu-kit/$out"
bench_planner
[ "${CHECK:-0}" = 1 ] && pnpm --filter @webmoe/kernels-wgsl build > /dev/null
grep -q -- '- u.kc, q + o' ".gpu-kit/$out" && ! grep -q -- '- u.kc, q + o' .gpu-kit/bench.mjs && echo "$out and bench.mjs built"
