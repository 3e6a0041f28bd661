// Layers whose expert stacks exceed the context's binding limit (ctx.maxBindingBytes, lowered here so that the
// small fixtures split): the stacks are uploaded split over several buffers (several chunks, every expert cut in
// pieces) and the layer gives the SAME BITS as the layer in one buffer per tensor, on the decode path (T = 16,
// graph replay) and the prefill kernels (T = 600), and the transformers goldens within their tolerances; the GPU
// bytes stay those of the packed weights and scales.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { dirSource } from '@webmoe/tensor/node';
import { LimitError, createGpuContext, type ExpertStackGpu, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, withMaxBindingBytes } from '@webmoe/kernels-wgsl/testing';
import { MoE, openHFCheckpoint, quantize, type MoECheckpoint } from '../src/index.js';
import { CT_CASES, ctCase } from './ct-writer.js';
import { ARCHS, FIXTURES, GOLDEN_SETS, chunking, firstBitDiff, forwardLogged, goldenTensors, loadGolden, relErr } from './helpers.js';

let ctx: GpuContext | null;
const opened: MoECheckpoint[] = [];
beforeAll(async () => {
  ctx = await testGpu();
});
afterAll(async () => {
  for (const ck of opened) await ck.close?.();
});

/** Bytes of one expert of each stack of a loaded (unchunked) layer: the largest tensor per expert (codes). */
function expertBytes(moe: MoE): number {
  const ws = moe.stacked.gpuWeights();
  const per = (w: ExpertStackGpu) => (w.kind === 'chunked' ? Infinity : Math.max(...Object.values(w).filter((t) => typeof t === 'object' && t && 'byteLength' in t).map((t) => (t as { byteLength: number }).byteLength / moe.numExperts)));
  return Math.min(per(ws.gateUp), per(ws.down));
}

/** Runs x through `a` (one buffer per tensor) and `b` (chunked): same bits; returns b's output and the chunks its expert GEMM dispatches bind. */
async function compare(a: MoE, b: MoE, x: Float32Array, T: number, H: number, cx: GpuContext, cxSmall: GpuContext): Promise<{ y: Float32Array; gemms: number }> {
  const ya = (await forwardLogged(cx, a, x, T, H)).y;
  const { y: yb, dispatched } = await forwardLogged(cxSmall, b, x, T, H);
  const i = firstBitDiff(yb, ya);
  expect(i, `chunked vs one buffer: first differing element ${i} (${yb[i]} vs ${ya[i]})`).toBe(-1);
  // graph replay (T <= 64) and the recorded forward of the chunked layer: same bits again
  const again = (await forwardLogged(cxSmall, b, x, T, H)).y;
  expect(firstBitDiff(again, ya), 'second forward (graph replay for T <= 64)').toBe(-1);
  // chunks bound by the expert GEMM dispatches: one each, or the decode GEMVs' several (variant.chunks, padding included)
  const gemms = dispatched.filter((d) => ['moe_gemv', 'grouped_gemm', 'grouped_gemm_fast', 'grouped_gemm_sgmat'].includes(d.kernel)).reduce((n, d) => n + (typeof d.variant.chunks === 'number' ? d.variant.chunks : 1), 0);
  return { y: yb, gemms };
}

function expectSameBytes(a: MoE, b: MoE): void {
  const ba = a.gpuBytes();
  const bb = b.gpuBytes();
  // each chunk pads its tensors to whole u32 words: at most 3 bytes per chunk tensor
  expect(bb.expertWeights + bb.expertScales).toBeGreaterThanOrEqual(ba.expertWeights + ba.expertScales);
  expect(bb.expertWeights + bb.expertScales).toBeLessThanOrEqual(1.02 * (ba.expertWeights + ba.expertScales));
  expect(bb.other).toBeGreaterThanOrEqual(ba.other);
  expect(bb.other).toBeLessThanOrEqual(1.02 * ba.other);
}

