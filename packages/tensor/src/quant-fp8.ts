// Block-scaled fp8 weights (DeepSeek-V3 checkpoint format) and dynamic
// per-token-group fp8 activation quantisation (w8a8).
import { e4m3ToF32, e5m2ToF32, f32ToE4m3, f32ToE5m2, toFloat32 } from './convert.js';
import { HostTensor } from './host-tensor.js';
import { DTypeError, ShapeError, ValueError } from './errors.js';

/** The fp8 formats the quantisers produce. @example `const f: Fp8Format = 'float8_e4m3fn';` */
export type Fp8Format = 'float8_e4m3fn' | 'float8_e5m2';

/** Largest finite magnitude of each fp8 format (the quantisers' target amax). @example `FP8_MAX.float8_e4m3fn // 448` */
export const FP8_MAX: Readonly<Record<Fp8Format, number>> = Object.freeze({ float8_e4m3fn: 448, float8_e5m2: 57344 });

const ENC: Record<Fp8Format, (x: number) => number> = {
  float8_e4m3fn: (x) => f32ToE4m3(x, true),
  float8_e5m2: (x) => f32ToE5m2(x, true),
};

function checkDims(what: string, data: ArrayLike<number>, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) throw new ValueError(`${what} dims`, 'non-negative integers', [rows, cols]);
  if (data.length !== rows * cols) throw new ShapeError(`${what} length`, `${rows * cols} values for [${rows}, ${cols}]`, `${data.length} values`);
}
function checkBlock(block: readonly [number, number]): void {
  if (!Array.isArray(block) || block.length !== 2 || block.some((b) => !Number.isInteger(b) || b < 1)) throw new ValueError('block', '[rows, cols] of positive integers', block);
}

/** Options of {@link quantizeFp8Block}. @example `quantizeFp8Block(w, r, c, { block: [128, 128], format: 'float8_e5m2' })` */
export interface Fp8BlockOptions {
  /** Block size `[rows, cols]` sharing one scale (default `[128, 128]`). */
  block?: [number, number];
  /** Target format (default `float8_e4m3fn`). */
  format?: Fp8Format;
}

/**
 * Quantises a row-major `[rows, cols]` f32 weight to block-scaled fp8 as
 * DeepSeek-V3 checkpoints store it: per block, `scale_inv = amax / FP8_MAX`
 * (f32), `q = fp8(w / scale_inv)` rounded to nearest even and saturated.
 * Edge blocks are partial. An all-zero block gets `scale_inv = 1` (its codes
 * are all zero, so any scale dequantises to 0). Non-finite weights are
 * rejected ({@link ValueError}).
 *
 * @example
 * ```ts
 * const { q, scaleInv } = quantizeFp8Block(w, 300, 200); // q [300, 200] e4m3fn, scaleInv [3, 2] f32
 * const back = dequantizeFp8Block(q, scaleInv);
 * ```
 */
export function quantizeFp8Block(w: ArrayLike<number>, rows: number, cols: number, opts: Fp8BlockOptions = {}): { q: HostTensor; scaleInv: HostTensor } {
  const block = opts.block ?? [128, 128];
  const format = opts.format ?? 'float8_e4m3fn';
  checkDims('quantizeFp8Block w', w, rows, cols);
  checkBlock(block);
  if (!(format in FP8_MAX)) throw new DTypeError('quantizeFp8Block format', Object.keys(FP8_MAX), String(format));
  const [bh, bw] = block;
  const sr = Math.ceil(rows / bh);
  const sc = Math.ceil(cols / bw);
  const q = new Uint8Array(rows * cols);
  const s = new Float32Array(sr * sc);
  const enc = ENC[format];
  const fmax = FP8_MAX[format];
  for (let bi = 0; bi < sr; bi++) {
    const r1 = Math.min(rows, (bi + 1) * bh);
    for (let bj = 0; bj < sc; bj++) {
      const c1 = Math.min(cols, (bj + 1) * bw);
      let amax = 0;
      for (let i = bi * bh; i < r1; i++) {
        for (let j = bj * bw; j < c1; j++) {
          const v = Math.fround(w[i * cols + j]);
          if (!Number.isFinite(v)) throw new ValueError(`quantizeFp8Block w[${i}, ${j}]`, 'a finite value', v);
          amax = Math.max(amax, Math.abs(v));
        }
      }
      const scale = amax === 0 ? 1 : Math.fround(amax / fmax);
      s[bi * sc + bj] = scale;
      for (let i = bi * bh; i < r1; i++) {
        for (let j = bj * bw; j < c1; j++) q[i * cols + j] = enc(Math.fround(Math.fround(w[i * cols + j]) / scale));
      }
    }
  }
  return { q: new HostTensor(format, [rows, cols], q), scaleInv: new HostTensor('float32', [sr, sc], s) };
}

