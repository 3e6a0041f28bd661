/**
 * Wide staging loads of packed weights in the subgroup-matrix GEMM (FastGemmVariant.wide: 16 bytes of codes per
 * load, decoded with bit arithmetic) against the 8-values-per-load staging, and the word-at-a-time decode of both
 * (packedHalfPairsWgsl) against the per-value one (FastGemmVariant.vdec): all must give bit-identical outputs
 * (the same f16 tiles), and match the reference. The fp8 bit decoders (FP8_DECODE_BITS_WGSL) are checked on
 * all 256 codes against FP8_DECODE_WGSL's and against the host decoders of @webmoe/tensor.
 *
 * The subgroup-matrix kernel runs its real builtins where the adapter has the shape, else the emulated builtins
 * (lavapipe), as in grouped-gemm-fast.gpu.test.ts.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, e4m3ToF32, e5m2ToF32 } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  defineKernel,
  destroyExpertWeights,
  groupedDownRef,
  groupedGateUpRef,
  quantizeExperts,
  uploadExpertWeights,
  type ExpertQuantFormat,
  type ExpertWeightsHost,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { fastWeightFormat, sgmatSupported } from '../src/kernels/grouped-gemm-fast.js';
import { SGMAT_SHAPES, sgmatLayout } from '../src/kernels/grouped-gemm-fast-shapes.js';
import { FP8_DECODE_BITS_WGSL } from '../src/wgsl.js';
import { firstBitDiff, hostGrouping, randomIdx, runSgmatCase, type SgmatCase } from './grouped-helpers.js';
import { randomZeros } from './quant-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const fp8Codes = defineKernel<{ n: number }>(
  'test_fp8_codes',
  () => /* wgsl */ `
${FP8_DECODE_BITS_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let b = g.x;
  if (b >= 256u) { return; }
  OUT[4u * b] = bitcast<u32>(decode_e4m3(b));
  OUT[4u * b + 1u] = bitcast<u32>(decode_e4m3_bits(b));
  OUT[4u * b + 2u] = bitcast<u32>(decode_e5m2(b));
  OUT[4u * b + 3u] = bitcast<u32>(decode_e5m2_bits(b));
}
`,
  { signature: () => ({ bindings: [{ name: 'OUT', type: 'array<u32>', access: 'read_write' }] }) },
);

describe('fp8 bit-arithmetic decoders', () => {
  it('give the same f32 as decode_e4m3 / decode_e5m2 and the host decoders on all 256 codes (NaN where they give NaN)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const bits = await gpuChecked(c, async () => {
      const out = GpuTensor.empty(c, 'uint32', [256 * 4]);
      const rec = new Recorder(c);
      rec.dispatch({ kernel: fp8Codes, variant: { n: 256 }, bind: { OUT: out.buffer }, workgroups: [4] });
      rec.submit();
      const d = (await out.download()).data as Uint32Array;
      out.destroy();
      return d;
    });
    const f = new Float32Array(bits.buffer, bits.byteOffset, bits.length);
    for (let b = 0; b < 256; b++) {
      for (const [i, host] of [[0, e4m3ToF32(b)], [2, e5m2ToF32(b)]] as const) {
        const branchy = f[4 * b + i];
        const arith = f[4 * b + i + 1];
        const what = `${i === 0 ? 'e4m3' : 'e5m2'} code 0x${b.toString(16)}`;
        if (Number.isNaN(host)) {
          expect(Number.isNaN(arith), `${what}: NaN`).toBe(true);
          expect(Number.isNaN(branchy), `${what}: NaN (branchy)`).toBe(true);
          continue;
        }
        // same bits (signed zeros included) as the branchy decoder, same value as the host's
        expect(bits[4 * b + i + 1], what).toBe(bits[4 * b + i]);
        expect(arith, what).toBe(host);
      }
    }
  });
});

/** A case: the GEMM call (SgmatCase, without split-K: 1) with its packed format, bias and row scale. */
interface WideCase extends Omit<SgmatCase, 'splitK' | 'xh'> {
  fmt: ExpertQuantFormat;
  /** fp8: random raw codes over the whole range (subnormals and both signs; no NaN) instead of quantized values. */
  rawFp8?: boolean;
  bias: boolean;
  rowScale: boolean;
  /** x rows converted to f16 in grouped order first and staged (plan.ts's 128-row tiles); absent: gathered (or direct for xd shapes). */
  xh?: 'staged';
}

