// DeepSeek-V2 checkpoints (model_type deepseek_v2) through MoE.fromHuggingFace on the GPU, against the independent
// per-token reference: T = 1 (route_decode with the softmax_grouped router), 13 (router + decode grouping) and 70
// (the grouped GEMMs), both top-k methods.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { fixtureCheckpoints, loadGolden, relErr } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';
import { deepseekV2Checkpoint } from './hub-checkpoint.js';

let ctx: GpuContext | null;
const open = fixtureCheckpoints();
beforeAll(async () => {
  ctx = await testGpu();
});

describe('deepseek_v2 checkpoints (GPU)', () => {
  for (const method of ['group_limited_greedy', 'greedy'] as const) {
    it(`topk_method ${method}: the reference at T = 1, 13 and 70`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      for (const [seed, T] of [[51, 1], [53, 13], [57, 70]] as const) {
        const { source, cfg, w, x } = deepseekV2Checkpoint(seed, T, method);
        const moe = await MoE.fromHuggingFace({ source, layer: 1, device: DeviceRef.GPU(), ctx });
        try {
          const { result: got, dispatched } = await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(x)));
          const kernels = dispatched.map((d) => d.kernel);
          if (T === 1) expect(kernels, 'T = 1 routes in route_decode').toContain('route_decode');
          expect(dispatched.filter((d) => d.kernel === 'route_decode' || d.kernel === 'router').every((d) => d.variant.kind === 'softmax_grouped'), kernels.join(' ')).toBe(true);
          const err = relErr(got, referenceMoE(cfg, w, x, T));
          expect(err, `${method} T=${T}`).toBeLessThan(stagedTol(dispatched, 1e-4));
        } finally {
          moe.destroy();
        }
      }
    });
  }

  it('greedy against a transformers golden: the OLMoE fixture seen as deepseek_v2 at scale 2.5 gives 2.5x its golden (T = 16, and T = 1)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const ck = await open('olmoe');
    const g = loadGolden('olmoe');
    const c = ck.config as Record<string, unknown>;
    const source = patchedCheckpoint(ck, {
      config: { model_type: 'deepseek_v2', n_routed_experts: c.num_experts, moe_intermediate_size: c.intermediate_size, n_shared_experts: 0, topk_method: 'greedy', routed_scaling_factor: 2.5 },
    });
    const moe = await MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      const H = g.input.length / g.T;
      for (const T of [g.T, 1]) {
        const { result: y, dispatched } = await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(g.input.subarray(0, T * H))));
        expect(relErr(y, g.output.subarray(0, T * H).map((v) => 2.5 * v)), `T=${T}`).toBeLessThan(stagedTol(dispatched, g.f32Tol));
      }
    } finally {
      moe.destroy();
    }
  });
});
