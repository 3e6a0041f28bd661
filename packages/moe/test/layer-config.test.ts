// The layer config (layer-config.ts): built once from the options, frozen, read by the layer's getters, the expert
// stores and the derived layers (shards, quantize); the HF loader's layers carry the checkpoint's description.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostTensor, ValueError } from '@webmoe/tensor';
import { DeviceGroup, ShardingStrategy } from '@webmoe/sharding';
import { MoE, QuantizedExperts, SoftmaxTopKGate, StackedExperts, moeLayerConfig, quantize, type MoEOptions } from '../src/index.js';
import { configOptions } from '../src/layer-config.js';
import { FIXTURES } from './helpers.js';

const base = { hiddenDim: 16, numExperts: 4, numExpertsPerToken: 2, moeDim: 8 };

function filled(moe: MoE): MoE {
  const sd: Record<string, HostTensor> = {};
  for (const [n, p] of moe.namedParameters()) {
    const v = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 0.37 + n.length) * 0.1;
    sd[n] = HostTensor.fromFloat32(p.shape, v, p.dtype);
  }
  moe.loadStateDict(sd);
  return moe;
}

describe('moeLayerConfig', () => {
  it('is frozen throughout (config, storage, quant, its block size, shared experts, activation): assignments throw', () => {
    const c = moeLayerConfig({ ...base, hasSharedExperts: true, sharedExpertsDim: 12, quantConfig: { format: 'fp8_block', weightBlockSize: [8, 8], quantizeSharedExperts: true } });
    expect(c.experts.format).toBe('fp8_block');
    if (c.experts.format === 'dense') throw new Error('expected packed experts');
    for (const o of [c, c.experts, c.experts.quant, c.experts.quant.weightBlockSize, c.shared, c.activation]) expect(Object.isFrozen(o)).toBe(true);
    expect(() => ((c as { moeDim: number }).moeDim = 4)).toThrow(TypeError);
    expect(() => (c.experts.quant.weightBlockSize[0] = 4)).toThrow(TypeError);
  });

  it('fills the defaults the options leave out, and puts the activationQuant override inside the quant config', () => {
    const d = moeLayerConfig(base);
    expect(d).toEqual({
      ...base,
      epSize: 1,
      shardIndex: 0,
      dtype: 'float32',
      applyRouterWeightFirst: false,
      swigluLimit: 0,
      activation: { kind: 'silu', layout: 'concat' },
      expertBias: false,
      shared: undefined,
      experts: { format: 'dense', dtype: 'float32' },
      isSharding: false,
    });
    expect(moeLayerConfig({ ...base, swigluLimit: 7, dtype: 'bfloat16' })).toMatchObject({ activation: { kind: 'swiglu_limit', limit: 7, layout: 'concat' }, experts: { format: 'dense', dtype: 'bfloat16' } });
    const q = moeLayerConfig({ ...base, quantConfig: { format: 'int4' }, activationQuant: 'dynamic' });
    expect(q.experts).toEqual({
      format: 'int4',
      quant: { format: 'int4', fp8Dtype: 'float8_e4m3fn', weightBlockSize: [128, 128], blockSize: 32, scaleDtype: 'float16', zeroPoint: false, activationQuant: 'dynamic', activationAmaxClamp: undefined, quantizeSharedExperts: false, biasDtype: 'float32' },
    });
    expect(() => moeLayerConfig({ ...base, activationQuant: 'dynamic' })).toThrow(ValueError);
  });

  it('configOptions(c) rebuilds c exactly, for dense, quantized, expert-parallel and shared-expert layers', () => {
    const cases: Omit<MoEOptions, 'devices'>[] = [
      base,
      { ...base, hasSharedExperts: true, sharedExpertsDim: 24, hasSharedExpertGate: true, dtype: 'float16', applyRouterWeightFirst: true, swigluLimit: 3 },
      { ...base, expertActivation: { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' }, hasExpertBias: true, quantConfig: { format: 'mxfp4', biasDtype: 'bfloat16' } },
      { ...base, epSize: 2, shardIndex: 1, isSharding: true, hasSharedExperts: true, sharedExpertsDim: 8, quantConfig: { format: 'fp8_block', activationQuant: 'dynamic', quantizeSharedExperts: true } },
    ];
    for (const o of cases) {
      const c = moeLayerConfig(o);
      expect(moeLayerConfig(configOptions(c))).toEqual(c);
    }
  });
});

describe('MoE.config', () => {
  it("the layer's getters read its config; the expert store and shared experts follow its storage, state-dict names unchanged", () => {
    const dense = new MoE({ ...base, hasSharedExperts: true, sharedExpertsDim: 12, swigluLimit: 5, gateCls: SoftmaxTopKGate });
    expect([dense.hiddenDim, dense.numExperts, dense.numExpertsPerToken, dense.moeDim, dense.sharedExpertsDim, dense.epSize, dense.swigluLimit]).toEqual([16, 4, 2, 8, 12, 1, 5]);
    expect(dense.hasSharedExperts).toBe(true);
    expect(dense.activation).toBe(dense.config.activation);
    expect(dense.quant).toBeUndefined();
    expect(dense.activationQuant).toBe('none');
    expect(dense.stacked).toBeInstanceOf(StackedExperts);
    expect(dense.stacked.format).toBe('dense');
    expect(dense.shared?.kind).toBe('mlp');
    expect(dense.sharedExperts).toBe(dense.shared?.kind === 'mlp' ? dense.shared.mlp : 'not an mlp');
    expect(dense.namedParameters().map(([n]) => n).filter((n) => n.startsWith('shared_experts.'))).toEqual(['shared_experts.gate_proj.weight', 'shared_experts.up_proj.weight', 'shared_experts.down_proj.weight']);

    const packed = new MoE({ ...base, hasSharedExperts: true, sharedExpertsDim: 12, quantConfig: { format: 'int8', blockSize: 4, quantizeSharedExperts: true }, activationQuant: 'dynamic' });
    expect(packed.stacked).toBeInstanceOf(QuantizedExperts);
    expect(packed.stacked.format).toBe('int8');
    expect(packed.quant).toBe((packed.config.experts as { quant: unknown }).quant);
    expect(packed.activationQuant).toBe('dynamic');
    expect(packed.shared?.kind).toBe('packed');
    expect(packed.sharedExperts).toBeUndefined();
    expect(packed.namedParameters().map(([n]) => n).filter((n) => n.startsWith('shared_experts.'))).toEqual([
      'shared_experts.gate_up_proj_qweight',
      'shared_experts.gate_up_proj_scales',
      'shared_experts.down_proj_qweight',
      'shared_experts.down_proj_scales',
    ]);
  });

  it('shards and quantized layers are rebuilt from the source config: only what the derivation changes differs', () => {
    const src = filled(new MoE({ ...base, hasSharedExperts: true, sharedExpertsDim: 12, gateCls: SoftmaxTopKGate }));
    const tp = src.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2));
    expect(tp.shards.map((s) => s.config)).toEqual([
      { ...src.config, moeDim: 4, shared: { dim: 6, gated: false, packed: false }, isSharding: true },
      { ...src.config, moeDim: 4, shared: { dim: 6, gated: false, packed: false }, isSharding: true },
    ]);
    const ep = src.shard(DeviceGroup.cpu(2), ShardingStrategy.expertParallel(2));
    expect(ep.shards.map((s) => s.config)).toEqual([0, 1].map((i) => ({ ...src.config, epSize: 2, shardIndex: i, isSharding: true })));
    const q = quantize(src, 'int4');
    expect(q.config).toEqual({ ...src.config, experts: { format: 'int4', quant: expect.objectContaining({ format: 'int4', blockSize: 32, quantizeSharedExperts: false }) } });
    for (const m of [tp, ep, q, src]) m.destroy();
  });

  it("MoE.fromHuggingFace: the config is the checkpoint's (deepseek_v3_fp8: fp8 blocks, dynamic activations, packed shared expert)", async () => {
    const hf = JSON.parse(readFileSync(join(FIXTURES, 'deepseek_v3_fp8', 'config.json'), 'utf8'));
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0 });
    const c = moe.config;
    expect([c.hiddenDim, c.numExperts, c.numExpertsPerToken, c.moeDim]).toEqual([hf.hidden_size, hf.n_routed_experts, hf.num_experts_per_tok, hf.moe_intermediate_size]);
    expect(c.shared).toEqual({ dim: hf.n_shared_experts * hf.moe_intermediate_size, gated: false, packed: true });
    expect(c.experts).toMatchObject({ format: 'fp8_block', quant: { fp8Dtype: 'float8_e4m3fn', weightBlockSize: hf.quantization_config.weight_block_size, activationQuant: 'dynamic' } });
    moe.destroy();
    const weightOnly = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, activationQuant: 'none' });
    expect(weightOnly.config.experts).toMatchObject({ format: 'fp8_block', quant: { activationQuant: 'none' } });
    weightOnly.destroy();
  });
});
