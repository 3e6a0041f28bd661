// Random layers (not from a fixture) for the independent-reference tests.
import { HostTensor, type DType } from '@webmoe/tensor';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, DeepseekV2Gate, DeepseekV3Gate, Ernie45Gate, Llama4Gate, type MoEOptions } from '../src/index.js';
import { route, type RefConfig, type RefWeights } from './reference.js';

export interface RandomCase {
  name: string;
  cfg: RefConfig;
  dtype: DType;
  opts: Omit<MoEOptions, 'devices' | 'ctx'>;
}

export const CASES: RandomCase[] = [
  {
    name: 'softmax top-2 renormalised + gated shared expert (Qwen2-MoE-like), f32',
    cfg: { H: 24, E: 6, k: 2, I: 20, router: 'softmax_topk', normTopkProb: true, act: { kind: 'silu' }, sharedDim: 12, sharedGate: true },
    dtype: 'float32',
    opts: { hiddenDim: 24, numExperts: 6, numExpertsPerToken: 2, moeDim: 20, gateCls: SoftmaxTopKGate, gateOptions: { normTopkProb: true }, hasSharedExperts: true, sharedExpertsDim: 12, hasSharedExpertGate: true },
  },
  {
    name: 'top-3 then softmax with router bias, swigluoai interleaved with expert biases (GPT-OSS-like), bf16',
    cfg: { H: 40, E: 5, k: 3, I: 12, router: 'topk_softmax', act: { kind: 'swigluoai', limit: 0.9, alpha: 1.702 }, interleaved: true },
    dtype: 'bfloat16',
    opts: {
      hiddenDim: 40, numExperts: 5, numExpertsPerToken: 3, moeDim: 12, gateCls: TopKSoftmaxGate, hasExpertBias: true,
      expertActivation: { kind: 'swigluoai', limit: 0.9, alpha: 1.702, layout: 'interleaved' },
    },
  },
  {
    name: 'sigmoid grouped no-aux (DeepSeek-V3-like) + shared expert, bf16',
    cfg: { H: 32, E: 8, k: 3, I: 16, router: 'sigmoid_grouped', normTopkProb: true, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5, act: { kind: 'silu' }, sharedDim: 16 },
    dtype: 'bfloat16',
    opts: {
      hiddenDim: 32, numExperts: 8, numExpertsPerToken: 3, moeDim: 16, gateCls: DeepseekV3Gate,
      gateOptions: { normTopkProb: true, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5 }, hasSharedExperts: true, sharedExpertsDim: 16,
    },
  },
  {
    name: 'softmax group-limited greedy, scaled, not renormalised (DeepSeek-V2-like) + two shared experts, bf16',
    cfg: { H: 24, E: 12, k: 3, I: 8, router: 'softmax_grouped', nGroup: 4, topkGroup: 2, routedScalingFactor: 3, act: { kind: 'silu' }, sharedDim: 16 },
    dtype: 'bfloat16',
    opts: {
      hiddenDim: 24, numExperts: 12, numExpertsPerToken: 3, moeDim: 8, gateCls: DeepseekV2Gate,
      gateOptions: { normTopkProb: false, nGroup: 4, topkGroup: 2, routedScalingFactor: 3 }, hasSharedExperts: true, sharedExpertsDim: 16,
    },
  },
  {
    name: 'sigmoid top-k on scores + correction bias, renormalised, one group (MiniMax-M2-like), bf16',
    cfg: { H: 28, E: 10, k: 4, I: 12, router: 'sigmoid_grouped', normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1, act: { kind: 'silu' } },
    dtype: 'bfloat16',
    opts: {
      hiddenDim: 28, numExperts: 10, numExpertsPerToken: 4, moeDim: 12, gateCls: DeepseekV3Gate,
      gateOptions: { normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 },
    },
  },
  {
    name: 'softmax probabilities + correction bias, renormalised (ERNIE-4.5-like) + two shared experts, bf16',
    cfg: { H: 20, E: 9, k: 3, I: 10, router: 'softmax_biased', normTopkProb: true, act: { kind: 'silu' }, sharedDim: 20 },
    dtype: 'bfloat16',
    opts: { hiddenDim: 20, numExperts: 9, numExpertsPerToken: 3, moeDim: 10, gateCls: Ernie45Gate, hasSharedExperts: true, sharedExpertsDim: 20 },
  },
  {
    name: 'top-3 of the logits then softmax, no router bias (Granite-MoE-like) + ungated shared MLP, bf16',
    cfg: { H: 24, E: 8, k: 3, I: 12, router: 'topk_softmax', act: { kind: 'silu' }, sharedDim: 20 },
    dtype: 'bfloat16',
    opts: { hiddenDim: 24, numExperts: 8, numExpertsPerToken: 3, moeDim: 12, gateCls: TopKSoftmaxGate, gateOptions: { hasBias: false }, hasSharedExperts: true, sharedExpertsDim: 20 },
  },
  {
    name: 'sigmoid top-1 applied to the input (Llama-4-like) + shared expert, f32',
    cfg: { H: 16, E: 4, k: 1, I: 8, router: 'sigmoid_topk', applyRouterWeightFirst: true, act: { kind: 'silu' }, sharedDim: 8 },
    dtype: 'float32',
    opts: { hiddenDim: 16, numExperts: 4, numExpertsPerToken: 1, moeDim: 8, gateCls: Llama4Gate, applyRouterWeightFirst: true, hasSharedExperts: true, sharedExpertsDim: 8 },
  },
  {
    name: 'MAX MoEGate raw top-2 with swigluLimit 0.5, f32',
    cfg: { H: 20, E: 7, k: 2, I: 10, router: 'raw_topk', act: { kind: 'swiglu_limit', limit: 0.5 } },
    dtype: 'float32',
    opts: { hiddenDim: 20, numExperts: 7, numExpertsPerToken: 2, moeDim: 10, gateCls: MoEGate, swigluLimit: 0.5 },
  },
];

