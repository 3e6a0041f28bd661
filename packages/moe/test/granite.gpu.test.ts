// Granite MoE checkpoints on the GPU: the Mixtral fixture in Granite's layout against its transformers golden
// (T = 16: the decode GEMVs; T = 600: the prefill GEMMs), and random Granite 4.0 layers (shared MLP) against the
// independent per-token reference at T = 1 (route_decode), 13 and 70.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { expectGoldenSets, fixtureCheckpoints, relErr } from './helpers.js';
import { graniteCheckpoint, graniteFromMixtral } from './granite-checkpoint.js';

let ctx: GpuContext | null;
const open = fixtureCheckpoints();
beforeAll(async () => {
  ctx = await testGpu();
});

describe('granite MoE checkpoints (GPU)', () => {
  it('granitemoe: the Mixtral fixture in Granite\'s layout gives its transformers golden (T = 16 and 600)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const moe = await MoE.fromHuggingFace({ source: await graniteFromMixtral(await open('mixtral')), layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      await expectGoldenSets(moe, 'mixtral', ctx);
    } finally {
      moe.destroy();
    }
  });

  it('granitemoehybrid (shared MLP): the reference at T = 1, 13 and 70', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    for (const [seed, T] of [[91, 1], [93, 13], [97, 70]] as const) {
      const { source, cfg, w, x } = graniteCheckpoint(seed, T, 'granitemoehybrid');
      const moe = await MoE.fromHuggingFace({ source, layer: 1, device: DeviceRef.GPU(), ctx });
      try {
        const { result: got, dispatched } = await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(x)));
        if (T === 1) expect(dispatched.map((d) => d.kernel), 'T = 1 routes in route_decode').toContain('route_decode');
        const err = relErr(got, referenceMoE(cfg, w, x, T));
        expect(err, `T=${T}`).toBeLessThan(stagedTol(dispatched, 1e-4));
      } finally {
        moe.destroy();
      }
    }
  });
});
