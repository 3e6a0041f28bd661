// MoE.downCombine = 'fused': the decode forward ends with the down GEMV that holds the combine (one dispatch, no
// combine kernel). On every HF fixture (16-bit weights; the fp8 and MXFP4 checkpoints packed) against the
// transformers goldens at T = 16, against the two-dispatch forward ('separate') at T = 1, 3 and 16 on the decode
// GEMVs (the grouped GEMMs keep the combine kernel), through the captured graphs and a MoEStack; the dispatch log
// shows which path ran.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GpuTensor, useCombinedDownGemv, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEStack } from '../src/index.js';
import { ARCHS, FIXTURES, forwardLogged, goldenTensors, loadGolden, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Whether a dispatch log ended its forward(s) on the combined down GEMV (and recorded no combine kernel). */
function combinedPath(log: readonly { kernel: string; variant: Record<string, unknown> }[]): 'fused' | 'separate' | 'mixed' {
  const fused = log.some((d) => d.kernel === 'moe_gemv' && d.variant.combine !== undefined);
  const combine = log.some((d) => d.kernel === 'combine');
  return fused && !combine ? 'fused' : combine && !fused ? 'separate' : 'mixed';
}

/** The layer's forward on x [T, H] under each downCombine choice: output and path. */
async function bothWays(c: GpuContext, moe: MoE, x: Float32Array, T: number) {
  const out: Record<'fused' | 'separate', { y: Float32Array; path: string }> = {} as never;
  for (const choice of ['fused', 'separate'] as const) {
    moe.downCombine = choice;
    const { y, dispatched } = await forwardLogged(c, moe, x, T, moe.hiddenDim);
    out[choice] = { y, path: combinedPath(dispatched) };
  }
  moe.downCombine = 'auto';
  return out;
}

describe("MoE.downCombine = 'fused' (the down GEMV with the combine in it)", () => {
  for (const arch of ARCHS) {
    it(`${arch} bf16: the golden at T = 16, the separate path's output at T = 1, 3 and 16`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const c = ctx;
      const g = loadGolden(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c });
      try {
        const r = rng(41);
        // the grouped GEMMs end with the combine kernel whatever downCombine says
        moe.expertKernels = 'grouped';
        expect((await bothWays(c, moe, g.inputBf16.subarray(0, g.H), 1)).fused.path, `${arch} grouped GEMMs`).toBe('separate');
        // the decode GEMVs at every T (the planner's at T = 1 and 3; at T = 16 where it would take the grouped GEMMs)
        moe.expertKernels = 'gemv';
        for (const T of [1, 3, g.T]) {
          const x = T === g.T ? g.inputBf16 : randomArray(r, T * g.H);
          const o = await bothWays(c, moe, x, T);
          expect([o.fused.path, o.separate.path], `${arch} T=${T}`).toEqual(['fused', 'separate']);
          expect(relErr(o.fused.y, o.separate.y), `${arch} T=${T} fused vs separate`).toBeLessThan(1e-5);
          if (T === g.T) expect(relErr(o.fused.y, g.outputBf16), `${arch} golden`).toBeLessThan(g.bf16Tol);
        }
      } finally {
        moe.destroy();
      }
    });
  }

  it('the packed checkpoints: deepseek_v3_fp8 (weight-only golden within 1e-4) and gpt_oss_mxfp4 (its golden)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    for (const arch of ['deepseek_v3_fp8', 'gpt_oss_mxfp4'] as const) {
      const g = goldenTensors(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, device: DeviceRef.GPU(), ctx: c, ...(arch === 'deepseek_v3_fp8' ? { activationQuant: 'none' as const } : {}) });
      try {
        const x = g.get('input')!;
        const T = x.shape[0];
        const want = g.get(arch === 'deepseek_v3_fp8' ? 'output_weight_only' : 'output')!.values;
        const o = await bothWays(c, moe, x.values, T);
        expect([o.fused.path, o.separate.path], arch).toEqual(['fused', 'separate']);
        expect(relErr(o.fused.y, o.separate.y), `${arch} fused vs separate`).toBeLessThan(1e-5);
        expect(relErr(o.fused.y, want), `${arch} golden`).toBeLessThan(1e-4);
      } finally {
        moe.destroy();
      }
    }
  });

  it("'auto' follows the planner, graphs replay the fused forward bit for bit, and a MoEStack of fused layers equals the layers one by one", async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const layers = await Promise.all([0, 0].map(() => MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c })));
    const stack = new MoEStack(layers, { ownsLayers: true });
    try {
      await gpuChecked(c, async () => {
        const H = layers[0].hiddenDim;
        const x = randomArray(rng(3), H);
        const up = () => GpuTensor.upload(c, new HostTensor('float32', [1, H], x));
        const auto = await forwardLogged(c, layers[0], x, 1, H);
        // 'auto': the planner's choice for this adapter and 16-bit weights (KERNEL_CROSSOVERS.combinedDownMaxTokens: up to 4 tokens)
        expect(combinedPath(auto.dispatched)).toBe(useCombinedDownGemv(1, 'auto', { software: c.adapterInfo.software, packed: false }) ? 'fused' : 'separate');
        for (const l of layers) l.downCombine = 'fused';
        const uncached = await (async () => {
          layers[0].useGraphs = false;
          const r = await forwardLogged(c, layers[0], x, 1, H);
          layers[0].useGraphs = true;
          return r;
        })();
        expect(combinedPath(uncached.dispatched)).toBe('fused');
        const first = await forwardLogged(c, layers[0], x, 1, H); // captures
        const again = await forwardLogged(c, layers[0], x, 1, H); // replays
        expect(first.y).toEqual(uncached.y);
        expect(again.y).toEqual(uncached.y);
        // the stack: layer 1 on layer 0's output
        const xg = up();
        const y0 = await layers[0].forward(xg);
        const y1 = await layers[1].forward(y0);
        const want = (await y1.download()).toFloat32();
        const s = stack.forwardGpuSync(xg);
        expect((await s.download()).toFloat32()).toEqual(want);
        for (const b of [xg, y0, y1, s]) b.destroy();
      });
    } finally {
      stack.destroy();
    }
  });
});
