/**
 * The dequantize-then-GEMM prefill path (grouped-gemm-dequant.ts, FastGemmPlan.dequant): packed experts decoded to an
 * f16 stack a range at a time, then the subgroup-matrix GEMM on f16 weights.
 * - recordDequantHalf against the host: every packed format (fp8 e4m3 / e5m2 blocks, int4 / int8 blocks with f16 or
 *   f32 scales, with and without zero points, MXFP4) and bfloat16, 16-byte and 8-value code loads, a range of experts that starts
 *   inside the stack; each value f32ToF16 of the reference's code x scale (quant-helpers' independent decoders).
 * - The grouped GEMMs with `sgmatDequant: true` (several ranges: a scratch budget of fewer experts than the stack,
 *   expert biases, a chunked stack) against the staging decode of the same call (`sgmatDequant: false`): the same f16
 *   tiles, so the same sums (relative error < 1e-6), and both within the staged tolerance of the reference.
 * The subgroup-matrix kernel runs its real builtins where the adapter has them, else the emulated ones (lavapipe).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, f32ToF16 } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  destroyExpertWeights,
  groupedDownGpu,
  groupedDownRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  quantizeExperts,
  uploadExpertStack,
  uploadExpertWeights,
  type ExpertActivation,
  type ExpertQuantFormat,
  type ExpertWeightsGpu,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { gpuChecked, randomArray, relErr, rng, stagedTol, testGpu, withDispatchLog, withEmulatedSubgroupMatrix, withMaxBindingBytes } from '@webmoe/kernels-wgsl/testing';
import { recordDequantHalf } from '../src/kernels/grouped-gemm-dequant.js';
import { fastWeightFormat, planFastGemm } from '../src/kernels/grouped-gemm-fast.js';
import { sgmatDequantExperts, sgmatDequantUnasked } from '../src/kernels/plan.js';
import { hostGrouping, randomIdx, uploadGrouping } from './grouped-helpers.js';
import { elementOf, randomZeros } from './quant-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** The formats, each with a K that allows 16-byte code loads (wide) and one that does not. */
const FORMATS: { name: string; fmt: ExpertQuantFormat; K: number }[] = [
  { name: 'fp8 e4m3 blocks 16x32', fmt: { kind: 'fp8_block', block: [16, 32] }, K: 96 },
  { name: 'fp8 e4m3 blocks 16x8 (8-value loads)', fmt: { kind: 'fp8_block', block: [16, 8] }, K: 40 },
  { name: 'fp8 e5m2 blocks 8x16', fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [8, 16] }, K: 48 },
  { name: 'int4 blocks of 32, f16 scales', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, K: 96 },
  { name: 'int4 blocks of 8, zero points (8-value loads)', fmt: { kind: 'int_block', bits: 4, blockSize: 8, zeroPoint: true }, K: 56 },
  { name: 'int8 blocks of 16, zero points, f16 scales', fmt: { kind: 'int_block', bits: 8, blockSize: 16, zeroPoint: true, scaleDtype: 'float16' }, K: 64 },
  { name: 'int8 blocks of 8 (8-value loads)', fmt: { kind: 'int_block', bits: 8, blockSize: 8 }, K: 24 },
  { name: 'mxfp4', fmt: { kind: 'mxfp4' }, K: 64 },
  { name: 'bfloat16 (8-value loads)', fmt: { kind: 'dense', dtype: 'bfloat16' }, K: 40 },
];

