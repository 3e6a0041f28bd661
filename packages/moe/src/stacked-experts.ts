/** The stacked routed-expert weights of a dense MoE (`experts.*` parameters) and the weight-set type MoE's forwards take. */
import type { DeviceRef, DType } from '@webmoe/tensor';
import type { ExpertStackGpu, ExpertWeightsHost, ExpertWeightsShape, GpuContext } from '@webmoe/kernels-wgsl';
import { Module, type Parameter } from '@webmoe/nn';
import { GpuExpertStacks, type StackParams, type UploadedStack } from './expert-stacks.js';

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
 * module's storage dtype: the `'dense'` `ExpertStore` (expert-store.ts); `QuantizedExperts`
 * is the packed one (same surface).
 *
 * @example
 * ```ts
 * const ex = new StackedExperts({ numExperts: 8, hiddenDim: 64, moeDim: 32 });
 * ex.gateUpProj.shape // [8, 64, 64]
 * ```
 */
export class StackedExperts extends Module {
  /** The store's format (the `ExpertStore` (expert-store.ts) discriminator): dense weights in the module's dtype. */
  readonly format = 'dense' as const;
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
