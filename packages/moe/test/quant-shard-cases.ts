// Quantized random layers for the sharding tests (CPU, GPU, MPI): odd shapes whose expert width I (and shared width S)
// holds at least three whole blocks, so tensor parallel 2 and 3 split them without cutting one. `widths` are the
// per-shard widths worked out by hand from the block unit (the lcm of every block along I, see docs/DISTRIBUTED.md).
import { DeepseekV3Gate, Llama4Gate, MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, type ActivationQuant, type MoEQuantConfig } from '../src/index.js';
import type { RandomCase } from './random-cases.js';

export interface QuantShardCase {
  case: RandomCase;
  fmt: MoEQuantConfig;
  activationQuant?: ActivationQuant;
  /** The block unit along I, by hand. */
  unit: number;
  /** Expected moeDim (and sharedExpertsDim) of each shard under TP 2 and TP 3. */
  widths: Record<2 | 3, { I: number[]; S?: number[] }>;
  /** Expert-parallel sizes that divide E. */
  ep: number[];
}

export const QUANT_SHARD_CASES: QuantShardCase[] = [
  {
    // fp8 [8, 16]: gate_up row blocks of 8 (concat: s on 8), down column blocks of 16 -> unit 16.
    // I = 56 = 16+16+16+8: TP 2 = 2+2 units, TP 3 = 2+1+1; S = 40 = 16+16+8: 2+1, 1+1+1.
    case: {
      name: 'DeepSeek-like fp8 e4m3 [8, 16] blocks, quantized shared expert, bf16 (H 24, E 6, I 56, S 40)',
      cfg: { H: 24, E: 6, k: 3, I: 56, router: 'sigmoid_grouped', normTopkProb: true, nGroup: 3, topkGroup: 2, routedScalingFactor: 2.5, act: { kind: 'silu' }, sharedDim: 40 },
      dtype: 'bfloat16',
      opts: {
        hiddenDim: 24, numExperts: 6, numExpertsPerToken: 3, moeDim: 56, gateCls: DeepseekV3Gate,
        gateOptions: { normTopkProb: true, nGroup: 3, topkGroup: 2, routedScalingFactor: 2.5 }, hasSharedExperts: true, sharedExpertsDim: 40,
      },
    },
    fmt: { format: 'fp8_block', weightBlockSize: [8, 16] },
    unit: 16,
    widths: { 2: { I: [32, 24], S: [32, 8] }, 3: { I: [32, 16, 8], S: [16, 16, 8] } },
    ep: [2, 3],
  },
  {
    // dynamic fp8 activations: groups of 128 down-input channels join the blocks -> unit lcm(16, 128) = 128.
    // I = S = 264 = 128+128+8: TP 2 = 2+1 units, TP 3 = 1+1+1.
    case: {
      name: 'fp8 e4m3 [8, 16] blocks with dynamic fp8 activations (w8a8), quantized shared expert, f32 (H 20, E 4, I 264, S 264)',
      cfg: { H: 20, E: 4, k: 2, I: 264, router: 'softmax_topk', normTopkProb: true, act: { kind: 'silu' }, sharedDim: 264 },
      dtype: 'float32',
      opts: { hiddenDim: 20, numExperts: 4, numExpertsPerToken: 2, moeDim: 264, gateCls: SoftmaxTopKGate, gateOptions: { normTopkProb: true }, hasSharedExperts: true, sharedExpertsDim: 264 },
    },
    fmt: { format: 'fp8_block', weightBlockSize: [8, 16] },
    activationQuant: 'dynamic',
    unit: 128,
    widths: { 2: { I: [256, 8], S: [256, 8] }, 3: { I: [128, 128, 8], S: [128, 128, 8] } },
    ep: [2, 4],
  },
  {
    // MXFP4: 32 down-input channels per block -> unit 32; I = 96 = 3 blocks.
    case: {
      name: 'GPT-OSS-like MXFP4, interleaved swigluoai with expert biases, bf16 (H 64, E 4, I 96)',
      cfg: { H: 64, E: 4, k: 2, I: 96, router: 'topk_softmax', act: { kind: 'swigluoai', limit: 0.9, alpha: 1.702 }, interleaved: true },
      dtype: 'bfloat16',
      opts: {
        hiddenDim: 64, numExperts: 4, numExpertsPerToken: 2, moeDim: 96, gateCls: TopKSoftmaxGate, hasExpertBias: true,
        expertActivation: { kind: 'swigluoai', limit: 0.9, alpha: 1.702, layout: 'interleaved' },
      },
    },
    fmt: { format: 'mxfp4' },
    unit: 32,
    widths: { 2: { I: [64, 32] }, 3: { I: [32, 32, 32] } },
    ep: [2, 4],
  },
  {
    // fp8 [8, 16] interleaved: rows [2s, 2e) on 8-row blocks needs s on 4; down columns on 16 -> unit 16.
    // I = 44 = 16+16+12 (2I = 88 rows: the last row block is partial).
    case: {
      name: 'GPT-OSS-like fp8 e5m2 [8, 16] blocks, interleaved swigluoai with expert biases, f32 (H 24, E 6, I 44)',
      cfg: { H: 24, E: 6, k: 2, I: 44, router: 'topk_softmax', act: { kind: 'swigluoai', limit: 0.9, alpha: 1.702 }, interleaved: true },
      dtype: 'float32',
      opts: {
        hiddenDim: 24, numExperts: 6, numExpertsPerToken: 2, moeDim: 44, gateCls: TopKSoftmaxGate, hasExpertBias: true,
        expertActivation: { kind: 'swigluoai', limit: 0.9, alpha: 1.702, layout: 'interleaved' },
      },
    },
    fmt: { format: 'fp8_block', fp8Dtype: 'float8_e5m2', weightBlockSize: [8, 16] },
    unit: 16,
    widths: { 2: { I: [32, 12] }, 3: { I: [16, 16, 12] } },
    ep: [2, 3],
  },
  {
    // int8, 8 inputs per scale -> unit 8; I = S = 20 = 8+8+4.
    case: {
      name: 'Llama-4-like int8 (blocks of 8, f32 scales), router weight on the input, quantized shared expert, f32 (H 16, E 4, I 20, S 20)',
      cfg: { H: 16, E: 4, k: 1, I: 20, router: 'sigmoid_topk', applyRouterWeightFirst: true, act: { kind: 'silu' }, sharedDim: 20 },
      dtype: 'float32',
      opts: { hiddenDim: 16, numExperts: 4, numExpertsPerToken: 1, moeDim: 20, gateCls: Llama4Gate, applyRouterWeightFirst: true, hasSharedExperts: true, sharedExpertsDim: 20 },
    },
    fmt: { format: 'int8', blockSize: 8, scaleDtype: 'float32' },
    unit: 8,
    widths: { 2: { I: [16, 4], S: [16, 4] }, 3: { I: [8, 8, 4], S: [8, 8, 4] } },
    ep: [2, 4],
  },
  {
    // int4, 6 inputs per scale and two codes per byte -> unit lcm(6, 2) = 6; I = 22 = 6+6+6+4.
    case: {
      name: 'MAX MoEGate int4 (blocks of 6, f16 scales), swigluLimit 0.5, f32 (H 20, E 6, I 22)',
      cfg: { H: 20, E: 6, k: 2, I: 22, router: 'raw_topk', act: { kind: 'swiglu_limit', limit: 0.5 } },
      dtype: 'float32',
      opts: { hiddenDim: 20, numExperts: 6, numExpertsPerToken: 2, moeDim: 22, gateCls: MoEGate, swigluLimit: 0.5 },
    },
    fmt: { format: 'int4', blockSize: 6 },
    unit: 6,
    widths: { 2: { I: [12, 10] }, 3: { I: [12, 6, 4] } },
    ep: [2, 3],
  },
];
