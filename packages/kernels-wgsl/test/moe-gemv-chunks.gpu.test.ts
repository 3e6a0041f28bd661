/**
 * The decode GEMVs on chunked expert stacks with several chunks bound per dispatch (moe-gemv-chunks.ts):
 * the grouping of chunks into dispatches (planGemvChunkGroups, expected values written out by hand), and on
 * the GPU, for random weights in every GEMV format (dense f32 / bf16 with odd shapes, fp8 blocks, int4 with
 * zero points, MXFP4), both chunkings (whole experts per chunk; every expert cut in two), T = 1 and 3, and a
 * routing that leaves whole chunks without an active expert: the results are BIT-identical to the same stack
 * in one buffer and to one dispatch per chunk (chunksPerDispatch: 1, the kernel before this change), close to
 * the CPU references, and the dispatch counts are the expected ones; int4 also on the interleaved kernel a GPU
 * plans for it (rows2i), chunked and not.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, ValueError } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  destroyExpertWeights,
  gemvDownGpu,
  gemvGateUpGpu,
  groupedDownRef,
  groupedGateUpRef,
  quantizeExperts,
  uploadExpertStack,
  type ExpertActivation,
  type ExpertWeightsHost,
  type GemvPackedKernel,
  type GpuContext,
  type GroupingRef,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { hostGrouping, randomIdx, uploadGrouping } from './grouped-helpers.js';
import { GEMV_MAX_CHUNKS_PER_DISPATCH, chunkedGemvSource, planGemvChunkGroups } from '../src/kernels/moe-gemv-chunks.js';
import type { GemvNames } from '../src/kernels/moe-gemv-names.js';
import { gemvKernel } from '../src/kernels/moe-gemv-kernel.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  expect(i === a.length ? -1 : i, `${what}: first differing element ${i} (${got[i]} vs ${want[i]})`).toBe(-1);
}

describe('planGemvChunkGroups', () => {
  const whole = (n: number, E: number, N: number) => Array.from({ length: n }, (_, i) => ({ e0: Math.ceil((i * E) / n), experts: Math.ceil(((i + 1) * E) / n) - Math.ceil((i * E) / n), o0: 0, outputs: N }));
  it('one dispatch per chunk (null) for one chunk or fewer than 2 per dispatch', () => {
    expect(planGemvChunkGroups(whole(1, 8, 64), 8, 10)).toBeNull();
    expect(planGemvChunkGroups(whole(4, 8, 64), 8, 1)).toBeNull();
  });
  it('as few dispatches as the limit allows, all of one size, the last padded', () => {
    // 11 chunks, at most 10 per dispatch: 2 dispatches of 6 (the second: 5 chunks + 1 padding slot)
    const p = planGemvChunkGroups(whole(11, 256, 2048), 8, 10)!;
    expect(p.nc).toBe(6);
    expect(p.groups.map((g) => g.chunks)).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10, 10],
    ]);
    expect(p.groups[1].pad).toEqual([false, false, false, false, false, true]);
    expect(p.groups[1].nx).toEqual([256, 256, 256, 256, 256, 0]);
    expect(p.groups.map((g) => g.blocks)).toEqual([256, 256]);
    expect(p.groups[0].xb).toEqual([0, 0, 0, 0, 0, 0]);
    // never more than GEMV_MAX_CHUNKS_PER_DISPATCH
    // 40 chunks, at most 16 per dispatch: 3 dispatches of 14
    expect(GEMV_MAX_CHUNKS_PER_DISPATCH).toBe(16);
    expect(planGemvChunkGroups(whole(40, 40, 16), 8, 1000)!.nc).toBe(14);
  });
  it('an expert cut in pieces: each output range takes its own blocks of the grid', () => {
    // 3 experts, each cut into outputs [0, 20) and [20, 36); 3 chunks per dispatch: 2 dispatches
    const ch = [0, 1, 2].flatMap((e) => [
      { e0: e, experts: 1, o0: 0, outputs: 20 },
      { e0: e, experts: 1, o0: 20, outputs: 16 },
    ]);
    const p = planGemvChunkGroups(ch, 8, 3)!;
    expect(p.nc).toBe(3);
    expect(p.groups.map((g) => g.chunks)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    // ceil(20 / 8) = 3 blocks for [0, 20), then 2 for [20, 36)
    expect(p.groups[0].xb).toEqual([0, 3, 0]);
    expect(p.groups[0].nx).toEqual([3, 2, 3]);
    expect(p.groups[0].blocks).toBe(5);
    expect(p.groups[1].xb).toEqual([3, 0, 3]);
  });
});

describe('multi-chunk GEMV source', () => {
  it("names every chunk binding, helper and per-chunk uniform in each chunk's copy", () => {
    const v = { wdtype: 'fp8_e4m3', sdtype: 'float32', vec8: true, mode: 'gate_up', act: 'silu', interleaved: false, bias: true, rowScale: true, bdtype: 'float32', wide: false, mr: 2 } as const;
    const three = gemvKernel.source({ ...v, chunks: 3 }, null as never);
    // no binding of a chunk left unrenamed, each chunk's present
    expect(three).not.toMatch(/\b(W|QS|B)\[/);
    for (const c of [0, 1, 2]) {
      for (const n of ['W', 'QS', 'B']) expect(three, `${n}_${c}`).toMatch(new RegExp(`\\b${n}_${c}\\[`));
      for (const n of ['wload8', 'wscale', 'bload']) expect(three).toMatch(new RegExp(`fn ${n}_${c}\\(`));
      expect(three).toMatch(new RegExp(`if \\(chk == ${c}u\\)`));
    }
    expect(three).not.toMatch(/\bu\.(rows|nout|yo|s0|eb|ne)\b/);
    expect(three).not.toMatch(/\bfn (wload8|wscale|bload)\(/);
  });
  it('refuses a generator whose shared declarations depend on the chunk names', () => {
    const module = (n: GemvNames) => ({ decls: [{ text: `fn f() -> u32 { return ${n.W}[0]; }\n`, own: false }], head: 'fn main() {\n', body: '', tail: '}\n' });
    expect(() => chunkedGemvSource(module, 2)).toThrow(ValueError);
    // the same declaration as a chunk's own helper is copied per chunk
    const own = chunkedGemvSource((n) => ({ ...module(n), decls: module(n).decls.map((p) => ({ ...p, own: true })) }), 2);
    expect(own).toContain('return W_0[0];');
    expect(own).toContain('return W_1[0];');
  });
});

interface Fmt {
  name: string;
  H: number;
  I: number;
  make: (w: Float32Array, E: number, rows: number, cols: number) => ExpertWeightsHost;
  bias?: 'float32' | 'bfloat16';
  act: ExpertActivation;
  tol: number;
  /**
   * A packed kernel a GPU's planner takes for this format that software adapters never do
   * (KERNEL_CROSSOVERS.gemvPackedKernel.byFormat), also run chunked here: int4 on the interleaved 'rows2i', MXFP4 on
   * the x-in-registers 'rows4x' (the long-row rule's; each kernel's chunk handling is the same for every format;
   * lavapipe compiles each of its pipelines in ~30 s).
   */
  gpuKernel?: GemvPackedKernel;
}
const silu: ExpertActivation = { kind: 'silu', layout: 'concat' };
const oai: ExpertActivation = { kind: 'swigluoai', limit: 1.5, alpha: 1.702, layout: 'interleaved' };
const FORMATS: Fmt[] = [
  // odd shapes: the scalar (not 8-wide) path
  { name: 'float32 (H 37, I 13)', H: 37, I: 13, make: (w, E, r, c) => ({ kind: 'dense', w: HostTensor.fromFloat32([E, r, c], w, 'float32') }), bias: 'float32', act: silu, tol: 2e-5 },
  { name: 'bfloat16 (H 40, I 24)', H: 40, I: 24, make: (w, E, r, c) => ({ kind: 'dense', w: HostTensor.fromFloat32([E, r, c], w, 'bfloat16') }), bias: 'bfloat16', act: oai, tol: 2e-5 },
  { name: 'fp8_block e4m3 16x32', H: 64, I: 32, make: (w, E, r, c) => quantizeExperts(w, E, r, c, { kind: 'fp8_block', block: [16, 32] }), act: silu, tol: 2e-5 },
  { name: 'int4 blocks of 32, zero points', H: 64, I: 32, make: (w, E, r, c) => quantizeExperts(w, E, r, c, { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true }), act: silu, tol: 2e-5, gpuKernel: 'rows2i' },
  { name: 'mxfp4', H: 64, I: 32, make: (w, E, r, c) => quantizeExperts(w, E, r, c, { kind: 'mxfp4' }), bias: 'bfloat16', act: oai, tol: 2e-5, gpuKernel: 'rows4x' },
];

