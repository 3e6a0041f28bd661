/**
 * The fast prefill grouped GEMMs (grouped-gemm-fast*.ts) against the
 * references groupedGateUpRef / groupedDownRef: every fast kernel ('f32',
 * 'f16' staging, 'subgroup-matrix'), gate_up with each activation and
 * layout, biases, rowScale, bf16/f16/f32 weights and every packed format
 * (fp8 e4m3 / e5m2 blocks, int4 / int8 blocks with f16 / f32 scales, MXFP4;
 * the references decode the same quantized weights), odd row and output
 * counts, K % 8 == 0 with a partial last K slice, 1..1100+ grouped rows and
 * experts with no rows. The subgroup-matrix cases run only where the adapter
 * has chromium-experimental-subgroup-matrix (visible skip elsewhere).
 *
 * Tolerances (relErr = L2 relative; maxErr = max |got - want| / max |want|):
 * f32: relErr < 2e-5, maxErr < 1e-4 (f32 math, a different summation order).
 * f16 and subgroup-matrix (x and w rounded to f16, f32 accumulation; the
 * inputs here are bf16-representable or quantized weights in [-0.3, 0.3]
 * and x in [-1, 1]): relErr < 2e-3, maxErr < 1e-2.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, roundTo } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  destroyExpertWeights,
  groupedDownGpu,
  groupedDownRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  quantizeExperts,
  uploadExpertWeights,
  type ExpertActivation,
  type ExpertQuantFormat,
  type ExpertWeightsGpu,
  type ExpertWeightsHost,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr, withDispatchLog, withEmulatedSubgroupMatrix, type Dispatched } from '@webmoe/kernels-wgsl/testing';
import { fastGemmKind, fastWeightFormat, planFastGemm, sgmatSupported, sgmatTailPlan, type FastGemmKind, type SgmatShapeName } from '../src/kernels/grouped-gemm-fast.js';
import { SGMAT_DEFAULT_SHAPE, SGMAT_SHAPES, sgmatLayout, type FastGemmVariant } from '../src/kernels/grouped-gemm-fast-shapes.js';
import { groupedGemmSgmatKernel } from '../src/kernels/grouped-gemm-sgmat-wgsl.js';
import { KERNEL_CROSSOVERS, fastGemmMinRowsPerExpert, sgmatTileFor } from '../src/kernels/plan.js';
import { blockShiftUniforms, weightLayout } from '../src/kernels/grouped-gemm-weights.js';
import { firstBitDiff, hostGrouping, naiveDown, naiveGateUp, randomIdx, runSgmatCase, uploadGrouping } from './grouped-helpers.js';
import { randomZeros } from './quant-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type Dense = 'float32' | 'bfloat16' | 'float16';
const KINDS: FastGemmKind[] = ['f32', 'f16', 'subgroup-matrix'];
const ACTS: ExpertActivation[] = [
  { kind: 'silu', layout: 'concat' },
  { kind: 'swigluoai', limit: 1.1, alpha: 1.702, layout: 'interleaved' },
  { kind: 'swiglu_limit', limit: 0.9, layout: 'concat' },
  { kind: 'silu', layout: 'interleaved' },
];

function maxErr(got: Float32Array, want: Float32Array): number {
  let m = 0;
  let d = 0;
  for (let i = 0; i < want.length; i++) {
    m = Math.max(m, Math.abs(want[i]));
    d = Math.max(d, Math.abs(got[i] - want[i]));
  }
  return m === 0 ? d : d / m;
}

function tol(kind: FastGemmKind): { rel: number; max: number } {
  return kind === 'f32' ? { rel: 2e-5, max: 1e-4 } : { rel: 2e-3, max: 1e-2 };
}

/** `got` is finite and within the tolerance of `kind` (tol) of `want`: relative L2 and largest error. */
function expectWithinTol(got: Float32Array, want: Float32Array, kind: FastGemmKind, finite = 'finite'): void {
  const e = tol(kind);
  expect(got.every(Number.isFinite), finite).toBe(true);
  expect(relErr(got, want)).toBeLessThan(e.rel);
  expect(maxErr(got, want)).toBeLessThan(e.max);
}

/** Skips (or fails, see below) a case the adapter cannot run; returns false when skipped. */
function canRun(c: { skip: (r?: string) => never }, kind: FastGemmKind): void {
  if (!ctx) c.skip('no WebGPU adapter');
  if (kind === 'subgroup-matrix') {
    if (!ctx!.features.subgroupMatrix) c.skip('no subgroup-matrix on this adapter');
    // The feature is there: the kernel must be selectable, or this adapter silently loses the tensor-core path.
    const info = (ctx!.adapter as GPUAdapter & { info?: Record<string, unknown> }).info;
    expect(sgmatSupported(ctx!), `subgroup-matrix present but unusable: configs=${JSON.stringify(info?.subgroupMatrixConfigs)} subgroupMaxSize=${String(info?.subgroupMaxSize)} wgMem=${ctx!.limits.maxComputeWorkgroupStorageSize}`).toBe(true);
  }
  if (kind === 'f16' && !ctx!.features.shaderF16) c.skip('no shader-f16 on this adapter');
  expect(fastGemmKind(ctx!, kind)).toBe(kind);
}

interface Case {
  T: number;
  k: number;
  E: number;
  H: number;
  I: number;
  dt: Dense;
  act: ExpertActivation;
  bias: boolean;
  rowScale: boolean;
  /** Packed weights: quantizeExperts of the random f32 weights into this format (dt is then unused). */
  fmt?: ExpertQuantFormat;
}

/** The case's weights [E, rows, cols]: random in [-0.3, 0.3], rounded to dt or quantized to fmt. */
function weights(r: () => number, c: Pick<Case, 'E' | 'dt' | 'fmt'>, rows: number, cols: number): ExpertWeightsHost {
  const f = randomArray(r, c.E * rows * cols, -0.3, 0.3);
  return c.fmt ? randomZeros(r, quantizeExperts(f, c.E, rows, cols, c.fmt)) : { kind: 'dense', w: HostTensor.fromFloat32([c.E, rows, cols], roundTo(c.dt, f), c.dt) };
}

/** Packed-format cases, one per format (each runs gate_up and down): block boundaries on multiples of 8 inside K, partial last K slices (K = 40, 56, 72), odd N, zero-row experts. */
function packedCases(): Case[] {
  return [
    { T: 70, k: 2, E: 5, H: 40, I: 77, dt: 'bfloat16', act: ACTS[0], bias: true, rowScale: true, fmt: { kind: 'fp8_block', block: [16, 16] } },
    { T: 33, k: 3, E: 4, H: 56, I: 131, dt: 'bfloat16', act: ACTS[1], bias: false, rowScale: false, fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [5, 60] } },
    { T: 65, k: 2, E: 6, H: 64, I: 45, dt: 'bfloat16', act: ACTS[1], bias: true, rowScale: false, fmt: { kind: 'mxfp4' } },
    { T: 100, k: 2, E: 3, H: 72, I: 67, dt: 'bfloat16', act: ACTS[2], bias: false, rowScale: true, fmt: { kind: 'int_block', bits: 4, blockSize: 16, scaleDtype: 'float16' } },
    { T: 40, k: 4, E: 7, H: 56, I: 129, dt: 'bfloat16', act: ACTS[3], bias: true, rowScale: false, fmt: { kind: 'int_block', bits: 8, blockSize: 24 } },
    { T: 50, k: 2, E: 4, H: 40, I: 69, dt: 'bfloat16', act: ACTS[0], bias: true, rowScale: true, fmt: { kind: 'int_block', bits: 4, blockSize: 8, scaleDtype: 'float16', zeroPoint: true } },
  ];
}

