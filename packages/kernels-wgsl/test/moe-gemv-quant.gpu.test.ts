// The decode GEMVs on packed quantized experts (fp8 blocks, int4/int8 blocks,
// MXFP4) against the grouped-GEMM references, which decode every element
// independently (see quant-gemm tests).
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, e4m3ToF32, e5m2ToF32 } from '@webmoe/tensor';
import {
  GpuTensor, Recorder, gemvGateUpGpu, gemvDownGpu, gemvSupports, groupRef, uploadGrouping, quantizeExperts, uploadExpertWeights, destroyExpertWeights,
  groupedGateUpRef, groupedDownRef, type GpuContext, type ExpertQuantFormat, type GemvPackedKernel, type ExpertActivation, type ExpertWeightsHost, type GroupingRef,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, gemvKernelOf, rng, randomArray, relErr, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { gemvPackedPath, type GemvOptions } from '../src/kernels/moe-gemv.js';
import { GEMV_PACKED_KERNELS, KERNEL_CROSSOVERS, gemvRowsPerPass } from '../src/kernels/plan.js';
import { rowsWorkgroupBytes } from '../src/kernels/moe-gemv-rows.js';
import { randomZeros } from './quant-helpers.js';
import { hostGrouping, randomIdx } from './grouped-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** One layer's inputs for {@link runGemvKernels}: grouping, x [T, H], both weight stacks, optional biases and row scales. */
interface GemvLayer {
  g: GroupingRef;
  x: Float32Array;
  guH: ExpertWeightsHost;
  dnH: ExpertWeightsHost;
  guB?: HostTensor;
  dnB?: HostTensor;
  rsv?: Float32Array;
  act: ExpertActivation;
}

/**
 * A random layer for {@link runGemvKernels} (in this order from r: routing, x, gate_up then down weights from
 * `weights(values, rows, cols)`, the biases, the row scales) and its references h = gate_up, y = down.
 */
function randomGemvLayer(
  r: () => number,
  c: { T: number; k: number; E: number; H: number; I: number },
  weights: (values: Float32Array, rows: number, cols: number) => ExpertWeightsHost,
  o: { act: ExpertActivation; bias: boolean; scale: boolean },
): { L: GemvLayer; hRef: Float32Array; yRef: Float32Array } {
  const { T, k, E, H, I } = c;
  const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
  const x = randomArray(r, T * H);
  const guH = weights(randomArray(r, E * 2 * I * H, -0.3, 0.3), 2 * I, H);
  const dnH = weights(randomArray(r, E * H * I, -0.3, 0.3), H, I);
  const guB = o.bias ? HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.5, 0.5), 'bfloat16') : undefined;
  const dnB = o.bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.5, 0.5), 'float32') : undefined;
  const rsv = o.scale ? randomArray(r, T * k, 0.5, 1.5) : undefined;
  const hRef = groupedGateUpRef(x, g, guH, guB, o.act, rsv);
  return { L: { g, x, guH, dnH, guB, dnB, rsv, act: o.act }, hRef, yRef: groupedDownRef(hRef, g, dnH, dnB) };
}

/**
 * Uploads the layer once and runs gate_up + down through each packed kernel option in turn: each one's h and y,
 * the load path each option takes for gate_up and down (gemvPackedPath), and whether the GEMVs take both stacks.
 */
async function runGemvKernels(cx: GpuContext, L: GemvLayer, kernels: readonly GemvPackedKernel[], opts: Pick<GemvOptions, 'stagedXLoadsFirst' | 'prefetchCodes'> = {}) {
  const { g, x, act } = L;
  const { T, k } = g;
  const H = x.length / T;
  return gpuChecked(cx, async () => {
    const gg = uploadGrouping(cx, g);
    const gu = uploadExpertWeights(cx, L.guH);
    const dn = uploadExpertWeights(cx, L.dnH);
    const paths = kernels.map((kn) => [gemvPackedPath(gu, kn), gemvPackedPath(dn, kn)]);
    const supported = gemvSupports(gu) && gemvSupports(dn);
    const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], x));
    const bg = L.guB && GpuTensor.upload(cx, L.guB);
    const bd = L.dnB && GpuTensor.upload(cx, L.dnB);
    const rs = L.rsv && GpuTensor.upload(cx, new HostTensor('float32', [T, k], L.rsv));
    const res: { kernel: GemvPackedKernel; h: Float32Array; y: Float32Array }[] = [];
    for (const packedKernel of kernels) {
      const rec = new Recorder(cx);
      const hg = gemvGateUpGpu(cx, rec, xg, gg, gu, act, { ...opts, packedKernel, bias: bg, rowScale: rs });
      const yg = gemvDownGpu(cx, rec, hg, gg, dn, { ...opts, packedKernel, bias: bd });
      rec.submit();
      res.push({ kernel: packedKernel, h: (await hg.download()).toFloat32(), y: (await yg.download()).toFloat32() });
      for (const b of [hg, yg]) b.destroy();
    }
    for (const b of [xg, bg, bd, rs]) b?.destroy();
    destroyExpertWeights(gu);
    destroyExpertWeights(dn);
    gg.destroy();
    return { res, paths, supported };
  });
}

