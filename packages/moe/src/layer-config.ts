/**
 * The layer config: one immutable description of a MoE layer (shapes, expert
 * parallelism, routing facts, activation, shared experts, expert storage
 * format and quantization), built and validated once from {@link MoEOptions}
 * by {@link moeLayerConfig}. The MoE constructor, the HuggingFace loader
 * (which builds MoEOptions from config.json and reads this to decide what to
 * read and stream), the forward stages, the layer facts (layer-info.ts) and
 * the sharded layer all read it (`MoE.config`); derived layers (quantized,
 * sharded) are rebuilt from it ({@link configOptions}).
 */
import { DTypeError, ValueError } from '@webmoe/tensor';
import { ShardingError } from '@webmoe/sharding';
import type { ExpertActivation } from '@webmoe/kernels-wgsl';
import type { MoEOptions } from './moe-options.js';
import { FLOAT_DTYPES, type MoEWeightDType } from './hf-options.js';
import { normalizeQuantConfig, type ActivationQuant, type MoEQuantFormat, type ResolvedQuantConfig } from './quant-experts.js';

/**
 * How the routed experts are stored, discriminated by `format`: dense in
 * `dtype`, or packed in a quantized format with its resolved quant config
 * (activation quantisation inside it, after any `activationQuant` override).
 * @example `s.format === 'dense' ? s.dtype : s.quant.blockSize`
 */
export type ExpertStorage =
  | { readonly format: 'dense'; readonly dtype: MoEWeightDType }
  | { readonly format: MoEQuantFormat; readonly quant: Readonly<ResolvedQuantConfig> };

/**
 * The shared experts of a layer: width (all of them together), whether a
 * Qwen2-MoE gate scales them, and whether they are stored packed in the
 * routed experts' quantized format (run through the grouped GEMMs, E = 1)
 * rather than as a dense MLP.
 * @example `{ dim: 64, gated: true, packed: false }`
 */
export interface SharedExpertsConfig {
  readonly dim: number;
  readonly gated: boolean;
  readonly packed: boolean;
}

/**
 * An immutable (frozen) description of a MoE layer, validated once: what
 * every part of the package reads instead of the options. `MoE.config`.
 * @example `const { hiddenDim, experts } = moe.config; if (experts.format !== 'dense') experts.quant.activationQuant`
 */
export interface MoELayerConfig {
  /** H */
  readonly hiddenDim: number;
  /** E (all experts, of every expert-parallel shard) */
  readonly numExperts: number;
  /** k */
  readonly numExpertsPerToken: number;
  /** I: width of each routed expert. */
  readonly moeDim: number;
  /** Expert-parallel shards of the layer (1 for a whole layer); the layer holds numExperts / epSize experts. */
  readonly epSize: number;
  /** Which expert-parallel shard this layer is (0 with epSize 1). */
  readonly shardIndex: number;
  /** Storage dtype of the dense weights (router, shared experts, dense routed experts). */
  readonly dtype: MoEWeightDType;
  /** Scale each expert's input by its router weight and sum the outputs unweighted (Llama 4). */
  readonly applyRouterWeightFirst: boolean;
  /** MAX `swigluLimit` (0: none). */
  readonly swigluLimit: number;
  /** The routed experts' activation (from `expertActivation`, else silu or swiglu_limit from `swigluLimit`). */
  readonly activation: Readonly<ExpertActivation>;
  /** Biases on the routed experts (GPT-OSS). */
  readonly expertBias: boolean;
  /** The shared experts, or undefined. */
  readonly shared: SharedExpertsConfig | undefined;
  /** The routed experts' storage. */
  readonly experts: ExpertStorage;
  /** MAX `isSharding`. */
  readonly isSharding: boolean;
}


function positiveInt(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ValueError(`MoE ${what}`, 'a positive integer', v);
  return v;
}

/** The resolved quant config of packed experts, or undefined for dense ones. @example `expertQuant(moe.config.experts)?.format` */
export function expertQuant(s: ExpertStorage): Readonly<ResolvedQuantConfig> | undefined {
  return s.format === 'dense' ? undefined : s.quant;
}

/** The activation quantisation of the expert matmuls ('none' for dense experts). @example `activationQuantOf(moe.config.experts) // 'dynamic'` */
export function activationQuantOf(s: ExpertStorage): ActivationQuant {
  return expertQuant(s)?.activationQuant ?? 'none';
}

/**
 * Validates `opts` (everything but the devices, context and classes) and
 * builds the frozen layer config; typed errors naming expected vs got, in
 * this order: expert parallelism (epSize, numExperts divisible by it,
 * shardIndex), quantization (the quant config, then the `activationQuant`
 * override), dtype, shapes (hiddenDim, numExperts, numExpertsPerToken,
 * moeDim), shared experts, swigluLimit. The one place a layer's quant
 * config is resolved: normalizeQuantConfig (defaults, checks), then the
 * `activationQuant` override.
 *
 * @example
 * ```ts
 * const c = moeLayerConfig({ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2, moeDim: 32, quantConfig: { format: 'int4' } });
 * c.experts.format // 'int4'
 * ```
 */
