import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, GROUP_ONE_MAX_EXPERTS, groupGpu, groupDecodeGpu, routeDecodeGpu, routerRef, groupRef, denseGroupingGpu, denseGroupingRef, DENSE_GROUPING_CONST_MAX_T, routeDecodeRef, type GpuContext, type RouterParams } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { KINDS, isGroupedKind, makeLogits } from './router-helpers.js';
import { withSmallGrid } from './small-grid.js';
import { KERNEL_CROSSOVERS } from '../src/kernels/plan.js';
import { downloadDecodeGrouping, downloadGrouping } from './grouped-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Random idx [T,k]: distinct experts per token (like a router), or skewed toward a few experts. */
function randomIdx(r: () => number, T: number, k: number, E: number, skew: boolean): Uint32Array {
  const out = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) {
    const used = new Set<number>();
    for (let j = 0; j < k; j++) {
      let e: number;
      do {
        e = skew ? Math.floor(E * r() ** 4) : Math.floor(E * r());
      } while (used.has(e) && used.size < E);
      used.add(e);
      out[t * k + j] = e;
    }
  }
  return out;
}

/** Checks a grouping against idx directly (independent of groupRef) and against groupRef's counts/offsets and per-expert sets. */
function checkGrouping(got: { counts: Uint32Array; offsets: Uint32Array; order: Uint32Array; position: Uint32Array }, idx: Uint32Array, T: number, k: number, E: number, msg: string): void {
  const want = groupRef(idx, T, k, E);
  expect(Array.from(got.counts), `${msg} counts`).toEqual(Array.from(want.counts));
  expect(Array.from(got.offsets), `${msg} offsets`).toEqual(Array.from(want.offsets));
  const n = T * k;
  expect(got.order.length).toBe(n);
  for (let p = 0; p < n; p++) {
    const s = got.position[p];
    if (!(s < n && got.order[s] === p)) throw new Error(`${msg}: position/order not inverse at pair ${p} (position ${s}, order[position] ${got.order[s]})`);
    const e = idx[p];
    if (!(s >= got.offsets[e] && s < got.offsets[e + 1])) throw new Error(`${msg}: pair ${p} (expert ${e}) at row ${s}, outside [${got.offsets[e]}, ${got.offsets[e + 1]})`);
  }
  for (let e = 0; e < E; e++) {
    const a = Array.from(got.order.subarray(got.offsets[e], got.offsets[e + 1])).sort((x, y) => x - y);
    const b = Array.from(want.order.subarray(want.offsets[e], want.offsets[e + 1])).sort((x, y) => x - y);
    if (a.join() !== b.join()) throw new Error(`${msg}: expert ${e} pair set differs`);
  }
}

/** A decode grouping: the grouping of idx, the hit experts ascending then NO_EXPERT, and the GEMVs' indirect args (8 outputs per workgroup). */
function checkDecode(got: Awaited<ReturnType<typeof downloadDecodeGrouping>>, idx: Uint32Array, T: number, k: number, E: number, nGateUp: number, nDown: number, msg: string): void {
  checkGrouping(got, idx, T, k, E, msg);
  const hit = [...new Set(idx)].sort((a, b) => a - b);
  const want = [...hit, ...new Array(E - hit.length).fill(0xffffffff)];
  expect(Array.from(got.active), `${msg} active`).toEqual(want);
  expect(Array.from(got.args), `${msg} args`).toEqual([Math.ceil(nGateUp / 8), hit.length, 1, Math.ceil(nDown / 8), hit.length, 1]);
}

describe('groupRef', () => {
  it('stable counting sort by hand', () => {
    const g = groupRef(new Uint32Array([1, 0, 1, 1, 2, 0]), 3, 2, 4);
    expect(Array.from(g.counts)).toEqual([2, 3, 1, 0]);
    expect(Array.from(g.offsets)).toEqual([0, 2, 5, 6, 6]);
    expect(Array.from(g.order)).toEqual([1, 5, 0, 2, 3, 4]);
    expect(Array.from(g.position)).toEqual([2, 0, 3, 4, 5, 1]);
    expect(() => groupRef(new Uint32Array([4]), 1, 1, 4)).toThrow(ValueError);
  });
  it('denseGroupingRef is the identity', () => {
    const g = denseGroupingRef(3);
    expect([g.E, g.k, Array.from(g.counts), Array.from(g.offsets), Array.from(g.order), Array.from(g.position)]).toEqual([1, 1, [3], [0, 3], [0, 1, 2], [0, 1, 2]]);
  });
});