// One case per packed format, K a multiple of the wide load's values (16 8-bit / 32 4-bit codes) with partial last K
// slices, odd N over several column tiles, empty experts; the tile shapes alternate between the default and an M = 16 one.
const CASES: WideCase[] = [
  { fmt: { kind: 'fp8_block', block: [16, 32] }, rawFp8: true, shape: 'm64n128k32', op: 'gate_up', T: 45, k: 2, E: 5, K: 96, N: 75, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: true },
  { fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [7, 48] }, rawFp8: true, shape: 'm16n256k32', op: 'down', T: 37, k: 3, E: 4, K: 144, N: 261, act: { kind: 'silu', layout: 'concat' }, bias: false, rowScale: false },
  { fmt: { kind: 'fp8_block', block: [16, 16] }, shape: 'm16n256k32w4', op: 'gate_up', T: 29, k: 2, E: 3, K: 80, N: 133, act: { kind: 'swigluoai', limit: 1.1, alpha: 1.702, layout: 'interleaved' }, bias: true, rowScale: false },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, shape: 'm16n128k64xd', op: 'down', T: 51, k: 2, E: 5, K: 160, N: 143, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 64, scaleDtype: 'float16', zeroPoint: true }, shape: 'm64n128k32', op: 'gate_up', T: 40, k: 2, E: 4, K: 192, N: 69, act: { kind: 'swiglu_limit', limit: 0.9, layout: 'concat' }, bias: false, rowScale: true },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 224 }, shape: 'm16n256k32xd', op: 'down', T: 33, k: 3, E: 3, K: 224, N: 131, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false },
  { fmt: { kind: 'int_block', bits: 8, blockSize: 16, zeroPoint: true }, shape: 'm16n256k32', op: 'gate_up', T: 35, k: 2, E: 5, K: 112, N: 133, act: { kind: 'silu', layout: 'interleaved' }, bias: true, rowScale: false },
  { fmt: { kind: 'mxfp4' }, shape: 'm64n128k32', op: 'down', T: 60, k: 2, E: 4, K: 96, N: 133, act: { kind: 'silu', layout: 'concat' }, bias: false, rowScale: false },
  // vector staging (16-byte staging stores: one vec4<u32> of f16 pairs per 8 decoded values) and plan.ts's packed tiles:
  // fp8 on the vector-staged 128 x 256 tile and int4 on the scalar-staged one, both over f16 x rows (48 KiB: the H200)
  { fmt: { kind: 'fp8_block', block: [16, 16] }, rawFp8: true, shape: 'm128n128k32v', op: 'gate_up', T: 150, k: 2, E: 3, K: 80, N: 141, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: true, xh: 'staged' },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, shape: 'm64n128k32v', op: 'down', T: 70, k: 2, E: 3, K: 96, N: 141, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false },
  { fmt: { kind: 'mxfp4' }, shape: 'm32n128k32v', op: 'gate_up', T: 41, k: 2, E: 4, K: 96, N: 75, act: { kind: 'swigluoai', limit: 1.1, alpha: 1.702, layout: 'interleaved' }, bias: true, rowScale: false },
  { fmt: { kind: 'fp8_block', block: [16, 32] }, rawFp8: true, shape: 'm128n256k32v', op: 'down', T: 190, k: 2, E: 3, K: 96, N: 269, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false, xh: 'staged' },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 64, scaleDtype: 'float16', zeroPoint: true }, shape: 'm128n256k32', op: 'gate_up', T: 190, k: 2, E: 3, K: 128, N: 141, act: { kind: 'silu', layout: 'concat' }, bias: false, rowScale: true, xh: 'staged' },
  // plan.ts's packed tile since session 19 (144 x 256, three subgroups along the rows: 384 invocations stage each slice),
  // experts past 144 rows taking a second row tile
  { fmt: { kind: 'fp8_block', block: [16, 16] }, rawFp8: true, shape: 'm144n256k32v', op: 'gate_up', T: 230, k: 2, E: 3, K: 96, N: 141, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: true, xh: 'staged' },
  { fmt: { kind: 'mxfp4' }, shape: 'm144n256k32v', op: 'down', T: 200, k: 2, E: 3, K: 96, N: 269, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false, xh: 'staged' },
  { fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true }, shape: 'm144n256k32v', op: 'gate_up', T: 230, k: 2, E: 3, K: 128, N: 141, act: { kind: 'swigluoai', limit: 1.1, alpha: 1.702, layout: 'interleaved' }, bias: true, rowScale: false, xh: 'staged' },
  // the tiles plan.ts stages fp8 e4m3 a word at a time on (KERNEL_CROSSOVERS.sgmatE4m3WordShapes, session 28): the 32 x 128
  // pf2 tile (two 64-wide K slices in flight; K of 2.5 slices) and the fp8 band's 128 x 256 tile (K of 1.5 slices; small
  // calls: the emulated builtins take ~1 s per workgroup on lavapipe)
  { fmt: { kind: 'fp8_block', block: [16, 32] }, rawFp8: true, shape: 'm32n128k64vap2', op: 'gate_up', T: 21, k: 2, E: 3, K: 160, N: 75, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: true, xh: 'staged' },
  { fmt: { kind: 'fp8_block', block: [16, 16] }, rawFp8: true, shape: 'm128n256k32va', op: 'down', T: 60, k: 2, E: 3, K: 48, N: 141, act: { kind: 'silu', layout: 'concat' }, bias: true, rowScale: false, xh: 'staged' },
];

