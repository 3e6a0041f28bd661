import { describe, it, expect } from 'vitest';
import { HostTensor, ShapeError, DTypeError, DeviceRef, ValueError } from '@webmoe/tensor';
import { isCpuResident, linearRef } from '@webmoe/kernels-wgsl';
import { relErr } from '@webmoe/kernels-wgsl/testing';
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

  it('a CPU module keeps its float parameters where the CPU kernels read them in place: one memory, the same values, the loaded tensors untouched', () => {
    const mlp = new MLP({ hiddenDim: 16, feedForwardLength: 8, hasBias: true, dtype: 'bfloat16' });
    const sd = Object.fromEntries(mlp.namedParameters().map(([n, p], i) => [n, t([...p.shape], range(p.shape.reduce((a, b) => a * b, 1), (j) => ((i + j) % 7) - 3), 'bfloat16')]));
    mlp.loadStateDict(sd);
    for (const [n, p] of mlp.namedParameters()) {
      expect(isCpuResident(p.value), n).toBe(true);
      expect(p.value, n).not.toBe(sd[n]);
      expect([p.value.dtype, p.value.shape, Array.from(p.value.data)], n).toEqual([sd[n].dtype, sd[n].shape, Array.from(sd[n].data)]);
      expect(isCpuResident(sd[n]), n).toBe(false);
    }
    // one memory per module: a projection's weight and bias together
    expect(mlp.gateProj.weight.value.data.buffer).toBe(mlp.gateProj.bias!.value.data.buffer);
    expect(mlp.gateProj.weight.value.data.buffer).not.toBe(mlp.upProj.weight.value.data.buffer);
    // the forward: the same values as the loaded tensors give
    const x = new Float32Array(range(2 * 16, (i) => Math.sin(i)));
    const lin = new Linear({ inDim: 16, outDim: 8, hasBias: true, dtype: 'bfloat16' });
    lin.loadStateDict({ weight: sd['gate_proj.weight'], bias: sd['gate_proj.bias'] });
    expect(lin.forwardHost(x, 2)).toEqual(mlp.gateProj.forwardHost(x, 2));
    expect(relErr(lin.forwardHost(x, 2), linearRef(x, 2, sd['gate_proj.weight'], sd['gate_proj.bias']))).toBeLessThan(1e-6);
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
