/**
 * The GPU implementation of the forward's stages (stages.ts): each stage
 * records its kernels into one Recorder; the planner (`planExpertGemms`)
 * decides between the decode GEMVs and the grouped GEMMs.
 */
import {
  checkBufferSize,
  combineGpu,
  gpuByteLength,
  denseGroupingGpu,
  gemvCombineSupports,
  gemvDownCombineGpu,
  gemvDownGpu,
  gemvGateUpGpu,
  gemvSupports,
  groupDecodeGpu,
  groupGpu,
  groupedDownGpu,
  groupedGateUpGpu,
  linearGpu,
  planExpertGemms,
  routerGpu,
  tryAppendExpertStacks,
  routeDecodeGpu,
  useCombinedDownGemv,
  useFusedDecodeRouting,
  useSharedExpertSlots,
  type ActiveExperts,
  type BufferPool,
  type ExpertActivation,
  type ExpertStackGpu,
  type GpuTensor,
  type GroupingGpu,
  type Recorder,
  type RoutingGpu,
} from '@webmoe/kernels-wgsl';
import type { MoELayer } from '../layer.js';
import type { ExpertWeightSet } from '../stacked-experts.js';
import type { SharedExperts } from '../expert-store.js';
import { expertBiasGpu } from '../expert-stacks.js';
import { SHARED_EXPERT_ACTIVATION, type ForwardStep, type MoEStages } from './stages.js';

/** Where the GPU stages record: the Recorder, an optional scratch pool, and the list that collects every temporary (destroy after submit). */
export interface GpuStageRun {
  rec: Recorder;
  pool?: BufferPool;
  scratch: { destroy(): void }[];
  /**
   * Called as each step of the forward starts recording (before its first
   * dispatch): what a profile needs to attribute dispatches to steps. The
   * routed-experts stage reports 'gate_up' and 'down'.
   */
  onStep?: (step: ForwardStep) => void;
  /**
   * The run records the whole layer on its device, route to combine (MoE.record; not a shard's stages): the
   * stages may then join the shared experts to the routed ones (MoE.decodeShared).
   */
  wholeLayer?: boolean;
  /** The pool the layer's output [T, H] comes from (its destroy() gives the buffer back); default a buffer of its own. */
  outputs?: BufferPool;
}

/** A forward's grouping on the GPU, with the expert GEMMs the planner chose for it (the decode GEMVs reuse the decode grouping's active-expert list). */
export interface GroupedRowsGpu {
  grouping: GroupingGpu;
  gemms: 'gemv' | 'grouped';
  active?: ActiveExperts;
  /** The decode GEMVs' down GEMV with the combine in it (MoE.downCombine, the planner's useCombinedDownGemv). */
  downCombined?: boolean;
}

/** gate_up (+ bias, activation) on the decode GEMVs or the grouped GEMMs, as the planner chose; its output goes to scratch. */
function recordGateUp(layer: MoELayer, run: GpuStageRun, x: GpuTensor, g: GroupedRowsGpu, w: ExpertStackGpu, bias: GpuTensor | undefined, act: ExpertActivation, rowScale: GpuTensor | undefined): GpuTensor {
  const ctx = layer.ctx!;
  const { rec, pool } = run;
  const h =
    g.gemms === 'gemv'
      ? gemvGateUpGpu(ctx, rec, x, g.grouping, w, act, { pool, active: g.active, bias, rowScale })
      : groupedGateUpGpu(ctx, rec, x, g.grouping, w, bias, act, { pool, rowScale, ...layer.expertActQuant(), ...prefillDequantOption(layer) });
  run.scratch.push(h);
  return h;
}

/** The grouped GEMMs' sgmatDequant for the layer's MoE.prefillDequant ('auto': none, the planner's). */
function prefillDequantOption(layer: MoELayer): { sgmatDequant?: boolean } {
  return layer.prefillDequant === 'auto' ? {} : { sgmatDequant: layer.prefillDequant === 'on' };
}

