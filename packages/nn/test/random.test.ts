// nn on the CPU, randomized: Linear, MLP, LayerList, state dicts and sharded (TP) layers against plain float64
// loops (test/plain.ts), odd sizes, every weight dtype.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor, type DType } from '@webmoe/tensor';
import { ShardingError, ShardingStrategy } from '@webmoe/sharding';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { LayerList, Linear, MLP, StateDictError } from '../src/index.js';
import { ODD_SIZES, linear64, mlp64, randomMlp, randomTensor, relErr64, type Act } from './plain.js';

const DTYPES: DType[] = ['float32', 'bfloat16', 'float16'];
const ACTS: Act[] = [{ kind: 'silu' }, { kind: 'swiglu_limit', limit: 0.4 }];
// f32 accumulation against float64 over K <= 64 terms
const TOL = 1e-6;

describe('Linear (CPU) vs plain loops', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: odd sizes, with and without bias`, async () => {
      const r = rng(DTYPES.indexOf(dtype) + 1);
      for (const [T, K, N] of ODD_SIZES) {
        for (const hasBias of [false, true]) {
          const w = randomTensor(r, [N, K], dtype);
          const b = randomTensor(r, [N], dtype);
          const x = randomTensor(r, [T, K], 'float32').v;
          const lin = new Linear({ inDim: K, outDim: N, hasBias, dtype });
          lin.loadStateDict(hasBias ? { weight: w.t, bias: b.t } : { weight: w.t });
          const y = await lin.forward(x);
          expect(y.length).toBe(T * N);
          expect(relErr64(y, linear64(x, T, w.v, N, K, hasBias ? b.v : undefined)), `${T}x${K}->${N} bias=${hasBias}`).toBeLessThan(TOL);
          // a HostTensor input of another float dtype is converted, same numbers
          const xb = HostTensor.fromFloat32([T, K], x, 'bfloat16');
          expect(relErr64(await lin.forward(xb), linear64(xb.toFloat32(), T, w.v, N, K, hasBias ? b.v : undefined))).toBeLessThan(TOL);
        }
      }
    });
  }
});

describe('MLP (CPU) vs plain loops', () => {
  for (const dtype of DTYPES) {
    for (const activation of ACTS) {
      it(`${dtype} ${activation.kind}: odd H and I, with and without biases`, async () => {
        for (const [i, [T, H, I]] of ODD_SIZES.entries()) {
          for (const bias of [false, true]) {
            const { sd, w } = randomMlp(100 * i + (bias ? 1 : 0) + DTYPES.indexOf(dtype) * 7, H, I, dtype, bias);
            const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: bias, dtype, activation });
            mlp.loadStateDict(sd);
            const x = randomTensor(rng(i + 50), [T, H], 'float32', 1.5).v;
            const y = await mlp.forward(x);
            expect(relErr64(y, mlp64(x, T, H, I, w, activation)), `T=${T} H=${H} I=${I} bias=${bias}`).toBeLessThan(TOL);
          }
        }
      });
    }
  }
});

describe('LayerList and state dicts', () => {
  it('a LayerList of MLPs loads one prefixed state dict; each element computes its own weights', async () => {
    const H = 9, I = 5, T = 4;
    const parts = [0, 1, 2].map((e) => randomMlp(300 + e, H, I, 'bfloat16', e === 1));
    const list = new LayerList(parts.map((_, e) => new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: e === 1, dtype: 'bfloat16' })));
    const sd = new Map<string, HostTensor>();
    parts.forEach((p, e) => {
      for (const [k, v] of Object.entries(p.sd)) sd.set(`${e}.${k}`, v);
    });
    list.loadStateDict(sd);
    const x = randomTensor(rng(9), [T, H], 'float32').v;
    for (let e = 0; e < 3; e++) expect(relErr64(await list.at(e).forward(x), mlp64(x, T, H, I, parts[e].w, { kind: 'silu' })), `expert ${e}`).toBeLessThan(TOL);
    // stateDict() gives back exactly what was loaded (same keys, dtypes and bits), and it loads into a fresh list
    const back = list.stateDict();
    expect([...back.keys()].sort()).toEqual([...sd.keys()].sort());
    for (const [k, v] of sd) {
      expect(back.get(k)!.dtype, k).toBe('bfloat16');
      expect(Array.from(back.get(k)!.data as Uint16Array), k).toEqual(Array.from(v.data as Uint16Array));
    }
    const copy = new LayerList(parts.map((_, e) => new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: e === 1, dtype: 'bfloat16' })));
    copy.loadStateDict(back);
    for (let e = 0; e < 3; e++) expect(await copy.at(e).forward(x)).toEqual(await list.at(e).forward(x));
  });

  it('a bad entry anywhere in a LayerList state dict stores nothing in any element', () => {
    const H = 6, I = 3;
    const parts = [0, 1].map((e) => randomMlp(400 + e, H, I, 'float32', false));
    const list = new LayerList([0, 1].map(() => new MLP({ hiddenDim: H, feedForwardLength: I })));
    const good: Record<string, HostTensor> = {};
    parts.forEach((p, e) => Object.entries(p.sd).forEach(([k, v]) => (good[`${e}.${k}`] = v)));
    const wrongShape = { ...good, '1.down_proj.weight': HostTensor.fromFloat32([I, H], new Float32Array(H * I)) };
    expect(() => list.loadStateDict(wrongShape)).toThrow(/1\.down_proj\.weight: expected shape \[6, 3\], got \[3, 6\]/);
    const missing = { ...good };
    delete missing['0.up_proj.weight'];
    expect(() => list.loadStateDict(missing)).toThrow(StateDictError);
    for (const [n, p] of list.namedParameters()) expect(p.host, n).toBeUndefined();
  });

  it('loading again replaces every weight (a second state dict gives the second layer)', async () => {
    const H = 7, I = 4, T = 3;
    const a = randomMlp(500, H, I, 'float16', true);
    const b = randomMlp(501, H, I, 'float16', true);
    const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: true, dtype: 'float16' });
    const x = randomTensor(rng(3), [T, H], 'float32').v;
    mlp.loadStateDict(a.sd);
    expect(relErr64(await mlp.forward(x), mlp64(x, T, H, I, a.w, { kind: 'silu' }))).toBeLessThan(TOL);
    mlp.loadStateDict(b.sd);
    expect(relErr64(await mlp.forward(x), mlp64(x, T, H, I, b.w, { kind: 'silu' }))).toBeLessThan(TOL);
  });
});

describe('sharded layers on CPU devices vs plain loops (tensor parallel)', () => {
  const cpus = (n: number) => Array.from({ length: n }, () => DeviceRef.CPU());

  for (const n of [2, 3]) {
    it(`MLP tensorParallel(${n}) over uneven widths, bias on the leader only`, async () => {
      for (const [T, H, I] of [[1, 7, 5], [5, 9, 11], [3, 16, 31]] as const) {
        for (const bias of [false, true]) {
          const { sd, w } = randomMlp(T * 100 + I + n + (bias ? 1 : 0), H, I, 'bfloat16', bias);
          const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, hasBias: bias, dtype: 'bfloat16', activation: { kind: 'swiglu_limit', limit: 0.5 } });
          mlp.loadStateDict(sd);
          const s = mlp.shard(cpus(n), ShardingStrategy.tensorParallel(n));
          expect(s.shards.map((m) => m.feedForwardLength).reduce((a, b) => a + b, 0)).toBe(I);
          expect(s.shards.map((m) => m.shardIndex)).toEqual([...Array(n).keys()]);
          const x = randomTensor(rng(I), [T, H], 'float32').v;
          const y = await s.forward(x);
          expect(relErr64(y, mlp64(x, T, H, I, w, { kind: 'swiglu_limit', limit: 0.5 })), `T=${T} H=${H} I=${I} bias=${bias}`).toBeLessThan(TOL);
        }
      }
    });

    it(`Linear rowwise / columnwise / replicate over ${n} CPU devices`, async () => {
      const r = rng(40 + n);
      for (const [T, K, N] of [[1, 7, 5], [4, 13, 9], [2, 33, 17]] as const) {
        const w = randomTensor(r, [N, K], 'float16');
        const b = randomTensor(r, [N], 'float16');
        const x = randomTensor(r, [T, K], 'float32').v;
        const want = linear64(x, T, w.v, N, K, b.v);
        for (const st of [ShardingStrategy.rowwise(n), ShardingStrategy.columnwise(n), ShardingStrategy.replicate(n)]) {
          const lin = new Linear({ inDim: K, outDim: N, hasBias: true, dtype: 'float16' });
          lin.loadStateDict({ weight: w.t, bias: b.t });
          const s = lin.shard(cpus(n), st);
          const y = await s.forward(x);
          expect(relErr64(y, want), `${st.kind} ${T}x${K}->${N}`).toBeLessThan(TOL);
          // the bias is counted once: on every rowwise slice, on shard 0 only when columns are split
          if (st.kind === 'columnwise') expect(s.shards.slice(1).every((l) => Array.from(l.bias!.value.toFloat32()).every((v) => v === 0))).toBe(true);
        }
      }
    });
  }

  it('a shard count the width cannot feed is a ShardingError before anything is built', () => {
    const mlp = new MLP({ hiddenDim: 4, feedForwardLength: 2 });
    mlp.loadStateDict(randomMlp(1, 4, 2, 'float32', false).sd);
    expect(() => mlp.shard(cpus(3), ShardingStrategy.tensorParallel(3))).toThrow(ShardingError);
    expect(() => mlp.shard(cpus(2), ShardingStrategy.tensorParallel(3))).toThrow(/3 devices/);
  });
});
