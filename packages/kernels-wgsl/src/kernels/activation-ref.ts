/**
 * The gated activation of the experts' gate_up outputs on the host, written
 * once: the grouped GEMMs' references (grouped-gemm.ts) and nn's MLP on the
 * host use it (docs/moe-semantics.md, "Activations").
 */
import type { ExpertActivation } from './moe-types.js';

/** A gated activation with its parameters resolved (`limit` and `alpha` unused where the kind has none). @example `{ kind: 'swigluoai', limit: 7, alpha: 1.702 }` */
export interface GatedActivationParams {
  kind: ExpertActivation['kind'];
  limit: number;
  alpha: number;
}

/**
 * `h = act(g, u)` for one (gate, up) pair, in float64 (callers round to f32):
 * silu(g) * u; swiglu_limit: min(silu(g), L) * clamp(u, -L, L); swigluoai:
 * (clamp(u, -L, L) + 1) * min(g, L) * sigmoid(alpha * min(g, L)).
 * @example `gatedActivationRef({ kind: 'silu', limit: 0, alpha: 0 }, 1, 2) // silu(1) * 2`
 */
export function gatedActivationRef(a: GatedActivationParams, g: number, u: number): number {
  const silu = (z: number) => z / (1 + Math.exp(-z));
  switch (a.kind) {
    case 'silu':
      return silu(g) * u;
    case 'swiglu_limit':
      return Math.min(silu(g), a.limit) * Math.min(a.limit, Math.max(-a.limit, u));
    case 'swigluoai': {
      const gc = Math.min(g, a.limit);
      const uc = Math.min(a.limit, Math.max(-a.limit, u));
      return (uc + 1) * gc * (1 / (1 + Math.exp(-a.alpha * gc)));
    }
  }
}