function cases(): Case[] {
  // Few variants: each is a pipeline compile, slow on lavapipe. Sizes: K % 8 == 0 with a partial last K slice (H = 40, 56, 72), odd N over
  // one to three output tiles, zero-row experts (randomIdx leaves every third expert empty), T*k from 4 to 1148 grouped rows.
  return [
    { T: 1, k: 4, E: 5, H: 32, I: 115, dt: 'float16', act: ACTS[0], bias: true, rowScale: true },
    { T: 33, k: 1, E: 9, H: 56, I: 135, dt: 'float32', act: ACTS[2], bias: true, rowScale: false },
    { T: 287, k: 4, E: 10, H: 72, I: 77, dt: 'bfloat16', act: ACTS[1], bias: false, rowScale: true },
    { T: 1100, k: 1, E: 3, H: 40, I: 131, dt: 'bfloat16', act: ACTS[3], bias: false, rowScale: false },
  ];
}

/** Multiplies every third row of x [rows, K] by `big` (inputs beyond f16's range when big > 65504). */
function bigRows(x: Float32Array, K: number, big: number | undefined): Float32Array {
  if (big !== undefined) for (let i = 0; i < x.length; i++) if (Math.floor(i / K) % 3 === 0) x[i] *= big;
  return x;
}

async function gateUp(c: Case, seed: number, opts: { tile?: 'fast' | 'prefill'; fast?: FastGemmKind; blockShifts?: boolean }, big?: number): Promise<{ got: Float32Array; want: Float32Array }> {
  const r = rng(seed);
  const { T, k, E, H, I } = c;
  const x = bigRows(randomArray(r, T * H, -1, 1), H, big);
  const w = weights(r, c, 2 * I, H);
  const bias = c.bias ? HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.5, 0.5), 'bfloat16') : undefined;
  const rs = c.rowScale ? randomArray(r, T * k, 0.1, 1.5) : undefined;
  const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
  const want = groupedGateUpRef(x, g, w, bias, c.act, rs);
  // the reference itself against plain loops written independently of it (grouped-helpers.ts; dense weights)
  if (w.kind === 'dense') expect(relErr(want, naiveGateUp(x, g, w.w.toFloat32(), bias?.toFloat32(), c.act, rs, H, I)), 'reference vs naive').toBeLessThan(1e-6);
  const got = await gpuChecked(ctx!, async () => {
    const gx = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, H], x));
    const gw = uploadExpertWeights(ctx!, w);
    const gb = bias ? GpuTensor.upload(ctx!, bias) : undefined;
    const grs = rs ? GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, k], rs)) : undefined;
    const gg = uploadGrouping(ctx!, g);
    const rec = new Recorder(ctx!);
    const y = groupedGateUpGpu(ctx!, rec, gx, gg, gw, gb, c.act, { rowScale: grs, ...opts });
    rec.submit();
    expect(y.shape).toEqual([T * k, I]);
    const out = (await y.download()).data as Float32Array;
    for (const t of [gx, gb, grs, y]) t?.destroy();
    destroyExpertWeights(gw);
    gg.destroy();
    return out;
  });
  return { got, want };
}

async function down(c: Case, seed: number, opts: { tile?: 'fast' | 'prefill'; fast?: FastGemmKind; blockShifts?: boolean }, big?: number): Promise<{ got: Float32Array; want: Float32Array }> {
  const r = rng(seed);
  // down: K = I (must be % 8), N = H (odd here): swap the roles of the case's sizes.
  const { T, k, E } = c;
  const K = c.H;
  const N = c.I;
  const h = bigRows(randomArray(r, T * k * K, -1, 1), K, big);
  const w = weights(r, c, N, K);
  const bias = c.bias ? HostTensor.fromFloat32([E, N], randomArray(r, E * N, -1, 1), 'float16') : undefined;
  const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
  const want = groupedDownRef(h, g, w, bias);
  if (w.kind === 'dense') expect(relErr(want, naiveDown(h, g, w.w.toFloat32(), bias?.toFloat32(), N, K)), 'reference vs naive').toBeLessThan(1e-6);
  const got = await gpuChecked(ctx!, async () => {
    const gh = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T * k, K], h));
    const gw = uploadExpertWeights(ctx!, w);
    const gb = bias ? GpuTensor.upload(ctx!, bias) : undefined;
    const gg = uploadGrouping(ctx!, g);
    const rec = new Recorder(ctx!);
    const y = groupedDownGpu(ctx!, rec, gh, gg, gw, gb, opts);
    rec.submit();
    expect(y.shape).toEqual([T * k, N]);
    const out = (await y.download()).data as Float32Array;
    for (const t of [gh, gb, y]) t?.destroy();
    destroyExpertWeights(gw);
    gg.destroy();
    return out;
  });
  return { got, want };
}

for (const kind of KINDS) {
  describe(`fast grouped GEMM '${kind}' vs reference`, () => {
    // 'f16' is opt-in only: two cases keep the lavapipe run short.
    cases().filter((_, n) => kind !== 'f16' || n % 2 === 0).forEach((c, n) => {
      const name = `T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I} ${c.dt} bias=${c.bias}`;
      it(`gate_up ${name} ${c.act.kind}/${c.act.layout} rowScale=${c.rowScale}`, async (t) => {
        canRun(t, kind);
        const { got, want } = await gateUp(c, 5000 + n, { tile: 'fast', fast: kind });
        expectWithinTol(got, want, kind);
      });
      it(`down ${name}`, async (t) => {
        canRun(t, kind);
        const { got, want } = await down(c, 7000 + n, { tile: 'fast', fast: kind });
        expectWithinTol(got, want, kind);
      });
    });
  });
}

// T = 4096 in every weight dtype and packed format, through the planner's default (no options: on lavapipe the f32
// fast kernel, on an adapter with subgroup matrices its tile for ~1000 rows per expert, the H200's 128 x 256 one with
// f16 x rows and the packed formats' word-at-a-time staging), both ops, every third expert empty (randomIdx).
describe('prefill GEMMs at T = 4096, every dtype and format, as planned', () => {
  const big: Case[] = [
    ...(['bfloat16', 'float16', 'float32'] as const).map((dt) => ({ dt, fmt: undefined })),
    ...[
      { kind: 'fp8_block', block: [32, 32] },
      { kind: 'fp8_block', dtype: 'float8_e5m2', block: [16, 64] },
      { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true },
      { kind: 'int_block', bits: 8, blockSize: 32 },
      { kind: 'mxfp4' },
    ].map((fmt) => ({ dt: 'bfloat16' as const, fmt: fmt as ExpertQuantFormat })),
  ].map(({ dt, fmt }, n) => ({ T: 4096, k: 2, E: 9, H: 64, I: 96, dt, fmt, act: ACTS[n % ACTS.length], bias: n % 2 === 0, rowScale: n % 3 === 0 }));
  // the kernel the planner runs: every packed format gets the same choice as int4
  const bigKind = (c: Case) => fastGemmKind(ctx!, undefined, c.fmt ? 'int4' : c.dt);
  big.forEach((c, n) => {
    const name = `T=4096 k=2 E=9 H=64 I=96 ${c.fmt ? fmtName(c.fmt) : c.dt} bias=${c.bias}`;
    it(`gate_up ${name} ${c.act.kind}/${c.act.layout} rowScale=${c.rowScale}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const { got, want } = await gateUp(c, 9100 + n, {});
      expectWithinTol(got, want, bigKind(c));
    }, 600_000);
    it(`down ${name}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const { got, want } = await down(c, 9300 + n, {});
      expectWithinTol(got, want, bigKind(c));
    }, 600_000);
  });
});

function fmtName(f: ExpertQuantFormat): string {
  return f.kind === 'fp8_block' ? `fp8 ${f.dtype ?? 'float8_e4m3fn'} block [${f.block}]` : f.kind === 'int_block' ? `int${f.bits} block ${f.blockSize} ${f.scaleDtype ?? 'float32'} scales${f.zeroPoint ? ' + zero points' : ''}` : f.kind;
}

