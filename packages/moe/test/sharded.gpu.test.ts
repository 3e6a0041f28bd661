// Sharded MoE on several WebGPU devices (4 GPUDevices of the test adapter, one DeviceGroup for the whole file;
// sub-groups of 2 and 3 reuse its devices): TP 2, TP 3 (uneven I = 32 -> 11, 11, 10), TP 4, EP 2 and EP 4 on
// every unquantized fixture against the unsharded layer (float32, rel 1e-4) and transformers' goldens, the empty-expert / empty-device
// routing, input on device 0, and MLP / Linear shards.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { DeviceGroup, ShardingStrategy } from '@webmoe/sharding';
import { MLP, Linear } from '@webmoe/nn';
import { MoE, ShardedMoE } from '../src/index.js';
import { ARCHS, FIXTURES, loadGolden, relErr } from './helpers.js';
import { TOL, skewedLayer } from './sharded-helpers.js';

let group: DeviceGroup | null = null;
const sub = new Map<number, DeviceGroup>();
beforeAll(async () => {
  if (!(await testGpu())) return; // testGpu prints why (and throws under CI=true)
  group = await DeviceGroup.create(4, { placement: 'same-adapter', context: { label: 'sharded-moe' } });
  for (const n of [2, 3]) sub.set(n, DeviceGroup.fromContexts(group.contexts.slice(0, n)));
  sub.set(4, group);
});
afterAll(() => {
  group?.destroy();
});

const CONFIGS = [
  { name: 'TP 2', n: 2, st: () => ShardingStrategy.tensorParallel(2) },
  { name: 'TP 3', n: 3, st: () => ShardingStrategy.tensorParallel(3) },
  { name: 'TP 4', n: 4, st: () => ShardingStrategy.tensorParallel(4) },
  { name: 'EP 2', n: 2, st: () => ShardingStrategy.expertParallel(2) },
  { name: 'EP 4', n: 4, st: () => ShardingStrategy.expertParallel(4) },
];

describe('MoE.shard on GPU devices vs the unsharded layer (float32)', () => {
  for (const arch of ARCHS) {
    it(`${arch}: TP 2, TP 3, TP 4, EP 2, EP 4`, async (c) => {
      if (!group) return c.skip('no WebGPU adapter');
      const g = loadGolden(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'float32' });
      const want = moe.forwardHost(g.input, g.T);
      for (const cfg of CONFIGS) {
        // every fixture has E = 8 or 16: EP 2 and EP 4 always divide (a layer where they do not would fail here, not skip)
        if (cfg.name.startsWith('EP')) expect(moe.numExperts % cfg.n, `${arch}: E=${moe.numExperts} over ${cfg.n}`).toBe(0);
        const s = moe.shard(sub.get(cfg.n)!, cfg.st());
        try {
          expect(s.shards.map((m) => m.device.isGpu())).toEqual(Array(cfg.n).fill(true));
          const y = await s.forward(g.input);
          const err = relErr(y, want);
          expect(err, `${arch} ${cfg.name} GPU: rel err ${err}`).toBeLessThan(TOL);
          // and against transformers' golden (independent of this package's host path)
          expect(relErr(y, g.output), `${arch} ${cfg.name} GPU vs golden`).toBeLessThan(g.f32Tol);
          for (const ctx of group!.contexts) expect(ctx.takeUncapturedErrors(), `${arch} ${cfg.name}: GPU errors`).toEqual([]);
        } finally {
          s.destroy();
        }
      }
    });
  }

  it('EP 2 / EP 4 / TP 2 with every token on experts 0, 1: experts without tokens, devices that receive nothing; T = 1', async (c) => {
    if (!group) return c.skip('no WebGPU adapter');
    const { moe, x, T } = skewedLayer();
    const want = moe.forwardHost(x, T);
    for (const [n, st] of [[2, ShardingStrategy.expertParallel(2)], [4, ShardingStrategy.expertParallel(4)], [2, ShardingStrategy.tensorParallel(2)]] as const) {
      const s = moe.shard(sub.get(n)!, st);
      try {
        expect(relErr(await s.forward(x), want), `${st.kind} ${n}`).toBeLessThan(TOL);
        // one token over n devices: devices without tokens (EP) and an all-reduce of [1, H]
        expect(relErr(await s.forward(x.subarray(0, 16)), want.subarray(0, 16)), `${st.kind} ${n}, T = 1`).toBeLessThan(TOL);
      } finally {
        s.destroy();
      }
    }
  });

  it('input as a GpuTensor on device 0 gives a GpuTensor on device 0; fromHuggingFace shards straight from the checkpoint', async (c) => {
    if (!group) return c.skip('no WebGPU adapter');
    const g = loadGolden('qwen2_moe');
    const want = (await MoE.fromHuggingFace({ source: `${FIXTURES}/qwen2_moe`, layer: 0, dtype: 'float32' })).forwardHost(g.input, g.T);
    const s = await ShardedMoE.fromHuggingFace({ source: `${FIXTURES}/qwen2_moe`, layer: 0, dtype: 'float32', devices: sub.get(2)!, strategy: ShardingStrategy.expertParallel(2) });
    const ctx0 = group.context(0);
    const x = GpuTensor.upload(ctx0, new HostTensor('float32', [g.T, g.H], g.input));
    try {
      const y = await s.forward(x);
      expect(y).toBeInstanceOf(GpuTensor);
      expect(y.ctx).toBe(ctx0);
      expect(relErr((await y.download()).data as Float32Array, want)).toBeLessThan(TOL);
      y.destroy();
      const wrong = GpuTensor.upload(group.context(1), new HostTensor('float32', [g.T, g.H], g.input));
      await expect(s.forward(wrong)).rejects.toThrow(/device 0/);
      wrong.destroy();
    } finally {
      x.destroy();
      s.destroy();
    }
  });

  it('MLP tensorParallel 3 (uneven) and Linear rowwise / columnwise on GPU shards', async (c) => {
    if (!group) return c.skip('no WebGPU adapter');
    const g = loadGolden('qwen2_moe');
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/qwen2_moe`, layer: 0, dtype: 'bfloat16' });
    const mlp: MLP = moe.sharedExperts!; // S = 64 -> 22, 21, 21
    const x = g.input;
    const want = mlp.forwardHost(x, g.T);
    const s = mlp.shard(sub.get(3)!, ShardingStrategy.tensorParallel(3));
    expect(s.shards.map((m) => m.feedForwardLength)).toEqual([22, 21, 21]);
    expect(s.shards[2].gateProj.weight.value.dtype).toBe('bfloat16');
    expect(relErr(await s.forward(x), want)).toBeLessThan(TOL);
    s.destroy();
    const lin: Linear = mlp.downProj; // [64, 64] bf16
    const h = x; // any [T, 64] input
    const wl = lin.forwardHost(h, g.T);
    for (const st of [ShardingStrategy.rowwise(3), ShardingStrategy.columnwise(2)]) {
      const sl = lin.shard(sub.get(st.numDevices)!, st);
      expect(relErr(await sl.forward(h), wl), st.kind).toBeLessThan(TOL);
      sl.destroy();
    }
  });
});
