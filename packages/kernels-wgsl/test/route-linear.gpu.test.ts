/**
 * routeDecodeGpu given the router linear's inputs (RouterLinearInput): one dispatch where the planner puts the linear
 * in route_decode, with logits as an independent f64 matmul gives them and the routing and grouping that
 * routeDecodeGpu gives for those logits; linearGpu then route_decode where it does not (a bias it cannot read, more
 * experts than it takes).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, DTypeError, ShapeError, ValueError, type DType } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, createGpuContext, requestAdapter, routeDecodeGpu, useRouterLinearInRouting, type GpuContext, type RouterParams } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { downloadDecodeGrouping } from './grouped-helpers.js';
import { routeLinearGroups, ROUTE_LINEAR_MAX_EXPERTS } from '../src/kernels/plan.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** The routers of the cases (numExperts set per case; grouped kinds take E divisible by their groups). */
const ROUTERS: { p: Omit<RouterParams, 'numExperts'>; groups?: number; cbias?: boolean; shared?: number }[] = [
  { p: { kind: 'softmax_topk', topK: 2, normTopkProb: false } },
  { p: { kind: 'softmax_topk', topK: 8, normTopkProb: true }, shared: 1 },
  { p: { kind: 'topk_softmax', topK: 4, normTopkProb: false } },
  { p: { kind: 'raw_topk', topK: 3, normTopkProb: false } },
  { p: { kind: 'sigmoid_grouped', topK: 4, normTopkProb: true, topkGroup: 2, routedScalingFactor: 2.5 }, groups: 4, cbias: true },
  { p: { kind: 'softmax_grouped', topK: 3, normTopkProb: false, topkGroup: 1, routedScalingFactor: 16 }, groups: 2 },
];

interface Case {
  E: number;
  H: number;
  wdtype: DType;
  bdtype?: DType;
}

/** Every group count (routeLinearGroups: E 1-16 one group, to 128 eight), odd H (one column a load) and H % 4 == 0, each weight dtype, biases. */
const CASES: Case[] = [
  { E: 1, H: 9, wdtype: 'float32' },
  { E: 8, H: 4096, wdtype: 'bfloat16' },
  { E: 12, H: 67, wdtype: 'float16', bdtype: 'float32' },
  { E: 20, H: 260, wdtype: 'bfloat16', bdtype: 'bfloat16' },
  { E: 32, H: 2880, wdtype: 'bfloat16', bdtype: 'bfloat16' },
  { E: 40, H: 129, wdtype: 'float32', bdtype: 'float16' },
  { E: 64, H: 2048, wdtype: 'bfloat16' },
  { E: 100, H: 36, wdtype: 'float16' },
  { E: 128, H: 1024, wdtype: 'bfloat16', bdtype: 'float32' },
];

/** x @ w^T + b in f64 from the stored values (no library code), and each sum's magnitude bound (the sum of |terms|). */
function logitsF64(x: Float32Array, w: HostTensor, b: HostTensor | undefined, E: number, H: number): { y: Float64Array; mag: Float64Array } {
  const wf = w.toFloat32();
  const bf = b?.toFloat32();
  const y = new Float64Array(E);
  const mag = new Float64Array(E);
  for (let e = 0; e < E; e++) {
    let s = bf ? bf[e] : 0;
    let m = bf ? Math.abs(bf[e]) : 0;
    for (let h = 0; h < H; h++) {
      s += x[h] * wf[e * H + h];
      m += Math.abs(x[h] * wf[e * H + h]);
    }
    y[e] = s;
    mag[e] = m;
  }
  return { y, mag };
}

/** routeDecodeGpu on `input` (the linear's inputs or logits), everything read back, and the kernels it dispatched. */
async function run(c: GpuContext, input: { x: HostTensor; w: HostTensor; b?: HostTensor } | Float32Array, p: RouterParams, cb: Float32Array | undefined, shared: number, pool: BufferPool) {
  const E = p.numExperts;
  const { result, dispatched } = await withDispatchLog(() =>
    gpuChecked(c, async () => {
      const rec = new Recorder(c);
      const made: GpuTensor[] = [];
      const up = (h: HostTensor) => (made.push(GpuTensor.upload(c, h)), made[made.length - 1]);
      const gcb = cb ? up(HostTensor.fromFloat32([E], cb)) : undefined;
      const opts = { pool, correctionBias: gcb, sharedExperts: shared };
      const o =
        input instanceof Float32Array
          ? { ...routeDecodeGpu(c, rec, up(HostTensor.fromFloat32([1, E], input)), p, 200, 300, opts), logits: undefined }
          : routeDecodeGpu(c, rec, { x: up(input.x), weight: up(input.w), bias: input.b && up(input.b) }, p, 200, 300, opts);
      const dec = await downloadDecodeGrouping(c, rec, o.grouping, o.active);
      const res = {
        dec,
        logits: o.logits ? ((await o.logits.download()).data as Float32Array) : undefined,
        idx: (await o.routing.idx.download()).data as Uint32Array,
        weights: (await o.routing.weights.download()).data as Float32Array,
      };
      for (const t of [...made, o.logits, o.routing.idx, o.routing.weights]) t?.destroy();
      o.grouping.destroy();
      return res;
    }),
  );
  return { ...result, kernels: dispatched.map((d) => d.kernel) };
}

