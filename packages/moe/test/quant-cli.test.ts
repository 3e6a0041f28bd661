// moe-run on the quantized checkpoints (built with tsc, spawned as a separate Node process).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURES, readTensorsF32, relErr } from './helpers.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
let dir: string;

beforeAll(() => {
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'moe-run-quant-'));
}, 300_000);

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
}
const golden = (arch: string, name: string) => readTensorsF32(join(FIXTURES, arch, 'golden.safetensors')).get(name)!.values;

describe('moe-run on quantized checkpoints', () => {
  it('deepseek_v3_fp8 on the CPU with --activation-quant none matches output_weight_only (1e-4)', () => {
    const out = join(dir, 'fp8-none.safetensors');
    const r = run(['--checkpoint', `${FIXTURES}/deepseek_v3_fp8`, '--layer', '0', '--input', `${FIXTURES}/deepseek_v3_fp8/golden.safetensors`, '--output', out, '--device', 'cpu', '--activation-quant', 'none']);
    expect(r.status, r.stderr).toBe(0);
    expect(relErr(readTensorsF32(out).get('output')!.values, golden('deepseek_v3_fp8', 'output_weight_only'))).toBeLessThan(1e-4);
  });

  it('deepseek_v3_fp8 on the GPU with the checkpoint default (dynamic) and with --activation-quant=dynamic matches output_w8a8 (1e-3)', () => {
    for (const extra of [[], ['--activation-quant=dynamic']]) {
      const out = join(dir, `fp8-dyn${extra.length}.safetensors`);
      const r = run(['--checkpoint', `${FIXTURES}/deepseek_v3_fp8`, '--layer', '0', '--input', `${FIXTURES}/deepseek_v3_fp8/golden.safetensors`, '--output', out, '--device', 'gpu', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      expect(relErr(readTensorsF32(out).get('output')!.values, golden('deepseek_v3_fp8', 'output_w8a8'))).toBeLessThan(1e-3);
    }
  });

  it('gpt_oss_mxfp4 on the GPU and the CPU matches output (1e-4)', () => {
    for (const device of ['gpu', 'cpu']) {
      const out = join(dir, `mxfp4-${device}.safetensors`);
      const r = run(['--checkpoint', `${FIXTURES}/gpt_oss_mxfp4`, '--layer', '0', '--input', `${FIXTURES}/gpt_oss_mxfp4/golden.safetensors`, '--output', out, '--device', device]);
      expect(r.status, r.stderr).toBe(0);
      expect(relErr(readTensorsF32(out).get('output')!.values, golden('gpt_oss_mxfp4', 'output'))).toBeLessThan(1e-4);
    }
  });

  it('a bad --activation-quant is a usage error (exit 2); dynamic on an unquantized checkpoint is exit 1 naming activationQuant', () => {
    const r = run(['--checkpoint', `${FIXTURES}/deepseek_v3_fp8`, '--layer', '0', '--input', 'x', '--output', 'y', '--activation-quant', 'int8']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--activation-quant: expected none or dynamic, got "int8"/);
    const d = run(['--checkpoint', `${FIXTURES}/mixtral`, '--layer', '0', '--input', `${FIXTURES}/mixtral/golden.safetensors`, '--output', join(dir, 'no.safetensors'), '--device', 'cpu', '--activation-quant', 'dynamic']);
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/ConfigError: .*activationQuant/);
  });
});
