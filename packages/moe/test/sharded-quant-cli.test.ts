// moe-run --tp N / --ep N on quantized checkpoints (built with tsc, spawned as separate Node processes, in-process
// transport): the quantized fixtures under --ep 2 (CPU and GPU) against the unsharded moe-run (1e-5) and the goldens,
// --tp 2 / --tp 3 on them a one-line ShardingError naming the block unit (their I is one block), and checkpoints of the
// same formats with I = 3 blocks (test/quant-checkpoint.ts) under --tp 2, --tp 3 and --ep 2 against the unsharded moe-run.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, goldenTensors, readTensorsF32, relErr } from './helpers.js';
import { writeWideQuantCheckpoint } from './quant-checkpoint.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
const TOL = 1e-5;
let dir: string;

beforeAll(() => {
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'moe-run-qshard-'));
}, 300_000);

function run(ck: string, extra: string[], name: string) {
  const out = join(dir, `${name}.safetensors`);
  const r = spawnSync(process.execPath, [cli, '--checkpoint', ck, '--layer', '0', '--input', join(ck, 'golden.safetensors'), '--output', out, ...extra], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  return { ...r, out };
}

function output(ck: string, extra: string[], name: string): Float32Array {
  const r = run(ck, extra, name);
  expect(r.status, r.stderr).toBe(0);
  return readTensorsF32(r.out).get('output')!.values;
}

describe('moe-run --tp / --ep on quantized checkpoints', () => {
  for (const [arch, golden, tol, unit] of [
    ['deepseek_v3_fp8', 'output_w8a8', 1e-3, /moeDim = 128 \(unit 128 = fp8_block blocks \(.*down_proj_scale_inv: 128 input channels per scale.*\)\).*any split of moeDim into \d would cut a block/],
    ['gpt_oss_mxfp4', 'output', 1e-4, /moeDim = 32 \(unit 32 = mxfp4 blocks \(down_proj_blocks: 32 input channels per packed index.*any split of moeDim into \d would cut a block/],
  ] as const) {
    it(`${arch}: --ep 2 (GPU and CPU) equals the unsharded moe-run and the golden; --tp 2 / --tp 3 a ShardingError naming the unit`, () => {
      const ck = `${FIXTURES}/${arch}`;
      const want = goldenTensors(arch).get(golden)!.values;
      const base = output(ck, ['--device', 'gpu'], `${arch}-base`);
      expect(relErr(base, want)).toBeLessThan(tol);
      const ep = output(ck, ['--device', 'gpu', '--ep', '2'], `${arch}-ep2`);
      expect(relErr(ep, base), 'ep 2 gpu').toBeLessThan(TOL);
      const baseCpu = output(ck, ['--device', 'cpu'], `${arch}-base-cpu`);
      const epCpu = output(ck, ['--device', 'cpu', '--ep', '2'], `${arch}-ep2-cpu`);
      expect(relErr(epCpu, baseCpu), 'ep 2 cpu').toBeLessThan(TOL);
      expect(relErr(epCpu, want), 'ep 2 cpu vs golden').toBeLessThan(tol);
      for (const n of ['2', '3']) {
        const r = run(ck, ['--device', 'cpu', '--tp', n], `${arch}-tp${n}`);
        expect(r.status).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/ShardingError: MoE.shard tensorParallel/);
        expect(r.stderr).toMatch(unit);
      }
    }, 300_000);
  }

  for (const arch of ['deepseek_v3_fp8', 'gpt_oss_mxfp4'] as const) {
    it(`${arch} with I = 3 blocks (written by the test): --tp 2, --tp 3, --ep 2 equal the unsharded moe-run within 1e-5 (CPU; --tp 3 on GPU too)`, async () => {
      const ck = await writeWideQuantCheckpoint(dir, arch);
      const base = output(ck, ['--device', 'cpu'], `${arch}-wide-base`);
      for (const flag of [['--tp', '2'], ['--tp', '3'], ['--ep', '2']]) {
        const y = output(ck, ['--device', 'cpu', ...flag], `${arch}-wide${flag.join('')}`);
        const err = relErr(y, base);
        expect(err, `${flag.join(' ')}: rel err ${err}`).toBeLessThan(TOL);
      }
      const baseGpu = output(ck, ['--device', 'gpu'], `${arch}-wide-base-gpu`);
      expect(relErr(baseGpu, base), 'GPU vs CPU').toBeLessThan(1e-4);
      const tp3 = output(ck, ['--device', 'gpu', '--tp', '3'], `${arch}-wide-tp3-gpu`);
      expect(relErr(tp3, baseGpu), 'tp 3 gpu').toBeLessThan(TOL);
    }, 300_000);
  }
});
