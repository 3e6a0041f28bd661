/** Test helpers of the router tests: random logits with deliberate ties and separated decisions, and the router kinds tested. */
import type { RouterKind, RouterParams } from '@webmoe/kernels-wgsl';
import { randomArray } from '@webmoe/kernels-wgsl/testing';

export const sig = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Random logits [T,E]. Every third token has exact ties: its logits are
 * rounded to a few levels (or all equal), so the lower-index rule decides.
 * For sigmoid_grouped and softmax_biased (which select on f32 sigmoids or
 * probabilities plus a bias), tokens without deliberate ties are resampled
 * until the decisions (group cut, expert order among the top k+1) have
 * margins > 1e-5 in exact arithmetic (softmax_biased: relative to the
 * score), so f32 exp differences cannot flip them.
 */
export function makeLogits(r: () => number, T: number, p: RouterParams, cb?: Float32Array): Float32Array {
  const E = p.numExperts;
  const out = new Float32Array(T * E);
  for (let t = 0; t < T; t++) {
    const tie = t % 3 === 1;
    for (let attempt = 0; ; attempt++) {
      let l = randomArray(r, E, -4, 4);
      if (tie) {
        const allEqual = t % 6 === 1;
        l = l.map((x) => (allEqual ? 0.25 : Math.round(x) / 2));
      }
      if ((p.kind !== 'sigmoid_grouped' && p.kind !== 'softmax_biased') || tie || margins(l, p, cb)) {
        out.set(l, t * E);
        break;
      }
      if (attempt > 200) throw new Error('could not draw separated logits');
    }
  }
  return out;
}

function margins(l: Float32Array, p: RouterParams, cb?: Float32Array): boolean {
  const E = p.numExperts;
  const nG = p.nGroup ?? 1;
  const kG = p.topkGroup ?? nG;
  const gsize = E / nG;
  // the selection scores: sigmoid (or the softmax probability) plus the correction bias
  const mx = Math.max(...l);
  const z = Array.from(l).reduce((a, x) => a + Math.exp(x - mx), 0);
  const c = Array.from(l, (x, e) => (p.kind === 'softmax_biased' ? Math.exp(x - mx) / z : sig(x)) + (cb ? cb[e] : 0));
  const gs = [];
  for (let g = 0; g < nG; g++) {
    const s = c.slice(g * gsize, (g + 1) * gsize).sort((a, b) => b - a);
    gs.push(gsize >= 2 ? s[0] + s[1] : s[0]);
  }
  const gsSorted = [...gs].sort((a, b) => b - a);
  if (kG < nG && gsSorted[kG - 1] - gsSorted[kG] < 1e-5) return false;
  const kept = new Set(gs.map((v, g) => [v, g] as const).sort((a, b) => b[0] - a[0]).slice(0, kG).map((x) => x[1]));
  const el = c.filter((_, e) => kept.has(Math.floor(e / gsize))).sort((a, b) => b - a);
  // softmax_biased without a bias ranks probabilities of order 1/E: a margin relative to the score (f32 exp and sum)
  const tol = (v: number) => (p.kind === 'softmax_biased' ? 1e-5 * Math.abs(v) : 1e-5);
  for (let j = 0; j < Math.min(p.topK + 1, el.length) - 1; j++) if (el[j] - el[j + 1] < tol(el[j])) return false;
  return true;
}

/** The router kinds (with normalisation, scaling and correction bias) every router test runs. */
export const KINDS: { kind: RouterKind; norm: boolean; scale?: number; cb?: boolean }[] = [
  { kind: 'raw_topk', norm: false },
  { kind: 'softmax_topk', norm: false },
  { kind: 'softmax_topk', norm: true },
  { kind: 'topk_softmax', norm: false },
  { kind: 'sigmoid_topk', norm: false },
  { kind: 'sigmoid_grouped', norm: true, scale: 2.5, cb: true },
  { kind: 'sigmoid_grouped', norm: false, scale: 1, cb: true },
  { kind: 'sigmoid_grouped', norm: true, cb: false },
  // DeepSeek-V2's group-limited greedy (routed_scaling_factor 16, no renormalisation) and a renormalised variant
  { kind: 'softmax_grouped', norm: false, scale: 16 },
  { kind: 'softmax_grouped', norm: true },
  // ERNIE 4.5: probabilities + correction bias, renormalised; and without either
  { kind: 'softmax_biased', norm: true, cb: true },
  { kind: 'softmax_biased', norm: false, scale: 2, cb: false },
];

/** Whether a router kind selects inside groups (its RouterParams take nGroup and topkGroup). */
export function isGroupedKind(kind: RouterKind): boolean {
  return kind === 'sigmoid_grouped' || kind === 'softmax_grouped';
}