function fmtName(f: ExpertQuantFormat): string {
  switch (f.kind) {
    case 'fp8_block':
      return `fp8 ${f.dtype ?? 'float8_e4m3fn'} [${f.block}]`;
    case 'mxfp4':
      return 'mxfp4';
    case 'int_block':
      return `int${f.bits} block ${f.blockSize}${f.scaleDtype ? ` ${f.scaleDtype}` : ''}${f.zeroPoint ? ' zp' : ''}`;
    default:
      return f.kind;
  }
}

/** The case's packed weights [E, rows, K]: quantized random values, with raw fp8 codes over the whole range when asked. */
function weights(r: () => number, c: WideCase, rows: number): ExpertWeightsHost {
  const w = randomZeros(r, quantizeExperts(randomArray(r, c.E * rows * c.K, -0.3, 0.3), c.E, rows, c.K, c.fmt));
  if (!c.rawFp8 || w.kind !== 'fp8_block') return w;
  // every code but the NaN / inf ones (S.1111.111 for e4m3, S.11111.xx for e5m2); scales <= 1 keep the products in f16's range (e5m2 max 57344)
  const e4m3 = w.q.dtype === 'float8_e4m3fn';
  const q = Uint8Array.from({ length: w.q.size }, () => {
    const b = Math.floor(r() * 256);
    return (e4m3 ? (b & 0x7f) === 0x7f : (b & 0x7c) === 0x7c) ? b & 0x83 : b;
  });
  const s = Float32Array.from({ length: w.scaleInv.size }, () => 2 ** -Math.floor(r() * 6) * (0.5 + 0.5 * r()));
  return { ...w, q: new HostTensor(w.q.dtype, [...w.q.shape], q), scaleInv: new HostTensor('float32', [...w.scaleInv.shape], s) };
}