export function moeLayerConfig(opts: Omit<MoEOptions, 'devices'>): MoELayerConfig {
  const epSize = opts.epSize ?? 1;
  if (!Number.isInteger(epSize) || epSize < 1) throw new ShardingError('MoE epSize', 'a positive integer', epSize);
  if (epSize > 1 && (typeof opts.numExperts !== 'number' || opts.numExperts % epSize !== 0)) {
    throw new ShardingError(`MoE numExperts (expert parallel over epSize ${epSize})`, `a multiple of ${epSize}`, opts.numExperts);
  }
  const shardIndex = opts.shardIndex ?? 0;
  if (!Number.isInteger(shardIndex) || shardIndex < 0 || shardIndex >= epSize) throw new ShardingError('MoE shardIndex', `an integer in [0, ${epSize})`, shardIndex);
  let quant = opts.quantConfig ? normalizeQuantConfig(opts.quantConfig) : undefined;
  const aq = opts.activationQuant;
  if (aq !== undefined) {
    if (aq !== 'none' && aq !== 'dynamic') throw new ValueError('MoE activationQuant', "'none' | 'dynamic'", aq);
    if (!quant && aq === 'dynamic') throw new ValueError('MoE activationQuant', "'none' for dense experts (dynamic needs a quantConfig)", aq);
    if (quant) quant = { ...quant, activationQuant: aq };
  }
  const dtype = opts.dtype ?? 'float32';
  if (!FLOAT_DTYPES.includes(dtype)) throw new DTypeError('MoE dtype', FLOAT_DTYPES, dtype);

  const hiddenDim = positiveInt('hiddenDim', opts.hiddenDim);
  const numExperts = positiveInt('numExperts', opts.numExperts);
  const numExpertsPerToken = positiveInt('numExpertsPerToken', opts.numExpertsPerToken);
  if (numExpertsPerToken > numExperts) throw new ValueError('MoE numExpertsPerToken', `at most numExperts (${numExperts})`, numExpertsPerToken);
  const moeDim = positiveInt('moeDim', opts.moeDim);
  const hasShared = !!opts.hasSharedExperts;
  const sharedDim = hasShared ? positiveInt('sharedExpertsDim', opts.sharedExpertsDim) : 0;
  if (opts.hasSharedExpertGate && !hasShared) throw new ValueError('MoE hasSharedExpertGate', 'hasSharedExperts: true', false);
  const swigluLimit = opts.swigluLimit ?? 0;
  if (!(swigluLimit >= 0)) throw new ValueError('MoE swigluLimit', 'a number >= 0', swigluLimit);
  const activation: ExpertActivation =
    opts.expertActivation ?? (swigluLimit > 0 ? { kind: 'swiglu_limit', limit: swigluLimit, layout: 'concat' } : { kind: 'silu', layout: 'concat' });

  const experts: ExpertStorage = quant
    ? Object.freeze({ format: quant.format, quant: Object.freeze({ ...quant, weightBlockSize: Object.freeze([...quant.weightBlockSize]) as [number, number] }) })
    : Object.freeze({ format: 'dense' as const, dtype: dtype as MoEWeightDType });
  return Object.freeze({
    hiddenDim,
    numExperts,
    numExpertsPerToken,
    moeDim,
    epSize,
    shardIndex,
    dtype: dtype as MoEWeightDType,
    applyRouterWeightFirst: !!opts.applyRouterWeightFirst,
    swigluLimit,
    activation: Object.freeze({ ...activation }),
    expertBias: !!opts.hasExpertBias,
    shared: hasShared ? Object.freeze({ dim: sharedDim, gated: !!opts.hasSharedExpertGate, packed: !!quant?.quantizeSharedExperts }) : undefined,
    experts,
    isSharding: !!opts.isSharding,
  });
}

/**
 * The options that rebuild a layer of config `c` (with {@link moeLayerConfig}
 * giving `c` back): shapes, maths, expert parallelism and storage; a derived
 * layer overrides what differs (a shard's `moeDim`, `epSize`, `shardIndex`;
 * quantize's `quantConfig`). Not the devices, context, classes or router
 * options (the router module holds those).
 * @example `new MoE({ ...configOptions(moe.config), moeDim: 16, devices, gateCls, gateOptions })`
 */
export function configOptions(c: MoELayerConfig): Omit<MoEOptions, 'devices' | 'ctx' | 'gateCls' | 'gateOptions' | 'mlpCls' | 'epBatchManager'> {
  const q = expertQuant(c.experts);
  return {
    hiddenDim: c.hiddenDim,
    numExperts: c.numExperts,
    numExpertsPerToken: c.numExpertsPerToken,
    moeDim: c.moeDim,
    hasSharedExperts: !!c.shared,
    sharedExpertsDim: c.shared?.dim,
    hasSharedExpertGate: !!c.shared?.gated,
    epSize: c.epSize,
    shardIndex: c.shardIndex,
    dtype: c.dtype,
    applyRouterWeightFirst: c.applyRouterWeightFirst,
    swigluLimit: c.swigluLimit,
    expertActivation: { ...c.activation },
    hasExpertBias: c.expertBias,
    quantConfig: q ? { ...q, weightBlockSize: [q.weightBlockSize[0], q.weightBlockSize[1]] } : undefined,
    isSharding: c.isSharding,
  };
}
