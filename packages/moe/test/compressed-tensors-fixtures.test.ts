// The compressed-tensors int4 fixtures (scripts/fixtures/make-compressed-tensors.py: checkpoints written from the
// format's definition, goldens from the HF transformers block with the dequantized weights) on the CPU path.
// Their GPU counterpart is in compressed-tensors.gpu.test.ts.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { MoE, QuantizedExperts } from '../src/index.js';
import { relErr } from './helpers.js';
import { CT_FIXTURES, loadCTGolden } from './ct-writer.js';

describe('compressed-tensors int4 fixtures on the CPU vs transformers goldens (weight-only; fixtures from scripts/fixtures/make-compressed-tensors.py on the H200)', () => {
  for (const f of CT_FIXTURES) {
    for (const set of f.sets) {
      it(`${f.name} ${set}`, async () => {
        const g = loadCTGolden(f.name, set);
        const moe = await MoE.fromHuggingFace({ source: g.dir, layer: 0, device: DeviceRef.CPU() });
        const s = moe.stacked as QuantizedExperts;
        expect(moe.quant!.format).toBe('int4');
        expect(s.gateUpProj.value.dtype).toBe('uint8');
        expect(!!s.gateUpZeros).toBe(!f.symmetric);
        expect(moe.shared?.kind === 'packed').toBe(f.sharedQuantized);
        const y = await moe.forward(g.input);
        const err = relErr(y, g.output);
        expect(err, `rel err ${err}`).toBeLessThan(g.tol);
      });
    }
  }
});
