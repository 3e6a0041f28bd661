/**
 * What a forward must move and compute: the floors the bench compares
 * against. Formulas (documented in README.md):
 * - expected distinct experts of T tokens, uniform routing: E * (1 - (1 - k/E)^T)
 * - weight bytes: hit experts * 3*H*I * bytes(dtype) (+ fp8 block scales),
 *   shared experts 3*H*(S*I) * bytes, router E*H * bytes (+ biases); fp8 rows:
 *   router and shared experts in bf16
 * - activation bytes: x in and y out, f32: 2*T*H*4
 * - flops: 2*T*k*(2I*H + H*I) + router 2*T*H*E + shared 2*T*3*H*(S*I)
 */
import { dtypeBytes, type BenchDtype, type ModelSpec } from './models.js';

/**
 * Expected number of distinct experts hit by T tokens each picking k of E
 * uniformly at random (without replacement per token).
 * @example `expectedDistinctExperts(8, 2, 1) // 2`
 */
export function expectedDistinctExperts(E: number, k: number, T: number): number {
  return E * (1 - Math.pow(1 - k / E, T));
}

/** Number of distinct values in routing indices idx[T*k]. @example `distinctExperts(new Uint32Array([0, 3, 3, 1])) // 3` */
export function distinctExperts(idx: ArrayLike<number>): number {
  return new Set(Array.from(idx)).size;
}

/** Bytes and flops of one forward. */
export interface Work {
  /** Weight bytes read (hit experts + shared + router + biases). */
  weightBytes: number;
  /** Activation bytes: x read and y written (f32). */
  actBytes: number;
  /** weightBytes + actBytes. */
  bytes: number;
  /** Floating-point operations (multiply-add = 2). */
  flops: number;
  /** flops / bytes. */
  intensity: number;
}

/**
 * Bytes and flops of a forward of T tokens when `hit` distinct experts are
 * touched.
 * @example `work(MODELS[0], 'bf16', 1, 2).flops`
 */
export function work(m: ModelSpec, dtype: BenchDtype, T: number, hit: number): Work {
  const { H, I, E, k, shared } = m;
  const b = dtypeBytes(dtype);
  const expertElems = 3 * H * I;
  // fp8 experts carry one f32 scale per 128x128 block of gate_up [2I,H] and down [H,I]
  const scales = dtype === 'fp8' ? (Math.ceil((2 * I) / 128) * Math.ceil(H / 128) + Math.ceil(H / 128) * Math.ceil(I / 128)) * 4 : 0;
  const biasBytes = m.bias ? (2 * I + H) * 4 : 0;
  const routerBytes = E * H * (dtype === 'fp8' ? 2 : b) + (m.bias ? E * 4 : 0);
  // fp8 rows: routed experts fp8 with block scales; router and shared experts bf16
  const sharedBytes = shared * expertElems * (dtype === 'fp8' ? 2 : b);
  const weightBytes = hit * (expertElems * b + scales + biasBytes) + sharedBytes + routerBytes;
  const actBytes = 2 * T * H * 4;
  const flops = 2 * T * k * (2 * I * H + H * I) + 2 * T * H * E + 2 * T * 3 * H * shared * I;
  const bytes = weightBytes + actBytes;
  return { weightBytes, actBytes, bytes, flops, intensity: flops / bytes };
}

/** GB/s from bytes and milliseconds. @example `gbps(1e9, 1000) // 1` */
export function gbps(bytes: number, ms: number): number {
  return bytes / ms / 1e6;
}

/** TFLOP/s from flops and milliseconds. @example `tflops(1e12, 1000) // 1` */
export function tflops(flops: number, ms: number): number {
  return flops / ms / 1e9;
}
