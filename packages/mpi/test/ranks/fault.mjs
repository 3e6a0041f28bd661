// One MPI rank that fails mid-run: FAULT=throw makes rank 1 throw an uncaught error after the first
// collective (the transport's handler calls MPI_Abort), FAULT=kill makes rank 1 SIGKILL itself,
// FAULT=exit3 / exit0 make it call process.exit(3) / process.exit(0) (the exit hook aborts at once /
// after WEBMOE_MPI_EXIT_TIMEOUT_S seconds of waiting for the others at their exit). The other
// ranks block in the next collective; the launcher must end them (the test bounds the wall time).
// Lines go out with writeSync so that they survive the abort (piped stdout is asynchronous in Node).
import { writeSync } from 'node:fs';
import { createMpiTransport } from '@webmoe/mpi';

const say = (o) => writeSync(1, JSON.stringify(o) + '\n');
const tr = createMpiTransport();
say({ rank: tr.rank, started: true }); // before the collective: a rank may be ended right after it
await tr.allGatherv(Uint8Array.of(tr.rank));
if (tr.rank === 1) {
  say({ rank: tr.rank, failing: process.env.FAULT });
  if (process.env.FAULT === 'kill') process.kill(process.pid, 'SIGKILL');
  else if (process.env.FAULT === 'exit3') process.exit(3);
  else if (process.env.FAULT === 'exit0') process.exit(0);
  else throw new Error('rank 1 fails on purpose');
}
await tr.allGatherv(Uint8Array.of(tr.rank)); // rank 1 never arrives
say({ rank: tr.rank, reached: 'after the collective (should not happen)' });