/**
 * `wide`: whether gate_up (H columns) and down (I columns) take the 16-byte-load paths ('wide', and 'rowsN'
 * but for e5m2, which only 'rowsN' decodes: cols and scale blocks multiples of 32 int4/mxfp4 or 16 int8/fp8
 * columns), else 8-column table loads.
 */
interface Case { name: string; fmt: ExpertQuantFormat; T: number; k: number; E: number; H: number; I: number; wide: [boolean, boolean] }
const CASES: Case[] = [
  { name: 'fp8 e4m3 128x128 blocks (partial), 8-column loads', fmt: { kind: 'fp8_block' }, T: 1, k: 2, E: 5, H: 136, I: 40, wide: [false, false] },
  { name: 'fp8 e4m3 128x128 blocks (partial), 16-byte loads', fmt: { kind: 'fp8_block' }, T: 2, k: 2, E: 5, H: 144, I: 48, wide: [true, true] },
  { name: 'fp8 e5m2 16x32 blocks', fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [16, 32] }, T: 3, k: 2, E: 4, H: 64, I: 48, wide: [true, true] },
  { name: 'int4 blocks of 32, f16 scales', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 2, k: 3, E: 6, H: 96, I: 40, wide: [true, false] },
  { name: 'int4 blocks of 32, f16 scales, decode', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 1, k: 4, E: 7, H: 160, I: 64, wide: [true, true] },
  { name: 'int8 blocks of 16, f32 scales', fmt: { kind: 'int_block', bits: 8, blockSize: 16 }, T: 5, k: 2, E: 3, H: 48, I: 24, wide: [true, false] },
  { name: 'int8 blocks of 8 (narrower than a 16-byte chunk)', fmt: { kind: 'int_block', bits: 8, blockSize: 8 }, T: 1, k: 2, E: 3, H: 48, I: 32, wide: [false, false] },
  { name: 'int4 + zero points, blocks of 32 and 8', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true }, T: 3, k: 2, E: 5, H: 96, I: 40, wide: [true, false] },
  { name: 'int4 + zero points, blocks of 8 (table loads), decode', fmt: { kind: 'int_block', bits: 4, blockSize: 8, zeroPoint: true }, T: 1, k: 3, E: 6, H: 56, I: 24, wide: [false, false] },
  { name: 'int8 + zero points, blocks of 16', fmt: { kind: 'int_block', bits: 8, blockSize: 16, zeroPoint: true }, T: 2, k: 2, E: 3, H: 48, I: 32, wide: [true, true] },
  { name: 'mxfp4', fmt: { kind: 'mxfp4' }, T: 4, k: 2, E: 4, H: 64, I: 32, wide: [true, true] },
  { name: 'mxfp4, decode', fmt: { kind: 'mxfp4' }, T: 1, k: 3, E: 5, H: 96, I: 64, wide: [true, true] },
];

