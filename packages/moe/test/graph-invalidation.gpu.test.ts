// Captured forward graphs never outlive what they recorded: new weights (loadStateDict) and another
// expert-kernel choice make the next forward record afresh. OLMoE fixture, checked against the independent
// per-token reference (test/reference.ts) of whatever weights the layer holds at that moment.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GRAPH_CAPTURE_AT, GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { FIXTURES, relErr } from './helpers.js';
import { referenceMoE, route, type RefConfig, type RefWeights } from './reference.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

// OLMoE fixture (config.json): H 64, I 32, E 16, k 8, softmax top-k without renormalisation
const CFG: RefConfig = { H: 64, E: 16, k: 8, I: 32, router: 'softmax_topk', normTopkProb: false, act: { kind: 'silu' } };
const T = 4;

function refWeights(sd: Map<string, HostTensor>): RefWeights {
  const f = (n: string) => sd.get(n)!.toFloat32();
  return { gate: f('gate.weight'), gateUp: f('experts.gate_up_proj'), down: f('experts.down_proj') };
}

/** A state dict of the layer's shapes with new random f32 weights. */
function newWeights(moe: MoE, seed: number): Map<string, HostTensor> {
  const r = rng(seed);
  const sd = new Map<string, HostTensor>();
  for (const [name, p] of moe.namedParameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const scale = 1.5 / Math.sqrt(p.shape[p.shape.length - 1]);
    sd.set(name, HostTensor.fromFloat32(p.shape, Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), p.dtype));
  }
  return sd;
}

/** T tokens whose top-k choice is clear under every weight set given. */
function clearTokens(ws: RefWeights[], seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(T * CFG.H);
  for (let kept = 0, tries = 0; kept < T; tries++) {
    if (tries > 1000) throw new Error('no tokens with a clear routing margin');
    const cand = Float32Array.from({ length: CFG.H }, () => r() * 2 - 1);
    if (ws.every((w) => route(CFG, w, cand, 0).margin > 2e-3)) x.set(cand, CFG.H * kept++);
  }
  return x;
}

/** forwardGpu on an uploaded x, downloaded. */
async function viaForwardGpu(moe: MoE, x: Float32Array): Promise<Float32Array> {
  const xg = GpuTensor.upload(ctx!, new HostTensor('float32', [T, CFG.H], x));
  try {
    const y = await moe.forwardGpu(xg);
    const out = (await y.download()).data as Float32Array;
    y.destroy();
    return out;
  } finally {
    xg.destroy();
  }
}

/** The kernel names `fn` dispatches through a Recorder (a replayed graph dispatches none). */
async function kernelsOf<R>(fn: () => Promise<R>): Promise<{ names: string[]; result: R }> {
  const names: string[] = [];
  const orig = Recorder.prototype.dispatch;
  Recorder.prototype.dispatch = function (this: Recorder, d: Parameters<Recorder['dispatch']>[0]) {
    names.push(d.kernel.name);
    return orig.call(this, d);
  };
  try {
    return { names, result: await fn() };
  } finally {
    Recorder.prototype.dispatch = orig;
  }
}

describe('MoE forward graphs are invalidated by new weights and by another kernel choice', () => {
  const load = () => MoE.fromHuggingFace({ source: `${FIXTURES}/olmoe`, layer: 0, dtype: 'float32', device: DeviceRef.GPU(), ctx: ctx! });

  it('forward at T = 4, loadStateDict with new weights, forward again: the new weights\' output', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const moe = await load();
    try {
      const w1 = refWeights(moe.stateDict());
      const sd2 = newWeights(moe, 7);
      const w2 = refWeights(sd2);
      const x = clearTokens([w1, w2], 3);
      await gpuChecked(ctx, async () => {
        const y1 = await moe.forward(x); // captures the T = 4 graph
        expect(relErr(y1, referenceMoE(CFG, w1, x, T))).toBeLessThan(1e-4);
        expect(relErr(await moe.forward(x), y1)).toBe(0); // replay
        moe.loadStateDict(sd2);
        const y2 = await moe.forward(x);
        expect(relErr(y2, referenceMoE(CFG, w2, x, T)), 'forward after loadStateDict').toBeLessThan(1e-4);
      });
    } finally {
      moe.destroy();
    }
  });

  it('the same through forwardGpu (no host round trip to notice a stale graph)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const moe = await load();
    try {
      const sd1 = moe.stateDict(); // the fixture's tensors (loading others replaces, never mutates, them)
      const w1 = refWeights(sd1);
      const sd2 = newWeights(moe, 8);
      const w2 = refWeights(sd2);
      const x = clearTokens([w1, w2], 4);
      await gpuChecked(ctx, async () => {
        expect(relErr(await viaForwardGpu(moe, x), referenceMoE(CFG, w1, x, T))).toBeLessThan(1e-4);
        expect(relErr(await viaForwardGpu(moe, x), referenceMoE(CFG, w1, x, T))).toBeLessThan(1e-4); // replay
        moe.loadStateDict(sd2);
        expect(relErr(await viaForwardGpu(moe, x), referenceMoE(CFG, w2, x, T)), 'forwardGpu after loadStateDict').toBeLessThan(1e-4);
        // and back to the first weights (a graph of the second set must not be replayed either)
        moe.loadStateDict(sd1);
        expect(relErr(await viaForwardGpu(moe, x), referenceMoE(CFG, w1, x, T)), 'forwardGpu after loading the first weights again').toBeLessThan(1e-4);
      });
    } finally {
      moe.destroy();
    }
  });

  it('changing expertKernels after a captured forward records the other kernels', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const moe = await load();
    try {
      const w1 = refWeights(moe.stateDict());
      const x = clearTokens([w1], 5);
      const want = referenceMoE(CFG, w1, x, T);
      await gpuChecked(ctx, async () => {
        moe.expertKernels = 'gemv';
        let a = await kernelsOf(() => moe.forward(x)); // recorded afresh: a token count's first call
        for (let i = 1; i < GRAPH_CAPTURE_AT; i++) a = await kernelsOf(() => moe.forward(x)); // captures with the GEMVs
        expect(a.names).toContain('moe_gemv');
        expect(relErr(a.result, want)).toBeLessThan(1e-4);
        const replay = await kernelsOf(() => moe.forward(x));
        expect(replay.names, 'a replay records nothing').toEqual([]);
        moe.expertKernels = 'grouped';
        const b = await kernelsOf(() => moe.forward(x));
        expect(b.names, 'after the change: the grouped GEMMs').toContain('grouped_gemm');
        expect(b.names).not.toContain('moe_gemv');
        expect(relErr(b.result, want)).toBeLessThan(1e-4);
        moe.expertKernels = 'gemv';
        const c = await kernelsOf(() => moe.forward(x));
        expect(c.names, 'and back').toContain('moe_gemv');
        expect(c.names).not.toContain('grouped_gemm');
      });
    } finally {
      moe.destroy();
    }
  });
});
