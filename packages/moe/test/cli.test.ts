// The moe-run CLI, built with tsc and spawned as a separate Node process.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, loadGolden, readTensorsF32, relErr } from './helpers.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
let dir: string;

beforeAll(() => {
  // Build this package and its references (tsx is not a dependency; the CLI runs from dist as `pnpm exec moe-run` does).
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'moe-run-'));
}, 300_000);

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
}

describe('moe-run', () => {
  it('runs qwen2_moe layer 0 on the CPU and writes output matching the golden', () => {
    const out = join(dir, 'qwen2.safetensors');
    const r = run(['--checkpoint', `${FIXTURES}/qwen2_moe`, '--layer', '0', '--input', `${FIXTURES}/qwen2_moe/golden.safetensors`, '--output', out, '--device', 'cpu']);
    expect(r.status, r.stderr).toBe(0);
    const g = loadGolden('qwen2_moe');
    const y = readTensorsF32(out).get('output')!;
    expect(y.dtype).toBe('float32');
    expect(y.shape).toEqual([g.T, g.H]);
    expect(relErr(y.values, g.output)).toBeLessThan(g.f32Tol);
  });

  it('runs gpt_oss on the GPU with --dtype bfloat16 --tensor input_bf16', () => {
    const out = join(dir, 'gptoss.safetensors');
    const r = run(['--checkpoint', `${FIXTURES}/gpt_oss`, '--layer', '0', '--input', `${FIXTURES}/gpt_oss/golden.safetensors`, '--output', out, '--dtype', 'bfloat16', '--tensor', 'input_bf16', '--device', 'gpu']);
    expect(r.status, r.stderr).toBe(0);
    const g = loadGolden('gpt_oss');
    expect(relErr(readTensorsF32(out).get('output')!.values, g.outputBf16)).toBeLessThan(g.bf16Tol);
  });

  it('--device auto: the GPU on a hardware adapter, else the CPU (lavapipe here: the CPU), says which with --verbose, and writes the golden', async () => {
    const out = join(dir, 'auto.safetensors');
    const r = run(['--checkpoint', `${FIXTURES}/olmoe`, '--layer', '0', '--input', `${FIXTURES}/olmoe/golden.safetensors`, '--output', out, '--device', 'auto', '--verbose']);
    expect(r.status, r.stderr).toBe(0);
    const line = r.stderr.split('\n').find((l) => l.startsWith('moe-run: --device auto: '));
    expect(line, r.stderr).toBeDefined();
    // which device: as defaultDevice decides for this machine's adapter (none, software or hardware)
    const { defaultDevice } = await import('@webmoe/kernels-wgsl');
    const d = await defaultDevice();
    d.ctx?.destroy();
    expect(line).toContain(`--device auto: ${d.device.toString()}: `);
    const g = loadGolden('olmoe');
    const y = readTensorsF32(out);
    expect(relErr(y.get('output')!.values, g.output)).toBeLessThan(g.f32Tol);
    // and with --tp / --ep it is a usage error (a sharded run names its devices)
    const u = run(['--checkpoint', `${FIXTURES}/olmoe`, '--layer', '0', '--input', `${FIXTURES}/olmoe/golden.safetensors`, '--output', join(dir, 'auto-tp.safetensors'), '--device', 'auto', '--tp', '2']);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('--device auto: expected gpu or cpu with --tp / --ep');
  });

  it('fails with a one-line message, exit 1, and writes nothing (existing output untouched)', () => {
    const out = join(dir, 'fail.safetensors');
    writeFileSync(out, 'old');
    const before = readdirSync(dir).sort();
    const r = run(['--checkpoint', `${FIXTURES}/mixtral`, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--output', out, '--tensor', 'nope', '--device', 'cpu']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/moe-run: .*"nope"/);
    expect(readFileSync(out, 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(before);
    // A checkpoint with an unsupported quantization_config (gptq): mixtral's tensors, patched config.
    const gptq = join(dir, 'gptq-ckpt');
    mkdirSync(gptq);
    const cfg = JSON.parse(readFileSync(`${FIXTURES}/mixtral/config.json`, 'utf8'));
    writeFileSync(join(gptq, 'config.json'), JSON.stringify({ ...cfg, quantization_config: { quant_method: 'gptq', bits: 4 } }));
    symlinkSync(`${FIXTURES}/mixtral/model.safetensors`, join(gptq, 'model.safetensors'));
    const v = run(['--checkpoint', gptq, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--output', join(dir, 'x.safetensors'), '--device', 'cpu', '--verbose']);
    expect(v.status).toBe(1);
    expect(v.stderr).toMatch(/UnsupportedError: .*quantization_config.*gptq/);
    expect(v.stderr).toMatch(/\n\s+at /); // the stack, with --verbose only
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
  });

  it('bad usage exits 2 with the usage line', () => {
    const r = run(['--checkpoint', 'x', '--layer', 'one', '--input', 'a', '--output', 'b']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--layer: expected a non-negative integer/);
    expect(r.stderr).toMatch(/usage: moe-run/);
    expect(run(['--bogus']).status).toBe(2);
  });
});
