/**
 * The MoE layers the bench times: shapes of real models (hidden size H,
 * expert width I, routed experts E, experts per token k, shared experts),
 * their routers and expert activations, and scaled-down variants for
 * CPU-only machines (labelled `<model>/sN`: H, I and E divided by N).
 */
import type { ExpertActivation, RouterParams } from '@webmoe/kernels-wgsl';

/**
 * Weight storage types the bench generates. Dense: bf16, f16, f32. Packed
 * routed experts (the layer's router stays bf16; its shared experts too,
 * except fp8: see {@link packedSharedExperts}):
 * - fp8: e4m3 with 128x128 f32 block scales (`fp8_block`)
 * - int4 / int8: onnxruntime QMoE semantics, unsigned codes with zero point
 *   8 / 128, one f16 scale per 32 inputs of a row (`int_block`, the block
 *   size and scale type of the bench's ORT peer)
 * - mxfp4: GPT-OSS, e2m1 codes with one e8m0 scale per 32 inputs (`mxfp4`;
 *   cols % 32 == 0)
 */
export type BenchDtype = 'bf16' | 'f16' | 'f32' | 'fp8' | 'int4' | 'int8' | 'mxfp4';

/** Every bench dtype, in `--dtypes` order. */
export const BENCH_DTYPES: readonly BenchDtype[] = ['bf16', 'f16', 'f32', 'fp8', 'int4', 'int8', 'mxfp4'];

/** Block size (inputs per scale) of the int4/int8 rows: the ORT peer's QMoE block size. */
export const INT_BLOCK = 32;

/** True for dtypes whose routed experts are packed codes + scales (the rest of the layer is bf16). @example `isPacked('int4') // true` */
export function isPacked(d: BenchDtype): boolean {
  return d === 'fp8' || d === 'int4' || d === 'int8' || d === 'mxfp4';
}

/** One MoE layer shape. */
export interface ModelSpec {
  /** Id used on the command line and in the JSON (`mixtral-8x7b`, `qwen3-30b-a3b/s4`, ...). */
  name: string;
  /** Hidden size. */
  H: number;
  /** Expert width (moe_intermediate_size). */
  I: number;
  /** Routed experts. */
  E: number;
  /** Experts per token. */
  k: number;
  /** Shared experts (each of width I; together one MLP of width `shared * I`). */
  shared: number;
  /** Router semantics. */
  router: RouterParams;
  /** Expert activation. */
  act: ExpertActivation;
  /** GPT-OSS: router bias, gate_up bias [E,2I] and down bias [E,H]. */
  bias: boolean;
  /** Llama 4: the routing weight scales each expert's input; the experts' outputs are summed unweighted. */
  routerWeightFirst?: boolean;
  /** Storage types of the model's published checkpoints (the default `--dtypes` of this model). */
  dtypes: BenchDtype[];
  /** Set on scaled-down shapes: the real model and the divisor. */
  scaledFrom?: { model: string; divisor: number };
}

const silu: ExpertActivation = { kind: 'silu', layout: 'concat' };

/**
 * The real model shapes (MoE layer of each).
 * @example `MODELS.find((m) => m.name === 'mixtral-8x7b')!.H // 4096`
 */
