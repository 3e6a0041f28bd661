// A plain, independent TypeScript implementation of docs/moe-semantics.md, one token at a time.
// It shares no code with @webmoe/moe or @webmoe/kernels-wgsl.

export type Router = 'raw_topk' | 'softmax_topk' | 'topk_softmax' | 'sigmoid_grouped' | 'sigmoid_topk' | 'softmax_grouped' | 'softmax_biased';

export interface RefConfig {
  H: number;
  E: number;
  k: number;
  I: number;
  router: Router;
  normTopkProb?: boolean;
  nGroup?: number;
  topkGroup?: number;
  routedScalingFactor?: number;
  applyRouterWeightFirst?: boolean;
  act: { kind: 'silu' } | { kind: 'swiglu_limit'; limit: number } | { kind: 'swigluoai'; limit: number; alpha: number };
  interleaved?: boolean;
  sharedDim?: number;
  sharedGate?: boolean;
}

export interface RefWeights {
  gate: Float32Array; // [E, H]
  gateBias?: Float32Array; // [E]
  corr?: Float32Array; // [E]
  gateUp: Float32Array; // [E, 2I, H]
  down: Float32Array; // [E, H, I]
  gateUpBias?: Float32Array; // [E, 2I]
  downBias?: Float32Array; // [E, H]
  sGate?: Float32Array; // [S, H]
  sUp?: Float32Array; // [S, H]
  sDown?: Float32Array; // [H, S]
  sGateW?: Float32Array; // [1, H]
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const silu = (v: number) => v * sigmoid(v);

/** Indices of the n largest values (ties: lower index first), in descending order. */
function topIdx(vals: ArrayLike<number>, n: number, allowed?: (i: number) => boolean): number[] {
  const ids: number[] = [];
  for (let i = 0; i < vals.length; i++) if (!allowed || allowed(i)) ids.push(i);
  ids.sort((a, b) => (vals[b] !== vals[a] ? vals[b] - vals[a] : a - b));
  return ids.slice(0, n);
}

/** The smallest gap at a top-n boundary (how safe the selection is from rounding). */
function gap(vals: ArrayLike<number>, n: number, allowed?: (i: number) => boolean): number {
  const s: number[] = [];
  for (let i = 0; i < vals.length; i++) if (!allowed || allowed(i)) s.push(vals[i]);
  s.sort((a, b) => b - a);
  return n < s.length ? s[n - 1] - s[n] : Infinity;
}

/** The softmax of logits (max subtracted), in float64. */
function softmax(logits: Float64Array): Float64Array {
  const m = Math.max(...logits);
  const p = logits.map((l) => Math.exp(l - m));
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / z);
}

/** Routing of one token: chosen experts, their weights and the selection margin. */
export function route(c: RefConfig, w: RefWeights, x: Float32Array, t: number): { idx: number[]; wts: number[]; margin: number } {
  const { H, E, k } = c;
  const logits = new Float64Array(E);
  for (let e = 0; e < E; e++) {
    let s = w.gateBias ? w.gateBias[e] : 0;
    for (let h = 0; h < H; h++) s += x[t * H + h] * w.gate[e * H + h];
    logits[e] = s;
  }
  if (c.router === 'softmax_biased') {
    // ERNIE 4.5 (transformers' Ernie4_5_MoeSparseMoeBlock): softmax probabilities p; top-k of p + correction bias;
    // weights p, divided by max(sum, 1e-12) when renormalised
    const p = softmax(logits);
    const score = p.map((v, e) => v + (w.corr ? w.corr[e] : 0));
    const idx = topIdx(score, k);
    let wts = idx.map((e) => p[e]);
    if (c.normTopkProb) {
      const s = wts.reduce((a, b) => a + b, 0);
      wts = wts.map((v) => v / Math.max(s, 1e-12));
    }
    return { idx, wts, margin: gap(score, k) };
  }
  if (c.router === 'softmax_grouped') {
    // DeepSeek-V2 (transformers' DeepseekV2Moe): softmax probabilities p; group score = max p in the group; the
    // topkGroup best groups kept; top-k of p inside them; weights p (renormalised if asked) times the scaling factor
    const p = softmax(logits);
    const G = c.nGroup ?? 1;
    const per = E / G;
    const gs = Array.from({ length: G }, (_, g) => Math.max(...p.slice(g * per, (g + 1) * per)));
    const keptG = new Set(topIdx(gs, c.topkGroup ?? G));
    const allowed = (e: number) => keptG.has(Math.floor(e / per));
    const idx = topIdx(p, k, allowed);
    let wts = idx.map((e) => p[e]);
    if (c.normTopkProb) {
      const s = wts.reduce((a, b) => a + b, 0);
      wts = wts.map((v) => v / s);
    }
    wts = wts.map((v) => v * (c.routedScalingFactor ?? 1));
    return { idx, wts, margin: Math.min((c.topkGroup ?? G) < G ? gap(gs, c.topkGroup!) : Infinity, gap(p, k, allowed)) };
  }
  if (c.router === 'softmax_topk') {
    const p = softmax(logits);
    const idx = topIdx(p, k);
    let wts = idx.map((e) => p[e]);
    if (c.normTopkProb) {
      const s = wts.reduce((a, b) => a + b, 0);
      wts = wts.map((v) => v / s);
    }
    return { idx, wts, margin: gap(p, k) };
  }
  if (c.router === 'sigmoid_grouped') {
    const s = logits.map(sigmoid);
    const corr = s.map((v, e) => v + (w.corr ? w.corr[e] : 0));
    const G = c.nGroup!;
    const per = E / G;
    const gs = new Float64Array(G);
    for (let g = 0; g < G; g++) {
      const vals = Array.from(corr.slice(g * per, (g + 1) * per)).sort((a, b) => b - a);
      gs[g] = vals[0] + (per > 1 ? vals[1] : 0);
    }
    const keptG = new Set(topIdx(gs, c.topkGroup!));
    const allowed = (e: number) => keptG.has(Math.floor(e / per));
    const idx = topIdx(corr, k, allowed);
    let wts = idx.map((e) => s[e]);
    if (c.normTopkProb) {
      const z = wts.reduce((a, b) => a + b, 0) + 1e-20;
      wts = wts.map((v) => v / z);
    }
    wts = wts.map((v) => v * (c.routedScalingFactor ?? 1));
    return { idx, wts, margin: Math.min(gap(gs, c.topkGroup!), gap(corr, k, allowed)) };
  }
  const idx = topIdx(logits, k);
  const margin = gap(logits, k);
  if (c.router === 'raw_topk') return { idx, wts: idx.map((e) => logits[e]), margin };
  if (c.router === 'sigmoid_topk') return { idx, wts: idx.map((e) => sigmoid(logits[e])), margin };
  // topk_softmax
  const m = Math.max(...idx.map((e) => logits[e]));
  const ex = idx.map((e) => Math.exp(logits[e] - m));
  const z = ex.reduce((a, b) => a + b, 0);
  return { idx, wts: ex.map((v) => v / z), margin };
}