describe('routeDecodeGpu with the router linear in it', () => {
  it('groups of lanes: the fewest with at most 16 experts each, up to 128 experts', () => {
    expect(routeLinearGroups(8)).toEqual({ G: 1, J: 8 });
    expect(routeLinearGroups(17)).toEqual({ G: 2, J: 9 });
    expect(routeLinearGroups(64)).toEqual({ G: 4, J: 16 });
    expect(routeLinearGroups(65)).toEqual({ G: 8, J: 9 });
    expect(routeLinearGroups(128)).toEqual({ G: 8, J: 16 });
    expect(() => routeLinearGroups(ROUTE_LINEAR_MAX_EXPERTS + 1)).toThrow(/route_decode router linear experts/);
    expect(useRouterLinearInRouting(2, 8, 64)).toBe(false); // one token only
    expect(useRouterLinearInRouting(1, ROUTE_LINEAR_MAX_EXPERTS + 1, 8)).toBe(false);
  });

  for (const [ri, router] of ROUTERS.entries()) {
    it(`${router.p.kind}${router.p.normTopkProb ? ' normalised' : ''}${router.shared ? ' + shared expert' : ''}: logits within f32 sums of the f64 ones, routing and grouping as from those logits, one dispatch`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(31 + ri);
      const pool = new BufferPool(ctx);
      for (const cs of CASES) {
        const groups = router.groups ?? 1;
        const E = Math.max(groups, Math.round(cs.E / groups) * groups);
        // grouped kinds: k at most the kept groups' experts
        if (E < router.p.topK || (router.groups && (router.p.topkGroup ?? groups) * (E / groups) < router.p.topK)) continue;
        const p: RouterParams = { ...router.p, numExperts: E, ...(router.groups ? { nGroup: groups } : {}) };
        const x = HostTensor.fromFloat32([1, cs.H], randomArray(r, cs.H, -2, 2));
        const w = HostTensor.fromFloat32([E, cs.H], randomArray(r, E * cs.H, -0.1, 0.1), cs.wdtype);
        const b = cs.bdtype ? HostTensor.fromFloat32([E], randomArray(r, E, -0.5, 0.5), cs.bdtype) : undefined;
        const cb = router.cbias ? randomArray(r, E, -0.2, 0.2) : undefined;
        const msg = `${router.p.kind} E=${E} H=${cs.H} ${cs.wdtype} bias ${cs.bdtype ?? 'none'}`;
        const fused = useRouterLinearInRouting(1, E, cs.H, ctx.adapterInfo.software);
        const got = await run(ctx, { x, w, b }, p, cb, router.shared ?? 0, pool);
        expect(got.kernels, msg).toEqual(fused ? ['route_decode'] : ['linear', 'route_decode']);
        // the logits: every f32 sum order is within a few ulps of the sum's magnitude bound
        const want = logitsF64(x.toFloat32(), w, b, E, cs.H);
        for (let e = 0; e < E; e++) expect(Math.abs(got.logits![e] - want.y[e]), `${msg} logit ${e}`).toBeLessThanOrEqual(1e-6 * want.mag[e] + 1e-30);
        // the rest is route_decode's on those logits: the same bits
        const from = await run(ctx, got.logits!, p, cb, router.shared ?? 0, pool);
        expect(Array.from(got.idx), `${msg} idx`).toEqual(Array.from(from.idx));
        expect(Array.from(got.weights), `${msg} weights`).toEqual(Array.from(from.weights));
        expect(got.dec, `${msg} grouping`).toEqual(from.dec);
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    });
  }

  it('the GPU test adapters take the linear into route_decode for the cases above (else the tests above cover only the fallback)', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    expect(CASES.filter((cs) => useRouterLinearInRouting(1, cs.E, cs.H, ctx!.adapterInfo.software)).length).toBeGreaterThanOrEqual(5);
  });

  it('an fp8 bias and more than 128 experts: linearGpu, then route_decode', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(7);
    const pool = new BufferPool(ctx);
    for (const [E, bdtype] of [[8, 'float8_e4m3fn'], [ROUTE_LINEAR_MAX_EXPERTS + 2, undefined]] as const) {
      const H = 24;
      const p: RouterParams = { kind: 'softmax_topk', numExperts: E, topK: 2, normTopkProb: true };
      const x = HostTensor.fromFloat32([1, H], randomArray(r, H));
      const w = HostTensor.fromFloat32([E, H], randomArray(r, E * H), 'bfloat16');
      const b = bdtype ? HostTensor.fromFloat32([E], randomArray(r, E), bdtype) : undefined;
      const got = await run(ctx, { x, w, b }, p, undefined, 0, pool);
      expect(got.kernels).toEqual(['linear', 'route_decode']);
      const want = logitsF64(x.toFloat32(), w, b, E, H).y;
      for (let e = 0; e < E; e++) expect(Math.abs(got.logits![e] - want[e])).toBeLessThan(1e-5);
    }
    expect(pool.liveCount).toBe(0);
    pool.destroy();
  });

  it("a device whose storage-buffer limit the linear's bindings would pass: linearGpu, then route_decode", async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    // route_decode binds 10 storage buffers for this router, 12 with the linear's x and weight, 13 with its bias: a
    // device limited to 12 takes the linear without a bias into route_decode, with one it records it on its own
    const real = await requestAdapter(); // an adapter gives one device
    const limits: Record<string, number> = {};
    for (const k of Object.keys(Object.getPrototypeOf(real.limits)).concat(Object.keys(real.limits))) {
      const v = (real.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number') limits[k] = v;
    }
    limits.maxStorageBuffersPerShaderStage = 12;
    const adapter = { features: real.features, info: (real as GPUAdapter & { info?: unknown }).info, limits, requestDevice: (d?: GPUDeviceDescriptor) => real.requestDevice(d) } as unknown as GPUAdapter;
    const small = await createGpuContext({ adapter });
    try {
      expect(small.device.limits.maxStorageBuffersPerShaderStage).toBe(12);
      const r = rng(11);
      const pool = new BufferPool(small);
      const E = 8, H = 64;
      const p: RouterParams = { kind: 'softmax_topk', numExperts: E, topK: 2, normTopkProb: true };
      const x = HostTensor.fromFloat32([1, H], randomArray(r, H));
      const w = HostTensor.fromFloat32([E, H], randomArray(r, E * H), 'bfloat16');
      const b = HostTensor.fromFloat32([E], randomArray(r, E), 'float32');
      for (const [bias, kernels] of [[undefined, ['route_decode']], [b, ['linear', 'route_decode']]] as const) {
        const got = await run(small, { x, w, b: bias }, p, undefined, 0, pool);
        expect(got.kernels).toEqual(kernels);
        const want = logitsF64(x.toFloat32(), w, bias, E, H).y;
        for (let e = 0; e < E; e++) expect(Math.abs(got.logits![e] - want[e])).toBeLessThan(1e-5);
      }
      expect(pool.liveCount).toBe(0);
      pool.destroy();
    } finally {
      small.destroy();
    }
  });

  it('typed errors for inputs that do not fit, before anything is recorded or allocated', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const rec = new Recorder(ctx);
    const p: RouterParams = { kind: 'softmax_topk', numExperts: 8, topK: 2, normTopkProb: true };
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([1, 16], new Float32Array(16)));
    const w = GpuTensor.upload(ctx, HostTensor.fromFloat32([8, 12], new Float32Array(96), 'bfloat16'));
    const wi = GpuTensor.upload(ctx, HostTensor.fromFloat32([8, 16], new Float32Array(128), 'float8_e4m3fn'));
    // a router the routing refuses (k past 32), on a linear the planner keeps out of route_decode (E > 128): refused
    // before the linear is recorded
    const E = ROUTE_LINEAR_MAX_EXPERTS + 2;
    const wl = GpuTensor.upload(ctx, HostTensor.fromFloat32([E, 16], new Float32Array(E * 16), 'bfloat16'));
    const pool = new BufferPool(ctx);
    const { dispatched } = await withDispatchLog(async () => {
      expect(() => routeDecodeGpu(ctx!, rec, { x, weight: w }, p, 4, 4, { pool })).toThrow(ShapeError);
      expect(() => routeDecodeGpu(ctx!, rec, { x, weight: wi }, p, 4, 4, { pool })).toThrow(DTypeError);
      expect(() => routeDecodeGpu(ctx!, rec, { x, weight: wl }, { ...p, numExperts: E, topK: 33 }, 4, 4, { pool })).toThrow(ValueError);
    });
    expect(dispatched).toEqual([]);
    expect(pool.liveCount).toBe(0);
    pool.destroy();
    for (const t of [x, w, wi, wl]) t.destroy();
  });
});