/**
 * Dequantises block-scaled fp8: `W[i, j] = q[i, j] * scale_inv[floor(i / bh),
 * floor(j / bw)]` in f32. `q` is a 2-D fp8 tensor; `scaleInv` any float dtype
 * of shape `[ceil(rows / bh), ceil(cols / bw)]`.
 *
 * @example
 * ```ts
 * const w = dequantizeFp8Block(await ck.read('...down_proj.weight'), await ck.read('...down_proj.weight_scale_inv'));
 * ```
 */
export function dequantizeFp8Block(q: HostTensor, scaleInv: HostTensor, block: [number, number] = [128, 128]): Float32Array {
  checkBlock(block);
  if (q.dtype !== 'float8_e4m3fn' && q.dtype !== 'float8_e5m2') throw new DTypeError('dequantizeFp8Block q', ['float8_e4m3fn', 'float8_e5m2'], q.dtype);
  if (q.shape.length !== 2) throw new ShapeError('dequantizeFp8Block q', '[rows, cols]', q.shape);
  const [rows, cols] = q.shape;
  const [bh, bw] = block;
  const sr = Math.ceil(rows / bh);
  const sc = Math.ceil(cols / bw);
  if (scaleInv.shape.length !== 2 || scaleInv.shape[0] !== sr || scaleInv.shape[1] !== sc) throw new ShapeError('dequantizeFp8Block scaleInv', [sr, sc], scaleInv.shape);
  const s = scaleInv.toFloat32();
  const v = q.toFloat32();
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const srow = Math.floor(i / bh) * sc;
    for (let j = 0; j < cols; j++) out[i * cols + j] = v[i * cols + j] * s[srow + Math.floor(j / bw)];
  }
  return out;
}

/** Options of {@link quantizeActivationsFp8}. @example `quantizeActivationsFp8(x, T, H, { group: 128, amaxClamp: 1200 })` */
export interface ActQuantOptions {
  /** Channels per scale group (default 128); the last group may be partial. */
  group?: number;
  /** Clamp the group amax to at most this before computing the scale (MAX uses 1200). */
  amaxClamp?: number;
}

/**
 * Dynamic fp8 activation quantisation, per token and per `group` channels:
 * `scale = amax / 448` (f32; amax first clamped to `amaxClamp` when given),
 * `q = e4m3fn(x / scale)` rounded to nearest even and saturated to +-448.
 * An all-zero group gets scale 1. `x` is `[T, H]` row-major.
 *
 * @example
 * ```ts
 * const { q, scales } = quantizeActivationsFp8(x, T, H); // q Uint8Array [T*H], scales [T, ceil(H/128)]
 * ```
 */
export function quantizeActivationsFp8(x: ArrayLike<number>, T: number, H: number, opts: ActQuantOptions = {}): { q: Uint8Array; scales: Float32Array } {
  const group = opts.group ?? 128;
  checkDims('quantizeActivationsFp8 x', x, T, H);
  if (!Number.isInteger(group) || group < 1) throw new ValueError('quantizeActivationsFp8 group', 'a positive integer', group);
  const clamp = opts.amaxClamp;
  if (clamp !== undefined && !(clamp > 0)) throw new ValueError('quantizeActivationsFp8 amaxClamp', 'a positive number', clamp);
  const G = Math.ceil(H / group);
  const q = new Uint8Array(T * H);
  const scales = new Float32Array(T * G);
  for (let t = 0; t < T; t++) {
    for (let g = 0; g < G; g++) {
      const c0 = t * H + g * group;
      const c1 = t * H + Math.min(H, (g + 1) * group);
      let amax = 0;
      for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(Math.fround(x[c])));
      if (Number.isNaN(amax)) amax = 0;
      if (clamp !== undefined) amax = Math.min(amax, Math.fround(clamp));
      const scale = amax === 0 ? 1 : Math.fround(amax / 448);
      scales[t * G + g] = scale;
      for (let c = c0; c < c1; c++) q[c] = f32ToE4m3(Math.fround(Math.fround(x[c]) / scale), true);
    }
  }
  return { q, scales };
}

/**
 * Quantises activations as {@link quantizeActivationsFp8} and dequantises
 * them again (`e4m3 value * scale` in f32): the values a w8a8 GEMM sees.
 *
 * @example
 * ```ts
 * const xq = fakeQuantizeActivationsFp8(x, T, H, { group: 128 });
 * ```
 */
export function fakeQuantizeActivationsFp8(x: ArrayLike<number>, T: number, H: number, opts: ActQuantOptions = {}): Float32Array {
  const group = opts.group ?? 128;
  const { q, scales } = quantizeActivationsFp8(x, T, H, opts);
  const G = Math.ceil(H / group);
  const v = toFloat32('float8_e4m3fn', q);
  const out = new Float32Array(T * H);
  for (let t = 0; t < T; t++) for (let c = 0; c < H; c++) out[t * H + c] = v[t * H + c] * scales[t * G + Math.floor(c / group)];
  return out;
}

/** Decodes one fp8 code of `format` (convenience for tests and references). @example `fp8Value('float8_e4m3fn', 0x7e) // 448` */
export function fp8Value(format: Fp8Format, code: number): number {
  return format === 'float8_e4m3fn' ? e4m3ToF32(code) : e5m2ToF32(code);
}
