/**
 * Small helpers shared by the routing, grouping, combine and linear ops:
 * output allocation (from a pool when given) and input checks.
 */
import type { DType } from '@webmoe/tensor';
import { ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';

/**
 * A fresh output tensor: from `pool` when given, else with its own buffer.
 * The caller owns it.
 *
 * @example
 * ```ts
 * const y = allocOutput(ctx, opts.pool, 'float32', [T, N], 'linear.out');
 * ```
 */
export function allocOutput(ctx: GpuContext, pool: BufferPool | undefined, dtype: DType, shape: readonly number[], label: string): GpuTensor {
  return pool ? pool.tensor(dtype, shape, label) : GpuTensor.empty(ctx, dtype, shape, label);
}

/** Throws a ShapeError unless `shape` is 2-D. Returns [rows, cols]. @example `const [T, K] = expect2d('x', x.shape)` */
export function expect2d(what: string, shape: readonly number[]): [number, number] {
  if (shape.length !== 2) throw new ShapeError(what, 'a 2-D shape [rows, cols]', shape);
  return [shape[0], shape[1]];
}

/**
 * Throws a ValueError naming the input if any of `tensors` was destroyed, so
 * that an op fails before it allocates or records anything.
 * @example `expectLive('linearGpu', { x, w, bias })`
 */
export function expectLive(op: string, tensors: Readonly<Record<string, GpuTensor | null | undefined>>): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (t && t.destroyed) throw new ValueError(`${op} ${name}`, 'a tensor that is not destroyed', `a destroyed ${t.dtype} [${t.shape.join(', ')}] tensor`);
  }
}

/** Throws a ValueError unless `v` is an integer in [lo, hi]. @example `expectInt('k', k, 1, 32)` */
export function expectInt(what: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new ValueError(what, `an integer in [${lo}, ${hi}]`, v);
}
