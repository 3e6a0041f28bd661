// MoE.fromHuggingFace with streamed routed experts (HFLoadOptions.streamExperts): each expert is read and copied into
// host buffers of one chunk of its stack, uploaded, released; no host array holds a stack. With the binding limit
// lowered so that the stacks split (several chunks, every gate_up expert cut in pieces) the layer gives the SAME BITS as
// the layer loaded whole in one buffer per tensor, for per-expert fp8 (DeepSeek-V3, 128x128 blocks, a checkpoint with
// I = 384 so that an expert splits at block boundaries) and dense per-expert checkpoints (Mixtral bf16, DeepSeek-V3);
// its GPU bytes are the packed bytes plus scales (within 2%), and it keeps no host copy of the routed experts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTypeError, DeviceRef, ShapeError, ValueError } from '@webmoe/tensor';
import { createExpertStack, createGpuContext, destroyExpertWeights, type ExpertStackGpu, type ExpertWeightsShape, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, withMaxBindingBytes } from '@webmoe/kernels-wgsl/testing';
import { ConfigError, MoE, UnsupportedError, type HFLoadOptions, type UploadedStack } from '../src/index.js';
import { FIXTURES, chunking, firstBitDiff, forwardLogged, goldenTensors, loadGolden } from './helpers.js';
import { writeWideQuantCheckpoint } from './quant-checkpoint.js';

let ctx: GpuContext | null;
let tmp: string;
beforeAll(async () => {
  ctx = await testGpu();
  tmp = mkdtempSync(join(tmpdir(), 'webmoe-streamed-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Loads `source` whole (one buffer per tensor) and streamed under `limit(a)` bytes per binding; same bits on `x`; returns both for more checks. */
async function streamedVsWhole(source: string, extra: Partial<HFLoadOptions>, limit: (whole: MoE) => number, x: Float32Array, T: number, H: number, check: (a: MoE, b: MoE) => void): Promise<void> {
  const cx = ctx!;
  const a = await MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.GPU(), ctx: cx, ...extra });
  let b: MoE | undefined;
  try {
    expect(a.stacked.gateUpProj.host, 'a whole load keeps its host stacks').toBeDefined();
    const small = withMaxBindingBytes(cx, limit(a));
    b = await MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.GPU(), ctx: small, streamExperts: true, ...extra });
    expect(b.stacked.gateUpProj.host, 'a streamed load keeps no host stack').toBeUndefined();
    expect(b.stacked.downProj.host).toBeUndefined();
    check(a, b);
    const ya = (await forwardLogged(cx, a, x, T, H)).y;
    const yb = (await forwardLogged(small, b, x, T, H)).y;
    const i = firstBitDiff(yb, ya);
    expect(i, `streamed vs whole: first differing element ${i} (${yb[i]} vs ${ya[i]})`).toBe(-1);
    // the GPU bytes: those of the packed weights and scales (each chunk pads its tensors to whole words)
    const [ba, bb] = [a.gpuBytes(), b.gpuBytes()];
    expect(bb.expertWeights + bb.expertScales).toBeGreaterThanOrEqual(ba.expertWeights + ba.expertScales);
    expect(bb.expertWeights + bb.expertScales).toBeLessThanOrEqual(1.02 * (ba.expertWeights + ba.expertScales));
    expect(bb.total).toBeLessThanOrEqual(1.02 * ba.total);
  } finally {
    a.destroy();
    b?.destroy();
  }
}

