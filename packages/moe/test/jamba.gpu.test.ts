// Jamba checkpoints on the GPU: the OLMoE fixture in Jamba's names against its transformers golden (T = 16: the decode
// GEMVs; T = 600: the prefill GEMMs; T = 1: route_decode with the router linear in it).
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { expectGoldenSets, fixtureCheckpoints, loadGolden, relErr } from './helpers.js';
import { jambaFromOlmoe } from './jamba-checkpoint.js';

let ctx: GpuContext | null;
const open = fixtureCheckpoints();
beforeAll(async () => {
  ctx = await testGpu();
});

describe('jamba checkpoints (GPU)', () => {
  it('the OLMoE fixture in Jamba\'s names gives its transformers golden (T = 16 and 600, and T = 1: its first token)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const moe = await MoE.fromHuggingFace({ source: jambaFromOlmoe(await open('olmoe')), layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      await expectGoldenSets(moe, 'olmoe', ctx);
      const g = loadGolden('olmoe');
      const { result: y1, dispatched } = await withDispatchLog(() => moe.forward(g.input.subarray(0, g.H)));
      expect(relErr(y1, g.output.subarray(0, g.H))).toBeLessThan(g.f32Tol);
      // the fixture's small router (E x H) runs inside route_decode at T = 1: no linear dispatch of its own
      expect(dispatched.filter((d) => d.kernel === 'route_decode' && d.variant.linW !== undefined)).toHaveLength(1);
      expect(dispatched.filter((d) => d.kernel === 'linear')).toHaveLength(0);
    } finally {
      moe.destroy();
    }
  });
});
