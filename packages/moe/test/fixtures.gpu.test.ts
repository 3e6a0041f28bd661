// The layer on the GPU (one Recorder, one submit) against HuggingFace's own MoE blocks.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GpuTensor, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { ARCHS, FIXTURES, loadGolden, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('MoE.fromHuggingFace on the GPU vs transformers goldens', () => {
  for (const arch of ARCHS) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      it(`${arch}: ${dtype} weights`, async (c) => {
        if (!ctx) return c.skip('no WebGPU adapter');
        const g = loadGolden(arch);
        const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype, device: DeviceRef.GPU(), ctx });
        try {
          // Weights stay in their storage dtype on the GPU.
          for (const p of [moe.gateUpProj, moe.downProj, moe.gate.weight]) expect(p.gpuValue.dtype).toBe(dtype);
          const input = dtype === 'float32' ? g.input : g.inputBf16;
          const want = dtype === 'float32' ? g.output : g.outputBf16;
          const tol = dtype === 'float32' ? g.f32Tol : g.bf16Tol;
          const y = await gpuChecked(ctx, async () => {
            const x = GpuTensor.upload(ctx!, new HostTensor('float32', [g.T, g.H], input));
            const out = await moe.forward(x);
            const h = await out.download();
            x.destroy();
            out.destroy();
            return h;
          });
          expect(y.shape).toEqual([g.T, g.H]);
          expect(y.dtype).toBe('float32');
          const err = relErr((y.data as Float32Array).subarray(0, g.outRows * g.H), want);
          expect(err, `${arch} ${dtype} GPU rel err ${err}`).toBeLessThan(tol);
        } finally {
          moe.destroy();
        }
      });
    }
  }
});
