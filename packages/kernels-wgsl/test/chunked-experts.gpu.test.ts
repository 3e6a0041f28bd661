/**
 * Expert stacks split over several buffers (uploadExpertStack, planExpertChunks,
 * chunkExpertWeightsHost): every expert GEMM path gives BIT-identical results
 * on a chunked stack and on the same stack in one buffer, for every weight
 * format (dense f32 / bf16 / f16, fp8 blocks, MXFP4, int4 / int8 blocks) and
 * both chunkings (several whole experts per chunk; one expert cut in two at
 * the format's block unit; int blocks with and without zero points): the
 * decode GEMVs (T = 3), the tiled grouped GEMMs
 * and the fast f32 prefill GEMM (T = 600), and the CPU references. The
 * unchunked results are checked against the references (as in the other
 * GEMM tests) so that the equality is not between two wrong answers.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, ValueError } from '@webmoe/tensor';
import {
  GpuTensor,
  LimitError,
  Recorder,
  appendExpertStacks,
  chunkExpertWeightsHost,
  tryAppendExpertStacks,
  createGpuContext,
  destroyExpertWeights,
  expertWeightBytes,
  gemvDownGpu,
  gemvGateUpGpu,
  groupedDownGpu,
  groupedDownRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  planExpertChunks,
  quantizeExperts,
  uploadExpertStack,
  uploadExpertWeights,
  type ExpertActivation,
  type ExpertQuantFormat,
  type ExpertStackGpu,
  type ExpertWeightsHost,
  type GpuContext,
  type GroupedGemmOptions,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { hostGrouping, randomIdx, uploadGrouping } from './grouped-helpers.js';
import { gemvPackedPath } from '../src/kernels/moe-gemv.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Index of the first element whose bits differ, or -1. */
function firstBitDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const i = firstBitDiff(got, want);
  expect(i, `${what}: first differing element ${i} (${got[i]} vs ${want[i]})`).toBe(-1);
}

/** The largest per-expert tensor bytes of a host container (codes dominate). */
function expertBytes(w: ExpertWeightsHost): number {
  const ts = w.kind === 'dense' ? [w.w] : w.kind === 'fp8_block' ? [w.q, w.scaleInv] : w.kind === 'mxfp4' ? [w.blocks, w.scales] : [w.q, w.scales, ...(w.zeros ? [w.zeros] : [])];
  return Math.max(...ts.map((t) => t.byteLength / t.shape[0]));
}

