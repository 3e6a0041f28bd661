// Property-based (fast-check): random MoE configurations on the GPU against the independent per-token
// reference (test/reference.ts, shares no code with the package), with identical weights (rounded to the
// drawn storage dtype: float32, bfloat16, float16).
// Seed: WEBMOE_FC_SEED when set, else a fixed one (CI is reproducible; fast-check prints the seed and
// the shrunk counterexample on failure).
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { DeviceRef, type DType } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, relErr } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, DeepseekV3Gate, Llama4Gate } from '../src/index.js';
import { buildCase, type RandomCase } from './random-cases.js';
import { referenceMoE, type RefConfig, type Router } from './reference.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const SEED = Number(process.env.WEBMOE_FC_SEED ?? 20261128);
const RUNS = 15;

const GATES = { raw_topk: MoEGate, softmax_topk: SoftmaxTopKGate, topk_softmax: TopKSoftmaxGate, sigmoid_grouped: DeepseekV3Gate, sigmoid_topk: Llama4Gate } as const;

const params = fc.record({
  E: fc.integer({ min: 1, max: 10 }),
  k: fc.integer({ min: 1, max: 4 }),
  H: fc.integer({ min: 4, max: 40 }),
  I: fc.integer({ min: 2, max: 24 }),
  T: fc.integer({ min: 1, max: 20 }),
  router: fc.constantFrom<Router>('raw_topk', 'softmax_topk', 'topk_softmax', 'sigmoid_grouped', 'sigmoid_topk'),
  act: fc.constantFrom('silu', 'swiglu_limit', 'swigluoai'),
  shared: fc.constantFrom('none', 'plain', 'gated'),
  sharedDim: fc.integer({ min: 2, max: 12 }),
  dtype: fc.constantFrom<DType>('float32', 'bfloat16', 'float16'),
  norm: fc.boolean(),
  groupPick: fc.nat(),
  topkGroupPick: fc.nat(),
  scale: fc.constantFrom(1, 2.5),
  weightFirst: fc.boolean(),
  seed: fc.nat({ max: 1_000_000 }),
});
type Params = typeof params extends fc.Arbitrary<infer P> ? P : never;

const BASE: Params = {
  E: 6, k: 2, H: 24, I: 10, T: 9, router: 'softmax_topk', act: 'silu', shared: 'none', sharedDim: 6, dtype: 'float32',
  norm: true, groupPick: 0, topkGroupPick: 0, scale: 1, weightFirst: false, seed: 1,
};
/** Always run, besides the drawn layers: float16 storage, E = 1, a grouped router, a gated shared expert. */
const EXAMPLES: Params[] = [
  { ...BASE, dtype: 'float16', act: 'swiglu_limit', seed: 11 },
  { ...BASE, E: 1, k: 3, T: 5, router: 'raw_topk', seed: 12 },
  { ...BASE, E: 8, k: 3, router: 'sigmoid_grouped', groupPick: 2, topkGroupPick: 1, scale: 2.5, dtype: 'bfloat16', seed: 13 },
  { ...BASE, shared: 'gated', sharedDim: 7, H: 17, I: 9, dtype: 'float16', seed: 14 },
];

/** A valid layer for the drawn parameters (k clipped to E, groups that divide E and hold k experts). */
function toCase(p: Params): { c: RandomCase; T: number; seed: number } {
  const E = p.E;
  const k = Math.min(p.k, E);
  const cfg: RefConfig = { H: p.H, E, k, I: p.I, router: p.router, act: { kind: 'silu' } };
  const opts: RandomCase['opts'] = { hiddenDim: p.H, numExperts: E, numExpertsPerToken: k, moeDim: p.I, gateCls: GATES[p.router] };
  if (p.router === 'softmax_topk' || p.router === 'sigmoid_grouped') {
    cfg.normTopkProb = p.norm;
    opts.gateOptions = { normTopkProb: p.norm };
  }
  if (p.router === 'sigmoid_grouped') {
    const divisors = [...Array(E).keys()].map((i) => i + 1).filter((d) => E % d === 0);
    const nGroup = divisors[p.groupPick % divisors.length];
    const gsize = E / nGroup;
    const topkGroup = Math.max(Math.ceil(k / gsize), 1 + (p.topkGroupPick % nGroup));
    Object.assign(cfg, { nGroup, topkGroup, routedScalingFactor: p.scale });
    opts.gateOptions = { ...opts.gateOptions, nGroup, topkGroup, routedScalingFactor: p.scale };
  }
  if (p.router === 'sigmoid_topk' && p.weightFirst) cfg.applyRouterWeightFirst = opts.applyRouterWeightFirst = true;
  if (p.act === 'swiglu_limit') {
    cfg.act = { kind: 'swiglu_limit', limit: 0.5 };
    opts.swigluLimit = 0.5;
  } else if (p.act === 'swigluoai') {
    cfg.act = { kind: 'swigluoai', limit: 0.9, alpha: 1.702 };
    cfg.interleaved = true;
    opts.expertActivation = { kind: 'swigluoai', limit: 0.9, alpha: 1.702, layout: 'interleaved' };
    opts.hasExpertBias = true;
  }
  if (p.shared !== 'none') {
    cfg.sharedDim = p.sharedDim;
    opts.hasSharedExperts = true;
    opts.sharedExpertsDim = p.sharedDim;
    if (p.shared === 'gated') cfg.sharedGate = opts.hasSharedExpertGate = true;
  }
  const name = `E=${E} k=${k} H=${p.H} I=${p.I} T=${p.T} ${p.router}${cfg.nGroup ? `(${cfg.nGroup}/${cfg.topkGroup})` : ''} ${p.act} shared=${p.shared} ${p.dtype}${cfg.applyRouterWeightFirst ? ' weight-first' : ''}`;
  return { c: { name, cfg, dtype: p.dtype, opts }, T: p.T, seed: p.seed };
}

describe('MoE on the GPU equals the independent reference on random configurations (fast-check)', () => {
  it(`${RUNS} random layers (E, k, H, I, T, router, activation, shared expert, dtype), seed ${SEED}`, async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const seen: string[] = [];
    await fc.assert(
      fc.asyncProperty(params, async (p) => {
        const { c, T, seed } = toCase(p);
        seen.push(c.name);
        const { sd, w, x } = buildCase(c, seed, T);
        const gpu = new MoE({ ...c.opts, dtype: c.dtype, devices: [DeviceRef.GPU()], ctx: ctx! });
        try {
          gpu.loadStateDict(sd);
          const want = referenceMoE(c.cfg, w, x, T);
          const got = await gpu.forward(x);
          expect(got.length).toBe(T * c.cfg.H);
          expect(got.every(Number.isFinite), c.name).toBe(true);
          const err = relErr(got, want);
          expect(err, `${c.name}: rel err ${err}`).toBeLessThan(1e-4);
        } finally {
          gpu.destroy();
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true, examples: EXAMPLES.map((e) => [e]) },
    );
    expect(seen.length).toBeGreaterThanOrEqual(RUNS);
    for (const want of [/ float16/, /^E=1 /, /sigmoid_grouped\(\d+\/\d+\)/, /shared=gated/]) expect(seen.some((n) => want.test(n)), String(want)).toBe(true);
    console.log(`[properties] ${seen.length} layers:\n  ${seen.join('\n  ')}`);
    expect(ctx!.takeUncapturedErrors()).toEqual([]);
  }, 1_500_000); // 19 layers, each compiling its own kernel variants: slow on a loaded lavapipe
});
