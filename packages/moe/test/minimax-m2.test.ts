// MiniMax-M2 checkpoints (model_type minimax_m2, as the hub publishes them: block_sparse_moe.gate.weight, the block's
// e_score_correction_bias, experts.{e}.w1 / w3 / w2) through MoE.fromHuggingFace, against the independent per-token
// reference (transformers' MiniMaxM2SparseMoeBlock: sigmoid scores, top-k of scores + bias, renormalised weights).
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { DeepseekV3Gate, MoE, UnsupportedError, parseHFMoEConfig } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { relErr } from './helpers.js';
import { CASES, buildCase } from './random-cases.js';
import { hubCheckpoint } from './hub-checkpoint.js';

const CASE = CASES.find((c) => c.name.includes('MiniMax-M2'))!;

/** Layer 0 of a minimax_m2 checkpoint in memory from the random case's weights (`withBias`: with the block's correction bias). */
function minimaxCheckpoint(seed: number, T: number, withBias = true) {
  const { H, E, I, k } = CASE.cfg;
  const { sd, w, x } = buildCase(CASE, seed, T);
  const json = { architectures: ['MiniMaxM2ForCausalLM'], model_type: 'minimax_m2', hidden_size: H, hidden_act: 'silu', num_hidden_layers: 1, num_local_experts: E, num_experts_per_tok: k, intermediate_size: I, scoring_func: 'sigmoid', use_routing_bias: true };
  const extra = withBias ? { 'gate.e_score_correction_bias': 'e_score_correction_bias' } : {};
  return { source: hubCheckpoint(sd, 'model.layers.0.block_sparse_moe.', { gate: 'w1', up: 'w3', down: 'w2' }, extra, json), w, x };
}

describe('minimax_m2 checkpoints', () => {
  it('CPU: the reference at T = 1 and 13; the router is sigmoid with the correction bias, one group, renormalised, unscaled', async () => {
    for (const [seed, T] of [[61, 1], [67, 13]] as const) {
      const { source, w, x } = minimaxCheckpoint(seed, T);
      const moe = await MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.CPU() });
      expect(moe.gate).toBeInstanceOf(DeepseekV3Gate);
      expect(moe.gate.routerParams()).toMatchObject({ kind: 'sigmoid_grouped', normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 });
      const err = relErr(await moe.forward(x), referenceMoE(CASE.cfg, w, x, T));
      expect(err, `T=${T}`).toBeLessThan(1e-5);
    }
  });

  it('the block\'s correction bias is read: a checkpoint without it fails naming the tensor', async () => {
    const { source } = minimaxCheckpoint(61, 1, false);
    await expect(MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.CPU() })).rejects.toThrow(/block_sparse_moe\.e_score_correction_bias/);
  });

  it('typed refusals: another scoring function, no routing bias', () => {
    const cfg = { model_type: 'minimax_m2', hidden_size: 8, num_local_experts: 4, num_experts_per_tok: 2, intermediate_size: 4, num_hidden_layers: 1 };
    expect(() => parseHFMoEConfig({ ...cfg, scoring_func: 'softmax' }, 0)).toThrow(UnsupportedError);
    expect(() => parseHFMoEConfig({ ...cfg, use_routing_bias: false }, 0)).toThrow(/use_routing_bias/);
  });
});
