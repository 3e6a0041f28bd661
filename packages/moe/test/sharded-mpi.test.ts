// Expert parallel across processes over MPI (one rank per process, CPU shards): `mpiexec -n 2` and `-n 3`
// on mpi-ranks/moe-ep.mjs (each rank checks ShardedMoE over the MPI transport against the unsharded layer
// it computes itself: every fixture whose E splits, T = 1, random and skewed routers, bad launches), and
// `moe-run --ep 2 --transport mpi` reproducing every fixture's golden with one output file from rank 0.
// Tensor parallel over MPI the same way: mpi-ranks/moe-tp.mjs under `-n 2` and `-n 3`, `moe-run --tp 2 --transport mpi`.
// Quantized layers: the quantized fixtures under EP (rank scripts and moe-run), random layers of every format under TP
// (moe-tp.mjs), and `moe-run --tp 2 / --tp 3 --transport mpi` on test-written fp8 / MXFP4 checkpoints whose I splits.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchMpi, requireMpi } from '@webmoe/mpi/testing';
import { ARCHS, FIXTURES, goldenTensors, loadGolden, readTensorsF32, relErr } from './helpers.js';
import { writeWideQuantCheckpoint } from './quant-checkpoint.js';

const QUANT_ARCHS = ['deepseek_v3_fp8', 'gpt_oss_mxfp4'];

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
      const archs = [...ARCHS, ...QUANT_ARCHS];
      const expected = n === 2 ? [...archs, ...archs.map((a) => `${a} T=1`)] : archs.map((a) => `${a} bad launch`);
      for (const c of [...expected, 'random E=6', 'skewed router', 'random E=6 int4', 'skewed router int4']) expect(cases.has(c), c).toBe(true);
      for (const c of cases) expect(r.lines.filter((l) => l.case === c).map((l) => l.rank).sort(), c).toEqual([...Array(n).keys()]);
      for (const l of r.lines) {
        expect(l.ok, `${l.case} rank ${l.rank}: rel err ${l.err} ${l.error ?? ''}`).toBe(true);
        if (!l.case.endsWith('bad launch')) expect(l.err).toBeLessThan(1e-5);
      }
      // ranks without tokens send nothing; under the skewed router only rank 0 receives rows, so only it sends partials back
      for (const l of r.lines.filter((x) => x.case.endsWith('T=1') && x.rank > 0)) expect(l.stats.rowsSent).toBe(0);
      for (const l of r.lines.filter((x) => x.case.startsWith('skewed router') && x.rank > 0)) expect(l.stats.combineBytes).toBe(0);
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
      const cases = [...ARCHS, ...ARCHS.map((a) => `${a} T=1`), ...QUANT_ARCHS.map((a) => `${a} block unit`), ...['fp8_block', 'mxfp4', 'int4', 'int8'].map((f) => `random ${f}`)];
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

describe.skipIf(!haveMpi)('quantized layers over MPI (moe-run)', () => {
  let dir: string;
  beforeAll(() => {
    execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'moe-run-mpi-quant-'));
  }, 300_000);

  const args = (ck: string, out: string, extra: string[], device = 'cpu') => [cli, '--checkpoint', ck, '--layer', '0', '--input', join(ck, 'golden.safetensors'), '--output', out, '--device', device, ...extra];

  it('moe-run --ep 2 --transport mpi on the quantized fixtures reproduces their goldens; --tp 2 is a ShardingError naming the block unit', () => {
    for (const [arch, golden, tol] of [['deepseek_v3_fp8', 'output_w8a8', 1e-3], ['gpt_oss_mxfp4', 'output', 1e-4]] as const) {
      const out = join(dir, `${arch}.safetensors`);
      const r = launchMpi(2, args(`${FIXTURES}/${arch}`, out, ['--ep', '2', '--transport', 'mpi']));
      expect(r.status, `${arch}: ${r.stderr}`).toBe(0);
      const err = relErr(readTensorsF32(out).get('output')!.values, goldenTensors(arch).get(golden)!.values);
      expect(err, `${arch}: rel err vs golden ${err}`).toBeLessThan(tol);
      const tp = launchMpi(2, args(`${FIXTURES}/${arch}`, join(dir, `${arch}-tp.safetensors`), ['--tp', '2', '--transport', 'mpi']));
      expect(tp.status).not.toBe(0);
      expect(tp.signal).toBeNull();
      expect(tp.stderr).toMatch(/ShardingError: MoE.shard tensorParallel\(2\): moeDim = \d+ \(unit \d+ = (fp8_block|mxfp4) blocks .*would cut a block/);
      expect(existsSync(join(dir, `${arch}-tp.safetensors`))).toBe(false);
    }
  }, 120_000);

  it('moe-run --tp 2 / --tp 3 / --ep 2 --transport mpi on fp8 / MXFP4 checkpoints whose I is 3 blocks equal the unsharded moe-run within 1e-5', async () => {
    for (const arch of QUANT_ARCHS as ('deepseek_v3_fp8' | 'gpt_oss_mxfp4')[]) {
      const ck = await writeWideQuantCheckpoint(dir, arch);
      const baseOut = join(dir, `${arch}-base.safetensors`);
      const base = spawnSync(process.execPath, args(ck, baseOut, []), { encoding: 'utf8' });
      expect(base.status, base.stderr).toBe(0);
      const want = readTensorsF32(baseOut).get('output')!.values;
      for (const [flag, n] of [['--tp', 2], ['--tp', 3], ['--ep', 2]] as const) {
        const out = join(dir, `${arch}${flag}${n}.safetensors`);
        const r = launchMpi(n, args(ck, out, [flag, String(n), '--transport', 'mpi']));
        expect(r.status, `${arch} ${flag} ${n}: ${r.stderr}`).toBe(0);
        const err = relErr(readTensorsF32(out).get('output')!.values, want);
        expect(err, `${arch} ${flag} ${n}: rel err ${err}`).toBeLessThan(1e-5);
      }
    }
  }, 180_000);

  it('on the ranks\' GPUs (lavapipe here): --tp 3 on the fp8 checkpoint with I = 3 blocks, --ep 2 on the MXFP4 fixture, equal the unsharded GPU moe-run within 1e-5', async () => {
    for (const [ck, flag, n] of [[await writeWideQuantCheckpoint(dir, 'deepseek_v3_fp8'), '--tp', 3], [`${FIXTURES}/gpt_oss_mxfp4`, '--ep', 2]] as const) {
      const baseOut = join(dir, `gpu-base${flag}.safetensors`);
      const base = spawnSync(process.execPath, args(ck, baseOut, [], 'gpu'), { encoding: 'utf8' });
      expect(base.status, base.stderr).toBe(0);
      const out = join(dir, `gpu${flag}${n}.safetensors`);
      const r = launchMpi(n, args(ck, out, [flag, String(n), '--transport', 'mpi'], 'gpu'), { timeoutMs: 300_000 });
      expect(r.status, `${ck} ${flag} ${n}: ${r.stderr}`).toBe(0);
      const err = relErr(readTensorsF32(out).get('output')!.values, readTensorsF32(baseOut).get('output')!.values);
      expect(err, `${ck} ${flag} ${n} GPU: rel err ${err}`).toBeLessThan(1e-5);
    }
  }, 320_000);
});
