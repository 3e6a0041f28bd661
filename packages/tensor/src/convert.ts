import type { DType, HostArray } from './dtype.js';
import { DTYPES, allocHost } from './dtype.js';
import { DTypeError } from './errors.js';

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** The IEEE-754 bits of an f32 value. @example `f32Bits(1) // 0x3f800000` */
export function f32Bits(x: number): number {
  f32buf[0] = x;
  return u32buf[0];
}
/** The f32 value of 32 bits. @example `bitsF32(0x3f800000) // 1` */
export function bitsF32(b: number): number {
  u32buf[0] = b >>> 0;
  return f32buf[0];
}

/** f32 -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet, sign kept). @example `f32ToBf16(1) // 0x3f80` */
export function f32ToBf16(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  const r = b + 0x7fff + ((b >>> 16) & 1);
  return (r >>> 16) & 0xffff;
}
/** bfloat16 bits -> f32. @example `bf16ToF32(0x3f80) // 1` */
export function bf16ToF32(h: number): number {
  return bitsF32((h & 0xffff) << 16);
}

/** Describes a small IEEE-like binary float format. */
interface MiniFloat {
  ebits: number;
  mbits: number;
  bias: number;
  /** Largest finite magnitude. */
  max: number;
  /** 'ieee': all-ones exponent is inf/NaN. 'fn': no infinities, only S.1111.111 is NaN. */
  kind: 'ieee' | 'fn';
}
const F16: MiniFloat = { ebits: 5, mbits: 10, bias: 15, max: 65504, kind: 'ieee' };
const E4M3: MiniFloat = { ebits: 4, mbits: 3, bias: 7, max: 448, kind: 'fn' };
const E5M2: MiniFloat = { ebits: 5, mbits: 2, bias: 15, max: 57344, kind: 'ieee' };