describe('decode GEMV on quantized experts', () => {
  // The GPU planner at one token row per pass (this device seen as a GPU: adapterInfo.software false): int4 and MXFP4
  // rows of 2880 columns and more on the x-in-registers kernels (KERNEL_CROSSOVERS.gemvPackedKernel's `longRows`:
  // gate_up 'rows4x', down 'rows8k4x'), shorter rows on 'rows2i'; gate_up reads rows of H columns, down rows of I.
  const planned = (cols: number, down: boolean) => (cols < 2880 ? 'rows2i' : down ? 'rows8k4x' : 'rows4x');
  for (const [name, fmt] of [['int4 blocks of 32', { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }], ['MXFP4', { kind: 'mxfp4' }]] as const) {
    for (const [H, I] of [[2048, 96], [2880, 96], [64, 2880]]) {
      it(`the GPU planner at T = 1: ${name}, gate_up rows of ${H} columns on ${planned(H, false)}, down rows of ${I} on ${planned(I, true)}`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const cx = ctx;
        const gpuView = Object.create(cx, { adapterInfo: { value: { ...cx.adapterInfo, software: false }, enumerable: true } }) as GpuContext;
        const r = rng(H + 17 * I);
        const [T, k, E] = [1, 2, 3];
        const g = groupRef(new Uint32Array([2, 0]), T, k, E);
        const x = randomArray(r, T * H);
        const guH = quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, fmt as ExpertQuantFormat);
        const dnH = quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, fmt as ExpertQuantFormat);
        const act = { kind: 'silu' as const, layout: 'concat' as const };
        const hRef = groupedGateUpRef(x, g, guH, undefined, act);
        const yRef = groupedDownRef(hRef, g, dnH, undefined);
        const { result, dispatched } = await withDispatchLog(() => gpuChecked(gpuView, async () => {
          const gg = uploadGrouping(gpuView, g);
          const gu = uploadExpertWeights(gpuView, guH);
          const dn = uploadExpertWeights(gpuView, dnH);
          const xg = GpuTensor.upload(gpuView, new HostTensor('float32', [T, H], x));
          const rec = new Recorder(gpuView);
          const hg = gemvGateUpGpu(gpuView, rec, xg, gg, gu, act);
          const yg = gemvDownGpu(gpuView, rec, hg, gg, dn);
          rec.submit();
          const out = { h: (await hg.download()).toFloat32(), y: (await yg.download()).toFloat32() };
          for (const b of [hg, yg, xg]) b.destroy();
          destroyExpertWeights(gu);
          destroyExpertWeights(dn);
          gg.destroy();
          return out;
        }));
        const kinds = dispatched.filter((d) => d.kernel === 'moe_gemv').map(gemvKernelOf);
        expect(kinds).toEqual([planned(H, false), planned(I, true)]);
        expect(relErr(result.h, hRef), 'h').toBeLessThan(2e-5);
        expect(relErr(result.y, yRef), 'y').toBeLessThan(2e-5);
      });
    }
  }

  for (const c of CASES) {
    it(`${c.name}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(c.H * 31 + c.I);
      const { T, k, E, H, I } = c;
      const idx = new Uint32Array(T * k);
      for (let tt = 0; tt < T; tt++) for (let j = 0; j < k; j++) idx[tt * k + j] = (tt * 3 + j * 2) % E;
      const g = groupRef(idx, T, k, E);
      const x = randomArray(r, T * H);
      const guH = randomZeros(r, quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, c.fmt));
      const dnH = randomZeros(r, quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, c.fmt));
      const act = { kind: 'swiglu_limit' as const, layout: 'interleaved' as const, limit: 2 };
      const hRef = groupedGateUpRef(x, g, guH, undefined, act);
      const yRef = groupedDownRef(hRef, g, dnH, undefined);
      // the 8-column table loads, the 16-byte wide loads and the row-blocked kernel (2 outputs per group) where the shapes allow them
      const out = await runGemvKernels(cx, { g, x, guH, dnH, act }, ['table', 'wide', 'rows2']);
      expect(out.supported).toBe(true);
      const e5m2 = c.fmt.kind === 'fp8_block' && c.fmt.dtype === 'float8_e5m2';
      expect(out.paths[1], 'wide load path').toEqual(c.wide.map((w) => (w && !e5m2 ? 'wide' : 'table')));
      expect(out.paths[2], 'row-blocked load path').toEqual(c.wide.map((w) => (w ? 'rows' : 'table')));
      expect(out.paths[0]).toEqual(['table', 'table']);
      for (const o of out.res) {
        expect(relErr(o.h, hRef), `${c.name} h (${o.kernel})`).toBeLessThan(2e-5);
        expect(relErr(o.y, yRef), `${c.name} y (${o.kernel})`).toBeLessThan(2e-5);
      }
    });
  }
  it('reports packed weights whose columns are not a multiple of 8 as unsupported (the layer then uses the grouped GEMMs)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = uploadExpertWeights(ctx, quantizeExperts(new Float32Array(2 * 4 * 12), 2, 4, 12, { kind: 'fp8_block' }));
    expect(gemvSupports(w)).toBe(false);
    destroyExpertWeights(w);
  });
});

/**
 * The row-blocked kernels ('rows1' | 'rows2' | 'rows4', one per case in turn) against the references, randomized: every packed
 * format they decode (int4 / int8 with and without zero points, MXFP4, fp8 e4m3 and e5m2), output counts
 * that are no multiple of a workgroup's 8 * RO outputs, columns whose 16-byte chunks do not fill the lanes'
 * two-chunk steps (more than 32 chunks per row, an odd count), bias, rowScale, each activation in both
 * gate_up layouts, T = 1, 3 and 16 (up to 4 token rows per weight pass); every case also runs the
 * split-K candidates (rows2k2, rows2k4, rows1k8, rows4k2; each on one case of every format) and, in turn, one of
 * the kernels with code words interleaved over the lanes (rows1i .. rows4k2i) and one with x staged in workgroup
 * memory (rows1s .. rows4s; refused with a LimitError where its slice does not fit the device's workgroup memory),
 * and the orders of loads the planner does not take on the adapter (the staged kernel's loads before its x copy, each
 * lane's next step prefetched), bit-equal to the planner's.
 */
describe('row-blocked decode GEMV on quantized experts (randomized)', () => {
  interface RowsCase { fmt: ExpertQuantFormat; H: number; I: number; E: number; k: number; T: number }
  const FMTS: RowsCase[] = [
    // H = 1056 int4 columns: 33 chunks of 32 (lane 0 takes a second chunk); fp8 / int8 output counts of 16 mod 32
    // leave the last workgroup of 'rows4' half empty (int4 / MXFP4 counts are multiples of 32: see the chunked tests)
    { fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, H: 1056, I: 96, E: 5, k: 2, T: 3 },
    { fmt: { kind: 'int_block', bits: 4, blockSize: 64, scaleDtype: 'float32', zeroPoint: true }, H: 192, I: 64, E: 6, k: 3, T: 16 },
    { fmt: { kind: 'int_block', bits: 8, blockSize: 48 }, H: 528, I: 48, E: 4, k: 2, T: 1 },
    { fmt: { kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float16', zeroPoint: true }, H: 80, I: 32, E: 3, k: 2, T: 16 },
    { fmt: { kind: 'mxfp4' }, H: 1088, I: 64, E: 4, k: 2, T: 1 },
    { fmt: { kind: 'mxfp4' }, H: 96, I: 32, E: 7, k: 3, T: 16 },
    { fmt: { kind: 'fp8_block' }, H: 560, I: 48, E: 5, k: 2, T: 3 },
    { fmt: { kind: 'fp8_block', block: [16, 48] }, H: 96, I: 48, E: 3, k: 1, T: 16 },
    { fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [32, 32] }, H: 544, I: 32, E: 4, k: 2, T: 3 },
    { fmt: { kind: 'fp8_block', dtype: 'float8_e5m2' }, H: 64, I: 16, E: 5, k: 2, T: 1 },
  ];
  const ACTS: ExpertActivation[] = [
    { kind: 'silu', layout: 'concat' },
    { kind: 'swiglu_limit', layout: 'interleaved', limit: 1.2 },
    { kind: 'swigluoai', layout: 'concat', limit: 1.5, alpha: 1.702 },
    { kind: 'silu', layout: 'interleaved' },
  ];
  const ROWS = GEMV_PACKED_KERNELS.filter((k) => /^rows\d$/.test(k));
  // the split-K candidates ('rowsNkS'), each a bench candidate that a default may become: half of them on the
  // even cases, half on the odd ones, so that each runs on every format (the cases come in pairs of one format)
  const SPLIT_K = GEMV_PACKED_KERNELS.filter((k) => /^rows\dk\d$/.test(k));
  // the kernels with code words interleaved over the lanes ('rows...i'): one per case, in turn
  const INTERLEAVED = GEMV_PACKED_KERNELS.filter((k) => /^rows\d(k\d)?i$/.test(k));
  // the kernels with x staged in workgroup memory ('rowsNs'): one per case, in turn; where the case's token rows per
  // pass make the x slice too large for the device's workgroup memory (4-bit codes over 4 rows on 32 KiB), a LimitError
  const STAGED = GEMV_PACKED_KERNELS.filter((k) => /^rows\ds$/.test(k));
  FMTS.forEach((c, i) => {
    // one plain row-blocking per case, in turn (each is a pipeline per mode and token block: lavapipe compiles them slowly)
    // (MXFP4 over several token rows: 'rows2i', the kernel a GPU's planner runs there)
    const il = c.fmt.kind === 'mxfp4' && c.T > 1 ? 'rows2i' : INTERLEAVED[i % INTERLEAVED.length];
    const KERNELS = [ROWS[i % ROWS.length], ...SPLIT_K.filter((_, j) => j % 2 === i % 2), il];
    const staged = STAGED[i % STAGED.length];
    // the row-blocked codec the format decodes with (its 16-byte chunk's columns size the x slice)
    const wdtype = c.fmt.kind === 'int_block' ? (c.fmt.bits === 4 ? 'int4' : 'int8') : c.fmt.kind === 'mxfp4' ? 'mxfp4' : (c.fmt.dtype ?? 'float8_e4m3fn') === 'float8_e5m2' ? 'fp8_e5m2' : 'fp8_e4m3';
    const stagedBytes = rowsWorkgroupBytes({ wdtype, mr: gemvRowsPerPass(c.T, c.k, c.E, true), xs: true });
    const fname = c.fmt.kind === 'int_block' ? `int${c.fmt.bits} blocks of ${c.fmt.blockSize}${c.fmt.zeroPoint ? ' + zero points' : ''}` : c.fmt.kind === 'fp8_block' ? `fp8 ${c.fmt.dtype ?? 'e4m3'} ${c.fmt.block ?? '128x128'}` : 'mxfp4';
    const act = ACTS[i % ACTS.length];
    const bias = i % 2 === 0;
    const scale = i % 3 !== 1;
    it(`${fname}, ${KERNELS.join(' ')} ${staged}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}, ${act.kind} ${act.layout}${bias ? ', bias' : ''}${scale ? ', rowScale' : ''}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(500 + i);
      const { L, hRef, yRef } = randomGemvLayer(r, c, (v, rows, cols) => randomZeros(r, quantizeExperts(v, c.E, rows, cols, c.fmt)), { act, bias, scale });
      const fits = stagedBytes <= cx.limits.maxComputeWorkgroupStorageSize;
      if (!fits) {
        // refused before anything is recorded
        const { dispatched } = await withDispatchLog(() => expect(runGemvKernels(cx, L, [staged])).rejects.toThrow(/maxComputeWorkgroupStorageSize exceeded/));
        expect(dispatched).toEqual([]);
      }
      const kernels = fits ? [...KERNELS, staged] : KERNELS;
      const out = await runGemvKernels(cx, L, kernels);
      expect(out.paths, 'every case takes the row-blocked path').toEqual(kernels.map(() => ['rows', 'rows']));
      for (const o of out.res) {
        expect(relErr(o.h, hRef), `h (${o.kernel})`).toBeLessThan(2e-5);
        expect(relErr(o.y, yRef), `y (${o.kernel})`).toBeLessThan(2e-5);
      }
      // the orders of loads the planner does not take on this adapter, against the planner's (the same sums): the staged
      // kernel with each lane's code and scale loads before the slice's x copy (GemvVariant.xsFirst,
      // KERNEL_CROSSOVERS.stagedXLoadsFirst), and a kernel loading each lane's next step before the current one decodes
      // (GemvVariant.pf, KERNEL_CROSSOVERS.gemvPrefetchCodes): the plain row blocking on even cases, the staged one on odd;
      // at 16 tokens (4 token rows per pass, slow to compile on CPU drivers) only where zero points are loaded with the codes
      if (c.T >= 16 && !(c.fmt.kind === 'int_block' && c.fmt.zeroPoint)) return;
      const kind = cx.adapterInfo.software ? 'software' : 'gpu';
      const other = (kernel: GemvPackedKernel, opts: Pick<GemvOptions, 'stagedXLoadsFirst' | 'prefetchCodes'>, field: 'xsFirst' | 'pf', want: boolean) => ({ kernel, opts, field, want });
      const orders = [
        ...(fits ? [other(staged, { stagedXLoadsFirst: !KERNEL_CROSSOVERS.stagedXLoadsFirst[kind], prefetchCodes: false }, 'xsFirst', !KERNEL_CROSSOVERS.stagedXLoadsFirst[kind])] : []),
        other(i % 2 === 1 && fits ? staged : KERNELS[0], { prefetchCodes: !KERNEL_CROSSOVERS.gemvPrefetchCodes[kind] }, 'pf', !KERNEL_CROSSOVERS.gemvPrefetchCodes[kind]),
      ];
      for (const o of orders) {
        const { result, dispatched } = await withDispatchLog(() => runGemvKernels(cx, L, [o.kernel], o.opts));
        const gemvs = dispatched.filter((d) => d.kernel === 'moe_gemv').map((d) => (d.variant as Record<string, unknown>)[o.field] ?? false);
        expect(gemvs, `${o.field} in both GEMVs`).toEqual([o.want, o.want]);
        const planned = out.res[kernels.indexOf(o.kernel)];
        expect(result.res[0].h, `h (${o.kernel}, ${o.field} ${o.want})`).toEqual(planned.h);
        expect(result.res[0].y, `y (${o.kernel}, ${o.field} ${o.want})`).toEqual(planned.y);
      }
    }, 600_000); // lavapipe compiles the unrolled row-blocked variants slowly (T = 16: 4 token rows per pass)
  });

  // the x-in-registers kernels ('rowsNkSx' and 'rowsNx', GemvVariant.xr): one token row per pass only, so at T = 1, on every format
  // (zero points included), output counts that leave a block part empty, columns that leave lanes without a chunk, and
  // refused with a typed error, before anything is recorded, at more rows per pass
  const XR = GEMV_PACKED_KERNELS.filter((k) => /^rows\d(k\d)?x$/.test(k));
  const XR_CASES: RowsCase[] = [
    { fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, H: 1056, I: 96, E: 5, k: 2, T: 1 },
    { fmt: { kind: 'int_block', bits: 4, blockSize: 64, scaleDtype: 'float32', zeroPoint: true }, H: 192, I: 64, E: 6, k: 3, T: 1 },
    { fmt: { kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float16', zeroPoint: true }, H: 80, I: 48, E: 3, k: 2, T: 1 },
    { fmt: { kind: 'mxfp4' }, H: 9024, I: 32, E: 4, k: 2, T: 1 },
    { fmt: { kind: 'fp8_block', block: [16, 48] }, H: 96, I: 48, E: 3, k: 1, T: 1 },
    { fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [32, 32] }, H: 544, I: 32, E: 4, k: 2, T: 1 },
  ];
  XR_CASES.forEach((c, i) => {
    const act = ACTS[i % ACTS.length];
    const bias = i % 2 === 1;
    const scale = i % 3 === 0;
    it(`x in registers, ${XR.join(' ')}: ${JSON.stringify(c.fmt)} T=1 k=${c.k} E=${c.E} H=${c.H} I=${c.I}, ${act.kind} ${act.layout}${bias ? ', bias' : ''}${scale ? ', rowScale' : ''}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(900 + i);
      const { L, hRef, yRef } = randomGemvLayer(r, c, (v, rows, cols) => randomZeros(r, quantizeExperts(v, c.E, rows, cols, c.fmt)), { act, bias, scale });
      const kernels = i === 0 ? XR : [XR[i % XR.length]];
      const { result: out, dispatched } = await withDispatchLog(() => runGemvKernels(cx, L, kernels));
      expect(dispatched.filter((d) => d.kernel === 'moe_gemv').map((d) => (d.variant as { xr?: boolean }).xr)).toEqual(kernels.flatMap(() => [true, true]));
      for (const o of out.res) {
        expect(relErr(o.h, hRef), `h (${o.kernel})`).toBeLessThan(2e-5);
        expect(relErr(o.y, yRef), `y (${o.kernel})`).toBeLessThan(2e-5);
      }
    }, 600_000);
  });
  it('x in registers: refused at more than one token row per pass', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const c: RowsCase = { fmt: { kind: 'int_block', bits: 4, blockSize: 32 }, H: 64, I: 32, E: 2, k: 2, T: 16 };
    expect(gemvRowsPerPass(c.T, c.k, c.E, true)).toBeGreaterThan(1);
    const r = rng(990);
    const { L } = randomGemvLayer(r, c, (v, rows, cols) => quantizeExperts(v, c.E, rows, cols, c.fmt), { act: ACTS[0], bias: false, scale: false });
    const { dispatched } = await withDispatchLog(() => expect(runGemvKernels(cx, L, ['rows8k4x'])).rejects.toThrow(/rows8k4x: expected one token row per weight pass/));
    expect(dispatched).toEqual([]);
  });
});

/**
 * 16-bit dense weights (bf16, f16) on the row-blocked kernels ('rows1' | 'rows2' | 'rows4'), randomized,
 * against the reference and the dense kernel: output counts that leave a workgroup part empty, columns
 * whose 8-column chunks do not fill the lanes' steps, bias, rowScale, both gate_up layouts, T = 1, 3, 4 and
 * 16 (an x-in-registers kernel where one token row makes a pass); a column count that is no multiple of 8 falls back
 * to the dense kernel.
 */
describe('row-blocked decode GEMV on 16-bit dense experts (randomized)', () => {
  const CASES = [
    { dtype: 'bfloat16', H: 520, I: 44, E: 5, k: 2, T: 1, kernel: 'rows1' },
    { dtype: 'bfloat16', H: 264, I: 40, E: 6, k: 3, T: 4, kernel: 'rows4' },
    { dtype: 'float16', H: 136, I: 24, E: 4, k: 2, T: 3, kernel: 'rows2' },
    { dtype: 'float16', H: 72, I: 56, E: 3, k: 1, T: 16, kernel: 'rows2' },
    { dtype: 'bfloat16', H: 52, I: 24, E: 4, k: 2, T: 3, kernel: 'rows4' }, // H % 8 != 0: gate_up on the dense kernel, down row-blocked
  ] as const;
  const ACTS: ExpertActivation[] = [
    { kind: 'silu', layout: 'concat' },
    { kind: 'swigluoai', layout: 'interleaved', limit: 1.5, alpha: 1.702 },
  ];
  CASES.forEach((c, i) => {
    const act = ACTS[i % ACTS.length];
    const bias = i % 2 === 1;
    const scale = i !== 2;
    it(`${c.dtype} ${c.kernel}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}, ${act.kind} ${act.layout}${bias ? ', bias' : ''}${scale ? ', rowScale' : ''}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(700 + i);
      const { H, I } = c;
      const { L, hRef, yRef } = randomGemvLayer(r, c, (v, rows, cols) => ({ kind: 'dense' as const, w: HostTensor.fromFloat32([c.E, rows, cols], v, c.dtype) }), { act, bias, scale });
      // the row-blocked kernel, then the dense one ('table' on dense weights)
      // the interleaved variant on a bf16 case (T = 1) and an f16 one (T = 3; no planner takes it for 16-bit weights)
      const il: GemvPackedKernel[] = i === 0 || i === 2 ? [`${c.kernel}i`] : [];
      // the staged-x variant on the other two bf16 / f16 cases (T = 4 and 16: 4 token rows per pass)
      const staged: GemvPackedKernel[] = i === 1 || i === 3 ? [`${c.kernel}s`] : [];
      // an x-in-registers kernel at one token row per pass (the bf16 case at T = 1)
      const xr: GemvPackedKernel[] = gemvRowsPerPass(c.T, c.k, c.E, true) === 1 && H % 8 === 0 && I % 8 === 0 ? ['rows8k4x'] : [];
      const out = await runGemvKernels(cx, L, [c.kernel, ...il, ...staged, ...xr, 'table']);
      // gate_up reads H columns, down I columns: the row-blocked path needs whole 8-column chunks
      expect(out.paths[0]).toEqual([H % 8 === 0 ? 'rows' : 'dense', I % 8 === 0 ? 'rows' : 'dense']);
      for (const o of out.res) {
        expect(relErr(o.h, hRef), `h (${o.kernel})`).toBeLessThan(2e-5);
        expect(relErr(o.y, yRef), `y (${o.kernel})`).toBeLessThan(2e-5);
      }
    }, 600_000);
  });
});

