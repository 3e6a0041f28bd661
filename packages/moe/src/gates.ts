import { ValueError, type DType } from '@webmoe/tensor';
import type { RouterKind, RouterParams } from '@webmoe/kernels-wgsl';
import { Module, type ModuleOptions, type Parameter } from '@webmoe/nn';

/** Options of the gate (router) classes. @example `{ hiddenDim: 64, numExperts: 16, numExpertsPerToken: 4, nGroup: 4, topkGroup: 2 }` */
export interface GateOptions extends ModuleOptions {
  /** H */
  hiddenDim: number;
  /** E */
  numExperts: number;
  /** k */
  numExpertsPerToken: number;
  /** A bias on the router linear (GPT-OSS). */
  hasBias?: boolean;
  /** Renormalise the k weights to sum 1 (softmax top-k, the grouped routers). */
  normTopkProb?: boolean;
  /** Grouped routers (DeepSeek-V2 / V3): number of expert groups (divides E). */
  nGroup?: number;
  /** Grouped routers: groups kept per token. */
  topkGroup?: number;
  /** Grouped routers: multiplies the final weights (DeepSeek-V2 / V3: `routed_scaling_factor`). */
  routedScalingFactor?: number;
}

/** A gate class, as `MoE`'s `gateCls` takes it. @example `const cls: GateClass = SoftmaxTopKGate;` */
export type GateClass = new (opts: GateOptions) => MoEGate;

/**
 * MAX's `MoEGate`: router logits `x @ W^T (+ b)` with `W` [E, H], then the
 * top-k of the raw logits; the weights are those logits. Subclasses change
 * the scoring (see the table in docs/moe-semantics.md).
 *
 * @example
 * ```ts
 * const gate = new MoEGate({ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2 });
 * gate.routerParams() // { kind: 'raw_topk', numExperts: 8, topK: 2, normTopkProb: false }
 * ```
 */
export class MoEGate extends Module {
  readonly hiddenDim: number;
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly normTopkProb: boolean;
  /** Router weight [E, H] (the module's dtype). */
  readonly weight: Parameter;
  /** Router bias [E] when `hasBias`. */
  readonly bias: Parameter | undefined;
  /** Selection bias [E] (float32) of the sigmoid-grouped router. */
  readonly eScoreCorrectionBias: Parameter | undefined;

  constructor(opts: GateOptions) {
    super(opts);
    for (const k of ['hiddenDim', 'numExperts', 'numExpertsPerToken'] as const) {
      if (!Number.isInteger(opts[k]) || opts[k] <= 0) throw new ValueError(`gate ${k}`, 'a positive integer', opts[k]);
    }
    if (opts.numExpertsPerToken > opts.numExperts) throw new ValueError('gate numExpertsPerToken', `at most numExperts (${opts.numExperts})`, opts.numExpertsPerToken);
    this.hiddenDim = opts.hiddenDim;
    this.numExperts = opts.numExperts;
    this.numExpertsPerToken = opts.numExpertsPerToken;
    this.normTopkProb = opts.normTopkProb ?? this.defaultNormTopkProb();
    this.weight = this.addParameter('weight', [opts.numExperts, opts.hiddenDim]);
    this.bias = opts.hasBias ?? this.defaultHasBias() ? this.addParameter('bias', [opts.numExperts]) : undefined;
    this.eScoreCorrectionBias = this.usesCorrectionBias() ? this.addParameter('e_score_correction_bias', [opts.numExperts], 'float32' as DType) : undefined;
  }

  /** The router kind of the kernels. */
  get kind(): RouterKind {
    return 'raw_topk';
  }
  protected defaultNormTopkProb(): boolean {
    return false;
  }
  protected defaultHasBias(): boolean {
    return false;
  }
  protected usesCorrectionBias(): boolean {
    return false;
  }

  /** The parameters of `routerGpu` / `routerRef`. */
  routerParams(): RouterParams {
    return { kind: this.kind, numExperts: this.numExperts, topK: this.numExpertsPerToken, normTopkProb: this.normTopkProb };
  }
}

/**
 * Softmax top-k (Mixtral, Qwen2/3-MoE, OLMoE): softmax over all E logits in
 * f32, the k largest probabilities; renormalised to sum 1 when
 * `normTopkProb` (Mixtral always).
 *
 * @example
 * ```ts
 * new SoftmaxTopKGate({ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2, normTopkProb: true })
 * ```
 */
export class SoftmaxTopKGate extends MoEGate {
  override get kind(): RouterKind {
    return 'softmax_topk';
  }
}

/**
 * Top-k of the logits, then a softmax over the k chosen (GPT-OSS, Granite).
 * Has a router bias by default (GPT-OSS `router.bias`).
 *
 * @example
 * ```ts
 * new TopKSoftmaxGate({ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 2 }).bias?.shape // [8]
 * ```
 */
