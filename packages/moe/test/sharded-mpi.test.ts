// Expert parallel across processes over MPI (one rank per process, CPU shards): `mpiexec -n 2` and `-n 3`
// on mpi-ranks/moe-ep.mjs (each rank checks ShardedMoE over the MPI transport against the unsharded layer
// it computes itself: every fixture whose E splits, T = 1, random and skewed routers, bad launches), and
// `moe-run --ep 2 --transport mpi` reproducing every fixture's golden with one output file from rank 0.
// Tensor parallel over MPI the same way: mpi-ranks/moe-tp.mjs under `-n 2` and `-n 3`, `moe-run --tp 2 --transport mpi`.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchMpi, requireMpi } from '@webmoe/mpi/testing';
import { ARCHS, FIXTURES, loadGolden, readTensorsF32, relErr } from './helpers.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
// Written reason for the skip below: without an MPI installation there is nothing to launch. CI installs
// mpich (scripts/setup-machine.sh) and sets CI=true, where requireMpi() throws instead.
const haveMpi = requireMpi();

/** `moe-run --<mode> 2 --transport mpi` on the CPU reproduces every fixture's golden; rank 0 writes the one output, nothing else is left in `dir`. */
function cliGoldens(dir: string, mode: 'ep' | 'tp'): void {
  for (const arch of ARCHS) {
    const g = loadGolden(arch);
    const out = join(dir, `${arch}.safetensors`);
    const r = launchMpi(2, [cli, '--checkpoint', `${FIXTURES}/${arch}`, '--layer', '0', '--input', `${FIXTURES}/${arch}/golden.safetensors`, '--output', out, '--dtype', 'float32', '--device', 'cpu', `--${mode}`, '2', '--transport', 'mpi']);
    expect(r.status, `${arch}: ${r.stderr}`).toBe(0);
    const y = readTensorsF32(out).get('output')!;
    expect(y.shape).toEqual([g.T, g.H]);
    const err = relErr(y.values, g.output);
    expect(err, `${arch}: rel err vs golden ${err}`).toBeLessThan(g.f32Tol);
  }
  expect(readdirSync(dir).sort()).toEqual(ARCHS.map((a) => `${a}.safetensors`).sort()); // no temporary files left
}

/** `moe-run --<mode> 2 --transport mpi --device gpu`: one device per rank (lavapipe here), qwen2_moe (shared expert + its gate) within the golden's tolerance. */
function cliOnGpu(dir: string, mode: 'ep' | 'tp'): void {
  const g = loadGolden('qwen2_moe');
  const out = join(dir, 'gpu.safetensors');
  const r = launchMpi(2, [cli, '--checkpoint', `${FIXTURES}/qwen2_moe`, '--layer', '0', '--input', `${FIXTURES}/qwen2_moe/golden.safetensors`, '--output', out, '--dtype', 'float32', '--device', 'gpu', `--${mode}`, '2', '--transport', 'mpi', '--verbose'], { timeoutMs: 300_000 });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/rank 0 \(local 0\)/);
  expect(r.stderr).toMatch(/rank 1 \(local 1\)/);
  const y = readTensorsF32(out).get('output')!;
  expect(relErr(y.values, g.output)).toBeLessThan(g.f32Tol);
}