export const MODELS: readonly ModelSpec[] = [
  {
    name: 'mixtral-8x7b', H: 4096, I: 14336, E: 8, k: 2, shared: 0, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'softmax_topk', numExperts: 8, topK: 2, normTopkProb: true },
  },
  {
    name: 'qwen3-30b-a3b', H: 2048, I: 768, E: 128, k: 8, shared: 0, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'softmax_topk', numExperts: 128, topK: 8, normTopkProb: true },
  },
  {
    name: 'gpt-oss-20b', H: 2880, I: 2880, E: 32, k: 4, shared: 0, bias: true, dtypes: ['bf16', 'mxfp4'],
    act: { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' },
    router: { kind: 'topk_softmax', numExperts: 32, topK: 4, normTopkProb: false },
  },
  {
    name: 'deepseek-v2-lite', H: 2048, I: 1408, E: 64, k: 6, shared: 2, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'softmax_topk', numExperts: 64, topK: 6, normTopkProb: false },
  },
  {
    name: 'deepseek-v3', H: 7168, I: 2048, E: 256, k: 8, shared: 1, bias: false, act: silu, dtypes: ['bf16', 'fp8'],
    router: { kind: 'sigmoid_grouped', numExperts: 256, topK: 8, normTopkProb: true, nGroup: 8, topkGroup: 4, routedScalingFactor: 2.5 },
  },
  {
    // Kimi-K2: DeepSeek-V3's block with 384 experts, one group, scaling 2.827
    name: 'kimi-k2', H: 7168, I: 2048, E: 384, k: 8, shared: 1, bias: false, act: silu, dtypes: ['bf16', 'fp8'],
    router: { kind: 'sigmoid_grouped', numExperts: 384, topK: 8, normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 2.827 },
  },
  {
    // Llama-4-Maverick: top-1 of the logits, sigmoid weight applied to the expert's input, one shared expert of width I
    name: 'llama4-maverick', H: 5120, I: 8192, E: 128, k: 1, shared: 1, bias: false, act: silu, dtypes: ['bf16'], routerWeightFirst: true,
    router: { kind: 'sigmoid_topk', numExperts: 128, topK: 1, normTopkProb: false },
  },
  {
    // GLM-4.5-Air (glm4_moe: transformers routes it as DeepSeek-V3's block): sigmoid + correction bias, one group, renormalised, scaling 1
    name: 'glm-4.5-air', H: 4096, I: 1408, E: 128, k: 8, shared: 1, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'sigmoid_grouped', numExperts: 128, topK: 8, normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 },
  },
  {
    // MiniMax-M2: sigmoid + correction bias, renormalised, no shared expert
    name: 'minimax-m2', H: 3072, I: 1536, E: 256, k: 8, shared: 0, bias: false, act: silu, dtypes: ['bf16', 'fp8'],
    router: { kind: 'sigmoid_grouped', numExperts: 256, topK: 8, normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 },
  },
  {
    // ERNIE-4.5-21B-A3B: top-k of softmax probability + correction bias, two shared experts
    name: 'ernie-4.5-21b-a3b', H: 2560, I: 1536, E: 64, k: 6, shared: 2, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'softmax_biased', numExperts: 64, topK: 6, normTopkProb: true },
  },
  {
    // DeepSeek-V2 (236B): group-limited greedy over 8 groups (3 kept), weights times 16, two shared experts
    name: 'deepseek-v2', H: 5120, I: 1536, E: 160, k: 6, shared: 2, bias: false, act: silu, dtypes: ['bf16'],
    router: { kind: 'softmax_grouped', numExperts: 160, topK: 6, normTopkProb: false, nGroup: 8, topkGroup: 3, routedScalingFactor: 16 },
  },
];

/**
 * The models of a run without --models (Kimi-K2 and Llama-4-Maverick, 34 and 32 GB of bf16 experts, GLM-4.5-Air,
 * MiniMax-M2, ERNIE-4.5-21B-A3B and DeepSeek-V2 on request).
 */
export const DEFAULT_MODELS: readonly string[] = ['mixtral-8x7b', 'qwen3-30b-a3b', 'gpt-oss-20b', 'deepseek-v2-lite', 'deepseek-v3'];

/** Token counts of the full run. */
export const DEFAULT_TOKENS: readonly number[] = [1, 16, 128, 512, 4096];

/**
 * A copy of `m` with H, I and E divided by `div` (E at least k, and a
 * multiple of the router's group count), named `<model>/s<div>`.
 * @example `scaled(MODELS[1], 4).H // 512`
 */
export function scaled(m: ModelSpec, div: number): ModelSpec {
  if (div === 1) return m;
  const nGroup = m.router.nGroup ?? 1;
  const topkGroup = m.router.topkGroup ?? nGroup;
  // at least 2k experts (or all of them), so that routing still chooses; a multiple of the group
  // count; enough experts in the kept groups to pick k
  let E = Math.max(Math.min(m.E, 2 * m.k), Math.round(m.E / div), nGroup * Math.ceil(m.k / topkGroup));
  E = Math.ceil(E / nGroup) * nGroup;
  const H = Math.max(32, Math.round(m.H / div / 32) * 32);
  const I = Math.max(32, Math.round(m.I / div / 32) * 32);
  return {
    ...m,
    name: `${m.name}/s${div}`,
    H,
    I,
    E,
    router: { ...m.router, numExperts: E },
    scaledFrom: { model: m.name, divisor: div },
  };
}

/**
 * A tiny layer for smoke tests (H 64, I 32, E 4, k 2).
 * @example `TINY.E // 4`
 */
export const TINY: ModelSpec = {
  name: 'tiny', H: 64, I: 32, E: 4, k: 2, shared: 1, bias: false, act: silu, dtypes: ['bf16'],
  router: { kind: 'softmax_topk', numExperts: 4, topK: 2, normTopkProb: true },
};

/** What `--quick` runs: scaled-down shapes of every model (each in its checkpoint dtypes: GPT-OSS bf16 and mxfp4, DeepSeek-V3 bf16 and fp8), T = 1, 16, 128. */
export const QUICK = {
  models: ['qwen3-30b-a3b/s8', 'gpt-oss-20b/s8', 'deepseek-v2-lite/s8', 'mixtral-8x7b/s16', 'deepseek-v3/s16'],
  tokens: [1, 16, 128],
};