describe('groupGpu vs groupRef', () => {
  const CASES = [
    { T: 1, k: 1, E: 1 },
    { T: 3, k: 2, E: 8 },
    { T: 1, k: 8, E: 60 },
    { T: 3, k: 32, E: 512 },
    { T: 7, k: 8, E: 60 },
    { T: 1003, k: 8, E: 60 },
    { T: 1500, k: 2, E: 8 },
    { T: 129, k: 32, E: 512 },
    { T: 5, k: 1, E: 2049 },
    { T: 1100, k: 8, E: 64 },
    { T: 2, k: 3, E: 1024 },
  ];
  // default (by pairs: one workgroup up to KERNEL_CROSSOVERS.groupOneWorkgroupMaxPairs), forced one workgroup, forced four passes
  for (const oneWorkgroup of [undefined, true, false]) for (const skew of [false, true]) {
    it(`random idx (${skew ? 'skewed' : 'uniform'}), ${oneWorkgroup === undefined ? 'default passes' : oneWorkgroup ? 'one workgroup' : 'four passes'}`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(skew ? 11 : 12);
      for (const { T, k, E } of CASES) {
        if (oneWorkgroup && E > GROUP_ONE_MAX_EXPERTS) continue;
        const idx = randomIdx(r, T, k, E, skew);
        const got = await gpuChecked(ctx, async () => {
          const gi = GpuTensor.upload(ctx!, new HostTensor('uint32', [T, k], idx));
          const rec = new Recorder(ctx!);
          const g = groupGpu(ctx!, rec, gi, E, { oneWorkgroup });
          rec.submit();
          expect([g.T, g.k, g.E]).toEqual([T, k, E]);
          const d = await downloadGrouping(g);
          g.destroy();
          expect(g.counts.destroyed && g.offsets.destroyed && g.order.destroyed && g.position.destroyed).toBe(true);
          gi.destroy();
          return d;
        });
        checkGrouping(got, idx, T, k, E, `T=${T} k=${k} E=${E}`);
      }
    });
  }

  it('takes one workgroup up to groupOneWorkgroupMaxPairs pairs (E <= GROUP_ONE_MAX_EXPERTS), four passes above; rejects one workgroup for more experts', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const max = KERNEL_CROSSOVERS.groupOneWorkgroupMaxPairs;
    for (const [T, k, E, kernels] of [
      [max / 8, 8, 128, ['group_one']],
      [max / 8 + 1, 8, 128, ['group_zero', 'group_count', 'group_scan', 'group_scatter']],
      [4, 2, GROUP_ONE_MAX_EXPERTS + 1, ['group_zero', 'group_count', 'group_scan', 'group_scatter']],
    ] as const) {
      const gi = GpuTensor.upload(cx, new HostTensor('uint32', [T, k], new Uint32Array(T * k).map((_, i) => i % E)));
      const { dispatched } = await withDispatchLog(async () => {
        const rec = new Recorder(cx);
        const g = groupGpu(cx, rec, gi, E);
        rec.submit();
        await cx.sync();
        g.destroy();
      });
      expect(dispatched.map((d) => d.kernel), `T=${T} k=${k} E=${E}`).toEqual(kernels);
      gi.destroy();
    }
    const gi = GpuTensor.upload(cx, new HostTensor('uint32', [1, 1], new Uint32Array(1)));
    const pool = new BufferPool(cx);
    const rec = new Recorder(cx);
    expect(() => groupGpu(cx, rec, gi, GROUP_ONE_MAX_EXPERTS + 1, { oneWorkgroup: true, pool })).toThrow(ValueError);
    rec.submit();
    expect(pool.liveCount, 'nothing allocated').toBe(0);
    pool.destroy();
    gi.destroy();
  });

  for (const oneWorkgroup of [true, false]) it(`all pairs to one expert, reused pool buffers (stale contents), ${oneWorkgroup ? 'one workgroup' : 'four passes'}`, async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const pool = new BufferPool(ctx);
    for (const fill of [3, 0, 7]) {
      const T = 37, k = 2, E = 8;
      const idx = new Uint32Array(T * k).fill(fill);
      const got = await gpuChecked(ctx, async () => {
        const gi = GpuTensor.upload(ctx!, new HostTensor('uint32', [T, k], idx));
        const rec = new Recorder(ctx!);
        const g = groupGpu(ctx!, rec, gi, E, { pool, oneWorkgroup });
        rec.submit();
        const d = await downloadGrouping(g);
        g.destroy();
        gi.destroy();
        return d;
      });
      checkGrouping(got, idx, T, k, E, `fill=${fill}`);
    }
    expect(pool.liveCount).toBe(0);
    pool.destroy();
  });

  /** A downloaded grouping equals denseGroupingRef(T). */
  const expectDenseGrouping = (got: Awaited<ReturnType<typeof downloadGrouping>>, T: number) => {
    const want = denseGroupingRef(T);
    for (const f of ['counts', 'offsets', 'order', 'position'] as const) expect(Array.from(got[f]), `${f} T=${T}`).toEqual(Array.from(want[f]));
  };

  it('denseGroupingGpu matches denseGroupingRef: a constant of the device up to DENSE_GROUPING_CONST_MAX_T tokens (no dispatch, kept by destroy), a dispatch beyond', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    for (const T of [0, 1, 3, DENSE_GROUPING_CONST_MAX_T, DENSE_GROUPING_CONST_MAX_T + 1, 1000]) {
      const { result: got, dispatched } = await withDispatchLog(() =>
        gpuChecked(ctx!, async () => {
          const rec = new Recorder(ctx!);
          const g = denseGroupingGpu(ctx!, rec, T);
          rec.submit();
          expect([g.T, g.k, g.E]).toEqual([T, 1, 1]);
          const constant = T <= DENSE_GROUPING_CONST_MAX_T;
          g.destroy();
          (g as { [Symbol.dispose]?: () => void })[Symbol.dispose]?.();
          // the constant one survives its callers' destroy() (and dispose) and is the same object for every caller
          if (constant) expect(denseGroupingGpu(ctx!, new Recorder(ctx!), T)).toBe(g);
          return constant ? await downloadGrouping(g) : undefined;
        }),
      );
      expect(dispatched.map((d) => d.kernel), `T=${T}`).toEqual(T <= DENSE_GROUPING_CONST_MAX_T ? [] : ['dense_grouping']);
      if (!got) continue;
      expectDenseGrouping(got, T);
    }
    // beyond the constant's range: the dispatched grouping, read before its destroy()
    for (const T of [DENSE_GROUPING_CONST_MAX_T + 1, 1000]) {
      const got = await gpuChecked(ctx, async () => {
        const rec = new Recorder(ctx!);
        const g = denseGroupingGpu(ctx!, rec, T);
        rec.submit();
        const d = await downloadGrouping(g);
        g.destroy();
        return d;
      });
      expectDenseGrouping(got, T);
    }
  });

  it('rejects bad input before recording', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const f = GpuTensor.upload(ctx, HostTensor.fromFloat32([2, 2], new Float32Array(4)));
    const u1 = GpuTensor.upload(ctx, new HostTensor('uint32', [4], new Uint32Array(4)));
    const u2 = GpuTensor.upload(ctx, new HostTensor('uint32', [2, 2], new Uint32Array(4)));
    const rec = new Recorder(ctx);
    expect(() => groupGpu(ctx!, rec, f, 4)).toThrow(DTypeError);
    expect(() => groupGpu(ctx!, rec, u1, 4)).toThrow(ShapeError);
    expect(() => groupGpu(ctx!, rec, u2, 0)).toThrow(ValueError);
    expect(() => denseGroupingGpu(ctx!, rec, -1)).toThrow(ValueError);
    rec.submit();
    for (const t of [f, u1, u2]) t.destroy();
  });

  it('folds the grids past maxComputeWorkgroupsPerDimension', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const small = withSmallGrid(ctx, 5);
    const r = rng(79);
    const T = 300, k = 8, E = 2049;
    const idx = randomIdx(r, T, k, E, false);
    const got = await gpuChecked(ctx, async () => {
      const gi = GpuTensor.upload(small, new HostTensor('uint32', [T, k], idx));
      const rec = new Recorder(small);
      const g = groupGpu(small, rec, gi, E);
      const d0 = denseGroupingGpu(small, rec, 1000);
      rec.submit();
      const d = await downloadGrouping(g);
      const dd = await downloadGrouping(d0);
      g.destroy();
      d0.destroy();
      gi.destroy();
      return { d, dd };
    });
    checkGrouping(got.d, idx, T, k, E, 'folded');
    expect(Array.from(got.dd.order)).toEqual(Array.from(denseGroupingRef(1000).order));
    expect(Array.from(got.dd.offsets)).toEqual([0, 1000]);
  });
});

