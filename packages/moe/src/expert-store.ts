/**
 * The one expert-store type of a MoE layer: the stacked expert weights as
 * stored, discriminated by `format` ('dense' {@link StackedExperts}, or a
 * quantized format: {@link QuantizedExperts}), and the shared experts as
 * stored (a dense MLP, or packed in the routed experts' format).
 */
import type { MLP } from '@webmoe/nn';
import type { QuantizedExperts } from './quant-experts.js';
import type { StackedExperts } from './stacked-experts.js';

/**
 * Stacked expert weights as stored: `format === 'dense'` is a
 * {@link StackedExperts} (f32/bf16/f16), any other format a
 * {@link QuantizedExperts} (packed codes + scales). Both have `gateUpProj`,
 * `downProj`, `gateUpBias`, `downBias`, `gateUpLayout`, `hostWeights()`,
 * `gpuWeights()`, `stackShapes()` and `setGpuStacks()`.
 * @example `const s = moe.stacked; if (s.format !== 'dense') s.gateUpScale`
 */
export type ExpertStore = StackedExperts | QuantizedExperts;

/**
 * A layer's shared experts as stored (state-dict names `shared_experts.*`
 * either way): `kind: 'mlp'`, a dense MLP; `kind: 'packed'`, a
 * {@link QuantizedExperts} with E = 1 in the routed experts' format, run
 * through the expert GEMMs over a dense grouping.
 * @example `moe.shared?.kind === 'packed' ? moe.shared.store.gpuWeights() : moe.shared?.mlp.packedGpu`
 */
export type SharedExperts = { readonly kind: 'mlp'; readonly mlp: MLP } | { readonly kind: 'packed'; readonly store: QuantizedExperts };
