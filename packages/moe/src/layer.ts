/**
 * What the parts of the package read from a MoE layer: the forward's stages
 * (forward/), the HuggingFace loader, the layer facts (layer-info.ts) and the
 * sharded layer (sharded.ts). {@link MoE} (moe.ts) implements it; those parts
 * import this interface, never the class, so that nothing but the package
 * entry and the code that constructs a MoE imports moe.ts.
 */
import type { HostTensor } from '@webmoe/tensor';
import type { BufferPool, DecodeSharedChoice, DownCombineChoice, ExpertActivation, GpuTensor, Recorder } from '@webmoe/kernels-wgsl';
import type { Linear, MLP, Module } from '@webmoe/nn';
import type { MoEGate } from './gates.js';
import type { MoEHostForwardOptions, MoEOptions, MoEOutput } from './moe-options.js';
import type { ExpertStore, SharedExperts } from './expert-store.js';
import type { MoELayerConfig } from './layer-config.js';

/** How the subgroup-matrix prefill GEMMs read packed (or bf16) experts: decoded to f16 first ('on'), in their staging step ('off'), or as kernels-wgsl's planner chooses ('auto'). */
export type PrefillDequantChoice = 'auto' | 'on' | 'off';

/**
 * A MoE layer as the stages, the loader and the sharded layer see it: its
 * shape and maths, its modules (router, routed and shared experts) and the
 * forward entry points. `MoE` is the implementation.
 * @example `function width(layer: MoELayer) { return layer.moeDim; }`
 */
export interface MoELayer extends Module {
  /** The layer's immutable description, validated once (layer-config.ts): shapes, routing, activation, shared experts, expert storage. */
  readonly config: MoELayerConfig;
  readonly hiddenDim: number;
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly moeDim: number;
  readonly hasSharedExperts: boolean;
  readonly sharedExpertsDim: number;
  /** Expert-parallel shards of the layer (1 for a whole layer). */
  readonly epSize: number;
  /** Experts this layer holds: numExperts / epSize. */
  readonly numLocalExperts: number;
  readonly applyRouterWeightFirst: boolean;
  readonly swigluLimit: number;
  readonly mlpCls: typeof MLP;
  /** The activation of the routed experts. */
  readonly activation: Readonly<ExpertActivation>;
  readonly gate: MoEGate;
  /** The routed experts as stored (discriminated by `format`). */
  readonly stacked: ExpertStore;
  /** The shared experts as stored (a dense MLP or packed), or undefined. */
  readonly shared: SharedExperts | undefined;
  readonly sharedExpertGate: Linear | undefined;
  /** Which expert GEMMs a GPU forward uses ('auto': the planner's choice). */
  readonly expertKernels: 'auto' | 'gemv' | 'grouped';
  /** How a decode forward on the GEMVs ends: the down GEMV with the combine in it, or then the combine ('auto': the planner's choice). */
  readonly downCombine: DownCombineChoice;
  /** How a decode forward on the GEMVs runs the shared experts: in the routed GEMVs ('routed'), in their own ('separate'), or the planner's choice ('auto'). */
  readonly decodeShared: DecodeSharedChoice;
  /** How the subgroup-matrix prefill GEMMs read packed (or bf16) experts: decoded to f16 first ('on'), at staging ('off'), or the planner's choice ('auto'). */
  readonly prefillDequant: PrefillDequantChoice;
  /** The grouped GEMMs' activation-quantiser options for the layer's experts. */
  expertActQuant(): { actQuant: 'none' | 'fp8_dynamic'; actAmaxClamp?: number };
  /** The constructor options that describe the layer's shape and maths. */
  layerOptions(): Omit<MoEOptions, 'devices'>;
  /** Runs the layer (GpuTensor, HostTensor or Float32Array in, the same kind out; host inputs optionally into `opts.out`). */
  forward<X extends GpuTensor | HostTensor | Float32Array>(x: X, opts?: MoEHostForwardOptions): Promise<MoEOutput<X>>;
  /** The layer on the host through the TypeScript references. */
  forwardHost(x: Float32Array, T?: number): Float32Array;
  /** Records the layer's GPU forward into `rec` (no submit); returns the output [T, H]. */
  record(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[]): GpuTensor;
}

/** A class of MoE layers: what shards of a layer are built with (the source layer's own class). @example `new (layer.constructor as MoELayerClass)(options)` */
export type MoELayerClass = new (options: MoEOptions) => MoELayer;