for (const kind of KINDS) {
  describe(`fast grouped GEMM '${kind}' with packed weights (decoded at staging) vs reference`, () => {
    // 'f16' is opt-in only: three formats (8-bit codes with vec2 loads and f32 scales, 4-bit codes with e8m0 scales) keep the lavapipe run short.
    packedCases().filter((_, n) => kind !== 'f16' || n % 2 === 0).forEach((c, n) => {
      const name = `${fmtName(c.fmt!)} T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I} bias=${c.bias}`;
      it(`${name}: gate_up ${c.act.kind}/${c.act.layout} rowScale=${c.rowScale} and down`, async (t) => {
        canRun(t, kind);
        const e = tol(kind);
        const a = await gateUp(c, 8000 + n, { tile: 'fast', fast: kind });
        expect(a.got.every(Number.isFinite)).toBe(true);
        expect(relErr(a.got, a.want), 'gate_up').toBeLessThan(e.rel);
        expect(maxErr(a.got, a.want), 'gate_up').toBeLessThan(e.max);
        const d = await down(c, 8500 + n, { tile: 'fast', fast: kind });
        expect(d.got.every(Number.isFinite)).toBe(true);
        expect(relErr(d.got, d.want), 'down').toBeLessThan(e.rel);
        expect(maxErr(d.got, d.want), 'down').toBeLessThan(e.max);
      });
    });
  });
}

describe('packed staging: scale indexes by shifts where the blocks are powers of two', () => {
  const fmts: ExpertQuantFormat[] = [
    { kind: 'fp8_block', block: [16, 32] },
    { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true },
    { kind: 'int_block', bits: 8, blockSize: 16 },
  ];
  // the f16 FMA kernel loads weights as the f32 one does (wload), so not again here: its lavapipe run is long
  for (const kind of KINDS.filter((k) => k !== 'f16')) {
    it(`${kind}: shifts (default) and divisions (blockShifts: false) give the same bits, within tolerance of the reference; the dispatched variant says which`, async (t) => {
      canRun(t, kind);
      const e = tol(kind);
      const gemmVariants = (log: Dispatched[]) => log.filter((d) => d.kernel === 'grouped_gemm_fast' || d.kernel === 'grouped_gemm_sgmat').map((d) => d.variant.blockShifts);
      for (const [n, fmt] of fmts.entries()) {
        const c: Case = { T: 70, k: 2, E: 3, H: 64, I: 48, dt: 'bfloat16', act: ACTS[n % ACTS.length], bias: true, rowScale: true, fmt };
        for (const [op, run] of [['gate_up', gateUp], ['down', down]] as const) {
          const shifts = await withDispatchLog(() => run(c, 9700 + n, { tile: 'fast', fast: kind }));
          const divides = await withDispatchLog(() => run(c, 9700 + n, { tile: 'fast', fast: kind, blockShifts: false }));
          expect(gemmVariants(shifts.dispatched), `${fmtName(fmt)} ${op}`).toEqual([true]);
          expect(gemmVariants(divides.dispatched), `${fmtName(fmt)} ${op}`).toEqual([undefined]);
          expect(firstBitDiff(shifts.result.got, divides.result.got), `${fmtName(fmt)} ${op}: first differing value`).toBe(-1);
          expect(relErr(shifts.result.got, shifts.result.want), `${fmtName(fmt)} ${op}`).toBeLessThan(e.rel);
        }
      }
    });
  }

  it('blockShifts other than a boolean: a ValueError, nothing planned', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = { kind: 'dense' as const, w: GpuTensor.empty(ctx, 'bfloat16', [4, 16, 32]) };
    try {
      expect(() => planFastGemm(ctx!, { tile: 'fast', blockShifts: 'yes' as unknown as boolean }, w, 4096, 4, 16, 32, 'down')).toThrow(/blockShifts: expected a boolean \| undefined, got yes/);
    } finally {
      w.w.destroy();
    }
  });
});

describe('sgmatTail (the tail dispatch) asked of planFastGemm', () => {
  it('an unknown shape, or (where the matrix kernel runs) one no smaller than the main tile or unable to read its x rows: a ValueError; else the tail planned', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = { kind: 'dense' as const, w: GpuTensor.empty(ctx, 'bfloat16', [4, 16, 64]) };
    const sg = { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatShape: 'm64n128k32' as const };
    try {
      expect(() => planFastGemm(ctx!, { ...sg, sgmatTail: 'm7n7' as SgmatShapeName }, w, 4096, 4, 16, 64, 'down')).toThrow(/sgmatTail: expected false \| a subgroup-matrix shape of fewer rows/);
      if (fastGemmKind(ctx, 'subgroup-matrix') !== 'subgroup-matrix' || !sgmatSupported(ctx, 'm64n128k32')) return;
      expect(() => planFastGemm(ctx!, { ...sg, sgmatTail: 'm128n128k32' }, w, 4096, 4, 16, 64, 'down')).toThrow(/sgmatTail: expected false \| a subgroup-matrix shape of fewer rows than the call's m64n128k32 \(64\)/);
      // gathered x rows: a shape without an A tile loads f16 rows directly, which the call does not make
      expect(() => planFastGemm(ctx!, { ...sg, sgmatTail: 'm16n128k64xd' }, w, 4096, 4, 16, 64, 'down')).toThrow(/able to read its x rows \(gathered\)/);
      const plan = planFastGemm(ctx!, { ...sg, sgmatTail: 'm16n128k32' }, w, 4096, 4, 16, 64, 'down');
      if (sgmatSupported(ctx, 'm16n128k32')) expect(plan?.tail).toEqual(sgmatTailPlan(ctx, 'm16n128k32', 'down', 16, 4));
    } finally {
      w.w.destroy();
    }
  });

  it("unasked: the planner's tail (sgmatTailFor) on a split-K down GEMM only, none on an unsplit one, on gate_up, under a tile no taller, or with sgmatTail false", async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = { kind: 'dense' as const, w: GpuTensor.empty(ctx, 'bfloat16', [4, 32, 64]) };
    const sg = { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatShape: 'm64n128k32' as const };
    const tail = KERNEL_CROSSOVERS.sgmatTail.splitDown!;
    // planning only: on adapters without the matrix units, a view on which the planner finds them (as on the H200)
    const c = ctx.features.subgroupMatrix || !ctx.features.shaderF16 || !ctx.features.subgroups ? ctx : withEmulatedSubgroupMatrix(ctx);
    try {
      if (fastGemmKind(c, 'subgroup-matrix') !== 'subgroup-matrix' || !sgmatSupported(c, 'm64n128k32') || !sgmatSupported(c, tail)) return t.skip('no subgroup-matrix tiles m64n128k32 and the tail on this adapter');
      const plan = (o: object, op: 'gate_up' | 'down', shape = 'm64n128k32') => planFastGemm(c, { ...sg, sgmatShape: shape as SgmatShapeName, ...o }, w, 4096, 4, 32, 64, op);
      expect(plan({ sgmatSplitK: 2 }, 'down')?.tail).toEqual(sgmatTailPlan(c, tail, 'down', 32, 4));
      expect(plan({ sgmatSplitK: 3 }, 'down')?.tail?.shape).toBe(tail);
      expect(plan({ sgmatSplitK: 1 }, 'down')?.tail).toBeUndefined();
      expect(plan({ sgmatSplitK: 2, sgmatTail: false }, 'down')?.tail).toBeUndefined();
      expect(plan({}, 'gate_up')?.tail).toBeUndefined();
      // the tail's own 32-row tile as the call's: not taller, so no tail (and no error: the planner asked, not the caller)
      expect(plan({ sgmatSplitK: 2 }, 'down', 'm32n128k32')?.tail).toBeUndefined();
    } finally {
      w.w.destroy();
    }
  });
});