describe('groupDecodeGpu (one dispatch: grouping + active experts) vs groupRef', () => {
  // pairs and experts below, at and above the 256-lane workgroup, E = 1, one expert hit
  const CASES = [
    { T: 1, k: 1, E: 1 },
    { T: 1, k: 2, E: 8 },
    { T: 1, k: 8, E: 128 },
    { T: 16, k: 8, E: 128 },
    { T: 3, k: 6, E: 64 },
    { T: 5, k: 8, E: 385 },
    { T: 40, k: 8, E: 60 },
    { T: 7, k: 3, E: 1000 },
    { T: 300, k: 1, E: 3 },
  ];
  for (const skew of [false, true]) {
    it(`random idx (${skew ? 'skewed' : 'uniform'}), stale pool buffers`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const pool = new BufferPool(ctx);
      const r = rng(skew ? 21 : 22);
      for (const { T, k, E } of CASES) {
        for (const rep of [0, 1]) {
          const idx = randomIdx(r, T, k, E, skew);
          const nGateUp = 8 * (1 + Math.floor(r() * 40)) + (rep ? 3 : 0);
          const nDown = 1 + Math.floor(r() * 300);
          const got = await gpuChecked(ctx!, async () => {
            const gi = GpuTensor.upload(ctx!, new HostTensor('uint32', [T, k], idx));
            const rec = new Recorder(ctx!);
            const { grouping: g, active } = groupDecodeGpu(ctx!, rec, gi, E, nGateUp, nDown, { pool });
            const out = await downloadDecodeGrouping(ctx!, rec, g, active);
            expect([g.T, g.k, g.E]).toEqual([T, k, E]);
            // the pool gets these buffers back dirty: the next case must not see their contents
            g.destroy();
            gi.destroy();
            return out;
          });
          const msg = `decode T=${T} k=${k} E=${E} rep ${rep}`;
          checkDecode(got, idx, T, k, E, nGateUp, nDown, msg);
        }
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    });
  }
});

