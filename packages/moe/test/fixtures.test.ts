// The layer on the CPU (TypeScript references) against HuggingFace's own MoE blocks.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { MoE } from '../src/index.js';
import { ARCHS, FIXTURES, loadGolden, relErr } from './helpers.js';

describe('MoE.fromHuggingFace on the CPU vs transformers goldens', () => {
  for (const arch of ARCHS) {
    it(`${arch}: float32 weights, input -> output`, async () => {
      const g = loadGolden(arch);
      if (g.note) console.log(g.note);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, device: DeviceRef.CPU() });
      expect(moe.dtype).toBe('float32');
      expect(moe.gateUpProj.value.dtype).toBe('float32');
      const y = await moe.forward(g.input);
      expect(y.length).toBe(g.T * g.H);
      const err = relErr(y.subarray(0, g.outRows * g.H), g.output);
      expect(err, `${arch} rel err ${err}`).toBeLessThan(g.f32Tol);
    });
    it(`${arch}: bfloat16 weights, input_bf16 -> output_bf16`, async () => {
      const g = loadGolden(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'bfloat16', device: DeviceRef.CPU() });
      expect(moe.gateUpProj.value.dtype).toBe('bfloat16');
      expect(moe.downProj.value.dtype).toBe('bfloat16');
      expect(moe.gate.weight.value.dtype).toBe('bfloat16');
      const y = await moe.forward(g.inputBf16);
      const err = relErr(y.subarray(0, g.outRows * g.H), g.outputBf16);
      expect(err, `${arch} bf16 rel err ${err}`).toBeLessThan(g.bf16Tol);
    });
  }
});
