/**
 * The f16 staging of packed weights in the subgroup-matrix GEMM (packedHalfPairsWgsl's wdecq: a word of codes decoded
 * by bit arithmetic, scaled in f32, rounded to f16 two at a time) on every code of every packed format, in every
 * position of the load, 8-value and 16-byte loads, with and without zero points, against the host: f32ToF16 of
 * Math.fround(decoded code x scale), the reference's value (quant-ref.ts). f16 subnormals must be rounded, not
 * flushed (scales that put products there are in the list). Products past f16's range (|v| > 65504) are not
 * compared (WGSL leaves that conversion indeterminate); NaN codes must stage as NaN. The GEMMs that use the staging
 * (its order in the tile) are covered by grouped-gemm-fast.gpu.test.ts and sgmat-wide-staging.gpu.test.ts.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { e4m3ToF32, e5m2ToF32, f16ToF32, f32ToF16 } from '@webmoe/tensor';
import { defineKernel, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { runWordKernel } from './word-kernel.js';
import { FP8_DECODE_BITS_WGSL } from '../src/wgsl.js';
import { fp4ToF32 } from '../src/kernels/quant-ref.js';
import { fastVpl, packedHalfPairsWgsl } from '../src/kernels/grouped-gemm-fast-weights-wgsl.js';
import type { FastGemmVariant } from '../src/kernels/grouped-gemm-fast-shapes.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type Packed = 'fp8_e4m3' | 'fp8_e5m2' | 'int8' | 'int4' | 'mxfp4';
type StagingVariant = { wf: Packed; wide: boolean; zp: boolean };

/** Runs wdecq on item i's raw load (codes, scale bits, zero-point bits): item i's V / 8 elements of f16 pairs. */
const staging = defineKernel<StagingVariant>(
  'test_packed_half_pairs',
  (v) => {
    const V = fastVpl(v);
    const raw = v.wide ? 'WRaw(IN[2u * i], IN[2u * i + 1u].xy)' : 'IN[i]';
    return /* wgsl */ `
${v.wf === 'fp8_e4m3' ? FP8_DECODE_BITS_WGSL : ''}
${v.wide ? 'struct WRaw { q: vec4<u32>, s: vec2<u32>, }' : ''}
${packedHalfPairsWgsl(v as Pick<FastGemmVariant, 'wf' | 'wide' | 'zp'>)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= arrayLength(&OUT) / ${V / 8}u) { return; }
  let h = wdecq(${raw});
  for (var e = 0u; e < ${V / 8}u; e++) { OUT[i * ${V / 8}u + e] = h[e]; }
}
`;
  },
  {
    signature: () => ({
      bindings: [
        { name: 'IN', type: 'array<vec4<u32>>', access: 'read' },
        { name: 'OUT', type: 'array<vec4<u32>>', access: 'read_write' },
      ],
      f16: true,
    }),
  },
);

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** The reference value of `code` under the item's scale (f32 scale; MXFP4: the e8m0 byte) and zero point. */
function refValue(wf: Packed, code: number, scale: number, zp: number): number {
  switch (wf) {
    case 'fp8_e4m3':
      return Math.fround(e4m3ToF32(code) * scale);
    case 'fp8_e5m2':
      return Math.fround(e5m2ToF32(code) * scale);
    case 'int8':
    case 'int4':
      return Math.fround((code - zp) * scale);
    case 'mxfp4':
      return Math.fround(fp4ToF32(code) * 2 ** (scale - 127));
  }
}

/** Per-item scales: f32 block scales whose products reach f16 subnormals and its top range; MXFP4: every e8m0 byte. */
function scalesOf(wf: Packed): number[] {
  if (wf === 'mxfp4') return Array.from({ length: 256 }, (_, e) => e);
  const s = [1, 0.75, 3.1e-3, 2 ** -10, 1e-6, 2.5e-7, 0.0421, 7.3, 97.25];
  return wf.startsWith('fp8') ? [...s, 1 / 448, 140.5] : s;
}

