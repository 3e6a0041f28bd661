// Jamba checkpoints (model_type jamba: AI21's Jamba 1.5 / 1.6 / 1.7) through MoE.fromHuggingFace on the CPU: the OLMoE
// fixture in Jamba's names against its transformers golden (same routing), the MoE-layer rule and refusals.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { ConfigError, MoE, SoftmaxTopKGate, UnsupportedError, hfMoELayers, parseHFMoEConfig } from '../src/index.js';
import { expectGoldenSets, fixtureCheckpoints } from './helpers.js';
import { jambaFromOlmoe } from './jamba-checkpoint.js';

const open = fixtureCheckpoints();

describe('jamba checkpoints (CPU)', () => {
  it('the OLMoE fixture in Jamba\'s names gives its transformers golden (T = 16 and 600)', async () => {
    const view = jambaFromOlmoe(await open('olmoe'));
    const moe = await MoE.fromHuggingFace({ source: view, layer: 0, device: DeviceRef.CPU() });
    expect(moe.gate).toBeInstanceOf(SoftmaxTopKGate);
    expect(moe.gate.routerParams()).toMatchObject({ kind: 'softmax_topk', normTopkProb: false });
    await expectGoldenSets(moe, 'olmoe');
  });

  it('MoE layers by expert_layer_period / expert_layer_offset; refusals name the field', async () => {
    const cfg = { model_type: 'jamba', hidden_size: 8, intermediate_size: 4, num_experts: 4, num_experts_per_tok: 2, num_hidden_layers: 8 };
    // the defaults (period 2, offset 1: Jamba-Mini / Large): every odd layer
    expect(hfMoELayers(cfg)).toEqual([1, 3, 5, 7]);
    expect(hfMoELayers({ ...cfg, expert_layer_period: 4, expert_layer_offset: 2 })).toEqual([2, 6]);
    expect(() => parseHFMoEConfig(cfg, 2)).toThrow(ConfigError);
    expect(() => parseHFMoEConfig(cfg, 2)).toThrow(/expert_layer_period/);
    expect(() => parseHFMoEConfig({ ...cfg, num_experts: 1 }, 1)).toThrow(/num_experts/);
    expect(() => parseHFMoEConfig({ ...cfg, hidden_act: 'gelu' }, 1)).toThrow(UnsupportedError);
    expect(parseHFMoEConfig(cfg, 1)).toMatchObject({ prefixes: ['model.layers.1.feed_forward.'], router: { weight: 'router.weight' }, experts: { kind: 'per_expert', gate: 'gate_proj' } });
    // the fixture's dense layer under the Jamba rule
    const view = jambaFromOlmoe(await open('olmoe'), { expert_layer_offset: 1 });
    await expect(MoE.fromHuggingFace({ source: view, layer: 0, device: DeviceRef.CPU() })).rejects.toThrow(/expert_layer_period/);
  });
});