/**
 * The down GEMV of one expert's weights w ([1, rows, cols]) on one input row x through each of `kernels`, each
 * checked to take its own path (the row-blocked kernels 'rows'): the outputs by kernel.
 */
async function downOnEachKernel(cx: GpuContext, w: ExpertWeightsHost, x: Float32Array, kernels: readonly GemvPackedKernel[]): Promise<{ kernel: GemvPackedKernel; y: Float32Array }[]> {
  const g = groupRef(new Uint32Array([0]), 1, 1, 1);
  const res = await gpuChecked(cx, async () => {
    const gg = uploadGrouping(cx, g);
    const wg = uploadExpertWeights(cx, w);
    const xg = GpuTensor.upload(cx, new HostTensor('float32', [1, x.length], x));
    const out: { kernel: GemvPackedKernel; path: string; y: Float32Array }[] = [];
    for (const packedKernel of kernels) {
      const rec = new Recorder(cx);
      const yg = gemvDownGpu(cx, rec, xg, gg, wg, { packedKernel });
      rec.submit();
      out.push({ kernel: packedKernel, path: gemvPackedPath(wg, packedKernel), y: (await yg.download()).toFloat32() });
      yg.destroy();
    }
    xg.destroy();
    destroyExpertWeights(wg);
    gg.destroy();
    return out;
  });
  for (const o of res) expect(o.path, o.kernel).toBe(o.kernel.startsWith('rows') ? 'rows' : o.kernel);
  return res;
}

