// The device-time loop of the GPU micro-benchmarks (gemv-bench.ts, prefill-bench.ts, decode-probe.ts): passes recorded
// each in a Recorder timed as a whole, medians over the timed iterations after untimed warm-up ones.
import { Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { warmUntilSteady } from '../../apps/bench/src/stats.js';

/** The median of a list (the upper one of an even count); NaN for an empty list. */
export function median(a: number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median device time (ms) of each pass: every iteration records each pass in a Recorder of its own
 * (`timestamps: 'total'`); all iterations are submitted back to back and the queue drained once, then their times
 * are read and what each pass returned (what frees its outputs) is called. A drain and a readback after every
 * iteration, as before session 24, let the GPU's clocks drop between iterations (gemv-bench's lone passes timed
 * packed GEMVs 2-3.6x slower than the layer's forwards, session 22). Before them, untimed iterations until they stop
 * getting faster (warmUntilSteady: a path's first timing after its compile, which leaves the GPU idle, was 1.3-3.4x
 * its second, session 25); then the first `warmup` iterations are not timed,
 * nor an iteration whose times the adapter did not give. Every iteration's outputs live until the drain.
 * @example `const [gateUpMs, downMs] = await passTimesMs(ctx, { iters: 10, warmup: 2 }, [(r) => { h = gateUp(r); const mine = h; return () => mine.destroy(); }, (r) => { const y = down(r, h); return () => y.destroy(); }])`
 */
export async function passTimesMs(ctx: GpuContext, n: { iters: number; warmup: number }, passes: readonly ((rec: Recorder) => (() => void) | void)[]): Promise<number[]> {
  const times: number[][] = passes.map(() => []);
  // one iteration: each pass recorded in a Recorder of its own and submitted; what frees its outputs is collected
  const iteration = (timestamps: 'total' | false) => {
    const frees: (() => void)[] = [];
    const recs = passes.map((record) => {
      const rec = new Recorder(ctx, { timestamps });
      const free = record(rec);
      if (free) frees.push(free);
      rec.submit();
      return rec;
    });
    return { recs, frees };
  };
  await warmUntilSteady(async (reps) => {
    const its = Array.from({ length: reps }, () => iteration(false));
    await ctx.sync();
    for (const it of its) for (const free of it.frees) free();
  });
  const iterations = Array.from({ length: n.warmup + n.iters }, () => iteration('total'));
  await ctx.sync();
  for (const [i, { recs, frees }] of iterations.entries()) {
    const ts = await Promise.all(recs.map((r) => r.timings()));
    for (const free of frees) free();
    if (i >= n.warmup && ts.every((t) => t[0])) ts.forEach((t, p) => times[p].push(t[0].ns / 1e6));
  }
  return times.map(median);
}

/**
 * Median device time (ms) per copy of what `record` records when `reps` copies run back to back in one pass (a pass's
 * time / reps; reps = 1: one copy per pass), the passes timed by passTimesMs: `record` returns what frees its
 * outputs, called once the iteration's times are read.
 * @example `const ms = await chainedPassMs(ctx, { iters: 20, warmup: 5 }, 8, (r) => { const y = run(r); return () => y.destroy(); })`
 */
export async function chainedPassMs(ctx: GpuContext, n: { iters: number; warmup: number }, reps: number, record: (rec: Recorder) => () => void): Promise<number> {
  const [ms] = await passTimesMs(ctx, n, [
    (rec) => {
      const frees = Array.from({ length: reps }, () => record(rec));
      return () => frees.forEach((free) => free());
    },
  ]);
  return ms / reps;
}
