import type { DType } from '@webmoe/tensor';
import { DTypeError } from '@webmoe/tensor';

/**
 * WGSL snippets that read and write packed storage types. A tensor of dtype
 * `d` is an `array<u32>` (or `array<f32>`) holding the flat elements packed
 * little-endian: element i of a 16-bit type is half (i & 1) of word i >> 1;
 * of an 8-bit type, byte (i & 3) of word i >> 2.
 */

/** WGSL declaration type of a storage buffer holding `dtype`. */
export function storageType(dtype: DType): string {
  switch (dtype) {
    case 'float32': return 'array<f32>';
    case 'int32': return 'array<i32>';
    default: return 'array<u32>';
  }
}

/**
 * WGSL `fn e8m0(b: u32) -> f32`: an MXFP4 block's e8m0 scale byte b as 2^(b - 127) by placing b in an f32's exponent
 * (full-rate integer operations where exp2 takes a conversion and a special-function op): b = 1..254 exactly, b = 255
 * +inf (2^128 overflows, as the reference's 2 ** 128), b = 0 the subnormal 2^-127.
 */
export const E8M0_WGSL = /* wgsl */ `fn e8m0(b: u32) -> f32 { return select(bitcast<f32>(b << 23u), bitcast<f32>(0x00400000u), b == 0u); }`;

/** WGSL functions decoding fp8 bytes (shared by every kernel that reads fp8). */
export const FP8_DECODE_WGSL = /* wgsl */ `
// NaN/inf built from a runtime value: WGSL rejects NaN and inf constants.
fn special_f32(bits: u32, b: u32) -> f32 { return bitcast<f32>(bits | (b & 0u)); }
fn decode_e4m3(b: u32) -> f32 {
  let s = select(1.0, -1.0, (b & 0x80u) != 0u);
  let e = (b >> 3u) & 0xfu;
  let m = f32(b & 7u);
  if (e == 15u && (b & 7u) == 7u) { return special_f32(0x7fc00000u, b); }
  if (e == 0u) { return s * m * 0.001953125; }
  return s * ldexp(1.0 + m * 0.125, i32(e) - 7);
}
fn decode_e5m2(b: u32) -> f32 {
  let s = select(1.0, -1.0, (b & 0x80u) != 0u);
  let e = (b >> 2u) & 0x1fu;
  let m = f32(b & 3u);
  if (e == 31u) {
    if ((b & 3u) == 0u) { return special_f32(select(0x7f800000u, 0xff800000u, (b & 0x80u) != 0u), b); }
    return special_f32(0x7fc00000u, b);
  }
  if (e == 0u) { return s * m * 0.0000152587890625; }
  return s * ldexp(1.0 + m * 0.25, i32(e) - 15);
}
`;

/**
 * WGSL functions decoding fp8 bytes with bit arithmetic and selects instead
 * of branches (the staging of the fast grouped GEMMs): every code gives the
 * same f32 as decode_e4m3 / decode_e5m2 of FP8_DECODE_WGSL (which they
 * include for the NaN constructor). Normal codes move their exponent and
 * mantissa into an f32's and rebias the exponent; subnormal codes are
 * mantissa x 2^-9 (e4m3) / 2^-16 (e5m2); the sign bit is or-ed in last.
 */
export const FP8_DECODE_BITS_WGSL = /* wgsl */ `${FP8_DECODE_WGSL}
fn decode_e4m3_bits(b: u32) -> f32 {
  let mag = b & 0x7fu;
  var v = select(bitcast<f32>((mag << 20u) + 0x3c000000u), f32(mag) * 0.001953125, mag < 8u);
  v = select(v, special_f32(0x7fc00000u, b), mag == 0x7fu);
  return bitcast<f32>(bitcast<u32>(v) | ((b & 0x80u) << 24u));
}
fn decode_e5m2_bits(b: u32) -> f32 {
  let mag = b & 0x7fu;
  var v = select(bitcast<f32>((mag << 21u) + 0x38000000u), f32(mag) * 0.0000152587890625, mag < 4u);
  v = select(v, special_f32(select(0x7fc00000u, 0x7f800000u, mag == 0x7cu), b), mag >= 0x7cu);
  return bitcast<f32>(bitcast<u32>(v) | ((b & 0x80u) << 24u));
}
`;

/** WGSL `fn unpack2x16bf16(w: u32) -> vec2<f32>`: the two bf16 halves of a word (low half first), exact. */
export const BF16_UNPACK_WGSL = /* wgsl */ `
fn unpack2x16bf16(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }
`;

