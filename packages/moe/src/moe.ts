// The MoE layer's public surface (MAX's API and its docs); the forward itself is forward/ (stages), options and derived facts are moe-options.ts and layer-info.ts.
// Over ~400 lines because it is one class whose members are each a line or two of delegation under their API docs
// (most of the file is TSDoc with examples); the logic lives in the files named above, and splitting the class would
// only scatter its documented surface.
import { DeviceRef, HostTensor, ShapeError, DTypeError, ValueError, type DType } from '@webmoe/tensor';
import {
  BufferPool,
  GpuTensor,
  Recorder,
  ForwardGraphs,
  GraphKeyMemo,
  GRAPH_CAPTURE_AT,
  outputPool,
  checkOutput,
  recordAndSubmit,
  type DecodeSharedChoice,
  type DownCombineChoice,
  type ExpertActivation,
  type ExpertStackGpu,
  type RoutingRef,
} from '@webmoe/kernels-wgsl';
import { MLP, Linear, Module, type LayerList, type Parameter } from '@webmoe/nn';
import { MoEGate } from './gates.js';
import { UnsupportedError } from './errors.js';
import { loadHuggingFaceMoE } from './hf-loader.js';
import type { HFLoadOptions } from './hf-options.js';
import { ShardingError, ShardingStrategy, type EPBatchManager } from '@webmoe/sharding';
import type { ShardDevices } from '@webmoe/nn';
import { registerShardedHostLayer, shardMoE, type ShardedMoE } from './sharded.js';
import type { MoELayer, PrefillDequantChoice } from './layer.js';
import { forwardHostArray, forwardHostData, layerScratchPool, noHostOutput } from './host-io.js';
import { QuantizedExperts, type ActivationQuant, type ResolvedQuantConfig } from './quant-experts.js';
import { activationQuantOf, expertQuant, moeLayerConfig, type MoELayerConfig } from './layer-config.js';
import type { ExpertStore, SharedExperts } from './expert-store.js';
import { StackedExperts, type ExpertWeightSet } from './stacked-experts.js';
import { type MoEGpuBytes, type MoEGpuForwardOptions, type MoEHostForwardOptions, type MoEOptions, type MoEOutput } from './moe-options.js';
import { expertMLPs, layerGpuBytes, layerOptionsOf, recordedBuffers } from './layer-info.js';
import { runMoEForward, type SharedExpertsOut } from './forward/stages.js';
import { checkForwardLimits, gpuStages } from './forward/gpu.js';
import { hostStages } from './forward/host.js';

