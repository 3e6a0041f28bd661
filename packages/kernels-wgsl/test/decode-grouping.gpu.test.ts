/**
 * group_decode and route_decode on random inputs, against a plain reference
 * written here (not groupRef/routerRef's selection): odd E (3 .. 2049), k up
 * to 32, T = 1..4 and pair counts past 256, hot experts hit by several
 * tokens, ties, stale pool buffers. The order inside an expert's range is
 * unspecified (global atomics): order and position are checked as inverse
 * permutations grouped by expert, everything else exactly.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, groupDecodeGpu, routeDecodeGpu, routerRef, requestAdapter, type GpuContext, type RouterParams } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng } from '@webmoe/kernels-wgsl/testing';
import { makeLogits } from './router-helpers.js';
import { downloadDecodeGrouping } from './grouped-helpers.js';
import { signatureWgsl, type Kernel, type Variant } from '../src/runtime/kernel.js';
import { routeDecodeKernel } from '../src/kernels/route-decode.js';
import { groupDecodeKernel } from '../src/kernels/grouping.js';
import type { RouterVariant } from '../src/kernels/router.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const NO_EXPERT = 0xffffffff;
/** The router's largest E (ROUTER_MAX_EXPERTS); group_decode alone is also run one past it. */
const ROUTER_MAX_E = 2048;

interface Decoded {
  counts: Uint32Array;
  offsets: Uint32Array;
  order: Uint32Array;
  position: Uint32Array;
  active: Uint32Array;
  args: Uint32Array;
}

/** The decode grouping by hand: counts, offsets, a stable counting sort (pairs ascending per expert), hit experts ascending, indirect args. */
function decodeByHand(idx: Uint32Array, E: number, nGateUp: number, nDown: number): Decoded {
  const n = idx.length;
  const counts = new Uint32Array(E);
  for (const e of idx) counts[e] += 1;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const order = new Uint32Array(n);
  const position = new Uint32Array(n);
  let slot = 0;
  for (let e = 0; e < E; e++) {
    for (let p = 0; p < n; p++) {
      if (idx[p] === e) {
        order[slot] = p;
        position[p] = slot;
        slot++;
      }
    }
  }
  const hit: number[] = [];
  for (let e = 0; e < E; e++) if (counts[e] > 0) hit.push(e);
  const active = new Uint32Array(E).fill(NO_EXPERT);
  active.set(hit);
  const args = new Uint32Array([Math.ceil(nGateUp / 8), hit.length, 1, Math.ceil(nDown / 8), hit.length, 1]);
  return { counts, offsets, order, position, active, args };
}

/** Compares a decode grouping with the hand-made one: all exactly, or (ordered = false) order/position as a permutation grouped by expert. */
function expectDecode(got: Decoded, idx: Uint32Array, want: Decoded, ordered: boolean, msg: string): void {
  expect(Array.from(got.counts), `${msg} counts`).toEqual(Array.from(want.counts));
  expect(Array.from(got.offsets), `${msg} offsets`).toEqual(Array.from(want.offsets));
  expect(Array.from(got.active), `${msg} active`).toEqual(Array.from(want.active));
  expect(Array.from(got.args), `${msg} args`).toEqual(Array.from(want.args));
  if (ordered) {
    expect(Array.from(got.order), `${msg} order`).toEqual(Array.from(want.order));
    expect(Array.from(got.position), `${msg} position`).toEqual(Array.from(want.position));
    return;
  }
  const n = idx.length;
  const seen = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const s = got.position[p];
    if (!(s < n && got.order[s] === p && !seen[s])) throw new Error(`${msg}: position/order not inverse permutations at pair ${p} (position ${s})`);
    seen[s] = 1;
    const e = idx[p];
    if (!(s >= want.offsets[e] && s < want.offsets[e + 1])) throw new Error(`${msg}: pair ${p} (expert ${e}) at row ${s}, outside [${want.offsets[e]}, ${want.offsets[e + 1]})`);
  }
}

/** Random idx [T, k]: 'uniform', 'hot' (most pairs on three experts, repeats inside a token too) or 'one' (every pair on one expert). */
function randomIdx(r: () => number, n: number, E: number, mode: 'uniform' | 'hot' | 'one'): Uint32Array {
  const hot = [0, E - 1, Math.floor(E / 2)];
  const pick = () => (mode === 'one' ? hot[1] : mode === 'hot' && r() < 0.7 ? hot[Math.floor(r() * 3)] : Math.floor(r() * E));
  return Uint32Array.from({ length: n }, pick);
}

/** Top-k of one token's logits by hand: descending, ties (-0 = +0) to the lower expert. */
function topkByHand(l: Float32Array, k: number): number[] {
  return Array.from(l.keys())
    .sort((a, b) => (l[b] === l[a] ? a - b : l[b] - l[a]))
    .slice(0, k);
}

const ES = [3, 37, 128, 384, 2048];
const KS = [1, 2, 8, 32];