describe('f16-staged kernels with inputs beyond f16 range (per-row power-of-two scaling)', () => {
  // Rows with |x| up to 1e5 (f16 max 65504) next to ordinary rows: without the row scale they become inf/NaN.
  const big: Case = { T: 70, k: 2, E: 3, H: 40, I: 77, dt: 'bfloat16', act: ACTS[1], bias: true, rowScale: true };
  for (const kind of ['f16', 'subgroup-matrix'] as FastGemmKind[]) {
    it(`${kind}: gate_up and down, rows up to 1e5`, async (t) => {
      canRun(t, kind);
      const e = tol(kind);
      const a = await gateUp(big, 9300, { tile: 'fast', fast: kind }, 1e5);
      expect(a.got.every(Number.isFinite)).toBe(true);
      expect(relErr(a.got, a.want)).toBeLessThan(e.rel);
      const d = await down(big, 9400, { tile: 'fast', fast: kind }, 1e5);
      expect(d.got.every(Number.isFinite)).toBe(true);
      expect(relErr(d.got, d.want)).toBeLessThan(e.rel);
      expect(maxErr(d.got, d.want)).toBeLessThan(e.max);
    });
  }
});

describe('fast path selection', () => {
  it('routes dense prefill calls (T*k >= fastGemmMinRowsPerExpert * E, K % 8 == 0) and nothing else', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = { kind: 'dense' as const, w: GpuTensor.empty(ctx, 'bfloat16', [4, 16, 32]) };
    try {
      const minRows = fastGemmMinRowsPerExpert(fastGemmKind(ctx, undefined, 'bfloat16'), ctx.adapterInfo.software) * 4;
      // 8 rows per expert on the matrix units, 64 on the f32 FMA tiles of a GPU, 32 on a software adapter's
      expect(minRows).toBe(sgmatSupported(ctx) ? 32 : ctx.adapterInfo.software ? 128 : 256);
      expect(planFastGemm(ctx, {}, w, minRows, 4, 16, 32, 'down')).toBeDefined();
      expect(planFastGemm(ctx, {}, w, minRows - 1, 4, 16, 32, 'down')).toBeUndefined();
      expect(planFastGemm(ctx, { tile: 'fast' }, w, 3, 4, 16, 32, 'down')).toBeDefined();
      expect(planFastGemm(ctx, { tile: 'prefill' }, w, 4096, 4, 16, 32, 'down')).toBeUndefined();
      expect(planFastGemm(ctx, { tile: 'fast' }, w, 4096, 4, 16, 36, 'down')).toBeUndefined();
      expect(planFastGemm(ctx, { tile: 'fast', actQuant: 'fp8_dynamic' }, w, 4096, 4, 16, 32, 'down')).toBeUndefined();
      expect(() => planFastGemm(ctx!, { tile: 'fast', fast: 'bogus' as FastGemmKind }, w, 4096, 4, 16, 32, 'down')).toThrow();
      // Default: the subgroup-matrix kernel for 16-bit weights where the adapter has it; float32 weights keep the f32 kernel.
      expect(planFastGemm(ctx, {}, w, 4096, 4, 16, 32, 'down')!.kind).toBe(sgmatSupported(ctx) ? 'subgroup-matrix' : 'f32');
      // the subgroup-matrix tile of the planner (plan.ts sgmatTileFor), the FMA kernels' 64 rows
      expect(planFastGemm(ctx, {}, w, 4096, 4, 16, 32, 'down')!.tm).toBe(sgmatSupported(ctx) ? SGMAT_SHAPES[sgmatTileFor(4096, 4, 16, 'bfloat16', ctx.limits.maxComputeWorkgroupStorageSize).shape].tm : 64);
      const w32 = { kind: 'dense' as const, w: GpuTensor.empty(ctx, 'float32', [4, 16, 32]) };
      expect(planFastGemm(ctx, {}, w32, 4096, 4, 16, 32, 'down')!.kind).toBe('f32');
      w32.w.destroy();
      expect(() => planFastGemm(ctx!, { tile: 'fast', sgmatShape: 'm96' as SgmatShapeName }, w, 4096, 4, 16, 32, 'down')).toThrow();
      // a shape without row tables (xo) takes f16 x rows even where gathered rows are asked (on adapters with the builtins)
      if (sgmatSupported(ctx, 'm128n128k32vax')) {
        expect(planFastGemm(ctx, { tile: 'fast', sgmatShape: 'm128n128k32vax', sgmatXRows: 'gather' }, w, 4096, 4, 16, 32, 'down')!.xh).toBe('staged');
        expect(planFastGemm(ctx, { tile: 'fast', sgmatShape: 'm128n128k32vax', sgmatXRows: 'direct' }, w, 4096, 4, 16, 32, 'down')!.xh).toBe('direct');
      }
    } finally {
      w.w.destroy();
    }
  });

  it('packed weights: the fast path unless a scale block boundary can fall inside 8 values (or actQuant), same row rule as 16-bit weights', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const E = 4, rows = 16;
    const made: ExpertWeightsGpu[] = [];
    const pack = (f: ExpertQuantFormat, K: number) => {
      const w = uploadExpertWeights(ctx!, quantizeExperts(new Float32Array(E * rows * K).fill(0.1), E, rows, K, f));
      made.push(w);
      return w;
    };
    try {
      // [format, K, fast format, scale blocks indexed by shifts (their sizes powers of two) and the weight uniforms then]
      const cases: [ExpertQuantFormat, number, string | undefined, boolean, number[]][] = [
        [{ kind: 'fp8_block' }, 40, 'fp8_e4m3', true, [1, 1, 7, 7]], // 128 x 128 blocks
        [{ kind: 'fp8_block', dtype: 'float8_e5m2', block: [3, 16] }, 48, 'fp8_e5m2', false, [6, 3, 3, 16]], // block rows 3
        [{ kind: 'fp8_block', block: [128, 20] }, 40, undefined, false, [1, 2, 128, 20]], // block cols 20 < K: a boundary at 20, inside values 16..23
        [{ kind: 'fp8_block', block: [128, 20] }, 16, 'fp8_e4m3', false, [1, 1, 128, 20]], // one block along K
        [{ kind: 'fp8_block', block: [16, 64] }, 64, 'fp8_e4m3', true, [1, 1, 4, 6]],
        [{ kind: 'mxfp4' }, 64, 'mxfp4', false, [2, 0, 0, 0]], // shifts by its fixed 32 already
        [{ kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, 64, 'int4', true, [2, 5, 0, 0]],
        [{ kind: 'int_block', bits: 8, blockSize: 8 }, 24, 'int8', true, [3, 3, 0, 0]],
        [{ kind: 'int_block', bits: 8, blockSize: 12 }, 48, undefined, false, [4, 12, 0, 0]],
        [{ kind: 'int_block', bits: 4, blockSize: 12 }, 8, 'int4', false, [1, 12, 0, 0]],
        [{ kind: 'int_block', bits: 8, blockSize: 32 }, 36, undefined, true, [2, 5, 0, 0]], // K % 8 != 0
      ];
      for (const [f, K, wf, shifts, wu] of cases) {
        const w = pack(f, K);
        expect(fastWeightFormat(w, K)?.wf, `${JSON.stringify(f)} K=${K}`).toBe(wf);
        expect(blockShiftUniforms(weightLayout(w, { rows, cols: K })), `${JSON.stringify(f)} K=${K}`).toEqual({ shifts, wu });
        if (wf) expect(fastWeightFormat(w, K)?.blockShifts).toBe(shifts);
        const plan = planFastGemm(ctx, { tile: 'fast' }, w, 100, E, rows, K, 'down');
        expect(plan === undefined, `${JSON.stringify(f)} K=${K}`).toBe(wf === undefined);
        if (!wf) continue;
        // Default kind and row threshold as for 16-bit weights.
        const kind = fastGemmKind(ctx, undefined, wf);
        expect(kind).toBe(sgmatSupported(ctx) ? 'subgroup-matrix' : 'f32');
        expect(planFastGemm(ctx, {}, w, fastGemmMinRowsPerExpert(kind, ctx.adapterInfo.software) * E, E, rows, K, 'down')?.kind).toBe(kind);
        expect(planFastGemm(ctx, {}, w, fastGemmMinRowsPerExpert(kind, ctx.adapterInfo.software) * E - 1, E, rows, K, 'down')).toBeUndefined();
        expect(planFastGemm(ctx, { tile: 'fast', actQuant: 'fp8_dynamic' }, w, 4096, E, rows, K, 'down')).toBeUndefined();
      }
    } finally {
      for (const w of made) destroyExpertWeights(w);
    }
  });

  it('auto-selected fast path matches the tiled path (T=300, k=2, E=4, bf16, both ops)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c: Case = { T: 300, k: 2, E: 4, H: 48, I: 45, dt: 'bfloat16', act: ACTS[0], bias: true, rowScale: false };
    const kind = fastGemmKind(ctx, undefined, c.dt);
    const e = tol(kind);
    const a = await gateUp(c, 9100, {});
    const b = await gateUp(c, 9100, { tile: 'prefill' });
    expect(relErr(b.got, b.want)).toBeLessThan(2e-5);
    expect(relErr(a.got, b.got)).toBeLessThan(e.rel);
    const d1 = await down(c, 9200, {});
    const d2 = await down(c, 9200, { tile: 'prefill' });
    expect(relErr(d1.got, d2.got)).toBeLessThan(e.rel);
    expect(maxErr(d1.got, d1.want)).toBeLessThan(e.max);
  });
});