interface Fmt {
  name: string;
  make: (w: Float32Array, E: number, rows: number, cols: number) => ExpertWeightsHost;
  bias?: 'float32' | 'bfloat16' | 'float16';
}
const dense = (dt: 'float32' | 'bfloat16' | 'float16') => (w: Float32Array, E: number, rows: number, cols: number): ExpertWeightsHost => ({ kind: 'dense', w: HostTensor.fromFloat32([E, rows, cols], w, dt) });
const quant = (f: ExpertQuantFormat) => (w: Float32Array, E: number, rows: number, cols: number) => quantizeExperts(w, E, rows, cols, f);
const FORMATS: Fmt[] = [
  { name: 'float32', make: dense('float32'), bias: 'float32' },
  { name: 'bfloat16', make: dense('bfloat16'), bias: 'bfloat16' },
  { name: 'float16', make: dense('float16') },
  { name: 'fp8_block e4m3 16x32', make: quant({ kind: 'fp8_block', block: [16, 32] }) },
  { name: 'mxfp4', make: quant({ kind: 'mxfp4' }), bias: 'bfloat16' },
  { name: 'int4 blocks of 32, f16 scales', make: quant({ kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }) },
  { name: 'int8 blocks of 16, f32 scales', make: quant({ kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float32' }), bias: 'float16' },
  { name: 'int4 blocks of 32, f16 scales, zero points', make: quant({ kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true }) },
  { name: 'int8 blocks of 16, f32 scales, zero points', make: quant({ kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float32', zeroPoint: true }) },
];

const E = 5;
const H = 64;
const I = 32;
const k = 2;

/** One layer's weights in a format: gate_up [E, 2I, H] (layout of `act`) and down [E, H, I], optional biases. */
function layer(f: Fmt, seed: number) {
  const r = rng(seed);
  const gu = f.make(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H);
  const dn = f.make(randomArray(r, E * H * I, -0.3, 0.3), E, H, I);
  const guB = f.bias ? HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.5, 0.5), f.bias) : undefined;
  const dnB = f.bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.5, 0.5), f.bias) : undefined;
  return { gu, dn, guB, dnB };
}

/** Byte limits that give (a) several chunks of whole experts, (b) every expert cut in two. */
function limits(w: ExpertWeightsHost): { whole: number; split: number } {
  const b = expertBytes(w);
  return { whole: Math.ceil((2 * b) / 4) * 4, split: Math.floor((0.6 * b) / 4) * 4 };
}

describe('planExpertChunks', () => {
  const w = quantizeExperts(new Float32Array(6 * 64 * 64), 6, 64, 64, { kind: 'fp8_block', block: [16, 32] }); // 4096 code bytes per expert
  it('keeps a stack that fits in one chunk', () => {
    expect(planExpertChunks(w, 'concat', 6 * 4096)).toEqual([{ e0: 0, experts: 6, o0: 0, outputs: 32 }]);
  });
  it('puts as many whole experts as fit in each chunk, balanced', () => {
    // 4 fit; 6 experts -> 2 chunks of 3
    expect(planExpertChunks(w, 'rows', 4 * 4096 + 100)).toEqual([
      { e0: 0, experts: 3, o0: 0, outputs: 64 },
      { e0: 3, experts: 3, o0: 0, outputs: 64 },
    ]);
  });
  it('cuts an expert that alone exceeds a binding at whole scale blocks, per layout', () => {
    // concat: 16-output units of 32 rows x 64 bytes = 2048 bytes; 3000 bytes hold one unit -> 2 pieces of 16
    expect(planExpertChunks(w, 'concat', 3000).slice(0, 2)).toEqual([
      { e0: 0, experts: 1, o0: 0, outputs: 16 },
      { e0: 0, experts: 1, o0: 16, outputs: 16 },
    ]);
    // interleaved: rows 2o, 2o+1: units of 8 outputs (16 rows); 3000 bytes hold 2 units (2048 bytes)
    expect(planExpertChunks(w, 'interleaved', 3000).slice(0, 2)).toEqual([
      { e0: 0, experts: 1, o0: 0, outputs: 16 },
      { e0: 0, experts: 1, o0: 16, outputs: 16 },
    ]);
    // rows: 16-row units of 1024 bytes; 3000 bytes hold 2 -> pieces of 32 outputs
    const p = planExpertChunks(w, 'rows', 3000);
    expect(p.length).toBe(12);
    expect(p.slice(0, 2)).toEqual([
      { e0: 0, experts: 1, o0: 0, outputs: 32 },
      { e0: 0, experts: 1, o0: 32, outputs: 32 },
    ]);
  });
  it('balances the pieces of a split expert (dense, no block unit)', () => {
    const d: ExpertWeightsHost = { kind: 'dense', w: new HostTensor('float32', [2, 10, 4]) }; // 16 bytes per row
    expect(planExpertChunks(d, 'rows', 64).map((c) => c.outputs)).toEqual([4, 3, 3, 4, 3, 3]);
  });
  it('counts the bias as its own binding', () => {
    const d: ExpertWeightsHost = { kind: 'dense', w: new HostTensor('bfloat16', [4, 8, 1]) }; // 16 bytes of weights, 32 of f32 bias per expert: only the bias needs two chunks
    expect(planExpertChunks(d, 'rows', 64, { dtype: 'float32' }).length).toBe(2);
  });
  it('throws a LimitError when one block unit exceeds the limit, or a concat split would cut a block', () => {
    expect(() => planExpertChunks(w, 'rows', 1000)).toThrow(LimitError);
    const odd = quantizeExperts(new Float32Array(2 * 40 * 64), 2, 40, 64, { kind: 'fp8_block', block: [16, 32] }); // I = 20: a block straddles gate/up
    expect(() => planExpertChunks(odd, 'concat', 2000)).toThrow(/gate\/up boundary/);
    expect(() => planExpertChunks(odd, 'concat', 2000)).toThrow(LimitError);
  });
});

describe('chunked expert stacks on the CPU references', () => {
  for (const f of FORMATS) {
    for (const act of [{ kind: 'silu', layout: 'concat' }, { kind: 'swigluoai', limit: 1.5, alpha: 1.702, layout: 'interleaved' }] as ExpertActivation[]) {
      it(`${f.name}, ${act.layout}: chunked == unchunked, bit for bit`, () => {
        const { gu, dn, guB, dnB } = layer(f, 7);
        const T = 9;
        const g = hostGrouping(randomIdx(rng(3), T, k, E), T, k, E);
        const x = randomArray(rng(4), T * H);
        const hWant = groupedGateUpRef(x, g, gu, guB, act);
        const yWant = groupedDownRef(hWant, g, dn, dnB);
        for (const kind of ['whole', 'split'] as const) {
          const guC = chunkExpertWeightsHost(gu, act.layout, planExpertChunks(gu, act.layout, limits(gu)[kind], guB), guB);
          const dnC = chunkExpertWeightsHost(dn, 'rows', planExpertChunks(dn, 'rows', limits(dn)[kind], dnB), dnB);
          expect(guC.chunks.length).toBeGreaterThan(kind === 'whole' ? 2 : E);
          expectSameBits(groupedGateUpRef(x, g, guC, undefined, act), hWant, `${kind} gate_up`);
          expectSameBits(groupedDownRef(hWant, g, dnC, undefined), yWant, `${kind} down`);
        }
      });
    }
  }
});

/** `packedOnly`: the path differs from another only for packed weights (dense formats skip it). */
type Path = { name: string; T: number; packedOnly?: boolean; run: (cx: GpuContext, rec: Recorder, xg: GpuTensor, gg: ReturnType<typeof uploadGrouping>, gu: ExpertStackGpu, guB: GpuTensor | undefined, dn: ExpertStackGpu, dnB: GpuTensor | undefined, act: ExpertActivation, rs: GpuTensor) => { h: GpuTensor; y: GpuTensor } };
const grouped = (o: GroupedGemmOptions): Path['run'] => (cx, rec, xg, gg, gu, guB, dn, dnB, act, rs) => {
  const h = groupedGateUpGpu(cx, rec, xg, gg, gu, guB, act, { ...o, rowScale: rs });
  return { h, y: groupedDownGpu(cx, rec, h, gg, dn, dnB, o) };
};
const PATHS: Path[] = [
  {
    name: 'decode GEMV',
    T: 3,
    run: (cx, rec, xg, gg, gu, guB, dn, dnB, act, rs) => {
      const h = gemvGateUpGpu(cx, rec, xg, gg, gu, act, { bias: guB, rowScale: rs });
      return { h, y: gemvDownGpu(cx, rec, h, gg, dn, { bias: dnB }) };
    },
  },
  {
    // 4 outputs per 32-lane group: the split chunks' 16 outputs leave half of a workgroup's 32 empty
    name: 'decode GEMV, row-blocked (rows4)',
    T: 3,
    packedOnly: true,
    run: (cx, rec, xg, gg, gu, guB, dn, dnB, act, rs) => {
      expect([gemvPackedPath(gu, 'rows4'), gemvPackedPath(dn, 'rows4')], 'row-blocked path taken').toEqual(['rows', 'rows']);
      const h = gemvGateUpGpu(cx, rec, xg, gg, gu, act, { bias: guB, rowScale: rs, packedKernel: 'rows4' });
      return { h, y: gemvDownGpu(cx, rec, h, gg, dn, { bias: dnB, packedKernel: 'rows4' }) };
    },
  },
  { name: 'tiled GEMM (decode tile)', T: 7, run: grouped({ tile: 'decode' }) },
  { name: 'tiled GEMM (prefill tile)', T: 600, run: grouped({ tile: 'prefill' }) },
  { name: 'fast f32 GEMM', T: 600, run: grouped({ tile: 'fast', fast: 'f32' }) },
];

describe('chunked expert stacks on the GPU: bit for bit', () => {
  for (const f of FORMATS) {
    for (const p of PATHS) {
      if (p.packedOnly && layer(f, 11).gu.kind === 'dense') continue;
      it(`${f.name}, ${p.name} (T=${p.T})`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const cx = ctx;
        const { gu, dn, guB, dnB } = layer(f, 11);
        const act: ExpertActivation = f.name === 'mxfp4' ? { kind: 'swigluoai', limit: 1.5, alpha: 1.702, layout: 'interleaved' } : { kind: 'silu', layout: 'concat' };
        const T = p.T;
        const g = hostGrouping(randomIdx(rng(p.T), T, k, E), T, k, E);
        const x = randomArray(rng(5), T * H);
        const rsv = randomArray(rng(6), T * k, 0.5, 1.5);
        const hRef = groupedGateUpRef(x, g, gu, guB, act, rsv);
        const yRef = groupedDownRef(hRef, g, dn, dnB);
        const run = async (kind: 'whole' | 'split' | undefined) => {
          const { result, dispatched } = await withDispatchLog(() => gpuChecked(cx, async () => {
            const gg = uploadGrouping(cx, g);
            const up = uploadExpertStack(cx, gu, { layout: act.layout, bias: guB, maxBindingBytes: kind && limits(gu)[kind] });
            const down = uploadExpertStack(cx, dn, { layout: 'rows', bias: dnB, maxBindingBytes: kind && limits(dn)[kind] });
            if (kind !== undefined) {
              expect(up.weights.kind, 'chunked gate_up').toBe('chunked');
              expect(down.weights.kind, 'chunked down').toBe('chunked');
              expect(up.bias).toBeUndefined();
            }
            const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], x));
            const rs = GpuTensor.upload(cx, new HostTensor('float32', [T, k], rsv));
            const rec = new Recorder(cx);
            const { h, y } = p.run(cx, rec, xg, gg, up.weights, up.bias, down.weights, down.bias, act, rs);
            rec.submit();
            const count = (w: ExpertStackGpu) => (w.kind === 'chunked' ? w.chunks.length : 1);
            const ranges = (w: ExpertStackGpu) => (w.kind === 'chunked' ? w.chunks.map((c) => c.e0 + ':' + c.experts) : ['all']);
            // the tile offsets of an expert range are shared by the recording's GEMMs of the grouping (gate_up and down)
            const out = { h: (await h.download()).toFloat32(), y: (await y.download()).toFloat32(), chunks: count(up.weights), gemms: count(up.weights) + count(down.weights), ranges: new Set([...ranges(up.weights), ...ranges(down.weights)]).size };
            for (const b of [xg, rs, h, y, up.bias, down.bias]) b?.destroy();
            destroyExpertWeights(up.weights);
            destroyExpertWeights(down.weights);
            gg.destroy();
            return out;
          }));
          // one expert GEMM dispatch per chunk (a stack in one buffer: one per op, as before chunking), except the
          // decode GEMVs on a GPU, which bind several chunks per dispatch (the planner's gemvChunksPerDispatch: each
          // dispatch covers `variant.chunks` slots, some of them padding); the grouped GEMMs' tile offsets once per
          // expert range of the chunks of either op (shared: both ops take the same row tiles)
          const gemmDispatches = dispatched.filter((d) => ['moe_gemv', 'grouped_gemm', 'grouped_gemm_fast'].includes(d.kernel));
          const gemms = gemmDispatches.length;
          if (p.name.startsWith('decode GEMV') && !cx.adapterInfo.software && kind !== undefined) {
            expect(gemms, 'expert GEMM dispatches (several chunks per dispatch)').toBeLessThanOrEqual(result.gemms);
            const slots = gemmDispatches.reduce((n, d) => n + ((d.variant.chunks as number | undefined) ?? 1), 0);
            expect(slots, 'chunk slots of the dispatches').toBeGreaterThanOrEqual(result.gemms);
          } else expect(gemms, 'expert GEMM dispatches').toBe(result.gemms);
          const tiles = dispatched.filter((d) => d.kernel === 'grouped_gemm_tiles').length;
          expect(tiles, 'tile-offset dispatches').toBe(p.name.startsWith('decode GEMV') ? 0 : result.ranges);
          return result;
        };
        const base = await run(undefined);
        expect(relErr(base.h, hRef), 'unchunked h vs reference').toBeLessThan(2e-5);
        expect(relErr(base.y, yRef), 'unchunked y vs reference').toBeLessThan(2e-5);
        for (const kind of ['whole', 'split'] as const) {
          const got = await run(kind);
          expect(got.chunks).toBeGreaterThan(kind === 'whole' ? 1 : E);
          expectSameBits(got.h, base.h, `${kind} h`);
          expectSameBits(got.y, base.y, `${kind} y`);
        }
      }, 600_000);
    }
  }
});

