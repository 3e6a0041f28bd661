// compressed-tensors int4 checkpoints (written by test/ct-writer.ts over the dense fixtures) on the GPU:
// the packed int4 experts (with zero points where asymmetric) through the decode GEMVs (T = 16) and the
// prefill GEMMs (T = 600), against the same layer with the dequantized weights on the CPU.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { dirSource } from '@webmoe/tensor/node';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { MoE, QuantizedExperts, openHFCheckpoint, type MoECheckpoint } from '../src/index.js';
import { FIXTURES, GOLDEN_SETS, expectPrefillPaths, expertGemmPaths, forwardLogged, loadGolden, relErr, stagedTol } from './helpers.js';
import { CT_CASES, CT_FIXTURES, ctCase, loadCTGolden } from './ct-writer.js';

let ctx: GpuContext | null;
const opened: MoECheckpoint[] = [];
async function open(arch: string): Promise<MoECheckpoint> {
  const ck = await openHFCheckpoint(dirSource(`${FIXTURES}/${arch}`));
  opened.push(ck);
  return ck;
}
beforeAll(async () => {
  ctx = await testGpu();
});
afterAll(async () => {
  for (const ck of opened) await ck.close?.();
});

describe('compressed-tensors int4 layers on the GPU vs the dequantized layer on the CPU', () => {
  for (const c of CT_CASES) {
    for (const set of GOLDEN_SETS) {
      it(`${c.name}, ${set}`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const { ct, deq } = await ctCase(c, open);
        const g = loadGolden(c.arch, set);
        const want = await (await MoE.fromHuggingFace({ source: deq, layer: 0, device: DeviceRef.CPU() })).forward(g.input);
        const moe = await MoE.fromHuggingFace({ source: ct, layer: 0, device: DeviceRef.GPU(), ctx });
        try {
          const s = moe.stacked as QuantizedExperts;
          expect(s.gateUpProj.gpuValue.dtype).toBe('uint8'); // packed on the GPU, no float copy
          expect(!!s.gateUpZeros?.gpuValue).toBe(!c.scheme.symmetric);
          const { y, dispatched } = await forwardLogged(ctx, moe, g.input, g.T, g.H);
          const paths = set === 'golden' ? expertGemmPaths(dispatched) : expectPrefillPaths(dispatched, { dense: false });
          if (set === 'golden') expect(paths).toContain('down:gemv');
          const err = relErr(y, want);
          expect(err, `rel err ${err} on ${paths.join(' ')}`).toBeLessThan(stagedTol(dispatched, 1e-5));
        } finally {
          moe.destroy();
        }
      });
    }
  }
});

describe('compressed-tensors int4 fixtures on the GPU vs transformers goldens (weight-only; fixtures from scripts/fixtures/make-compressed-tensors.py on the H200)', () => {
  for (const f of CT_FIXTURES) {
    for (const set of f.sets) {
      it(`${f.name} ${set}`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const g = loadCTGolden(f.name, set);
        const moe = await MoE.fromHuggingFace({ source: g.dir, layer: 0, device: DeviceRef.GPU(), ctx });
        try {
          expect((moe.stacked as QuantizedExperts).gateUpProj.gpuValue.dtype).toBe('uint8');
          const { y, dispatched } = await forwardLogged(ctx, moe, g.input, g.T, g.H);
          // golden-large (T = 72, k = 2, E = 6: 24 rows per expert): the prefill kernels; golden (T = 16): the decode GEMVs
          const paths = set === 'golden-large' ? expectPrefillPaths(dispatched, { dense: false }) : expertGemmPaths(dispatched);
          const err = relErr(y, g.output);
          expect(err, `rel err ${err} on ${paths.join(' ')}`).toBeLessThan(stagedTol(dispatched, g.tol));
        } finally {
          moe.destroy();
        }
      });
    }
  }
});
