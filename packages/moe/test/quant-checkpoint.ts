// Quantized HF checkpoints written by the tests (random weights through quantize()), in the fixtures' formats but with an
// expert width that holds three whole blocks, so `moe-run --tp 2 / --tp 3` can split them: DeepSeek-V3 fp8 (128 x 128
// blocks, dynamic activations, a quantized shared expert; I = S = 384) and GPT-OSS MXFP4 (I = 96). The configs are the
// fixtures' with the widths and expert count changed. Inputs: `input` [16, H] in golden.safetensors.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostTensor } from '@webmoe/tensor';
import { writeSafetensorsFile } from '@webmoe/tensor/node';
import { takeRanges } from '@webmoe/sharding';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { quantizeExperts, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { FIXTURES } from './helpers.js';

export const T_SYNTH = 16;

/** fp8 (128 x 128 blocks) / MXFP4 containers of a random dense [E, rows, cols] stack. */
function quantized(r: () => number, fmt: 'fp8_block' | 'mxfp4', E: number, rows: number, cols: number): ExpertWeightsHost {
  const w = Float32Array.from({ length: E * rows * cols }, () => ((r() * 2 - 1) * 1.5) / Math.sqrt(cols));
  return quantizeExperts(w, E, rows, cols, fmt === 'mxfp4' ? { kind: 'mxfp4' } : { kind: 'fp8_block', dtype: 'float8_e4m3fn', block: [128, 128] });
}

function randomF32(r: () => number, shape: number[], scale: number): HostTensor {
  return HostTensor.fromFloat32(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale));
}

/** One expert of a stacked tensor, without its expert axis. */
const expert = (t: HostTensor, e: number) => takeRanges(t, 0, [[e, e + 1]]).reshape(t.shape.slice(1));

/**
 * Writes `dir/<arch>-wide/` (config.json, model.safetensors, golden.safetensors with `input`) and returns its path.
 * @example `const ck = await writeWideQuantCheckpoint(tmp, 'deepseek_v3_fp8')`
 */
export async function writeWideQuantCheckpoint(dir: string, arch: 'deepseek_v3_fp8' | 'gpt_oss_mxfp4', seed = 77): Promise<string> {
  const out = join(dir, `${arch}-wide`);
  mkdirSync(out, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(FIXTURES, arch, 'config.json'), 'utf8'));
  const r = rng(seed);
  const p = 'model.layers.0.mlp.';
  const t: Record<string, HostTensor> = {};
  let H: number;
  if (arch === 'deepseek_v3_fp8') {
    const E = 4;
    const I = 384;
    H = cfg.hidden_size;
    Object.assign(cfg, { n_routed_experts: E, moe_intermediate_size: I, n_shared_experts: 1, n_group: 2, topk_group: 1 });
    t[`${p}gate.weight`] = randomF32(r, [E, H], 2 / Math.sqrt(H));
    t[`${p}gate.e_score_correction_bias`] = randomF32(r, [E], 0.3);
    const mats = { gate_proj: [I, H], up_proj: [I, H], down_proj: [H, I] } as const;
    for (const [name, [rows, cols]] of Object.entries(mats)) {
      const c = quantized(r, 'fp8_block', E + 1, rows, cols); // expert E is the shared expert
      if (c.kind !== 'fp8_block') throw new Error('test: fp8');
      for (let e = 0; e <= E; e++) {
        const at = e < E ? `${p}experts.${e}.${name}` : `${p}shared_experts.${name}`;
        t[`${at}.weight`] = expert(c.q, e);
        t[`${at}.weight_scale_inv`] = expert(c.scaleInv, e);
      }
    }
  } else {
    const E = 4;
    const I = 96;
    H = cfg.hidden_size;
    Object.assign(cfg, { num_local_experts: E, intermediate_size: I });
    t[`${p}router.weight`] = randomF32(r, [E, H], 2 / Math.sqrt(H));
    t[`${p}router.bias`] = randomF32(r, [E], 0.2);
    for (const [name, rows, cols] of [['gate_up_proj', 2 * I, H], ['down_proj', H, I]] as const) {
      const c = quantized(r, 'mxfp4', E, rows, cols);
      if (c.kind !== 'mxfp4') throw new Error('test: mxfp4');
      t[`${p}experts.${name}_blocks`] = c.blocks;
      t[`${p}experts.${name}_scales`] = c.scales;
      t[`${p}experts.${name}_bias`] = randomF32(r, [E, rows], 0.2);
    }
  }
  writeFileSync(join(out, 'config.json'), JSON.stringify(cfg, null, 1));
  await writeSafetensorsFile(join(out, 'model.safetensors'), t);
  await writeSafetensorsFile(join(out, 'golden.safetensors'), { input: randomF32(r, [T_SYNTH, H], 1.5) });
  return out;
}