const E = 6;
const k = 2;

/** The largest per-expert tensor bytes of a host container (codes dominate). */
function expertBytes(w: ExpertWeightsHost): number {
  const ts = w.kind === 'dense' ? [w.w] : w.kind === 'fp8_block' ? [w.q, w.scaleInv] : w.kind === 'mxfp4' ? [w.blocks, w.scales] : [w.q, w.scales, ...(w.zeros ? [w.zeros] : [])];
  return Math.max(...ts.map((t) => t.byteLength / t.shape[0]));
}

/** Byte limits: two whole experts per chunk (3 chunks of E = 6), or every expert cut in two. */
function limitOf(w: ExpertWeightsHost, kind: 'whole' | 'split'): number {
  const b = expertBytes(w);
  return kind === 'whole' ? Math.ceil((2 * b) / 4) * 4 : Math.floor((0.6 * b) / 4) * 4;
}

/** Routings: random over a subset of the experts, or every token on experts 0 and 1 only (the other chunks idle). */
function routing(kind: 'random' | 'first two', T: number, seed: number): Uint32Array {
  if (kind === 'random') return randomIdx(rng(seed), T, k, E);
  const idx = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) [idx[t * k], idx[t * k + 1]] = t % 2 ? [1, 0] : [0, 1];
  return idx;
}