/** Records the expert GEMMs (gate_up + bias + activation, then down + bias) on x's rows grouped by `g`; both outputs go to scratch. */
function recordExpertGemms(
  layer: MoELayer,
  run: GpuStageRun,
  x: GpuTensor,
  g: GroupedRowsGpu,
  w: ExpertWeightSet<ExpertStackGpu>,
  bias: { gateUp?: GpuTensor; down?: GpuTensor },
  act: ExpertActivation,
  rowScale: GpuTensor | undefined,
  onStep: ((step: 'gate_up' | 'down') => void) | undefined,
): GpuTensor {
  const ctx = layer.ctx!;
  const { rec, pool, scratch } = run;
  onStep?.('gate_up');
  const h = recordGateUp(layer, run, x, g, w.gateUp, bias.gateUp, act, rowScale);
  onStep?.('down');
  const y =
    g.gemms === 'gemv'
      ? gemvDownGpu(ctx, rec, h, g.grouping, w.down, { pool, active: g.active, bias: bias.down })
      : groupedDownGpu(ctx, rec, h, g.grouping, w.down, bias.down, { pool, ...layer.expertActQuant(), ...prefillDequantOption(layer) });
  scratch.push(y);
  return y;
}

/** The expert GEMMs the planner picks for T tokens over weights `w` (k per token of E experts; 1 and 1 for a single expert). */
function planGemms(layer: MoELayer, w: ExpertWeightSet<ExpertStackGpu>, T: number, k: number, E: number, choice: 'auto' | 'gemv' | 'grouped'): 'gemv' | 'grouped' {
  return planExpertGemms({ T, k, E, choice, actQuant: layer.expertActQuant().actQuant, gemvSupported: gemvSupports(w.gateUp) && gemvSupports(w.down), softwareAdapter: layer.ctx!.adapterInfo.software });
}

/**
 * The stages of `layer` on its GPU, recording into `run.rec` (x f32 [T, H]
 * on the layer's context). Every tensor a stage makes is pushed to
 * `run.scratch` except the combine's output (the caller's). `routedWeights`:
 * the routed experts' weights (default the layer's). The routed-experts stage runs the
 * layer's own (local) experts on the grouping it is given.
 * @example `runMoEForward(moe, gpuStages(moe, { rec, pool, scratch }), x)`
 */
