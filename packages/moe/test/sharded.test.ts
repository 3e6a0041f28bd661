// Sharded MoE / MLP / Linear on CPU shards (DeviceGroup.cpu): TP 2 and EP 2 (plus TP 3 uneven and EP 4 where
// cheap) on every unquantized fixture against the unsharded layer and transformers' goldens, the empty-expert / empty-device routing,
// and the typed errors.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { DeviceGroup, ShardingError, ShardingStrategy, createLocalTransports } from '@webmoe/sharding';
import { Linear, MLP } from '@webmoe/nn';
import { linearRef, routerRef } from '@webmoe/kernels-wgsl';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { MoE, ShardedMoE } from '../src/index.js';
import { ARCHS, FIXTURES, loadGolden, relErr } from './helpers.js';
import { TOL, skewedLayer } from './sharded-helpers.js';

const CONFIGS = [
  { name: 'TP 2', strategy: (E: number) => ShardingStrategy.tensorParallel(2), n: 2 },
  { name: 'TP 3 (uneven I)', strategy: (E: number) => ShardingStrategy.tensorParallel(3), n: 3 },
  { name: 'EP 2', strategy: (E: number) => ShardingStrategy.expertParallel(2), n: 2 },
  { name: 'EP 4', strategy: (E: number) => ShardingStrategy.expertParallel(4), n: 4 },
] as const;

