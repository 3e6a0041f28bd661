import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, castGpu, castRef, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('GpuGraph (captured recording, replayed)', () => {
  it('replays on new input data and gives what a fresh recording gives', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(7);
    const n = 1001;
    await gpuChecked(c, async () => {
      const x = GpuTensor.empty(c, 'float32', [n]);
      const rec = new Recorder(c, { capture: true });
      const mid = castGpu(c, x, 'bfloat16', { recorder: rec });
      const y = castGpu(c, mid, 'float32', { recorder: rec });
      rec.submit();
      const graph = rec.toGraph();
      expect(graph.dispatchCount).toBe(2);
      for (let rep = 0; rep < 3; rep++) {
        const vals = randomArray(r, n, -50, 50);
        c.device.queue.writeBuffer(x.buffer, 0, vals);
        const ns = await graph.replay({ timestamps: true });
        if (c.features.timestampQuery) expect(ns).toBeGreaterThanOrEqual(0);
        const got = (await y.download()).toFloat32();
        const want = castRef(castRef(HostTensor.fromFloat32([n], vals), 'bfloat16'), 'float32').toFloat32();
        expect(got).toEqual(want);
      }
      graph.destroy();
      for (const b of [x, mid, y]) b.destroy();
    });
  });
  it('refuses toGraph on a recorder that did not capture', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const rec = new Recorder(ctx);
    rec.submit();
    expect(() => rec.toGraph()).toThrow(/capture/);
  });
});
