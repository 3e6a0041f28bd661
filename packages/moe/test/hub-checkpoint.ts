// Test helper: checkpoints as the HF hub publishes them (config.json and one model.safetensors with per-expert
// Linear experts), in memory, from a random case's weights (random-cases.ts), so that MoE.fromHuggingFace can be held
// to the independent reference (reference.ts) for block types without a transformers fixture of their own.
import { HostTensor, memorySource, serializeSafetensors, type CheckpointSource } from '@webmoe/tensor';
import { CASES, buildCase, type RandomCase } from './random-cases.js';
import type { RefConfig, RefWeights } from './reference.js';

/**
 * A checkpoint of the random case's layer under `prefix`: its router (`gate.weight`), the routed experts as
 * `experts.{e}.{gate,up,down}.weight` with the names `names` gives, and `extra` state-dict entries renamed
 * (state-dict name -> checkpoint name relative to the prefix, or that name and the shape it is stored in); `config`
 * is config.json.
 */
export function hubCheckpoint(sd: Map<string, HostTensor>, prefix: string, names: { gate: string; up: string; down: string }, extra: Record<string, string | { name: string; shape: number[] }>, config: Record<string, unknown>): CheckpointSource {
  const tensors: Record<string, HostTensor> = { [`${prefix}gate.weight`]: sd.get('gate.weight')! };
  const gu = sd.get('experts.gate_up_proj')!;
  const dn = sd.get('experts.down_proj')!;
  const [E, twoI, H] = gu.shape;
  const I = twoI / 2;
  // rows [r0, r0 + n) of expert e of a stacked [E, rows, cols] tensor
  const rows = (t: HostTensor, e: number, r0: number, n: number) => {
    const [, R, C] = t.shape;
    return new HostTensor(t.dtype, [n, C], t.data.slice((e * R + r0) * C, (e * R + r0 + n) * C) as HostTensor['data']);
  };
  for (let e = 0; e < E; e++) {
    tensors[`${prefix}experts.${e}.${names.gate}.weight`] = rows(gu, e, 0, I);
    tensors[`${prefix}experts.${e}.${names.up}.weight`] = rows(gu, e, I, I);
    tensors[`${prefix}experts.${e}.${names.down}.weight`] = rows(dn, e, 0, H);
  }
  for (const [from, to] of Object.entries(extra)) {
    const t = sd.get(from)!;
    if (typeof to === 'string') tensors[prefix + to] = t;
    else tensors[prefix + to.name] = new HostTensor(t.dtype, to.shape, t.data);
  }
  return memorySource({ 'config.json': new TextEncoder().encode(JSON.stringify(config)), 'model.safetensors': serializeSafetensors(tensors) });
}

/** The DeepSeek-V2-like random case (softmax_grouped router, two shared experts of width I). */
export const V2_CASE: RandomCase = CASES.find((c) => c.cfg.router === 'softmax_grouped')!;

/** A DeepSeek-V2 checkpoint (layer 1 the MoE layer: layer 0 is dense by first_k_dense_replace) with `topkMethod`. */
export function deepseekV2Checkpoint(seed: number, T: number, topkMethod: 'greedy' | 'group_limited_greedy', config: Record<string, unknown> = {}): { source: CheckpointSource; cfg: RefConfig; w: RefWeights; x: Float32Array } {
  const c = V2_CASE;
  const { H, E, I, k } = c.cfg;
  const cfg: RefConfig = topkMethod === 'greedy' ? { ...c.cfg, nGroup: 1, topkGroup: 1 } : c.cfg;
  const { sd, w, x } = buildCase({ ...c, cfg }, seed, T);
  const shared = Object.fromEntries(['gate_proj', 'up_proj', 'down_proj'].map((n) => [`shared_experts.${n}.weight`, `shared_experts.${n}.weight`]));
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
  const source = hubCheckpoint(sd, 'model.layers.1.mlp.', { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }, shared, json);
  return { source, cfg, w, x };
}
