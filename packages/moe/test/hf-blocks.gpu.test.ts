// MoE blocks against transformers' own (fixtures/hf-blocks) on the GPU: each golden set's tokens at once (T = 16: the
// decode grouping and GEMVs; T = 600: the prefill GEMMs) and one token at a time
// (route_decode), float32 and bfloat16 weights.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, stagedTol, withDispatchLog, type Dispatched } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { GOLDEN_SETS, relErr } from './helpers.js';
import { HF_BLOCKS, HF_BLOCK_FIXTURES, loadHFBlockGolden } from './hf-blocks-fixtures.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

// bf16 weights against the f32 golden (its weights rounded, 2^-9 relative each): lavapipe measured 3.0-3.6e-3
const BF16_TOL = 1e-2;

describe('MoE.fromHuggingFace on the GPU vs the transformers goldens of fixtures/hf-blocks', () => {
  for (const f of HF_BLOCK_FIXTURES) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      it(`${f.name}: ${dtype} weights, every golden set (all its tokens) and the first 3 tokens alone`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const moe = await MoE.fromHuggingFace({ source: `${HF_BLOCKS}/${f.name}`, layer: 0, dtype, device: DeviceRef.GPU(), ctx });
        try {
          // golden (T = 16) first: its tokens are also the single-token checks below
          const sets = GOLDEN_SETS.map((set) => ({ set, g: loadHFBlockGolden(f.name, set) }));
          const g = sets[0].g;
          const tol = (dispatched: readonly Dispatched[]) => (dtype === 'float32' ? stagedTol(dispatched, g.tol) : BF16_TOL);
          for (const { set, g: gs } of sets) {
            const all = await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(gs.input)));
            const err = relErr(all.result, gs.output);
            expect(err, `${f.name} ${dtype} ${set} T=${gs.T} rel err ${err}`).toBeLessThan(tol(all.dispatched));
          }
          for (let i = 0; i < 3; i++) {
            const one = await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(g.row('input', i))));
            // the first one-token forward records the decode path (later ones replay its recorded graph)
            if (i === 0) expect(one.dispatched.map((d) => d.kernel), 'one token takes the fused decode routing').toContain('route_decode');
            const e1 = relErr(one.result, g.row('output', i));
            expect(e1, `${f.name} ${dtype} token ${i} rel err ${e1}`).toBeLessThan(tol(one.dispatched));
          }
        } finally {
          moe.destroy();
        }
      });
    }
  }
});
