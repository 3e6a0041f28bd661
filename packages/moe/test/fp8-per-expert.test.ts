// Block-fp8 checkpoints of per-expert layouts besides DeepSeek-V3's (Qwen3-MoE's official FP8 checkpoints store
// `experts.{e}.{gate,up,down}_proj.weight` in e4m3 with f32 `weight_scale_inv` blocks and quant_method "fp8", as
// DeepSeek-V3 does; Mixtral's names are w1 / w3 / w2). Each HF fixture's experts are written as such a checkpoint
// (codes and scales from quantizeExperts); the layer loaded from it, weight-only, must equal the fixture's layer with
// those weights decoded by the tests' own decoders (quant-cases.ts decodeAll; the golden-checked float path), on the
// CPU and the GPU.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { quantizeExperts, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, randomArray, rng } from '@webmoe/kernels-wgsl/testing';
import { MoE, UnsupportedError, parseHFMoEConfig, type MoECheckpoint } from '../src/index.js';
import { fixtureCheckpoints, relErr } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';
import { decodeAll } from './quant-cases.js';

const open = fixtureCheckpoints();
let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const BLOCK: [number, number] = [16, 16];

/**
 * The fixture `ck` with its routed experts' weights as block-fp8 tensors (and quant_method "fp8" in its config), and
 * the same fixture with those weights decoded to float32: the fp8 checkpoint and its float oracle.
 */
function fp8Views(ck: MoECheckpoint): { fp8: MoECheckpoint; decoded: MoECheckpoint; experts: number } {
  const fp8 = new Map<string, HostTensor>();
  const decoded = new Map<string, HostTensor>();
  const expert = /\.experts\.\d+\.(gate_proj|up_proj|down_proj|w1|w2|w3)\.weight$/;
  const names = ck.tensorNames.filter((n) => expert.test(n));
  const r = rng(2024);
  for (const n of names) {
    const [rows, cols] = ck.info(n)!.shape;
    // fresh weights (the fixture's values do not matter here; their codes and scales do)
    const q = quantizeExperts(randomArray(r, rows * cols, -0.4, 0.4), 1, rows, cols, { kind: 'fp8_block', block: BLOCK });
    if (q.kind !== 'fp8_block') throw new Error('expected fp8 blocks');
    fp8.set(n, q.q.reshape([rows, cols]));
    fp8.set(n.replace(/\.weight$/, '.weight_scale_inv'), q.scaleInv.reshape(q.scaleInv.shape.slice(1)));
    decoded.set(n, new HostTensor('float32', [rows, cols], decodeAll(q, 1, rows, cols)));
  }
  const quant = { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: BLOCK };
  return { fp8: patchedCheckpoint(ck, { add: fp8, config: { quantization_config: quant } }), decoded: patchedCheckpoint(ck, { add: decoded }), experts: names.length };
}

describe('block-fp8 checkpoints of per-expert layouts (Qwen3-MoE FP8 and the like)', () => {
  for (const arch of ['qwen3_moe', 'mixtral', 'olmoe'] as const) {
    it(`${arch}: weight-only equals the float layer of the decoded weights (CPU and GPU); w8a8 by default`, async (t) => {
      const ck = await open(arch);
      const v = fp8Views(ck);
      expect(v.experts).toBeGreaterThan(0);
      const H = parseHFMoEConfig(ck.config, 0).hiddenDim;
      const T = 5;
      const x = randomArray(rng(7), T * H, -1, 1);
      const want = await (await MoE.fromHuggingFace({ source: v.decoded, layer: 0, device: DeviceRef.CPU() })).forward(x);
      const cpu = await MoE.fromHuggingFace({ source: v.fp8, layer: 0, device: DeviceRef.CPU(), activationQuant: 'none' });
      expect(cpu.stacked.format).toBe('fp8_block');
      expect(relErr(await cpu.forward(x), want), `${arch} CPU`).toBeLessThan(1e-5);
      // the config's activation_scheme "dynamic": fp8 activations too (transformers' FP8 linear), close to the float layer
      const w8a8 = await (await MoE.fromHuggingFace({ source: v.fp8, layer: 0, device: DeviceRef.CPU() })).forward(x);
      const err = relErr(w8a8, want);
      expect(err, `${arch} w8a8`).toBeGreaterThan(1e-6);
      expect(err, `${arch} w8a8`).toBeLessThan(0.1);
      if (!ctx) return t.skip('no WebGPU adapter: the GPU half');
      const gpu = await MoE.fromHuggingFace({ source: v.fp8, layer: 0, device: DeviceRef.GPU(), ctx, activationQuant: 'none' });
      try {
        expect(relErr(await gpu.forward(x), want), `${arch} GPU`).toBeLessThan(1e-4);
      } finally {
        gpu.destroy();
      }
    });
  }

  it('fused layouts (gpt_oss, llama4_text) with quant_method "fp8": an UnsupportedError naming the experts, before anything is read', async () => {
    for (const arch of ['gpt_oss', 'llama4_text'] as const) {
      const ck = await open(arch);
      const src: MoECheckpoint = { ...ck, config: { ...(ck.config as object), quantization_config: { quant_method: 'fp8', weight_block_size: [128, 128] } }, read: async () => { throw new Error('test: nothing may be read'); } };
      const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: DeviceRef.CPU() }).catch((x) => x);
      expect(e, arch).toBeInstanceOf(UnsupportedError);
      expect(e.message, arch).toMatch(/experts/);
    }
  });
});