export class TopKSoftmaxGate extends MoEGate {
  override get kind(): RouterKind {
    return 'topk_softmax';
  }
  protected override defaultHasBias(): boolean {
    return true;
  }
}

/**
 * The routers that select inside the best `topkGroup` of `nGroup` groups of
 * experts and multiply the weights by `routedScalingFactor` (DeepSeek-V2 and
 * V3): the group options, checked once.
 */
export abstract class GroupedGate extends MoEGate {
  readonly nGroup: number;
  readonly topkGroup: number;
  readonly routedScalingFactor: number;
  constructor(opts: GateOptions) {
    super(opts);
    this.nGroup = opts.nGroup ?? 1;
    this.topkGroup = opts.topkGroup ?? this.nGroup;
    this.routedScalingFactor = opts.routedScalingFactor ?? 1;
    if (!Number.isInteger(this.nGroup) || this.nGroup <= 0 || opts.numExperts % this.nGroup !== 0) {
      throw new ValueError('gate nGroup', `a positive divisor of numExperts (${opts.numExperts})`, this.nGroup);
    }
    if (!Number.isInteger(this.topkGroup) || this.topkGroup <= 0 || this.topkGroup > this.nGroup) {
      throw new ValueError('gate topkGroup', `an integer in 1..nGroup (${this.nGroup})`, this.topkGroup);
    }
    if (this.topkGroup * (opts.numExperts / this.nGroup) < opts.numExpertsPerToken) {
      throw new ValueError('gate topkGroup', `enough groups to hold numExpertsPerToken (${opts.numExpertsPerToken}) experts`, this.topkGroup);
    }
    if (!Number.isFinite(this.routedScalingFactor)) throw new ValueError('gate routedScalingFactor', 'a finite number', this.routedScalingFactor);
  }
  override routerParams(): RouterParams {
    return { ...super.routerParams(), nGroup: this.nGroup, topkGroup: this.topkGroup, routedScalingFactor: this.routedScalingFactor };
  }
}

/**
 * DeepSeek-V3's no-aux router: `s = sigmoid(logits)`, selection on
 * `s + e_score_correction_bias` within the best `topkGroup` of `nGroup`
 * groups (group score = sum of its top 2), weights = `s` of the chosen,
 * renormalised when `normTopkProb`, times `routedScalingFactor`.
 *
 * @example
 * ```ts
 * new DeepseekV3Gate({ hiddenDim: 64, numExperts: 16, numExpertsPerToken: 4, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5, normTopkProb: true })
 * ```
 */
export class DeepseekV3Gate extends GroupedGate {
  override get kind(): RouterKind {
    return 'sigmoid_grouped';
  }
  protected override usesCorrectionBias(): boolean {
    return true;
  }
}

/**
 * DeepSeek-V2's router (V2, V2-Lite, V2.5, Coder-V2): `p = softmax(logits)`
 * over all experts; `topk_method` greedy is the top-k of `p` (one group),
 * group_limited_greedy keeps the `topkGroup` of `nGroup` groups with the
 * largest single `p` and takes the top-k inside them; weights = `p` of the
 * chosen (renormalised when `normTopkProb`), times `routedScalingFactor`.
 *
 * @example
 * ```ts
 * new DeepseekV2Gate({ hiddenDim: 64, numExperts: 16, numExpertsPerToken: 6, nGroup: 4, topkGroup: 2, routedScalingFactor: 16 })
 * ```
 */
export class DeepseekV2Gate extends GroupedGate {
  override get kind(): RouterKind {
    return 'softmax_grouped';
  }
}

/**
 * ERNIE 4.5's router: `p = softmax(logits)` over all experts, the top-k of
 * `p + e_score_correction_bias`, weights `p` of the chosen, renormalised
 * (divided by at least 1e-12) unless `normTopkProb` is false.
 *
 * @example
 * ```ts
 * new Ernie45Gate({ hiddenDim: 64, numExperts: 16, numExpertsPerToken: 6 })
 * ```
 */
export class Ernie45Gate extends MoEGate {
  override get kind(): RouterKind {
    return 'softmax_biased';
  }
  protected override defaultNormTopkProb(): boolean {
    return true;
  }
  protected override usesCorrectionBias(): boolean {
    return true;
  }
}

/**
 * Llama 4's router: top-k of the logits, weight `sigmoid(logit)`, applied to
 * the expert input (use with `applyRouterWeightFirst`).
 *
 * @example
 * ```ts
 * new Llama4Gate({ hiddenDim: 64, numExperts: 8, numExpertsPerToken: 1 })
 * ```
 */
export class Llama4Gate extends MoEGate {
  override get kind(): RouterKind {
    return 'sigmoid_topk';
  }
}