describe('chunked stacks: API', () => {
  it('the context option lowers the binding limit (capped by the device), and uploadExpertStack splits by it', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    await expect(createGpuContext({ maxBindingBytes: 6 })).rejects.toThrow(ValueError);
    const small = await createGpuContext({ maxBindingBytes: 4096 });
    const huge = await createGpuContext({ maxBindingBytes: 2 ** 52 });
    try {
      expect(small.maxBindingBytes).toBe(4096);
      expect(huge.maxBindingBytes).toBe(Math.floor(Math.min(huge.limits.maxStorageBufferBindingSize, huge.limits.maxBufferSize) / 4) * 4);
      const w = quantizeExperts(randomArray(rng(1), 6 * 64 * 64), 6, 64, 64, { kind: 'int_block', bits: 8, blockSize: 16, scaleDtype: 'float32' });
      const s = uploadExpertStack(small, w, { layout: 'rows' });
      expect(s.weights.kind).toBe('chunked');
      if (s.weights.kind !== 'chunked') return;
      expect(s.weights.chunks.map((c) => c.experts)).toEqual([1, 1, 1, 1, 1, 1]);
      for (const c of s.weights.chunks) for (const tt of Object.values(c.w)) if (tt instanceof GpuTensor) expect(tt.byteLength).toBeLessThanOrEqual(4096);
      // packed bytes plus scales: the same as one buffer (within the 4-byte padding of each chunk)
      const one = uploadExpertWeights(ctx, w);
      const a = expertWeightBytes(s.weights);
      const b = expertWeightBytes(one);
      expect(a.weights).toBe(b.weights);
      expect(a.scales).toBe(b.scales);
      destroyExpertWeights(one);
      destroyExpertWeights(s.weights);
    } finally {
      small.destroy();
      huge.destroy();
    }
  });
  it('refuses a separate bias with chunked weights, and a split in another layout', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const w = quantizeExperts(randomArray(rng(2), 2 * 16 * 32), 2, 16, 32, { kind: 'mxfp4' });
    const lim = limits(w);
    const g = hostGrouping(new Uint32Array([0, 1]), 1, 2, 2);
    await gpuChecked(cx, async () => {
      const gg = uploadGrouping(cx, g);
      const xg = GpuTensor.upload(cx, new HostTensor('float32', [1, 32], new Float32Array(32)));
      const s = uploadExpertStack(cx, w, { layout: 'interleaved', maxBindingBytes: lim.split });
      const b = GpuTensor.upload(cx, new HostTensor('float32', [2, 16], new Float32Array(32)));
      const rec = new Recorder(cx);
      expect(() => groupedGateUpGpu(cx, rec, xg, gg, s.weights, b, { kind: 'silu', layout: 'interleaved' })).toThrow(/travel in the chunks/);
      expect(() => groupedGateUpGpu(cx, rec, xg, gg, s.weights, undefined, { kind: 'silu', layout: 'concat' })).toThrow(ValueError);
      expect(() => gemvGateUpGpu(cx, rec, xg, gg, s.weights, { kind: 'silu', layout: 'concat' })).toThrow(/split by output/);
      rec.submit();
      for (const x of [xg, b]) x.destroy();
      destroyExpertWeights(s.weights);
      gg.destroy();
    });
  });
});

