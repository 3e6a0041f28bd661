// The MoE constructor, properties and input checks (CPU).
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor, ShapeError, ValueError, DTypeError } from '@webmoe/tensor';
import { StateDictError } from '@webmoe/nn';
import { ShardingError } from '@webmoe/sharding';
import { MoE, SoftmaxTopKGate, UnsupportedError } from '../src/index.js';
import { CASES, buildCase } from './random-cases.js';
import { relErr } from './helpers.js';

const base = { hiddenDim: 8, numExperts: 4, numExpertsPerToken: 2, moeDim: 6 };

describe('MoE API', () => {
  it('rejects options it cannot honour with typed errors naming them', () => {
    // epSize > 1 is one expert-parallel shard (MoE.shard builds them): E must divide
    expect(() => new MoE({ ...base, epSize: 3 })).toThrow(ShardingError);
    expect(() => new MoE({ ...base, epSize: 3 })).toThrow(/numExperts \(expert parallel over epSize 3\): expected a multiple of 3, got 4/);
    expect(() => new MoE({ ...base, epSize: 0 })).toThrow(/epSize: expected a positive integer/);
    expect(() => new MoE({ ...base, epSize: 2, shardIndex: 2 })).toThrow(/shardIndex: expected an integer in \[0, 2\)/);
    expect(new MoE({ ...base, epSize: 2, shardIndex: 1 }).gateUpProj.shape).toEqual([2, 12, 8]); // E / epSize local experts
    expect(() => new MoE({ ...base, quantConfig: { quant_method: 'fp8' } })).toThrow(/quantConfig/);
    expect(() => new MoE({ ...base, numExpertsPerToken: 5 })).toThrow(ValueError);
    expect(() => new MoE({ ...base, moeDim: 0 })).toThrow(/moeDim/);
    expect(() => new MoE({ ...base, dtype: 'int8' })).toThrow(DTypeError);
    expect(() => new MoE({ ...base, hasSharedExperts: true })).toThrow(/sharedExpertsDim/);
    expect(() => new MoE({ ...base, devices: [DeviceRef.GPU()] })).toThrow(/ctx/);
  });

  it('names its parameters as MAX/HF do and checks the state dict', () => {
    const moe = new MoE({ ...base, gateCls: SoftmaxTopKGate, hasSharedExperts: true, sharedExpertsDim: 4, hasSharedExpertGate: true });
    expect(moe.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual([
      'gate.weight:4x8',
      'experts.gate_up_proj:4x12x8',
      'experts.down_proj:4x8x6',
      'shared_experts.gate_proj.weight:4x8',
      'shared_experts.up_proj.weight:4x8',
      'shared_experts.down_proj.weight:8x4',
      'shared_expert_gate.weight:1x8',
    ]);
    expect(moe.gateUpProj.shape).toEqual([4, 12, 8]);
    expect(moe.downProj.shape).toEqual([4, 8, 6]);
    expect(() => moe.loadStateDict({ 'gate.weight': new HostTensor('float32', [4, 8]) })).toThrow(StateDictError);
  });

  it('experts: a LayerList of per-expert MLPs cut from the stacked weights', async () => {
    const c = CASES[0];
    const { sd, w, x } = buildCase(c, 5, 3);
    const moe = new MoE({ ...c.opts, dtype: c.dtype });
    moe.loadStateDict(sd);
    expect(moe.experts.length).toBe(c.cfg.E);
    // Expert 0's MLP equals plain loops over rows 0..I-1 (gate) and I..2I-1 (up) of gate_up_proj[0] and down_proj[0].
    const y0 = await moe.experts.at(0).forward(x);
    const H = c.cfg.H;
    const I = c.cfg.I;
    const want = new Float32Array(3 * H);
    for (let t = 0; t < 3; t++) {
      const hs: number[] = [];
      for (let i = 0; i < I; i++) {
        let g = 0;
        let u = 0;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * w.gateUp[i * H + h];
          u += x[t * H + h] * w.gateUp[(I + i) * H + h];
        }
        hs.push((g / (1 + Math.exp(-g))) * u);
      }
      for (let h = 0; h < H; h++) want[t * H + h] = hs.reduce((s, v, i) => s + v * w.down[h * I + i], 0);
    }
    expect(relErr(y0, want)).toBeLessThan(1e-5);
  });

  it('checks forward inputs', async () => {
    const c = CASES[3];
    const { sd } = buildCase(c, 1, 1);
    const moe = new MoE({ ...c.opts, dtype: c.dtype });
    moe.loadStateDict(sd);
    await expect(moe.forward(new Float32Array(c.cfg.H + 1))).rejects.toThrow(ShapeError);
    await expect(moe.forward(new HostTensor('float32', [2, c.cfg.H + 1]))).rejects.toThrow(ShapeError);
    expect((await moe.forward(new Float32Array(0))).length).toBe(0);
    const unloaded = new MoE({ ...c.opts });
    await expect(unloaded.forward(new Float32Array(c.cfg.H))).rejects.toThrow(/loadStateDict/);
  });
});