describe('groupDecodeGpu on random idx vs a grouping by hand', () => {
  for (const mode of ['uniform', 'hot', 'one'] as const) {
    it(`${mode} idx, odd E, k up to 32, T 1..4 and past one chunk`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(mode.length * 31 + 7);
      const pool = new BufferPool(ctx);
      const cases: { T: number; k: number; E: number }[] = [];
      for (const E of [...ES, ROUTER_MAX_E + 1]) for (const k of KS) cases.push({ T: 1 + Math.floor(r() * 4), k, E });
      // one, two and three 256-pair chunks, no pairs
      cases.push({ T: 32, k: 8, E: 37 }, { T: 9, k: 32, E: 2048 }, { T: 70, k: 8, E: 3 }, { T: 257, k: 1, E: 384 }, { T: 0, k: 8, E: 128 });
      for (const { T, k, E } of cases) {
        const idx = randomIdx(r, T * k, E, mode);
        const nGateUp = 1 + Math.floor(r() * 400);
        const nDown = 1 + Math.floor(r() * 400);
        const got = await gpuChecked(ctx!, async () => {
          const gi = GpuTensor.upload(ctx!, new HostTensor('uint32', [T, k], idx));
          const rec = new Recorder(ctx!);
          const { grouping, active } = groupDecodeGpu(ctx!, rec, gi, E, nGateUp, nDown, { pool });
          const out = await downloadDecodeGrouping(ctx!, rec, grouping, active);
          grouping.destroy(); // back to the pool dirty: the next case must not see it
          gi.destroy();
          return out;
        });
        expectDecode(got, idx, decodeByHand(idx, E, nGateUp, nDown), false, `${mode} T=${T} k=${k} E=${E}`);
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    });
  }
});

describe('routeDecodeGpu on random logits vs top-k and grouping by hand', () => {
  const KINDS: Pick<RouterParams, 'kind' | 'normTopkProb'>[] = [
    { kind: 'raw_topk', normTopkProb: false },
    { kind: 'softmax_topk', normTopkProb: true },
  ];
  for (const kind of KINDS) {
    it(`${kind.kind}: odd E, k up to 32, T 1..4 with ties and repeated tokens, T*k past 256`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(kind.kind.length * 13 + 3);
      const pool = new BufferPool(ctx);
      const cases: { T: number; k: number; E: number }[] = [];
      for (const E of ES) for (const k of KS) if (k <= E) for (let T = 1; T <= 4; T++) cases.push({ T, k, E });
      cases.push({ T: 9, k: 32, E: 384 }, { T: 33, k: 8, E: 37 }); // pairs read back from IDX (past the 256 kept in workgroup memory)
      for (const { T, k, E } of cases) {
        const p: RouterParams = { ...kind, numExperts: E, topK: k };
        const logits = makeLogits(r, T, p); // exact ties: token 1 all equal, tokens 4, 7, .. rounded to a few levels
        // token 3 repeats token 0: the same experts hit by two tokens
        if (T >= 4) logits.copyWithin(3 * E, 0, E);
        const nGateUp = 1 + Math.floor(r() * 400);
        const nDown = 1 + Math.floor(r() * 400);
        const got = await gpuChecked(ctx!, async () => {
          const gl = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, E], logits));
          const rec = new Recorder(ctx!);
          const o = routeDecodeGpu(ctx!, rec, gl, p, nGateUp, nDown, { pool });
          const dec = await downloadDecodeGrouping(ctx!, rec, o.grouping, o.active);
          const res = { dec, idx: (await o.routing.idx.download()).data as Uint32Array, weights: (await o.routing.weights.download()).data as Float32Array };
          for (const t of [gl, o.routing.idx, o.routing.weights]) t.destroy();
          o.grouping.destroy();
          return res;
        });
        const msg = `${kind.kind} T=${T} k=${k} E=${E}`;
        const idx = new Uint32Array(T * k);
        for (let t = 0; t < T; t++) idx.set(topkByHand(logits.subarray(t * E, (t + 1) * E), k), t * k);
        expect(Array.from(got.idx), `${msg} idx`).toEqual(Array.from(idx));
        const w = routerRef(logits, T, p).weights;
        for (let i = 0; i < w.length; i++) expect(Math.abs(got.weights[i] - w[i]), `${msg} weight ${i}`).toBeLessThanOrEqual(2e-6 * Math.max(Math.abs(w[i]), 1e-30));
        expectDecode(got.dec, idx, decodeByHand(idx, E, nGateUp, nDown), false, msg);
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    });
  }
});

describe('route_decode and group_decode within WebGPU default limits', () => {
  it('compile for every router variant on a device with default limits (16384 bytes of workgroup storage)', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    // the test device takes the adapter's limits (lavapipe: more workgroup storage than WebGPU's default); this one the
    // default workgroup storage (route_decode binds 9-10 storage buffers: that limit is the adapter's, as in the library)
    const adapter = await requestAdapter();
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('shader-f16') ? ['shader-f16'] : [],
      requiredLimits: { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage },
    });
    expect(device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
    const variants: RouterVariant[] = [];
    for (const kind of ['raw_topk', 'softmax_topk', 'topk_softmax', 'sigmoid_grouped', 'sigmoid_topk', 'softmax_grouped', 'softmax_biased'] as const) {
      for (const norm of [false, true]) for (const cbias of kind === 'sigmoid_grouped' || kind === 'softmax_biased' ? [false, true] : [false]) variants.push({ kind, norm, cbias });
    }
    const compile = async <V extends Variant>(kernel: Kernel<V>, v: V) => {
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code: signatureWgsl(kernel.signature!(v)) + '\n' + kernel.source(v, ctx!) });
      device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: kernel.entryPoint } });
      const err = await device.popErrorScope();
      expect(err?.message, `${kernel.name} ${JSON.stringify(v)}`).toBeUndefined();
    };
    // each router variant with group_decode (several tokens) and with the one-token grouping in workgroup memory
    for (const v of variants) for (const one of [false, true]) for (const ns of [0, 1]) await compile(routeDecodeKernel, { ...v, one, ...(ns ? { ns } : {}) });
    await compile(groupDecodeKernel, {});
    device.destroy();
  });
});
