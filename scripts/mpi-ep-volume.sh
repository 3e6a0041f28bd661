#!/usr/bin/env bash
# Bytes one expert-parallel MoE step moves between ranks on the HF fixtures, over MPI (CPU shards):
#   bash scripts/mpi-ep-volume.sh 2      (after pnpm build; needs mpiexec)
# Sums every rank's EPRankStats per fixture: the token-deduplicated dispatch this code sends (one record
# of H f32 + k u32 + k f32 per token and destination rank), the f32 partials of the combine, and what a
# once-per-(token, slot) dispatch would have sent (H f32 + one u32 expert id per remote pair).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
mpiexec -n "$n" node packages/moe/test/mpi-ranks/moe-ep.mjs | node -e '
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l.startsWith("{")).map(JSON.parse).filter((l) => l.stats);
const by = new Map();
for (const l of lines) { const a = by.get(l.case) ?? { T: l.T, H: l.H, k: l.k, d: 0, c: 0, rows: 0, pairs: 0 }; a.d += l.stats.dispatchBytes; a.c += l.stats.combineBytes; a.rows += l.stats.rowsSent; a.pairs += l.stats.remotePairs; by.set(l.case, a); }
console.log(`EP over ${process.argv[1]} ranks | T | H | k | dispatch B (dedup) | combine B | per-pair dispatch B | dedup / per-pair`);
for (const [c, a] of by) { const pp = a.pairs * (a.H * 4 + 4); console.log(`${c} | ${a.T} | ${a.H} | ${a.k} | ${a.d} | ${a.c} | ${pp} | ${pp ? (a.d / pp).toFixed(3) : "-"}`); }
' "$n"
