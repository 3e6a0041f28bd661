// The combined down GEMV (gemvDownCombineGpu: the down projection and the combine in one dispatch) against the
// references (combineRef over groupedDownRef's rows) and against the two-dispatch path (gemvDownGpu + combineGpu),
// randomized: 16-bit dense weights and every packed format of the row-blocked path, bias, weighted and unweighted
// sums, shared experts with and without their gate, T = 1 and 3, output counts that leave workgroups part empty,
// the row blockings and split-K kernels; NaN codes; the inputs it refuses.
import { describe, it, expect, beforeAll } from 'vitest';
import { DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import {
  GpuTensor, Recorder, combineGpu, combineRef, gemvDownGpu, gemvDownCombineGpu, gemvCombineSupports, groupedDownRef, quantizeExperts,
  uploadExpertWeights, uploadExpertStack, destroyExpertWeights,
  type GpuContext, type ExpertQuantFormat, type ExpertWeightsHost, type GemvPackedKernel,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { randomZeros } from './quant-helpers.js';
import { hostGrouping, randomIdx, uploadGrouping } from './grouped-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type Shared = 'none' | 'shared' | 'gated';
interface Case {
  name: string;
  /** A dense dtype or a packed format. */
  w: 'bfloat16' | 'float16' | ExpertQuantFormat;
  T: number;
  k: number;
  E: number;
  H: number;
  I: number;
  bias: boolean;
  weighted: boolean;
  shared: Shared;
  kernels: GemvPackedKernel[];
}

// H: outputs, not a multiple of the workgroup's outputs in most cases; I: the row length, chunks that do not fill the lanes' steps
const CASES: Case[] = [
  { name: 'bf16', w: 'bfloat16', T: 1, k: 4, E: 7, H: 200, I: 520, bias: true, weighted: true, shared: 'none', kernels: ['rows2', 'rows2k2', 'rows2k4', 'rows2i'] },
  { name: 'f16, shared experts with gate', w: 'float16', T: 3, k: 2, E: 5, H: 72, I: 40, bias: false, weighted: true, shared: 'gated', kernels: ['rows4'] },
  { name: 'bf16, unweighted (router weight first), shared', w: 'bfloat16', T: 2, k: 1, E: 4, H: 136, I: 24, bias: true, weighted: false, shared: 'shared', kernels: ['rows1'] },
  { name: 'int4 blocks of 32, f16 scales', w: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 1, k: 3, E: 6, H: 88, I: 1056, bias: true, weighted: true, shared: 'none', kernels: ['rows2', 'rows1k8', 'rows4i'] },
  { name: 'int4 + zero points', w: { kind: 'int_block', bits: 4, blockSize: 64, zeroPoint: true }, T: 3, k: 2, E: 5, H: 48, I: 128, bias: false, weighted: true, shared: 'shared', kernels: ['rows2', 'rows1i'] },
  { name: 'int8 blocks of 16 + zero points', w: { kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float16', zeroPoint: true }, T: 1, k: 2, E: 3, H: 40, I: 80, bias: true, weighted: false, shared: 'none', kernels: ['rows4k2', 'rows4k2i'] },
  { name: 'mxfp4', w: { kind: 'mxfp4' }, T: 1, k: 4, E: 8, H: 96, I: 1088, bias: true, weighted: true, shared: 'gated', kernels: ['rows2', 'rows2k4i'] },
  { name: 'fp8 e4m3 128x128 blocks', w: { kind: 'fp8_block' }, T: 1, k: 8, E: 9, H: 264, I: 560, bias: false, weighted: true, shared: 'none', kernels: ['rows2', 'rows2k2', 'rows2i'] },
  { name: 'fp8 e5m2 32x32 blocks', w: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [32, 32] }, T: 2, k: 2, E: 4, H: 56, I: 64, bias: true, weighted: true, shared: 'shared', kernels: ['rows1', 'rows1i'] },
];

/** The case's down weights [E, H, I] from random values (packed formats with random zero points). */
function downWeights(r: () => number, c: Case): ExpertWeightsHost {
  const v = randomArray(r, c.E * c.H * c.I, -0.3, 0.3);
  if (typeof c.w === 'string') return { kind: 'dense', w: HostTensor.fromFloat32([c.E, c.H, c.I], v, c.w) };
  return randomZeros(r, quantizeExperts(v, c.E, c.H, c.I, c.w));
}

/** One combined down GEMV of grouped rows h [T*k, I] over host down weights `w` (uploaded and freed here), its output downloaded. */
function combinedOnce(c: GpuContext, w: ExpertWeightsHost, g: ReturnType<typeof hostGrouping>, io: { T: number; k: number; I: number; h: Float32Array; idx: Uint32Array; weights: Float32Array }, opts: { packedKernel?: GemvPackedKernel } = {}): Promise<Float32Array> {
  const { T, k, I } = io;
  return gpuChecked(c, async () => {
    const gg = uploadGrouping(c, g);
    const wg = uploadExpertWeights(c, w);
    const hg = GpuTensor.upload(c, new HostTensor('float32', [T * k, I], io.h));
    const ig = GpuTensor.upload(c, new HostTensor('uint32', [T, k], io.idx));
    const wt = GpuTensor.upload(c, new HostTensor('float32', [T, k], io.weights));
    const rec = new Recorder(c);
    const o = gemvDownCombineGpu(c, rec, hg, gg, ig, wt, wg, opts);
    rec.submit();
    const y = (await o.download()).toFloat32();
    for (const b of [o, hg, ig, wt]) b.destroy();
    destroyExpertWeights(wg);
    gg.destroy();
    return y;
  });
}

describe('combined down GEMV (down projection and combine in one dispatch)', () => {
  CASES.forEach((c, i) => {
    it(`${c.name}, ${c.kernels.join(' ')}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}${c.bias ? ', bias' : ''}${c.weighted ? '' : ', unweighted'}${c.shared === 'none' ? '' : `, ${c.shared}`}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(900 + i);
      const { T, k, E, H, I } = c;
      const idx = randomIdx(r, T, k, E);
      const g = hostGrouping(idx, T, k, E);
      const h = randomArray(r, T * k * I);
      const dn = downWeights(r, c);
      const bias = c.bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.5, 0.5), i % 2 ? 'bfloat16' : 'float32') : undefined;
      const weights = c.weighted ? randomArray(r, T * k, 0.05, 1) : null;
      const shared = c.shared !== 'none' ? randomArray(r, T * H) : undefined;
      const gate = c.shared === 'gated' ? randomArray(r, T, -3, 3) : undefined;
      const want = combineRef(groupedDownRef(h, g, dn, bias), g, weights, shared, gate);
      const got = await gpuChecked(cx, async () => {
        const gg = uploadGrouping(cx, g);
        const wg = uploadExpertWeights(cx, dn);
        const up = (shape: number[], v: Float32Array | Uint32Array, dtype: 'float32' | 'uint32' = 'float32') => GpuTensor.upload(cx, new HostTensor(dtype, shape, v));
        const hg = up([T * k, I], h);
        const ig = up([T, k], idx, 'uint32');
        const bg = bias && GpuTensor.upload(cx, bias);
        const wt = weights ? up([T, k], weights) : null;
        const sg = shared && up([T, H], shared);
        const gl = gate && up([T, 1], gate);
        expect(gemvCombineSupports(wg, T, k)).toBe(true);
        const outs: { kernel: string; y: Float32Array }[] = [];
        for (const packedKernel of c.kernels) {
          const rec = new Recorder(cx);
          const o = gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, wg, { packedKernel, bias: bg, shared: sg, sharedGateLogit: gl });
          rec.submit();
          outs.push({ kernel: packedKernel, y: (await o.download()).toFloat32() });
          o.destroy();
        }
        // the two-dispatch path on the same buffers, the planner's kernels
        const rec = new Recorder(cx);
        const y = gemvDownGpu(cx, rec, hg, gg, wg, { bias: bg });
        const o = combineGpu(cx, rec, y, gg, wt, { shared: sg, sharedGateLogit: gl });
        rec.submit();
        outs.push({ kernel: 'gemvDownGpu + combineGpu', y: (await o.download()).toFloat32() });
        for (const b of [o, y, hg, ig, bg, wt, sg, gl]) b?.destroy();
        destroyExpertWeights(wg);
        gg.destroy();
        return outs;
      });
      for (const o of got) {
        expect(o.y.every(Number.isFinite), o.kernel).toBe(true);
        expect(relErr(o.y, want), o.kernel).toBeLessThan(2e-5);
      }
    }, 600_000); // lavapipe compiles the unrolled row-blocked variants slowly
  });

  // T = 1 and 4: the GPU rule takes 16-bit weights up to 4 tokens (KERNEL_CROSSOVERS.combinedDownMaxTokens)
  for (const T of [1, 4]) it(`the planner's kernel for 16-bit weights: 'rows2' on a software adapter, 'rows2k2' on a GPU (this device seen as one), the same sums (T = ${T})`, async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const gpuView = Object.create(cx, { adapterInfo: { value: { ...cx.adapterInfo, software: false }, enumerable: true } }) as GpuContext;
    const r = rng(77 + T);
    const [k, E, H, I] = [8, 12, 72, 264];
    const idx = randomIdx(r, T, k, E);
    const g = hostGrouping(idx, T, k, E);
    const h = randomArray(r, T * k * I);
    const dn: ExpertWeightsHost = { kind: 'dense', w: HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I, -0.3, 0.3), 'bfloat16') };
    const weights = randomArray(r, T * k, 0.05, 1);
    const want = combineRef(groupedDownRef(h, g, dn, undefined), g, weights);
    const run = (c: GpuContext) => withDispatchLog(() => combinedOnce(c, dn, g, { T, k, I, h, idx, weights }));
    const blocking = (d: { variant: object }) => { const v = d.variant as { ro?: number; ks?: number }; return `ro ${v.ro} ks ${v.ks ?? 1}`; };
    const asGpu = await run(gpuView);
    expect(asGpu.dispatched.map(blocking)).toEqual(['ro 2 ks 2']);
    expect(relErr(asGpu.result, want)).toBeLessThan(2e-5);
    if (cx.adapterInfo.software) {
      const asSoftware = await run(cx);
      expect(asSoftware.dispatched.map(blocking)).toEqual(['ro 2 ks 1']);
      expect(relErr(asSoftware.result, want)).toBeLessThan(2e-5);
    }
  });

  it('gives NaN for the outputs whose weight rows hold an fp8 NaN code, in every token routed to that expert', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const T = 2, k = 2, E = 3, H = 16, I = 32;
    const r = rng(31);
    const w = quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, { kind: 'fp8_block', block: [16, 32] }) as Extract<ExpertWeightsHost, { kind: 'fp8_block' }>;
    // expert 1, output row 5, column 7: e4m3 NaN (0x7f)
    (w.q.data as Uint8Array)[(1 * H + 5) * I + 7] = 0x7f;
    // token 0 -> experts 1, 2; token 1 -> experts 0, 2
    const idx = new Uint32Array([1, 2, 0, 2]);
    const g = hostGrouping(idx, T, k, E);
    const h = randomArray(r, T * k * I);
    const weights = randomArray(r, T * k, 0.1, 1);
    const y = await combinedOnce(cx, w, g, { T, k, I, h, idx, weights }, { packedKernel: 'rows2' });
    const want = combineRef(groupedDownRef(h, g, w, undefined), g, weights);
    expect(Number.isNaN(want[5]) && Number.isNaN(y[5]), 'token 0, output 5').toBe(true);
    const rest = Array.from(y).filter((_, i) => i !== 5);
    expect(rest.every(Number.isFinite)).toBe(true);
    expect(relErr(Float32Array.from(rest), Float32Array.from(Array.from(want).filter((_, i) => i !== 5)))).toBeLessThan(2e-5);
  });

  it('refuses what it cannot take, with typed errors, before recording anything', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const T = 1, k = 2, E = 4, H = 16, I = 32;
    const r = rng(5);
    const g = hostGrouping(new Uint32Array([0, 3]), T, k, E);
    const bf = HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I), 'bfloat16');
    const { dispatched } = await withDispatchLog(() => gpuChecked(cx, async () => {
      const gg = uploadGrouping(cx, g);
      const wg = uploadExpertWeights(cx, { kind: 'dense', w: bf });
      const f32 = uploadExpertWeights(cx, { kind: 'dense', w: HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I)) });
      // two experts per chunk: a chunked stack
      const host: ExpertWeightsHost = { kind: 'dense', w: bf };
      const chunked = uploadExpertStack(cx, host, { layout: 'rows', maxBindingBytes: 2 * H * I * 2 });
      const hg = GpuTensor.upload(cx, new HostTensor('float32', [T * k, I], randomArray(r, T * k * I)));
      const ig = GpuTensor.upload(cx, new HostTensor('uint32', [T, k], new Uint32Array([0, 3])));
      const iBad = GpuTensor.upload(cx, new HostTensor('float32', [T, k], new Float32Array(2)));
      const wt = GpuTensor.upload(cx, new HostTensor('float32', [T, k], new Float32Array([0.5, 0.5])));
      expect(chunked.weights.kind).toBe('chunked');
      expect(gemvCombineSupports(f32, T, k)).toBe(false);
      expect(gemvCombineSupports(chunked.weights, T, k)).toBe(false);
      expect(gemvCombineSupports(wg, T, k)).toBe(true);
      const rec = new Recorder(cx);
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, f32)).toThrow(ValueError);
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, chunked.weights)).toThrow(ValueError);
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, iBad, wt, wg)).toThrow(DTypeError);
      expect(() => gemvDownCombineGpu(cx, rec, ig, gg, ig, wt, wg)).toThrow(ShapeError);
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, wg, { shared: wt })).toThrow(ShapeError);
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, wg, { packedKernel: 'table' })).toThrow(ValueError);
      // the staged-x kernels hold one token row's x slice: not the combined GEMV's several tokens
      expect(() => gemvDownCombineGpu(cx, rec, hg, gg, ig, wt, wg, { packedKernel: 'rows2s' })).toThrow(/staged-x kernel \(rows2s\)/);
      rec.submit();
      for (const b of [hg, ig, iBad, wt]) b.destroy();
      for (const s of [wg, f32, chunked.weights]) destroyExpertWeights(s);
      gg.destroy();
    }));
    expect(dispatched).toEqual([]);
  });
});