/**
 * Resolves a model id: a real model, `tiny`, or `<model>/s<N>`.
 * @example `findModel('qwen3-30b-a3b/s4').E // 32`
 */
export function findModel(id: string): ModelSpec {
  if (id === 'tiny') return TINY;
  const ex = /^(.+)\/e(\d+)$/.exec(id);
  if (ex) return withExperts(findModel(ex[1]), Number(ex[2]));
  const m = /^(.+)\/s(\d+)$/.exec(id);
  const base = MODELS.find((x) => x.name === (m ? m[1] : id));
  if (!base) throw new Error(`unknown model '${id}': expected one of ${MODELS.map((x) => x.name).join(', ')}, tiny, or <model>/s<N> (scaled down by N)`);
  return m ? scaled(base, Number(m[2])) : base;
}

/**
 * A copy of `m` with only `n` routed experts, same H, I, k and shared experts,
 * named `<model>/e<n>` (the stand-in for DeepSeek-V3 before its stacks were
 * split over buffers; kept for comparisons with those runs): a decode token
 * touches k routed + the shared experts of the same size either way.
 * @example `findModel('deepseek-v3/e32').E // 32`
 */
export function withExperts(m: ModelSpec, n: number): ModelSpec {
  const nGroup = m.router.nGroup ?? 1;
  const topkGroup = m.router.topkGroup ?? nGroup;
  if (!Number.isInteger(n) || n < m.k || n % nGroup !== 0 || (n / nGroup) * topkGroup < m.k) {
    throw new Error(`${m.name}/e${n}: expected an expert count >= k=${m.k}, a multiple of the ${nGroup} router groups, with k experts inside ${topkGroup} groups`);
  }
  return { ...m, name: `${m.name}/e${n}`, E: n, router: { ...m.router, numExperts: n } };
}

/** Bytes per routed-expert weight element of a bench dtype, without scales. @example `dtypeBytes('int4') // 0.5` */
export function dtypeBytes(d: BenchDtype): number {
  return d === 'f32' ? 4 : d === 'fp8' || d === 'int8' ? 1 : d === 'int4' || d === 'mxfp4' ? 0.5 : 2;
}

/** The project's storage dtype of a bench dtype's routed-expert codes. @example `storageDtype('bf16') // 'bfloat16'` */
export function storageDtype(d: BenchDtype): 'bfloat16' | 'float16' | 'float32' | 'float8_e4m3fn' | 'uint8' {
  return d === 'bf16' ? 'bfloat16' : d === 'f16' ? 'float16' : d === 'f32' ? 'float32' : d === 'fp8' ? 'float8_e4m3fn' : 'uint8';
}

/**
 * Whether the shared experts are packed like the routed ones: fp8, as DeepSeek-V3's and Kimi-K2's fp8 checkpoints
 * store them (every expert projection in e4m3 blocks); the other packed rows keep them bf16.
 * @example `packedSharedExperts('fp8') // true`
 */
export function packedSharedExperts(d: BenchDtype): boolean {
  return d === 'fp8';
}

/** The storage dtype of the dense parts (router, shared experts unless packed, biases): bf16 for packed dtypes. @example `layerDtype('mxfp4') // 'bfloat16'` */
export function layerDtype(d: BenchDtype): 'bfloat16' | 'float16' | 'float32' {
  return d === 'f16' ? 'float16' : d === 'f32' ? 'float32' : 'bfloat16';
}

/**
 * Bytes of one expert matrix [rows, cols] in `d`: packed codes and scales
 * (fp8: f32 per 128x128 block; int4/int8: f16 per INT_BLOCK inputs of a row;
 * mxfp4: one e8m0 byte per 32 inputs of a row). The same as
 * `expertWeightBytes` of the GPU tensors divided by E.
 * @example `expertMatrixBytes('int4', 64, 64) // { weights: 2048, scales: 256 }`
 */
export function expertMatrixBytes(d: BenchDtype, rows: number, cols: number): { weights: number; scales: number } {
  switch (d) {
    case 'fp8': return { weights: rows * cols, scales: Math.ceil(rows / 128) * Math.ceil(cols / 128) * 4 };
    case 'int4': return { weights: (rows * cols) / 2, scales: rows * Math.ceil(cols / INT_BLOCK) * 2 };
    case 'int8': return { weights: rows * cols, scales: rows * Math.ceil(cols / INT_BLOCK) * 2 };
    case 'mxfp4': return { weights: (rows * cols) / 2, scales: rows * (cols / 32) };
    default: return { weights: rows * cols * dtypeBytes(d), scales: 0 };
  }
}