function act(c: RefConfig, g: number, u: number): number {
  const a = c.act;
  if (a.kind === 'silu') return silu(g) * u;
  if (a.kind === 'swiglu_limit') return Math.min(silu(g), a.limit) * Math.min(Math.max(u, -a.limit), a.limit);
  const gg = Math.min(g, a.limit);
  const uu = Math.min(Math.max(u, -a.limit), a.limit);
  return (uu + 1) * gg * sigmoid(a.alpha * gg);
}

/** The MoE block for x [T, H]. */
export function referenceMoE(c: RefConfig, w: RefWeights, x: Float32Array, T: number): Float32Array {
  const { H, I } = c;
  const out = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const { idx, wts } = route(c, w, x, t);
    const acc = new Float64Array(H);
    idx.forEach((e, j) => {
      const scale = c.applyRouterWeightFirst ? wts[j] : 1;
      const hAct = new Float64Array(I);
      for (let i = 0; i < I; i++) {
        const gr = c.interleaved ? 2 * i : i;
        const ur = c.interleaved ? 2 * i + 1 : I + i;
        let g = w.gateUpBias ? w.gateUpBias[e * 2 * I + gr] : 0;
        let u = w.gateUpBias ? w.gateUpBias[e * 2 * I + ur] : 0;
        for (let h = 0; h < H; h++) {
          const xv = x[t * H + h] * scale;
          g += xv * w.gateUp[(e * 2 * I + gr) * H + h];
          u += xv * w.gateUp[(e * 2 * I + ur) * H + h];
        }
        hAct[i] = act(c, g, u);
      }
      for (let h = 0; h < H; h++) {
        let y = w.downBias ? w.downBias[e * H + h] : 0;
        for (let i = 0; i < I; i++) y += hAct[i] * w.down[(e * H + h) * I + i];
        acc[h] += c.applyRouterWeightFirst ? y : wts[j] * y;
      }
    });
    if (c.sharedDim) {
      const S = c.sharedDim;
      const hs = new Float64Array(S);
      for (let i = 0; i < S; i++) {
        let g = 0;
        let u = 0;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * w.sGate![i * H + h];
          u += x[t * H + h] * w.sUp![i * H + h];
        }
        hs[i] = silu(g) * u;
      }
      let sg = 1;
      if (c.sharedGate) {
        let l = 0;
        for (let h = 0; h < H; h++) l += x[t * H + h] * w.sGateW![h];
        sg = sigmoid(l);
      }
      for (let h = 0; h < H; h++) {
        let y = 0;
        for (let i = 0; i < S; i++) y += hs[i] * w.sDown![h * S + i];
        acc[h] += sg * y;
      }
    }
    for (let h = 0; h < H; h++) out[t * H + h] = acc[h];
  }
  return out;
}
