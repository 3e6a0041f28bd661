import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, routeDecodeRef, routerGpu, routerRef, type GpuContext, type RouterParams } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { withSmallGrid } from './small-grid.js';
import { KINDS, isGroupedKind, makeLogits, sig } from './router-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

async function runRouter(c: GpuContext, logits: Float32Array, T: number, p: RouterParams, cb?: Float32Array, pool?: BufferPool, sharedExperts?: number) {
  return gpuChecked(c, async () => {
    const gl = GpuTensor.upload(c, HostTensor.fromFloat32([T, p.numExperts], logits));
    const gcb = cb ? GpuTensor.upload(c, HostTensor.fromFloat32([p.numExperts], cb)) : undefined;
    const rec = new Recorder(c);
    const out = routerGpu(c, rec, gl, p, { correctionBias: gcb, pool, sharedExperts });
    rec.submit();
    const idx = (await out.idx.download()).data as Uint32Array;
    const weights = (await out.weights.download()).data as Float32Array;
    for (const t of [gl, gcb, out.idx, out.weights]) t?.destroy();
    return { idx, weights };
  });
}

function expectClose(got: Float32Array, want: Float32Array, rel: number, msg: string): void {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-30);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${msg}: worst rel err ${worst} at ${at} (got ${got[at]}, want ${want[at]})`).toBeLessThanOrEqual(rel);
}

describe('routerRef', () => {
  it('ties go to the lower expert index, slots in descending order', () => {
    const l = new Float32Array([1, 3, 3, 2, 3, 0]);
    const p: RouterParams = { kind: 'raw_topk', numExperts: 6, topK: 4, normTopkProb: false };
    expect(Array.from(routerRef(l, 1, p).idx)).toEqual([1, 2, 4, 3]);
    expect(Array.from(routerRef(new Float32Array(4).fill(0.5), 1, { ...p, numExperts: 4, topK: 2 }).idx)).toEqual([0, 1]);
  });
  it('softmax_topk weights by hand', () => {
    const l = new Float32Array([0, Math.log(3), Math.log(2), 0]); // probs 1/7, 3/7, 2/7, 1/7
    const r = routerRef(l, 1, { kind: 'softmax_topk', numExperts: 4, topK: 2, normTopkProb: false });
    expect(Array.from(r.idx)).toEqual([1, 2]);
    expect(r.weights[0]).toBeCloseTo(3 / 7, 6);
    expect(r.weights[1]).toBeCloseTo(2 / 7, 6);
    const n = routerRef(l, 1, { kind: 'softmax_topk', numExperts: 4, topK: 2, normTopkProb: true });
    expect(n.weights[0]).toBeCloseTo(0.6, 6);
  });
  it('sigmoid_grouped keeps the best groups (sum of top-2) and returns uncorrected sigmoids', () => {
    // 4 experts, 2 groups of 2; group 0 top-2 sum = c0 + c1, group 1 = c2 + c3.
    const l = new Float32Array([3, -3, 1, 1]);
    const cb = new Float32Array([0, 0, 0, 0]);
    const r = routerRef(l, 1, { kind: 'sigmoid_grouped', numExperts: 4, topK: 2, normTopkProb: false, nGroup: 2, topkGroup: 1, routedScalingFactor: 2 }, cb);
    // group sums: sig(3)+sig(-3) = 1; sig(1)*2 = 1.462 -> group 1 kept, experts 2, 3 (tie -> 2 first)
    expect(Array.from(r.idx)).toEqual([2, 3]);
    expect(r.weights[0]).toBeCloseTo(2 * sig(1), 6);
  });
  it('softmax_biased selects by probability + correction bias and weighs by the probability (renormalised: at least 1e-12)', () => {
    // probabilities of [2, 1, 0, 1]: expert 0 the largest; the bias lifts expert 2 past experts 1 and 3
    const l = new Float32Array([2, 1, 0, 1]);
    const z = Array.from(l).reduce((a, v) => a + Math.exp(v), 0);
    const cb = new Float32Array([0, 0, 0.5, 0]);
    const p: RouterParams = { kind: 'softmax_biased', numExperts: 4, topK: 2, normTopkProb: false };
    const r = routerRef(l, 1, p, cb);
    expect(Array.from(r.idx)).toEqual([2, 0]);
    expect(r.weights[0]).toBeCloseTo(1 / z, 6); // the uncorrected probability of expert 2
    expect(r.weights[1]).toBeCloseTo(Math.exp(2) / z, 6);
    const n = routerRef(l, 1, { ...p, normTopkProb: true }, cb);
    expect(n.weights[0] + n.weights[1]).toBeCloseTo(1, 6);
    expect(Array.from(routerRef(l, 1, p).idx), 'without the bias: the top-2 probabilities (tie to the lower index)').toEqual([0, 1]);
  });
  it('softmax_grouped keeps the groups with the largest probability and weighs by the softmax over all experts', () => {
    // 6 experts, 3 groups of 2: group maxima 2 (group 0), 1.5 (group 1), 1.9 (group 2); keep 2 groups -> 0 and 2;
    // top-2 inside them: experts 0 (2) and 5 (1.9), though expert 2 (1.5) beats expert 4 (0) outside the kept groups
    const l = new Float32Array([2, -1, 1.5, 1.5, 0, 1.9]);
    const z = Array.from(l).reduce((a, v) => a + Math.exp(v), 0);
    const p: RouterParams = { kind: 'softmax_grouped', numExperts: 6, topK: 2, normTopkProb: false, nGroup: 3, topkGroup: 2, routedScalingFactor: 16 };
    const r = routerRef(l, 1, p);
    expect(Array.from(r.idx)).toEqual([0, 5]);
    expect(r.weights[0]).toBeCloseTo((16 * Math.exp(2)) / z, 5);
    expect(r.weights[1]).toBeCloseTo((16 * Math.exp(1.9)) / z, 5);
    // renormalised: the two weights sum to the scale
    const n = routerRef(l, 1, { ...p, normTopkProb: true, routedScalingFactor: 1 });
    expect(n.weights[0] + n.weights[1]).toBeCloseTo(1, 6);
    expect(n.weights[0] / n.weights[1]).toBeCloseTo(Math.exp(0.1), 5);
    // every group kept (greedy): the plain top-k of the probabilities
    expect(Array.from(routerRef(l, 1, { ...p, nGroup: 1, topkGroup: 1 }).idx)).toEqual([0, 5]);
    expect(Array.from(routerRef(l, 1, { ...p, topK: 3, topkGroup: 3 }).idx)).toEqual([0, 5, 2]);
  });
});

type Case = { T: number; E: number; k: number; nGroup?: number; topkGroup?: number };
const CASES: Case[] = [
  { T: 3, E: 1, k: 1, nGroup: 1, topkGroup: 1 },
  { T: 3, E: 8, k: 2, nGroup: 4, topkGroup: 2 },
  { T: 1, E: 60, k: 8, nGroup: 4, topkGroup: 2 },
  { T: 7, E: 60, k: 1, nGroup: 6, topkGroup: 3 },
  { T: 3, E: 512, k: 32, nGroup: 8, topkGroup: 4 },
  { T: 5, E: 256, k: 8, nGroup: 8, topkGroup: 4 },
  { T: 2, E: 2048, k: 32, nGroup: 16, topkGroup: 4 },
  { T: 1001, E: 60, k: 8, nGroup: 4, topkGroup: 2 },
  // every group kept (Kimi-K2: one group; and topkGroup = nGroup > 1): the group selection is skipped
  { T: 4, E: 384, k: 8, nGroup: 1, topkGroup: 1 },
  { T: 3, E: 96, k: 6, nGroup: 4, topkGroup: 4 },
];


describe('routerGpu vs routerRef', () => {
  for (const kc of KINDS) {
    it(`${kc.kind} norm=${kc.norm} scale=${kc.scale ?? 1} cbias=${!!kc.cb}`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(kc.kind.length * 131 + (kc.norm ? 7 : 0) + (kc.cb ? 3 : 0));
      for (const cs of CASES) {
        const p: RouterParams = { kind: kc.kind, numExperts: cs.E, topK: cs.k, normTopkProb: kc.norm, routedScalingFactor: kc.scale };
        if (isGroupedKind(kc.kind)) {
          p.nGroup = cs.nGroup;
          p.topkGroup = cs.topkGroup;
        }
        const cb = kc.cb ? randomArray(r, cs.E, -0.5, 0.5) : undefined;
        const logits = makeLogits(r, cs.T, p, cb);
        const got = await runRouter(ctx, logits, cs.T, p, cb);
        const want = routerRef(logits, cs.T, p, cb);
        const msg = `T=${cs.T} E=${cs.E} k=${cs.k}`;
        expect(got.idx.length).toBe(cs.T * cs.k);
        for (let i = 0; i < want.idx.length; i++) {
          if (got.idx[i] !== want.idx[i]) expect(got.idx[i], `${msg}: idx at token ${Math.floor(i / cs.k)} slot ${i % cs.k}`).toBe(want.idx[i]);
        }
        expectClose(got.weights, want.weights, 2e-6, msg);
      }
    });
  }

  it('with shared experts appended (1 and 3): each token\'s routed slots, then experts E.. at weight 1, as routeDecodeRef', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(808);
    for (const [kind, ns] of [['softmax_topk', 1], ['sigmoid_grouped', 3], ['softmax_grouped', 2]] as const) {
      // (k + shared slots past 32: refused, see 'rejects bad parameters')
      for (const cs of CASES.filter((x) => x.k + ns <= 32)) {
        const p: RouterParams = { kind, numExperts: cs.E, topK: cs.k, normTopkProb: true, routedScalingFactor: 2.5 };
        if (isGroupedKind(kind)) Object.assign(p, { nGroup: cs.nGroup, topkGroup: cs.topkGroup });
        const logits = makeLogits(r, cs.T, p);
        const got = await runRouter(ctx, logits, cs.T, p, undefined, undefined, ns);
        const want = routeDecodeRef(routerRef(logits, cs.T, p), cs.T, cs.k, cs.E, ns);
        const msg = `${kind} T=${cs.T} E=${cs.E} k=${cs.k} shared=${ns}`;
        expect(Array.from(got.idx), `${msg} idx`).toEqual(Array.from(want.idx));
        expectClose(got.weights, want.weights, 2e-6, msg);
        for (let t = 0; t < cs.T; t++) for (let j = 0; j < ns; j++) expect([got.idx[t * (cs.k + ns) + cs.k + j], got.weights[t * (cs.k + ns) + cs.k + j]], `${msg} token ${t}`).toEqual([cs.E + j, 1]);
      }
    }
  });

  it('uses the pool for its outputs', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const pool = new BufferPool(ctx);
    const p: RouterParams = { kind: 'softmax_topk', numExperts: 8, topK: 2, normTopkProb: true };
    const logits = randomArray(rng(3), 16);
    const got = await runRouter(ctx, logits, 2, p, undefined, pool);
    expect(Array.from(got.idx)).toEqual(Array.from(routerRef(logits, 2, p).idx));
    expect(pool.liveCount).toBe(0);
    expect(pool.freeByteCount).toBeGreaterThan(0);
    pool.destroy();
  });

  it('rejects bad parameters before recording', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = GpuTensor.upload(ctx, HostTensor.fromFloat32([2, 8], new Float32Array(16)));
    const gb = GpuTensor.upload(ctx, HostTensor.fromFloat32([2, 8], new Float32Array(16), 'bfloat16'));
    const big = GpuTensor.upload(ctx, HostTensor.fromFloat32([1, 4096], new Float32Array(4096)));
    const cb7 = GpuTensor.upload(ctx, HostTensor.fromFloat32([7], new Float32Array(7)));
    const rec = new Recorder(ctx);
    const base: RouterParams = { kind: 'sigmoid_grouped', numExperts: 8, topK: 2, normTopkProb: true, nGroup: 4, topkGroup: 2 };
    expect(() => routerGpu(ctx!, rec, gb, base)).toThrow(DTypeError);
    expect(() => routerGpu(ctx!, rec, g, { ...base, numExperts: 9 })).toThrow(ShapeError);
    expect(() => routerGpu(ctx!, rec, g, { ...base, topK: 9 })).toThrow(ValueError);
    expect(() => routerGpu(ctx!, rec, g, { ...base, topK: 33, numExperts: 8 })).toThrow(ValueError);
    expect(() => routerGpu(ctx!, rec, g, { ...base, nGroup: 3 })).toThrow(/dividing E=8/);
    expect(() => routerGpu(ctx!, rec, g, { ...base, topkGroup: 5 })).toThrow(ValueError);
    expect(() => routerGpu(ctx!, rec, g, { ...base, topK: 5, topkGroup: 2 })).toThrow(/<= topkGroup \* E \/ nGroup = 4/);
    expect(() => routerGpu(ctx!, rec, g, base, { correctionBias: cb7 })).toThrow(ShapeError);
    expect(() => routerGpu(ctx!, rec, big, { kind: 'raw_topk', numExperts: 4096, topK: 2, normTopkProb: false })).toThrow(ValueError);
    rec.submit();
    for (const t of [g, gb, big, cb7]) t.destroy();
  });

  it('folds the grid past maxComputeWorkgroupsPerDimension', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const small = withSmallGrid(ctx, 6);
    const r = rng(78);
    const T = 23;
    for (const p of [
      { kind: 'softmax_topk', numExperts: 60, topK: 8, normTopkProb: true },
      { kind: 'sigmoid_grouped', numExperts: 64, topK: 6, normTopkProb: true, nGroup: 8, topkGroup: 3, routedScalingFactor: 2.5 },
    ] as RouterParams[]) {
      const cb = p.kind === 'sigmoid_grouped' ? randomArray(r, p.numExperts, -0.5, 0.5) : undefined;
      const logits = makeLogits(r, T, p, cb);
      const got = await runRouter(small, logits, T, p, cb);
      const want = routerRef(logits, T, p, cb);
      expect(Array.from(got.idx)).toEqual(Array.from(want.idx));
      expectClose(got.weights, want.weights, 2e-6, p.kind);
    }
  });
});
