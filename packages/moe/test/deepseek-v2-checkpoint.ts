// Test helper: DeepSeek-V2 checkpoints as HF publishes them (config.json with model_type "deepseek_v2", per-expert
// gate / up / down Linears and two shared experts under model.layers.N.mlp.), in memory, from a random case's
// weights (random-cases.ts), so that MoE.fromHuggingFace can be held to the independent reference (reference.ts).
import { HostTensor, memorySource, serializeSafetensors, type CheckpointSource } from '@webmoe/tensor';
import { CASES, buildCase, type RandomCase } from './random-cases.js';
import type { RefConfig, RefWeights } from './reference.js';

/** The DeepSeek-V2-like random case (softmax_grouped router, two shared experts of width I). */
export const V2_CASE: RandomCase = CASES.find((c) => c.cfg.router === 'softmax_grouped')!;

/** The MoE layer (layer 1: layer 0 is dense by first_k_dense_replace) and a config of `topkMethod` around it. */
export function deepseekV2Checkpoint(seed: number, T: number, topkMethod: 'greedy' | 'group_limited_greedy', config: Record<string, unknown> = {}): { source: CheckpointSource; cfg: RefConfig; w: RefWeights; x: Float32Array } {
  const c = V2_CASE;
  const { H, E, I, k } = c.cfg;
  const cfg: RefConfig = topkMethod === 'greedy' ? { ...c.cfg, nGroup: 1, topkGroup: 1 } : c.cfg;
  const { sd, w, x } = buildCase({ ...c, cfg }, seed, T);
  const p = 'model.layers.1.mlp.';
  const tensors: Record<string, HostTensor> = { [`${p}gate.weight`]: sd.get('gate.weight')! };
  const gu = sd.get('experts.gate_up_proj')!;
  const dn = sd.get('experts.down_proj')!;
  const rows = (t: HostTensor, e: number, r0: number, n: number, cols: number) =>
    new HostTensor(t.dtype, [n, cols], t.data.slice((e * (t.shape[1]) + r0) * cols, (e * t.shape[1] + r0 + n) * cols) as HostTensor['data']);
  for (let e = 0; e < E; e++) {
    tensors[`${p}experts.${e}.gate_proj.weight`] = rows(gu, e, 0, I, H);
    tensors[`${p}experts.${e}.up_proj.weight`] = rows(gu, e, I, I, H);
    tensors[`${p}experts.${e}.down_proj.weight`] = rows(dn, e, 0, H, I);
  }
  for (const n of ['gate_proj', 'up_proj', 'down_proj']) tensors[`${p}shared_experts.${n}.weight`] = sd.get(`shared_experts.${n}.weight`)!;
  const json = {
    architectures: ['DeepseekV2ForCausalLM'],
    model_type: 'deepseek_v2',
    hidden_size: H,
    hidden_act: 'silu',
    num_hidden_layers: 2,
    first_k_dense_replace: 1,
    moe_layer_freq: 1,
    n_routed_experts: E,
    num_experts_per_tok: k,
    moe_intermediate_size: I,
    n_shared_experts: c.cfg.sharedDim! / I,
    scoring_func: 'softmax',
    topk_method: topkMethod,
    n_group: cfg.nGroup,
    topk_group: cfg.topkGroup,
    routed_scaling_factor: cfg.routedScalingFactor,
    norm_topk_prob: false,
    ...config,
  };
  const source = memorySource({ 'config.json': new TextEncoder().encode(JSON.stringify(json)), 'model.safetensors': serializeSafetensors(tensors) });
  return { source, cfg, w, x };
}
