import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, ValueError } from '@webmoe/tensor';
import {
  LimitError,
  GpuTensor,
  Recorder,
  destroyExpertWeights,
  expertDims,
  expertWeightBytes,
  groupedDownGpu,
  groupedDownRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  quantizeExperts,
  uploadExpertWeights,
  type ExpertActQuantOptions,
  type ExpertActivation,
  type ExpertQuantFormat,
  type ExpertWeightsHost,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { hostGrouping, randInt, randomIdx, uploadGrouping } from './grouped-helpers.js';
import { elementOf, randomZeros } from './quant-helpers.js';
import { withSmallGrid } from './small-grid.js';
import { planFastGemm } from '../src/kernels/grouped-gemm-fast.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** The weights dequantised by the independent element decoder, as a dense f32 container. */
function dequantDense(w: ExpertWeightsHost): ExpertWeightsHost {
  const { E, rows, cols } = expertDims(w);
  const out = new Float32Array(E * rows * cols);
  for (let e = 0; e < E; e++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[(e * rows + r) * cols + c] = elementOf(w, e, r, c);
  return { kind: 'dense', w: new HostTensor('float32', [E, rows, cols], out) };
}

/** Random fp8 codes (finite only) with random per-block scales. */
function randomFp8(r: () => number, dt: 'float8_e4m3fn' | 'float8_e5m2', E: number, rows: number, cols: number, block: [number, number]): ExpertWeightsHost {
  const q = Uint8Array.from({ length: E * rows * cols }, () => (dt === 'float8_e4m3fn' ? randInt(r, 0, 0x7e) : randInt(r, 0, 0x7b)) | (r() < 0.5 ? 0x80 : 0));
  const nbr = Math.ceil(rows / block[0]);
  const nbc = Math.ceil(cols / block[1]);
  const s = randomArray(r, E * nbr * nbc, dt === 'float8_e4m3fn' ? 1e-4 : 1e-6, dt === 'float8_e4m3fn' ? 1e-3 : 1e-5);
  return { kind: 'fp8_block', q: new HostTensor(dt, [E, rows, cols], q), scaleInv: new HostTensor('float32', [E, nbr, nbc], s), block };
}

type Fmt = ExpertQuantFormat | { kind: 'random_fp8'; dtype: 'float8_e4m3fn' | 'float8_e5m2'; block: [number, number] };

function makeWeights(r: () => number, f: Fmt, E: number, rows: number, cols: number): ExpertWeightsHost {
  if (f.kind === 'random_fp8') return randomFp8(r, f.dtype, E, rows, cols, f.block);
  return randomZeros(r, quantizeExperts(randomArray(r, E * rows * cols, -0.3, 0.3), E, rows, cols, f));
}

interface QCase {
  name: string;
  T: number;
  k: number;
  E: number;
  H: number;
  I: number;
  gu: Fmt;
  down: Fmt;
  act: ExpertActivation;
  bias?: boolean;
  rowScale?: boolean;
  aq?: ExpertActQuantOptions;
  tile?: 'decode' | 'prefill';
  tol?: number;
}

const silu: ExpertActivation = { kind: 'silu', layout: 'concat' };
const oai: ExpertActivation = { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' };
const lim: ExpertActivation = { kind: 'swiglu_limit', limit: 0.8, layout: 'concat' };

const CASES: QCase[] = [
  { name: 'fp8 e4m3 [128,128], partial edge blocks', T: 5, k: 2, E: 3, H: 150, I: 70, gu: { kind: 'fp8_block' }, down: { kind: 'fp8_block' }, act: silu },
  { name: 'fp8 e5m2 random codes, block [16,24]', T: 1, k: 3, E: 5, H: 45, I: 21, gu: { kind: 'random_fp8', dtype: 'float8_e5m2', block: [16, 24] }, down: { kind: 'random_fp8', dtype: 'float8_e5m2', block: [16, 24] }, act: oai, bias: true },
  { name: 'fp8 e4m3 random codes, >= 1000 rows, block [8,16]', T: 1000, k: 1, E: 4, H: 33, I: 17, gu: { kind: 'random_fp8', dtype: 'float8_e4m3fn', block: [8, 16] }, down: { kind: 'fp8_block', block: [8, 16] }, act: lim, rowScale: true },
  { name: 'mxfp4 GPT-OSS style (interleaved, bias, swigluoai)', T: 7, k: 2, E: 4, H: 64, I: 32, gu: { kind: 'mxfp4' }, down: { kind: 'mxfp4' }, act: oai, bias: true },
  { name: 'mxfp4 decode, many experts', T: 1, k: 4, E: 32, H: 96, I: 64, gu: { kind: 'mxfp4' }, down: { kind: 'mxfp4' }, act: silu, rowScale: true },
  { name: 'int4 block 16 f16 scales (partial block)', T: 9, k: 2, E: 6, H: 38, I: 24, gu: { kind: 'int_block', bits: 4, blockSize: 16, scaleDtype: 'float16' }, down: { kind: 'int_block', bits: 4, blockSize: 16, scaleDtype: 'float16' }, act: silu, bias: true },
  { name: 'int8 block 32 f32 scales, odd sizes', T: 5, k: 1, E: 2, H: 37, I: 19, gu: { kind: 'int_block', bits: 8, blockSize: 32 }, down: { kind: 'int_block', bits: 8, blockSize: 7 }, act: lim, tile: 'prefill' },
  { name: 'int4 >= 1000 rows, prefill', T: 300, k: 4, E: 10, H: 40, I: 22, gu: { kind: 'int_block', bits: 4, blockSize: 32 }, down: { kind: 'int_block', bits: 8, blockSize: 5, scaleDtype: 'float16' }, act: oai },
  // Zero points (asymmetric, compressed-tensors): random codes per block (randomZeros), element-wise and word loads.
  { name: 'int4 + zero points, block 16 f16 scales, odd sizes, decode tile', T: 7, k: 2, E: 5, H: 38, I: 21, gu: { kind: 'int_block', bits: 4, blockSize: 16, scaleDtype: 'float16', zeroPoint: true }, down: { kind: 'int_block', bits: 8, blockSize: 5, zeroPoint: true }, act: silu, bias: true, tile: 'decode' },
  { name: 'int4 + zero points, block 8 (word loads, one scale per word), prefill tile', T: 9, k: 3, E: 4, H: 48, I: 24, gu: { kind: 'int_block', bits: 4, blockSize: 8, zeroPoint: true }, down: { kind: 'int_block', bits: 4, blockSize: 12, scaleDtype: 'float16', zeroPoint: true }, act: oai, rowScale: true, tile: 'prefill' },
  { name: 'int4 + zero points >= 1000 rows (default: the fast kernels)', T: 300, k: 4, E: 10, H: 40, I: 24, gu: { kind: 'int_block', bits: 4, blockSize: 8, zeroPoint: true }, down: { kind: 'int_block', bits: 4, blockSize: 24, scaleDtype: 'float16', zeroPoint: true }, act: lim },
  { name: 'w8a8: fp8 weights + fp8 dynamic activations', T: 6, k: 2, E: 3, H: 300, I: 140, gu: { kind: 'fp8_block' }, down: { kind: 'fp8_block' }, act: silu, aq: { actQuant: 'fp8_dynamic' }, tol: 1e-4 },
  { name: 'w8a8 with rowScale and amax clamp 1200', T: 4, k: 2, E: 4, H: 131, I: 129, gu: { kind: 'fp8_block' }, down: { kind: 'fp8_block', dtype: 'float8_e4m3fn' }, act: oai, rowScale: true, aq: { actQuant: 'fp8_dynamic', actAmaxClamp: 1200 }, tol: 1e-4 },
  { name: 'dense bf16 weights + fp8 dynamic activations, small clamp', T: 1, k: 2, E: 2, H: 200, I: 33, gu: { kind: 'dense', dtype: 'bfloat16' }, down: { kind: 'dense', dtype: 'float16' }, act: silu, aq: { actQuant: 'fp8_dynamic', actAmaxClamp: 0.5 }, tol: 1e-4 },
];

describe('grouped GEMMs with quantized weights vs reference', () => {
  CASES.forEach((c, n) => {
    it(`${c.name}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const r = rng(5000 + n);
      const { T, k, E, H, I } = c;
      const wgu = makeWeights(r, c.gu, E, 2 * I, H);
      const wd = makeWeights(r, c.down, E, H, I);
      const x = randomArray(r, T * H, -2, 2);
      const bgu = c.bias ? HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.5, 0.5)) : undefined;
      const bd = c.bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.5, 0.5), 'bfloat16') : undefined;
      const rs = c.rowScale ? randomArray(r, T * k, 0.2, 1.3) : undefined;
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const aq = c.aq ?? {};
      // Reference on the quantized weights, checked against the same GEMM on independently dequantised weights.
      const hRef = groupedGateUpRef(x, g, wgu, bgu, c.act, rs, aq);
      expect(relErr(hRef, groupedGateUpRef(x, g, dequantDense(wgu), bgu, c.act, rs, aq))).toBeLessThan(1e-6);
      const yRef = groupedDownRef(hRef, g, wd, bd, aq);
      expect(relErr(yRef, groupedDownRef(hRef, g, dequantDense(wd), bd, aq))).toBeLessThan(1e-6);
      if (aq.actQuant === 'fp8_dynamic') {
        // The activation quantiser must matter at this tolerance.
        expect(relErr(groupedGateUpRef(x, g, wgu, bgu, c.act, rs), hRef)).toBeGreaterThan(1e-3);
      }
      const { h, y, bytes, f16Staged } = await gpuChecked(ctx, async () => {
        const gx = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, H], x));
        const ggu = uploadExpertWeights(ctx!, wgu);
        const gd = uploadExpertWeights(ctx!, wd);
        const gb1 = bgu ? GpuTensor.upload(ctx!, bgu) : undefined;
        const gb2 = bd ? GpuTensor.upload(ctx!, bd) : undefined;
        const grs = rs ? GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, k], rs)) : undefined;
        const gg = uploadGrouping(ctx!, g);
        const rec = new Recorder(ctx!);
        const gh = groupedGateUpGpu(ctx!, rec, gx, gg, ggu, gb1, c.act, { rowScale: grs, tile: c.tile, ...aq });
        // down on the reference h, so that each op is compared on its own.
        const gh2 = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T * k, I], hRef));
        const gy = groupedDownGpu(ctx!, rec, gh2, gg, gd, gb2, { tile: c.tile, ...aq });
        rec.submit();
        // Prefill-sized calls take the fast kernels (grouped-gemm-fast.ts); the subgroup-matrix one (default where the
        // adapter has it) stages x and the decoded weights as f16: its tolerance is that of the fast GEMM tests.
        const staged = (w: typeof ggu, N: number, K: number, op: 'gate_up' | 'down') => (planFastGemm(ctx!, { tile: c.tile, ...aq }, w, T * k, E, N, K, op)?.kind ?? 'f32') !== 'f32';
        const out = {
          h: (await gh.download()).data as Float32Array,
          y: (await gy.download()).data as Float32Array,
          bytes: [expertWeightBytes(ggu), expertWeightBytes(gd)],
          f16Staged: [staged(ggu, I, H, 'gate_up'), staged(gd, H, I, 'down')],
        };
        for (const z of [gx, gb1, gb2, grs, gh, gh2, gy]) z?.destroy();
        destroyExpertWeights(ggu);
        destroyExpertWeights(gd);
        gg.destroy();
        return out;
      });
      const tol = c.tol ?? 2e-5;
      expect(relErr(h, hRef), 'gate_up').toBeLessThan(f16Staged[0] ? Math.max(tol, 2e-3) : tol);
      expect(relErr(y, yRef), 'down').toBeLessThan(f16Staged[1] ? Math.max(tol, 2e-3) : tol);
      // GPU bytes held: packed codes and scales, padded to whole u32 words.
      const pad = (b: number) => Math.max(4, Math.ceil(b / 4) * 4);
      const hostBytes = (w: ExpertWeightsHost) =>
        w.kind === 'dense' ? { weights: pad(w.w.byteLength), scales: 0 }
        : w.kind === 'fp8_block' ? { weights: pad(w.q.byteLength), scales: pad(w.scaleInv.byteLength) }
        : w.kind === 'mxfp4' ? { weights: pad(w.blocks.byteLength), scales: pad(w.scales.byteLength) }
        : { weights: pad(w.q.byteLength), scales: pad(w.scales.byteLength) + (w.zeros ? pad(w.zeros.byteLength) : 0) };
      expect(bytes).toEqual([hostBytes(wgu), hostBytes(wd)]);
    });
  });
});

describe('expertWeightBytes', () => {
  it('reports packed sizes: mxfp4 is 17/32 byte per weight, int4 half a byte plus scales', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const E = 2, rows = 64, cols = 128;
    const f = new Float32Array(E * rows * cols).fill(0.25);
    const mx = uploadExpertWeights(ctx, quantizeExperts(f, E, rows, cols, { kind: 'mxfp4' }));
    expect(expertWeightBytes(mx)).toEqual({ weights: (E * rows * cols) / 2, scales: (E * rows * cols) / 32 });
    const i4 = uploadExpertWeights(ctx, quantizeExperts(f, E, rows, cols, { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }));
    expect(expertWeightBytes(i4)).toEqual({ weights: (E * rows * cols) / 2, scales: E * rows * 4 * 2 });
    const f8 = uploadExpertWeights(ctx, quantizeExperts(f, E, rows, cols, { kind: 'fp8_block' }));
    expect(expertWeightBytes(f8)).toEqual({ weights: E * rows * cols, scales: E * 4 });
    for (const w of [mx, i4, f8]) destroyExpertWeights(w);
    expect(() => expertWeightBytes({ kind: 'nf4' } as never)).toThrow(ValueError);
  });
});

describe('folded grids', () => {
  it('gate_up (mxfp4, fp8 activations, rowScale) and down (int4) past maxComputeWorkgroupsPerDimension', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const small = withSmallGrid(ctx, 12);
    const r = rng(909);
    const T = 40, k = 2, E = 5, H = 160, I = 64;
    const act: ExpertActivation = { kind: 'swigluoai', layout: 'interleaved' };
    const aq: ExpertActQuantOptions = { actQuant: 'fp8_dynamic' };
    const wgu = quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, { kind: 'mxfp4' });
    const wd = quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, { kind: 'int_block', bits: 4, blockSize: 32 });
    const x = randomArray(r, T * H, -2, 2);
    const rs = randomArray(r, T * k, 0.2, 1.3);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const hRef = groupedGateUpRef(x, g, wgu, undefined, act, rs, aq);
    const yRef = groupedDownRef(hRef, g, wd, undefined, aq);
    const { h, y } = await gpuChecked(ctx, async () => {
      const gx = GpuTensor.upload(small, HostTensor.fromFloat32([T, H], x));
      const grs = GpuTensor.upload(small, HostTensor.fromFloat32([T, k], rs));
      const a = uploadExpertWeights(small, wgu);
      const b = uploadExpertWeights(small, wd);
      const gg = uploadGrouping(small, g);
      const rec = new Recorder(small);
      const gh = groupedGateUpGpu(small, rec, gx, gg, a, undefined, act, { rowScale: grs, ...aq });
      const gh2 = GpuTensor.upload(small, HostTensor.fromFloat32([T * k, I], hRef));
      const gy = groupedDownGpu(small, rec, gh2, gg, b, undefined, aq);
      // 125 workgroups do not fit a 9 x 9 grid: a typed error before anything is recorded or allocated.
      const tiny = withSmallGrid(ctx!, 9);
      expect(() => groupedDownGpu(tiny, rec, gh2, gg, b, undefined, aq)).toThrow(LimitError);
      expect(() => groupedDownGpu(tiny, rec, gh2, gg, b, undefined, aq)).toThrow(/requested 125, the device allows 81/);
      rec.submit();
      const out = { h: (await gh.download()).data as Float32Array, y: (await gy.download()).data as Float32Array };
      for (const z of [gx, grs, gh, gh2, gy]) z.destroy();
      destroyExpertWeights(a);
      destroyExpertWeights(b);
      gg.destroy();
      return out;
    });
    expect(relErr(h, hRef)).toBeLessThan(1e-4);
    expect(relErr(y, yRef)).toBeLessThan(1e-4);
  });
});

describe('whole-word weight loads (rows a multiple of the values per word) vs element loads vs reference', () => {
  const FMTS: ExpertQuantFormat[] = [
    { kind: 'dense', dtype: 'bfloat16' },
    { kind: 'dense', dtype: 'float16' },
    { kind: 'dense', dtype: 'float32' },
    { kind: 'fp8_block' },
    { kind: 'fp8_block', dtype: 'float8_e5m2', block: [16, 6] },
    { kind: 'fp8_block', block: [5, 12] },
    { kind: 'mxfp4' },
    { kind: 'int_block', bits: 4, blockSize: 32 },
    { kind: 'int_block', bits: 4, blockSize: 12, scaleDtype: 'float16' },
    { kind: 'int_block', bits: 8, blockSize: 6 },
    { kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float16' },
  ];
  FMTS.forEach((f, n) => {
    it(`${JSON.stringify(f)}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const r = rng(7000 + n);
      const T = n % 2 ? 1 : 9, k = 2, E = 4, H = 96, I = 64;
      const act: ExpertActivation = n % 3 === 0 ? oai : n % 3 === 1 ? silu : lim;
      const wgu = quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, f);
      const wd = quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, f);
      const x = randomArray(r, T * H, -2, 2);
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const hRef = groupedGateUpRef(x, g, wgu, undefined, act);
      const yRef = groupedDownRef(hRef, g, wd);
      for (const vectorize of [true, false]) {
        for (const tile of ['decode', 'prefill'] as const) {
          const { h, y } = await gpuChecked(ctx, async () => {
            const gx = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, H], x));
            const a = uploadExpertWeights(ctx!, wgu);
            const b = uploadExpertWeights(ctx!, wd);
            const gg = uploadGrouping(ctx!, g);
            const gh2 = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T * k, I], hRef));
            const rec = new Recorder(ctx!);
            const gh = groupedGateUpGpu(ctx!, rec, gx, gg, a, undefined, act, { vectorize, tile });
            const gy = groupedDownGpu(ctx!, rec, gh2, gg, b, undefined, { vectorize, tile });
            rec.submit();
            const out = { h: (await gh.download()).data as Float32Array, y: (await gy.download()).data as Float32Array };
            for (const z of [gx, gh, gh2, gy]) z.destroy();
            destroyExpertWeights(a);
            destroyExpertWeights(b);
            gg.destroy();
            return out;
          });
          expect(relErr(h, hRef), `gate_up vectorize=${vectorize} tile=${tile}`).toBeLessThan(2e-5);
          expect(relErr(y, yRef), `down vectorize=${vectorize} tile=${tile}`).toBeLessThan(2e-5);
        }
      }
    });
  });
});
