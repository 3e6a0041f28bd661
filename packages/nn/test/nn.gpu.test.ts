// Linear and MLP on the GPU against their host paths and plain loops.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { Linear, MLP } from '../src/index.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('nn on the GPU', () => {
  it('Linear (bf16 weights, bias) equals plain loops', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(7);
    const [T, K, N] = [5, 24, 10];
    const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
    const b = HostTensor.fromFloat32([N], randomArray(r, N), 'bfloat16');
    const x = randomArray(r, T * K);
    const lin = new Linear({ inDim: K, outDim: N, hasBias: true, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx });
    lin.loadStateDict({ weight: w, bias: b });
    expect(lin.weight.gpuValue.dtype).toBe('bfloat16');
    const y = await gpuChecked(ctx, () => lin.forward(x));
    const wf = w.toFloat32();
    const bf = b.toFloat32();
    const want = new Float32Array(T * N);
    for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
      let s = bf[n];
      for (let k = 0; k < K; k++) s += x[t * K + k] * wf[n * K + k];
      want[t * N + n] = s;
    }
    expect(relErr(y, want)).toBeLessThan(1e-5);
    lin.destroy();
    expect(lin.weight.gpu).toBeUndefined();
  });

  it.each([7, 41])('MLP on the GPU equals the same MLP on the CPU (T=%s: decode GEMV / grouped GEMM path)', async (T, c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(9 + T);
    const [H, I] = [16, 12];
    const sd = {
      'gate_proj.weight': HostTensor.fromFloat32([I, H], randomArray(r, I * H), 'bfloat16'),
      'up_proj.weight': HostTensor.fromFloat32([I, H], randomArray(r, I * H), 'bfloat16'),
      'down_proj.weight': HostTensor.fromFloat32([H, I], randomArray(r, H * I), 'bfloat16'),
    };
    const x = randomArray(r, T * H);
    for (const activation of [{ kind: 'silu' as const }, { kind: 'swiglu_limit' as const, limit: 0.3 }]) {
      const cpu = new MLP({ hiddenDim: H, feedForwardLength: I, dtype: 'bfloat16', activation });
      cpu.loadStateDict(sd);
      const gpu = new MLP({ hiddenDim: H, feedForwardLength: I, dtype: 'bfloat16', activation, device: DeviceRef.GPU(), ctx });
      gpu.loadStateDict(sd);
      expect(gpu.packedGpu.gateUp.dtype).toBe('bfloat16');
      expect(gpu.packedGpu.gateUp.shape).toEqual([1, 2 * I, H]);
      // 16-bit weights on the subgroup-matrix kernel (the default where the adapter has it) round x to f16: stagedTol
      const { result: y, dispatched } = await withDispatchLog(() => gpuChecked(ctx!, () => gpu.forward(x)));
      expect(relErr(y, cpu.forwardHost(x))).toBeLessThan(stagedTol(dispatched, 1e-5));
      gpu.destroy();
    }
  });
});