/**
 * Every fp8 code through each decode GEMV path: down weights [1, 264, 32] whose row r < 256 holds code r in
 * column r % 32 and code 0 elsewhere, so output r is decode(r) * scale * x[r % 32]; NaN codes (e4m3
 * S.1111.111, e5m2 NaNs) give NaN, e5m2 infinities +-inf, subnormals their exact values. Rows 256-263 hold a NaN
 * code (0x7f, then 0xff) in columns 0-3 and 4-7, so that each byte of a code word carries one (the paths test
 * whole words for NaN codes).
 */
describe('decode GEMV: all 256 fp8 codes', () => {
  for (const dtype of ['float8_e4m3fn', 'float8_e5m2'] as const) {
    it(`${dtype}: each code decodes like the reference on every path`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const rows = 264, cols = 32;
      const q = new Uint8Array(rows * cols);
      for (let r = 0; r < 256; r++) q[r * cols + (r % cols)] = r;
      // NaN codes (0x7f and 0xff are NaN in both formats) at each byte position of a word
      const nanCode = (j: number) => (j < 4 ? 0x7f : 0xff);
      for (let j = 0; j < 8; j++) q[(256 + j) * cols + j] = nanCode(j);
      // blocks of 128 x 128 (partial in the rows and columns): three scales, one per 128 rows
      const scales = new Float32Array([0.75, 1.375, 0.5]);
      const w: ExpertWeightsHost = { kind: 'fp8_block', block: [128, 128], q: new HostTensor(dtype, [1, rows, cols], q), scaleInv: new HostTensor('float32', [1, 3, 1], scales) };
      const x = randomArray(rng(9), cols, 0.5, 2);
      const dec = dtype === 'float8_e4m3fn' ? e4m3ToF32 : e5m2ToF32;
      // the expected values from the per-code decoder, checked against the reference GEMM first
      const code = (r: number) => (r < 256 ? r : nanCode(r - 256));
      const want = Float32Array.from({ length: rows }, (_, r) => Math.fround(Math.fround(dec(code(r)) * scales[r >> 7]) * x[r < 256 ? r % cols : r - 256]));
      expect(want.subarray(256).every(Number.isNaN)).toBe(true);
      const g = groupRef(new Uint32Array([0]), 1, 1, 1);
      const ref = groupedDownRef(x, g, w, undefined);
      expect(Array.from(ref).map(String)).toEqual(Array.from(want).map(String));
      const kernels = GEMV_PACKED_KERNELS.filter((k) => k === 'table' || k === 'rows1' || k === 'rows4' || k === 'rows1k8' || k === 'rows4k2' || k === 'rows1i' || k === 'rows4k2i' || k === 'rows8k4x' || (k === 'wide' && dtype === 'float8_e4m3fn'));
      const got = await downOnEachKernel(cx, w, x, kernels);
      for (const o of got) {
        const bad = Array.from(o.y).flatMap((v, r) => {
          const u = want[r];
          const ok = Number.isNaN(u) ? Number.isNaN(v) : !Number.isFinite(u) ? v === u : Math.abs(v - u) <= 1e-6 * Math.abs(u);
          return ok ? [] : [`row ${r} (code 0x${code(r).toString(16)}): ${v} vs ${u}`];
        });
        expect(bad, `${dtype} ${o.kernel}`).toEqual([]);
      }
    }, 300_000);
  }
});

