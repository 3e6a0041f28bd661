import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import {
  DeviceGroup,
  gatherRowsGpu,
  gatherRowsRef,
  epCombineGpu,
  epCombineRef,
  planEPDispatch,
  planEP,
  allToAllv,
  EPPlanTensors,
  EPBatchManager,
  ShardingError,
} from '@webmoe/sharding';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

function randomIdx(r: () => number, T: number, k: number, E: number): Uint32Array {
  const idx = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) {
    const perm = Array.from({ length: E }, (_, e) => e).sort(() => r() - 0.5);
    for (let j = 0; j < k; j++) idx[t * k + j] = perm[j];
  }
  return idx;
}
const u32 = (c: GpuContext, a: Uint32Array) => GpuTensor.upload(c, new HostTensor('uint32', [a.length], a));
const f32 = (c: GpuContext, shape: number[], a: Float32Array) => GpuTensor.upload(c, HostTensor.fromFloat32(shape, a));

describe('EP kernels vs their references (one device)', () => {
  it('gatherRowsGpu (plain and scaled) is exact; epCombineGpu within f32 rounding, random odd sizes', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = ctx;
    const r = rng(77);
    for (const [T, k, E, H, epSize] of [[1, 1, 2, 1, 2], [9, 3, 6, 13, 3], [31, 4, 8, 65, 4], [0, 2, 4, 5, 2]]) {
      const x = randomArray(r, T * H);
      const idx = randomIdx(r, T, k, E);
      const w = randomArray(r, T * k, 0, 1);
      const plan = planEPDispatch(idx, T, k, E, epSize, 0);
      const scale = Float32Array.from(plan.order, (p) => w[p]);
      const y = randomArray(r, T * k * H, -2, 2);
      const got = await gpuChecked(g, async () => {
        const xg = f32(g, [T, H], x);
        const pt = EPPlanTensors.upload(g, plan);
        const sg = f32(g, [T * k], scale);
        const yg = f32(g, [T * k, H], y);
        const wg = f32(g, [T, k], w);
        const rec = new Recorder(g);
        const send = gatherRowsGpu(g, rec, xg, pt.sendTokens);
        const sendScaled = gatherRowsGpu(g, rec, xg, pt.sendTokens, { scale: sg });
        const out = epCombineGpu(g, rec, yg, pt.position, wg, { k });
        const outU = epCombineGpu(g, rec, yg, pt.position, null, { k });
        rec.submit();
        const res = await Promise.all([send, sendScaled, out, outU].map((t) => t.download()));
        [xg, sg, yg, wg, send, sendScaled, out, outU].forEach((t) => t.destroy());
        pt.destroy();
        return res.map((h) => h.data as Float32Array);
      });
      expect(Array.from(got[0]), `gather T=${T}`).toEqual(Array.from(gatherRowsRef(x, H, plan.sendTokens)));
      expect(Array.from(got[1])).toEqual(Array.from(gatherRowsRef(x, H, plan.sendTokens, scale)));
      expect(relErr(got[2], epCombineRef(y, plan, w, H))).toBeLessThan(1e-6);
      expect(relErr(got[3], epCombineRef(y, plan, null, H))).toBeLessThan(1e-6);
      expect(got[2].length).toBe(T * H);
    }
  });

  it('bad input: typed errors before recording', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = ctx;
    const x = f32(g, [2, 3], new Float32Array(6));
    const rows = u32(g, Uint32Array.of(0, 1));
    const rec = new Recorder(g);
    expect(() => gatherRowsGpu(g, rec, rows, rows)).toThrow(/dtype/);
    expect(() => gatherRowsGpu(g, rec, x, x)).toThrow(/dtype/);
    expect(() => epCombineGpu(g, rec, x, rows, null, { k: 4 })).toThrow(/multiple of k=4/);
    expect(() => epCombineGpu(g, rec, x, rows, null, { k: 0 })).toThrow(ShardingError);
    rec.submit();
    [x, rows].forEach((t) => t.destroy());
  });
});