/**
 * WGSL `bf16x2_to_f16x2(w) -> u32`: two bf16 values (low half first) as the bits of two f16 values, rounded to nearest
 * (needs BF16_UNPACK_WGSL and f16): one two-wide f32 -> f16 conversion per word. An integer rebias of f16's normal
 * range with the conversion only for the other words measured 20% slower in the prefill GEMMs on the H200
 * (docs/PERF-NOTES.md, 2026-12-04 session 9). Values beyond f16's range are indeterminate in WGSL (the GEMMs scale
 * x rows into range; weights beyond 65504 are not a checkpoint's). Reference: f32ToF16(bf16ToF32(h)) of
 * @webmoe/tensor (test/f16-staging.gpu.test.ts, every pattern f16 holds).
 */
export const BF16_TO_F16_WGSL = /* wgsl */ `
fn bf16x2_to_f16x2(w: u32) -> u32 { return bitcast<u32>(vec2<f16>(unpack2x16bf16(w))); }
`;

/**
 * WGSL functions decoding the 4- and 8-bit codes of the packed expert
 * formats without their scale (shared by the tiled GEMM, the fast GEMMs and
 * the decode GEMV; references: quant-ref.ts decodeExpertRow): e2m1 (fp4,
 * MXFP4 elements; bit 3 the sign, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6) and
 * the unsigned int_block codes with zero point 8 (int4) / 128 (int8).
 */
export const PACKED_CODE_WGSL = /* wgsl */ `
fn decode_fp4(c: u32) -> f32 {
  let m = c & 7u;
  let ex = m >> 1u;
  var v = f32(m & 1u) * 0.5;
  if (ex != 0u) { v = ldexp(1.0 + f32(m & 1u) * 0.5, i32(ex) - 1); }
  return select(v, -v, (c & 8u) != 0u);
}
fn decode_int4(c: u32) -> f32 { return f32(c & 15u) - 8.0; }
fn decode_int8(c: u32) -> f32 { return f32(c & 0xffu) - 128.0; }
`;

/**
 * A WGSL function `fn <fname>(i: u32) -> f32` reading element i of the
 * storage buffer `buf` holding `dtype`, converted to f32. Needs
 * FP8_DECODE_WGSL in the module for fp8 dtypes.
 */
export function loadFn(fname: string, buf: string, dtype: DType): string {
  switch (dtype) {
    case 'float32':
      return `fn ${fname}(i: u32) -> f32 { return ${buf}[i]; }`;
    case 'bfloat16':
      return `fn ${fname}(i: u32) -> f32 { let w = ${buf}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`;
    case 'float16':
      return `fn ${fname}(i: u32) -> f32 { let w = ${buf}[i >> 1u]; let v = unpack2x16float(w); return select(v.x, v.y, (i & 1u) == 1u); }`;
    case 'float8_e4m3fn':
      return `fn ${fname}(i: u32) -> f32 { return decode_e4m3((${buf}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }`;
    case 'float8_e5m2':
      return `fn ${fname}(i: u32) -> f32 { return decode_e5m2((${buf}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }`;
    case 'int8':
      return `fn ${fname}(i: u32) -> f32 { let b = (${buf}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; return f32(i32(b << 24u) >> 24u); }`;
    case 'uint8':
      return `fn ${fname}(i: u32) -> f32 { return f32((${buf}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }`;
    case 'int32':
      return `fn ${fname}(i: u32) -> f32 { return f32(${buf}[i]); }`;
    case 'uint32':
      return `fn ${fname}(i: u32) -> f32 { return f32(${buf}[i]); }`;
  }
}

/** WGSL that rounds an f32 to bf16 bits (nearest even, NaN kept). */
export const F32_TO_BF16_WGSL = /* wgsl */ `
fn f32_to_bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) { return ((b >> 16u) | 0x40u) & 0xffffu; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
`;

/** The dtypes a float-output kernel can write. */
export type OutFloat = 'float32' | 'bfloat16' | 'float16';

export function checkOutFloat(what: string, d: DType): asserts d is OutFloat {
  if (d !== 'float32' && d !== 'bfloat16' && d !== 'float16') throw new DTypeError(what, ['float32', 'bfloat16', 'float16'], d);
}

/**
 * WGSL that turns the workgroup arrays `arrays` (u32, indexed by lane `li`, `wg` lanes) into their inclusive prefix
 * sums, all at once (Hillis-Steele: log2 steps, two barriers each), over their first `width` entries (a uniform WGSL
 * expression; default all `wg`). Call from uniform control flow.
 * @example `${inclusiveScanWgsl(['part'], 256)}`
 */
export function inclusiveScanWgsl(arrays: readonly string[], wg: number, width = `${wg}u`): string {
  return `
  for (var d = 1u; d < ${width}; d <<= 1u) {
${arrays.map((a) => `    var ${a}_v = ${a}[li];
    if (li >= d) { ${a}_v += ${a}[li - d]; }`).join('\n')}
    workgroupBarrier();
${arrays.map((a) => `    ${a}[li] = ${a}_v;`).join('\n')}
    workgroupBarrier();
  }`;
}
