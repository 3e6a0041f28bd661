// Decode graphs (captured forward replayed for small T) and the two expert
// GEMM paths (decode GEMV / tiled grouped) give the same layer; prefill graphs
// (T = 600, the prefill GEMMs: the matrix tiles where the adapter has them)
// give the golden and, replayed on new data, the recorded forward's bits.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GpuTensor, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { FIXTURES, loadGolden, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

async function run(c: GpuContext, moe: MoE, x: Float32Array, T: number, H: number): Promise<Float32Array> {
  const xg = GpuTensor.upload(c, new HostTensor('float32', [T, H], x));
  const y = await moe.forward(xg);
  const out = (await y.download()).data as Float32Array;
  xg.destroy();
  y.destroy();
  return out;
}

describe('MoE forward graphs and expert kernel paths', () => {
  for (const arch of ['qwen2_moe', 'gpt_oss'] as const) {
    it(`${arch}: replayed graphs on new inputs match the uncached forward bit for bit, and both GEMM paths match the golden`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const c = ctx;
      const g = loadGolden(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'float32', device: DeviceRef.GPU(), ctx: c });
      try {
        await gpuChecked(c, async () => {
          const r = rng(11);
          for (const kern of ['gemv', 'grouped'] as const) {
            moe.expertKernels = kern;
            moe.clearGraphs();
            moe.useGraphs = true;
            const y1 = await run(c, moe, g.input, g.T, g.H); // captures
            const y2 = await run(c, moe, g.input, g.T, g.H); // replays
            expect(relErr(y1, g.output), `${arch} ${kern}`).toBeLessThan(g.f32Tol);
            expect(y2).toEqual(y1);
            const x3 = randomArray(r, g.T * g.H);
            const y3 = await run(c, moe, x3, g.T, g.H); // replay on new data
            moe.useGraphs = false;
            const y3ref = await run(c, moe, x3, g.T, g.H); // recorded afresh
            expect(y3).toEqual(y3ref);
            // another T in between must not disturb the cached graph of this T
            moe.useGraphs = true;
            await run(c, moe, x3.subarray(0, 3 * g.H), 3, g.H);
            expect(await run(c, moe, x3, g.T, g.H)).toEqual(y3ref);
          }
          moe.clearGraphs();
          expect(moe.scratchPool!.liveCount).toBe(0);
        });
      } finally {
        moe.destroy();
      }
    });
  }
  for (const arch of ['olmoe', 'qwen2_moe', 'gpt_oss'] as const) {
    it(`${arch} golden-large (T = 600), bf16 weights: the captured prefill graph gives the golden, its replays on new data the recorded forward's bits`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const c = ctx;
      const g = loadGolden(arch, 'golden-large');
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c });
      try {
        await gpuChecked(c, async () => {
          moe.useGraphs = true;
          const y1 = await run(c, moe, g.inputBf16, g.T, g.H); // captures
          expect(relErr(y1, g.outputBf16), arch).toBeLessThan(g.bf16Tol);
          expect(await run(c, moe, g.inputBf16, g.T, g.H), 'replayed').toEqual(y1);
          const x2 = randomArray(rng(23), g.T * g.H);
          const y2 = await run(c, moe, x2, g.T, g.H);
          moe.useGraphs = false;
          expect(y2, 'a replay on new data is the recorded forward').toEqual(await run(c, moe, x2, g.T, g.H));
        });
      } finally {
        moe.destroy();
      }
    }, 600_000);
  }
});
