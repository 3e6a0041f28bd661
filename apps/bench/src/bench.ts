/**
 * The bench loop: for each (model, dtype, tokens) builds the layer once per
 * (model, dtype), runs warm-up and timed forwards, and turns the times into
 * a ResultRow (stats, bytes and flops, per-kernel breakdown).
 */
import { Recorder, type GpuContext, type GpuTensor, type KernelTiming } from '@webmoe/kernels-wgsl';
import { STACK_BUDGET_GIB, type BenchOptions } from './args.js';
import { measureCopyCpu, measureCopyGpu } from './copybw.js';
import { createHostLayer, hostForward, storedHostLayer } from './host-layer.js';
import type { BenchDevice } from './device.js';
import { randomGpuTensor, randomWords } from './fill.js';
import { distinctExperts, expectedDistinctExperts, gbps, rowsPerExpert, tflops, work, type RowsPerExpert } from './metrics.js';
import { createLayer, createStackLayers, IMPL, routingOf, runMoE, type GpuLayer } from './moe-run.js';
import { CHECK_TOL, checkFailure, checkForward, type RowCheck } from './check.js';
import { stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { profileStages } from './stage-profile.js';
import { hostForwardMs, sameBits, perLayerChain, stackChain } from './chain.js';
import type { MoE } from '@webmoe/moe';
import { findModel, type BenchDtype, type ModelSpec } from './models.js';
import { memoryLine } from './expert-gen.js';
import { burnGpu, measureFmaCpu, measureFmaGpu } from './peak.js';
import { Progress } from './progress.js';
import { SCHEMA, type BenchReport, type KernelTime, type ResultRow } from './schema.js';
import { median, summarize, timedTwiceIfAboveWall, warmUntilSteady, warmUp } from './stats.js';

/** The CPU path skips layers with more weight bytes than this (host memory). */
export const CPU_MAX_WEIGHT_BYTES = 1 << 30;
/** ... and rows with more flops than this over all their forwards (scalar JS runs ~0.3 GFLOP/s). */
export const CPU_MAX_FLOPS = 200e9;

/**
 * The (model, dtype) pairs of a run: `--dtypes`, else each model's
 * checkpoint dtypes, plus int4 when the onnxruntime peer (int4 QMoE) runs,
 * so that our int4 rows sit beside the peer's.
 * @example `plan({ models: ['gpt-oss-20b'], dtypes: [], peer: 'onnxruntime' }) // bf16, mxfp4, int4`
 */
export function plan(o: Pick<BenchOptions, 'models' | 'dtypes' | 'peer'>): { spec: ModelSpec; dtype: BenchDtype }[] {
  const out: { spec: ModelSpec; dtype: BenchDtype }[] = [];
  for (const id of o.models) {
    const spec = findModel(id);
    const ds: BenchDtype[] = o.dtypes.length ? o.dtypes : [...spec.dtypes, ...(o.peer === 'onnxruntime' && !spec.dtypes.includes('int4') ? (['int4'] as const) : [])];
    for (const dtype of ds) out.push({ spec, dtype });
  }
  return out;
}

/**
 * Per-kernel medians over iterations of the per-forward summed time of each
 * kernel name; `share` is relative to the sum of those medians (the
 * breakdown forwards run one pass per dispatch, so they are slower than
 * the row's median).
 */
export function kernelBreakdown(perIter: KernelTiming[][]): KernelTime[] {
  const names: string[] = [];
  const calls = new Map<string, number>();
  for (const it of perIter) for (const t of it) if (!names.includes(t.name)) names.push(t.name);
  for (const t of perIter[0] ?? []) calls.set(t.name, (calls.get(t.name) ?? 0) + 1);
  const rows = names.map((name) => {
    const ms = perIter.map((it) => it.filter((t) => t.name === name).reduce((s, t) => s + t.ns, 0) / 1e6);
    return { name, medianMs: median(ms), calls: calls.get(name) ?? 0, share: NaN };
  });
  const total = rows.reduce((s, r) => s + r.medianMs, 0);
  for (const r of rows) r.share = total > 0 ? r.medianMs / total : NaN;
  return rows;
}

function failedRow(spec: ModelSpec, T: number, dtype: string, device: string, impl: string, e: unknown): ResultRow {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { model: spec.name, tokens: T, dtype, device, impl, medianMs: NaN, p10Ms: NaN, p90Ms: NaN, gbps: NaN, tflops: NaN, kernels: [], error: msg.slice(0, 400) };
}

/** Fills the derived columns of a row from its median time. */
export function finishRow(row: ResultRow, spec: ModelSpec, dtype: BenchDtype, hit: number, hitSource: string, copyGBps: number, peakTflops?: number): ResultRow {
  const w = work(spec, dtype, row.tokens, hit);
  row.bytes = w.bytes;
  row.weightBytes = w.weightBytes;
  row.flops = w.flops;
  row.intensity = w.intensity;
  row.expertsHit = hit;
  row.expertsHitSource = hitSource;
  row.gbps = gbps(w.bytes, row.medianMs);
  row.tflops = tflops(w.flops, row.medianMs);
  row.copyRatio = row.gbps / copyGBps;
  row.floorMs = w.bytes / copyGBps / 1e6;
  if (peakTflops && Number.isFinite(peakTflops)) row.computeFloorMs = w.flops / peakTflops / 1e9;
  if (spec.scaledFrom) row.note = [row.note, `scaled down: H, I, E of ${spec.scaledFrom.model} divided by ${spec.scaledFrom.divisor}`].filter(Boolean).join('; ');
  return row;
}

/**
 * The caller's-view columns of a row (see ResultRow.wallGpuMs): a chain of
 * `o.stack` layers over `layers` as per-layer calls and as one MoEStack,
 * and forward(Float32Array). A failure leaves the columns out and says why in the note.
 */
async function callerColumns(ctx: GpuContext, row: ResultRow, moe: MoE, layers: readonly MoE[], x: GpuTensor, o: BenchOptions): Promise<void> {
  try {
    // --quick (lavapipe): 2 chains after the warm-up chain
    const chains = o.quick ? 2 : Math.max(3, Math.min(o.iters, 10));
    const a = await perLayerChain(ctx, layers, o.stack, x, chains);
    const b = await stackChain(ctx, layers, o.stack, x, chains);
    Object.assign(row, { wallGpuMs: a.wallMs, hostUs: a.hostUs, wallStackMs: b.wallMs, stackHostUs: b.hostUs, stack: o.stack, stackLayers: layers.length, hostClock: a.hostClock });
    const xs = (await x.download()).data as Float32Array;
    // the device path's output of the same x: each host column is published only if its output has the same bits
    const yg = moe.forwardGpuSync(x);
    const want = (await yg.download()).data as Float32Array;
    yg.destroy();
    const fresh = await hostForwardMs(moe, xs, Math.max(3, o.iters));
    sameBits('forward(Float32Array)', fresh.y, want);
    row.wallHostMs = fresh.ms;
    const kept = await hostForwardMs(moe, xs, Math.max(3, o.iters), 'out');
    sameBits('forward(Float32Array, { out })', kept.y, want);
    row.wallHostOutMs = kept.ms;
  } catch (e) {
    row.note = [row.note, `caller columns failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 300)].filter(Boolean).join('; ');
  }
}

/** Forwards per drain in the warm-up. */
const WARMUP_BATCH = 8;

async function gpuRow(ctx: GpuContext, layer: GpuLayer, T: number, o: BenchOptions, device: string, copyGBps: number, peakTflops: number, stackLayers: readonly MoE[] | undefined, software: boolean): Promise<ResultRow> {
  const { spec, dtype } = layer;
  const x = randomGpuTensor(ctx, 'float32', [T, spec.H], 7 + T, 'f32', 'x');
  try {
    // first forward inside error scopes: validation errors fail the row with their message
    let hit = NaN;
    let expertRows: RowsPerExpert | undefined;
    let check: RowCheck | undefined;
    await ctx.checked(`${spec.name} T=${T} forward`, async () => {
      const rec = new Recorder(ctx, { label: 'bench.check' });
      // the kernels this forward dispatched decide the check's tolerance (f16-staged matrix GEMMs round x and w to f16)
      const { result: f, dispatched } = await withDispatchLog(async () => runMoE(ctx, layer, rec, x));
      rec.submit();
      // a forward that produces NaN/inf is a broken row, not a number to report
      const y = (await f.out.download()).data as Float32Array;
      f.release();
      const bad = y.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`the forward produced a non-finite output (${y[bad]} at element ${bad} of ${y.length})`);
      const idx = await routingOf(ctx, layer, x, new Recorder(ctx, { label: 'bench.routing' }));
      hit = distinctExperts(idx);
      expertRows = rowsPerExpert(idx, spec.E);
      // the row's check: this very forward (same layer, kernels and T) against the float64 reference
      check = await checkForward(spec, layer.stored, (await x.download()).data as Float32Array, y, idx, stagedTol(dispatched, CHECK_TOL));
    });
    const ts = ctx.features.timestampQuery;
    // one forward recorded and submitted (its scratch goes back to the pool right away: the next forward reuses it in
    // queue order)
    const submitForward = (opts?: ConstructorParameters<typeof Recorder>[1]) => {
      const rec = new Recorder(ctx, opts);
      const f = runMoE(ctx, layer, rec, x);
      rec.submit();
      f.release();
      return rec;
    };
    // `n` forwards recorded with `timestamps`, submitted back to back and drained once (or, `drainEach`, each drained
    // and read back before the next), and the timings of each
    const timedForwards = async (n: number, timestamps: true | 'total', label: string, drainEach = false): Promise<KernelTiming[][]> => {
      const timings: KernelTiming[][] = [];
      const pending: Recorder[] = [];
      for (let i = 0; i < n; i++) {
        const rec = submitForward({ timestamps, label });
        if (!drainEach) pending.push(rec);
        else {
          await ctx.sync();
          timings.push(await rec.timings());
        }
      }
      await ctx.sync();
      for (const rec of pending) timings.push(await rec.timings());
      return timings;
    };
    // n forwards back to back, drained once
    const forwards = async (n: number) => {
      for (let i = 0; i < n; i++) submitForward();
      await ctx.sync();
    };
    // One measurement of the row: warm-up, timed forwards, breakdown, stage profile, back-to-back wall time.
    const measure = async () => {
      // the GPU idled through the check: a burn raises its clocks again (peak.ts burnGpu), then warm-up batches until
      // they stop getting faster (stats.ts warmUntilSteady); a software adapter has no clocks to raise (and the burn
      // would take seconds there): a fixed count
      if (!software) {
        if (o.warmupMs > 0) await burnGpu(ctx, o.warmupMs);
        await forwards(Math.max(0, o.warmup - 1));
        await warmUntilSteady(forwards);
      } else await warmUp(Math.ceil((o.warmup - 1) / WARMUP_BATCH), 0, () => forwards(WARMUP_BATCH));
      let dev: number[] = [];
      const walls: number[] = [];
      if (ts) {
        // timed forwards: all dispatches in one pass, timed as a whole ('total'), back to back so the GPU does not idle
        // between them (a drain and a readback per forward let its clocks drop: a 1-2 ms forward then timed ~3x slow on
        // some iterations, medians between the two modes; H100 2026-12-06, session 24); --drain-each as before (A/B runs)
        dev = (await timedForwards(o.iters, 'total', 'bench.forward', o.drainEach)).filter((t) => t.length).map((t) => t.reduce((s, k) => s + k.ns, 0) / 1e6);
      } else {
        // no timestamps: the host clock per forward, submit to queue drain
        for (let i = 0; i < o.iters; i++) {
          const rec = new Recorder(ctx, { label: 'bench.forward' });
          const f = runMoE(ctx, layer, rec, x);
          const t0 = performance.now();
          rec.submit();
          await ctx.sync();
          walls.push(performance.now() - t0);
          f.release();
        }
      }
      // per-kernel breakdown: separate forwards with one pass per dispatch (each pass boundary adds a barrier), back to back
      const perIter = ts ? await timedForwards(Math.min(o.iters, 5), true, 'bench.breakdown') : [];
      // --profile-stages: the library's forward step by step, one timestamped pass per dispatch
      const stageProfile = o.profileStages ? (layer.moe ? await profileStages(ctx, layer.moe, layer.pool, x, Math.min(o.iters, 5)) : { available: false as const, reason: `the '${layer.impl}' forward is not an MoE layer` }) : undefined;
      // back-to-back forwards, one drain: wall time per forward without the per-forward sync
      const nb = Math.max(1, o.iters);
      const t0 = performance.now();
      await forwards(nb);
      return { dev, walls, perIter, stageProfile, wallMs: (performance.now() - t0) / nb };
    };
    // the row's self-check of its timing (stats.ts timedTwiceIfAboveWall): a device median above the back-to-back wall
    // time per forward is timed again, once, and the row says so. Not on a software adapter, whose timestamps do not
    // bound the back-to-back wall time (lavapipe: T = 128 rows timed 165 ms, 139 ms per forward back to back)
    const { m, note: timingNote } = software ? { m: await measure(), note: undefined } : await timedTwiceIfAboveWall(measure);
    const { dev, walls, perIter, stageProfile, wallMs } = m;
    if (ts && dev.length !== o.iters) throw new Error(`timestamp queries gave times for ${dev.length} of ${o.iters} timed forwards`);
    const s = summarize(ts ? dev : walls);
    const row: ResultRow = {
      model: spec.name, tokens: T, dtype, device, impl: layer.impl,
      medianMs: s.median, p10Ms: s.p10, p90Ms: s.p90, minMs: s.min, maxMs: s.max,
      timing: ts ? 'timestamp' : 'wall', wallMs, gbps: NaN, tflops: NaN,
      kernels: perIter.length ? kernelBreakdown(perIter) : [],
      stageProfile,
    };
    if (layer.moe) await callerColumns(ctx, row, layer.moe, stackLayers ?? [layer.moe], x, o);
    else row.note = `no caller columns: the '${layer.impl}' forward is not an MoE layer`;
    if (timingNote) row.note = [row.note, timingNote].filter(Boolean).join('; ');
    const errs = ctx.takeUncapturedErrors();
    if (errs.length) throw new Error(`uncaptured GPU errors: ${errs.join('; ')}`);
    row.check = check;
    row.rowsPerExpert = expertRows;
    if (layer.memory) Object.assign(row, { gpuBytes: layer.memory.gpu.total, packedBytes: layer.memory.packed, chunks: layer.memory.chunks });
    if (check && !check.pass) row.error = checkFailure(check);
    return finishRow(row, spec, dtype, Number.isFinite(hit) ? hit : expectedDistinctExperts(spec.E, spec.k, T), Number.isFinite(hit) ? 'routing' : 'expected-uniform', copyGBps, peakTflops);
  } finally {
    x.destroy();
  }
}

async function cpuRow(spec: ModelSpec, dtype: BenchDtype, T: number, o: BenchOptions, copyGBps: number, layer: MoE, peakTflops: number): Promise<ResultRow> {
  const x = new Float32Array(randomWords('f32', T * spec.H, 7 + T).buffer);
  // the row's check: this forward against the float64 reference reading the same tensors
  const first = hostForward(layer, x, T);
  const check = await checkForward(spec, storedHostLayer(layer), x, first.out, first.idx);
  const hit = distinctExperts(first.idx);
  for (let i = 0; i < o.warmup; i++) layer.forwardHost(x, T);
  const walls: number[] = [];
  for (let i = 0; i < o.iters; i++) {
    const t0 = performance.now();
    layer.forwardHost(x, T);
    walls.push(performance.now() - t0);
  }
  const s = summarize(walls);
  const row: ResultRow = {
    model: spec.name, tokens: T, dtype, device: 'cpu', impl: 'cpu', medianMs: s.median, p10Ms: s.p10, p90Ms: s.p90, minMs: s.min, maxMs: s.max,
    timing: 'wall', gbps: NaN, tflops: NaN, kernels: [], check, rowsPerExpert: rowsPerExpert(first.idx, spec.E),
    stageProfile: o.profileStages ? { available: false, reason: 'a CPU row (the host forward has no device timestamps)' } : undefined,
  };
  if (!check.pass) row.error = checkFailure(check);
  return finishRow(row, spec, dtype, hit, 'routing', copyGBps, peakTflops);
}

/**
 * The CPU path's rows of one (model, dtype): a host layer (the same random weights as the GPU rows) timed at each T,
 * pushed onto `results`. Rows beyond the CPU budgets are skipped visibly (a row error), not run for hours.
 */
async function cpuRows(spec: ModelSpec, dtype: BenchDtype, o: BenchOptions, roofs: { copyGBps: number; peakTflops: number }, results: ResultRow[], p: Progress): Promise<void> {
  const hostBytes = work(spec, dtype, 1, spec.E).weightBytes;
  const layer = hostBytes <= CPU_MAX_WEIGHT_BYTES ? createHostLayer(spec, dtype) : undefined;
  for (const T of o.tokens) {
    p.start(`${spec.name} ${dtype} T=${T} (CPU path)`);
    const flops = work(spec, dtype, T, spec.k).flops * (o.iters + o.warmup);
    try {
      if (!layer) throw new Error(`skipped on the CPU path: ${(hostBytes / 2 ** 30).toFixed(1)} GiB of weights (limit ${CPU_MAX_WEIGHT_BYTES / 2 ** 30} GiB); use a WebGPU adapter or a scaled shape (<model>/sN)`);
      if (flops > CPU_MAX_FLOPS) throw new Error(`skipped on the CPU path: ${(flops / 1e9).toFixed(0)} GFLOP for this row (limit ${CPU_MAX_FLOPS / 1e9}); use fewer --tokens/--iters or a scaled shape`);
      results.push(await cpuRow(spec, dtype, T, o, roofs.copyGBps, layer, roofs.peakTflops));
    } catch (e) {
      results.push(failedRow(spec, T, dtype, 'cpu', 'cpu', e));
    }
    p.tick(`${spec.name} ${dtype} T=${T} (CPU path)`);
  }
  layer?.destroy();
}

/** Whether the CPU path's rows run beside `device`'s: on lavapipe, where `o.cpuRows` asks for them. */
function cpuRowsBeside(o: BenchOptions, device: BenchDevice): boolean {
  return device.kind === 'lavapipe' && o.cpuRows === true;
}

/**
 * The rows a run of `o` on `device` times: every (model, dtype, T), twice where the CPU path's rows run beside.
 * @example `new Progress(plannedRows(o, device) + 2)`
 */
export function plannedRows(o: BenchOptions, device: BenchDevice): number {
  return plan(o).length * o.tokens.length * (cpuRowsBeside(o, device) ? 2 : 1);
}

/**
 * Runs the whole bench on `device` and returns the report. `onRow` sees the
 * report so far after every GPU row (the CLI writes --json from it, so a run
 * cut short keeps the rows it finished).
 * @example `const report = await runBench(parseArgs(['--quick']), await openDevice('auto'))`
 */
export async function runBench(o: BenchOptions, device: BenchDevice, progress = new Progress(0), onRow?: (partial: BenchReport) => void): Promise<BenchReport> {
  const pairs = plan(o);
  const cpuBeside = cpuRowsBeside(o, device);
  const p = progress.total ? progress : new Progress(plannedRows(o, device) + 2);
  const results: ResultRow[] = [];
  let copyGBps = NaN;
  let peakTflops = NaN;
  const report = (rows: ResultRow[]): BenchReport => ({
    schema: SCHEMA,
    device: device.name,
    deviceKind: device.kind,
    copyGBps,
    peakTflops,
    peakSource: device.kind === 'cpu' ? 'measured rate of the CPU kernels (linearCpu, f32 weights, 16 rows)' : 'measured WGSL f32 FMA rate (no tensor cores)',
    date: new Date().toISOString(),
    results: [...rows],
  });
  // the host's copy bandwidth and CPU-kernel rate, measured once where CPU rows run
  let host: { copyGBps: number; peakTflops: number } | undefined;
  const hostRoofs = () => {
    if (!host) {
      p.log('host copy bandwidth and CPU kernel rate');
      host = { copyGBps: measureCopyCpu(o.copyBytes ?? 32 << 20).gbps, peakTflops: measureFmaCpu() };
    }
    return host;
  };
  if (device.kind === 'cpu') {
    p.start('copy bandwidth (host)');
    ({ copyGBps, peakTflops } = hostRoofs());
    p.tick(`copy ${copyGBps.toFixed(1)} GB/s`);
    p.tick(`fma ${(peakTflops * 1000).toFixed(2)} GFLOP/s`);
    for (const { spec, dtype } of pairs) await cpuRows(spec, dtype, o, hostRoofs(), results, p);
  } else {
    const ctx = device.ctx;
    const soft = device.kind === 'lavapipe';
    p.start('copy bandwidth');
    // a GPU: 1 GiB copies, 8 per timed submission, after the rows' burn (copybw.ts: single copies without one read ~14%
    // low on H100s); a software adapter has no clocks to raise
    const copy = await measureCopyGpu(ctx, o.copyBytes ?? (soft ? 32 << 20 : 1 << 30), soft ? 5 : 10, soft ? {} : { chain: 8, burnMs: o.warmupMs });
    copyGBps = copy.gbps;
    p.tick(`copy ${copyGBps.toFixed(1)} GB/s (${(copy.bytes / 2 ** 20).toFixed(0)} MiB x ${copy.chain}, ${copy.timing})`);
    peakTflops = await measureFmaGpu(ctx, soft);
    p.tick(`fma ${peakTflops.toFixed(3)} TFLOP/s`);
    for (const { spec, dtype } of pairs) {
      let layer: GpuLayer | undefined;
      let stack: Awaited<ReturnType<typeof createStackLayers>> | undefined;
      let err: unknown;
      p.start(`${spec.name} ${dtype}: weights`);
      let stackNote: string | undefined;
      try {
        layer = await createLayer(ctx, spec, dtype);
        if (layer.memory) p.log(`${spec.name} ${dtype}: ${memoryLine(layer.memory)}`);
      } catch (e) {
        err = e;
      }
      // the distinct layers of the caller's-view chain (the row's own layer first)
      if (layer?.moe) {
        p.start(`${spec.name} ${dtype}: up to ${o.stack} stack layers`);
        try {
          stack = await createStackLayers(ctx, layer, o.stack, (o.stackGib ?? STACK_BUDGET_GIB[soft ? 'software' : 'gpu']) * 2 ** 30);
        } catch (e) {
          stackNote = `the chain reuses one layer: creating more failed (${e instanceof Error ? e.message : String(e)})`.slice(0, 300);
        }
      }
      for (const T of o.tokens) {
        p.start(`${spec.name} ${dtype} T=${T}`);
        if (!layer) results.push(failedRow(spec, T, dtype, device.name, IMPL, err));
        else {
          try {
            const row = await gpuRow(ctx, layer, T, o, device.name, copyGBps, peakTflops, stack?.layers, soft);
            if (stackNote) row.note = [row.note, stackNote].filter(Boolean).join('; ');
            results.push(row);
          } catch (e) {
            results.push(failedRow(spec, T, dtype, device.name, layer.impl, e));
          }
        }
        const r = results[results.length - 1];
        const mem = r.gpuBytes && r.chunks ? ` (${(r.gpuBytes / 1e9).toFixed(2)} GB, ${r.chunks.gateUp}+${r.chunks.down} chunks)` : '';
        p.tick(`${spec.name} ${dtype} T=${T}: ${r.error ? `FAILED: ${r.error.slice(0, 400)}` : r.medianMs.toFixed(3) + ' ms'}${mem}`);
        onRow?.(report(results));
      }
      stack?.destroy();
      layer?.destroy();
      // the next model's weights need this one's memory: a chain filled to the device's memory held it past a plain sync
      await ctx.reclaimMemory().catch(() => undefined);
      // a software adapter runs its kernels on the CPU: the CPU path's rows beside its own, same weights
      if (cpuBeside) await cpuRows(spec, dtype, o, hostRoofs(), results, p);
    }
  }
  p.done();
  return report(results);
}
