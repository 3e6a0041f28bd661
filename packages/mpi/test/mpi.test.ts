// The MPI transport, each rank its own process: the tests launch `mpiexec -n 2` and `-n 3` on the scripts in
// test/ranks (ranks check their own results against formulas and print one JSON line), plus the typed error when no libmpi loads and
// the fault cases (a rank that throws, a rank that is killed: every rank ends within seconds).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MpiError, loadLibMpi, localRankFromEnv, libmpiCandidates } from '../src/index.js';
import { launchMpi, requireMpi } from '../src/testing.js';

const RANKS = fileURLToPath(new URL('./ranks/', import.meta.url));
const pkg = fileURLToPath(new URL('..', import.meta.url));
// the rank scripts import the built package (@webmoe/mpi -> dist)
beforeAll(() => {
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
}, 300_000);

// Written reason for the skip below: without an MPI installation there is nothing to launch. CI installs
// mpich (scripts/setup-machine.sh) and sets CI=true, where requireMpi() throws instead.
const haveMpi = requireMpi();
const launch = (n: number, script: string, env: Record<string, string> = {}, timeoutMs = 60_000) => launchMpi(n, [RANKS + script], { env, timeoutMs });

describe('no libmpi', () => {
  it('throws MpiError NO_LIBMPI naming what was tried and what to install', () => {
    let err: unknown;
    try {
      loadLibMpi({ WEBMOE_LIBMPI: '/nonexistent/libmpi.so.40' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MpiError);
    expect((err as MpiError).code).toBe('NO_LIBMPI');
    expect((err as MpiError).message).toContain('/nonexistent/libmpi.so.40');
    expect((err as MpiError).message).toContain('apt install mpich');
    expect((err as MpiError).message).toContain('openmpi-bin');
  });

  it('tries the launcher\'s own library first (Open MPI exports OMPI_*, MPICH hydra PMI_*)', () => {
    expect(libmpiCandidates({})).toEqual(['libmpich.so.12', 'libmpi.so.40', 'libmpi_abi.so.0', 'libmpi_abi.so']);
    expect(libmpiCandidates({ OMPI_COMM_WORLD_SIZE: '2' })).toEqual(['libmpi.so.40', 'libmpich.so.12', 'libmpi_abi.so.0', 'libmpi_abi.so']);
    expect(libmpiCandidates({ PMI_RANK: '0' })[0]).toBe('libmpich.so.12');
  });

  it('reads the local rank from the launchers\' variables', () => {
    expect(localRankFromEnv({ OMPI_COMM_WORLD_LOCAL_RANK: '3' })).toBe(3);
    expect(localRankFromEnv({ MPI_LOCALRANKID: '1' })).toBe(1);
    expect(localRankFromEnv({ PMI_LOCAL_RANK: '2' })).toBe(2);
    expect(localRankFromEnv({})).toBeUndefined();
  });
});

describe.skipIf(!haveMpi)('mpiexec', () => {
  for (const n of [2, 3]) {
    it(`-n ${n}: allToAllv with uneven and empty blocks, allGatherv`, () => {
      const r = launch(n, 'collectives.mjs');
      expect(r.status, r.stderr).toBe(0);
      expect(r.lines.map((l) => l.rank).sort()).toEqual([...Array(n).keys()]);
      for (const l of r.lines) {
        expect(l.size).toBe(n);
        expect(l.errors).toEqual([]);
        expect(l.localRank).toBe(l.rank); // one host: local rank = rank
      }
    });
  }

  const FAULTS = { throw: 'throws', kill: 'is killed', exit3: 'exits with status 3', exit0: 'exits with status 0 (2 s exit timeout)' } as const;
  for (const fault of Object.keys(FAULTS) as (keyof typeof FAULTS)[]) {
    it(`-n 3: a rank that ${FAULTS[fault]} mid-run ends every rank (non-zero exit, no hang)`, () => {
      const r = launch(3, 'fault.mjs', { FAULT: fault, WEBMOE_MPI_EXIT_TIMEOUT_S: '2' }, 30_000);
      expect(r.signal, 'mpiexec had to be killed by the test timeout: a hang').toBeNull();
      expect(r.status).not.toBe(0);
      expect(r.lines.filter((l) => l.started).map((l) => l.rank).sort(), r.stderr).toEqual([0, 1, 2]); // every rank started MPI
      expect(r.lines.filter((l) => l.failing === fault).map((l) => l.rank), r.stderr).toEqual([1]); // rank 1 passed the first collective and failed
      expect(r.lines.filter((l) => l.reached)).toEqual([]);
      expect(r.ms).toBeLessThan(20_000);
    });
  }
});
