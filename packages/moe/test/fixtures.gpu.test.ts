// The layer on the GPU (one Recorder, one submit) against HuggingFace's own MoE blocks:
// T = 16 (the decode kernels) and T = 600 (golden-large: the prefill kernels, checked from the dispatch log).
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { ARCHS, FIXTURES, GOLDEN_SETS, expectPrefillPaths, forwardLogged, loadGolden, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('MoE.fromHuggingFace on the GPU vs transformers goldens', () => {
  for (const set of GOLDEN_SETS) {
    for (const arch of ARCHS) {
      for (const dtype of ['float32', 'bfloat16'] as const) {
        it(`${arch} ${set}: ${dtype} weights${set === 'golden-large' ? ', on the prefill kernels' : ''}`, async (c) => {
          if (!ctx) return c.skip('no WebGPU adapter');
          const g = loadGolden(arch, set);
          const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype, device: DeviceRef.GPU(), ctx });
          try {
            // Weights stay in their storage dtype on the GPU.
            for (const p of [moe.gateUpProj, moe.downProj, moe.gate.weight]) expect(p.gpuValue.dtype).toBe(dtype);
            const input = dtype === 'float32' ? g.input : g.inputBf16;
            const want = dtype === 'float32' ? g.output : g.outputBf16;
            const tol = dtype === 'float32' ? g.f32Tol : g.bf16Tol;
            const { y, dispatched } = await forwardLogged(ctx, moe, input, g.T, g.H);
            // T = 600: dense experts, T*k >= 64E on every fixture: the fast prefill GEMMs, never the decode GEMV.
            const paths = set === 'golden-large' ? expectPrefillPaths(dispatched, { dense: true }) : [];
            // T = 16: the decode GEMVs, grouped by the one-dispatch decode grouping (no multi-pass grouping kernels)
            if (set === 'golden') {
              const kernels = dispatched.map((d) => d.kernel);
              if (kernels.includes('moe_gemv')) expect(kernels.filter((k) => k.startsWith('group')), `${arch} decode grouping`).toEqual(['group_decode']);
            }
            const err = relErr(y, want);
            expect(err, `${arch} ${set} ${dtype} GPU rel err ${err} ${paths.join(' ')}`).toBeLessThan(tol);
          } finally {
            moe.destroy();
          }
        });
      }
    }
  }
});
