/**
 * Shared types of the MoE kernels (the contract between the router,
 * grouping, grouped-GEMM and combine kernels and the `@webmoe/moe` layer).
 * Every GPU op here has a TypeScript reference with the same meaning.
 */
import type { DType, HostTensor } from '@webmoe/tensor';
import type { GpuTensor } from '../runtime/tensor.js';

/** The routers of docs/moe-semantics.md. */
export type RouterKind =
  /** MAX MoEGate: top-k of the raw logits, weights = those logits. */
  | 'raw_topk'
  /** Mixtral, Qwen, OLMoE: softmax over all E (f32, max subtracted), top-k probs, renormalised if normTopkProb. */
  | 'softmax_topk'
  /** GPT-OSS: top-k of the logits (router bias already in the logits), softmax over the k selected. */
  | 'topk_softmax'
  /** DeepSeek-V3: sigmoid, + correction bias for selection, grouped (sum of top-2 per group), topkGroup groups, top-k; weights = uncorrected sigmoid, renorm if normTopkProb (/(sum+1e-20)), x routedScalingFactor. */
  | 'sigmoid_grouped'
  /** Llama 4: top-k of the logits, weight = sigmoid(logit) (used with applyRouterWeightFirst). */
  | 'sigmoid_topk'
  /**
   * DeepSeek-V2 (`topk_method` greedy: nGroup 1; group_limited_greedy): softmax over all E (f32, max subtracted); a
   * group's score is its largest probability, topkGroup groups kept, top-k probs inside them; renormalised if
   * normTopkProb (no epsilon), x routedScalingFactor.
   */
  | 'softmax_grouped'
  /**
   * ERNIE 4.5: softmax over all E (f32, max subtracted); top-k of the probabilities + correction bias; weights = the
   * probabilities, renormalised if normTopkProb (divided by max(sum, 1e-12), ERNIE's moe_norm_min), x routedScalingFactor.
   */
  | 'softmax_biased';

export interface RouterParams {
  kind: RouterKind;
  /** E */
  numExperts: number;
  /** k (1..32, <= E) */
  topK: number;
  /** Renormalise the k weights to sum 1 (softmax_topk, sigmoid_grouped, softmax_grouped). */
  normTopkProb: boolean;
  /** sigmoid_grouped / softmax_grouped: number of groups (divides E). */
  nGroup?: number;
  /** sigmoid_grouped / softmax_grouped: groups kept. */
  topkGroup?: number;
  /** Multiplies the final weights (default 1). */
  routedScalingFactor?: number;
}

/** Routing result on the host: idx[T*k] (row-major [T,k]) and weights[T*k]. Ties go to the lower expert index; slots are in descending score order. */
export interface RoutingRef {
  idx: Uint32Array;
  weights: Float32Array;
}

/** Routing result on the GPU: idx uint32 [T,k], weights float32 [T,k]. */
export interface RoutingGpu {
  idx: GpuTensor;
  weights: GpuTensor;
}

/**
 * (token, slot) pairs grouped by expert. Pair id p = t*k + j. Rows of the
 * grouped activations are in `order`; any order inside an expert's group is
 * allowed (results never depend on it).
 */
export interface GroupingRef {
  T: number;
  k: number;
  E: number;
  /** [E] pairs routed to each expert. */
  counts: Uint32Array;
  /** [E+1] exclusive prefix sum of counts (offsets[E] = T*k). */
  offsets: Uint32Array;
  /** [T*k] the pair id at each grouped row. */
  order: Uint32Array;
  /** [T*k] the grouped row of each pair id (inverse of order). */
  position: Uint32Array;
}

/** The same on the GPU (uint32 tensors). Owned: destroy() frees them. */
export interface GroupingGpu {
  T: number;
  k: number;
  E: number;
  counts: GpuTensor;
  offsets: GpuTensor;
  order: GpuTensor;
  position: GpuTensor;
  destroy(): void;
}

/** The expert activation between gate_up and down. */
export interface ExpertActivation {
  /**
   * silu: h = silu(g) * u.
   * swiglu_limit (MAX swigluLimit = L): h = min(silu(g), L) * clamp(u, -L, L).
   * swigluoai (GPT-OSS): g = min(g, L), u = clamp(u, -L, L), h = (u + 1) * g * sigmoid(alpha * g).
   */
  kind: 'silu' | 'swiglu_limit' | 'swigluoai';
  /** L for swiglu_limit / swigluoai (GPT-OSS: 7). */
  limit?: number;
  /** alpha for swigluoai (GPT-OSS: 1.702). */
  alpha?: number;
  /** concat: rows 0..I-1 gate, I..2I-1 up. interleaved: row 2i gate, 2i+1 up (GPT-OSS). */
  layout: 'concat' | 'interleaved';
}