describe('subgroup-matrix kernel (emulated builtins) on a chunked stack: bit for bit', () => {
  // The kernel's WGSL with the subgroup-matrix builtins emulated per invocation (grouped-gemm-fast.gpu.test.ts), so
  // its chunk addressing (tile offsets of the chunk's experts, chunk-local weights and bias, Y at p * ys + yo + o)
  // runs on adapters without the feature. One small case: gate_up, interleaved, bias, every expert cut in two; with
  // the x rows gathered per chunk, and with them converted to f16 once per call and loaded directly (xh 'direct',
  // the f16 rows shared by the chunks through the call's scratch).
  it('gate_up bf16, E=3, T=40, k=2, K=32, N=40', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
    const cx = ctx;
    const [T, kk, Ex, K, N] = [40, 2, 3, 32, 40];
    const r = rng(99);
    const act = { kind: 'silu' as const, limit: 0, alpha: 0, interleaved: true };
    const w = dense('bfloat16')(randomArray(r, Ex * 2 * N * K, -0.3, 0.3), Ex, 2 * N, K);
    const b = HostTensor.fromFloat32([Ex, 2 * N], randomArray(r, Ex * 2 * N, -0.5, 0.5), 'float32');
    const x = randomArray(r, T * K);
    const g = hostGrouping(randomIdx(r, T, kk, Ex), T, kk, Ex);
    const { recordFastGemm } = await import('../src/kernels/grouped-gemm-fast.js');
    const { foldWorkgroups } = await import('@webmoe/kernels-wgsl');
    const { expertChunkList } = await import('../src/kernels/expert-weights.js');
    const run = (limit: number | undefined, xh?: 'direct') =>
      gpuChecked(cx, async () => {
        const gx = GpuTensor.upload(cx, HostTensor.fromFloat32([T, K], x));
        const s = uploadExpertStack(cx, w, { layout: 'interleaved', bias: b, maxBindingBytes: limit });
        const gg = uploadGrouping(cx, g);
        const y = GpuTensor.empty(cx, 'float32', [T * kk, N]);
        const rec = new Recorder(cx);
        const scratch = { meta: new Map<string, GPUBuffer>() };
        const chunks = expertChunkList(s.weights, s.bias, 'test', 'interleaved');
        for (const c of chunks) {
          const nTilesN = Math.ceil(c.outputs / 64);
          const nWork = (Math.ceil((T * kk) / 64) + Math.min(c.experts, T * kk)) * nTilesN;
          const call = {
            op: 'gate_up' as const, act, x: gx.buffer, xmode: 'token' as const, rowScale: undefined, g: gg, w: c.w, d: { rows: 2 * c.outputs }, bias: c.bias as GpuTensor, biasDt: 'float32' as const,
            K, N: c.outputs, y, place: { e0: c.e0, experts: c.experts, o0: c.o0 }, ys: N, scratch,
          };
          recordFastGemm(rec, call, { kind: 'subgroup-matrix', tm: 64, xh, nTilesN, nWork, grid: foldWorkgroups(cx, nWork) }, { emulateSubgroupMatrix: true });
        }
        rec.submit();
        const out = { y: (await y.download()).toFloat32(), chunks: chunks.length };
        for (const tt of [gx, y, s.bias]) tt?.destroy();
        destroyExpertWeights(s.weights);
        gg.destroy();
        return out;
      });
    const base = await run(undefined);
    expect(relErr(base.y, groupedGateUpRef(x, g, w, b, { kind: 'silu', layout: 'interleaved' }))).toBeLessThan(2e-3); // f16 staging
    const split = await run(Math.floor((0.6 * expertBytes(w)) / 4) * 4);
    expect(split.chunks).toBeGreaterThan(Ex);
    expectSameBits(split.y, base.y, 'emulated subgroup-matrix, split experts');
    const baseXd = await run(undefined, 'direct');
    expect(relErr(baseXd.y, base.y)).toBeLessThan(2e-3);
    const splitXd = await run(Math.floor((0.6 * expertBytes(w)) / 4) * 4, 'direct');
    expectSameBits(splitXd.y, baseXd.y, 'emulated subgroup-matrix, f16 x rows loaded directly, split experts');
  }, 900_000);
});

