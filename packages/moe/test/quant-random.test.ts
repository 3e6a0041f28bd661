// Quantized experts on random configs (every router / activation variant, quantized shared experts) against the plain
// per-token implementation of test/reference.ts, fed with weights that the test decodes itself from the packed codes.
import { describe, it, expect } from 'vitest';
import { referenceMoE } from './reference.js';
import { CASES } from './random-cases.js';
import { FORMATS, quantizedCase } from './quant-cases.js';
import { relErr } from './helpers.js';

describe('quantized experts (CPU) on random configs vs the per-token reference on the decoded weights', () => {
  CASES.forEach((c, ci) => {
    it(c.name, async () => {
      for (const [fi, fmt] of FORMATS.entries()) {
        const T = fi % 2 ? 1 : 9;
        const { moe, ref, x, cfg } = quantizedCase(ci, fmt, 300 + 10 * ci + fi, T);
        expect(moe.shared?.kind === 'packed').toBe(!!cfg.sharedDim);
        const want = referenceMoE(cfg, ref, x, T);
        const got = await moe.forward(x);
        const err = relErr(got, want);
        expect(err, `${c.name} ${JSON.stringify(fmt)} T=${T}: rel err ${err}`).toBeLessThan(1e-5);
      }
    });
  });
});