export { StackedExperts, type ExpertWeightSet } from './stacked-experts.js';
export type { MoEGpuBytes, MoEGpuForwardOptions, MoEHostForwardOptions, MoEOptions, MoEOutput } from './moe-options.js';

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
export class MoE extends Module implements MoELayer {
  readonly devices: readonly DeviceRef[];
  /** The layer's immutable description (shapes, routing, activation, shared experts, expert storage), validated once from the options: what every part reads. */
  readonly config: MoELayerConfig;
  /** MAX `ep_batch_manager` (expert-parallel shards), or undefined. */
  readonly epBatchManager: EPBatchManager | undefined;
  readonly mlpCls: typeof MLP;
  /** The router. */
  readonly gate: MoEGate;
  /** The stacked routed-expert weights as stored: `format` 'dense' (StackedExperts) or a quantized format (QuantizedExperts: packed codes + scales). */
  readonly stacked: ExpertStore;
  /** The shared experts as stored (`shared_experts.*`): a dense MLP (`kind: 'mlp'`) or packed like the routed experts (`kind: 'packed'`, E = 1, run through the grouped GEMMs), or undefined. */
  readonly shared: SharedExperts | undefined;
  /** Qwen2-MoE's shared-expert gate ([1, H], no bias), if any. */
  readonly sharedExpertGate: Linear | undefined;
  /** H: the model width (`config.hiddenDim`). */
  get hiddenDim(): number {
    return this.config.hiddenDim;
  }
  /** E: all routed experts, of every expert-parallel shard (`config.numExperts`). */
  get numExperts(): number {
    return this.config.numExperts;
  }
  /** k: experts per token (`config.numExpertsPerToken`). */
  get numExpertsPerToken(): number {
    return this.config.numExpertsPerToken;
  }
  /** I: width of each routed expert (`config.moeDim`). */
  get moeDim(): number {
    return this.config.moeDim;
  }
  /** Whether the layer has shared experts (`config.shared`). */
  get hasSharedExperts(): boolean {
    return !!this.config.shared;
  }
  /** Width of the shared experts (0 without them). */
  get sharedExpertsDim(): number {
    return this.config.shared?.dim ?? 0;
  }
  /** MAX `ep_size`: expert-parallel shards of the layer (1 for a whole layer). */
  get epSize(): number {
    return this.config.epSize;
  }
  /** Whether the router weights scale the experts' inputs (Llama 4) rather than their outputs. */
  get applyRouterWeightFirst(): boolean {
    return this.config.applyRouterWeightFirst;
  }
  /** MAX `swigluLimit` (0: none). */
  get swigluLimit(): number {
    return this.config.swigluLimit;
  }
  /** The activation of the routed experts. */
  get activation(): Readonly<ExpertActivation> {
    return this.config.activation;
  }
  /** MAX `isSharding` (no effect on one device). */
  get isSharding(): boolean {
    return this.config.isSharding;
  }
  /** The resolved quant config of the experts (defaults filled in; `activationQuant` after the override), or undefined for dense experts: `config.experts.quant`. */
  get quant(): Readonly<ResolvedQuantConfig> | undefined {
    return expertQuant(this.config.experts);
  }
  /** Activation quantisation of the quantized expert matmuls ('none' for dense experts). */
  get activationQuant(): ActivationQuant {
    return activationQuantOf(this.config.experts);
  }
  /** The shared experts when stored as a plain MLP (MAX `shared_experts`), else undefined (none, or packed: see {@link shared}). */
  get sharedExperts(): MLP | undefined {
    return this.shared?.kind === 'mlp' ? this.shared.mlp : undefined;
  }
  private pool: BufferPool | undefined;
  /** Where the outputs of `record` come from (outputPool: the context's shared scratch cache), made on first use. */
  private outputs: BufferPool | undefined;
  /**
   * Which expert GEMMs a GPU forward uses: 'gemv' (decode kernels: each active
   * expert's weights streamed once, one workgroup column per active-expert slot),
   * 'grouped' (tiled grouped GEMMs), or 'auto' (kernels-wgsl's `planExpertGemms`: gemv for decode sizes,
   * KERNEL_CROSSOVERS in plan.ts). The GEMVs
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
    this.kernelChoice = this.kernelSetting('expertKernels', v, ['auto', 'gemv', 'grouped'], this.kernelChoice);
  }
  private kernelChoice: 'auto' | 'gemv' | 'grouped' = 'auto';
  /**
   * How a decode forward on the GEMVs ends: 'fused', the down GEMV with the combine in it (one dispatch: each
   * token's k experts summed in the GEMV, for weights on its row-blocked path in one buffer per stack); 'separate',
   * the down GEMV then the combine; 'auto' (default), kernels-wgsl's `useCombinedDownGemv` (KERNEL_CROSSOVERS in
   * plan.ts). Results agree to f32 rounding (the sums in another order). Setting another value frees the captured
   * forward graphs.
   */
  get downCombine(): DownCombineChoice {
    return this.combineChoice;
  }
  set downCombine(v: DownCombineChoice) {
    this.combineChoice = this.kernelSetting('downCombine', v, ['auto', 'fused', 'separate'], this.combineChoice);
  }
  private combineChoice: DownCombineChoice = 'auto';
  /**
   * How a decode forward on the GEMVs runs the shared experts: 'routed', as always-selected experts in the routed
   * experts' GEMVs (each token's k routed slots and one slot of the shared expert at weight 1; its weights stream in
   * the same dispatches, no GEMVs of its own); 'separate', in GEMVs of their own; 'auto' (default), kernels-wgsl's
   * `useSharedExpertSlots` (KERNEL_CROSSOVERS.sharedExpertSlots: off on GPUs, as the H200 measured it, off on
   * software adapters, where a GEMV dispatch binds one stack). Only where the layer allows it: shared experts in the
   * routed experts' format and width (DeepSeek-V3, Kimi-K2, Llama 4: one shared expert), SiLU experts without
   * biases, no shared-expert gate, the experts on the decode GEMVs; elsewhere the shared experts keep their own
   * GEMVs. Results agree to f32 rounding (the shared expert summed among the slots). Setting another value frees the
   * captured forward graphs.
   */
  get decodeShared(): DecodeSharedChoice {
    return this.sharedChoice;
  }
  set decodeShared(v: DecodeSharedChoice) {
    this.sharedChoice = this.kernelSetting('decodeShared', v, ['auto', 'routed', 'separate'], this.sharedChoice);
  }
  private sharedChoice: DecodeSharedChoice = 'auto';
  /**
   * How the prefill GEMMs on the subgroup-matrix kernel read packed (or bf16) experts: 'on', decoded to f16 first, a
   * range of experts at a time into a scratch buffer of at most 512 MiB, then multiplied; 'off', decoded in the
   * GEMM's staging step; 'auto' (default), kernels-wgsl's planner (KERNEL_CROSSOVERS.sgmatDequant in plan.ts). The
   * f16 values, and so the results, are the same; the stored weights stay packed. No effect on other kernels.
   * Setting another value frees the captured forward graphs.
   */
  get prefillDequant(): PrefillDequantChoice {
    return this.dequantChoice;
  }
  set prefillDequant(v: PrefillDequantChoice) {
    this.dequantChoice = this.kernelSetting('prefillDequant', v, ['auto', 'on', 'off'], this.dequantChoice);
  }
  private dequantChoice: PrefillDequantChoice = 'auto';
  /**
   * A new value `v` of the kernel setting `name` (one of `allowed`, else a ValueError naming them) over `current`:
   * another value frees the captured forward graphs, which recorded the old choice.
   */
  private kernelSetting<T extends string>(name: string, v: T, allowed: readonly T[], current: T): T {
    if (!allowed.includes(v)) throw new ValueError(`MoE.${name}`, allowed.map((a) => `'${a}'`).join(' | '), v);
    if (v !== current) this.clearGraphs();
    return v;
  }
  /**
   * Replay captured command graphs (up to 4 token counts cached, each captured
   * at its second call: GRAPH_CAPTURE_AT): recording a
   * forward costs far more host time than the GPU work at decode, and a
   * prefill forward's recording (0.5-1 ms of host on an H100's host) more than
   * its GPU work at a few hundred tokens. A graph is keyed by T, the
   * expert-kernel choice and the GPU buffers the forward reads, and freed on
   * every weight load: it never replays old work. Its scratch is the device's
   * graph scratch, shared with every layer's graphs (GraphScratch).
   */
  useGraphs = true;
  private graphs: ForwardGraphs | undefined;
  /** The graph key of each forward (its buffers compared with the last forward's: no key built per decode step). */
  private readonly graphKeys = new GraphKeyMemo();
  private expertList: LayerList<MLP> | undefined;