describe('appendExpertStacks: shared experts after the routed ones, without a copy', () => {
  /** Host containers a and b concatenated along the experts (the stack the appended view stands for). */
  const concatHost = (a: ExpertWeightsHost, b: ExpertWeightsHost): ExpertWeightsHost => {
    const out: Record<string, unknown> = { ...a };
    for (const [field, t] of Object.entries(a)) {
      if (!(t instanceof HostTensor)) continue;
      const u = (b as unknown as Record<string, HostTensor>)[field];
      const data = new (t.data.constructor as new (n: number) => typeof t.data)(t.data.length + u.data.length);
      data.set(t.data as never);
      data.set(u.data as never, t.data.length);
      out[field] = new HostTensor(t.dtype, [t.shape[0] + u.shape[0], ...t.shape.slice(1)], data);
    }
    return out as ExpertWeightsHost;
  };
  const cases: Fmt[] = [FORMATS[1], FORMATS[3], FORMATS[7]];
  for (const f of cases) {
    for (const split of [false, true]) {
      it(`${f.name}${split ? ', the routed stack chunked with an expert cut in two' : ''}: the decode GEMVs over routed + shared equal those over one stack of E + 1 experts, bit for bit`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const cx = ctx;
        const r = rng(77 + (split ? 1 : 0));
        const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
        const [guA, guB] = [f.make(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H), f.make(randomArray(r, 2 * I * H, -0.3, 0.3), 1, 2 * I, H)];
        const [dnA, dnB] = [f.make(randomArray(r, E * H * I, -0.3, 0.3), E, H, I), f.make(randomArray(r, H * I, -0.3, 0.3), 1, H, I)];
        const [gu, dn] = [concatHost(guA, guB), concatHost(dnA, dnB)];
        // T = 3 tokens: k = 2 routed experts each, then the shared expert (expert E) in slot 3
        const T = 3;
        const routed = randomIdx(r, T, k, E);
        const idx = new Uint32Array(T * (k + 1));
        for (let tk = 0; tk < T; tk++) {
          idx.set(routed.subarray(tk * k, (tk + 1) * k), tk * (k + 1));
          idx[tk * (k + 1) + k] = E;
        }
        const g = hostGrouping(idx, T, k + 1, E + 1);
        const x = randomArray(r, T * H);
        const hRef = groupedGateUpRef(x, g, gu, undefined, act);
        const yRef = groupedDownRef(hRef, g, dn, undefined);
        // cpd: chunks per GEMV dispatch (1: a dispatch per chunk, as on software adapters; 4: a GPU's, both stacks in one)
        const run = (appended: boolean, cpd?: number) =>
          withDispatchLog(() => gpuChecked(cx, async () => {
            const gg = uploadGrouping(cx, g);
            const ws: ExpertStackGpu[] = [];
            const stack = (a: ExpertWeightsHost, b: ExpertWeightsHost, whole: ExpertWeightsHost, layout: 'concat' | 'rows') => {
              if (!appended) return ws[ws.push(uploadExpertWeights(cx, whole)) - 1];
              const wa = uploadExpertStack(cx, a, { layout, maxBindingBytes: split ? limits(a).split : undefined }).weights;
              const wb = uploadExpertWeights(cx, b);
              ws.push(wa, wb);
              if (split) expect(wa.kind, 'the routed stack is chunked').toBe('chunked');
              const w = appendExpertStacks(wa, wb, layout);
              expect([w.E, w.chunks.at(-1)!.e0, w.chunks.at(-1)!.experts]).toEqual([E + 1, E, 1]);
              return w;
            };
            const up = stack(guA, guB, gu, 'concat');
            const down = stack(dnA, dnB, dn, 'rows');
            const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], x));
            const rec = new Recorder(cx);
            const h = gemvGateUpGpu(cx, rec, xg, gg, up, act, { chunksPerDispatch: cpd });
            const y = gemvDownGpu(cx, rec, h, gg, down, { chunksPerDispatch: cpd });
            rec.submit();
            const out = { h: (await h.download()).toFloat32(), y: (await y.download()).toFloat32() };
            for (const b of [xg, h, y]) b.destroy();
            for (const w of ws) destroyExpertWeights(w);
            gg.destroy();
            return out;
          }));
        const { result: one } = await run(false);
        expect(relErr(one.h, hRef), 'one stack: h vs reference').toBeLessThan(2e-5);
        expect(relErr(one.y, yRef), 'one stack: y vs reference').toBeLessThan(2e-5);
        for (const cpd of [1, 4]) {
          const { result: two, dispatched } = await run(true, cpd);
          expectSameBits(two.h, one.h, `appended h, ${cpd} chunk(s) per dispatch`);
          expectSameBits(two.y, one.y, `appended y, ${cpd} chunk(s) per dispatch`);
          const gemvs = dispatched.filter((d) => d.kernel === 'moe_gemv');
          if (cpd === 4 && !split) expect(gemvs.map((d) => d.variant.chunks), 'gate_up and down: both stacks in one dispatch each').toEqual([2, 2]);
          if (cpd === 1) expect(gemvs.every((d) => d.variant.chunks === undefined), 'one chunk per dispatch').toBe(true);
        }
      }, 600_000);
    }
  }

  it('refuses stacks of another format, block, shape or bias: a typed error naming the stack', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const r = rng(5);
    const up = (f: Fmt | ExpertQuantFormat, e: number, rows: number, cols: number) =>
      uploadExpertWeights(ctx!, 'make' in f ? f.make(randomArray(r, e * rows * cols), e, rows, cols) : quantizeExperts(randomArray(r, e * rows * cols), e, rows, cols, f));
    const a = up(FORMATS[3], E, 2 * I, H);
    const made: ExpertStackGpu[] = [a];
    const bad: [ExpertStackGpu, RegExp][] = [
      [up(FORMATS[1], 1, 2 * I, H), /format/],
      [up({ kind: 'fp8_block', block: [16, 16] }, 1, 2 * I, H), /format/],
      [up(FORMATS[3], 1, 2 * I, H + 32), /rows, cols/],
    ];
    for (const [b, msg] of bad) {
      made.push(b);
      expect(() => appendExpertStacks(a, b, 'concat')).toThrow(msg);
      expect(tryAppendExpertStacks(a, b, 'concat'), 'tryAppendExpertStacks: undefined instead').toBeUndefined();
    }
    const withBias = uploadExpertStack(ctx, FORMATS[1].make(randomArray(r, E * 2 * I * H), E, 2 * I, H), { layout: 'concat', bias: HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I)), maxBindingBytes: 4 * 2 * I * H * 2 });
    const plain = up(FORMATS[1], 1, 2 * I, H);
    made.push(withBias.weights, plain);
    expect(withBias.weights.kind).toBe('chunked');
    expect(() => appendExpertStacks(withBias.weights, plain, 'concat')).toThrow(ValueError);
    expect(tryAppendExpertStacks(withBias.weights, plain, 'concat')).toBeUndefined();
    // a stack it takes: the same joined stack as appendExpertStacks
    const same = up(FORMATS[3], 1, 2 * I, H);
    made.push(same);
    expect(tryAppendExpertStacks(a, same, 'concat')?.E).toBe(E + 1);
    for (const w of made) destroyExpertWeights(w);
  });
});