describe('tile offsets shared by a recording\'s GEMMs of one grouping', () => {
  it('gate_up then down in one recording dispatch tile_offsets once (same row tiles); separate recordings once each; results as the references', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(9300);
    const T = 301, k = 3, E = 7, H = 40, I = 24;
    const x = randomArray(r, T * H, -1, 1);
    const wgu = HostTensor.fromFloat32([E, 2 * I, H], roundTo('bfloat16', randomArray(r, E * 2 * I * H, -0.3, 0.3)), 'bfloat16');
    const wd = HostTensor.fromFloat32([E, H, I], roundTo('bfloat16', randomArray(r, E * H * I, -0.3, 0.3)), 'bfloat16');
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const act = ACTS[0];
    const h = groupedGateUpRef(x, g, { kind: 'dense', w: wgu }, undefined, act);
    const want = groupedDownRef(h, g, { kind: 'dense', w: wd });
    const e = tol(fastGemmKind(c, undefined, 'bfloat16'));
    for (const together of [true, false]) {
      const { result: got, dispatched } = await withDispatchLog(() =>
        gpuChecked(c, async () => {
          const gx = GpuTensor.upload(c, HostTensor.fromFloat32([T, H], x));
          const gwu = GpuTensor.upload(c, wgu);
          const gwd = GpuTensor.upload(c, wd);
          const gg = uploadGrouping(c, g);
          const rec = new Recorder(c);
          const hy = groupedGateUpGpu(c, rec, gx, gg, { kind: 'dense', w: gwu }, undefined, act, { tile: 'fast' });
          let rec2 = rec;
          if (!together) {
            rec.submit();
            rec2 = new Recorder(c);
          }
          const y = groupedDownGpu(c, rec2, hy, gg, { kind: 'dense', w: gwd }, undefined, { tile: 'fast' });
          rec2.submit();
          const out = (await y.download()).data as Float32Array;
          for (const b of [gx, gwu, gwd, hy, y]) b.destroy();
          gg.destroy();
          return out;
        }),
      );
      expect(dispatched.filter((d) => d.kernel === 'grouped_gemm_tiles').length, `together=${together}`).toBe(together ? 1 : 2);
      expect(maxErr(got, want), `together=${together}`).toBeLessThan(e.max);
    }
  });
});

describe('subgroup-matrix tile shapes', () => {
  it('every named shape is valid and fits its workgroup memory budget (32 KiB, or 48 KiB where it names one); invalid shapes are reported', () => {
    for (const [name, s] of Object.entries(SGMAT_SHAPES)) {
      const l = sgmatLayout(s);
      expect(l.error, name).toBeUndefined();
      expect([32768, 49152], name).toContain(s.wgBytes ?? 32768);
      expect(l.bytes, name).toBeLessThanOrEqual(s.wgBytes ?? 32768);
      expect(s.tn % l.ow, name).toBe(0);
      expect(l.threads, name).toBe(32 * s.wm * s.wn);
    }
    // By hand: staging (64 + 128) rows x 72 halves, rows tables 12 x 64 + 16, the epilogue tile shrunk to 16 x 64 f32.
    expect(sgmatLayout(SGMAT_SHAPES.m64n128k64)).toEqual({ str: 72, ow: 64, bytes: 192 * 72 * 2 + 784 + 4096, threads: 256 });
    expect(sgmatLayout({ tm: 64, tn: 128, tk: 48, wm: 2, wn: 4 }).error).toMatch(/tk/);
    expect(sgmatLayout({ tm: 128, tn: 256, tk: 64, wm: 2, wn: 4 }).error).toMatch(/workgroup memory/);
    // 48 KiB: (128 + 256) rows x 40 halves, rows tables 12 x 128 + 16, the whole 16 x 256 f32 epilogue tile; 32 KiB would not hold it.
    expect(sgmatLayout(SGMAT_SHAPES.m128n256k32)).toEqual({ str: 40, ow: 256, bytes: 384 * 40 * 2 + 1552 + 16384, threads: 256 });
    expect(sgmatLayout({ ...SGMAT_SHAPES.m128n256k32, wgBytes: undefined }).error).toMatch(/needs 34320 bytes .*budget 32768/);
    // the epilogue in the staging memory (oa): no tile of its own; the 16 x ow f32 results fit the weight tile
    expect(sgmatLayout(SGMAT_SHAPES.m128n256k32va)).toEqual({ str: 40, ow: 256, bytes: 384 * 40 * 2 + 1552, threads: 256 });
    expect(sgmatLayout(SGMAT_SHAPES.m128n192k64va)).toEqual({ str: 72, ow: 192, bytes: 320 * 72 * 2 + 1552, threads: 256 });
    // 144-row tiles: 3 subgroups along the rows (3 fragments each); x staging + weight staging + row tables + epilogue
    expect(sgmatLayout(SGMAT_SHAPES.m144n256k32v)).toEqual({ str: 40, ow: 128, bytes: 400 * 40 * 2 + (12 * 144 + 16) + 64 * 128, threads: 384 });
    expect(sgmatLayout(SGMAT_SHAPES.m144n192k32va)).toEqual({ str: 40, ow: 192, bytes: 336 * 40 * 2 + (12 * 144 + 16), threads: 288 });
    expect(sgmatLayout(SGMAT_SHAPES.m144n128k32v)).toEqual({ str: 40, ow: 128, bytes: 272 * 40 * 2 + (12 * 144 + 16) + 64 * 128, threads: 192 });
    // the 160-row candidate: 5 subgroups along the rows, 2 along the weight rows
    expect(sgmatLayout(SGMAT_SHAPES.m160n256k32v)).toEqual({ str: 40, ow: 128, bytes: 416 * 40 * 2 + (12 * 160 + 16) + 64 * 128, threads: 320 });
    expect(sgmatLayout({ tm: 192, tn: 128, tk: 32, wm: 2, wn: 4 }).error).toMatch(/at most 160/);
    // without row tables (xo): staging and the 16-byte expert / row range only
    expect(sgmatLayout(SGMAT_SHAPES.m144n192k64vax)).toEqual({ str: 72, ow: 192, bytes: 336 * 72 * 2 + 16, threads: 288 });
    expect(sgmatLayout(SGMAT_SHAPES.m128n128k32vax)).toEqual({ str: 40, ow: 128, bytes: 256 * 40 * 2 + 16, threads: 256 });
    expect(sgmatLayout({ ...SGMAT_SHAPES.m128n256k32va, vs: undefined }).error).toMatch(/needs vector staging/);
    expect(sgmatLayout({ tm: 48, tn: 128, tk: 32, wm: 2, wn: 4 }).error).toMatch(/tm/);
    expect(sgmatLayout({ tm: 64, tn: 96, tk: 32, wm: 2, wn: 4 }).error).toMatch(/tn/);
  });
});