export function gpuStages(layer: MoELayer, run: GpuStageRun, routedWeights?: ExpertWeightSet<ExpertStackGpu>): MoEStages<GpuTensor, RoutingGpu, GroupedRowsGpu> {
  const ctx = layer.ctx!;
  let w = routedWeights; // read on first use: the shared-experts stage alone does not need them
  // the routed experts with the shared expert appended (MoE.decodeShared) and its slots per token (0 or 1), once
  // route() has taken that path
  let withShared: ExpertWeightSet<ExpertStackGpu> | undefined;
  let sharedSlots = 0;
  const routed = () => (w ??= layer.stacked.gpuWeights());
  const weights = () => withShared ?? routed();
  const { rec, pool, scratch } = run;
  const keep = <G extends { destroy(): void }>(t: G): G => (scratch.push(t), t);
  let fusedGrouping: { routing: RoutingGpu; grouped: GroupedRowsGpu } | undefined;
  // the routed experts' biases as the GEMMs bind them (per chunk inside a chunked stack)
  const biases = (rw: ExpertWeightSet<ExpertStackGpu>) => ({ gateUp: expertBiasGpu(rw.gateUp, layer.stacked.gateUpBias), down: expertBiasGpu(rw.down, layer.stacked.downBias) });
  // a decode forward of T tokens (k slots each) on the GEMVs: whether its down GEMV takes the combine (the choice, and weights it reads)
  const downCombined = (T: number, k: number) => useCombinedDownGemv(T, layer.downCombine, { software: ctx.adapterInfo.software, packed: weights().down.kind !== 'dense' }) && gemvCombineSupports(weights().down, T, k);
  return {
    route: (x) => {
      run.onStep?.('route');
      const g = layer.gate;
      const linear = { x, weight: g.weight.gpuValue, bias: g.bias?.gpuValue };
      const T = x.shape[0];
      // Decode on the GEMVs with the shared expert joined to the routed ones (MoE.decodeShared): each token gets one
      // more slot (expert E, weight 1) and the GEMVs read the routed stacks with the shared one appended.
      withShared = run.wholeLayer ? routedWithShared(layer, routed(), T) : undefined;
      sharedSlots = withShared ? 1 : 0;
      const routerOpts = { pool, correctionBias: g.eScoreCorrectionBias?.gpuValue, sharedExperts: sharedSlots };
      const [k, E] = [layer.numExpertsPerToken + sharedSlots, layer.numExperts + sharedSlots];
      if (useFusedDecodeRouting(T) && planGemms(layer, weights(), T, k, E, layer.expertKernels) === 'gemv') {
        // decode with the fewest tokens: routing, grouping and the active-expert list in one dispatch (route_decode),
        // with the router linear where the planner puts it there; the group stage takes the grouping made here
        const f = routeDecodeGpu(ctx, rec, linear, g.routerParams(), layer.moeDim, layer.hiddenDim, routerOpts);
        keep(f.logits);
        fusedGrouping = { routing: f.routing, grouped: { grouping: keep(f.grouping), gemms: 'gemv', active: f.active, downCombined: downCombined(T, k) } };
        return { idx: keep(f.routing.idx), weights: keep(f.routing.weights) };
      }
      const logits = keep(linearGpu(ctx, rec, x, linear.weight, { bias: linear.bias, pool }));
      const r = routerGpu(ctx, rec, logits, g.routerParams(), routerOpts);
      return { idx: keep(r.idx), weights: keep(r.weights) };
    },
    group: (r) => {
      run.onStep?.('group');
      if (fusedGrouping && fusedGrouping.routing.idx === r.idx) return fusedGrouping.grouped;
      const T = r.idx.shape[0];
      const [k, E] = [layer.numExpertsPerToken + sharedSlots, layer.numExperts + sharedSlots];
      const gemms = planGemms(layer, weights(), T, k, E, layer.expertKernels);
      if (gemms === 'gemv') {
        // decode: grouping and active-expert list in one dispatch
        const d = groupDecodeGpu(ctx, rec, r.idx, E, layer.moeDim, layer.hiddenDim, { pool });
        return { grouping: keep(d.grouping), gemms, active: d.active, downCombined: downCombined(T, k) };
      }
      // the multi-pass grouping that scales with T
      return { grouping: keep(groupGpu(ctx, rec, r.idx, E, { pool })), gemms };
    },
    routedExperts: (x, g, rowScale) => {
      const rw = weights();
      return recordExpertGemms(layer, run, x, g, rw, biases(rw), layer.activation, rowScale, run.onStep);
    },
    sharedExperts: (x) => {
      run.onStep?.('shared');
      // joined to the routed experts (route() took that path): nothing of their own to record
      if (withShared) return undefined;
      let shared: GpuTensor;
      const sh = layer.shared;
      if (sh?.kind === 'mlp') {
        shared = keep(sh.mlp.record(rec, x, { pool, scratch }));
      } else if (sh?.kind === 'packed') {
        // quantized shared experts: the expert GEMMs over a dense grouping (E = 1, identity order)
        const T = x.shape[0];
        const sw = sh.store.gpuWeights();
        const grouping = keep(denseGroupingGpu(ctx, rec, T, { pool }));
        shared = recordExpertGemms(layer, run, x, { grouping, gemms: planGemms(layer, sw, T, 1, 1, 'auto') }, sw, {}, SHARED_EXPERT_ACTIVATION, undefined, undefined);
      } else return undefined;
      const gateLogit = layer.sharedExpertGate ? keep(layer.sharedExpertGate.record(rec, x, { pool })) : undefined; // [T, 1]
      return { shared, gateLogit };
    },
    combine: (y, g, weights, shared) => {
      run.onStep?.('combine');
      return combineGpu(ctx, rec, y, g.grouping, weights, { shared: shared?.shared, sharedGateLogit: shared?.gateLogit, pool: run.outputs });
    },
    routedAndCombined: (x, g, routing, rowScale, wts, shared) => {
      if (!g.downCombined) return undefined;
      const rw = weights();
      const bias = biases(rw);
      run.onStep?.('gate_up');
      const h = recordGateUp(layer, run, x, g, rw.gateUp, bias.gateUp, layer.activation, rowScale);
      run.onStep?.('down');
      const out = gemvDownCombineGpu(ctx, rec, h, g.grouping, routing.idx, wts, rw.down, { bias: bias.down, shared: shared?.shared, sharedGateLogit: shared?.gateLogit, pool: run.outputs });
      // the combine is in the down GEMV: its step records nothing
      run.onStep?.('combine');
      return out;
    },
  };
}

