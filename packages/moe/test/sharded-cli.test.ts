// moe-run --tp N / --ep N (built with tsc, spawned as a separate Node process) against the unsharded moe-run.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, loadGolden, readTensorsF32, relErr } from './helpers.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
let dir: string;

beforeAll(() => {
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'moe-run-shard-'));
}, 300_000);

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
}

function output(arch: string, extra: string[], name: string): Float32Array {
  const out = join(dir, `${name}.safetensors`);
  const r = run(['--checkpoint', `${FIXTURES}/${arch}`, '--layer', '0', '--input', `${FIXTURES}/${arch}/golden.safetensors`, '--output', out, '--dtype', 'float32', ...extra]);
  expect(r.status, r.stderr).toBe(0);
  const y = readTensorsF32(out).get('output')!;
  expect(y.dtype).toBe('float32');
  return y.values;
}

describe('moe-run --tp / --ep', () => {
  it('qwen2_moe (shared expert + gate): --tp 2 and --ep 2 on 2 GPU devices equal the unsharded GPU run; --ep 2 --device cpu too', () => {
    const g = loadGolden('qwen2_moe');
    const base = output('qwen2_moe', ['--device', 'gpu'], 'base');
    expect(base.length).toBe(g.T * g.H);
    const tp = output('qwen2_moe', ['--device', 'gpu', '--tp', '2'], 'tp2');
    expect(relErr(tp, base), 'tp 2').toBeLessThan(1e-4);
    const ep = output('qwen2_moe', ['--device', 'gpu', '--ep', '2'], 'ep2');
    expect(relErr(ep, base), 'ep 2').toBeLessThan(1e-4);
    const epCpu = output('qwen2_moe', ['--device', 'cpu', '--ep', '2'], 'ep2cpu');
    expect(relErr(epCpu, base), 'ep 2 cpu').toBeLessThan(1e-4);
    expect(relErr(base, g.output)).toBeLessThan(g.f32Tol); // and the unsharded run is the golden
  });

  it('bad sharding arguments: usage errors (exit 2) and typed errors (exit 1, one line)', () => {
    const common = ['--checkpoint', `${FIXTURES}/mixtral`, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--output', join(dir, 'bad.safetensors'), '--device', 'cpu'];
    const both = run([...common, '--tp', '2', '--ep', '2']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--tp and --ep: expected one of them, got both/);
    const zero = run([...common, '--tp', '0']);
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/--tp: expected a positive integer/);
    const ep3 = run([...common, '--ep', '3']); // mixtral E = 8
    expect(ep3.status).toBe(1);
    expect(ep3.stderr.trim().split('\n')).toHaveLength(1);
    expect(ep3.stderr).toMatch(/ShardingError: .*numExperts: expected divisible by epSize 3, got 8/);
    expect(run(['--help']).stdout).toMatch(/--tp N \| --ep N/);
  });
});
