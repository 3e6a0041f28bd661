import { DeviceRef, DTYPES, HostTensor, ShapeError, DTypeError, ValueError, type DType, type HostArray } from '@webmoe/tensor';
import {
  BufferPool,
  GpuTensor,
  checkBufferSize,
  gpuByteLength,
  Recorder,
  linearGpu,
  linearRef,
  routerGpu,
  routerRef,
  groupGpu,
  groupRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  groupedDownGpu,
  gemvGateUpGpu,
  gemvDownGpu,
  groupDecodeGpu,
  gemvSupports,
  useExpertGemv,
  useGraphReplay,
  useSingleExpertGemv,
  ForwardGraphs,
  checkOutput,
  groupedDownRef,
  combineGpu,
  combineRef,
  denseGroupingGpu,
  denseGroupingRef,
  type ExpertActivation,
  expertTensors,
  expertWeightBytes,
  type ExpertStackGpu,
  type ExpertWeightsHost,
  type ExpertWeightsShape,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { GpuExpertStacks, expertBiasGpu, type StackParams, type UploadedStack } from './expert-stacks.js';
import { Module, MLP, Linear, LayerList, NotLoadedError, type Parameter, type MLPActivation } from '@webmoe/nn';
import { MoEGate, type GateClass, type GateOptions } from './gates.js';
import { UnsupportedError } from './errors.js';
import { loadHuggingFaceMoE, type HFLoadOptions } from './hf-loader.js';
import { ShardingError, ShardingStrategy, type EPBatchManager } from '@webmoe/sharding';
import type { ShardDevices } from '@webmoe/nn';
import { shardMoE, type ShardedMoE } from './sharded.js';
import { forwardGraphKey } from './graph-cache.js';
import { forwardHostArray, recordAndSubmit } from './host-io.js';
import { QuantizedExperts, normalizeQuantConfig, type ActivationQuant, type MoEQuantConfig, type ResolvedQuantConfig } from './quant-experts.js';

/** The expert weights of an MoE, in the kernels' terms (dense or quantized kinds; `MoE.record` takes one to override the stacked weights). @example `moe.record(rec, x, pool, scratch, { gateUp: { kind: 'fp8_block', q, scaleInv, block: [128, 128] }, down })` */
export interface ExpertWeightSet<W> {
  /** [E, 2I, H] */
  gateUp: W;
  /** [E, H, I] */
  down: W;
}

/**
 * Stacked routed-expert weights (`experts.gate_up_proj` [E, 2I, H],
 * `experts.down_proj` [E, H, I], optional biases [E, 2I] and [E, H]) in the
 * module's storage dtype. Quantized containers (fp8 blocks, MXFP4) plug in
 * as other implementations of `hostWeights()` / `gpuWeights()`.
 *
 * @example
 * ```ts
 * const ex = new StackedExperts({ numExperts: 8, hiddenDim: 64, moeDim: 32 });
 * ex.gateUpProj.shape // [8, 64, 64]
 * ```
 */
export class StackedExperts extends Module {
  readonly gateUpProj: Parameter;
  readonly downProj: Parameter;
  readonly gateUpBias: Parameter | undefined;
  readonly downBias: Parameter | undefined;
  /** How gate_up's rows pair into outputs (the activation's layout): what a split inside an expert keeps together. */
  readonly gateUpLayout: 'concat' | 'interleaved';
  private readonly gpuStacks = new GpuExpertStacks();
  constructor(opts: { numExperts: number; hiddenDim: number; moeDim: number; hasBias?: boolean; dtype?: DType; device?: DeviceRef; ctx?: GpuContext; gateUpLayout?: 'concat' | 'interleaved' }) {
    super(opts);
    const { numExperts: E, hiddenDim: H, moeDim: I } = opts;
    this.gateUpProj = this.addParameter('gate_up_proj', [E, 2 * I, H]);
    this.downProj = this.addParameter('down_proj', [E, H, I]);
    this.gateUpBias = opts.hasBias ? this.addParameter('gate_up_proj_bias', [E, 2 * I]) : undefined;
    this.downBias = opts.hasBias ? this.addParameter('down_proj_bias', [E, H]) : undefined;
    this.gateUpLayout = opts.gateUpLayout ?? 'concat';
  }
  /** Host containers for the reference GEMMs. */
  hostWeights(): ExpertWeightSet<ExpertWeightsHost> {
    return { gateUp: { kind: 'dense', w: this.gateUpProj.value }, down: { kind: 'dense', w: this.downProj.value } };
  }
  /**
   * GPU containers for the expert GEMMs: the parameters' GPU values, or, for
   * a stack over the context's maxBindingBytes, the stack split over several
   * buffers (its biases inside; see {@link expertBiasGpu}).
   */
  gpuWeights(): ExpertWeightSet<ExpertStackGpu> {
    return this.gpuStacks.weights({ gateUp: () => ({ kind: 'dense', w: this.gateUpProj.gpuValue }), down: () => ({ kind: 'dense', w: this.downProj.gpuValue }) });
  }
  /** The stacks without data (the parameters' dtypes and shapes). */
  stackShapes(): ExpertWeightSet<ExpertWeightsShape> {
    return { gateUp: { kind: 'dense', w: this.gateUpProj }, down: { kind: 'dense', w: this.downProj } };
  }
  private stackParams(h: ExpertWeightSet<ExpertWeightsHost> | undefined): [StackParams, StackParams] {
    const sh = this.stackShapes();
    return [
      { host: h?.gateUp as ExpertWeightsHost, shape: sh.gateUp, tensors: [this.gateUpProj], bias: this.gateUpBias, layout: this.gateUpLayout, label: 'experts.gate_up_proj' },
      { host: h?.down as ExpertWeightsHost, shape: sh.down, tensors: [this.downProj], bias: this.downBias, layout: 'rows', label: 'experts.down_proj' },
    ];
  }
  /** Uploads the stacks (split where they exceed a binding). */
  protected override afterLoad(): void {
    if (!this.device.isGpu()) return super.afterLoad();
    this.gpuStacks.upload(this.ctx!, ...this.stackParams(this.hostWeights()));
  }
  /** Takes GPU stacks built outside `loadStateDict` (see `QuantizedExperts.setGpuStacks`); no host copy of the experts. */
  setGpuStacks(given: ExpertWeightSet<UploadedStack>): void {
    this.gpuStacks.adopt(this.device.isGpu() ? this.ctx : undefined, ...this.stackParams(undefined), given);
  }
  override destroy(): void {
    super.destroy();
    this.gpuStacks.destroy();
  }
}


/** Options of {@link MoE}: MAX's constructor arguments in camelCase, plus the expert variants MAX spells through `mlpCls`. @example `{ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2, moeDim: 32, gateCls: SoftmaxTopKGate }` */
export interface MoEOptions {
  /** Devices (MAX `devices`); the layer runs on the first. Default `[DeviceRef.CPU()]`. */
  devices?: readonly DeviceRef[];
  /** The WebGPU context for a GPU device. */
  ctx?: GpuContext;
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

/** The result of {@link MoE.forward} for each input kind. @example `const y: MoEOutput<GpuTensor> = await moe.forward(x)` */
export type MoEOutput<X> = X extends GpuTensor ? GpuTensor : X extends HostTensor ? HostTensor : Float32Array;

function positiveInt(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ValueError(`MoE ${what}`, 'a positive integer', v);
  return v;
}

/**
 * The Mixture-of-Experts layer of MAX (`max.nn.MoE`) on WebGPU and the CPU.
 * Parameters (dotted names of `loadStateDict`): `gate.weight` [E, H]
 * (+ `gate.bias`, `gate.e_score_correction_bias`), `experts.gate_up_proj`
 * [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up, or interleaved), `experts.down_proj`
 * [E, H, I] (+ `_bias`), `shared_experts.{gate,up,down}_proj.weight`,
 * `shared_expert_gate.weight` [1, H].
 *
 * On a GPU, `forward` records the whole layer (router linear, router,
 * grouping, grouped gate_up, grouped down, shared expert, combine) into one
 * Recorder and submits once, without reading anything back.
 *
 * @example
 * ```ts
 * const moe = new MoE({ devices: [DeviceRef.GPU()], ctx, hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2, moeDim: 32,
 *   gateCls: SoftmaxTopKGate, gateOptions: { normTopkProb: true } });
 * moe.loadStateDict(weights);
 * const y = await moe.forward(x); // x: GpuTensor float32 [T, 64] -> GpuTensor float32 [T, 64]
 * moe.destroy();
 * ```
 */
export class MoE extends Module {
  readonly devices: readonly DeviceRef[];
  readonly hiddenDim: number;
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly moeDim: number;
  readonly hasSharedExperts: boolean;
  readonly sharedExpertsDim: number;
  readonly epSize: number;
  /** MAX `ep_batch_manager` (expert-parallel shards), or undefined. */
  readonly epBatchManager: EPBatchManager | undefined;
  readonly applyRouterWeightFirst: boolean;
  readonly swigluLimit: number;
  readonly quantConfig: MoEQuantConfig | undefined;
  /** The resolved quant config (defaults filled in; `activationQuant` after the override), or undefined for dense experts. */
  readonly quant: ResolvedQuantConfig | undefined;
  /** Activation quantisation of the quantized expert matmuls ('none' for dense experts). */
  readonly activationQuant: ActivationQuant;
  readonly isSharding: boolean;
  readonly mlpCls: typeof MLP;
  /** The activation of the routed experts. */
  readonly activation: ExpertActivation;
  /** The router. */
  readonly gate: MoEGate;
  /** The stacked routed-expert weights (dense, or packed codes + scales with `quantConfig`). */
  readonly stacked: StackedExperts | QuantizedExperts;
  /** The shared experts stored quantized (`quantConfig.quantizeSharedExperts`), E = 1, run through the grouped GEMMs; `sharedExperts` is then undefined. */
  readonly quantizedSharedExperts: QuantizedExperts | undefined;
  /** The shared experts (a plain MLP), if any. */
  readonly sharedExperts: MLP | undefined;
  /** Qwen2-MoE's shared-expert gate ([1, H], no bias), if any. */
  readonly sharedExpertGate: Linear | undefined;
  private pool: BufferPool | undefined;
  /**
   * Which expert GEMMs a GPU forward uses: 'gemv' (decode kernels: each active
   * expert's weights streamed once, one workgroup column per active-expert slot),
   * 'grouped' (tiled grouped GEMMs), or 'auto' (kernels-wgsl's plan.ts: gemv when T <= 16 or at most 8
   * rows per expert on average, T*k <= 8E). The GEMVs
   * take dense and packed experts with weight-only activations; otherwise
   * (dynamic fp8 activations, packed rows not a multiple of 8) the grouped
   * GEMMs run whatever this says. Results agree to f32 rounding; a given T always
   * takes the same path, so a forward is deterministic. Setting another value
   * frees the captured forward graphs (the next forward records afresh).
   */
  get expertKernels(): 'auto' | 'gemv' | 'grouped' {
    return this.kernelChoice;
  }
  set expertKernels(v: 'auto' | 'gemv' | 'grouped') {
    if (v !== 'auto' && v !== 'gemv' && v !== 'grouped') throw new ValueError('MoE.expertKernels', "'auto' | 'gemv' | 'grouped'", v);
    if (v !== this.kernelChoice) this.clearGraphs();
    this.kernelChoice = v;
  }
  private kernelChoice: 'auto' | 'gemv' | 'grouped' = 'auto';
  /**
   * Replay captured command graphs for small T (<= 64, up to 4 cached):
   * recording a forward costs far more host time than the GPU work at decode.
   * A graph is keyed by T, the expert-kernel choice and the GPU buffers the
   * forward reads, and freed on every weight load: it never replays old work.
   */
  useGraphs = true;
  private graphs: ForwardGraphs | undefined;
  private expertList: LayerList<MLP> | undefined;

  constructor(opts: MoEOptions) {
    const devices = opts.devices ?? [DeviceRef.CPU()];
    if (devices.length !== 1) throw new UnsupportedError('MoE devices', `${devices.length} devices`, 'one device per layer (shard with @webmoe/sharding)');
    const epSize = opts.epSize ?? 1;
    if (!Number.isInteger(epSize) || epSize < 1) throw new ShardingError('MoE epSize', 'a positive integer', epSize);
    if (epSize > 1 && (typeof opts.numExperts !== 'number' || opts.numExperts % epSize !== 0)) {
      throw new ShardingError(`MoE numExperts (expert parallel over epSize ${epSize})`, `a multiple of ${epSize}`, opts.numExperts);
    }
    const shardIndex = opts.shardIndex ?? 0;
    if (!Number.isInteger(shardIndex) || shardIndex < 0 || shardIndex >= epSize) throw new ShardingError('MoE shardIndex', `an integer in [0, ${epSize})`, shardIndex);
    let quant = opts.quantConfig ? normalizeQuantConfig(opts.quantConfig) : undefined;
    if (opts.activationQuant !== undefined) {
      if (opts.activationQuant !== 'none' && opts.activationQuant !== 'dynamic') throw new ValueError('MoE activationQuant', "'none' | 'dynamic'", opts.activationQuant);
      if (!quant && opts.activationQuant === 'dynamic') throw new ValueError('MoE activationQuant', "'none' for dense experts (dynamic needs a quantConfig)", opts.activationQuant);
      if (quant) quant = { ...quant, activationQuant: opts.activationQuant };
    }
    const dtype = opts.dtype ?? 'float32';
    if (!['float32', 'bfloat16', 'float16'].includes(dtype)) throw new DTypeError('MoE dtype', ['float32', 'bfloat16', 'float16'], dtype);
    super({ dtype, device: devices[0], ctx: opts.ctx });
    this.devices = [...devices];
    const H = (this.hiddenDim = positiveInt('hiddenDim', opts.hiddenDim));
    const E = (this.numExperts = positiveInt('numExperts', opts.numExperts));
    this.numExpertsPerToken = positiveInt('numExpertsPerToken', opts.numExpertsPerToken);
    if (this.numExpertsPerToken > E) throw new ValueError('MoE numExpertsPerToken', `at most numExperts (${E})`, this.numExpertsPerToken);
    const I = (this.moeDim = positiveInt('moeDim', opts.moeDim));
    this.hasSharedExperts = !!opts.hasSharedExperts;
    this.sharedExpertsDim = this.hasSharedExperts ? positiveInt('sharedExpertsDim', opts.sharedExpertsDim) : 0;
    if (opts.hasSharedExpertGate && !this.hasSharedExperts) throw new ValueError('MoE hasSharedExpertGate', 'hasSharedExperts: true', false);
    this.epSize = epSize;
    this.shardIndex = shardIndex;
    this.epBatchManager = opts.epBatchManager;
    this.applyRouterWeightFirst = !!opts.applyRouterWeightFirst;
    this.swigluLimit = opts.swigluLimit ?? 0;
    if (!(this.swigluLimit >= 0)) throw new ValueError('MoE swigluLimit', 'a number >= 0', this.swigluLimit);
    this.quantConfig = opts.quantConfig ?? undefined;
    this.quant = quant;
    this.activationQuant = quant?.activationQuant ?? 'none';
    this.isSharding = !!opts.isSharding;
    this.mlpCls = opts.mlpCls ?? MLP;
    this.activation =
      opts.expertActivation ?? (this.swigluLimit > 0 ? { kind: 'swiglu_limit', limit: this.swigluLimit, layout: 'concat' } : { kind: 'silu', layout: 'concat' });

    const mod = { dtype, device: devices[0], ctx: opts.ctx };
    const GateCls = opts.gateCls ?? MoEGate;
    this.gate = this.addModule('gate', new GateCls({ ...mod, ...opts.gateOptions, hiddenDim: H, numExperts: E, numExpertsPerToken: this.numExpertsPerToken }));
    this.stacked = this.addModule(
      'experts',
      quant
        ? new QuantizedExperts({ device: devices[0], ctx: opts.ctx, numExperts: E / epSize, hiddenDim: H, moeDim: I, quant, hasBias: opts.hasExpertBias, gateUpLayout: this.activation.layout })
        : new StackedExperts({ ...mod, numExperts: E / epSize, hiddenDim: H, moeDim: I, hasBias: opts.hasExpertBias, gateUpLayout: this.activation.layout }),
    );
    const qShared = this.hasSharedExperts && !!quant?.quantizeSharedExperts;
    this.quantizedSharedExperts = qShared
      ? this.addModule('shared_experts', new QuantizedExperts({ device: devices[0], ctx: opts.ctx, numExperts: 1, hiddenDim: H, moeDim: this.sharedExpertsDim, quant: quant! }))
      : undefined;
    this.sharedExperts = this.hasSharedExperts && !qShared ? this.addModule('shared_experts', new MLP({ ...mod, hiddenDim: H, feedForwardLength: this.sharedExpertsDim })) : undefined;
    this.sharedExpertGate = opts.hasSharedExpertGate ? this.addModule('shared_expert_gate', new Linear({ ...mod, inDim: H, outDim: 1 })) : undefined;
  }

  /**
   * Builds layer `layer`'s MoE block from a HuggingFace checkpoint
   * (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3, gpt_oss, llama4_text):
   * reads config.json and the safetensors (single or sharded), checks every
   * tensor against the config before reading it, keeps the weights in their
   * storage dtype (or casts float32 to `dtype` on the host) and uploads them
   * when `device` is a GPU.
   *
   * @example
   * ```ts
   * const moe = await MoE.fromHuggingFace({ source: '/models/olmoe-tiny', layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx });
   * const y = await moe.forward(x);
   * ```
   */
  static fromHuggingFace(opts: HFLoadOptions): Promise<MoE> {
    return loadHuggingFaceMoE(opts, (options) => new MoE(options));
  }

  /** `experts.gate_up_proj` [E, 2I, H] (MAX `gate_up_proj`); with `quantConfig`, the packed codes (e.g. mxfp4 `gate_up_proj_blocks` [E, 2I, H/32, 16]; scales in `stacked.gateUpScale`). */
  get gateUpProj(): Parameter {
    return this.stacked.gateUpProj;
  }
  /** `experts.down_proj` [E, H, I] (MAX `down_proj`); with `quantConfig`, the packed codes (scales in `stacked.downScale`). */
  get downProj(): Parameter {
    return this.stacked.downProj;
  }
  /** The layer's scratch pool (GPU layers, after the first forward); every scratch tensor is back in it after a forward. */
  get scratchPool(): BufferPool | undefined {
    return this.pool;
  }
  /** Experts this layer holds: numExperts, or numExperts / epSize for an expert-parallel shard. */
  get numLocalExperts(): number {
    return this.numExperts / this.epSize;
  }

  /**
   * MAX `MoE.shard(devices)`: cuts this loaded layer over `devices` (a
   * DeviceGroup, or CPU DeviceRefs) with `shardingStrategy` (or `strategy`):
   * `ShardingStrategy.tensorParallel(n)` or `expertParallel(n)`. Returns a
   * {@link ShardedMoE}: `shards` (one MoE per device, with `shardIndex`,
   * `shardDevices`, `shardingStrategy`) and the sharded `forward`. Quantized
   * experts stay packed (TP in whole quantisation blocks). Typed errors
   * (devices count vs the strategy's, E not divisible by n, moeDim too small
   * for n, a TP split that would cut a block) before anything is allocated.
   *
   * @example
   * ```ts
   * moe.shardingStrategy = ShardingStrategy.expertParallel(2);
   * const ep = moe.shard(await DeviceGroup.create(2));
   * const y = await ep.forward(x); // == await moe.forward(x), to f32 rounding
   * ep.destroy();
   * ```
   */
  shard(devices: ShardDevices, strategy?: ShardingStrategy): ShardedMoE {
    const st = strategy ?? this.shardingStrategy;
    if (!(st instanceof ShardingStrategy)) {
      throw new ShardingError('MoE.shard shardingStrategy', 'ShardingStrategy.tensorParallel(n) or expertParallel(n) (set moe.shardingStrategy or pass one)', st === undefined ? 'undefined' : typeof st);
    }
    return shardMoE(this, devices, st);
  }

  private checkNotEPShard(what: string): void {
    if (this.epSize > 1) throw new UnsupportedError(what, `an expert-parallel shard (epSize=${this.epSize}) on its own`, 'the sharded layer: ShardedMoE.forward');
  }

  /**
   * The routed experts as a LayerList of host MLPs (`mlpCls`), built on first
   * access from the loaded stacked weights (copies in the storage dtype;
   * concat-layout SiLU experts only).
   */
  get experts(): LayerList<MLP> {
    if (this.expertList) return this.expertList;
    if (this.stacked instanceof QuantizedExperts) {
      throw new UnsupportedError('MoE.experts', `per-expert MLPs of ${this.stacked.quant.format} experts`, 'dense experts (quantized weights stay packed; use hostWeights()/gpuWeights())');
    }
    if (this.activation.layout !== 'concat' || this.activation.kind === 'swigluoai' || this.stacked.gateUpBias) {
      throw new UnsupportedError('MoE.experts', `per-expert MLPs for ${this.activation.kind}/${this.activation.layout} experts with bias=${!!this.stacked.gateUpBias}`, 'concat-layout silu / swiglu_limit experts without bias');
    }
    const E = this.numLocalExperts;
    const H = this.hiddenDim;
    const I = this.moeDim;
    const gu = this.stacked.gateUpProj.value;
    const dn = this.stacked.downProj.value;
    const act: MLPActivation = this.activation.kind === 'swiglu_limit' ? { kind: 'swiglu_limit', limit: this.activation.limit ?? this.swigluLimit } : { kind: 'silu' };
    const slice = (t: HostTensor, start: number, n: number, shape: number[]) => new HostTensor(t.dtype, shape, t.data.slice(start, start + n) as HostArray);
    const list: MLP[] = [];
    for (let e = 0; e < E; e++) {
      const m = new this.mlpCls({ dtype: this.dtype, hiddenDim: H, feedForwardLength: I, activation: act });
      m.loadStateDict({
        'gate_proj.weight': slice(gu, e * 2 * I * H, I * H, [I, H]),
        'up_proj.weight': slice(gu, e * 2 * I * H + I * H, I * H, [I, H]),
        'down_proj.weight': slice(dn, e * H * I, H * I, [H, I]),
      });
      list.push(m);
    }
    return (this.expertList = new LayerList(list));
  }

  protected override afterLoad(): void {
    this.expertList = undefined;
    this.clearGraphs(); // they recorded the previous weights' buffers
    super.afterLoad();
  }

  private checkInput(what: string, shape: readonly number[], dtype: DType): number {
    if (shape.length !== 2 || shape[1] !== this.hiddenDim) throw new ShapeError(what, ['T', this.hiddenDim], shape);
    if (dtype !== 'float32') throw new DTypeError(what, 'float32', dtype);
    return shape[0];
  }

  /**
   * Runs the layer. A GpuTensor float32 [T, H] (GPU layer) gives a GpuTensor
   * the caller owns; a HostTensor [T, H] (any float dtype, converted to f32)
   * or a Float32Array of T*H values gives the same kind back, on either device.
   */
  async forward<X extends GpuTensor | HostTensor | Float32Array>(x: X): Promise<MoEOutput<X>> {
    if (x instanceof GpuTensor) {
      if (!this.device.isGpu()) throw new ValueError('MoE.forward input', `a host tensor for a ${this.device} layer`, 'a GpuTensor');
      return (await this.forwardGpu(x)) as MoEOutput<X>;
    }
    let T: number;
    let xs: Float32Array;
    if (x instanceof HostTensor) {
      if (x.shape.length !== 2 || x.shape[1] !== this.hiddenDim) throw new ShapeError('MoE.forward input', ['T', this.hiddenDim], x.shape);
      if (!DTYPES[x.dtype]?.isFloat) throw new DTypeError('MoE.forward input', ['float32', 'bfloat16', 'float16', 'float8_e4m3fn', 'float8_e5m2'], x.dtype);
      T = x.shape[0];
      xs = x.toFloat32();
    } else if (x instanceof Float32Array) {
      if (x.length % this.hiddenDim !== 0) throw new ShapeError('MoE.forward input', `T*${this.hiddenDim} values`, `${x.length} values`);
      T = x.length / this.hiddenDim;
      xs = x;
    } else {
      throw new ValueError('MoE.forward input', 'a GpuTensor, HostTensor or Float32Array', typeof x);
    }
    let y: Float32Array;
    if (this.device.isCpu()) y = this.forwardHost(xs, T);
    else {
      const ctx = this.ctx!;
      this.gpuWeightsOrThrow(); // NotLoadedError before anything is uploaded
      this.checkScratchLimits(T); // LimitError before anything is uploaded
      // Inside validation/OOM error scopes: a GPU error is a typed GpuValidationError / GpuOutOfMemoryError, never silent.
      y = await forwardHostArray(ctx, this.scratch(), xs, [T, this.hiddenDim], 'MoE.forward', (xg) => this.forwardGpuSync(xg));
    }
    return (x instanceof HostTensor ? new HostTensor('float32', [T, this.hiddenDim], y) : y) as MoEOutput<X>;
  }

  /**
   * The layer on the GPU for x f32 [T, H]: one submit; returns f32 [T, H]
   * owned by the caller (or writes `opts.out`, see {@link forwardGpuSync}).
   * Same as `forwardGpuSync`, as a promise (errors reject).
   */
  async forwardGpu(x: GpuTensor, opts: MoEGpuForwardOptions = {}): Promise<GpuTensor> {
    return this.forwardGpuSync(x, opts);
  }

  /**
   * The layer on the GPU for x f32 [T, H], issued synchronously (one submit,
   * nothing awaited): returns f32 [T, H]. With `opts.out` (f32 [T, H] on this
   * context) the result is written there and `out` returned; otherwise the
   * tensor comes from the layer's output pool and belongs to the caller,
   * whose `destroy()` hands its buffer back for a later forward (a decode
   * loop that destroys each output once consumed allocates nothing).
   * For T <= 64 (`useGraphs`) a captured graph is replayed: no buffer,
   * bind group or uniform is created or written per call.
   *
   * @example
   * ```ts
   * let h = x;
   * for (let i = 0; i < 100; i++) { const y = moe.forwardGpuSync(h); if (h !== x) h.destroy(); h = y; }
   * ```
   */
  forwardGpuSync(x: GpuTensor, opts: MoEGpuForwardOptions = {}): GpuTensor {
    const T = this.checkInput('MoE.forward input', x.shape, x.dtype);
    const ctx = this.ctx!;
    if (x.ctx !== ctx) throw new ValueError('MoE.forward input', 'a GpuTensor on the layer\'s GpuContext', 'a tensor of another context');
    const gw = this.gpuWeightsOrThrow();
    const shape = [T, this.hiddenDim];
    if (opts.out) checkOutput('MoE.forward out', ctx, opts.out, shape);
    if (T === 0) return opts.out ?? GpuTensor.empty(ctx, 'float32', shape, 'moe.out');
    this.checkScratchLimits(T);
    const pool = this.scratch();
    if (this.useGraphs && useGraphReplay(T)) {
      this.graphs ??= new ForwardGraphs(ctx, 'moe');
      return this.graphs.run(forwardGraphKey(T, this.kernelChoice, this.recordedBuffers(gw)), x, shape, (rec, xIn, scratch) => this.record(rec, xIn, pool, scratch, gw), opts.out);
    }
    return recordAndSubmit(ctx, 'moe.forward', (rec, scratch) => this.record(rec, x, pool, scratch, gw), opts.out);
  }

  /** The layer's scratch pool, made on first use. */
  private scratch(): BufferPool {
    return (this.pool ??= new BufferPool(this.ctx!, { maxFreeBytes: 64 << 20 }));
  }

  /** Every GPU buffer a forward with expert weights `gw` reads (parameters, packed shared experts, gw's tensors): part of a graph's key. */
  private *recordedBuffers(gw: ExpertWeightSet<ExpertStackGpu>): Generator<GPUBuffer> {
    for (const p of this.parameters()) if (p.gpu) yield p.gpu.buffer;
    if (this.sharedExperts) for (const t of Object.values(this.sharedExperts.packedGpu)) if (t) yield t.buffer;
    for (const w of [gw.gateUp, gw.down]) for (const t of expertTensors(w)) yield t.buffer;
    if (this.quantizedSharedExperts) for (const w of Object.values(this.quantizedSharedExperts.gpuWeights())) for (const t of expertTensors(w)) yield t.buffer;
  }

  /** Frees the cached forward graphs (they hold scratch buffers). */
  clearGraphs(): void {
    this.graphs?.clear();
  }

  /**
   * Checks the largest buffers a forward of T tokens allocates (input/output
   * [T, H], router logits [T, E], expert rows [T*k, max(I, H)], shared
   * expert [T, 2S]) against the device's buffer limits, before anything is
   * allocated or recorded: a LimitError naming the limit and the tensor.
   */
  private checkScratchLimits(T: number): void {
    const ctx = this.ctx!;
    const f32 = (n: number) => gpuByteLength('float32', n);
    const rows = T * this.numExpertsPerToken;
    checkBufferSize(ctx, f32(T * this.hiddenDim), `MoE.forward input/output [${T}, ${this.hiddenDim}]`);
    checkBufferSize(ctx, f32(T * this.numExperts), `MoE.forward router logits [${T}, ${this.numExperts}]`);
    checkBufferSize(ctx, f32(rows * this.moeDim), `MoE.forward expert activations [${rows}, ${this.moeDim}]`);
    checkBufferSize(ctx, f32(rows * this.hiddenDim), `MoE.forward expert outputs [${rows}, ${this.hiddenDim}]`);
    if (this.hasSharedExperts) checkBufferSize(ctx, f32(T * 2 * this.sharedExpertsDim), `MoE.forward shared expert activations [${T}, ${2 * this.sharedExpertsDim}]`);
  }

  /**
   * Throws what a GPU forward of T tokens would throw before anything is
   * recorded: an expert-parallel shard on its own, weights not loaded
   * (NotLoadedError), buffers over the device limits (LimitError).
   * @example `for (const m of layers) m.checkForward(T)`
   */
  checkForward(T: number): void {
    this.checkNotEPShard('MoE.record');
    this.gpuWeightsOrThrow();
    this.checkScratchLimits(T);
  }

  private gpuWeightsOrThrow(): ExpertWeightSet<ExpertStackGpu> {
    return this.stacked.gpuWeights();
  }

  /**
   * Records the layer into `rec` (no submit); scratch tensors come from
   * `pool` and are pushed to `scratch` (destroy them after submit). Returns the
   * output [T, H], not from the pool.
   */
  record(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[], w: ExpertWeightSet<ExpertStackGpu> = this.stacked.gpuWeights()): GpuTensor {
    this.checkNotEPShard('MoE.record');
    const ctx = this.ctx!;
    const keep = <G extends { destroy(): void }>(t: G): G => {
      scratch.push(t);
      return t;
    };
    const logits = keep(linearGpu(ctx, rec, x, this.gate.weight.gpuValue, { bias: this.gate.bias?.gpuValue, pool }));
    const routing = routerGpu(ctx, rec, logits, this.gate.routerParams(), { pool, correctionBias: this.gate.eScoreCorrectionBias?.gpuValue });
    keep(routing.idx);
    keep(routing.weights);
    const aq = this.expertActQuant();
    const T = x.shape[0];
    // The decode GEMVs take dense and packed (fp8/int/mxfp4) experts, weight-only activations.
    const gemvOk = aq.actQuant === 'none' && gemvSupports(w.gateUp) && gemvSupports(w.down);
    const gemv = gemvOk && (this.expertKernels === 'gemv' || (this.expertKernels === 'auto' && useExpertGemv(T, this.numExpertsPerToken, this.numExperts)));
    // decode: grouping and active-expert list in one dispatch; else the multi-pass grouping that scales with T
    const decode = gemv ? groupDecodeGpu(ctx, rec, routing.idx, this.numExperts, this.moeDim, this.hiddenDim, { pool }) : undefined;
    const g = keep(decode ? decode.grouping : groupGpu(ctx, rec, routing.idx, this.numExperts, { pool }));
    let h: GpuTensor;
    let y: GpuTensor;
    if (decode) {
      const active = decode.active;
      h = keep(
        gemvGateUpGpu(ctx, rec, x, g, w.gateUp, this.activation, {
          pool,
          active,
          bias: expertBiasGpu(w.gateUp, this.stacked.gateUpBias),
          rowScale: this.applyRouterWeightFirst ? routing.weights : undefined,
        }),
      );
      y = keep(gemvDownGpu(ctx, rec, h, g, w.down, { pool, active, bias: expertBiasGpu(w.down, this.stacked.downBias) }));
    } else {
      h = keep(
        groupedGateUpGpu(ctx, rec, x, g, w.gateUp, expertBiasGpu(w.gateUp, this.stacked.gateUpBias), this.activation, {
          pool,
          rowScale: this.applyRouterWeightFirst ? routing.weights : undefined,
          ...aq,
        }),
      );
      y = keep(groupedDownGpu(ctx, rec, h, g, w.down, expertBiasGpu(w.down, this.stacked.downBias), { pool, ...aq }));
    }
    const sh = this.recordSharedExperts(rec, x, pool, scratch);
    return combineGpu(ctx, rec, y, g, this.applyRouterWeightFirst ? null : routing.weights, { shared: sh?.shared, sharedGateLogit: sh?.gateLogit });
  }

  /**
   * Records the shared experts (a dense MLP, or quantized ones through the
   * grouped GEMMs over a dense grouping, E = 1) for x f32 [T, H]: their
   * output [T, H] and the shared-expert gate's logits [T, 1] (Qwen2-MoE), or
   * undefined without shared experts. Every tensor (outputs included) is
   * pushed to `scratch`. The sharded forwards call this too.
   */
  recordSharedExperts(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[]): { shared: GpuTensor; gateLogit: GpuTensor | undefined } | undefined {
    const ctx = this.ctx!;
    const keep = <G extends { destroy(): void }>(t: G): G => {
      scratch.push(t);
      return t;
    };
    let shared: GpuTensor;
    if (this.sharedExperts) {
      shared = keep(this.sharedExperts.record(rec, x, { pool, scratch }));
    } else if (this.quantizedSharedExperts) {
      // Quantized shared experts: the same grouped GEMMs over a dense grouping (E = 1, identity order).
      const T = x.shape[0];
      const aq = this.expertActQuant();
      const sw = this.quantizedSharedExperts.gpuWeights();
      const dg = keep(denseGroupingGpu(ctx, rec, T, { pool }));
      const sAct = { kind: 'silu', layout: 'concat' } as const;
      if (useSingleExpertGemv(T) && aq.actQuant === 'none' && gemvSupports(sw.gateUp) && gemvSupports(sw.down)) {
        const hs = keep(gemvGateUpGpu(ctx, rec, x, dg, sw.gateUp, sAct, { pool }));
        shared = keep(gemvDownGpu(ctx, rec, hs, dg, sw.down, { pool }));
      } else {
        const hs = keep(groupedGateUpGpu(ctx, rec, x, dg, sw.gateUp, undefined, sAct, { pool, ...aq }));
        shared = keep(groupedDownGpu(ctx, rec, hs, dg, sw.down, undefined, { pool, ...aq }));
      }
    } else return undefined;
    const gateLogit = this.sharedExpertGate ? keep(this.sharedExpertGate.record(rec, x, { pool })) : undefined; // [T, 1]
    return { shared, gateLogit };
  }

  /**
   * The constructor options that describe this layer's shape and maths (not
   * its devices, gate options, quantization or sharding): what a derived
   * layer (quantized, sharded) is rebuilt from.
   * @example `new MoE({ ...moe.layerOptions(), devices, gateOptions })`
   */
  layerOptions(): Omit<MoEOptions, 'devices'> {
    return {
      hiddenDim: this.hiddenDim,
      numExperts: this.numExperts,
      numExpertsPerToken: this.numExpertsPerToken,
      moeDim: this.moeDim,
      gateCls: this.gate.constructor as GateClass,
      mlpCls: this.mlpCls,
      hasSharedExperts: this.hasSharedExperts,
      sharedExpertsDim: this.hasSharedExperts ? this.sharedExpertsDim : undefined,
      hasSharedExpertGate: !!this.sharedExpertGate,
      dtype: this.dtype,
      applyRouterWeightFirst: this.applyRouterWeightFirst,
      swigluLimit: this.swigluLimit,
      expertActivation: this.activation,
      hasExpertBias: !!this.stacked.gateUpBias,
    };
  }

  /** The layer on the host through the TypeScript references: x [T, H] f32 -> [T, H]. */
  forwardHost(x: Float32Array, T = x.length / this.hiddenDim): Float32Array {
    if (!Number.isInteger(T) || x.length !== T * this.hiddenDim) throw new ShapeError('MoE.forward input', ['T', this.hiddenDim], `${x.length} values`);
    if (T === 0) return new Float32Array(0);
    this.checkNotEPShard('MoE.forwardHost');
    const w = this.stacked.hostWeights();
    const logits = linearRef(x, T, this.gate.weight.value, this.gate.bias?.value);
    const routing = routerRef(logits, T, this.gate.routerParams(), this.gate.eScoreCorrectionBias?.value.toFloat32());
    const g = groupRef(routing.idx, T, this.numExpertsPerToken, this.numExperts);
    const aq = this.expertActQuant();
    const h = groupedGateUpRef(x, g, w.gateUp, this.stacked.gateUpBias?.value, this.activation, this.applyRouterWeightFirst ? routing.weights : undefined, aq);
    const y = groupedDownRef(h, g, w.down, this.stacked.downBias?.value, aq);
    const sh = this.sharedExpertsHost(x, T);
    return combineRef(y, g, this.applyRouterWeightFirst ? null : routing.weights, sh?.shared, sh?.gateLogit);
  }

  /**
   * The shared experts on the host (TypeScript references) for x f32 [T, H]:
   * their output [T, H] and the shared-expert gate's logits [T, 1], or
   * undefined without shared experts. The sharded forwards call this too.
   */
  sharedExpertsHost(x: Float32Array, T: number): { shared: Float32Array; gateLogit: Float32Array | undefined } | undefined {
    let shared: Float32Array;
    if (this.sharedExperts) {
      shared = this.sharedExperts.forwardHost(x, T);
    } else if (this.quantizedSharedExperts) {
      const aq = this.expertActQuant();
      const sw = this.quantizedSharedExperts.hostWeights();
      const dg = denseGroupingRef(T);
      shared = groupedDownRef(groupedGateUpRef(x, dg, sw.gateUp, undefined, { kind: 'silu', layout: 'concat' }, undefined, aq), dg, sw.down, undefined, aq);
    } else return undefined;
    return { shared, gateLogit: this.sharedExpertGate?.forwardHost(x, T) };
  }

  /** The grouped GEMMs' activation-quantiser options for this layer's quantized experts (`{ actQuant: 'none' }` for dense or weight-only experts). @example `groupedDownRef(h, g, w, bias, moe.expertActQuant())` */
  expertActQuant(): { actQuant: 'none' | 'fp8_dynamic'; actAmaxClamp?: number } {
    return this.activationQuant === 'dynamic' ? { actQuant: 'fp8_dynamic', actAmaxClamp: this.quant?.activationAmaxClamp } : { actQuant: 'none' };
  }

  /**
   * The GPU bytes this layer holds: `expertWeights` (routed and shared expert
   * weight matrices as stored: packed codes for quantized experts),
   * `expertScales` (their scales), `other` (router, biases, shared-expert
   * gate). Scratch buffers and cached graphs are not counted. All 0 on the CPU.
   *
   * @example
   * ```ts
   * const { expertWeights, expertScales, other } = moe.gpuBytes();
   * ```
   */
  gpuBytes(): MoEGpuBytes {
    let expertWeights = 0;
    let expertScales = 0;
    let other = 0;
    const seen = new Set<Parameter>();
    const count = (p: Parameter | undefined, to: 'w' | 's' | 'o') => {
      if (!p?.gpu || seen.has(p)) return;
      seen.add(p);
      if (to === 'w') expertWeights += p.gpu.byteLength;
      else if (to === 's') expertScales += p.gpu.byteLength;
      else other += p.gpu.byteLength;
    };
    for (const ex of [this.stacked, this.quantizedSharedExperts]) {
      if (!ex) continue;
      for (const p of ex.parameters()) seen.add(p);
      let w: ExpertWeightSet<ExpertStackGpu>;
      try {
        w = ex.gpuWeights();
      } catch (e) {
        if (e instanceof NotLoadedError) continue; // not on the GPU (yet)
        throw e;
      }
      for (const s of [w.gateUp, w.down]) {
        const b = expertWeightBytes(s);
        expertWeights += b.weights;
        expertScales += b.scales;
        if (s.kind === 'chunked') for (const c of s.chunks) other += c.bias?.byteLength ?? 0;
      }
      for (const p of [ex.gateUpBias, ex.downBias]) other += p?.gpu?.byteLength ?? 0;
    }
    if (this.sharedExperts && this.device.isGpu()) {
      try {
        const pk = this.sharedExperts.packedGpu;
        expertWeights += pk.gateUp.byteLength + pk.down.byteLength;
        other += (pk.gateUpBias?.byteLength ?? 0) + (pk.downBias?.byteLength ?? 0);
      } catch {
        // not loaded yet: nothing on the GPU
      }
    }
    for (const p of this.parameters()) count(p, 'o');
    return { expertWeights, expertScales, other, total: expertWeights + expertScales + other };
  }

  /** Frees the GPU weights, the cached graphs and the scratch pool. */
  override destroy(): void {
    this.graphs?.destroy();
    this.graphs = undefined;
    super.destroy();
    this.pool?.destroy();
    this.pool = undefined;
  }
}