/**
 * The shared experts as expert stacks of one expert (gate_up [1, 2S, H] rows gate then up, down [1, H, S]): packed ones
 * as stored, a dense MLP its packed GPU weights where it has no biases and the routed experts' activation (SiLU,
 * concat); else undefined.
 */
function sharedStacks(sh: SharedExperts): ExpertWeightSet<ExpertStackGpu> | undefined {
  if (sh.kind === 'packed') return sh.store.gpuWeights();
  const p = sh.mlp.packedGpu;
  const a = sh.mlp.expertActivation;
  if (p.gateUpBias || p.downBias || a.kind !== SHARED_EXPERT_ACTIVATION.kind || a.layout !== SHARED_EXPERT_ACTIVATION.layout) return undefined;
  return { gateUp: { kind: 'dense', w: p.gateUp }, down: { kind: 'dense', w: p.down } };
}

/**
 * The routed experts' weights `rw` with the layer's shared expert appended as expert E (appendExpertStacks, no copy)
 * for a forward of T tokens where MoE.decodeShared and the planner (useSharedExpertSlots) take that path and
 * the layer allows it: one shared expert (its width the routed experts'), stored as an expert stack in the routed
 * experts' format, no shared-expert gate, SiLU experts (the shared experts' activation) without biases, and the
 * decode GEMVs planned for the k + 1 slots; else undefined.
 */
function routedWithShared(layer: MoELayer, rw: ExpertWeightSet<ExpertStackGpu>, T: number): ExpertWeightSet<ExpertStackGpu> | undefined {
  const sh = layer.shared;
  if (!sh || layer.sharedExpertGate || layer.sharedExpertsDim !== layer.moeDim) return undefined;
  if (!useSharedExpertSlots(T, layer.numExpertsPerToken, layer.numExperts, 1, layer.decodeShared, layer.ctx!.adapterInfo.software)) return undefined;
  const act = layer.activation;
  if (act.kind !== SHARED_EXPERT_ACTIVATION.kind || act.layout !== SHARED_EXPERT_ACTIVATION.layout || layer.stacked.gateUpBias || layer.stacked.downBias) return undefined;
  const sw = sharedStacks(sh);
  if (!sw) return undefined;
  const gateUp = tryAppendExpertStacks(rw.gateUp, sw.gateUp, act.layout);
  const down = tryAppendExpertStacks(rw.down, sw.down, 'rows');
  if (!gateUp || !down) return undefined;
  const joined = { gateUp, down };
  return planGemms(layer, joined, T, layer.numExpertsPerToken + 1, layer.numExperts + 1, layer.expertKernels) === 'gemv' ? joined : undefined;
}

/**
 * Checks the largest buffers a GPU forward of T tokens allocates
 * (input/output [T, H], router logits [T, E], expert rows [T*k, max(I, H)],
 * shared expert [T, 2S]) against the device's buffer limits, before anything
 * is allocated or recorded: a LimitError naming the limit and the tensor.
 */
export function checkForwardLimits(layer: MoELayer, T: number): void {
  const ctx = layer.ctx!;
  const f32 = (n: number) => gpuByteLength('float32', n);
  const rows = T * layer.numExpertsPerToken;
  checkBufferSize(ctx, f32(T * layer.hiddenDim), `MoE.forward input/output [${T}, ${layer.hiddenDim}]`);
  checkBufferSize(ctx, f32(T * layer.numExperts), `MoE.forward router logits [${T}, ${layer.numExperts}]`);
  checkBufferSize(ctx, f32(rows * layer.moeDim), `MoE.forward expert activations [${rows}, ${layer.moeDim}]`);
  checkBufferSize(ctx, f32(rows * layer.hiddenDim), `MoE.forward expert outputs [${rows}, ${layer.hiddenDim}]`);
  if (layer.hasSharedExperts) checkBufferSize(ctx, f32(T * 2 * layer.sharedExpertsDim), `MoE.forward shared expert activations [${T}, ${2 * layer.sharedExpertsDim}]`);
}
