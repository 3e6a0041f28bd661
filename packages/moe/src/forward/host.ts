/**
 * The host implementation of the forward's stages (stages.ts): the CPU
 * kernels of `@webmoe/kernels-wgsl` for the router linear and the expert
 * GEMMs (its references' results, built for speed), its references for the
 * rest (routing, grouping, combine); f32 as the GPU kernels.
 */
import {
  combineRef,
  denseGroupingRef,
  groupRef,
  groupedDownCpu,
  groupedGateUpCpu,
  linearCpu,
  routerRef,
  type ExpertActivation,
  type ExpertWeightsHost,
  type GroupingRef,
  type RoutingRef,
} from '@webmoe/kernels-wgsl';
import type { HostTensor } from '@webmoe/tensor';
import type { MoELayer } from '../layer.js';
import { SHARED_EXPERT_ACTIVATION, type MoEStages, type SharedExpertsOut } from './stages.js';

/** The expert GEMMs on the host: gate_up (+ bias, activation) then down (+ bias), rows in grouped order. */
function expertGemmsHost(
  layer: MoELayer,
  x: Float32Array,
  g: GroupingRef,
  w: { gateUp: ExpertWeightsHost; down: ExpertWeightsHost },
  bias: { gateUp?: HostTensor; down?: HostTensor },
  act: ExpertActivation,
  rowScale: Float32Array | undefined,
): Float32Array {
  const aq = layer.expertActQuant();
  return groupedDownCpu(groupedGateUpCpu(x, g, w.gateUp, bias.gateUp, act, rowScale, aq), g, w.down, bias.down, aq);
}

/**
 * The stages of `layer` on the host (x f32 [T, H] as a Float32Array). The
 * routed-experts stage runs the layer's own (local) experts on whatever
 * grouping it is given: an expert-parallel rank passes the rows it received.
 * @example `runMoEForward(moe, hostStages(moe), x)`
 */
export function hostStages(layer: MoELayer): MoEStages<Float32Array, RoutingRef, GroupingRef> {
  const H = layer.hiddenDim;
  return {
    route: (x) => {
      const T = x.length / H;
      const g = layer.gate;
      return routerRef(linearCpu(x, T, g.weight.value, g.bias?.value), T, g.routerParams(), g.eScoreCorrectionBias?.value.toFloat32());
    },
    group: (r) => groupRef(r.idx, r.idx.length / layer.numExpertsPerToken, layer.numExpertsPerToken, layer.numExperts),
    routedExperts: (x, g, rowScale) =>
      expertGemmsHost(layer, x, g, layer.stacked.hostWeights(), { gateUp: layer.stacked.gateUpBias?.value, down: layer.stacked.downBias?.value }, layer.activation, rowScale),
    sharedExperts: (x) => {
      const T = x.length / H;
      let shared: Float32Array;
      const sh = layer.shared;
      if (sh?.kind === 'mlp') shared = sh.mlp.forwardHost(x, T);
      else if (sh?.kind === 'packed') shared = expertGemmsHost(layer, x, denseGroupingRef(T), sh.store.hostWeights(), {}, SHARED_EXPERT_ACTIVATION, undefined);
      else return undefined;
      return { shared, gateLogit: layer.sharedExpertGate?.forwardHost(x, T) };
    },
    combine: (y, g, weights, shared) => combineRef(y, g, weights, shared?.shared, shared?.gateLogit),
  };
}

/**
 * The combine stage over one slot per token: `out` [T, H] (rows an
 * expert-parallel combine already summed) plus the shared experts, f32 as
 * {@link hostStages}' combine adds them; `out` itself without shared experts.
 * @example `addSharedHost(out, T, hostStages(moe).sharedExperts(x))`
 */
export function addSharedHost(out: Float32Array, T: number, shared: SharedExpertsOut<Float32Array> | undefined): Float32Array {
  return shared ? combineRef(out, denseGroupingRef(T), null, shared.shared, shared.gateLogit) : out;
}
