// The prefill path against transformers: OLMoE's large golden (T = 600, E = 16, k = 8: T*k >= 64E, so the
// expert GEMMs take the fast kernels: register-blocked f32 for float32 weights, subgroup-matrix for bfloat16
// where the adapter has it) on the GPU, float32 and bfloat16 weights. The fast
// kernels' other tests compare with the package's own reference; this one reaches them from a golden.
import { join } from 'node:path';
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { FIXTURES, forwardLogged, readTensorsF32, relErr } from './helpers.js';
import { readFileSync } from 'node:fs';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('prefill (fast expert GEMMs) vs the transformers golden', () => {
  const dir = join(FIXTURES, 'olmoe');
  for (const dtype of ['float32', 'bfloat16'] as const) {
    it(`olmoe golden-large (T = 600), ${dtype} weights`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const g = readTensorsF32(join(dir, 'golden-large.safetensors'));
      const meta = JSON.parse(readFileSync(join(dir, 'golden-large.json'), 'utf8')) as { tokens: number; f32_rel_tol: number; bf16_rel_tol: number };
      const input = g.get(dtype === 'float32' ? 'input' : 'input_bf16')!;
      const want = g.get(dtype === 'float32' ? 'output' : 'output_bf16')!.values;
      const [T, H] = input.shape;
      expect(T).toBe(meta.tokens);
      const moe = await MoE.fromHuggingFace({ source: dir, layer: 0, dtype, device: DeviceRef.GPU(), ctx });
      try {
        expect(T * moe.numExpertsPerToken).toBeGreaterThanOrEqual(64 * moe.numExperts);
        const { y, dispatched } = await forwardLogged(ctx, moe, input.values, T, H);
        const names = dispatched.map((d) => d.kernel);
        // float32 weights: the register-blocked f32 kernel; 16-bit weights: the subgroup-matrix kernel where the adapter has it, else that one
        const fast = names.filter((n) => n === 'grouped_gemm_fast' || n === 'grouped_gemm_sgmat');
        expect(fast.length, `the fast prefill kernels ran: ${[...new Set(names)].join(' ')}`).toBeGreaterThan(0);
        if (dtype === 'float32') expect(new Set(fast)).toEqual(new Set(['grouped_gemm_fast']));
        const err = relErr(y, want);
        expect(err, `rel err ${err}`).toBeLessThan(dtype === 'float32' ? meta.f32_rel_tol : meta.bf16_rel_tol);
      } finally {
        moe.destroy();
      }
    }, 600_000);
  }
});
