/**
 * The bench's independent float64 reference of an MoE layer
 * (docs/moe-semantics.md), for checking the forward each row times.
 *
 * It reads the weights as the timed layer stores them (raw bytes of each
 * tensor, in its storage format) and decodes them itself: bf16, f16, f32,
 * fp8 e4m3 with block scales, int4/int8 blocks with f16/f32 scales and
 * MXFP4. It shares no code with @webmoe/kernels-wgsl or @webmoe/moe: router,
 * top-k, expert activation, experts, shared experts and the combine are
 * computed here, per token, in float64.
 */
import type { ExpertActivation, RouterParams } from '@webmoe/kernels-wgsl';
import { expertMatrix, readAll, readExpert, readExpertBytes, storedExpertRows, type ExpertBytes, type ExpertMatrix, type StoredLayer } from './stored.js';

/** The layer's maths: router and expert activation (from the model spec, not from the layer). */
export interface ReferenceSpec {
  H: number;
  I: number;
  E: number;
  k: number;
  router: RouterParams;
  act: ExpertActivation;
  /** Llama 4: the routing weight scales the expert's input; outputs summed unweighted. */
  routerWeightFirst?: boolean;
}

// --- routing ---

/** Indices of the n largest values among `allowed` (ties: lower index first), descending. */
function topIdx(v: ArrayLike<number>, n: number, allowed?: (i: number) => boolean): number[] {
  const ids: number[] = [];
  for (let i = 0; i < v.length; i++) if (!allowed || allowed(i)) ids.push(i);
  ids.sort((a, b) => v[b] - v[a] || a - b);
  return ids.slice(0, n);
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** One token's routing: chosen experts in descending score order, their weights, and how clear the choice is. */
export interface TokenRoute {
  idx: number[];
  w: number[];
  /** The smallest score gap at a selection boundary (0: a tie). */
  margin: number;
}

/** The scores a router selects by, for one token's logits (float64). */
function selectionScores(p: RouterParams, logits: ArrayLike<number>, corr?: ArrayLike<number>): { score: Float64Array; raw: Float64Array; allowed?: (e: number) => boolean; groupMargin: number } {
  const E = logits.length;
  const raw = Float64Array.from(logits);
  switch (p.kind) {
    case 'softmax_topk':
    case 'softmax_grouped':
    case 'softmax_biased': {
      let m = -Infinity;
      for (const v of raw) m = Math.max(m, v);
      const ex = raw.map((v) => Math.exp(v - m));
      const z = ex.reduce((a, b) => a + b, 0);
      const score = ex.map((v) => v / z);
      // ERNIE 4.5: selection on the probability plus the correction bias, weights the probabilities
      if (p.kind === 'softmax_biased') return { score: score.map((v, e) => v + (corr ? corr[e] : 0)), raw: score, groupMargin: Infinity };
      const G = p.nGroup ?? 1;
      const tg = p.topkGroup ?? G;
      if (p.kind === 'softmax_topk' || tg >= G) return { score, raw, groupMargin: Infinity };
      // DeepSeek-V2's group-limited greedy: a group's score is its largest probability
      const per = E / G;
      const gs = new Float64Array(G);
      for (let g = 0; g < G; g++) gs[g] = Math.max(...score.subarray(g * per, (g + 1) * per));
      const kept = new Set(topIdx(gs, tg));
      const gSorted = Array.from(gs).sort((a, b) => b - a);
      return { score, raw, allowed: (e) => kept.has(Math.floor(e / per)), groupMargin: gSorted[tg - 1] - gSorted[tg] };
    }
    case 'sigmoid_grouped': {
      const s = raw.map(sigmoid);
      const c = s.map((v, e) => v + (corr ? corr[e] : 0));
      const G = p.nGroup ?? 1;
      const per = E / G;
      const gs = new Float64Array(G);
      for (let g = 0; g < G; g++) {
        const top = topIdx(c.subarray(g * per, (g + 1) * per), 2);
        gs[g] = top.reduce((a, i) => a + c[g * per + i], 0);
      }
      const keptGroups = topIdx(gs, p.topkGroup ?? G);
      const kept = new Set(keptGroups);
      const gSorted = Array.from(gs).sort((a, b) => b - a);
      const tg = p.topkGroup ?? G;
      const groupMargin = tg < G ? gSorted[tg - 1] - gSorted[tg] : Infinity;
      return { score: c, raw: s, allowed: (e) => kept.has(Math.floor(e / per)), groupMargin };
    }
    default:
      return { score: raw, raw, groupMargin: Infinity };
  }
}

/** The weights of the chosen experts `idx` (docs/moe-semantics.md "Routers"). */
function routeWeights(p: RouterParams, sel: ReturnType<typeof selectionScores>, idx: number[]): number[] {
  switch (p.kind) {
    case 'softmax_topk':
    case 'softmax_grouped':
    case 'softmax_biased': {
      // softmax_biased's selection scores carry the bias: its weights are the probabilities (raw)
      let w = idx.map((e) => (p.kind === 'softmax_biased' ? sel.raw[e] : sel.score[e]));
      if (p.normTopkProb) {
        const s = w.reduce((a, b) => a + b, 0);
        w = w.map((v) => v / (p.kind === 'softmax_biased' ? Math.max(s, 1e-12) : s));
      }
      return w.map((v) => v * (p.routedScalingFactor ?? 1));
    }
    case 'topk_softmax': {
      const m = Math.max(...idx.map((e) => sel.raw[e]));
      const ex = idx.map((e) => Math.exp(sel.raw[e] - m));
      const z = ex.reduce((a, b) => a + b, 0);
      return ex.map((v) => v / z);
    }
    case 'sigmoid_grouped': {
      let w = idx.map((e) => sel.raw[e]); // uncorrected sigmoid
      if (p.normTopkProb) {
        const s = w.reduce((a, b) => a + b, 0) + 1e-20;
        w = w.map((v) => v / s);
      }
      return w.map((v) => v * (p.routedScalingFactor ?? 1));
    }
    case 'sigmoid_topk':
      return idx.map((e) => sigmoid(sel.raw[e]));
    default: // raw_topk
      return idx.map((e) => sel.raw[e]);
  }
}

/**
 * Routes one token. With `prefer` (another implementation's choice for the
 * token), that choice is taken when it differs from this one only among
 * experts whose scores are within `tieEps` of the selection boundary (a tie
 * that rounding may break either way); any other difference keeps this
 * choice.
 */
export function routeToken64(p: RouterParams, k: number, logits: ArrayLike<number>, corr?: ArrayLike<number>, prefer?: readonly number[], tieEps = 0): TokenRoute & { tookPreferred: boolean } {
  const sel = selectionScores(p, logits, corr);
  const idx = topIdx(sel.score, k, sel.allowed);
  const rest = topIdx(sel.score, k + 1, sel.allowed);
  const margin = Math.min(sel.groupMargin, rest.length > k ? sel.score[idx[k - 1]] - sel.score[rest[k]] : Infinity);
  let chosen = idx;
  let tookPreferred = false;
  if (prefer && margin <= tieEps && !sameSet(prefer, idx)) {
    const kth = sel.score[idx[k - 1]];
    const valid = prefer.length === k && new Set(prefer).size === k && prefer.every((e) => e >= 0 && e < sel.score.length && sel.score[e] >= kth - tieEps);
    if (valid) {
      chosen = [...prefer];
      tookPreferred = true;
    }
  }
  return { idx: chosen, w: routeWeights(p, sel, chosen), margin, tookPreferred };
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((e) => b.includes(e));
}

/** The gated activation of one (g, u) pair. */
export function activation64(a: ExpertActivation, g: number, u: number): number {
  if (a.kind === 'silu') return g * sigmoid(g) * u;
  const L = a.limit ?? 7;
  if (a.kind === 'swiglu_limit') return Math.min(g * sigmoid(g), L) * Math.min(L, Math.max(-L, u));
  const gg = Math.min(g, L);
  const uu = Math.min(L, Math.max(-L, u));
  return (uu + 1) * gg * sigmoid((a.alpha ?? 1.702) * gg);
}

/** (gate row, up row) of output channel i of gate_up [2I, H] in a layout. */
function guRows(a: ExpertActivation, I: number, i: number): [number, number] {
  return a.layout === 'interleaved' ? [2 * i, 2 * i + 1] : [i, I + i];
}

/** Per-token expert MLP for several tokens at once: y[t] = down(act(gateUp x[t] + b)) + b. */
export function expertForward(gu: ExpertMatrix, dn: ExpertMatrix, act: ExpertActivation, xs: Float64Array[], I: number, H: number, guBias?: Float64Array, dnBias?: Float64Array): Float64Array[] {
  const row = new Float64Array(Math.max(gu.cols, dn.cols));
  const gus = xs.map(() => new Float64Array(2 * I));
  for (let r = 0; r < 2 * I; r++) {
    gu.row(r, row);
    for (let j = 0; j < xs.length; j++) {
      const x = xs[j];
      let acc = guBias ? guBias[r] : 0;
      for (let c = 0; c < H; c++) acc += x[c] * row[c];
      gus[j][r] = acc;
    }
  }
  const hs = gus.map((g) => {
    const h = new Float64Array(I);
    for (let i = 0; i < I; i++) {
      const [gr, ur] = guRows(act, I, i);
      h[i] = activation64(act, g[gr], g[ur]);
    }
    return h;
  });
  const ys = xs.map(() => new Float64Array(H));
  for (let r = 0; r < H; r++) {
    dn.row(r, row);
    for (let j = 0; j < hs.length; j++) {
      let acc = dnBias ? dnBias[r] : 0;
      for (let i = 0; i < I; i++) acc += hs[j][i] * row[i];
      ys[j][r] = acc;
    }
  }
  return ys;
}

/** One routed expert's work for {@link expertForward}: its bytes, the tokens it serves and its biases (plain data). */
export interface ExpertJob {
  gu: ExpertBytes;
  dn: ExpertBytes;
  act: ExpertActivation;
  xs: Float64Array[];
  I: number;
  H: number;
  guBias?: Float64Array;
  dnBias?: Float64Array;
}

/** Runs an expert job: the outputs [tokens][H]. */
export function runExpertJob(j: ExpertJob): Float64Array[] {
  return expertForward(expertMatrix(j.gu), expertMatrix(j.dn), j.act, j.xs, j.I, j.H, j.guBias, j.dnBias);
}

/** Runs expert jobs (each read lazily by its thunk) and returns their outputs in job order. */
export type ExpertRunner = (jobs: readonly (() => Promise<ExpertJob>)[]) => Promise<Float64Array[][]>;

/** The one-thread runner: one expert's bytes in memory at a time. */
export const runExpertsInline: ExpertRunner = async (jobs) => {
  const out: Float64Array[][] = [];
  for (const j of jobs) out.push(runExpertJob(await j()));
  return out;
};

/** The reference output of some tokens and what it covered. */
export interface ReferenceResult {
  /** [tokens.length, H] */
  out: Float64Array;
  /** The experts evaluated (union over the tokens). */
  experts: Set<number>;
  /** Tokens whose routing was a tie within rounding, where the other implementation's choice was taken. */
  ties: number;
  /** Tokens routed differently from `prefer` by more than a tie. */
  routingMismatches: number;
}

/**
 * The layer's output for tokens `tokens` of x (rows of [T, H] f32 values),
 * in float64. `prefer` (optional): the checked implementation's routing
 * [T, k], used only to break ties (see {@link routeToken64}).
 */
export async function referenceForward(spec: ReferenceSpec, layer: StoredLayer, x: Float32Array, tokens: readonly number[], prefer?: Uint32Array, tieEps = 1e-6, runExperts: ExpertRunner = runExpertsInline): Promise<ReferenceResult> {
  const { H, I, E, k } = spec;
  const router = await readAll(layer.router);
  if (router.length !== E * H) throw new Error(`reference: router [${layer.router.shape}] vs [${E}, ${H}]`);
  const rBias = layer.routerBias ? await readAll(layer.routerBias) : undefined;
  const corr = layer.correctionBias ? await readAll(layer.correctionBias) : undefined;
  const xs = tokens.map((t) => Float64Array.from(x.subarray(t * H, (t + 1) * H)));
  const out = new Float64Array(tokens.length * H);
  let ties = 0;
  let routingMismatches = 0;
  // routing
  const byExpert = new Map<number, { j: number; w: number }[]>();
  tokens.forEach((t, j) => {
    const logits = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let acc = rBias ? rBias[e] : 0;
      for (let c = 0; c < H; c++) acc += xs[j][c] * router[e * H + c];
      logits[e] = acc;
    }
    const pref = prefer ? Array.from(prefer.subarray(t * k, (t + 1) * k)) : undefined;
    const r = routeToken64(spec.router, k, logits, corr, pref, tieEps);
    if (r.tookPreferred) ties++;
    else if (pref && !sameSet(pref, r.idx)) routingMismatches++;
    r.idx.forEach((e, s) => {
      if (!byExpert.has(e)) byExpert.set(e, []);
      byExpert.get(e)!.push({ j, w: r.w[s] });
    });
  });
  // routed experts, one expert's bytes at a time
  const guBias = layer.gateUpBias ? await readAll(layer.gateUpBias) : undefined;
  const dnBias = layer.downBias ? await readAll(layer.downBias) : undefined;
  // experts run on `runExperts` (worker threads when the bench has them); the sum below keeps expert order
  const jobs = [...byExpert.entries()].sort((a, b) => a[0] - b[0]).map(([e, uses]) => ({
    e,
    uses,
    job: async (): Promise<ExpertJob> => ({
      gu: await readExpertBytes(layer.gateUp, e, 2 * I, H),
      dn: await readExpertBytes(layer.down, e, H, I),
      act: spec.act, xs: uses.map((u) => (spec.routerWeightFirst ? xs[u.j].map((v) => v * u.w) : xs[u.j])), I, H,
      guBias: guBias?.slice(e * 2 * I, (e + 1) * 2 * I),
      dnBias: dnBias?.slice(e * H, (e + 1) * H),
    }),
  }));
  const results = await runExperts(jobs.map((j) => j.job));
  jobs.forEach(({ uses }, n) => {
    const ys = results[n];
    uses.forEach((u, m) => {
      const w = spec.routerWeightFirst ? 1 : u.w;
      for (let c = 0; c < H; c++) out[u.j * H + c] += w * ys[m][c];
    });
  });
  // shared experts: a plain SiLU MLP on every token
  if (layer.shared) {
    const S = storedExpertRows(layer.shared.gateUp) / 2;
    const gu = await readExpert(layer.shared.gateUp, 0, 2 * S, H);
    const dn = await readExpert(layer.shared.down, 0, H, S);
    const ys = expertForward(gu, dn, { kind: 'silu', layout: 'concat' }, xs, S, H);
    ys.forEach((y, j) => {
      for (let c = 0; c < H; c++) out[j * H + c] += y[c];
    });
  }
  return { out, experts: new Set(byExpert.keys()), ties, routingMismatches };
}