describe('MoE.fromHuggingFace with expert stacks split over buffers: bit for bit, and the goldens', () => {
  for (const set of GOLDEN_SETS) {
    for (const arch of ARCHS) {
      for (const dtype of ['float32', 'bfloat16'] as const) {
        it(`${arch} ${set} ${dtype}`, async (c) => {
          if (!ctx) return c.skip('no WebGPU adapter');
          const cx = ctx;
          const g = loadGolden(arch, set);
          const load = (on: GpuContext) => MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype, device: DeviceRef.GPU(), ctx: on });
          const a = await load(cx);
          let b: MoE | undefined;
          try {
            // below one expert of either stack: every expert in pieces
            const small = withMaxBindingBytes(cx, Math.floor((0.6 * expertBytes(a)) / 4) * 4);
            b = await load(small);
            const w = b.stacked.gpuWeights();
            const gu = chunking(w.gateUp);
            const dn = chunking(w.down);
            expect(gu.split && dn.split, `both stacks split inside experts (${gu.chunks} + ${dn.chunks} chunks)`).toBe(true);
            expect(gu.chunks).toBeGreaterThan(b.numExperts);
            const input = dtype === 'float32' ? g.input : g.inputBf16;
            const { y, gemms } = await compare(a, b, input, g.T, g.H, cx, small);
            expect(gemms, 'every chunk bound by an expert GEMM dispatch (routed experts)').toBeGreaterThanOrEqual(gu.chunks + dn.chunks);
            const err = relErr(y, dtype === 'float32' ? g.output : g.outputBf16);
            expect(err, `${arch} ${set} ${dtype} chunked rel err ${err}`).toBeLessThan(dtype === 'float32' ? g.f32Tol : g.bf16Tol);
            expectSameBytes(a, b);
          } finally {
            a.destroy();
            b?.destroy();
          }
        }, 600_000);
      }
    }
  }
});

describe('createGpuContext({ maxBindingBytes }): a device of its own with the lowered limit', () => {
  it('mixtral golden bf16: the layer splits its stacks, gives the golden and the bits of the layer in one buffer', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = loadGolden('mixtral', 'golden');
    const load = (on: GpuContext) => MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: on });
    const a = await load(ctx);
    const own = await createGpuContext({ maxBindingBytes: 2048 }); // below one expert of down ([64, 32] bf16: 4 KiB)
    let b: MoE | undefined;
    try {
      expect(own.maxBindingBytes).toBe(2048);
      b = await load(own);
      const w = b.stacked.gpuWeights();
      expect(chunking(w.gateUp).split && chunking(w.down).split).toBe(true);
      const ya = (await forwardLogged(ctx, a, g.inputBf16, g.T, g.H)).y;
      const yb = (await forwardLogged(own, b, g.inputBf16, g.T, g.H)).y;
      expect(firstBitDiff(yb, ya)).toBe(-1);
      expect(relErr(yb, g.outputBf16)).toBeLessThan(g.bf16Tol);
    } finally {
      a.destroy();
      b?.destroy();
      own.destroy();
    }
  }, 600_000);
});

