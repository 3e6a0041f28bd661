// Test helper: the OLMoE fixture seen as a Jamba checkpoint (model_type jamba). OLMoE's block (softmax over all
// experts, top-k, not renormalised: norm_topk_prob false) routes as transformers' JambaSparseMoeBlock, so the OLMoE
// block's transformers golden is this block's. Jamba's names: `model.layers.N.feed_forward.router.weight` and
// `feed_forward.experts.{e}.{gate,up,down}_proj.weight`.
import type { MoECheckpoint } from '../src/index.js';
import { patchedCheckpoint } from './ct-writer.js';

export function jambaFromOlmoe(ck: MoECheckpoint, config: Record<string, unknown> = {}): MoECheckpoint {
  const c = ck.config as Record<string, unknown>;
  if (c.norm_topk_prob !== false) throw new Error('test: the OLMoE fixture must not renormalise (Jamba does not)');
  return patchedCheckpoint(ck, {
    rename: (n) => n.replace('.mlp.gate.weight', '.feed_forward.router.weight').replace('.mlp.experts.', '.feed_forward.experts.'),
    config: () => ({
      architectures: ['JambaForCausalLM'], model_type: 'jamba', hidden_size: c.hidden_size, intermediate_size: c.intermediate_size, hidden_act: 'silu',
      num_experts: c.num_experts, num_experts_per_tok: c.num_experts_per_tok, num_hidden_layers: 2, expert_layer_period: 2, expert_layer_offset: 0,
      attn_layer_period: 8, attn_layer_offset: 4, ...config,
    }),
  });
}