describe('subgroup-matrix GEMM: wide packed staging loads', () => {
  it('fastWeightFormat allows them only where 16 bytes of codes start aligned and share one scale block', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const wideOf = (fmt: ExpertQuantFormat, K: number) => {
      const gw = uploadExpertWeights(ctx!, quantizeExperts(new Float32Array(2 * 8 * K), 2, 8, K, fmt));
      const wide = fastWeightFormat(gw, K)?.wide;
      destroyExpertWeights(gw);
      return wide;
    };
    expect(wideOf({ kind: 'fp8_block', block: [128, 128] }, 256)).toBe(true);
    expect(wideOf({ kind: 'fp8_block', block: [128, 128] }, 136)).toBe(false); // K % 16 != 0
    expect(wideOf({ kind: 'fp8_block', block: [8, 8] }, 64)).toBe(false); // scale blocks of 8 columns
    expect(wideOf({ kind: 'int_block', bits: 4, blockSize: 32 }, 128)).toBe(true);
    expect(wideOf({ kind: 'int_block', bits: 4, blockSize: 16 }, 128)).toBe(false);
    expect(wideOf({ kind: 'int_block', bits: 4, blockSize: 224 }, 224)).toBe(true); // one block per row
    expect(wideOf({ kind: 'int_block', bits: 4, blockSize: 32 }, 80)).toBe(false); // K % 32 != 0
    expect(wideOf({ kind: 'int_block', bits: 8, blockSize: 16 }, 80)).toBe(true);
    expect(wideOf({ kind: 'mxfp4' }, 96)).toBe(true);
    expect(wideOf({ kind: 'int_block', bits: 8, blockSize: 24 }, 48)).toBe(false); // blocks of 24: a load of 16 codes can straddle two
  });

  for (const c of CASES) {
    it(`${fmtName(c.fmt)} ${c.shape}${c.xh ? ` xh=${c.xh}` : ''} ${c.op} T=${c.T} k=${c.k} E=${c.E} K=${c.K} N=${c.N}: wide and 8-value loads, word and per-value decoding (each load width) give the same bits and match the reference`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
      const emulate = !sgmatSupported(ctx, c.shape);
      const wgNeed = sgmatLayout(SGMAT_SHAPES[c.shape]).bytes;
      const wgHas = ctx.limits.maxComputeWorkgroupStorageSize ?? 0;
      if (wgNeed > wgHas) return t.skip(`${c.shape} needs ${wgNeed} bytes of workgroup memory, the adapter offers ${wgHas}`);
      const { op, T, k, E, K, N, act } = c;
      const r = rng(7100 + K * 13 + N);
      const wRows = op === 'gate_up' ? 2 * N : N;
      const xRows = op === 'gate_up' ? T : T * k;
      const x = randomArray(r, xRows * K, -1, 1);
      const w = weights(r, c, wRows);
      const b = c.bias ? HostTensor.fromFloat32([E, wRows], randomArray(r, E * wRows, -0.5, 0.5), 'float32') : undefined;
      const rs = c.rowScale ? randomArray(r, T * k, 0.1, 1.5) : undefined;
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const want = op === 'gate_up' ? groupedGateUpRef(x, g, w, b, act, rs) : groupedDownRef(x, g, w, b);
      const xh = SGMAT_SHAPES[c.shape].xd ? ('direct' as const) : c.xh;
      const inp = { x, w, b, rs, g };
      const run = (wide: boolean, valueDecode = false) =>
        runSgmatCase(ctx!, { ...c, splitK: 1, xh }, emulate, inp, { wide, valueDecode }, (gw) => expect(fastWeightFormat(gw, K)?.wide, 'the format allows wide loads').toBe(true));
      const narrow = await run(false);
      const wide = await run(true);
      expect(narrow.every(Number.isFinite), 'finite').toBe(true);
      const firstDiff = firstBitDiff(narrow, wide);
      expect(firstDiff, firstDiff < 0 ? '' : `output ${firstDiff}: wide ${wide[firstDiff]} vs 8-value loads ${narrow[firstDiff]}`).toBe(-1);
      // the word-at-a-time staging (packedHalfPairsWgsl, both runs above) against the per-value one (vdec): the same tiles
      const perValue = await run(false, true);
      const firstVdec = firstBitDiff(narrow, perValue);
      expect(firstVdec, firstVdec < 0 ? '' : `output ${firstVdec}: word staging ${narrow[firstVdec]} vs per-value staging ${perValue[firstVdec]}`).toBe(-1);
      // and both at once (plan.ts's choice for fp8 e4m3)
      const widePerValue = await run(true, true);
      const firstWv = firstBitDiff(narrow, widePerValue);
      expect(firstWv, firstWv < 0 ? '' : `output ${firstWv}: word staging ${narrow[firstWv]} vs wide per-value staging ${widePerValue[firstWv]}`).toBe(-1);
      expect(relErr(wide, want)).toBeLessThan(2e-3);
    }, 600_000);
  }
});