  constructor(opts: MoEOptions) {
    const devices = opts.devices ?? [DeviceRef.CPU()];
    if (devices.length !== 1) throw new UnsupportedError('MoE devices', `${devices.length} devices`, 'one device per layer (shard with @webmoe/sharding)');
    const c = moeLayerConfig(opts);
    super({ dtype: c.dtype, device: devices[0], ctx: opts.ctx });
    this.devices = [...devices];
    this.config = c;
    this.shardIndex = c.shardIndex;
    this.epBatchManager = opts.epBatchManager;
    this.mlpCls = opts.mlpCls ?? MLP;
    const { hiddenDim: H, numExperts: E, moeDim: I } = c;
    const mod = { dtype: c.dtype, device: devices[0], ctx: opts.ctx };
    const GateCls = opts.gateCls ?? MoEGate;
    this.gate = this.addModule('gate', new GateCls({ ...mod, ...opts.gateOptions, hiddenDim: H, numExperts: E, numExpertsPerToken: c.numExpertsPerToken }));
    const ex = c.experts;
    const stack = { numExperts: E / c.epSize, hiddenDim: H, moeDim: I, hasBias: c.expertBias, gateUpLayout: c.activation.layout };
    this.stacked = this.addModule(
      'experts',
      ex.format === 'dense' ? new StackedExperts({ ...mod, ...stack }) : new QuantizedExperts({ device: devices[0], ctx: opts.ctx, ...stack, quant: ex.quant }),
    );
    const sh = c.shared;
    this.shared =
      sh?.packed && ex.format !== 'dense'
        ? { kind: 'packed', store: this.addModule('shared_experts', new QuantizedExperts({ device: devices[0], ctx: opts.ctx, numExperts: 1, hiddenDim: H, moeDim: sh.dim, quant: ex.quant })) }
        : sh
          ? { kind: 'mlp', mlp: this.addModule('shared_experts', new MLP({ ...mod, hiddenDim: H, feedForwardLength: sh.dim })) }
          : undefined;
    this.sharedExpertGate = sh?.gated ? this.addModule('shared_expert_gate', new Linear({ ...mod, inDim: H, outDim: 1 })) : undefined;
  }

