import { HostTensor, allocHost, type HostArray } from '@webmoe/tensor';
import { ShardingError } from './errors.js';
import type { IndexRange } from './range.js';

/** Normalises a possibly negative axis against `rank`; throws ShardingError when out of range. */
export function normalizeAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) throw new ShardingError(what, `an integer in [${-rank}, ${rank}) for a rank-${rank} tensor`, axis);
  return a;
}

function split(shape: readonly number[], axis: number): { outer: number; dim: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, dim: shape[axis], inner };
}

/**
 * The slices `ranges` of `t` along `axis`, concatenated along that axis in
 * the order given, as a new tensor of the same dtype (raw storage copied, no
 * conversion).
 *
 * @example
 * ```ts
 * const t = HostTensor.fromFloat32([4, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
 * takeRanges(t, 0, [[0, 1], [3, 4]]).toFloat32() // [0, 1, 6, 7]
 * ```
 */
export function takeRanges(t: HostTensor, axis: number, ranges: readonly IndexRange[]): HostTensor {
  const a = normalizeAxis(axis, t.shape.length);
  const { outer, dim, inner } = split(t.shape, a);
  let total = 0;
  for (const [s, e] of ranges) {
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e < s || e > dim) throw new ShardingError(`range along axis ${a}`, `0 <= start <= end <= ${dim}`, [s, e]);
    total += e - s;
  }
  const shape = [...t.shape];
  shape[a] = total;
  const out = allocHost(t.dtype, outer * total * inner);
  const src = t.data;
  let w = 0;
  for (let o = 0; o < outer; o++) {
    for (const [s, e] of ranges) {
      const from = (o * dim + s) * inner;
      const len = (e - s) * inner;
      (out as Uint8Array).set((src as Uint8Array).subarray(from, from + len), w);
      w += len;
    }
  }
  return new HostTensor(t.dtype, shape, out);
}

/**
 * Concatenates tensors of one dtype along `axis` (all other dims equal).
 *
 * @example
 * ```ts
 * concatAxis([a, b], 0) // a [2, 3] and b [1, 3] give [3, 3]
 * ```
 */
export function concatAxis(ts: readonly HostTensor[], axis: number): HostTensor {
  if (ts.length === 0) throw new ShardingError('concatAxis', 'at least one tensor', 0);
  const first = ts[0];
  const rank = first.shape.length;
  const a = normalizeAxis(axis, rank);
  for (const t of ts) {
    if (t.dtype !== first.dtype) throw new ShardingError('concatAxis dtype', first.dtype, t.dtype);
    if (t.shape.length !== rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShardingError('concatAxis shape', `[${first.shape.map((d, i) => (i === a ? '*' : d)).join(', ')}]`, `[${t.shape.join(', ')}]`);
    }
  }
  const total = ts.reduce((s, t) => s + t.shape[a], 0);
  const shape = [...first.shape];
  shape[a] = total;
  const { outer, inner } = split(first.shape, a);
  const out = allocHost(first.dtype, outer * total * inner) as HostArray;
  let w = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of ts) {
      const len = t.shape[a] * inner;
      (out as Uint8Array).set((t.data as Uint8Array).subarray(o * len, o * len + len), w);
      w += len;
    }
  }
  return new HostTensor(first.dtype, shape, out);
}
