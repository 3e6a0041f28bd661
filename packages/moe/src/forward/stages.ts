/**
 * The MoE forward, written once: route -> group -> shared experts -> routed
 * experts -> combine (docs/moe-semantics.md). Each stage has a GPU
 * implementation (gpu.ts: records kernels into a Recorder) and a host one
 * (host.ts: the TypeScript references) behind {@link MoEStages};
 * {@link runMoEForward} chains them. `MoE.record`, `MoE.forwardHost`, the
 * expert- and tensor-parallel `ShardedMoE` and the bench run these stages;
 * which kernels a stage records is the planner's choice
 * (`@webmoe/kernels-wgsl` plan.ts).
 */
import type { ExpertActivation } from '@webmoe/kernels-wgsl';

/**
 * The steps of a forward, in the order they record: the stages, with the
 * routed experts split into their two GEMMs. What `GpuStageRun.onStep`
 * reports (a per-step profile).
 * @example `FORWARD_STEPS.map((s) => times[s])`
 */
export const FORWARD_STEPS = ['route', 'group', 'shared', 'gate_up', 'down', 'combine'] as const;
/** One step of the forward (see {@link FORWARD_STEPS}). */
export type ForwardStep = (typeof FORWARD_STEPS)[number];

/** The shared experts' output [T, H] and, with a shared-expert gate (Qwen2-MoE), its logits [T, 1]. */
export interface SharedExpertsOut<X> {
  shared: X;
  gateLogit: X | undefined;
}

/**
 * One implementation of the forward's stages over tensors `X` (GpuTensor or
 * Float32Array), with its routing `R` ({ idx, weights } [T, k]) and grouping
 * `G` (the (token, slot) pairs in expert order).
 */
export interface MoEStages<X, R extends { weights: unknown }, G> {
  /** Router linear and router: expert ids and weights [T, k] for x [T, H]. */
  route(x: X): R;
  /** Groups the (token, slot) pairs by expert. */
  group(r: R): G;
  /** The routed experts (gate_up, activation, down) on x's rows in grouped order: [T*k, H]. `rowScale` [T, k] scales each row's input (router weight first). */
  routedExperts(x: X, g: G, rowScale: R['weights'] | undefined): X;
  /** The shared experts on x [T, H], or undefined without them. */
  sharedExperts(x: X): SharedExpertsOut<X> | undefined;
  /** out[t] = sum_j w[t, j] * y[row of (t, j)] (+ sigmoid(gate) * shared[t]); `weights` null sums unweighted. */
  combine(y: X, g: G, weights: R['weights'] | null, shared: SharedExpertsOut<X> | undefined): X;
  /**
   * Optional: the routed experts and the combine in one step (routedExperts then combine, with their arguments),
   * where the implementation takes that path for this grouping (the GPU's combined down GEMV); undefined: it does
   * not, and the two stages run.
   */
  routedAndCombined?(x: X, g: G, routing: R, rowScale: R['weights'] | undefined, weights: R['weights'] | null, shared: SharedExpertsOut<X> | undefined): X | undefined;
}

/** The activation of shared experts run through the expert GEMMs (quantized shared experts): SiLU, gate and up rows concatenated. */
export const SHARED_EXPERT_ACTIVATION: ExpertActivation = { kind: 'silu', layout: 'concat' };

/**
 * The layer's forward over `stages`: route, group, shared experts, routed
 * experts (with `applyRouterWeightFirst` the router weights scale their
 * inputs and the combine sums unweighted), combine; or the routed experts and
 * the combine in one step where the stages take it (`routedAndCombined`).
 * @example `const y = runMoEForward(moe, hostStages(moe), x)`
 */
export function runMoEForward<X, R extends { weights: unknown }, G>(layer: { applyRouterWeightFirst: boolean }, stages: MoEStages<X, R, G>, x: X): X {
  const routing = stages.route(x);
  const g = stages.group(routing);
  const first = layer.applyRouterWeightFirst;
  const rowScale = first ? routing.weights : undefined;
  const weights = first ? null : routing.weights;
  const shared = stages.sharedExperts(x);
  const out = stages.routedAndCombined?.(x, g, routing, rowScale, weights, shared);
  return out !== undefined ? out : stages.combine(stages.routedExperts(x, g, rowScale), g, weights, shared);
}