describe('subgroup-matrix kernel in every tile shape: emulated builtins (where the adapter lacks the shape) and real ones (where it has them)', () => {
  // The real builtins see what the emulation cannot (16-byte alignment of matrix pointers on NVIDIA, layouts).
  // Emulated: the kernel's WGSL with subgroupMatrixLoad/MultiplyAccumulate/Store replaced by per-invocation plain-WGSL
  // versions following the Dawn spec's layouts: checks the f16 staging, the row/column-major choices, the
  // subgroup -> block mapping, double buffering and the epilogue (16-row blocks, column chunks, gate/up column
  // pairs) on adapters without the feature. Every tile shape of SGMAT_SHAPES runs (below); the shapes cycle
  // through op, weight format (dense bf16 / f16, int4 with f16 scales and with zero points, fp8 blocks, MXFP4;
  // the decode itself is shared with the 'f32' / 'f16' kernels, tested above for every format), bias, rowScale,
  // activation / layout, split-K (down), f16 x rows from halfRowsKernel (xh) and sizes with partial last K slices,
  // odd N over several column tiles, rows over several row tiles and empty experts. Every third x row is beyond
  // f16's range (the staging scale) in down and silu cases.
  const fmts: (ExpertQuantFormat | Dense)[] = [
    'bfloat16',
    { kind: 'int_block', bits: 4, blockSize: 16, scaleDtype: 'float16' },
    'float16',
    { kind: 'int_block', bits: 4, blockSize: 8, scaleDtype: 'float16', zeroPoint: true },
    { kind: 'fp8_block', block: [16, 16] },
    { kind: 'mxfp4' },
  ];
  const emuCases = (Object.keys(SGMAT_SHAPES) as SgmatShapeName[]).map((shape, n) => {
    const s = SGMAT_SHAPES[shape];
    const f = fmts[n % fmts.length];
    // K: 2 or 3 slices (the double-buffered loop alternates), the last one partial (mxfp4: a multiple of its 32-wide blocks).
    const K = typeof f !== 'string' && f.kind === 'mxfp4' ? 96 : s.tk * (2 + (n % 2)) - 8 * (1 + (n % 3));
    const E = 2 + (n % 3);
    const k = 1 + (n % 2);
    return {
      shape,
      op: n % 2 === 0 ? ('gate_up' as const) : ('down' as const),
      T: Math.ceil((s.tm * 2.5 * E) / k / 3) + 3,
      k,
      E,
      K,
      N: s.tn + 5 + 2 * n,
      dt: (typeof f === 'string' ? f : 'bfloat16') as Dense,
      fmt: typeof f === 'string' ? undefined : f,
      bias: n % 3 !== 2,
      rowScale: n % 4 === 0,
      act: ACTS[n % ACTS.length],
      // down: every other one split along K (3 splits, one of them short or empty, or 2), summed by splitKReduceKernel.
      splitK: n % 4 === 1 ? (n % 8 === 1 ? 3 : 2) : 1,
      // every third: x rows converted to f16 in grouped order first (halfRowsKernel; gathered and row-scaled there for gate_up),
      // then staged, or loaded as A matrices directly (always for the xd shapes, which have no A tile).
      // (the xo shapes, which have no row tables, always take f16 x rows)
      xh: s.xd || n % 6 === 2 ? ('direct' as const) : n % 6 === 5 || s.xo ? ('staged' as const) : undefined,
    };
  });
  // the tiles plan.ts's sgmatTileFor gives 16-bit weights, as it gives them: 128 x 256 (48 KiB) and 128-row tiles over f16 x
  // rows (halfRowsKernel, staged) and 32-row tiles over gathered x, each op
  // (and their vector-staged twins: 16-byte staging stores of x as vec4 / vec2 words and of 16-bit weights), and the
  // 48 KiB tiles of session 18: 128 x 192 with 64-wide K slices, 144 x 256 (and session 19's 160 x 256 candidate); the
  // 32-row scalar tile over f16 x rows too (the pf2 band's tile where Dawn refuses vector staging, session 26)
  for (const [shape, xh] of [['m128n256k32', 'staged'], ['m128n128k32', 'staged'], ['m32n128k32', undefined], ['m32n128k32', 'staged'], ['m128n256k32v', 'staged'], ['m128n128k32v', 'staged'], ['m32n128k32v', undefined], ['m64n128k32v', undefined], ['m128n192k64va', 'staged'], ['m144n256k32v', 'staged'], ['m160n256k32v', 'staged']] as const) {
    const s = SGMAT_SHAPES[shape];
    for (const op of ['gate_up', 'down'] as const) {
      const [E, k] = [3, 2];
      emuCases.push({
        shape, op, T: Math.ceil((s.tm * 2.5 * E) / k / 3) + 3, k, E, K: s.tk * 3 - 8, N: s.tn + 13,
        dt: op === 'gate_up' ? 'bfloat16' : 'float16', fmt: undefined, bias: true, rowScale: op === 'gate_up', act: ACTS[1], splitK: 1, xh,
      });
    }
  }
  // the packed formats plan.ts gives the session-18 tiles: int4 (with zero points) on 144 x 256, MXFP4 on 128 x 192 k64,
  // each op, K over two 64-wide slices and a partial one
  for (const [shape, fmt] of [['m144n256k32v', fmts[3]], ['m128n192k64va', fmts[5]]] as const) {
    const s = SGMAT_SHAPES[shape];
    for (const op of ['gate_up', 'down'] as const) {
      const [E, k] = [3, 2];
      emuCases.push({
        shape, op, T: Math.ceil((s.tm * 2.5 * E) / k / 3) + 3, k, E, K: 160, N: s.tn + 29,
        dt: 'bfloat16', fmt: fmt as ExpertQuantFormat, bias: op === 'down', rowScale: op === 'gate_up', act: ACTS[0], splitK: 1, xh: 'staged',
      });
    }
  }
  // split-K of the down GEMM on the tiles plan.ts takes (prefill-bench's sgmat-<shape>-sk<S>-xh paths;
  // KERNEL_CROSSOVERS.sgmatSplitK splits calls of few tiles at <= 144 rows per expert): K over 7 slices, so that the
  // splits are uneven (and with 4, one short); int4 stacks (with zero points on the 144-row tile) too; the 64-row
  // tile (32 KiB) runs on lavapipe too
  for (const [shape, splitK, fmt] of [['m144n256k32v', 2, undefined], ['m144n256k32v', 3, undefined], ['m144n256k32v', 4, fmts[3]], ['m128n192k64va', 2, undefined], ['m128n192k64va', 4, undefined], ['m128n256k32v', 3, undefined], ['m64n128k32v', 2, undefined], ['m64n128k32v', 4, fmts[1]]] as const) {
    const s = SGMAT_SHAPES[shape];
    const [E, k] = [3, 2];
    emuCases.push({
      shape, op: 'down', T: Math.ceil((s.tm * 2.5 * E) / k / 3) + 3, k, E, K: fmt ? 448 : s.tk * 7 - 8, N: s.tn + 21,
      // the 64-row tile as the planner runs it at 17-63 rows per expert: over gathered x rows
      dt: 'bfloat16', fmt: fmt as ExpertQuantFormat | undefined, bias: true, rowScale: false, act: ACTS[0], splitK, xh: shape === 'm64n128k32v' ? undefined : 'staged',
    });
  }
  // session 25's candidates: 128-wide K slices, and two slices in flight in registers (pf2, whose loop takes slices two
  // at a time: K of 1, 2 and 3 slices, the last one partial, so that the step's second slice is absent, present, and
  // partial), each x-row mode, 16-bit and packed weights, split K; the 32 x 128 pf2 tile is the planner's for few rows per
  // expert since session 26. The 64-wide tiles run emulated on lavapipe (the
  // larger ones, 48 KiB, only on adapters with them; the emulation is slow: tn + 5 outputs)
  for (const [n, [op, dt, fmt, xh, splitK]] of ([
    ['gate_up', 'bfloat16', undefined, undefined, 1],
    ['gate_up', 'bfloat16', fmts[4], 'staged', 1],
    ['down', 'float16', undefined, 'direct', 1],
    ['down', 'bfloat16', fmts[5], 'staged', 3],
  ] as const).entries()) {
    for (const shape of ['m32n64k128va', 'm32n64k64vap2', 'm32n128k64vap2', 'm32n128k128va', 'm64n128k128vaxd', 'm128n128k128vaxd', 'm128n192k64vap2'] as const) {
      const s = SGMAT_SHAPES[shape];
      const [E, k] = [3, 2];
      const slices = s.pf2 ? 1 + (n % 3) : 3;
      emuCases.push({
        shape, op, T: Math.ceil((s.tm * 2.5 * E) / k / 3) + 3, k, E, K: fmt === fmts[5] ? 32 * Math.ceil((s.tk * slices - 24) / 32) : s.tk * slices - 24, N: s.tn + 5,
        dt, fmt: fmt as ExpertQuantFormat | undefined, bias: op === 'gate_up', rowScale: op === 'gate_up', act: ACTS[2 % ACTS.length], splitK, xh: s.xd ? 'direct' : xh,
      });
    }
  }
  for (const emulate of [true, false]) for (const c of emuCases) {
    it(`${emulate ? 'emulated' : 'builtins'}: ${c.shape}${c.splitK > 1 ? ` splitK=${c.splitK}` : ''}${c.xh ? ` xh=${c.xh}` : ''} ${c.op} T=${c.T} k=${c.k} E=${c.E} K=${c.K} N=${c.N} ${c.fmt ? fmtName(c.fmt) : c.dt} bias=${c.bias} rowScale=${c.rowScale}${c.op === 'gate_up' ? ` ${c.act.kind}/${c.act.layout}` : ''}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
      // where the adapter runs this shape's real builtins (below), they check it: the emulation keeps whole matrices
      // in private memory, which NVIDIA's driver refuses for the larger shapes (CreatePipeline: local memory)
      if (emulate && sgmatSupported(ctx, c.shape)) return t.skip(`the real builtins run ${c.shape} on this adapter`);
      const wgNeed = sgmatLayout(SGMAT_SHAPES[c.shape]).bytes;
      const wgHas = ctx.limits.maxComputeWorkgroupStorageSize ?? 0;
      if (wgNeed > wgHas) return t.skip(`${c.shape} needs ${wgNeed} bytes of workgroup memory, the adapter offers ${wgHas}`);
      if (!emulate) {
        canRun(t, 'subgroup-matrix');
        expect(sgmatSupported(ctx, c.shape), `shape ${c.shape} on this adapter`).toBe(true);
      }
      const { op, T, k, E, K, N, act } = c;
      const r = rng(424242 + K * 31 + N);
      const wRows = op === 'gate_up' ? 2 * N : N;
      const xRows = op === 'gate_up' ? T : T * k;
      // Every third row beyond f16's range (the staging scale), except before the clamped activations: there an output
      // whose gate sum lies within f16 rounding of 0 in a 1e5-row flips between ~0 and ~limit (the dedicated test above has them).
      const x = bigRows(randomArray(r, xRows * K, -1, 1), K, op === 'down' || act.kind === 'silu' ? 1e5 : undefined);
      const w = weights(r, c, wRows, K);
      const b = c.bias ? HostTensor.fromFloat32([E, wRows], randomArray(r, E * wRows, -0.5, 0.5), 'float32') : undefined;
      const rs = c.rowScale ? randomArray(r, T * k, 0.1, 1.5) : undefined;
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const want = op === 'gate_up' ? groupedGateUpRef(x, g, w, b, act, rs) : groupedDownRef(x, g, w, b);
      if (w.kind === 'dense') {
        const naive = op === 'gate_up' ? naiveGateUp(x, g, w.w.toFloat32(), b?.toFloat32(), act, rs, K, N) : naiveDown(x, g, w.w.toFloat32(), b?.toFloat32(), N, K);
        expect(relErr(want, naive), 'reference vs naive').toBeLessThan(1e-6);
      }
      const got = await runSgmatCase(ctx, c, emulate, { x, w, b, rs, g });
      expectWithinTol(got, want, 'subgroup-matrix', 'finite (rows up to 1e5)');
    }, 600_000);
  }

  // The banded work order (FastGemmPlan.band): the same tiles in another order, so bit for bit the same output as the
  // row-tile order. Skewed routing (several row tiles per expert, counts that the band does not divide, the last
  // expert empty), several column tiles, a split-K down.
  const bandCases = [
    { shape: 'm32n128k32v' as const, op: 'gate_up' as const, T: 150, k: 2, E: 4, K: 72, N: 141, splitK: 1, band: 3 },
    { shape: 'm64n128k32' as const, op: 'down' as const, T: 200, k: 2, E: 5, K: 88, N: 269, splitK: 2, band: 2 },
    { shape: 'm32n128k32v' as const, op: 'down' as const, T: 90, k: 2, E: 3, K: 56, N: 133, splitK: 1, band: 8 },
  ];
  for (const bc of bandCases) {
    it(`banded work order (band ${bc.band}): ${bc.shape} ${bc.op} T=${bc.T} E=${bc.E} N=${bc.N}${bc.splitK > 1 ? ` splitK=${bc.splitK}` : ''}: the same bits as the row-tile order, within tolerance of the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
      const emulate = !sgmatSupported(ctx, bc.shape);
      const { op, T, k, E, K, N } = bc;
      const act = ACTS[1];
      const r = rng(9090 + N);
      const wRows = op === 'gate_up' ? 2 * N : N;
      const x = randomArray(r, (op === 'gate_up' ? T : T * k) * K, -1, 1);
      const w = weights(r, { E, dt: 'bfloat16', fmt: { kind: 'int_block', bits: 4, blockSize: 8, scaleDtype: 'float16' } }, wRows, K);
      const b = HostTensor.fromFloat32([E, wRows], randomArray(r, E * wRows, -0.5, 0.5), 'float32');
      // expert 0 most often, expert E - 1 never: k distinct experts of 0..E-2 per token
      const idx = new Uint32Array(T * k);
      for (let tk = 0; tk < T; tk++) {
        const e1 = Math.floor(r() * r() * (E - 1));
        idx[tk * k] = e1;
        idx[tk * k + 1] = (e1 + 1 + Math.floor(r() * (E - 2))) % (E - 1);
      }
      const g = hostGrouping(idx, T, k, E);
      expect(g.counts[E - 1], 'the last expert is empty').toBe(0);
      const want = op === 'gate_up' ? groupedGateUpRef(x, g, w, b, act) : groupedDownRef(x, g, w, b);
      const inp = { x, w, b, rs: undefined, g };
      const cs = { ...bc, act };
      const rowOrder = await runSgmatCase(ctx, cs, emulate, inp);
      const banded = await runSgmatCase(ctx, cs, emulate, inp, { band: bc.band });
      const first = firstBitDiff(rowOrder, banded);
      expect(first, first < 0 ? '' : `output ${first}: banded ${banded[first]} vs row order ${rowOrder[first]}`).toBe(-1);
      const e = tol('subgroup-matrix');
      expect(relErr(banded, want)).toBeLessThan(e.rel);
    }, 600_000);
  }

  /**
   * A case of experts on exactly `counts` rows each (k = 1, the tokens shuffled; K and N a little past the tile's K
   * slice and outputs), bf16 weights and an f32 bias, and the reference output.
   */
  function unevenCase(shape: SgmatShapeName, op: 'gate_up' | 'down', counts: number[], seed: number) {
    const { tn, tk } = SGMAT_SHAPES[shape];
    const [E, k, K, N] = [counts.length, 1, tk + 8, tn / 2 + 9];
    const T = counts.reduce((a, b) => a + b, 0);
    const act = ACTS[2];
    const r = rng(seed + N);
    const wRows = op === 'gate_up' ? 2 * N : N;
    const x = randomArray(r, T * K, -1, 1);
    const w = weights(r, { E, dt: 'bfloat16', fmt: undefined }, wRows, K);
    const b = HostTensor.fromFloat32([E, wRows], randomArray(r, E * wRows, -0.5, 0.5), 'float32');
    // expert e on counts[e] tokens, the tokens in a shuffled order
    const idx = Uint32Array.from(counts.flatMap((n, e) => Array<number>(n).fill(e)));
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    const g = hostGrouping(idx, T, k, E);
    expect(Array.from(g.counts)).toEqual(counts);
    const want = op === 'gate_up' ? groupedGateUpRef(x, g, w, b, act) : groupedDownRef(x, g, w, b);
    return { inp: { x, w, b, rs: undefined, g }, want, dims: { T, k, E, K, N, act } };
  }
  /** Why the adapter cannot run `shapes` (no shader-f16 / subgroups, or too little workgroup memory), else undefined. */
  function unevenSkip(c: GpuContext, shapes: SgmatShapeName[]): string | undefined {
    if (!c.features.shaderF16 || !c.features.subgroups) return 'no shader-f16 / subgroups on this adapter';
    const wgHas = c.limits.maxComputeWorkgroupStorageSize ?? 0;
    const big = shapes.find((s) => sgmatLayout(SGMAT_SHAPES[s]).bytes > wgHas);
    return big ? `${big} needs more workgroup memory than the adapter's ${wgHas} bytes` : undefined;
  }

  // Row skipping (FastGemmPlan.rowSkip): 16-row fragments past a tile's last row skip their multiplies (a subgroup
  // with none left its B loads too); those rows are never stored, so the output is bit for bit the plain kernel's.
  // Experts whose rows end 1, 15, 16 and 17 rows into a row tile, a full tile, one of 1 row and an empty one; shapes
  // with 4 and 2 fragments per subgroup and 2 and 4 subgroups along M; x staged, direct and gathered; a split-K down.
  const skipCases = [
    { shape: 'm128n256k32v' as const, op: 'gate_up' as const, xh: 'staged' as const, splitK: 1 },
    { shape: 'm128n256k32xd' as const, op: 'down' as const, xh: 'direct' as const, splitK: 1 },
    { shape: 'm64n128k32' as const, op: 'down' as const, xh: undefined, splitK: 2 },
    { shape: 'm128n128k32w4x2' as const, op: 'gate_up' as const, xh: undefined, splitK: 1 },
  ];
  for (const sc of skipCases) {
    const { tm } = SGMAT_SHAPES[sc.shape];
    const counts = [tm + 1, tm + 15, 2 * tm - 16, 1, 0, tm + 17, tm];
    it(`row skipping: ${sc.shape} ${sc.op}${sc.xh ? ` xh=${sc.xh}` : ''}${sc.splitK > 1 ? ` splitK=${sc.splitK}` : ''}, rows per expert ${counts.join(' ')}: the same bits as without, within tolerance of the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const why = unevenSkip(ctx, [sc.shape]);
      if (why) return t.skip(why);
      const emulate = !sgmatSupported(ctx, sc.shape);
      const { inp, want, dims } = unevenCase(sc.shape, sc.op, counts, 7070 + tm);
      const cs = { ...sc, ...dims };
      const plain = await runSgmatCase(ctx, cs, emulate, inp);
      const { result: skipping, dispatched } = await withDispatchLog(() => runSgmatCase(ctx!, cs, emulate, inp, { rowSkip: true }));
      const v = dispatched.find((d) => d.kernel === 'grouped_gemm_sgmat')?.variant as FastGemmVariant;
      expect(v.rowSkip, 'the dispatched variant skips rows').toBe(true);
      expect(groupedGemmSgmatKernel.source(v, ctx), 'its WGSL guards the fragments past the first').toContain('if (live1)');
      const first = firstBitDiff(plain, skipping);
      expect(first, first < 0 ? '' : `output ${first}: skipping ${skipping[first]} vs plain ${plain[first]}`).toBe(-1);
      expect(relErr(skipping, want)).toBeLessThan(tol('subgroup-matrix').rel);
    }, 600_000);
  }

  // The tail dispatch (FastGemmPlan.tail): rows past an expert's last full row tile, where they fit the smaller tail
  // tile, run on it (a second dispatch whose row ranges end at each expert's end row); the main dispatch skips them.
  // Experts whose rows end 1, exactly the tail's rows, one past them (the main tile's partial tile then), 16 short of
  // a tile, a lone row, none, a tail alone, a full tile and two plus 3 rows; gathered, staged and direct x; a split-K
  // down (the tail split as the main dispatch, into its partials, before the sums).
  const tailCases = [
    { shape: 'm128n128k32v' as const, tail: 'm32n128k32v' as const, op: 'gate_up' as const, xh: 'staged' as const, splitK: 1 },
    { shape: 'm64n128k32' as const, tail: 'm16n128k32' as const, op: 'down' as const, xh: undefined, splitK: 2 },
    // three K slices, the tail's 64-wide K steps against the main tile's 32: each row's partials still cover K once
    { shape: 'm64n128k32' as const, tail: 'm16n128k64' as const, op: 'down' as const, xh: undefined, splitK: 3 },
    { shape: 'm128n128k64xd' as const, tail: 'm16n128k64xd' as const, op: 'down' as const, xh: 'direct' as const, splitK: 1 },
    { shape: 'm128n128k32w4x2' as const, tail: 'm32n128k32' as const, op: 'gate_up' as const, xh: undefined, splitK: 1 },
    // the planner's tail (KERNEL_CROSSOVERS.sgmatTail) on the tile and split it gives Mixtral's down GEMM at T = 512,
    // and under a 64-row tile (adapters of 32 KiB of workgroup memory reach that one)
    { shape: 'm144n256k32v' as const, tail: 'm32n128k64vap2' as const, op: 'down' as const, xh: 'staged' as const, splitK: 2 },
    { shape: 'm64n128k32v' as const, tail: 'm32n128k64vap2' as const, op: 'down' as const, xh: 'staged' as const, splitK: 2 },
  ];
  for (const tc of tailCases) {
    const { tm } = SGMAT_SHAPES[tc.shape];
    const tt = SGMAT_SHAPES[tc.tail].tm;
    const counts = [tm + 1, tm + tt, tm + tt + 1, 2 * tm - 16, 1, 0, tt, tm, 2 * tm + 3];
    it(`tail dispatch: ${tc.shape} with ${tc.tail} ${tc.op}${tc.xh ? ` xh=${tc.xh}` : ''}${tc.splitK > 1 ? ` splitK=${tc.splitK}` : ''}, rows per expert ${counts.join(' ')}: within tolerance of the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const why = unevenSkip(ctx, [tc.shape, tc.tail]);
      if (why) return t.skip(why);
      const emulate = !sgmatSupported(ctx, tc.shape) || !sgmatSupported(ctx, tc.tail);
      const { inp, want, dims } = unevenCase(tc.shape, tc.op, counts, 8080 + tm + tt);
      const cs = { shape: tc.shape, op: tc.op, xh: tc.xh, splitK: tc.splitK, ...dims };
      const tail = sgmatTailPlan(ctx, tc.tail, tc.op, dims.N, dims.E);
      const { result: got, dispatched } = await withDispatchLog(() => runSgmatCase(ctx!, cs, emulate, inp, { tail }));
      const gemms = dispatched.filter((d) => d.kernel === 'grouped_gemm_sgmat').map((d) => d.variant as FastGemmVariant);
      expect(gemms.map((v) => [v.sg ?? SGMAT_DEFAULT_SHAPE, !!v.ends, v.splitK ?? 1]), 'the main dispatch, then the tail on its shape with end rows, both split alike').toEqual([[tc.shape, false, tc.splitK], [tc.tail, true, tc.splitK]]);
      const kernels = dispatched.map((d) => d.kernel);
      if (tc.splitK > 1) expect(kernels.indexOf('grouped_gemm_splitk_reduce'), 'the sums after the tail').toBeGreaterThan(kernels.lastIndexOf('grouped_gemm_sgmat'));
      expect(relErr(got, want)).toBeLessThan(tol('subgroup-matrix').rel);
    }, 600_000);
  }
});