describe('decode GEMVs with several chunks per dispatch: bit for bit', () => {
  for (const f of FORMATS) {
    for (const [T, route] of [
      [1, 'random'],
      [3, 'random'],
      [3, 'first two'],
    ] as const) {
      it(`${f.name}, T=${T}, ${route} routing`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const cx = ctx;
        const { H, I, act } = f;
        const r = rng(31 + T);
        const gu = f.make(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H);
        const dn = f.make(randomArray(r, E * H * I, -0.3, 0.3), E, H, I);
        const guB = f.bias ? HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.5, 0.5), f.bias) : undefined;
        const dnB = f.bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.5, 0.5), f.bias) : undefined;
        const g: GroupingRef = hostGrouping(routing(route, T, 40 + T), T, k, E);
        const x = randomArray(rng(50 + T), T * H);
        const rsv = randomArray(rng(60 + T), T * k, 0.5, 1.5);
        const hRef = groupedGateUpRef(x, g, gu, guB, act, rsv);
        const yRef = groupedDownRef(hRef, g, dn, dnB);
        const run = async (kind: 'whole' | 'split' | undefined, perDispatch?: number, packedKernel?: GemvPackedKernel) => {
          const { result, dispatched } = await withDispatchLog(() =>
            gpuChecked(cx, async () => {
              const gg = uploadGrouping(cx, g);
              const up = uploadExpertStack(cx, gu, { layout: act.layout, bias: guB, maxBindingBytes: kind && limitOf(gu, kind) });
              const down = uploadExpertStack(cx, dn, { layout: 'rows', bias: dnB, maxBindingBytes: kind && limitOf(dn, kind) });
              const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], x));
              const rs = GpuTensor.upload(cx, new HostTensor('float32', [T, k], rsv));
              const rec = new Recorder(cx);
              const h = gemvGateUpGpu(cx, rec, xg, gg, up.weights, act, { bias: up.bias, rowScale: rs, chunksPerDispatch: perDispatch, packedKernel });
              const y = gemvDownGpu(cx, rec, h, gg, down.weights, { bias: down.bias, chunksPerDispatch: perDispatch, packedKernel });
              rec.submit();
              const n = (w: typeof up.weights) => (w.kind === 'chunked' ? w.chunks.length : 1);
              const out = { h: (await h.download()).toFloat32(), y: (await y.download()).toFloat32(), chunks: [n(up.weights), n(down.weights)] };
              for (const b of [xg, rs, h, y, up.bias, down.bias]) b?.destroy();
              destroyExpertWeights(up.weights);
              destroyExpertWeights(down.weights);
              gg.destroy();
              return out;
            }),
          );
          const gemvs = dispatched.filter((d) => d.kernel === 'moe_gemv');
          return { ...result, gemvs: gemvs.length, ncs: gemvs.map((d) => d.variant.chunks) };
        };
        const base = await run(undefined);
        expect(relErr(base.h, hRef), 'unchunked h vs reference').toBeLessThan(f.tol);
        expect(relErr(base.y, yRef), 'unchunked y vs reference').toBeLessThan(f.tol);
        expect(base.ncs, 'a stack in one buffer: the one-chunk kernel').toEqual([undefined, undefined]);
        for (const kind of ['whole', 'split'] as const) {
          const oneEach = await run(kind, 1);
          const n = oneEach.chunks;
          expect(n[0], `${kind}: gate_up chunks`).toBe(kind === 'whole' ? 3 : 2 * E);
          expect(n[1], `${kind}: down chunks`).toBe(kind === 'whole' ? 3 : 2 * E);
          expect(oneEach.gemvs, 'one dispatch per chunk').toBe(n[0] + n[1]);
          expect(oneEach.ncs.every((c) => c === undefined)).toBe(true);
          expectSameBits(oneEach.h, base.h, `${kind}, one chunk per dispatch: h`);
          expectSameBits(oneEach.y, base.y, `${kind}, one chunk per dispatch: y`);
          // the planner's default on this adapter (gemvChunksPerDispatch: one per chunk on a software adapter, several on a GPU)
          const dflt = await run(kind);
          expectSameBits(dflt.h, base.h, `${kind}, default chunks per dispatch: h`);
          expectSameBits(dflt.y, base.y, `${kind}, default chunks per dispatch: y`);
          if (cx.adapterInfo.software) expect(dflt.gemvs, 'software adapter: one dispatch per chunk').toBe(n[0] + n[1]);
          else if (cx.limits.maxStorageBuffersPerShaderStage >= 16) expect(dflt.gemvs, 'a GPU: several chunks per dispatch').toBeLessThan(n[0] + n[1]);
          // 2 and 3 chunks per dispatch (whole: 2 leaves a padding slot; split: with 3, an expert's two pieces fall in different dispatches)
          for (const per of [2, 3]) {
            const got = await run(kind, per);
            // ceil(n / per) dispatches of equal NC = ceil(n / dispatches)
            const want = n.map((c) => Math.ceil(c / Math.min(per, c)));
            expect(got.gemvs, `${kind}, ${per} per dispatch: dispatches`).toBe(want[0] + want[1]);
            expect(got.ncs, `${kind}, ${per} per dispatch: NC`).toEqual(n.flatMap((c, i) => Array(want[i]).fill(Math.ceil(c / want[i]))));
            expectSameBits(got.h, base.h, `${kind}, ${per} per dispatch: h`);
            expectSameBits(got.y, base.y, `${kind}, ${per} per dispatch: y`);
          }
        }
        // the GPU planner's own kernel for the format (software adapters plan another): unchunked against the
        // reference, then chunked (whole experts and split ones, 2 per dispatch) bit for bit
        if (f.gpuKernel) {
          const own = await run(undefined, undefined, f.gpuKernel);
          expect(relErr(own.h, hRef), `${f.gpuKernel}: h vs reference`).toBeLessThan(f.tol);
          expect(relErr(own.y, yRef), `${f.gpuKernel}: y vs reference`).toBeLessThan(f.tol);
          for (const kind of ['whole', 'split'] as const) {
            const got = await run(kind, 2, f.gpuKernel);
            expect(got.ncs.every((c) => c === 2)).toBe(true);
            expectSameBits(got.h, own.h, `${f.gpuKernel} ${kind}, 2 per dispatch: h`);
            expectSameBits(got.y, own.y, `${f.gpuKernel} ${kind}, 2 per dispatch: y`);
          }
        }
      }, 600_000);
    }
  }
});

describe('GemvOptions.chunksPerDispatch', () => {
  it('refuses anything but a positive integer (ValueError naming the option)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const H = 16, I = 8, T = 1;
    const w = HostTensor.fromFloat32([E, 2 * I, H], randomArray(rng(1), E * 2 * I * H), 'float32');
    const s = uploadExpertStack(cx, { kind: 'dense', w }, { layout: 'concat', maxBindingBytes: 2 * 2 * I * H * 4 });
    expect(s.weights.kind).toBe('chunked');
    const gg = uploadGrouping(cx, hostGrouping(randomIdx(rng(2), T, k, E), T, k, E));
    const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], randomArray(rng(3), T * H)));
    const rec = new Recorder(cx);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => gemvGateUpGpu(cx, rec, xg, gg, s.weights, silu, { chunksPerDispatch: bad }), String(bad)).toThrow(ValueError);
      expect(() => gemvGateUpGpu(cx, rec, xg, gg, s.weights, silu, { chunksPerDispatch: bad }), String(bad)).toThrow(/chunksPerDispatch/);
    }
    rec.submit();
    xg.destroy();
    gg.destroy();
    destroyExpertWeights(s.weights);
  });
});