describe('recordDequantHalf: packed experts to f16', () => {
  for (const f of FORMATS) {
    it(`${f.name}: experts 1..3 of 4, 13 rows, K = ${f.K}: every value f32ToF16 of the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16) return t.skip('the adapter lacks shader-f16');
      const c = ctx;
      const r = rng(f.K * 7 + f.name.length);
      const [E, rows, K, e0, n] = [4, 13, f.K, 1, 3];
      const host = randomZeros(r, quantizeExperts(randomArray(r, E * rows * K, -0.5, 0.5), E, rows, K, f.fmt));
      const w = uploadExpertWeights(c, host);
      const wide = fastWeightFormat(w, K)!.wide;
      expect(wide, 'the case reaches the load width its name says').toBe(!f.name.includes('8-value'));
      const got = await gpuChecked(c, async () => {
        const out = GpuTensor.empty(c, 'float16', [n, rows, K]);
        const rec = new Recorder(c);
        recordDequantHalf(rec, w, e0, n, out.buffer, wide);
        rec.submit();
        return new Uint16Array(((await out.download()).data as Uint16Array).slice());
      });
      destroyExpertWeights(w);
      let bad = 0;
      let first = '';
      for (let e = 0; e < n; e++)
        for (let row = 0; row < rows; row++)
          for (let col = 0; col < K; col++) {
            const want = f32ToF16(Math.fround(elementOf(host, e0 + e, row, col)));
            const i = (e * rows + row) * K + col;
            if (got[i] !== want) {
              if (!bad++) first = `expert ${e0 + e} row ${row} col ${col}: got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`;
            }
          }
      expect(bad, first).toBe(0);
    });
  }

  it('a range outside the stack, or an output too small, is refused before anything is recorded', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const host = quantizeExperts(new Float32Array(2 * 8 * 32), 2, 8, 32, { kind: 'int_block', bits: 8, blockSize: 32 });
    const w = uploadExpertWeights(c, host);
    const out = GpuTensor.empty(c, 'float16', [2, 8, 32]);
    const small = GpuTensor.empty(c, 'float16', [1, 8, 32]);
    const dense = uploadExpertWeights(c, { kind: 'dense', w: HostTensor.fromFloat32([2, 8, 32], new Float32Array(512)) });
    const { dispatched } = await withDispatchLog(async () => {
      const rec = new Recorder(c);
      expect(() => recordDequantHalf(rec, w, 1, 2, out.buffer, true)).toThrow(/a range inside \[0, 2\)/);
      expect(() => recordDequantHalf(rec, w, 0, 2, small.buffer, true)).toThrow(/at least 1024 bytes/);
      expect(() => recordDequantHalf(rec, dense, 0, 1, out.buffer, false)).toThrow(/a packed format .* or bfloat16/);
      rec.submit();
    });
    expect(dispatched).toEqual([]);
    for (const x of [out, small]) x.destroy();
    destroyExpertWeights(w);
    destroyExpertWeights(dense);
  });
});

describe('sgmatDequantExperts (plan.ts)', () => {
  it('ranges as many f16 experts as the budget holds; none past it, below the crossover unless asked, or when refused', () => {
    const mib = 1 << 20;
    // Mixtral's gate_up in f16: 235 MB an expert, 512 MiB of scratch: 2 per range
    expect(sgmatDequantExperts(8192, 8, 28672 * 4096 * 2, 2 ** 31, 'int4', true)).toBe(2);
    expect(sgmatDequantExperts(8192, 8, 4 * mib, 2 ** 31, 'int4', true)).toBe(8);
    expect(sgmatDequantExperts(8192, 8, 4 * mib, 6 * mib, 'int4', true)).toBe(1);
    expect(sgmatDequantExperts(8192, 8, 7 * mib, 6 * mib, 'int4', true)).toBe(0);
    expect(sgmatDequantExperts(8192, 8, 4 * mib, 2 ** 31, 'int4', false)).toBe(0);
    // unasked: packed weights from 512 rows per expert on average (the H200's crossover), bf16 never
    expect(sgmatDequantExperts(8192, 8, 28672 * 4096 * 2, 2 ** 31, 'int4')).toBe(2); // Mixtral T = 4096: 1024
    expect(sgmatDequantExperts(16384, 32, 5760 * 2880 * 2, 2 ** 31, 'int4')).toBe(16); // GPT-OSS-20B T = 4096: 512
    expect(sgmatDequantExperts(16383, 32, 5760 * 2880 * 2, 2 ** 31, 'int4')).toBe(0);
    expect(sgmatDequantExperts(1024, 8, 28672 * 4096 * 2, 2 ** 31, 'int4')).toBe(0); // Mixtral T = 512: 128
    expect(sgmatDequantExperts(8192, 8, 28672 * 4096 * 2, 2 ** 31, 'bfloat16')).toBe(0);
    expect(sgmatDequantExperts(8192, 8, 28672 * 4096 * 2, 2 ** 31, 'bfloat16', true)).toBe(2);
    expect(['fp8_e4m3', 'fp8_e5m2', 'int4', 'int8', 'mxfp4', 'bfloat16', 'float16', 'float32'].map(sgmatDequantUnasked)).toEqual([true, true, true, true, true, false, false, false]);
  });
});

describe('planFastGemm: the decoding pass where plan.ts takes it', () => {
  it('packed weights on the subgroup-matrix kernel from 512 rows per expert (not 511), never bf16 unasked; the f16 tile of the call inside', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('the adapter lacks shader-f16 or subgroups');
    const c = ctx.features.subgroupMatrix ? ctx : withEmulatedSubgroupMatrix(ctx);
    const [E, N, K] = [2, 64, 64];
    const packed = uploadExpertWeights(c, quantizeExperts(new Float32Array(E * N * K), E, N, K, { kind: 'int_block', bits: 4, blockSize: 32 }));
    const bf16 = uploadExpertWeights(c, quantizeExperts(new Float32Array(E * N * K), E, N, K, { kind: 'dense', dtype: 'bfloat16' }));
    const plan = (w: ExpertWeightsGpu, rows: number, sgmatDequant?: boolean) => planFastGemm(c, { tile: 'fast', sgmatDequant }, w, rows, E, N, K, 'down');
    const at = plan(packed, 512 * E)!;
    expect(at.kind).toBe('subgroup-matrix');
    expect(at.dequant?.experts).toBe(E);
    expect(at.dequant?.gemm.kind).toBe('subgroup-matrix');
    expect(at.dequant?.gemm.dequant).toBeUndefined();
    expect(plan(packed, 512 * E - 1)!.dequant).toBeUndefined();
    expect(plan(packed, 512 * E, false)!.dequant).toBeUndefined();
    expect(plan(packed, 8 * E, true)!.dequant?.experts).toBe(E);
    expect(plan(bf16, 512 * E)!.dequant).toBeUndefined();
    expect(plan(bf16, 512 * E, true)!.dequant?.experts).toBe(E);
    destroyExpertWeights(packed);
    destroyExpertWeights(bf16);
  });
});

/** A GEMM case: shapes, format, gate_up or down, bias, the scratch budget in experts (via a small binding limit). */
interface DequantCase {
  op: 'gate_up' | 'down';
  fmt: ExpertQuantFormat;
  T: number;
  k: number;
  E: number;
  K: number;
  N: number;
  bias: boolean;
  /** Bytes of the context's binding limit (the decoding scratch is at most one binding: fewer experts per range). */
  maxBinding?: number;
}

const CASES: DequantCase[] = [
  { op: 'gate_up', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 37, k: 2, E: 5, K: 64, N: 40, bias: false },
  { op: 'down', fmt: { kind: 'fp8_block', block: [16, 32] }, T: 29, k: 3, E: 6, K: 96, N: 72, bias: true, maxBinding: 40000 },
  { op: 'gate_up', fmt: { kind: 'mxfp4' }, T: 41, k: 2, E: 4, K: 64, N: 24, bias: true, maxBinding: 12288 },
  { op: 'down', fmt: { kind: 'int_block', bits: 8, blockSize: 16, zeroPoint: true }, T: 23, k: 1, E: 3, K: 48, N: 56, bias: false },
  { op: 'gate_up', fmt: { kind: 'dense', dtype: 'bfloat16' }, T: 19, k: 2, E: 3, K: 40, N: 32, bias: true, maxBinding: 2 * 64 * 40 * 2 },
];

describe('grouped GEMMs with sgmatDequant (packed experts decoded to f16 first)', () => {
  for (const cs of CASES) {
    const name = `${cs.op} ${cs.fmt.kind}${'bits' in cs.fmt ? cs.fmt.bits : 'dtype' in cs.fmt ? ` ${cs.fmt.dtype}` : ''} T=${cs.T} k=${cs.k} E=${cs.E} K=${cs.K} N=${cs.N} bias=${cs.bias}${cs.maxBinding ? ` binding ${cs.maxBinding} B` : ''}`;
    it(`${name}: the same outputs as the staging decode, within the staged tolerance of the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('the adapter lacks shader-f16 or subgroups');
      // (the binding limit first: the emulation marks its own view)
      const small = cs.maxBinding ? withMaxBindingBytes(ctx, cs.maxBinding) : ctx;
      const c = ctx.features.subgroupMatrix ? small : withEmulatedSubgroupMatrix(small);
      const r = rng(cs.T * 131 + cs.K);
      const rows = cs.op === 'gate_up' ? 2 * cs.N : cs.N;
      const host = randomZeros(r, quantizeExperts(randomArray(r, cs.E * rows * cs.K, -0.4, 0.4), cs.E, rows, cs.K, cs.fmt));
      const biasHost = cs.bias ? HostTensor.fromFloat32([cs.E, rows], randomArray(r, cs.E * rows, -0.2, 0.2)) : undefined;
      const x = randomArray(r, cs.T * (cs.op === 'gate_up' ? 1 : cs.k) * cs.K, -2, 2);
      const g = hostGrouping(randomIdx(r, cs.T, cs.k, cs.E), cs.T, cs.k, cs.E);
      const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
      const want = cs.op === 'gate_up' ? groupedGateUpRef(x, g, host, biasHost, act) : groupedDownRef(x, g, host, biasHost);
      const up = uploadExpertStack(c, host, { layout: cs.op === 'gate_up' ? 'concat' : 'rows', bias: biasHost });
      const run = async (sgmatDequant: boolean) =>
        gpuChecked(c, () =>
          withDispatchLog(async () => {
            const rec = new Recorder(c);
            const xs = GpuTensor.upload(c, HostTensor.fromFloat32(cs.op === 'gate_up' ? [cs.T, cs.K] : [cs.T * cs.k, cs.K], x));
            const opts = { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatDequant };
            const gg = uploadGrouping(c, g);
            const y = cs.op === 'gate_up' ? groupedGateUpGpu(c, rec, xs, gg, up.weights, up.bias, act, opts) : groupedDownGpu(c, rec, xs, gg, up.weights, up.bias, opts);
            rec.submit();
            return (await y.download()).data as Float32Array;
          }),
        );
      const dq = await run(true);
      const staged = await run(false);
      const kernels = dq.dispatched.map((d) => d.kernel);
      expect(kernels).toContain('dequant_f16');
      expect(staged.dispatched.map((d) => d.kernel)).not.toContain('dequant_f16');
      if (cs.maxBinding) expect(kernels.filter((k) => k === 'dequant_f16').length, 'several ranges').toBeGreaterThan(1);
      expect(relErr(dq.result, staged.result)).toBeLessThan(1e-6);
      expect(relErr(dq.result, want)).toBeLessThan(stagedTol(dq.dispatched, 1e-5));
      destroyExpertWeights(up.weights as ExpertWeightsGpu);
      up.bias?.destroy();
    });
  }
});
