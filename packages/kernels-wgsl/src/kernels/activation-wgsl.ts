/**
 * The gated activations of the expert GEMMs as one WGSL snippet: `fn act(g, up) -> f32` of a gate value and an
 * up value (the limit and alpha read from the kernel's uniforms `u.limit`, `u.alpha`), as activationRef
 * (activation-ref.ts). 'none' (down projections): no function. Written once for every kernel that fuses the
 * activation: the decode GEMVs, the tiled grouped GEMMs and the fast (register-blocked and subgroup-matrix) GEMMs.
 */
import type { ExpertActivation } from './moe-types.js';

/** WGSL `fn act(g: f32, up: f32) -> f32` of an activation kind; '' for 'none'. @example `expertActWgsl('silu')` */
export function expertActWgsl(kind: ExpertActivation['kind'] | 'none'): string {
  switch (kind) {
    case 'silu':
      return `fn act(g: f32, up: f32) -> f32 { return g / (1.0 + exp(-g)) * up; }`;
    case 'swiglu_limit':
      return `fn act(g: f32, up: f32) -> f32 { return min(g / (1.0 + exp(-g)), u.limit) * clamp(up, -u.limit, u.limit); }`;
    case 'swigluoai':
      return `fn act(g0: f32, u0: f32) -> f32 { let g = min(g0, u.limit); let up = clamp(u0, -u.limit, u.limit); return (up + 1.0) * g / (1.0 + exp(-u.alpha * g)); }`;
    case 'none':
      return '';
  }
}