describe('quantized layers with expert stacks split over buffers', () => {
  it('deepseek_v3_fp8 (128x128 blocks): whole-expert chunks give the same bits and the golden; a split that would cut a block is a LimitError', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const load = (on: GpuContext) => MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, device: DeviceRef.GPU(), ctx: on, activationQuant: 'none' });
    const a = await load(cx);
    let b: MoE | undefined;
    try {
      // gate_up: 256 x 256 fp8 codes (64 KiB) per expert; two experts per binding
      const small = withMaxBindingBytes(cx, 2 * 65536);
      b = await load(small);
      const w = b.stacked.gpuWeights();
      expect(chunking(w.gateUp)).toEqual({ chunks: 4, split: false });
      expect(chunking(w.down)).toEqual({ chunks: 2, split: false });
      for (const set of ['golden', 'golden-large'] as const) {
        const g = goldenTensors('deepseek_v3_fp8', set);
        const x = g.get('input')!;
        const { y } = await compare(a, b, x.values, x.shape[0], x.shape[1], cx, small);
        expect(relErr(y, g.get('output_weight_only')!.values)).toBeLessThan(set === 'golden' ? 1e-4 : 1e-3);
      }
      expectSameBytes(a, b);
      // one gate_up expert (one 128-row scale block per half) does not fit 32 KiB, and cannot be cut inside a block
      await expect(load(withMaxBindingBytes(cx, 32768))).rejects.toThrow(LimitError);
    } finally {
      a.destroy();
      b?.destroy();
    }
  }, 600_000);

  it('gpt_oss_mxfp4 (interleaved gate_up, biases): every expert in pieces, same bits, the golden', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const load = (on: GpuContext) => MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss_mxfp4`, layer: 0, device: DeviceRef.GPU(), ctx: on });
    const a = await load(cx);
    let b: MoE | undefined;
    try {
      const small = withMaxBindingBytes(cx, Math.floor((0.6 * expertBytes(a)) / 4) * 4);
      b = await load(small);
      const w = b.stacked.gpuWeights();
      expect(chunking(w.gateUp).split && chunking(w.down).split).toBe(true);
      expect(w.gateUp.kind === 'chunked' && w.gateUp.chunks.every((ch) => ch.bias !== undefined)).toBe(true);
      const g = goldenTensors('gpt_oss_mxfp4');
      const x = g.get('input')!;
      const { y } = await compare(a, b, x.values, x.shape[0], x.shape[1], cx, small);
      expect(relErr(y, g.get('output')!.values)).toBeLessThan(1e-4);
      expectSameBytes(a, b);
    } finally {
      a.destroy();
      b?.destroy();
    }
  }, 600_000);

  for (const format of ['int4', 'int8'] as const) {
    it(`${format} (quantize() of mixtral): every expert in pieces, same bits at T = 16 and 600`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const cx = ctx;
      const src = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, device: DeviceRef.GPU(), ctx: cx });
      let a: MoE | undefined;
      let bSrc: MoE | undefined;
      let b: MoE | undefined;
      try {
        a = quantize(src, format);
        const small = withMaxBindingBytes(cx, Math.floor((0.6 * expertBytes(a)) / 4) * 4);
        bSrc = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, device: DeviceRef.GPU(), ctx: small });
        b = quantize(bSrc, format);
        const w = b.stacked.gpuWeights();
        expect(chunking(w.gateUp).split && chunking(w.down).split).toBe(true);
        for (const set of GOLDEN_SETS) {
          const g = loadGolden('mixtral', set);
          await compare(a, b, g.input, g.T, g.H, cx, small);
        }
        expectSameBytes(a, b);
      } finally {
        for (const m of [src, a, bSrc, b]) m?.destroy();
      }
    }, 600_000);
  }

  for (const cc of CT_CASES.filter((k) => !k.scheme.symmetric)) {
    it(`compressed-tensors ${cc.name} (zero points): every expert in pieces, same bits at T = 16 and 600`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const cx = ctx;
      const { ct } = await ctCase(cc, async (arch) => {
        const ck = await openHFCheckpoint(dirSource(`${FIXTURES}/${arch}`));
        opened.push(ck);
        return ck;
      });
      const a = await MoE.fromHuggingFace({ source: ct, layer: 0, device: DeviceRef.GPU(), ctx: cx });
      let b: MoE | undefined;
      try {
        const small = withMaxBindingBytes(cx, Math.floor((0.6 * expertBytes(a)) / 4) * 4);
        b = await MoE.fromHuggingFace({ source: ct, layer: 0, device: DeviceRef.GPU(), ctx: small });
        const w = b.stacked.gpuWeights();
        expect(chunking(w.gateUp).split && chunking(w.down).split).toBe(true);
        expect(w.gateUp.kind === 'chunked' && w.gateUp.chunks.every((ch) => ch.w.kind === 'int_block' && ch.w.zeros !== undefined)).toBe(true);
        for (const set of GOLDEN_SETS) {
          const g = loadGolden(cc.arch, set);
          await compare(a, b, g.input, g.T, g.H, cx, small);
        }
        expectSameBytes(a, b);
      } finally {
        a.destroy();
        b?.destroy();
      }
    }, 600_000);
  }
});
