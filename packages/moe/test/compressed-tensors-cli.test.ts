// moe-run on a compressed-tensors int4 checkpoint directory (asymmetric, written by test/ct-writer.ts over the
// qwen2_moe fixture; weight_shape int64 as compressed-tensors writes it), CPU and GPU, against the same layer
// with the dequantized weights; and a malformed one: exit 1 with the typed error.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeviceRef } from '@webmoe/tensor';
import { dirSource } from '@webmoe/tensor/node';
import { MoE, openHFCheckpoint, type MoECheckpoint } from '../src/index.js';
import { FIXTURES, loadGolden, readTensorsF32, relErr } from './helpers.js';
import { CT_CASES, QWEN_IGNORE, ctCase, ctConfig, patchedCheckpoint, writeCheckpointDir } from './ct-writer.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
let dir: string;
const opened: MoECheckpoint[] = [];
async function open(arch: string): Promise<MoECheckpoint> {
  const ck = await openHFCheckpoint(dirSource(`${FIXTURES}/${arch}`));
  opened.push(ck);
  return ck;
}
beforeAll(() => {
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'moe-run-ct-'));
}, 300_000);
afterAll(async () => {
  for (const ck of opened) await ck.close?.();
});

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
}

describe('moe-run on compressed-tensors int4 checkpoints', () => {
  it('asymmetric int4 on the CPU and the GPU matches the dequantized layer (1e-5)', async () => {
    const { ct, deq } = await ctCase(CT_CASES[1], open);
    const ckDir = join(dir, 'qwen2-asym');
    await writeCheckpointDir(ckDir, ct);
    const g = loadGolden('qwen2_moe');
    const want = await (await MoE.fromHuggingFace({ source: deq, layer: 0, device: DeviceRef.CPU() })).forward(g.input);
    for (const device of ['cpu', 'gpu']) {
      const out = join(dir, `ct-${device}.safetensors`);
      const r = run(['--checkpoint', ckDir, '--layer', '0', '--input', `${FIXTURES}/qwen2_moe/golden.safetensors`, '--output', out, '--device', device]);
      expect(r.status, r.stderr).toBe(0);
      const err = relErr(readTensorsF32(out).get('output')!.values, want);
      expect(err, `${device} rel err ${err}`).toBeLessThan(1e-5);
    }
  }, 300_000);

  it('a checkpoint whose config says asymmetric but has no zero points: exit 1, CheckpointError naming the tensor', async () => {
    const { ct } = await ctCase(CT_CASES[0], open);
    const ckDir = join(dir, 'qwen2-bad');
    await writeCheckpointDir(ckDir, patchedCheckpoint(ct, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: false }, ['Linear'], QWEN_IGNORE) } }));
    const r = run(['--checkpoint', ckDir, '--layer', '0', '--input', `${FIXTURES}/qwen2_moe/golden.safetensors`, '--output', join(dir, 'no.safetensors'), '--device', 'cpu']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CheckpointError: .*model\.layers\.0\.mlp\.experts\.0\.gate_proj\.weight_zero_point.*missing/);
  });
});
