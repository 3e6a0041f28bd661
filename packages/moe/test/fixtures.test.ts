// The layer on the CPU (TypeScript references) against HuggingFace's own MoE blocks, T = 16 and T = 600 tokens.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { MoE } from '../src/index.js';
import { ARCHS, FIXTURES, GOLDEN_SETS, loadGolden, relErr } from './helpers.js';

describe('MoE.fromHuggingFace on the CPU vs transformers goldens', () => {
  for (const set of GOLDEN_SETS) {
    for (const arch of ARCHS) {
      it(`${arch} ${set}: float32 weights, input -> output (all T rows)`, async () => {
        const g = loadGolden(arch, set);
        const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, device: DeviceRef.CPU() });
        expect(moe.dtype).toBe('float32');
        expect(moe.gateUpProj.value.dtype).toBe('float32');
        const y = await moe.forward(g.input);
        expect(y.length).toBe(g.T * g.H);
        const err = relErr(y, g.output);
        expect(err, `${arch} ${set} rel err ${err}`).toBeLessThan(g.f32Tol);
      });
      it(`${arch} ${set}: bfloat16 weights, input_bf16 -> output_bf16 (all T rows)`, async () => {
        const g = loadGolden(arch, set);
        const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'bfloat16', device: DeviceRef.CPU() });
        expect(moe.gateUpProj.value.dtype).toBe('bfloat16');
        expect(moe.downProj.value.dtype).toBe('bfloat16');
        expect(moe.gate.weight.value.dtype).toBe('bfloat16');
        const y = await moe.forward(g.inputBf16);
        expect(y.length).toBe(g.T * g.H);
        const err = relErr(y, g.outputBf16);
        expect(err, `${arch} ${set} bf16 rel err ${err}`).toBeLessThan(g.bf16Tol);
      });
    }
  }
});
