import { describe, it, expect } from 'vitest';
import { HostTensor, ShapeError, DTypeError, DeviceRef, ValueError } from '@webmoe/tensor';
import { Module, Linear, MLP, LayerList, StateDictError } from '../src/index.js';

const t = (shape: number[], vals: number[], dtype: 'float32' | 'bfloat16' = 'float32') => HostTensor.fromFloat32(shape, vals, dtype);
const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

describe('Module', () => {
  it('names parameters as a tree and lists them', () => {
    const mlp = new MLP({ hiddenDim: 3, feedForwardLength: 2, hasBias: true });
    const names = mlp.namedParameters().map(([n]) => n);
    expect(names).toEqual(['gate_proj.weight', 'gate_proj.bias', 'up_proj.weight', 'up_proj.bias', 'down_proj.weight', 'down_proj.bias']);
    expect(mlp.parameters().length).toBe(6);
    // the same Parameter objects in the same order as namedParameters, nested lists included
    expect(mlp.parameters()).toEqual(mlp.namedParameters().map(([, p]) => p));
    const list = new LayerList([new Linear({ inDim: 2, outDim: 2 }), new Linear({ inDim: 2, outDim: 2 })]);
    expect(list.namedParameters().map(([n]) => n)).toEqual(['0.weight', '1.weight']);
    const nested = new LayerList([mlp, list]);
    const ps = nested.parameters();
    expect(ps.length).toBe(8);
    ps.forEach((p, i) => expect(p).toBe(nested.namedParameters()[i][1]));
    expect(list.length).toBe(2);
    expect([...list].length).toBe(2);
    expect(() => list.at(2)).toThrow(ValueError);
  });

  it('loadStateDict: missing and unexpected keys are one StateDictError naming them, nothing stored', () => {
    const lin = new Linear({ inDim: 2, outDim: 3, hasBias: true });
    const e = (() => {
      try {
        lin.loadStateDict({ weight: t([3, 2], range(6, (i) => i)), extra: t([1], [0]) });
      } catch (x) {
        return x as StateDictError;
      }
    })()!;
    expect(e).toBeInstanceOf(StateDictError);
    expect(e.missing).toEqual(['bias']);
    expect(e.unexpected).toEqual(['extra']);
    expect(e.message).toMatch(/missing keys: bias; unexpected keys: extra/);
    expect(lin.weight.host).toBeUndefined();
  });

  it('loadStateDict: wrong shape is a ShapeError, wrong dtype a DTypeError, each naming the key', () => {
    const lin = new Linear({ inDim: 2, outDim: 3 });
    expect(() => lin.loadStateDict({ weight: t([2, 3], range(6, (i) => i)) })).toThrow(/weight: expected shape \[3, 2\], got \[2, 3\]/);
    expect(() => lin.loadStateDict({ weight: t([2, 3], range(6, (i) => i)) })).toThrow(ShapeError);
    expect(() => lin.loadStateDict({ weight: t([3, 2], range(6, (i) => i), 'bfloat16') })).toThrow(DTypeError);
    expect(() => lin.loadStateDict({ weight: t([3, 2], range(6, (i) => i), 'bfloat16') })).toThrow(/weight: expected dtype float32, got bfloat16/);
  });

  it('a GPU module without a context is a ValueError', () => {
    expect(() => new Module({ device: DeviceRef.GPU() })).toThrow(/ctx/);
  });
});

describe('Linear and MLP on the CPU', () => {
  it('Linear computes x W^T + b (bf16 weights kept bf16)', async () => {
    const W = [0.5, -1, 2, 0.25, 1.5, -0.75]; // [3, 2], exact in bf16
    const b = [0.125, -2, 1];
    const lin = new Linear({ inDim: 2, outDim: 3, hasBias: true, dtype: 'bfloat16' });
    lin.loadStateDict({ weight: t([3, 2], W, 'bfloat16'), bias: t([3], b, 'bfloat16') });
    expect(lin.weight.value.dtype).toBe('bfloat16');
    const x = new Float32Array([1, 2, -3, 0.5]);
    const y = await lin.forward(x);
    const want: number[] = [];
    for (let r = 0; r < 2; r++) for (let o = 0; o < 3; o++) want.push(x[r * 2] * W[o * 2] + x[r * 2 + 1] * W[o * 2 + 1] + b[o]);
    expect(Array.from(y)).toEqual(want);
    await expect(lin.forward(new Float32Array(3))).rejects.toThrow(ShapeError);
  });

  it('MLP computes down(silu(gate x) * up x), and the swiglu limit', async () => {
    const H = 3;
    const I = 2;
    const G = range(I * H, (i) => Math.sin(i + 1));
    const U = range(I * H, (i) => Math.cos(i + 2));
    const D = range(H * I, (i) => Math.sin(3 * i - 1));
    for (const act of [{ kind: 'silu' as const }, { kind: 'swiglu_limit' as const, limit: 0.2 }]) {
      const mlp = new MLP({ hiddenDim: H, feedForwardLength: I, activation: act });
      mlp.loadStateDict({ 'gate_proj.weight': t([I, H], G), 'up_proj.weight': t([I, H], U), 'down_proj.weight': t([H, I], D) });
      const x = new Float32Array([0.3, -1.2, 2.0]);
      const y = await mlp.forward(x);
      const Gf = t([I, H], G).toFloat32();
      const Uf = t([I, H], U).toFloat32();
      const Df = t([H, I], D).toFloat32();
      const h = range(I, (i) => {
        let g = 0;
        let u = 0;
        for (let k = 0; k < H; k++) {
          g += x[k] * Gf[i * H + k];
          u += x[k] * Uf[i * H + k];
        }
        const s = g / (1 + Math.exp(-g));
        return act.kind === 'silu' ? s * u : Math.min(s, act.limit) * Math.max(-act.limit, Math.min(act.limit, u));
      });
      const want = range(H, (o) => h[0] * Df[o * I] + h[1] * Df[o * I + 1]);
      for (let o = 0; o < H; o++) expect(y[o]).toBeCloseTo(want[o], 5);
    }
  });
});