const f64buf = new Float64Array(1);
const u32of64 = new Uint32Array(f64buf.buffer);
/** floor(log2(v)) for a finite v > 0, exactly, from the f64 bits. */
function exponentOf(v: number): number {
  f64buf[0] = v;
  const e = (u32of64[1] >>> 20) & 0x7ff;
  if (e === 0) return exponentOf(v * 2 ** 64) - 64;
  return e - 1023;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Rounds an f32 value to a minifloat format and returns its bits.
 * Exact: every step is a power-of-two scaling or an integer rounding in f64.
 */
function encodeMini(fmt: MiniFloat, x: number, saturate: boolean): number {
  const { ebits, mbits, bias, max, kind } = fmt;
  const signBit = 1 << (ebits + mbits);
  const expMask = (1 << ebits) - 1;
  const nanBits = kind === 'fn' ? (expMask << mbits) | ((1 << mbits) - 1) : (expMask << mbits) | (1 << (mbits - 1));
  const infBits = expMask << mbits;
  x = Math.fround(x);
  const neg = x < 0 || Object.is(x, -0);
  const sign = neg ? signBit : 0;
  if (Number.isNaN(x)) return sign | nanBits;
  const a = Math.abs(x);
  if (a === Infinity) {
    if (saturate) return sign | encodeMini(fmt, max, false);
    return kind === 'fn' ? sign | nanBits : sign | infBits;
  }
  if (a === 0) return sign;
  const minNormalExp = 1 - bias;
  let e = exponentOf(a);
  if (e < minNormalExp) e = minNormalExp;
  const quantum = 2 ** (e - mbits);
  let q = roundHalfEven(a / quantum) * quantum;
  if (q > max) {
    if (saturate) q = max;
    else return kind === 'fn' ? sign | nanBits : sign | infBits;
  }
  if (q === 0) return sign;
  if (q < 2 ** minNormalExp) return sign | (q / 2 ** (minNormalExp - mbits));
  const qe = exponentOf(q);
  const mant = q / 2 ** (qe - mbits) - (1 << mbits);
  return sign | ((qe + bias) << mbits) | mant;
}

function decodeMini(fmt: MiniFloat, bits: number): number {
  const { ebits, mbits, bias, kind } = fmt;
  const signBit = 1 << (ebits + mbits);
  const expMask = (1 << ebits) - 1;
  const s = bits & signBit ? -1 : 1;
  const e = (bits >>> mbits) & expMask;
  const m = bits & ((1 << mbits) - 1);
  if (kind === 'ieee' && e === expMask) return m === 0 ? s * Infinity : NaN;
  if (kind === 'fn' && e === expMask && m === (1 << mbits) - 1) return NaN;
  if (e === 0) return s * m * 2 ** (1 - bias - mbits);
  return s * (1 + m / (1 << mbits)) * 2 ** (e - bias);
}

/** f32 -> float16 bits, round to nearest even, overflow to infinity. @example `f32ToF16(1) // 0x3c00` */
export function f32ToF16(x: number): number {
  return encodeMini(F16, x, false);
}
/** float16 bits -> f32. @example `f16ToF32(0x3c00) // 1` */
export function f16ToF32(h: number): number {
  return decodeMini(F16, h & 0xffff);
}

/**
 * f32 -> float8_e4m3fn bits, round to nearest even. With `saturate` (the
 * default, as quantisers do) magnitudes beyond 448 become +-448; without it
 * they become NaN (the format has no infinity).
 * @example `f32ToE4m3(1) // 0x38`
 */
export function f32ToE4m3(x: number, saturate = true): number {
  return encodeMini(E4M3, x, saturate);
}
/** float8_e4m3fn bits -> f32. @example `e4m3ToF32(0x7e) // 448` */
export function e4m3ToF32(b: number): number {
  return decodeMini(E4M3, b & 0xff);
}
/** f32 -> float8_e5m2 bits, round to nearest even; overflow to infinity unless `saturate`. @example `f32ToE5m2(1) // 0x3c` */
export function f32ToE5m2(x: number, saturate = false): number {
  return encodeMini(E5M2, x, saturate);
}
/** float8_e5m2 bits -> f32. @example `e5m2ToF32(0x3c) // 1` */
export function e5m2ToF32(b: number): number {
  return decodeMini(E5M2, b & 0xff);
}

const E4M3_TABLE = new Float32Array(256).map((_, i) => decodeMini(E4M3, i));
const E5M2_TABLE = new Float32Array(256).map((_, i) => decodeMini(E5M2, i));

/**
 * Converts a host array of `dtype` to float32 values (exact for every dtype
 * of the table except 32-bit integers beyond 2^24).
 * @example `toFloat32('bfloat16', new Uint16Array([0x3f80])) // Float32Array [1]`
 */
export function toFloat32(dtype: DType, data: HostArray): Float32Array {
  const n = data.length;
  const out = new Float32Array(n);
  switch (dtype) {
    case 'float32': out.set(data as Float32Array); break;
    case 'bfloat16': {
      const o = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) o[i] = (data[i] & 0xffff) << 16;
      break;
    }
    case 'float16': for (let i = 0; i < n; i++) out[i] = f16ToF32(data[i]); break;
    case 'float8_e4m3fn': for (let i = 0; i < n; i++) out[i] = E4M3_TABLE[data[i] & 0xff]; break;
    case 'float8_e5m2': for (let i = 0; i < n; i++) out[i] = E5M2_TABLE[data[i] & 0xff]; break;
    default: for (let i = 0; i < n; i++) out[i] = data[i];
  }
  return out;
}

/**
 * Converts float32 values to a host array of `dtype` with round to nearest
 * even (fp8 casts saturate for e4m3fn, as quantisers do).
 * @example `fromFloat32('bfloat16', new Float32Array([1])) // Uint16Array [0x3f80]`
 */
export function fromFloat32(dtype: DType, data: ArrayLike<number>): HostArray {
  const n = data.length;
  const out = allocHost(dtype, n);
  switch (dtype) {
    case 'float32': for (let i = 0; i < n; i++) out[i] = data[i]; break;
    case 'bfloat16': for (let i = 0; i < n; i++) out[i] = f32ToBf16(data[i]); break;
    case 'float16': for (let i = 0; i < n; i++) out[i] = f32ToF16(data[i]); break;
    case 'float8_e4m3fn': for (let i = 0; i < n; i++) out[i] = f32ToE4m3(data[i]); break;
    case 'float8_e5m2': for (let i = 0; i < n; i++) out[i] = f32ToE5m2(data[i]); break;
    default:
      if (!DTYPES[dtype]) throw new DTypeError('fromFloat32', 'a dtype of the table', String(dtype));
      for (let i = 0; i < n; i++) out[i] = Math.round(data[i]);
  }
  return out;
}

/** Rounds f32 values through `dtype` and back (what storing them in `dtype` does). @example `roundTo('bfloat16', xs)` */
export function roundTo(dtype: DType, data: ArrayLike<number>): Float32Array {
  return toFloat32(dtype, fromFloat32(dtype, data));
}
