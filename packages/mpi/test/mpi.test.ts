// The MPI transport and the expert-parallel MoE over it, each rank its own process: the tests launch
// `mpiexec -n 2` and `-n 3` on the scripts in test/ranks (ranks check their own results against formulas or
// the unsharded layer and print one JSON line per check), plus the typed error when no libmpi loads and
// the fault cases (a rank that throws, a rank that is killed: every rank ends within seconds).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MpiError, loadLibMpi, localRankFromEnv } from '../src/index.js';

const RANKS = fileURLToPath(new URL('./ranks/', import.meta.url));

/** mpiexec's version line, or undefined when it is not installed. */
function mpiexecVersion(): string | undefined {
  const r = spawnSync('mpiexec', ['--version'], { encoding: 'utf8' });
  return r.error ? undefined : r.stdout + r.stderr;
}
const version = mpiexecVersion();
// Written reason for the skip: without an MPI installation there is nothing to launch. CI installs mpich
// (scripts/setup-machine.sh) and sets CI=true, where a missing mpiexec fails instead.
const haveMpi = version !== undefined;
if (!haveMpi && process.env.CI === 'true') throw new Error('mpiexec not found: CI needs an MPI implementation (scripts/setup-machine.sh installs mpich)');

function launch(n: number, script: string, env: Record<string, string> = {}, timeoutMs = 60_000) {
  // Open MPI refuses more ranks than cores (and root) unless told; MPICH's hydra needs no flags.
  const extra = version?.includes('Open MPI') ? ['--oversubscribe', '--allow-run-as-root'] : [];
  const t0 = Date.now();
  const r = spawnSync('mpiexec', [...extra, '-n', String(n), process.execPath, RANKS + script], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, lines, ms: Date.now() - t0 };
}

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

    it(`-n ${n}: expert-parallel MoE over MPI equals the unsharded layer (every fixture, T=1, a skewed router)`, () => {
      const r = launch(n, 'moe-ep.mjs');
      expect(r.status, r.stderr).toBe(0);
      const cases = new Set(r.lines.map((l) => l.case));
      // E = 8 and 16 split over 2 ranks; over 3 every fixture is a bad launch (a ShardingError on every rank)
      const expected = n === 2 ? ['mixtral', 'mixtral T=1', 'deepseek_v3', 'gpt_oss', 'llama4_text', 'qwen3_moe T=1'] : ['mixtral bad launch', 'olmoe bad launch'];
      for (const c of [...expected, 'random E=6', 'skewed router']) expect(cases.has(c), c).toBe(true);
      for (const c of cases) expect(r.lines.filter((l) => l.case === c).map((l) => l.rank).sort()).toEqual([...Array(n).keys()]);
      for (const l of r.lines) {
        expect(l.ok, `${l.case} rank ${l.rank}: rel err ${l.err} ${l.error ?? ''}`).toBe(true);
        if (!l.case.endsWith('bad launch')) expect(l.err).toBeLessThan(1e-5);
      }
      // a rank with no tokens sends nothing; under the skewed router only rank 0 receives rows, so the others send no partials back
      for (const l of r.lines.filter((x) => x.case.endsWith('T=1') && x.rank > 0)) expect(l.stats.rowsSent).toBe(0);
      for (const l of r.lines.filter((x) => x.case === 'skewed router' && x.rank > 0)) expect(l.stats.combineBytes).toBe(0);
    });
  }

  for (const fault of ['throw', 'kill'] as const) {
    it(`-n 3: a rank that ${fault === 'throw' ? 'throws' : 'is killed'} mid-run ends every rank (non-zero exit, no hang)`, () => {
      const r = launch(3, 'fault.mjs', { FAULT: fault }, 30_000);
      expect(r.signal, 'mpiexec had to be killed by the test timeout: a hang').toBeNull();
      expect(r.status).not.toBe(0);
      expect(r.lines.filter((l) => l.reached)).toEqual([]);
      expect(r.ms).toBeLessThan(20_000);
    });
  }
});
