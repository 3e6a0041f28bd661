/**
 * `--profile-stages`: where a row's device time goes, step by step of the
 * library's forward (route, group, routed experts gate_up and down, shared
 * experts, combine). Each profiled forward is `@webmoe/moe`'s own
 * (`runMoEForward` over `gpuStages`, what `MoE.record` runs) recorded with one
 * timestamped pass per dispatch; `GpuStageRun.onStep` says where each step's
 * dispatches start, so every dispatch's time goes to the step that recorded it.
 * Without the `timestamp-query` feature (lavapipe, some browsers) the profile
 * says so and the row is otherwise unchanged.
 */
import { FORWARD_STEPS, gpuStages, runMoEForward, type ForwardStep, type MoE } from '@webmoe/moe';
import { Recorder, type BufferPool, type GpuContext, type GpuTensor, type KernelTiming } from '@webmoe/kernels-wgsl';

/** Where one step's dispatches start in a forward's dispatch order. */
export interface StepMark {
  step: ForwardStep;
  /** Dispatches recorded before the step began. */
  at: number;
}

/** One step's device time in a row's profile. */
export interface StageTime {
  stage: ForwardStep;
  /** The summed time of the step's dispatches in the median forward (the profiled forward whose total is the median): the steps sum to `totalMs`. */
  ms: number;
  /** The least time of the step over the profiled forwards (how much of `ms` is noise). */
  minMs: number;
  /** Dispatches of the step per forward (0: the step recorded nothing, e.g. no shared experts, or a grouping made by the fused decode routing). */
  dispatches: number;
  /** The step's kernels, in dispatch order (names repeat per chunk). */
  kernels: string[];
  /** ms / the profile's totalMs. */
  share: number;
}

/** A row's per-step profile, or why there is none. */
export type StageProfile =
  | {
      available: true;
      /** Every step of FORWARD_STEPS, in order. */
      stages: StageTime[];
      /** The median over the profiled forwards of the whole forward's summed dispatch time (one pass per dispatch: above the row's median, which times one pass). */
      totalMs: number;
      /** Profiled forwards. */
      iters: number;
    }
  | { available: false; reason: string };

/** One forward's dispatch times by step: each timing (in dispatch order) goes to the last step that began at or before it. */
export function attributeSteps(timings: readonly KernelTiming[], marks: readonly StepMark[]): Record<ForwardStep, { ns: number; kernels: string[] }> {
  const out = Object.fromEntries(FORWARD_STEPS.map((s) => [s, { ns: 0, kernels: [] as string[] }])) as Record<ForwardStep, { ns: number; kernels: string[] }>;
  if (timings.length && (!marks.length || marks[0].at !== 0)) throw new Error(`stage profile: ${marks.length ? marks[0].at : timings.length} dispatch(es) before the first step began`);
  for (let m = 0; m < marks.length; m++) {
    if (m > 0 && marks[m].at < marks[m - 1].at) throw new Error(`stage profile: step '${marks[m].step}' starts at dispatch ${marks[m].at}, before '${marks[m - 1].step}' (${marks[m - 1].at})`);
    const end = m + 1 < marks.length ? marks[m + 1].at : timings.length;
    const s = out[marks[m].step];
    for (let i = marks[m].at; i < Math.min(end, timings.length); i++) {
      s.ns += timings[i].ns;
      s.kernels.push(timings[i].name);
    }
  }
  return out;
}

/**
 * The profile of `perIter` forwards (each: its dispatch timings and step
 * marks): the steps of the median forward (by total time; the lower middle
 * one for an even count), so that they sum to its total, with each step's
 * least time over all forwards beside it.
 */
export function summarizeStages(perIter: readonly { timings: readonly KernelTiming[]; marks: readonly StepMark[] }[]): StageProfile {
  if (!perIter.length) return { available: false, reason: 'no forward was profiled' };
  const steps = perIter.map((it) => attributeSteps(it.timings, it.marks));
  const totals = perIter.map((it) => it.timings.reduce((s, t) => s + t.ns, 0) / 1e6);
  const mid = totals.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0])[(totals.length - 1) >> 1][1];
  const totalMs = totals[mid];
  const stages = FORWARD_STEPS.map((stage): StageTime => {
    const ms = steps[mid][stage].ns / 1e6;
    return { stage, ms, minMs: Math.min(...steps.map((s) => s[stage].ns / 1e6)), dispatches: steps[mid][stage].kernels.length, kernels: steps[mid][stage].kernels, share: totalMs > 0 ? ms / totalMs : NaN };
  });
  return { available: true, stages, totalMs, iters: perIter.length };
}

/**
 * Profiles `iters` forwards of `moe` on `x` step by step (each its own
 * Recorder, one timestamped pass per dispatch, synced). Without
 * timestamp-query, or with more dispatches than a Recorder can time, the
 * profile says why instead.
 * @example `row.stageProfile = await profileStages(ctx, moe, pool, x, 5)`
 */
export async function profileStages(ctx: GpuContext, moe: MoE, pool: BufferPool, x: GpuTensor, iters: number): Promise<StageProfile> {
  if (!ctx.features.timestampQuery) return { available: false, reason: `the adapter (${ctx.adapterName}) has no timestamp-query feature` };
  const perIter: { timings: KernelTiming[]; marks: StepMark[] }[] = [];
  for (let i = 0; i < iters; i++) {
    const rec = new Recorder(ctx, { timestamps: true, label: 'bench.stages' });
    let dispatches = 0;
    const dispatch = rec.dispatch.bind(rec);
    rec.dispatch = ((d) => {
      dispatches++;
      dispatch(d);
    }) as Recorder['dispatch'];
    const marks: StepMark[] = [];
    const scratch: { destroy(): void }[] = [];
    try {
      const out = runMoEForward(moe, gpuStages(moe, { rec, pool, scratch, wholeLayer: true, onStep: (step) => marks.push({ step, at: dispatches }) }), x);
      scratch.push(out);
      rec.submit();
      await ctx.sync();
    } finally {
      for (const s of scratch) s.destroy();
    }
    const timings = await rec.timings();
    if (timings.length !== dispatches) return { available: false, reason: `${dispatches} dispatches per forward, ${timings.length} timed (a Recorder times at most 256)` };
    perIter.push({ timings, marks });
  }
  return summarizeStages(perIter);
}

/** The profile as one line of the table's notes. @example `formatStageProfile(row.stageProfile)` */
export function formatStageProfile(p: StageProfile): string {
  if (!p.available) return `stage profile unavailable: ${p.reason}`;
  const f = (v: number) => (v >= 0.1 ? v.toFixed(3) : v.toPrecision(3));
  return p.stages.map((s) => `${s.stage} ${f(s.ms)} ms (${(s.share * 100).toFixed(0)}%, ${s.dispatches})`).join(', ') + ` | total ${f(p.totalMs)} ms (the median of ${p.iters} forwards)`;
}