describe('routeDecodeGpu (routing and decode grouping in one dispatch, with and without shared experts appended) vs routerRef + groupRef', () => {
  it('shared experts past the slot limit (topK + shared > 32) or not a whole number: a ValueError before anything is recorded or allocated', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const gl = GpuTensor.upload(ctx, HostTensor.fromFloat32([1, 40], new Float32Array(40)));
    const pool = new BufferPool(ctx);
    const rec = new Recorder(ctx);
    const p: RouterParams = { kind: 'softmax_topk', numExperts: 40, topK: 8, normTopkProb: false };
    const { dispatched } = await withDispatchLog(async () => {
      for (const ns of [25, 1.5, -1]) expect(() => routeDecodeGpu(ctx!, rec, gl, p, 16, 16, { pool, sharedExperts: ns }), `sharedExperts ${ns}`).toThrow(ValueError);
    });
    expect(dispatched).toEqual([]);
    expect(pool.liveCount).toBe(0);
    gl.destroy();
    pool.destroy();
  });
  // tokens below, at and past one, experts below and above the 256-lane workgroup, grouped and ungrouped routers
  const CASES = [
    { T: 1, E: 8, k: 2, nGroup: 4, topkGroup: 2 },
    { T: 1, E: 128, k: 8, nGroup: 8, topkGroup: 4 },
    { T: 3, E: 60, k: 4, nGroup: 4, topkGroup: 2 },
    { T: 16, E: 128, k: 8, nGroup: 8, topkGroup: 4 },
    { T: 5, E: 384, k: 8, nGroup: 1, topkGroup: 1 },
    { T: 0, E: 16, k: 2, nGroup: 2, topkGroup: 1 },
  ];
  for (const kc of KINDS) {
    it(`${kc.kind} norm=${kc.norm} scale=${kc.scale ?? 1} cbias=${!!kc.cb}`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const pool = new BufferPool(ctx);
      const r = rng(kc.kind.length * 17 + (kc.norm ? 5 : 0) + (kc.cb ? 2 : 0));
      // ns: the shared experts appended as always-selected experts E.. (0: plain routing)
      for (const cs of CASES) for (const ns of [0, 1, 2]) {
        const p: RouterParams = { kind: kc.kind, numExperts: cs.E, topK: cs.k, normTopkProb: kc.norm, routedScalingFactor: kc.scale };
        if (isGroupedKind(kc.kind)) Object.assign(p, { nGroup: cs.nGroup, topkGroup: cs.topkGroup });
        const cb = kc.cb ? randomArray(r, cs.E, -0.5, 0.5) : undefined;
        const logits = makeLogits(r, cs.T, p, cb);
        const nGateUp = 1 + Math.floor(r() * 300);
        const nDown = 8 * (1 + Math.floor(r() * 40));
        const got = await gpuChecked(ctx!, async () => {
          const gl = GpuTensor.upload(ctx!, HostTensor.fromFloat32([cs.T, cs.E], logits));
          const gcb = cb ? GpuTensor.upload(ctx!, HostTensor.fromFloat32([cs.E], cb)) : undefined;
          const rec = new Recorder(ctx!);
          const out = routeDecodeGpu(ctx!, rec, gl, p, nGateUp, nDown, { pool, correctionBias: gcb, ...(ns ? { sharedExperts: ns } : {}) });
          expect([out.grouping.T, out.grouping.k, out.grouping.E, ...out.routing.idx.shape]).toEqual([cs.T, cs.k + ns, cs.E + ns, cs.T, cs.k + ns]);
          const dec = await downloadDecodeGrouping(ctx!, rec, out.grouping, out.active);
          const res = { ...dec, idx: (await out.routing.idx.download()).data as Uint32Array, weights: (await out.routing.weights.download()).data as Float32Array };
          for (const t of [gl, gcb, out.routing.idx, out.routing.weights]) t?.destroy();
          out.grouping.destroy();
          return res;
        });
        const msg = `${kc.kind} T=${cs.T} E=${cs.E} k=${cs.k} shared=${ns}`;
        const routed = routerRef(logits, cs.T, p, cb);
        const want = routeDecodeRef(routed, cs.T, cs.k, cs.E, ns);
        // by hand: each token's slots k.. are the shared experts E.. at weight 1, after its routed slots
        for (let t = 0; t < cs.T; t++) {
          for (let s = 0; s < ns; s++) {
            expect(got.idx[t * (cs.k + ns) + cs.k + s], `${msg} token ${t} shared slot ${s}`).toBe(cs.E + s);
            expect(got.weights[t * (cs.k + ns) + cs.k + s], `${msg} token ${t} shared weight ${s}`).toBe(1);
          }
          expect(Array.from(got.idx.subarray(t * (cs.k + ns), t * (cs.k + ns) + cs.k)), `${msg} token ${t} routed slots`).toEqual(Array.from(routed.idx.subarray(t * cs.k, (t + 1) * cs.k)));
        }
        expect(Array.from(got.idx), `${msg} idx`).toEqual(Array.from(want.idx));
        for (let i = 0; i < want.weights.length; i++) {
          expect(Math.abs(got.weights[i] - want.weights[i]), `${msg} weight ${i}`).toBeLessThanOrEqual(2e-6 * Math.max(Math.abs(want.weights[i]), 1e-30));
        }
        checkDecode(got, want.idx, cs.T, cs.k + ns, cs.E + ns, nGateUp, nDown, msg);
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    });
  }
});
