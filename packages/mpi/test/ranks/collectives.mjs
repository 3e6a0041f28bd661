// One MPI rank (run under `mpiexec -n N node collectives.mjs`): allToAllv with uneven and empty blocks,
// allGatherv with uneven and empty parts. Every expected byte is a formula of (src, dst, i), so each rank
// checks what it received without trusting the sender's code. Prints one JSON line; exit 1 on a mismatch.
import { createMpiTransport } from '@webmoe/mpi';

const tr = createMpiTransport();
const { rank, size: n } = tr;
// block src -> dst: (src * 3 + dst * 5) % 4 bytes (0 for some pairs, including self blocks), byte i = src*37 + dst*11 + i
const len = (src, dst) => (src * 3 + dst * 5) % 4;
const byte = (src, dst, i) => (src * 37 + dst * 11 + i) & 0xff;
const counts = Array.from({ length: n }, (_, d) => len(rank, d));
const send = new Uint8Array(counts.reduce((a, b) => a + b, 0));
let w = 0;
for (let d = 0; d < n; d++) for (let i = 0; i < counts[d]; i++) send[w++] = byte(rank, d, i);
const errors = [];
const { recv, recvCounts } = await tr.allToAllv(send, counts);
let r = 0;
for (let s = 0; s < n; s++) {
  if (recvCounts[s] !== len(s, rank)) errors.push(`allToAllv recvCounts[${s}] = ${recvCounts[s]}, expected ${len(s, rank)}`);
  for (let i = 0; i < len(s, rank); i++, r++) if (recv[r] !== byte(s, rank, i)) errors.push(`allToAllv byte ${i} from ${s} = ${recv[r]}, expected ${byte(s, rank, i)}`);
}
if (recv.byteLength !== r) errors.push(`allToAllv received ${recv.byteLength} bytes, expected ${r}`);
// an all-empty exchange
const empty = await tr.allToAllv(new Uint8Array(0), Array(n).fill(0));
if (empty.recv.byteLength !== 0 || empty.recvCounts.some((c) => c !== 0)) errors.push('empty allToAllv returned data');
// allGatherv: rank s sends s * 2 bytes (rank 0 nothing), byte i = s * 19 + i
const parts = await tr.allGatherv(Uint8Array.from({ length: rank * 2 }, (_, i) => rank * 19 + i));
if (parts.length !== n) errors.push(`allGatherv returned ${parts.length} parts, expected ${n}`);
parts.forEach((p, s) => {
  if (p.byteLength !== s * 2) errors.push(`allGatherv part ${s} has ${p.byteLength} bytes, expected ${s * 2}`);
  p.forEach((b, i) => b !== ((s * 19 + i) & 0xff) && errors.push(`allGatherv part ${s} byte ${i} = ${b}`));
});
console.log(JSON.stringify({ rank, size: n, implementation: tr.implementation, localRank: tr.localRank, received: recv.byteLength, errors }));
process.exitCode = errors.length ? 1 : 0;