describe('MoE.fromHuggingFace({ streamExperts: true })', () => {
  it('DeepSeek-V3 fp8 (128x128 blocks, I = 384): several chunks, every gate_up expert cut in pieces at block boundaries, same bits', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const dir = await writeWideQuantCheckpoint(tmp, 'deepseek_v3_fp8');
    const x = goldenTensors('deepseek_v3_fp8').get('input')!; // same H as the wide checkpoint
    const H = x.shape[1];
    await streamedVsWhole(
      dir,
      { activationQuant: 'none' },
      () => Math.floor((0.6 * 2 * 384 * H) / 4) * 4, // 0.6 of one gate_up expert: one 128-output block pair per piece
      x.values.subarray(0, 4 * H),
      4,
      H,
      (_a, b) => {
        const w = b.stacked.gpuWeights();
        expect(chunking(w.gateUp)).toEqual({ chunks: 4 * 3, split: true });
        expect(chunking(w.down)).toEqual({ chunks: 4, split: false });
      },
    );
  }, 600_000);

  it('Mixtral bf16 (dense per-expert): every expert in pieces, same bits; unsplit streamed stacks are plain containers', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = loadGolden('mixtral', 'golden');
    const src = `${FIXTURES}/mixtral`;
    await streamedVsWhole(
      src,
      { dtype: 'bfloat16' },
      (a) => {
        const w = a.stacked.gpuWeights().down;
        return w.kind === 'dense' ? Math.floor((0.6 * w.w.byteLength) / a.numExperts / 4) * 4 : 0;
      },
      g.inputBf16,
      g.T,
      g.H,
      (_a, b) => {
        const w = b.stacked.gpuWeights();
        expect(chunking(w.gateUp).split && chunking(w.down).split).toBe(true);
        expect(chunking(w.gateUp).chunks).toBeGreaterThan(b.numExperts);
      },
    );
    const plain = await MoE.fromHuggingFace({ source: src, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx, streamExperts: true });
    try {
      expect(plain.stacked.gpuWeights().gateUp.kind).toBe('dense');
      expect(plain.stacked.gateUpProj.host).toBeUndefined();
      expect(plain.stacked.gateUpProj.gpu).toBeDefined();
    } finally {
      plain.destroy();
    }
  }, 600_000);

  it('where streaming cannot apply: typed errors before anything is read', async () => {
    await expect(MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, streamExperts: true })).rejects.toThrow(ConfigError);
    await expect(MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, streamExperts: 'yes' as never })).rejects.toThrow(ConfigError);
    if (!ctx) return;
    await expect(MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss`, layer: 0, device: DeviceRef.GPU(), ctx, streamExperts: true })).rejects.toThrow(UnsupportedError);
  });
});

describe('setGpuStacks: GPU stacks made outside loadStateDict, checked against the parameters', () => {
  const opts = { hiddenDim: 64, numExperts: 4, numExpertsPerToken: 2, moeDim: 32 };
  const fp8 = { format: 'fp8_block' as const, weightBlockSize: [32, 32] as [number, number] };

  it('a stack of the wrong shape, dtype, kind or device is a typed error; nothing is taken and the layer keeps its weights', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const moe = new MoE({ ...opts, devices: [DeviceRef.GPU()], ctx: cx, dtype: 'bfloat16', quantConfig: fp8 });
    const other = await createGpuContext();
    const made: UploadedStack[] = [];
    const make = (shape: ExpertWeightsShape, layout: 'concat' | 'rows', on: GpuContext = cx) => {
      const s = createExpertStack(on, shape, { layout, maxBindingBytes: 8192 });
      made.push(s);
      return s;
    };
    try {
      const sh = moe.stacked.stackShapes();
      const good = { gateUp: make(sh.gateUp, 'concat'), down: make(sh.down, 'rows') };
      expect(good.gateUp.weights.kind, 'gate_up split at 8 KiB').toBe('chunked');
      expect(good.down.weights.kind, 'down in one buffer per tensor').toBe('fp8_block');
      const bad = (what: Partial<typeof good>) => () => moe.stacked.setGpuStacks({ ...good, ...what });
      if (sh.gateUp.kind !== 'fp8_block') throw new Error('fp8 expected');
      expect(bad({ gateUp: make({ ...sh.gateUp, q: { dtype: 'float8_e4m3fn', shape: [4, 64, 96] }, scaleInv: { dtype: 'float32', shape: [4, 2, 3] } }, 'concat') })).toThrow(ShapeError);
      expect(bad({ gateUp: make({ ...sh.gateUp, q: { dtype: 'float8_e5m2', shape: [4, 64, 64] } }, 'concat') })).toThrow(DTypeError);
      expect(bad({ down: make({ kind: 'dense', w: { dtype: 'bfloat16', shape: [4, 64, 32] } }, 'rows') })).toThrow(/kind/);
      expect(bad({ down: make(sh.down, 'rows', other) })).toThrow(/another device/);
      expect(moe.stacked.gateUpProj.gpu, 'nothing taken').toBeUndefined();
      expect(() => moe.stacked.gpuWeights()).toThrow(); // still not loaded
      moe.stacked.setGpuStacks(good);
      made.splice(made.indexOf(good.gateUp), 1);
      made.splice(made.indexOf(good.down), 1);
      expect(moe.stacked.gpuWeights().gateUp).toBe(good.gateUp.weights);
      const cpu = new MoE({ ...opts, quantConfig: fp8 });
      expect(() => cpu.stacked.setGpuStacks(good)).toThrow(ValueError);
    } finally {
      for (const m of made) destroyExpertWeights(m.weights);
      moe.destroy();
      other.destroy();
    }
  });
});
