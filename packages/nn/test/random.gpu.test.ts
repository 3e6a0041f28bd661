// nn on the GPU, randomized: Linear and MLP (decode GEMV and grouped GEMM paths) in every weight dtype, and
// tensor-parallel sharding over a GPU DeviceGroup, against plain float64 loops (test/plain.ts), odd sizes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DeviceRef, type DType } from '@webmoe/tensor';
import { DeviceGroup, ShardingStrategy } from '@webmoe/sharding';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { Linear, MLP } from '../src/index.js';
import { linear64, mlp64, randomMlp, randomTensor, relErr64 } from './plain.js';

let ctx: GpuContext | null;
let group: DeviceGroup | undefined;
beforeAll(async () => {
  ctx = await testGpu(); // fails with CI=true when there is no adapter
  if (ctx) group = await DeviceGroup.create(2, { placement: 'same-adapter', context: { label: 'nn-tp' } });
});
afterAll(() => group?.destroy());

const DTYPES: DType[] = ['float32', 'bfloat16', 'float16'];
const TOL = 1e-5; // f32 accumulation on the GPU against float64

describe('nn on the GPU vs plain loops (random weights, odd sizes)', () => {
  for (const dtype of DTYPES) {
    it(`Linear ${dtype}`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const r = rng(11 + DTYPES.indexOf(dtype));
      for (const [T, K, N] of [[1, 7, 3], [5, 33, 17], [20, 64, 9]] as const) {
        const w = randomTensor(r, [N, K], dtype);
        const b = randomTensor(r, [N], dtype);
        const x = randomTensor(r, [T, K], 'float32').v;
        const lin = new Linear({ inDim: K, outDim: N, hasBias: true, dtype, device: DeviceRef.GPU(), ctx });
        try {
          lin.loadStateDict({ weight: w.t, bias: b.t });
          const y = await gpuChecked(ctx, () => lin.forward(x));
          expect(relErr64(y, linear64(x, T, w.v, N, K, b.v)), `${T}x${K}->${N}`).toBeLessThan(TOL);
        } finally {
          lin.destroy();
        }
      }
    });

    it(`MLP ${dtype}: T = 3 (GEMV) and T = 29 (grouped GEMM), odd H and I, biases`, async (c) => {
      if (!ctx) return c.skip('no WebGPU adapter');
      const [H, I] = [24, 13];
      const { sd, w } = randomMlp(70 + DTYPES.indexOf(dtype), H, I, dtype, true);
      const act = { kind: 'swiglu_limit' as const, limit: 0.6 };
      const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: true, dtype, activation: act, device: DeviceRef.GPU(), ctx });
      try {
        mlp.loadStateDict(sd);
        for (const T of [3, 29]) {
          const x = randomTensor(rng(T), [T, H], 'float32', 1.5).v;
          // 16-bit weights on the subgroup-matrix kernel (the default where the adapter has it) round x to f16: stagedTol
          const { result: y, dispatched } = await withDispatchLog(() => gpuChecked(ctx!, () => mlp.forward(x)));
          expect(relErr64(y, mlp64(x, T, H, I, w, act)), `T=${T}`).toBeLessThan(stagedTol(dispatched, TOL));
        }
      } finally {
        mlp.destroy();
      }
    });
  }

  it('MLP tensorParallel(2) over a GPU DeviceGroup (uneven I = 13: 7 + 6), bias on the leader only', async (c) => {
    if (!ctx || !group) return c.skip('no WebGPU adapter');
    const [T, H, I] = [5, 24, 13];
    const { sd, w } = randomMlp(90, H, I, 'bfloat16', true);
    const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: true, dtype: 'bfloat16' });
    mlp.loadStateDict(sd);
    const s = mlp.shard(group, ShardingStrategy.tensorParallel(2));
    try {
      expect(s.shards.map((m) => m.feedForwardLength)).toEqual([7, 6]);
      const x = randomTensor(rng(5), [T, H], 'float32').v;
      const y = await s.forward(x);
      expect(relErr64(y, mlp64(x, T, H, I, w, { kind: 'silu' }))).toBeLessThan(TOL);
    } finally {
      s.destroy();
    }
  });

  it('Linear columnwise(2) and rowwise(2) over a GPU DeviceGroup', async (c) => {
    if (!ctx || !group) return c.skip('no WebGPU adapter');
    const r = rng(91);
    const [T, K, N] = [4, 33, 17];
    const w = randomTensor(r, [N, K], 'float16');
    const b = randomTensor(r, [N], 'float16');
    const x = randomTensor(r, [T, K], 'float32').v;
    for (const st of [ShardingStrategy.columnwise(2), ShardingStrategy.rowwise(2)]) {
      const lin = new Linear({ inDim: K, outDim: N, hasBias: true, dtype: 'float16' });
      lin.loadStateDict({ weight: w.t, bias: b.t });
      const s = lin.shard(group, st);
      try {
        expect(relErr64(await s.forward(x), linear64(x, T, w.v, N, K, b.v)), st.kind).toBeLessThan(TOL);
      } finally {
        s.destroy();
      }
    }
  });
});
