/**
 * What a forward must move and compute: the floors the bench compares
 * against. Formulas (documented in README.md):
 * - expected distinct experts of T tokens, uniform routing: E * (1 - (1 - k/E)^T)
 * - weight bytes: hit experts * (packed codes + scales of gate_up [2I,H] and
 *   down [H,I], see expertMatrixBytes; dense: 3*H*I * bytes(dtype)), shared
 *   experts 3*H*(S*I) * bytes, router E*H * bytes (+ biases); packed rows
 *   (fp8, int4, int8, mxfp4): router and shared experts in bf16
 * - activation bytes: x in and y out, f32: 2*T*H*4
 * - flops: 2*T*k*(2I*H + H*I) + router 2*T*H*E + shared 2*T*3*H*(S*I)
 */
import { dtypeBytes, expertMatrixBytes, isPacked, type BenchDtype, type ModelSpec } from './models.js';

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

/** Grouped rows per routed expert: the least, the most and the mean over experts 0..E-1 (an expert no token chose counts 0). */
export interface RowsPerExpert {
  min: number;
  max: number;
  mean: number;
}

/**
 * Rows per routed expert of routing indices idx[T*k] over E routed experts (indices >= E, shared-expert slots, are not
 * counted): what the prefill GEMMs' row tiles see (an expert past a tile's rows takes another tile).
 * @example `rowsPerExpert(new Uint32Array([0, 1, 1, 3]), 4) // { min: 0, max: 2, mean: 1 }`
 */
export function rowsPerExpert(idx: ArrayLike<number>, E: number): RowsPerExpert {
  const counts = new Array<number>(E).fill(0);
  let n = 0;
  for (let i = 0; i < idx.length; i++) {
    const e = idx[i];
    if (e < E) {
      counts[e]++;
      n++;
    }
  }
  return { min: Math.min(...counts), max: Math.max(...counts), mean: n / E };
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
  // dense parts (router, shared experts): the dtype itself, or bf16 for packed experts
  const b = isPacked(dtype) ? 2 : dtypeBytes(dtype);
  const expertElems = 3 * H * I;
  const gu = expertMatrixBytes(dtype, 2 * I, H);
  const dn = expertMatrixBytes(dtype, H, I);
  const expertBytes = gu.weights + gu.scales + dn.weights + dn.scales;
  const biasBytes = m.bias ? (2 * I + H) * 4 : 0;
  const routerBytes = E * H * b + (m.bias ? E * 4 : 0);
  const sharedBytes = shared * expertElems * b;
  const weightBytes = hit * (expertBytes + biasBytes) + sharedBytes + routerBytes;
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
