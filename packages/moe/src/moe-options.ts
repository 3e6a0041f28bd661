/** The option and result types of {@link MoE} (the options are validated into a MoELayerConfig by layer-config.ts). */
import type { DeviceRef, DType, HostTensor } from '@webmoe/tensor';
import type { EPBatchManager } from '@webmoe/sharding';
import type { ExpertActivation, GpuContext, GpuTensor } from '@webmoe/kernels-wgsl';
import type { MLP } from '@webmoe/nn';
import type { GateClass, GateOptions } from './gates.js';
import type { ActivationQuant, MoEQuantConfig } from './quant-experts.js';

/** Options of {@link MoE}: MAX's constructor arguments in camelCase, plus the expert variants MAX spells through `mlpCls`. @example `{ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2, moeDim: 32, gateCls: SoftmaxTopKGate }` */
export interface MoEOptions {
  /** Devices (MAX `devices`); the layer runs on the first. Default `[DeviceRef.CPU()]`. */
  devices?: readonly DeviceRef[];
  /** The WebGPU context for a GPU device. */
  ctx?: GpuContext | undefined;
  /** H */
  hiddenDim: number;
  /** E */
  numExperts: number;
  /** k */
  numExpertsPerToken: number;
  /** I: width of each routed expert. */
  moeDim: number;
  /** The router class (default {@link MoEGate}: raw top-k). */
  gateCls?: GateClass;
  /** Extra router options (normTopkProb, nGroup, topkGroup, routedScalingFactor, hasBias). */
  gateOptions?: Partial<Pick<GateOptions, 'hasBias' | 'normTopkProb' | 'nGroup' | 'topkGroup' | 'routedScalingFactor'>>;
  /** The class of the per-expert MLPs that `experts` returns (default `MLP`). */
  mlpCls?: typeof MLP;
  /** Adds shared experts (a plain MLP of width `sharedExpertsDim` on every token). */
  hasSharedExperts?: boolean;
  /** Width of the shared experts (all of them together). */
  sharedExpertsDim?: number;
  /** Qwen2-MoE: scales the shared experts by `sigmoid(x @ shared_expert_gate^T)` ([1, H]). */
  hasSharedExpertGate?: boolean;
  /**
   * MAX `ep_size`. 1 (default): the layer holds all E experts. n > 1: the
   * layer is one expert-parallel shard (built by `shard()` with
   * `ShardingStrategy.expertParallel(n)`): it holds the experts
   * `[shardIndex*E/n, (shardIndex+1)*E/n)` only (E must be divisible by n,
   * ShardingError otherwise) and runs through {@link ShardedMoE.forward}.
   */
  epSize?: number;
  /** Which expert-parallel shard this layer is (with `epSize > 1`; default 0). */
  shardIndex?: number;
  /** MAX `ep_batch_manager`: the EP dispatch/combine a sharded layer uses (kept for reference; `ShardedMoE` makes its own). */
  epBatchManager?: EPBatchManager;
  /** Storage dtype of the weights (default float32). Activations are float32. */
  dtype?: DType;
  /** Scale each expert's input by its router weight and sum the outputs unweighted (Llama 4). */
  applyRouterWeightFirst?: boolean;
  /** MAX `swigluLimit` L > 0: `min(silu(g), L) * clamp(u, -L, L)` in the routed experts. */
  swigluLimit?: number;
  /** Overrides the routed experts' activation (GPT-OSS: `{ kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' }`). */
  expertActivation?: ExpertActivation;
  /** Biases on the routed experts (GPT-OSS). */
  hasExpertBias?: boolean;
  /** Quantization of the routed experts (and, with `quantizeSharedExperts`, the shared experts): fp8_block, mxfp4, int4, int8. Default: dense experts in `dtype`. */
  quantConfig?: MoEQuantConfig | null;
  /** Overrides `quantConfig.activationQuant`: 'none' (weight-only) or 'dynamic' (fp8 e4m3 per token per 128 channels before every quantized expert matmul). */
  activationQuant?: ActivationQuant;
  /** MAX `isSharding`: accepted, no effect on one device. */
  isSharding?: boolean;
}

/** GPU bytes a layer holds (see {@link MoE.gpuBytes}). @example `const b: MoEGpuBytes = moe.gpuBytes(); b.expertWeights + b.expertScales` */
export interface MoEGpuBytes {
  /** Routed and shared expert weight matrices as stored (packed codes when quantized). */
  expertWeights: number;
  /** Their scales (0 for dense experts). */
  expertScales: number;
  /** Everything else: router, biases, shared-expert gate. */
  other: number;
  /** The sum. */
  total: number;
}

/** Options of {@link MoE.forwardGpuSync} / {@link MoE.forwardGpu}. @example `moe.forwardGpuSync(x, { out: y })` */
export interface MoEGpuForwardOptions {
  /** Where to write the output (f32 [T, H] on the layer's context); returned. Default: a tensor from the layer's output pool. */
  out?: GpuTensor;
}

/**
 * Options of {@link MoE.forward} / `MoEStack.forward` with host data (a HostTensor or Float32Array input).
 * @example `await moe.forward(xs, { out: ys }) // ys: a Float32Array of T*H values, written and returned`
 */
export interface MoEHostForwardOptions {
  /**
   * Where to write the output: a Float32Array of T*H values the caller keeps across calls (it may be the input array).
   * A chain of calls then allocates no output array per call, which costs a new array's page faults on every call
   * (milliseconds for a prefill's megabytes). With a HostTensor input the result is a HostTensor over it.
   * Default: a new array. Written only when the forward succeeds.
   */
  out?: Float32Array;
}

/** The result of {@link MoE.forward} for each input kind. @example `const y: MoEOutput<GpuTensor> = await moe.forward(x)` */
export type MoEOutput<X> = X extends GpuTensor ? GpuTensor : X extends HostTensor ? HostTensor : Float32Array;
