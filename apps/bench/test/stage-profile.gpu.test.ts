import { describe, expect, it } from 'vitest';
import { testGpu, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { Recorder, useCombinedDownGemv, type GpuContext } from '@webmoe/kernels-wgsl';
import { parseArgs } from '../src/args.js';
import { runBench } from '../src/bench.js';
import { Progress } from '../src/progress.js';
import { randomGpuTensor } from '../src/fill.js';
import { createLayer, runMoE } from '../src/moe-run.js';
import { profileStages } from '../src/stage-profile.js';
import { formatTable } from '../src/table.js';
import { TINY } from '../src/models.js';

// On a WebGPU adapter (lavapipe in CI). Without one, testGpu() prints a visible
// SKIPPED line, and with CI=true it fails the suite instead.
const ctx = await testGpu();
const quiet = { write: () => true };

describe.runIf(ctx)('--profile-stages on a WebGPU adapter', () => {
  it('each row names every stage; the stages cover every dispatch of the forward and sum to its whole time', async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '1,37', '--dtypes', 'bf16', '--iters', '5', '--warmup', '1', '--copy-mib', '4', '--stack', '1', '--profile-stages']);
    const r = await runBench(o, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(3, quiet, false));
    const layer = await createLayer(ctx!, TINY, 'bf16');
    try {
      for (const x of r.results) {
        const what = `T=${x.tokens}`;
        expect(x.error, what).toBeUndefined();
        const p = x.stageProfile!;
        if (!ctx!.features.timestampQuery) {
          expect(p, what).toMatchObject({ available: false, reason: expect.stringMatching(/timestamp-query/) });
          continue;
        }
        if (!p.available) throw new Error(`${what}: ${p.reason}`);
        expect(p.stages.map((s) => s.stage), what).toEqual(['route', 'group', 'shared', 'gate_up', 'down', 'combine']);
        // every dispatch of the same forward, logged independently, lands in exactly one stage
        const xg = randomGpuTensor(ctx!, 'float32', [x.tokens, TINY.H], 3, 'f32', 'x');
        const rec = new Recorder(ctx!);
        const { result: f, dispatched } = await withDispatchLog(async () => runMoE(ctx!, layer, rec, xg));
        rec.submit();
        await ctx!.sync();
        f.release();
        xg.destroy();
        // tiny has a shared expert; T = 1 groups inside the fused decode routing, T = 37 in the group step; where the
        // planner puts the combine into the down GEMV (useCombinedDownGemv), the combine step records nothing
        const combined = dispatched.some((d) => d.kernel === 'moe_gemv' && d.variant.combine !== undefined);
        expect(combined, what).toBe(useCombinedDownGemv(x.tokens, 'auto', { software: ctx!.adapterInfo.software, packed: false }));
        for (const s of ['route', 'gate_up', 'down', 'shared', 'combine'] as const) {
          const n = p.stages.find((t) => t.stage === s)!.dispatches;
          if (s === 'combine' && combined) expect(n, `${what} ${s}`).toBe(0);
          else expect(n, `${what} ${s}`).toBeGreaterThan(0);
        }
        expect(p.stages.flatMap((s) => s.kernels), what).toEqual(dispatched.map((d) => d.kernel));
        // the steps of the median forward account for its whole time (every timed dispatch in one step)
        const sum = p.stages.reduce((s, t) => s + t.ms, 0);
        expect(Math.abs(sum - p.totalMs) / p.totalMs, `${what}: stages ${sum} ms vs whole ${p.totalMs} ms`).toBeLessThan(1e-9);
        for (const t of p.stages) expect(t.minMs, `${what} ${t.stage}`).toBeLessThanOrEqual(t.ms);
        expect(p.totalMs, what).toBeGreaterThan(0);
        expect(formatTable(r)).toContain(`tiny bf16 T=${x.tokens} stages: route `);
      }
    } finally {
      layer.destroy();
    }
  });

  it('an adapter without timestamp-query gets a profile that says so, not a failure', async () => {
    const noTs = Object.create(ctx!, { features: { value: { ...ctx!.features, timestampQuery: false } } }) as GpuContext;
    const layer = await createLayer(ctx!, TINY, 'bf16');
    const x = randomGpuTensor(ctx!, 'float32', [2, TINY.H], 3, 'f32', 'x');
    try {
      const p = await profileStages(noTs, layer.moe!, layer.pool, x, 2);
      expect(p).toEqual({ available: false, reason: `the adapter (${ctx!.adapterName}) has no timestamp-query feature` });
    } finally {
      x.destroy();
      layer.destroy();
    }
  });
});
