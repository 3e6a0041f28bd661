import { ShardingError } from './errors.js';

/** A half-open index range `[start, end)` along one axis. */
export type IndexRange = readonly [start: number, end: number];

/** Checks that `n` is a positive integer number of shards and `i` one of them. */
export function checkShardIndex(i: number, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ShardingError('number of shards', 'a positive integer', n);
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new ShardingError('shard index', `an integer in [0, ${n})`, i);
}

/**
 * The range of shard `i` of `n` along a dimension of size `dim`, as in MAX:
 * the dimension is cut into `n` contiguous pieces; with `r = dim mod n`, the
 * first `r` shards get one element more than the others
 * (`ceil(dim/n)` vs `floor(dim/n)`). With `unit > 1` the cut happens in
 * whole units of `unit` elements (quantisation blocks, e.g. 32 for MXFP4 or
 * 128 for block-scaled fp8): the `ceil(dim/unit)` units are split as above
 * and the last unit may be partial. Shards can be empty when `n` exceeds the
 * number of units.
 *
 * @example
 * ```ts
 * shardRange(10, 0, 3) // [0, 4]
 * shardRange(10, 1, 3) // [4, 7]
 * shardRange(10, 2, 3) // [7, 10]
 * shardRange(96, 1, 2, 32) // [64, 96]  (3 blocks of 32: 2 + 1)
 * ```
 */
export function shardRange(dim: number, i: number, n: number, unit = 1): [number, number] {
  checkShardIndex(i, n);
  if (!Number.isInteger(dim) || dim < 0) throw new ShardingError('dimension to shard', 'a non-negative integer', dim);
  if (!Number.isInteger(unit) || unit < 1) throw new ShardingError('shard unit', 'a positive integer', unit);
  const units = Math.ceil(dim / unit);
  const base = Math.floor(units / n);
  const rem = units % n;
  const s = i < rem ? i * (base + 1) : rem * (base + 1) + (i - rem) * base;
  const e = s + (i < rem ? base + 1 : base);
  return [Math.min(dim, s * unit), Math.min(dim, e * unit)];
}

/**
 * The sizes of all `n` shards of a dimension (see {@link shardRange}).
 *
 * @example
 * ```ts
 * shardSizes(10, 3) // [4, 3, 3]
 * ```
 */
export function shardSizes(dim: number, n: number, unit = 1): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const [s, e] = shardRange(dim, i, n, unit);
    out.push(e - s);
  }
  return out;
}