describe.skipIf(!haveMpi)('expert parallel over MPI', () => {
  let dir: string;
  beforeAll(() => {
    execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'moe-run-mpi-'));
  }, 300_000);

  for (const n of [2, 3]) {
    it(`mpiexec -n ${n}: ShardedMoE over the MPI transport equals the unsharded layer within 1e-5`, () => {
      const r = launchMpi(n, [join(pkg, 'test', 'mpi-ranks', 'moe-ep.mjs')], { timeoutMs: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const cases = new Set(r.lines.map((l) => l.case));
      // E = 8 and 16 split over 2 ranks; over 3 every fixture is a bad launch (a ShardingError on every rank)
      const expected = n === 2 ? [...ARCHS, ...ARCHS.map((a) => `${a} T=1`)] : ARCHS.map((a) => `${a} bad launch`);
      for (const c of [...expected, 'random E=6', 'skewed router']) expect(cases.has(c), c).toBe(true);
      for (const c of cases) expect(r.lines.filter((l) => l.case === c).map((l) => l.rank).sort(), c).toEqual([...Array(n).keys()]);
      for (const l of r.lines) {
        expect(l.ok, `${l.case} rank ${l.rank}: rel err ${l.err} ${l.error ?? ''}`).toBe(true);
        if (!l.case.endsWith('bad launch')) expect(l.err).toBeLessThan(1e-5);
      }
      // ranks without tokens send nothing; under the skewed router only rank 0 receives rows, so only it sends partials back
      for (const l of r.lines.filter((x) => x.case.endsWith('T=1') && x.rank > 0)) expect(l.stats.rowsSent).toBe(0);
      for (const l of r.lines.filter((x) => x.case === 'skewed router' && x.rank > 0)) expect(l.stats.combineBytes).toBe(0);
    }, 150_000);
  }

  it('moe-run --ep 2 --transport mpi (CPU) reproduces every fixture\'s golden; rank 0 writes the one output', () => {
    cliGoldens(dir, 'ep');
  }, 120_000);

  it('moe-run --ep 2 --transport mpi --device gpu (one device per rank; lavapipe here): the experts run on each rank\'s GPU', () => {
    cliOnGpu(dir, 'ep');
  }, 320_000);

  it('bad launches: -n not matching --ep (usage error on every rank), --ep not dividing E, --transport mpi without --ep', () => {
    const common = ['--checkpoint', `${FIXTURES}/mixtral`, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--device', 'cpu', '--transport', 'mpi'];
    const out = join(dir, 'bad.safetensors');
    const mism = launchMpi(3, [cli, ...common, '--output', out, '--ep', '2']);
    expect(mism.status).toBe(2);
    expect(mism.stderr.match(/--ep 2 --transport mpi: expected 2 ranks \(mpiexec -n 2\), got 3/g)).toHaveLength(3);
    const e3 = launchMpi(3, [cli, ...common, '--output', out, '--ep', '3']); // mixtral E = 8
    expect(e3.status).not.toBe(0);
    expect(e3.signal).toBeNull();
    expect(e3.stderr).toMatch(/ShardingError: .*expected a multiple of 3, got 8/);
    const noEp = spawnSync(process.execPath, [cli, ...common, '--output', out], { encoding: 'utf8' });
    expect(noEp.status).toBe(2);
    expect(noEp.stderr).toMatch(/--transport mpi: expected --ep N/);
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});

describe.skipIf(!haveMpi)('tensor parallel over MPI', () => {
  let dir: string;
  beforeAll(() => {
    execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'moe-run-mpi-tp-'));
  }, 300_000);

  for (const n of [2, 3]) {
    it(`mpiexec -n ${n}: each rank holds its slice; the all-reduced output equals the unsharded layer within 1e-5 and the in-process TP bit for bit`, () => {
      const r = launchMpi(n, [join(pkg, 'test', 'mpi-ranks', 'moe-tp.mjs')], { timeoutMs: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const cases = [...ARCHS, ...ARCHS.map((a) => `${a} T=1`)];
      expect(new Set(r.lines.map((l) => l.case))).toEqual(new Set(cases));
      for (const c of cases) expect(r.lines.filter((l) => l.case === c).map((l) => l.rank).sort(), c).toEqual([...Array(n).keys()]);
      for (const l of r.lines) {
        expect(l.ok, `${l.case} rank ${l.rank}: rel err ${l.err}, identical ${l.identical}, slice ${l.sliceOk} (moeDim ${l.moeDim})`).toBe(true);
        expect(l.err).toBeLessThan(1e-5);
      }
    }, 150_000);
  }

  it('moe-run --tp 2 --transport mpi (CPU) reproduces every fixture\'s golden; rank 0 writes the one output', () => {
    cliGoldens(dir, 'tp');
  }, 120_000);

  it('moe-run --tp 2 --transport mpi --device gpu (one device per rank; lavapipe here): each rank\'s slice runs on its GPU', () => {
    cliOnGpu(dir, 'tp');
  }, 320_000);

  it('bad launch: -n not matching --tp is a usage error on every rank; nothing written', () => {
    const out = join(dir, 'bad.safetensors');
    const r = launchMpi(3, [cli, '--checkpoint', `${FIXTURES}/mixtral`, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--output', out, '--device', 'cpu', '--transport', 'mpi', '--tp', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr.match(/--tp 2 --transport mpi: expected 2 ranks \(mpiexec -n 2\), got 3/g)).toHaveLength(3);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
