// Test helper: Granite MoE checkpoints (model types granitemoe, granitemoeshared, granitemoehybrid) as the hub
// publishes them: the layer's `block_sparse_moe.router.layer.weight` [E, H], `block_sparse_moe.input_linear.weight`
// [E, 2I, H] (gate rows, then up), `block_sparse_moe.output_linear.weight` [E, H, I], and the shared MLP
// `shared_mlp.input_linear.weight` [2S, H] / `shared_mlp.output_linear.weight` [H, S].
import { HostTensor, memorySource, serializeSafetensors, type CheckpointSource } from '@webmoe/tensor';
import { concatRows } from '@webmoe/nn';
import type { MoECheckpoint } from '../src/index.js';
import { CASES, buildCase, type RandomCase } from './random-cases.js';
import { patchedCheckpoint } from './ct-writer.js';
import type { RefConfig, RefWeights } from './reference.js';

/** The Granite-like random case (top-k of the logits then softmax, no router bias, an ungated shared MLP). */
export const GRANITE_CASE: RandomCase = CASES.find((c) => c.cfg.router === 'topk_softmax' && c.opts.gateOptions?.hasBias === false)!;

export type GraniteType = 'granitemoe' | 'granitemoeshared' | 'granitemoehybrid';

/** The config.json of a Granite checkpoint of `type` with two layers (both MoE) and shared MLP width S (none for 0). */
export function graniteConfig(type: GraniteType, H: number, E: number, k: number, I: number, S: number): Record<string, unknown> {
  const arch = { granitemoe: 'GraniteMoeForCausalLM', granitemoeshared: 'GraniteMoeSharedForCausalLM', granitemoehybrid: 'GraniteMoeHybridForCausalLM' }[type];
  return {
    architectures: [arch], model_type: type, hidden_size: H, hidden_act: 'silu', num_hidden_layers: 2, num_local_experts: E, num_experts_per_tok: k,
    intermediate_size: I, ...(type === 'granitemoe' ? {} : { shared_intermediate_size: S }), embedding_multiplier: 12, residual_multiplier: 0.22,
  };
}

/**
 * A Granite checkpoint of `type` from the random case's layer (layer 1), T tokens, `extraConfig` merged into its
 * config; granitemoe has no shared MLP, so its reference config and weights drop the case's.
 */
export function graniteCheckpoint(seed: number, T: number, type: GraniteType, extraConfig: Record<string, unknown> = {}): { source: CheckpointSource; cfg: RefConfig; w: RefWeights; x: Float32Array } {
  const { H, E, k, I, sharedDim } = GRANITE_CASE.cfg;
  const { sd, w, x } = buildCase(GRANITE_CASE, seed, T);
  const S = type === 'granitemoe' ? 0 : sharedDim!;
  const L = 'model.layers.1.';
  const tensors: Record<string, HostTensor> = {
    [`${L}block_sparse_moe.router.layer.weight`]: sd.get('gate.weight')!,
    [`${L}block_sparse_moe.input_linear.weight`]: sd.get('experts.gate_up_proj')!,
    [`${L}block_sparse_moe.output_linear.weight`]: sd.get('experts.down_proj')!,
  };
  if (S) {
    const parts = ['gate_proj', 'up_proj'].map((n) => sd.get(`shared_experts.${n}.weight`)!);
    tensors[`${L}shared_mlp.input_linear.weight`] = concatRows(parts, [2 * S, H]);
    tensors[`${L}shared_mlp.output_linear.weight`] = sd.get('shared_experts.down_proj.weight')!;
  }
  const source = memorySource({ 'config.json': new TextEncoder().encode(JSON.stringify({ ...graniteConfig(type, H, E, k, I, S), ...extraConfig })), 'model.safetensors': serializeSafetensors(tensors) });
  const cfg: RefConfig = S ? GRANITE_CASE.cfg : { ...GRANITE_CASE.cfg, sharedDim: undefined };
  const ww: RefWeights = S ? w : { ...w, sGate: undefined, sUp: undefined, sDown: undefined };
  return { source, cfg, w: ww, x };
}

/**
 * The Mixtral fixture seen as a granitemoe checkpoint: its router as `router.layer.weight`, each expert's w1 and w3
 * stacked into `input_linear` [E, 2I, H], its w2 into `output_linear` [E, H, I]. Mixtral's routing (softmax over all
 * experts, top-k, renormalised) is Granite's (top-k of the logits, softmax over those k), so the Mixtral block's
 * transformers golden is this block's.
 */
export async function graniteFromMixtral(ck: MoECheckpoint): Promise<MoECheckpoint> {
  const c = ck.config as Record<string, unknown>;
  const p = 'model.layers.0.block_sparse_moe.';
  const E = c.num_local_experts as number;
  const [I, H] = ck.info(`${p}experts.0.w1.weight`)!.shape;
  const gateUp = new Float32Array(E * 2 * I * H);
  const down = new Float32Array(E * H * I);
  for (let e = 0; e < E; e++) {
    gateUp.set((await ck.read(`${p}experts.${e}.w1.weight`)).toFloat32(), e * 2 * I * H);
    gateUp.set((await ck.read(`${p}experts.${e}.w3.weight`)).toFloat32(), (e * 2 + 1) * I * H);
    down.set((await ck.read(`${p}experts.${e}.w2.weight`)).toFloat32(), e * H * I);
  }
  return patchedCheckpoint(ck, {
    rename: (n) => n.replace(`${p}gate.weight`, `${p}router.layer.weight`),
    drop: (n) => n.includes('.experts.'),
    add: new Map([
      [`${p}input_linear.weight`, HostTensor.fromFloat32([E, 2 * I, H], gateUp)],
      [`${p}output_linear.weight`, HostTensor.fromFloat32([E, H, I], down)],
    ]),
    config: () => graniteConfig('granitemoe', H, E, c.num_experts_per_tok as number, I, 0),
  });
}