/** Random weights (rounded to the case's dtype), the state dict and T tokens with a clear routing margin. */
export function buildCase(c: RandomCase, seed: number, T: number): { sd: Map<string, HostTensor>; w: RefWeights; x: Float32Array } {
  const r = rng(seed);
  const { H, E, I } = c.cfg;
  const sd = new Map<string, HostTensor>();
  const make = (name: string, shape: number[], scale: number, dtype: DType = c.dtype): Float32Array => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (r() * 2 - 1) * scale;
    const t = HostTensor.fromFloat32(shape, v, dtype);
    sd.set(name, t);
    return t.toFloat32();
  };
  const w: RefWeights = {
    gate: make('gate.weight', [E, H], 2 / Math.sqrt(H)),
    gateUp: make('experts.gate_up_proj', [E, 2 * I, H], 1.5 / Math.sqrt(H)),
    down: make('experts.down_proj', [E, H, I], 1.5 / Math.sqrt(I)),
  };
  if (c.cfg.router === 'topk_softmax' && c.opts.gateOptions?.hasBias !== false) w.gateBias = make('gate.bias', [E], 0.2);
  if (c.cfg.router === 'sigmoid_grouped' || c.cfg.router === 'softmax_biased') w.corr = make('gate.e_score_correction_bias', [E], c.cfg.router === 'softmax_biased' ? 0.05 : 0.3, 'float32');
  if (c.opts.hasExpertBias) {
    w.gateUpBias = make('experts.gate_up_proj_bias', [E, 2 * I], 0.2);
    w.downBias = make('experts.down_proj_bias', [E, H], 0.2);
  }
  if (c.cfg.sharedDim) {
    const S = c.cfg.sharedDim;
    w.sGate = make('shared_experts.gate_proj.weight', [S, H], 1 / Math.sqrt(H));
    w.sUp = make('shared_experts.up_proj.weight', [S, H], 1 / Math.sqrt(H));
    w.sDown = make('shared_experts.down_proj.weight', [H, S], 1 / Math.sqrt(S));
    if (c.cfg.sharedGate) w.sGateW = make('shared_expert_gate.weight', [1, H], 1 / Math.sqrt(H));
  }
  const x = new Float32Array(T * H);
  let kept = 0;
  for (let tries = 0; kept < T && tries < 100 * T; tries++) {
    const cand = new Float32Array(H);
    for (let h = 0; h < H; h++) cand[h] = (r() * 2 - 1) * 1.5;
    if (route(c.cfg, w, cand, 0).margin > 2e-3) x.set(cand, H * kept++);
  }
  if (kept < T) throw new Error(`${c.name}: only ${kept} tokens with a clear routing margin`);
  return { sd, w, x };
}