  /**
   * Builds layer `layer`'s MoE block from a HuggingFace checkpoint
   * (mixtral and minimax, qwen2_moe and qwen3_next, qwen3_moe, olmoe, deepseek_v2, deepseek_v3 with kimi_k2, deepseek_v32, glm4_moe,
   * glm_moe_dsa, glm4_moe_lite and dots1,
   * minimax_m2, ernie4_5_moe, gpt_oss, llama4_text and llama4, qwen3_vl_moe's text block, granitemoe,
   * granitemoeshared and granitemoehybrid, jamba):
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
    return (this.expertList ??= expertMLPs(this));
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
   * or a Float32Array of T*H values gives the same kind back, on either device,
   * written into `opts.out` where given (host inputs only; see {@link MoEHostForwardOptions}).
   */
  async forward<X extends GpuTensor | HostTensor | Float32Array>(x: X, opts: MoEHostForwardOptions = {}): Promise<MoEOutput<X>> {
    const H = this.hiddenDim;
    if (x instanceof GpuTensor) {
      if (!this.device.isGpu()) throw new ValueError('MoE.forward input', `a host tensor for a ${this.device} layer`, 'a GpuTensor');
      noHostOutput('MoE.forward', opts, 'forwardGpu');
      return (await this.forwardGpu(x)) as MoEOutput<X>;
    }
    return forwardHostData('MoE.forward', x, H, opts, (xs, T, out) => {
      if (this.device.isCpu()) return this.forwardHost(xs, T);
      this.gpuWeightsOrThrow(); // NotLoadedError before anything is uploaded
      checkForwardLimits(this, T); // LimitError before anything is uploaded
      // Inside validation/OOM error scopes: a GPU error is a typed GpuValidationError / GpuOutOfMemoryError, never silent.
      return forwardHostArray(this.ctx!, this.scratch(), xs, [T, H], 'MoE.forward', (xg) => this.forwardGpuSync(xg), out);
    });
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
   * With `useGraphs` a captured graph of T is replayed: no buffer, bind
   * group or uniform is created or written per call (the first call of a T
   * is recorded afresh, the second captures it: a T called once, such as a
   * prompt's length, costs no capture).
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
    checkForwardLimits(this, T);
    if (this.useGraphs) {
      this.graphs ??= new ForwardGraphs(ctx, 'moe', { captureAt: GRAPH_CAPTURE_AT });
      // the graph's scratch and output from its transient pool (the device's graph scratch): a replay writes them
      // before reading them, and the output is copied or rebound onto the caller's
      const record = (rec: Recorder, xIn: GpuTensor, scratch: { destroy(): void }[], transient: BufferPool) => this.recordTo(rec, xIn, transient, scratch, gw, transient);
      return this.graphs.run(this.graphKeys.key(T, this.kernelChoice, recordedBuffers(this, gw)), x, shape, record, opts.out);
    }
    return recordAndSubmit(ctx, 'moe.forward', (rec, scratch) => this.record(rec, x, this.scratch(), scratch, gw), opts.out);
  }

  /** The layer's scratch pool, made on first use. */
  private scratch(): BufferPool {
    return (this.pool ??= layerScratchPool(this.ctx!));
  }

  /** Frees the cached forward graphs (they hold scratch buffers). */
  clearGraphs(): void {
    this.graphs?.clear();
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
    checkForwardLimits(this, T);
  }

  private gpuWeightsOrThrow(): ExpertWeightSet<ExpertStackGpu> {
    return this.stacked.gpuWeights();
  }

  /**
   * Records the layer into `rec` (no submit); scratch tensors come from
   * `pool` and are pushed to `scratch` (destroy them after submit). Returns the
   * output [T, H] from the layer's output pool (its destroy() gives the buffer back).
   */
  record(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[], w: ExpertWeightSet<ExpertStackGpu> = this.stacked.gpuWeights()): GpuTensor {
    return this.recordTo(rec, x, pool, scratch, w, (this.outputs ??= outputPool(this.ctx!)));
  }

  /** {@link record} with the output [T, H] from `outputs`. */
  private recordTo(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[], w: ExpertWeightSet<ExpertStackGpu>, outputs: BufferPool): GpuTensor {
    this.checkNotEPShard('MoE.record');
    return runMoEForward(this, gpuStages(this, { rec, pool, scratch, wholeLayer: true, outputs }, w), x);
  }

  /**
   * Records the shared experts (a dense MLP, or quantized ones through the
   * grouped GEMMs over a dense grouping, E = 1) for x f32 [T, H]: their
   * output [T, H] and the shared-expert gate's logits [T, 1] (Qwen2-MoE), or
   * undefined without shared experts. Every tensor (outputs included) is
   * pushed to `scratch`. The shared-experts stage of {@link gpuStages}.
   */
  recordSharedExperts(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[]): SharedExpertsOut<GpuTensor> | undefined {
    return gpuStages(this, { rec, pool, scratch }).sharedExperts(x);
  }

  /**
   * The constructor options that describe this layer's shape and maths (not
   * its devices, gate options, quantization or sharding): what a derived
   * layer (quantized, sharded) is rebuilt from.
   * @example `new MoE({ ...moe.layerOptions(), devices, gateOptions })`
   */
  layerOptions(): Omit<MoEOptions, 'devices'> {
    return layerOptionsOf(this);
  }

  /** The layer on the host through the TypeScript references: x [T, H] f32 -> [T, H]. */
  forwardHost(x: Float32Array, T = x.length / this.hiddenDim): Float32Array {
    if (!Number.isInteger(T) || x.length !== T * this.hiddenDim) throw new ShapeError('MoE.forward input', ['T', this.hiddenDim], `${x.length} values`);
    if (T === 0) return new Float32Array(0);
    this.checkNotEPShard('MoE.forwardHost');
    return runMoEForward(this, hostStages(this), x);
  }

  /**
   * The layer's routing on the host (router linear and router, TypeScript
   * references) for x f32 [T, H]: expert ids and weights [T, k], as
   * {@link forwardHost} routes.
   * @example `const { idx, weights } = moe.routeHost(x, T)`
   */
  routeHost(x: Float32Array, T = x.length / this.hiddenDim): RoutingRef {
    if (!Number.isInteger(T) || x.length !== T * this.hiddenDim) throw new ShapeError('MoE.routeHost input', ['T', this.hiddenDim], `${x.length} values`);
    return hostStages(this).route(x);
  }

  /**
   * The shared experts on the host (TypeScript references) for x f32 [T, H]:
   * their output [T, H] and the shared-expert gate's logits [T, 1], or
   * undefined without shared experts. The shared-experts stage of {@link hostStages}.
   */
  sharedExpertsHost(x: Float32Array, T: number): SharedExpertsOut<Float32Array> | undefined {
    if (x.length !== T * this.hiddenDim) throw new ShapeError('MoE.sharedExpertsHost input', [T, this.hiddenDim], `${x.length} values`);
    return hostStages(this).sharedExperts(x);
  }

  /** The grouped GEMMs' activation-quantiser options for this layer's quantized experts (`{ actQuant: 'none' }` for dense or weight-only experts). @example `groupedDownRef(h, g, w, bias, moe.expertActQuant())` */
  expertActQuant(): { actQuant: 'none' | 'fp8_dynamic'; actAmaxClamp?: number } {
    const q = this.quant;
    return q?.activationQuant === 'dynamic' ? { actQuant: 'fp8_dynamic', actAmaxClamp: q.activationAmaxClamp } : { actQuant: 'none' };
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
    return layerGpuBytes(this);
  }

  /** Frees the GPU weights, the cached graphs and the scratch pool. */
  override destroy(): void {
    this.graphs?.destroy();
    this.graphs = undefined;
    super.destroy();
    this.pool?.destroy();
    this.pool = undefined;
    this.outputs?.close();
    this.outputs = undefined;
  }
}

// ShardedMoE.fromHuggingFace reads its host layer as a MoE (sharded.ts does not import this file).
registerShardedHostLayer(MoE);