/**
 * Expert weights as they sit on the GPU, in their storage type. Shapes are
 * [E, rows, cols] with rows = output channels (gate_up: 2I rows of H;
 * down: H rows of I). Quantized kinds keep codes packed and dequantise
 * inside the GEMM.
 */
export type ExpertWeightsGpu =
  | { kind: 'dense'; w: GpuTensor /* float32 | bfloat16 | float16 [E, rows, cols] */ }
  | { kind: 'fp8_block'; q: GpuTensor /* float8_e4m3fn | float8_e5m2 [E, rows, cols] */; scaleInv: GpuTensor /* float32 [E, ceil(rows/128), ceil(cols/128)] */; block: [number, number] }
  | { kind: 'mxfp4'; blocks: GpuTensor /* uint8 [E, rows, cols/32, 16] */; scales: GpuTensor /* uint8 [E, rows, cols/32] e8m0 */ }
  | {
      kind: 'int_block';
      bits: 4 | 8;
      q: GpuTensor /* uint8 [E, rows, cols*bits/8] */;
      scales: GpuTensor /* float32|float16 [E, rows, ceil(cols/blockSize)] */;
      blockSize: number;
      /** Optional per-block zero-point codes, uint8 [E, rows, ceil(cols/blockSize)] (asymmetric; absent: 8 / 128). */
      zeros?: GpuTensor;
    };

/**
 * The layout of an expert weight container without its data: each tensor's
 * dtype and shape (what `createExpertStack` / `uploadExpertStackStreamed`
 * plan and allocate from). A GPU or host container is one too.
 */
export type ExpertWeightsShape =
  | { kind: 'dense'; w: TensorShape }
  | { kind: 'fp8_block'; q: TensorShape; scaleInv: TensorShape; block: [number, number] }
  | { kind: 'mxfp4'; blocks: TensorShape; scales: TensorShape }
  | { kind: 'int_block'; bits: 4 | 8; q: TensorShape; scales: TensorShape; blockSize: number; zeros?: TensorShape };

/** A tensor's dtype and shape. @example `const s: TensorShape = { dtype: 'bfloat16', shape: [8, 64, 32] };` */
export interface TensorShape {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** The same on the host (TypeScript reference path). */
export type ExpertWeightsHost =
  | { kind: 'dense'; w: HostTensor }
  | { kind: 'fp8_block'; q: HostTensor; scaleInv: HostTensor; block: [number, number] }
  | { kind: 'mxfp4'; blocks: HostTensor; scales: HostTensor }
  | { kind: 'int_block'; bits: 4 | 8; q: HostTensor; scales: HostTensor; blockSize: number; zeros?: HostTensor };

/**
 * How the rows of one expert map to its outputs (what a split inside an
 * expert keeps together): 'rows' (row o is output o: down), 'concat' (gate
 * row o and up row N + o of gate_up, N = rows / 2) or 'interleaved' (rows
 * 2o and 2o + 1).
 */
export type ExpertRowLayout = 'rows' | 'concat' | 'interleaved';

/**
 * One piece of a chunked expert stack: outputs [o0, o0 + outputs) of experts
 * [e0, e0 + experts), as a stack of its own ([experts, rows of those outputs
 * in the stack's layout, cols], codes with their scales) and the matching
 * rows of the bias ([experts, chunk rows]). Either whole experts (o0 = 0,
 * outputs = N) or part of one expert (experts = 1).
 */
export interface ExpertChunk<W, T> {
  e0: number;
  experts: number;
  o0: number;
  outputs: number;
  w: W;
  bias?: T;
}

/**
 * An expert stack [E, rows, cols] split over several GPU buffers (each
 * within the context's maxBindingBytes): chunks in order of (expert, output),
 * covering every output of every expert once. Made by `uploadExpertWeights`;
 * every expert GEMM (decode GEMVs, tiled and fast grouped GEMMs) takes it and
 * dispatches once per chunk. Biases travel in the chunks.
 */
export interface ChunkedExpertWeightsGpu {
  kind: 'chunked';
  E: number;
  rows: number;
  cols: number;
  layout: ExpertRowLayout;
  chunks: readonly ExpertChunk<ExpertWeightsGpu, GpuTensor>[];
}

/** The same on the host (the CPU path reads each row from its chunk; see `chunkExpertWeightsHost`). */
export interface ChunkedExpertWeightsHost {
  kind: 'chunked';
  E: number;
  rows: number;
  cols: number;
  layout: ExpertRowLayout;
  chunks: readonly ExpertChunk<ExpertWeightsHost, HostTensor>[];
}

/** What the expert GEMMs take on the GPU: one container, or one split over several buffers. */
export type ExpertStackGpu = ExpertWeightsGpu | ChunkedExpertWeightsGpu;
/** What the reference expert GEMMs take on the host. */
export type ExpertStackHost = ExpertWeightsHost | ChunkedExpertWeightsHost;
