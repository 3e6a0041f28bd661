// The device-time loop of the GPU micro-benchmarks (gemv-bench.ts, prefill-bench.ts, decode-probe.ts): passes recorded
// each in a Recorder timed as a whole, medians over the timed iterations after untimed warm-up ones.
import { Recorder, type GpuContext } from '@webmoe/kernels-wgsl';

/** The median of a list (the upper one of an even count); NaN for an empty list. */
export function median(a: number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/**
 * Median device time (ms) of each pass: every iteration records each pass in a Recorder of its own
 * (`timestamps: 'total'`), submits them in order, reads their times, then calls `done` (e.g. frees the
 * outputs). The first `warmup` iterations are not timed, nor an iteration whose times the adapter did not give.
 * @example `const [gateUpMs, downMs] = await passTimesMs(ctx, { iters: 10, warmup: 2 }, [(r) => (h = gateUp(r)), (r) => (y = down(r, h))], () => { h.destroy(); y.destroy(); })`
 */
export async function passTimesMs(ctx: GpuContext, n: { iters: number; warmup: number }, passes: readonly ((rec: Recorder) => void)[], done: () => void = () => {}): Promise<number[]> {
  const times: number[][] = passes.map(() => []);
  for (let i = 0; i < n.warmup + n.iters; i++) {
    const recs = passes.map((record) => {
      const rec = new Recorder(ctx, { timestamps: 'total' });
      record(rec);
      rec.submit();
      return rec;
    });
    const ts = await Promise.all(recs.map((r) => r.timings()));
    done();
    if (i >= n.warmup && ts.every((t) => t[0])) ts.forEach((t, p) => times[p].push(t[0].ns / 1e6));
  }
  return times.map(median);
}

/**
 * Median device time (ms) per copy of what `record` records when `reps` copies run back to back in one pass (a pass's
 * time / reps; reps = 1: a lone pass, submitted and awaited): `record` returns what frees its outputs, called after
 * each iteration's timings are read.
 * @example `const ms = await chainedPassMs(ctx, { iters: 20, warmup: 5 }, 8, (r) => { const y = run(r); return () => y.destroy(); })`
 */
export async function chainedPassMs(ctx: GpuContext, n: { iters: number; warmup: number }, reps: number, record: (rec: Recorder) => () => void): Promise<number> {
  const frees: (() => void)[] = [];
  const [ms] = await passTimesMs(ctx, n, [(rec) => { for (let i = 0; i < reps; i++) frees.push(record(rec)); }], () => {
    for (const free of frees.splice(0)) free();
  });
  return ms / reps;
}