describe('DeviceGroup', () => {
  const made: DeviceGroup[] = [];
  afterAll(() => made.forEach((g) => g.destroy()));
  it('auto placement falls back to several devices of one adapter; distinct-adapters says how many it found', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = await DeviceGroup.create(2);
    made.push(g);
    expect(g.size).toBe(2);
    expect(g.contexts[0].device).not.toBe(g.contexts[1].device);
    expect(g.devices.map(String)).toEqual(['gpu:0', 'gpu:1']);
    // lavapipe is one adapter: asking for 8 distinct ones fails with a typed error naming what was found
    await expect(DeviceGroup.create(8, { placement: 'distinct-adapters' })).rejects.toThrow(/8 distinct adapters, got 1/);
    await expect(DeviceGroup.create(0)).rejects.toThrow(ShardingError);
    expect(() => DeviceGroup.fromContexts([g.contexts[0], g.contexts[0]])).toThrow(ShardingError);
    const wrapped = DeviceGroup.fromContexts(g.contexts);
    wrapped.destroy(); // not owned: the contexts stay alive
    expect(g.contexts[0].isLost).toBe(false);
    expect(() => DeviceGroup.cpu(2).context(0)).toThrow(ShardingError);
  });

  it('whole EP step on 3 devices on the GPU: gather -> allToAllv -> experts -> allToAllv -> combine', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const n = 3;
    const g = await DeviceGroup.create(n, { placement: 'same-adapter' });
    made.push(g);
    const r = rng(4242);
    const E = 6;
    const k = 2;
    const H = 9;
    const Ts = [5, 0, 7];
    const xs = Ts.map((T) => randomArray(r, T * H));
    const idxs = Ts.map((T) => randomIdx(r, T, k, E));
    const ws = Ts.map((T) => randomArray(r, T * k, 0, 1));
    const { dispatch, receive } = planEP(idxs, Ts, k, E, n);
    const expert = (e: number, v: number) => Math.fround(v * (e + 0.5));
    const plans = dispatch.map((p, s) => EPPlanTensors.upload(g.context(s), p));
    const xg = xs.map((x, s) => f32(g.context(s), [Ts[s], H], x));
    const sends = xg.map((x, s) => {
      const rec = new Recorder(g.context(s));
      const t = gatherRowsGpu(g.context(s), rec, x, plans[s].sendTokens);
      rec.submit();
      return t;
    });
    const there = await allToAllv(sends, dispatch.map((p) => p.sendCounts));
    const ys = await Promise.all(
      there.recv.map(async (t, d) => {
        const x = (await t.download()).data as Float32Array;
        const y = x.map((v, i) => expert(d * (E / n) + receive[d].experts[Math.floor(i / H)], v));
        return f32(g.context(d), [receive[d].rows, H], y);
      }),
    );
    const back = await allToAllv(ys, there.recvCounts);
    const outs = await Promise.all(
      back.recv.map((yb, s) => {
        const rec = new Recorder(g.context(s));
        const wg = f32(g.context(s), [Ts[s], k], ws[s]);
        const o = epCombineGpu(g.context(s), rec, yb, plans[s].position, wg, { k });
        rec.submit();
        return o.download().then((h) => {
          o.destroy();
          wg.destroy();
          return h.data as Float32Array;
        });
      }),
    );
    for (let s = 0; s < n; s++) {
      const want = new Float32Array(Ts[s] * H);
      for (let t = 0; t < Ts[s]; t++) for (let ch = 0; ch < H; ch++) for (let j = 0; j < k; j++) want[t * H + ch] += ws[s][t * k + j] * expert(idxs[s][t * k + j], xs[s][t * H + ch]);
      expect(outs[s].length).toBe(want.length);
      expect(relErr(outs[s], want), `device ${s}`).toBeLessThan(1e-6);
    }
    [...xg, ...sends, ...there.recv, ...ys, ...back.recv].forEach((t) => t.destroy());
    plans.forEach((p) => p.destroy());
    for (const cx of g.contexts) expect(cx.takeUncapturedErrors()).toEqual([]);
  });

  it('EPBatchManager on 4 devices: dispatch -> experts in grouped order -> combine (weighted, and applyRouterWeightFirst)', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const n = 4;
    const g = await DeviceGroup.create(n, { placement: 'same-adapter' });
    made.push(g);
    const r = rng(9001);
    const E = 8;
    const k = 3;
    const H = 5;
    const Ts = [4, 1, 0, 9];
    const xs = Ts.map((T) => randomArray(r, T * H));
    const idxs = Ts.map((T) => randomIdx(r, T, k, E));
    const ws = Ts.map((T) => randomArray(r, T * k, 0, 1));
    const expert = (e: number, v: number) => Math.fround(v * (e - 3.5) + 0.25);
    const ep = new EPBatchManager({ numExperts: E, epSize: n, topK: k });
    expect(() => new EPBatchManager({ numExperts: 6, epSize: 4, topK: 2 })).toThrow(ShardingError);
    for (const first of [false, true]) {
      const xg = xs.map((x, s) => f32(g.context(s), [Ts[s], H], x));
      const wg = ws.map((w, s) => f32(g.context(s), [Ts[s], k], w));
      const step = await ep.dispatch(xg, idxs, first ? { rowScale: wg } : {});
      const ys = await Promise.all(
        step.recv.map(async (t, d) => {
          const x = (await t.download()).data as Float32Array;
          const gr = step.receive[d].grouping;
          const y = new Float32Array(x.length);
          for (let row = 0; row < gr.T; row++) {
            const src = gr.order[row];
            const e = d * (E / n) + step.receive[d].experts[src];
            for (let ch = 0; ch < H; ch++) y[row * H + ch] = expert(e, x[src * H + ch]);
          }
          return f32(g.context(d), [gr.T, H], y);
        }),
      );
      const outs = await ep.combine(step, ys, first ? wg.map(() => null) : wg);
      const got = await Promise.all(outs.map((o) => o.download()));
      for (let s = 0; s < n; s++) {
        const want = new Float32Array(Ts[s] * H);
        for (let t = 0; t < Ts[s]; t++)
          for (let ch = 0; ch < H; ch++)
            for (let j = 0; j < k; j++) {
              const w = ws[s][t * k + j];
              const e = idxs[s][t * k + j];
              want[t * H + ch] += first ? expert(e, w * xs[s][t * H + ch]) : w * expert(e, xs[s][t * H + ch]);
            }
        expect(got[s].shape).toEqual([Ts[s], H]);
        expect(relErr(got[s].data as Float32Array, want), `device ${s} first=${first}`).toBeLessThan(1e-5);
      }
      step.destroy();
      [...xg, ...wg, ...ys, ...outs].forEach((t) => t.destroy());
    }
    for (const cx of g.contexts) expect(cx.takeUncapturedErrors()).toEqual([]);
  });
});