const CASES: StagingVariant[] = [];
for (const wf of ['fp8_e4m3', 'fp8_e5m2', 'int8', 'int4', 'mxfp4'] as const) {
  for (const wide of [false, true]) {
    CASES.push({ wf, wide, zp: false });
    if (wf === 'int4' || wf === 'int8') CASES.push({ wf, wide, zp: true });
  }
}

describe('f16 staging of packed weights (wdecq)', () => {
  for (const { wf, wide, zp } of CASES) it(`${wf} wide=${wide} zp=${zp}: every code in every position, the reference value rounded to f16`, async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    if (!ctx.features.shaderF16) return t.skip('no shader-f16 on this adapter');
    const c = ctx;
    const v: StagingVariant = { wf, wide, zp };
    const V = fastVpl(v);
    const bits = wf === 'int4' || wf === 'mxfp4' ? 4 : 8;
    const nCodes = 1 << bits;
    const perWord = 32 / bits;
    const scales = scalesOf(wf);
    // Items: every scale with enough loads that value position p of a load sees every code (code of value k of
    // item i: (k + 7 i) mod nCodes, over nCodes items per scale); zero points cycle over the codes.
    const itemsPerScale = nCodes;
    const n = scales.length * itemsPerScale;
    const inWords = new Uint32Array(n * (wide ? 8 : 4));
    const codes: number[][] = [];
    const zps: number[] = [];
    for (let i = 0; i < n; i++) {
      const scale = scales[Math.floor(i / itemsPerScale)]!;
      const zpCode = zp ? (i * 5 + 3) % nCodes : nCodes / 2;
      const item = Array.from({ length: V }, (_, k) => (k + 7 * i) % nCodes);
      codes.push(item);
      zps.push(zpCode);
      const words = Array.from({ length: V / perWord }, (_, w) => item.slice(w * perWord, (w + 1) * perWord).reduce((acc, cd, j) => (acc | (cd << (j * bits))) >>> 0, 0));
      const sBits = wf === 'mxfp4' ? scale : bitsOf(scale);
      const zBits = bitsOf(zpCode - nCodes / 2);
      if (wide) inWords.set([...words, sBits, zBits, 0, 0], 8 * i);
      else inWords.set(bits === 4 ? [words[0]!, 0, sBits, zBits] : [words[0]!, words[1]!, sBits, zBits], 4 * i);
    }
    const got = await runWordKernel(c, staging, v, inWords, (n * V) / 2, [Math.ceil(n / 64)]);
    let compared = 0;
    let subnormals = 0;
    let nans = 0;
    const bad: string[] = [];
    for (let i = 0; i < n; i++) {
      const scale = scales[Math.floor(i / itemsPerScale)]!;
      for (let k = 0; k < V; k++) {
        const code = codes[i]![k]!;
        const have = (got[(i * V + k) >> 1]! >>> ((k & 1) * 16)) & 0xffff;
        const want = refValue(wf, code, scale, zps[i]!);
        if (Number.isNaN(want)) {
          nans++;
          if (!Number.isNaN(f16ToF32(have)) && bad.length < 8) bad.push(`item ${i} value ${k}: code 0x${code.toString(16)} is NaN, staged 0x${have.toString(16)}`);
          continue;
        }
        if (!Number.isFinite(want) || Math.abs(want) > 65504) continue;
        const w16 = f32ToF16(want);
        compared++;
        if ((w16 & 0x7c00) === 0 && (w16 & 0x3ff) !== 0) subnormals++;
        if (have !== w16 && bad.length < 8) bad.push(`item ${i} value ${k}: code 0x${code.toString(16)} scale ${scale} zp ${zps[i]} -> 0x${have.toString(16)} (${f16ToF32(have)}), want 0x${w16.toString(16)} (${want})`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
    // not vacuous: most values compared, f16 subnormals among them, and e4m3's NaN codes seen
    expect(compared).toBeGreaterThan(0.5 * n * V);
    expect(subnormals).toBeGreaterThan(wf === 'mxfp4' ? 10 : 100);
    if (wf === 'fp8_e4m3') expect(nans).toBeGreaterThan(0);
  });
});