/**
 * Every e8m0 scale byte through each MXFP4 decode GEMV path: down weights [1, 256, 32] whose row r holds code 2
 * (1.0) in every column and scale byte r, so output r is 2^(r - 127) times the sum of x: exact powers of two
 * for r = 1..254, +inf for r = 255 (2^128 overflows, as in the reference), and for r = 0 the subnormal scale
 * 2^-127, which a device may flush to zero.
 */
describe('decode GEMV: every MXFP4 e8m0 scale byte', () => {
  it('each byte scales like the reference on every path', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const rows = 256, cols = 32;
    const w: ExpertWeightsHost = {
      kind: 'mxfp4',
      blocks: new HostTensor('uint8', [1, rows, 1, 16], new Uint8Array(rows * 16).fill(0x22)),
      scales: new HostTensor('uint8', [1, rows, 1], Uint8Array.from({ length: rows }, (_, r) => r)),
    };
    const x = randomArray(rng(11), cols, 0.5, 2);
    const g = groupRef(new Uint32Array([0]), 1, 1, 1);
    const ref = groupedDownRef(x, g, w, undefined);
    // the table path's scale (shared with 'wide'), the row-blocked one's per chunk and per code word
    const kernels = GEMV_PACKED_KERNELS.filter((k) => k === 'table' || k === 'rows1' || k === 'rows2i' || k === 'rows4k4x');
    const got = await downOnEachKernel(cx, w, x, kernels);
    expect(ref[255]).toBe(Infinity);
    for (const o of got) {
      const bad = Array.from(o.y).flatMap((v, r) => {
        const u = ref[r];
        const ok = r === 0 ? v === 0 || Math.abs(v - u) <= 1e-6 * u : !Number.isFinite(u) ? v === u : Math.abs(v - u) <= 1e-6 * Math.abs(u);
        return ok ? [] : [`byte ${r}: ${v} vs ${u}`];
      });
      expect(bad, o.kernel).toEqual([]);
    }
  }, 300_000);
});
