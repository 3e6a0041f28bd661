// ERNIE 4.5 MoE checkpoints (model_type ernie4_5_moe, as the hub publishes them: mlp.gate.weight, the correction bias
// mlp.moe_statics.e_score_correction_bias stored [1, E], per-expert gate / up / down Linears and shared experts)
// through MoE.fromHuggingFace, against the independent per-token reference (transformers' Ernie4_5_MoeSparseMoeBlock:
// top-k of softmax probabilities + correction bias, probability weights renormalised); its layer rules and refusals.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { ConfigError, Ernie45Gate, MoE, UnsupportedError, hfMoELayers, parseHFMoEConfig } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { relErr } from './helpers.js';
import { CASES, buildCase } from './random-cases.js';
import { hubCheckpoint } from './hub-checkpoint.js';

const CASE = CASES.find((c) => c.cfg.router === 'softmax_biased')!;

function ernieCheckpoint(seed: number, T: number) {
  const { H, E, I, k, sharedDim } = CASE.cfg;
  const { sd, w, x } = buildCase(CASE, seed, T);
  const json = {
    architectures: ['Ernie4_5_MoeForCausalLM'], model_type: 'ernie4_5_moe', hidden_size: H, hidden_act: 'silu', num_hidden_layers: 2,
    moe_num_experts: E, moe_k: k, moe_intermediate_size: I, moe_num_shared_experts: sharedDim! / I, moe_layer_start_index: 1, moe_layer_end_index: -1,
    moe_layer_interval: 1, moe_norm_min: 1e-12, use_bias: false,
  };
  const extra: Record<string, string | { name: string; shape: number[] }> = { 'gate.e_score_correction_bias': { name: 'moe_statics.e_score_correction_bias', shape: [1, E] } };
  for (const n of ['gate_proj', 'up_proj', 'down_proj']) extra[`shared_experts.${n}.weight`] = `shared_experts.${n}.weight`;
  return { source: hubCheckpoint(sd, 'model.layers.1.mlp.', { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }, extra, json), w, x };
}

describe('ernie4_5_moe checkpoints', () => {
  it('CPU: the reference at T = 1 and 13 (the [1, E] correction bias read as the gate\'s [E])', async () => {
    for (const [seed, T] of [[71, 1], [73, 13]] as const) {
      const { source, w, x } = ernieCheckpoint(seed, T);
      const moe = await MoE.fromHuggingFace({ source, layer: 1, device: DeviceRef.CPU() });
      expect(moe.gate).toBeInstanceOf(Ernie45Gate);
      expect(moe.gate.routerParams()).toMatchObject({ kind: 'softmax_biased', normTopkProb: true });
      expect(Array.from(moe.gate.eScoreCorrectionBias!.value.toFloat32())).toEqual(Array.from(w.corr!));
      const err = relErr(await moe.forward(x), referenceMoE(CASE.cfg, w, x, T));
      expect(err, `T=${T}`).toBeLessThan(1e-5);
    }
  });

  it('layer rules (moe_layer_start_index, moe_layer_end_index, moe_layer_interval) and refusals', () => {
    const cfg = { model_type: 'ernie4_5_moe', hidden_size: 8, moe_num_experts: 4, moe_k: 2, moe_intermediate_size: 4, num_hidden_layers: 28, moe_layer_start_index: 1 };
    // ERNIE-4.5-21B-A3B: 28 layers, the first dense
    expect(hfMoELayers(cfg)).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
    expect(hfMoELayers({ ...cfg, moe_layer_end_index: 5, moe_layer_interval: 2 })).toEqual([1, 3, 5]);
    expect(() => parseHFMoEConfig(cfg, 0)).toThrow(ConfigError);
    expect(() => parseHFMoEConfig(cfg, 0)).toThrow(/moe_layer_start_index/);
    expect(() => parseHFMoEConfig({ ...cfg, use_bias: true }, 1)).toThrow(UnsupportedError);
    expect(() => parseHFMoEConfig({ ...cfg, moe_norm_min: 1e-6 }, 1)).toThrow(/moe_norm_min/);
    expect(parseHFMoEConfig(cfg, 1).router).toEqual({ weight: 'gate.weight', correctionBias: 'moe_statics.e_score_correction_bias', correctionBiasShape: [1, 4] });
  });
});