describe('MoE.shard on CPU shards vs the unsharded layer (float32)', () => {
  for (const arch of ARCHS) {
    it(`${arch}: TP 2, TP 3, EP 2, EP 4`, async () => {
      const g = loadGolden(arch);
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'float32' });
      const want = moe.forwardHost(g.input, g.T);
      for (const c of CONFIGS) {
        if (c.name.startsWith('EP') && moe.numExperts % c.n !== 0) throw new Error(`${arch}: E=${moe.numExperts} not divisible by ${c.n}: the test matrix needs updating`);
        moe.shardingStrategy = c.strategy(moe.numExperts);
        const s = moe.shard(DeviceGroup.cpu(c.n));
        expect(s.shards).toHaveLength(c.n);
        s.shards.forEach((m, i) => {
          expect(m.shardIndex).toBe(i);
          expect(m.shardDevices).toHaveLength(c.n);
          expect(m.shardingStrategy).toBe(moe.shardingStrategy);
          expect(m.gateUpProj.value.dtype).toBe('float32');
        });
        if (c.name.startsWith('TP')) {
          expect(s.shards.reduce((a, m) => a + m.moeDim, 0)).toBe(moe.moeDim);
        } else {
          for (const m of s.shards) expect(m.gateUpProj.value.shape[0]).toBe(moe.numExperts / c.n);
          expect(s.shards[0].epSize).toBe(c.n);
        }
        const y = await s.forward(g.input);
        const err = relErr(y, want);
        expect(err, `${arch} ${c.name}: rel err ${err}`).toBeLessThan(TOL);
        // and against transformers' golden (independent of this package's host path)
        expect(relErr(y, g.output), `${arch} ${c.name} vs golden`).toBeLessThan(g.f32Tol);
        s.destroy();
      }
    });
  }

  it('TP keeps bf16 weights in bf16 and slices gate AND matching up rows (concat) / interleaved pairs (GPT-OSS)', async () => {
    const mix = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, dtype: 'bfloat16' });
    const s = mix.shard(DeviceGroup.cpu(3), ShardingStrategy.tensorParallel(3));
    const I = mix.moeDim;
    const H = mix.hiddenDim;
    const full = mix.gateUpProj.value.data as Uint16Array;
    const sh = s.shards[1]; // rows [11, 22) of I = 32
    expect(sh.moeDim).toBe(11);
    const part = sh.gateUpProj.value;
    expect(part.dtype).toBe('bfloat16');
    const row = (e: number, r: number) => Array.from(full.subarray((e * 2 * I + r) * H, (e * 2 * I + r + 1) * H));
    const prow = (e: number, r: number) => Array.from((part.data as Uint16Array).subarray((e * 22 + r) * H, (e * 22 + r + 1) * H));
    expect(prow(3, 0)).toEqual(row(3, 11)); // gate row 11
    expect(prow(3, 11)).toEqual(row(3, I + 11)); // the matching up row
    s.destroy();
    const oss = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss`, layer: 0, dtype: 'float32' });
    const t = oss.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2));
    const fo = oss.gateUpProj.value.data as Float32Array;
    const p1 = t.shards[1].gateUpProj.value.data as Float32Array; // interleaved rows [2*16, 2*32)
    expect(Array.from(p1.subarray(0, 2 * H))).toEqual(Array.from(fo.subarray(32 * H, 34 * H)));
    // down bias once (leader): shard 1's is zero, gate_up bias sliced like its rows
    expect(Array.from(t.shards[1].stacked.downBias!.value.toFloat32()).every((v) => v === 0)).toBe(true);
    expect(Array.from(t.shards[0].stacked.downBias!.value.toFloat32())).toEqual(Array.from(oss.stacked.downBias!.value.toFloat32()));
    t.destroy();
  });

  it('EP: an expert with no tokens and devices that receive no rows (router bias sends everything to experts 0, 1)', async () => {
    const { moe, x, T } = skewedLayer();
    const routing = routerRef(linearRef(x, T, moe.gate.weight.value, moe.gate.bias!.value), T, moe.gate.routerParams());
    expect(new Set(routing.idx)).toEqual(new Set([0, 1])); // the routing the test is about
    const want = moe.forwardHost(x, T);
    for (const n of [2, 4]) {
      const s = moe.shard(DeviceGroup.cpu(n), ShardingStrategy.expertParallel(n));
      expect(relErr(await s.forward(x), want)).toBeLessThan(TOL);
      expect(relErr(await s.forward(x.subarray(0, 16)), want.subarray(0, 16)), `EP ${n}, T = 1: devices without tokens`).toBeLessThan(TOL);
      s.destroy();
    }
    const tp = moe.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2));
    expect(relErr(await tp.forward(new HostTensor('float32', [T, 16], x)).then((h) => h.data as Float32Array), want)).toBeLessThan(TOL);
    tp.destroy();
  });

  it('typed errors before anything is allocated', async () => {
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, dtype: 'float32' }); // E = 8, I = 32
    expect(() => moe.shard(DeviceGroup.cpu(3), ShardingStrategy.expertParallel(3))).toThrow(/numExperts: expected divisible by epSize 3, got 8/);
    expect(() => moe.shard(DeviceGroup.cpu(3), ShardingStrategy.tensorParallel(2))).toThrow(/expected 2 devices, got 3/);
    expect(() => moe.shard(DeviceGroup.cpu(2))).toThrow(ShardingError); // no strategy set
    expect(() => moe.shard(DeviceGroup.cpu(2), ShardingStrategy.rowwise(2))).toThrow(/tensorParallel\(n\) or expertParallel\(n\)/);
    expect(() => moe.shard(DeviceGroup.cpu(64), ShardingStrategy.tensorParallel(64))).toThrow(/moeDim = 32.*empty shard/);
    expect(() => moe.shard([DeviceRef.GPU(0), DeviceRef.GPU(1)], ShardingStrategy.tensorParallel(2))).toThrow(/DeviceGroup/);
    expect(() => new MoE({ hiddenDim: 8, numExperts: 6, numExpertsPerToken: 2, moeDim: 4, epSize: 4 })).toThrow(/numExperts .*expected a multiple of 4, got 6/);
    const unloaded = new MoE({ hiddenDim: 8, numExperts: 4, numExpertsPerToken: 2, moeDim: 4 });
    expect(() => unloaded.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2))).toThrow(/loaded weights/);
    // CPU DeviceRefs are CPU shards; an EP shard does not run on its own
    const s = moe.shard([DeviceRef.CPU(), DeviceRef.CPU()], ShardingStrategy.expertParallel(2));
    expect(() => s.shards[0].forwardHost(new Float32Array(64), 1)).toThrow(/expert-parallel shard/);
    await expect(s.forward(new Float32Array(63))).rejects.toThrow(/T\*64 values/);
    expect(s).toBeInstanceOf(ShardedMoE);
  });

  it('with a transport (one rank): the strategy must be TP or EP over transport.size; TP takes the unsharded layer only', async () => {
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, dtype: 'float32' });
    const [tr] = createLocalTransports(2);
    expect(() => new ShardedMoE(moe, [DeviceRef.CPU()], ShardingStrategy.tensorParallel(3), { transport: tr })).toThrow(/expected expertParallel\(2\) or tensorParallel\(2\).*got tensor_parallel\(3\)/);
    const epShard = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, dtype: 'float32', expertShard: { epSize: 2, shardIndex: 0 } });
    expect(() => new ShardedMoE(epShard, [DeviceRef.CPU()], ShardingStrategy.tensorParallel(2), { transport: tr })).toThrow(/tensorParallel\(2\) source epSize.*expected 1 \(the unsharded layer\), got 2/);
    await expect(ShardedMoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, devices: [DeviceRef.CPU()], strategy: ShardingStrategy.tensorParallel(1), transport: tr })).rejects.toThrow(ShardingError);
    // rank 1 holds the in-process TP's shard 1: the second half of I (moeDim 32 -> 16), gate/up rows and down columns
    const tp = new ShardedMoE(moe, [DeviceRef.CPU()], ShardingStrategy.tensorParallel(2), { transport: createLocalTransports(2)[1] });
    moe.shardingStrategy = ShardingStrategy.tensorParallel(2);
    const local = moe.shard(DeviceGroup.cpu(2));
    expect(tp.shards).toHaveLength(1);
    expect(tp.shards[0].moeDim).toBe(16);
    expect(Array.from(tp.shards[0].stacked.gateUpProj.value.toFloat32())).toEqual(Array.from(local.shards[1].stacked.gateUpProj.value.toFloat32()));
    expect(Array.from(tp.shards[0].stacked.downProj.value.toFloat32())).toEqual(Array.from(local.shards[1].stacked.downProj.value.toFloat32()));
    for (const m of [tp, local, epShard, moe]) m.destroy();
  });
});

describe('Linear.shard / MLP.shard on CPU shards', () => {
  const r = rng(7);
  const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  it('Linear rowwise / columnwise / replicate (bf16 weights, bias) equal the unsharded layer', async () => {
    const lin = new Linear({ inDim: 10, outDim: 7, hasBias: true, dtype: 'bfloat16' });
    lin.loadStateDict({ weight: HostTensor.fromFloat32([7, 10], rand(70), 'bfloat16'), bias: HostTensor.fromFloat32([7], rand(7), 'bfloat16') });
    const x = rand(3 * 10);
    const want = await lin.forward(x);
    for (const st of [ShardingStrategy.rowwise(3), ShardingStrategy.columnwise(3), ShardingStrategy.replicate(2)]) {
      lin.shardingStrategy = st;
      const s = lin.shard(DeviceGroup.cpu(st.numDevices));
      expect(s.shards[1].weight.value.dtype).toBe('bfloat16');
      expect(s.shards[1].shardIndex).toBe(1);
      expect(relErr(await s.forward(x), want), st.kind).toBeLessThan(TOL);
    }
    expect(() => lin.shard(DeviceGroup.cpu(8), ShardingStrategy.rowwise(8))).toThrow(/outDim = 7.*empty shard/);
  });
  it('MLP tensorParallel 2 and 3 (uneven) with biases: down bias once', async () => {
    const mlp = new MLP({ hiddenDim: 8, feedForwardLength: 10, hasBias: true });
    const sd: Record<string, HostTensor> = {};
    for (const [k, shape] of [['gate_proj', [10, 8]], ['up_proj', [10, 8]], ['down_proj', [8, 10]]] as const) {
      sd[`${k}.weight`] = HostTensor.fromFloat32([...shape], rand(80));
      sd[`${k}.bias`] = HostTensor.fromFloat32([shape[0]], rand(shape[0]));
    }
    mlp.loadStateDict(sd);
    const x = rand(4 * 8);
    const want = await mlp.forward(x);
    for (const n of [2, 3]) {
      mlp.shardingStrategy = ShardingStrategy.tensorParallel(n);
      const s = mlp.shard(DeviceGroup.cpu(n));
      expect(s.shards.map((m) => m.feedForwardLength)).toEqual(n === 2 ? [5, 5] : [4, 3, 3]);
      expect(relErr(await s.forward(x), want)).toBeLessThan(TOL);
    }
    expect(() => mlp.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(3))).toThrow(/expected 3 devices, got 2/);
  });
});

describe('MoE.fromHuggingFace expertShard (what one MPI rank reads)', () => {
  for (const arch of ['mixtral', 'gpt_oss'] as const) {
    it(`${arch} (${arch === 'mixtral' ? 'per-expert' : 'fused'} experts): shard i of n holds experts [i*E/n, (i+1)*E/n) of the full layer, router and shared whole`, async () => {
      const full = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'float32' });
      const E = full.numExperts;
      for (const [n, i] of [[2, 1], [4, 2]] as const) {
        const sh = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, dtype: 'float32', expertShard: { epSize: n, shardIndex: i } });
        expect(sh.epSize).toBe(n);
        expect(sh.shardIndex).toBe(i);
        const per = E / n;
        const sd = sh.stateDict();
        for (const [name, t] of full.stateDict()) {
          const got = sd.get(name)!;
          if (name.startsWith('experts.')) {
            const rowLen = t.size / E;
            expect(got.shape, name).toEqual([per, ...t.shape.slice(1)]);
            expect(Array.from(got.data), name).toEqual(Array.from(t.data.subarray(i * per * rowLen, (i + 1) * per * rowLen)));
          } else expect(Array.from(got.data), name).toEqual(Array.from(t.data));
        }
        sh.destroy();
      }
      full.destroy();
    });
  }
  it('E not divisible by epSize, shardIndex out of range: ShardingError', async () => {
    await expect(MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, expertShard: { epSize: 3, shardIndex: 0 } })).rejects.toThrow(ShardingError);
    await expect(MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, expertShard: { epSize: 2, shardIndex: 2 } })).rejects.toThrow(/shardIndex/);
  });
});
