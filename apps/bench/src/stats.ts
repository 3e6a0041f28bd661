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

/** How warmUntilSteady decides that the steps stopped getting faster. */
export interface SteadyRule {
  /** Steps at least, after the calibration (a step is timed by the host clock). */
  minSteps: number;
  /** Stop after this much wall time (calibration included) even if still getting faster. */
  maxMs: number;
  /** The last `window` steps must each be at least (1 - tolerance) x the fastest step before them. */
  window: number;
  tolerance: number;
  /** Repetitions per step double until one step takes this long (host-clock jitter stays well under `tolerance`). */
  minStepMs: number;
}

/**
 * The bench's rule: steps of at least 10 ms, at least 3 of them, until 2 in a row are no more than 3% faster than the
 * best before them, at most 3 s.
 */
export const STEADY: Readonly<SteadyRule> = { minSteps: 3, maxMs: 3000, window: 2, tolerance: 0.03, minStepMs: 10 };

/**
 * Untimed work until it stops getting faster. `run(reps)` does `reps` repetitions of the work and waits for them
 * (e.g. reps forwards back to back, then a queue drain). Calibration: reps doubles from 1 until one step takes
 * `rule.minStepMs`; then steps of that many repetitions, at least `rule.minSteps`, until none of the last
 * `rule.window` steps beats the fastest step before them by more than `rule.tolerance` (the GPU's clocks have
 * ramped up), or `rule.maxMs` of wall time passed. A fixed warm-up was not always enough: on an H100 a process's
 * first row after a few idle seconds (weights generated on the CPU) timed 2.5-3x slow through all its iterations
 * after a 300 ms burn and 8 warm-up forwards while the back-to-back chain right after it ran at the normal speed, and
 * prefill-bench's first timing of each path after its compile was 1.3-3.4x its second (session 25). `now`: the
 * clock (tests). Returns the repetitions per step and each step's time in ms (calibration steps first).
 * @example `await warmUntilSteady(async (n) => { forwards(n); await ctx.sync(); })`
 */
export async function warmUntilSteady(run: (reps: number) => Promise<void>, rule: Readonly<SteadyRule> = STEADY, now: () => number = () => performance.now()): Promise<{ reps: number; times: number[] }> {
  const t0 = now();
  const step = async (reps: number) => {
    const s = now();
    await run(reps);
    return now() - s;
  };
  const over = () => now() - t0 >= rule.maxMs;
  let reps = 1;
  const calibration: number[] = [];
  for (;;) {
    calibration.push(await step(reps));
    if (calibration[calibration.length - 1] >= rule.minStepMs || over()) break;
    reps *= 2;
  }
  const times: number[] = [];
  const improving = () => {
    if (times.length < Math.max(rule.minSteps, rule.window + 1)) return true;
    const before = Math.min(...times.slice(0, times.length - rule.window));
    return times.slice(-rule.window).some((t) => t < (1 - rule.tolerance) * before);
  };
  while (!over()) {
    times.push(await step(reps));
    if (!improving()) break;
  }
  return { reps, times: [...calibration, ...times] };
}

/** A row whose device median passes its back-to-back wall time per forward by this factor is timed again (timedTwiceIfAboveWall). */
export const DEVICE_OVER_WALL = 1.15;

/**
 * The bench's self-check of a row's timing. `measure` gives the row's device times (`dev`, ms per forward; empty
 * without timestamps) and the wall time per forward of back-to-back forwards drained once (`wallMs`), which includes
 * their device time: a device median above DEVICE_OVER_WALL x wallMs means the GPU ran slower while timed than right
 * after (its clocks moved). Such a measurement is taken again, once; `note` says what happened (the first try's
 * numbers, and whether the second was steady). Returns the measurement the row reports.
 * @example `const { m, note } = await timedTwiceIfAboveWall(measure)`
 */
export async function timedTwiceIfAboveWall<M extends { dev: readonly number[]; wallMs: number }>(measure: () => Promise<M>): Promise<{ m: M; note?: string }> {
  const above = (x: M) => x.dev.length > 0 && median(x.dev) > DEVICE_OVER_WALL * x.wallMs;
  const m = await measure();
  if (!above(m)) return { m };
  const first = `device median ${median(m.dev).toPrecision(3)} ms above the back-to-back wall time ${m.wallMs.toPrecision(3)} ms per forward`;
  const again = await measure();
  return {
    m: again,
    note: above(again) ? `timing not steady: ${first}, and again on a second try (device ${median(again.dev).toPrecision(3)}, wall ${again.wallMs.toPrecision(3)} ms)` : `re-timed: on the first try the ${first}`,
  };
}
