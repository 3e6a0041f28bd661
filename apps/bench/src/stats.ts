/** Order statistics of timing samples. */

/**
 * The q-quantile (0..1) of `xs` with linear interpolation between order
 * statistics (numpy's default): position q*(n-1) in the sorted samples.
 * @example `quantile([1, 2, 3, 4], 0.5) // 2.5`
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError('quantile of no samples');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const s = [...xs].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Median (the 0.5 quantile). @example `median([3, 1, 2]) // 2` */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Summary of samples. */
export interface Summary {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

/** Median, p10, p90, min and max. @example `summarize([1, 2, 3]).median // 2` */
export function summarize(xs: readonly number[]): Summary {
  return { median: quantile(xs, 0.5), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/**
 * Untimed calls of `step` until at least `minIters` ran and at least `minMs`
 * of wall time passed. The time floor matters on GPUs that lower their clocks
 * while idle (an H200 idles through a row's CPU-side float64 check and then
 * needs tens of ms of work to boost again: three warm-up forwards were not
 * enough and every kernel of the next row timed ~3x slow).
 * @example `await warmUp(3, 300, async () => { forward(); await ctx.sync(); })`
 */
export async function warmUp(minIters: number, minMs: number, step: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (n < minIters || performance.now() - t0 < minMs) {
    await step();
    n++;
  }
  return n;
}
