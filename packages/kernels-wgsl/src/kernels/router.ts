/**
 * The MoE routers (docs/moe-semantics.md): logits [T,E] -> idx [T,k],
 * weights [T,k]. One workgroup per token (grid folded for large T).
 *
 * Selection is deterministic: descending score, ties to the lower expert
 * index; slots are in descending selection order. The selection score is
 * the logit itself for every kind except sigmoid_grouped (where it is
 * sigmoid(logit) + correction bias) and softmax_biased (the probability +
 * correction bias, once the softmax's max and sum are known): softmax and sigmoid are monotonic, so
 * ranking by the logit gives the same experts and order as ranking by the
 * probabilities, without ties created by rounding (softmax_grouped's group
 * score, its largest probability, ranks as its largest logit).
 *
 * Over ~400 lines on purpose: one kernel's three faces, the WGSL (shared with route_decode), the op with its
 * checks, and the TypeScript reference the tests hold it to.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import type { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, foldWorkgroups, uniformFields, type BindingDecl, type Recorder, type UniformField } from '../runtime/kernel.js';
import { allocOutput, expect2d, expectLive } from './op-util.js';
import type { RouterKind, RouterParams, RoutingGpu, RoutingRef } from './moe-types.js';

/** Largest E the router kernel takes. */
export const ROUTER_MAX_EXPERTS = 2048;
/** Largest k the router kernel takes. */
export const ROUTER_MAX_TOPK = 32;
/** Largest nGroup of the grouped kinds (sigmoid_grouped, softmax_grouped). */
export const ROUTER_MAX_GROUPS = 256;

const ROUTER_KINDS: readonly RouterKind[] = ['raw_topk', 'softmax_topk', 'topk_softmax', 'sigmoid_grouped', 'sigmoid_topk', 'softmax_grouped', 'softmax_biased'];

/** The kinds that select inside groups of experts (nGroup, topkGroup). */
function groupedKind(kind: RouterKind): boolean {
  return kind === 'sigmoid_grouped' || kind === 'softmax_grouped';
}

/** The kinds whose k weights normTopkProb renormalises (the others ignore it). */
function renormalises(kind: RouterKind): boolean {
  return kind === 'softmax_topk' || kind === 'sigmoid_grouped' || kind === 'softmax_grouped' || kind === 'softmax_biased';
}

/**
 * Whether the kernel computes the softmax over all E experts (the sum of exponentials by a workgroup reduction):
 * softmax_biased always, with its max by a second reduction, before the top-k (it selects on the probabilities);
 * softmax_topk and softmax_grouped only for unnormalised weights, after the top-k (routeTokenWgsl). Renormalised over
 * the k selected (normTopkProb), a probability divided by the sum of the k is the softmax of the k selected logits, as
 * topk_softmax computes it (the same selection: the softmax keeps the logits' order; the weights within a few ulps of
 * the two-step form).
 */
function softmaxOverAll(v: Pick<RouterVariant, 'kind' | 'norm'>): boolean {
  return v.kind === 'softmax_biased' || ((v.kind === 'softmax_topk' || v.kind === 'softmax_grouped') && !v.norm);
}

/** softmax_topk / softmax_grouped renormalised: their weights are the softmax of the k selected logits (softmaxOverAll). */
function softmaxOfSelected(v: Pick<RouterVariant, 'kind' | 'norm'>): boolean {
  return (v.kind === 'softmax_topk' || v.kind === 'softmax_grouped') && v.norm;
}

/** The kinds that select on their scores plus a per-expert correction bias (RouterOptions.correctionBias; zeros when absent). */
function takesCorrectionBias(kind: RouterKind): boolean {
  return kind === 'sigmoid_grouped' || kind === 'softmax_biased';
}

/**
 * Variant of the router kernel. `ns` (route_decode only): each token's k routed slots are followed by ns slots of the
 * experts E..E+ns-1 with weight 1 (the shared experts run as always-selected experts), so IDX / WT are [T, k + ns].
 */
export type RouterVariant = { kind: RouterKind; norm: boolean; cbias: boolean; ns?: number };

const WG = 256;

/** The router's storage bindings, in binding order: L (logits), CB (correction bias, if any), IDX, WT. */
export function routerBindings(v: RouterVariant): BindingDecl[] {
  const b: BindingDecl[] = [{ name: 'L', type: 'array<f32>', access: 'read' }];
  if (v.cbias) b.push({ name: 'CB', type: 'array<f32>', access: 'read' });
  b.push({ name: 'IDX', type: 'array<u32>', access: 'read_write' }, { name: 'WT', type: 'array<f32>', access: 'read_write' });
  return b;
}

/**
 * WGSL expressions of a routing's slots per token and experts: u.k and u.E, or with v.ns shared experts appended
 * (RouterVariant.ns) k + ns and E + ns.
 */
export function slotsWgsl(v: RouterVariant): { k: string; E: string } {
  return v.ns ? { k: `(u.k + ${v.ns}u)`, E: `(u.E + ${v.ns}u)` } : { k: 'u.k', E: 'u.E' };
}

/** The router's uniform fields: the kernels that route declare these. */
export const ROUTER_UNIFORMS: readonly UniformField[] = [...uniformFields('u32', 'T', 'E', 'k', 'nGroup', 'topkGroup'), { name: 'scale', type: 'f32' }];

/**
 * WGSL that routes one token: module-scope workgroup arrays and helpers, and
 * `fn route_token(t: u32, li: u32)` (256 invocations; it has barriers, so call
 * it from uniform control flow), which writes IDX[t*kw..] and WT[t*kw..] (kw = k, or k + v.ns). The
 * bindings ({@link routerBindings}) and the uniforms ({@link ROUTER_UNIFORMS}) are the caller's.
 */
export function routeTokenWgsl(v: RouterVariant): string {
  // slots per token written: the k routed, then (with shared experts) ns more
  const ns = v.ns ?? 0;
  const kw = slotsWgsl(v).k;
  const grouped = groupedKind(v.kind);
  const scoreInit = v.kind === 'sigmoid_grouped' ? `sc[e >> 2u][e & 3u] = bitcast<u32>(sigmoid(l)${v.cbias ? ' + CB[e]' : ''});` : `sc[e >> 2u][e & 3u] = bitcast<u32>(l);`;
  // the softmax over all E: softmax_biased before the top-k (it selects on the probabilities), its max by a reduction;
  // softmax_topk / softmax_grouped unnormalised after it, the max being the top-1's logit (the same value: the
  // selection keeps the largest logit, its group ranking first), so that only the sum of exponentials is reduced
  const statsFirst = softmaxOverAll(v) && v.kind === 'softmax_biased';
  const statsAfter = softmaxOverAll(v) && !statsFirst;
  // lanes past E hold the identities: the tree starts at the first step that combines two lanes' values (the same
  // sums and maxima as from WG / 2)
  const sumTree = (acc: string) => /* wgsl */ `rv[li] = ${acc};
    workgroupBarrier();
    for (var s = red0; s > 0u; s = s >> 1u) {
      if (li < s) { rv[li] = rv[li] + rv[li + s]; }
      workgroupBarrier();
    }`;
  const softmaxAfter = statsAfter
    ? /* wgsl */ `
  {
    let red0 = min(WG / 2u, select(1u << firstLeadingBit(u.E - 1u), 0u, u.E <= 1u));
    let mx = L[base + sel[0]];
    var acc = 0.0;
    for (var e = li; e < u.E; e += WG) { acc = acc + exp(L[base + e] - mx); }
    ${sumTree('acc')}
    if (li == 0u) { smax = mx; ssum = rv[0]; }
    workgroupBarrier();
  }`
    : '';
  const softmaxStats =
    statsFirst
      ? /* wgsl */ `
  {
    let red0 = min(WG / 2u, select(1u << firstLeadingBit(u.E - 1u), 0u, u.E <= 1u));
    var m = LOWEST;
    for (var e = li; e < u.E; e += WG) { m = max(m, score(e)); }
    rv[li] = m;
    workgroupBarrier();
    for (var s = red0; s > 0u; s = s >> 1u) {
      if (li < s) { rv[li] = max(rv[li], rv[li + s]); }
      workgroupBarrier();
    }
    let mx = rv[0];
    workgroupBarrier();
    var acc = 0.0;
    for (var e = li; e < u.E; e += WG) { acc = acc + exp(score(e) - mx); }
    ${sumTree('acc')}
    if (li == 0u) { smax = mx; ssum = rv[0]; }
    workgroupBarrier();
    // the selection score: the probability plus the correction bias
    for (var e = li; e < u.E; e += WG) { sc[e >> 2u][e & 3u] = bitcast<u32>(exp(score(e) - smax) / ssum${v.cbias ? ' + CB[e]' : ''}); }
    workgroupBarrier();
  }`
      : '';
  // every group kept (topkGroup >= nGroup, e.g. Kimi-K2's one group): no group scores, nothing excluded. A group's
  // score: sigmoid_grouped the sum of its two best scores (one for a group of one), softmax_grouped its best
  const groupScore = v.kind === 'sigmoid_grouped' ? 'select(b1, b1 + b2, gsize >= 2u)' : 'b1';
  const groupCode = grouped
    ? /* wgsl */ `
  if (u.topkGroup < u.nGroup) {
    let gsize = u.E / u.nGroup;
    for (var g = li; g < u.nGroup; g += WG) {
      let g0 = g * gsize;
      var b1 = score(g0);
      var b2 = LOWEST;
      for (var i = 1u; i < gsize; i++) {
        let x = score(g0 + i);
        if (x > b1) { b2 = b1; b1 = x; } else if (x > b2) { b2 = x; }
      }
      gsc[g] = ${groupScore};
      gkeep[g] = 0u;
    }
    workgroupBarrier();
    if (li == 0u) {
      for (var r = 0u; r < u.topkGroup; r++) {
        var bv = LOWEST;
        var bi = NONE;
        for (var g = 0u; g < u.nGroup; g++) {
          if (gkeep[g] == 0u && better(gsc[g], g, bv, bi)) { bv = gsc[g]; bi = g; }
        }
        if (bi != NONE) { gkeep[bi] = 1u; }
      }
    }
    workgroupBarrier();
  }`
    : '';
  // the weight of slot j from its logit l (lane j), before the sums over the k slots
  const weight: Record<RouterKind, string> = {
    raw_topk: 'l',
    sigmoid_topk: 'sigmoid(l)',
    sigmoid_grouped: 'sigmoid(l)',
    softmax_topk: 'exp(l - smax) / ssum',
    softmax_grouped: 'exp(l - smax) / ssum',
    softmax_biased: 'exp(l - smax) / ssum',
    topk_softmax: 'exp(l - L[base + sel[0]])',
  };
  const slotWeight = softmaxOfSelected(v) ? weight.topk_softmax : weight[v.kind];
  // topk_softmax divides by the sum of its k exponentials, norm by the sum of the k weights; every lane sums the k
  // slots in slot order (the same f32 sums as one lane summing them)
  // sigmoid_grouped adds 1e-20 to the sum (DeepSeek-V3), softmax_biased divides by at least 1e-12 (ERNIE's moe_norm_min)
  const normed = v.kind === 'sigmoid_grouped' ? '(ws + 1e-20)' : v.kind === 'softmax_biased' ? 'max(ws, 1e-12)' : '(ws)';
  const divisor = v.kind === 'topk_softmax' ? 'ws' : v.norm ? normed : '';
  return /* wgsl */ `
const WG = ${WG}u;
const NONE = 0xffffffffu;
const LOWEST = -3.4028234663852886e38;
// the token's selection scores as f32 bits, then (for the top-k) as order keys
// (4 per element: the rank loop reads 4 keys per load; keys past E are 0)
var<workgroup> sc: array<vec4<u32>, ${ROUTER_MAX_EXPERTS / 4}>;
var<workgroup> rv: array<f32, ${WG}>;
var<workgroup> sel: array<u32, ${ROUTER_MAX_TOPK}>;
var<workgroup> wsel: array<f32, ${ROUTER_MAX_TOPK}>;
${grouped ? `var<workgroup> gsc: array<f32, ${ROUTER_MAX_GROUPS}>;\nvar<workgroup> gkeep: array<u32, ${ROUTER_MAX_GROUPS}>;` : ''}
${softmaxOverAll(v) ? 'var<workgroup> smax: f32;\nvar<workgroup> ssum: f32;' : ''}

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn score(e: u32) -> f32 { return bitcast<f32>(sc[e >> 2u][e & 3u]); }
// f32 bits -> a u32 that orders as the float: NaN lowest (0), -0 as +0, negatives below positives.
fn order_key(bits: u32) -> u32 {
  let mag = bits & 0x7fffffffu;
  if (mag > 0x7f800000u) { return 0u; }
  if (mag == 0u) { return 0x80000000u; }
  return select(bits | 0x80000000u, ~bits, (bits >> 31u) == 1u);
}
${grouped ? '// whether expert e is in a kept group (every group kept: gkeep not written)\nfn allowed(e: u32) -> bool { return u.topkGroup >= u.nGroup || gkeep[e / (u.E / u.nGroup)] != 0u; }' : ''}
// the rank key of expert e: its order key + 1 (at most 0xff800001: +Inf), or 0 when its group was not kept,
// so that no kept expert ever ranks below an excluded one and the rank loop reads no atomics
// (v, i) ranks above (bv, bi): larger value, ties to the lower index; NONE never wins, anything beats NONE.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  if (i == NONE) { return false; }
  if (bi == NONE) { return true; }
  return v > bv || (v == bv && i < bi);
}

fn route_token(t: u32, li: u32) {
  let base = t * u.E;
  for (var e = li; e < u.E; e += WG) {
    let l = L[base + e];
    ${scoreInit}
  }
  workgroupBarrier();
  ${softmaxStats}
  ${groupCode}
  // Top-k by rank: each expert counts the (allowed) experts that rank above it; an expert with rank r < k takes
  // slot r. The order is strict and total: the scores become order keys (u32 compares as the floats do, -0 = +0,
  // NaN below -Inf), ties go to the lower index. One pass and two barriers instead of k arg-max reductions; the
  // keys are broadcast reads of workgroup memory, 4 per load, counted without branches (a loop that stopped at
  // rank k, one key per load, took 17.5 us of Qwen3's T = 1 routing on the H200). Excluded experts
  // (sigmoid_grouped's groups not kept) and the padding past E have key 0: they rank below every kept one and take
  // no slot.
  let nq = (u.E + 3u) / 4u;
  for (var e = li; e < 4u * nq; e += WG) {
    sc[e >> 2u][e & 3u] = select(0u, ${grouped ? 'select(0u, order_key(sc[e >> 2u][e & 3u]) + 1u, allowed(e))' : 'order_key(sc[e >> 2u][e & 3u]) + 1u'}, e < u.E);
  }
  workgroupBarrier();
  for (var e = li; e < u.E; e += WG) {
    let x = sc[e >> 2u][e & 3u];
    if (x != 0u) {
      let xv = vec4<u32>(x);
      let ev = vec4<u32>(e);
      var r4 = vec4<u32>(0u);
      for (var q = 0u; q < nq; q++) {
        let y = sc[q];
        let j = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u);
        r4 += select(vec4<u32>(0u), vec4<u32>(1u), (y > xv) | ((y == xv) & (j < ev)));
      }
      let r = r4.x + r4.y + r4.z + r4.w;
      if (r < u.k) { sel[r] = e; }
    }
  }
  workgroupBarrier();${softmaxAfter}
  // lane j: slot j's weight from its logit (read in parallel), then the sums over the k slots
  if (li < u.k) {
    let l = L[base + sel[li]];
    wsel[li] = ${slotWeight};
  }
  workgroupBarrier();
  if (li < u.k) {
    ${divisor ? `var ws = 0.0;
    for (var j = 0u; j < u.k; j++) { ws = ws + wsel[j]; }
    ` : ''}IDX[t * ${kw} + li] = sel[li];
    WT[t * ${kw} + li] = ${divisor ? `(wsel[li] / ${divisor})` : 'wsel[li]'} * u.scale;
  }${
    ns
      ? `
  // the shared experts' slots after the routed ones: experts E.., weight 1 (not scaled: they are not routed)
  if (li >= u.k && li < ${kw}) {
    let s = u.E + li - u.k;
    sel[li] = s;
    IDX[t * ${kw} + li] = s;
    WT[t * ${kw} + li] = 1.0;
  }`
      : ''
  }
  workgroupBarrier(); // sel and the score arrays are free for the next token
}
`;
}

/** The router kernel (one pipeline per kind / normTopkProb / correction bias): one workgroup per token. */
export const routerKernel = defineKernel<RouterVariant>(
  'router',
  (v) => /* wgsl */ `
${routeTokenWgsl(v)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= u.T) { return; }
  route_token(t, li);
}
`,
  { signature: (v) => ({ bindings: routerBindings(v), uniforms: ROUTER_UNIFORMS }) },
);

/** Checks RouterParams against E (typed errors). Returns nGroup and topkGroup (1 and 1 unless a grouped kind). */
export function checkRouterParams(what: string, p: RouterParams, E: number): { nGroup: number; topkGroup: number } {
  if (!ROUTER_KINDS.includes(p.kind)) throw new ValueError(`${what} kind`, `one of ${ROUTER_KINDS.join(', ')}`, p.kind);
  if (p.numExperts !== E) throw new ShapeError(`${what} logits [T, E]`, `E = numExperts = ${p.numExperts}`, `E = ${E}`);
  if (!Number.isInteger(E) || E < 1 || E > ROUTER_MAX_EXPERTS) throw new ValueError(`${what} numExperts`, `an integer in [1, ${ROUTER_MAX_EXPERTS}]`, E);
  const k = p.topK;
  if (!Number.isInteger(k) || k < 1 || k > Math.min(E, ROUTER_MAX_TOPK)) throw new ValueError(`${what} topK`, `an integer in [1, min(E=${E}, ${ROUTER_MAX_TOPK})]`, k);
  if (p.routedScalingFactor !== undefined && !Number.isFinite(p.routedScalingFactor)) throw new ValueError(`${what} routedScalingFactor`, 'a finite number', p.routedScalingFactor);
  if (!groupedKind(p.kind)) return { nGroup: 1, topkGroup: 1 };
  const nGroup = p.nGroup ?? 1;
  const topkGroup = p.topkGroup ?? nGroup;
  if (!Number.isInteger(nGroup) || nGroup < 1 || nGroup > ROUTER_MAX_GROUPS || E % nGroup !== 0) {
    throw new ValueError(`${what} nGroup`, `an integer in [1, ${ROUTER_MAX_GROUPS}] dividing E=${E}`, nGroup);
  }
  if (!Number.isInteger(topkGroup) || topkGroup < 1 || topkGroup > nGroup) throw new ValueError(`${what} topkGroup`, `an integer in [1, nGroup=${nGroup}]`, topkGroup);
  if (k > topkGroup * (E / nGroup)) throw new ValueError(`${what} topK`, `<= topkGroup * E / nGroup = ${topkGroup * (E / nGroup)}`, k);
  return { nGroup, topkGroup };
}

/** Options of {@link routerGpu}. */
export interface RouterOptions {
  /** sigmoid_grouped and softmax_biased: e_score_correction_bias, float32 [E], added to the selection scores (zeros when absent). */
  correctionBias?: GpuTensor;
  /** Allocate the outputs from this pool. */
  pool?: BufferPool;
  /**
   * ns shared experts run as always-selected experts E..E+ns-1: each token's k routed slots are followed by ns slots
   * of those experts at weight 1, so idx and weights are [T, k + ns] (k + ns <= 32; default 0). See routeDecodeRef.
   */
  sharedExperts?: number;
}

/**
 * Records the router into `rec`: logits float32 [T,E] -> idx uint32 [T,k]
 * and weights float32 [T,k] (new tensors owned by the caller; [T, k + ns]
 * with `opts.sharedExperts` = ns). Supports E <= 2048, k <= 32.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx);
 * const { idx, weights } = routerGpu(ctx, rec, logits, { kind: 'softmax_topk', numExperts: 8, topK: 2, normTopkProb: true });
 * rec.submit();
 * ```
 */
export function routerGpu(ctx: GpuContext, rec: Recorder, logits: GpuTensor, params: RouterParams, opts: RouterOptions = {}): RoutingGpu {
  const r = prepareRouting(ctx, 'routerGpu', logits, params, opts);
  if (r.T === 0) return r.routing;
  try {
    rec.dispatch({ kernel: routerKernel, variant: r.variant, bind: r.bind, params: r.params, workgroups: foldWorkgroups(ctx, r.T) });
  } catch (e) {
    r.routing.idx.destroy();
    r.routing.weights.destroy();
    throw e;
  }
  return r.routing;
}

/** A checked routing about to be recorded: its outputs, variant, buffers (by routerBindings name) and uniform values (ROUTER_UNIFORMS). */
export interface PreparedRouting {
  T: number;
  E: number;
  k: number;
  /** Shared-expert slots after the k routed ones (RouterOptions.sharedExperts). */
  ns: number;
  routing: RoutingGpu;
  variant: RouterVariant;
  bind: Record<string, GPUBuffer>;
  params: Record<string, number>;
}

/**
 * Checks a routing of E experts' logits before anything is allocated or recorded (typed errors): params
 * (checkRouterParams), the correction bias, the shared experts. Returns nGroup, topkGroup and the shared experts ns.
 */
export function checkRouting(what: string, params: RouterParams, E: number, opts: RouterOptions): { nGroup: number; topkGroup: number; ns: number } {
  expectLive(what, { correctionBias: opts.correctionBias });
  const { nGroup, topkGroup } = checkRouterParams(what, params, E);
  const cb = opts.correctionBias;
  if (cb) {
    if (!takesCorrectionBias(params.kind)) throw new ValueError(`${what} correctionBias`, `only with kind sigmoid_grouped or softmax_biased`, params.kind);
    if (cb.dtype !== 'float32') throw new DTypeError(`${what} correctionBias`, 'float32', cb.dtype);
    if (cb.size !== E || cb.shape.length !== 1) throw new ShapeError(`${what} correctionBias`, [E], cb.shape);
  }
  const ns = opts.sharedExperts ?? 0;
  if (!(Number.isInteger(ns) && ns >= 0 && params.topK + ns <= ROUTER_MAX_TOPK)) throw new ValueError(`${what} shared experts`, `an integer >= 0 with topK + it <= ${ROUTER_MAX_TOPK}`, ns);
  return { nGroup, topkGroup, ns };
}

/**
 * Checks logits (float32 [T, E]), the parameters and the correction bias
 * (typed errors naming `what`, before anything is allocated: checkRouting), then
 * allocates the routing outputs idx uint32 [T, k + ns] and weights float32 [T, k + ns]
 * (ns: `opts.sharedExperts`, default 0).
 */
export function prepareRouting(ctx: GpuContext, what: string, logits: GpuTensor, params: RouterParams, opts: RouterOptions): PreparedRouting {
  expectLive(what, { logits });
  if (logits.dtype !== 'float32') throw new DTypeError(`${what} logits`, 'float32', logits.dtype);
  const [T, E] = expect2d(`${what} logits [T, E]`, logits.shape);
  const { nGroup, topkGroup, ns } = checkRouting(what, params, E, opts);
  const cb = opts.correctionBias;
  const k = params.topK;
  const idx = allocOutput(ctx, opts.pool, 'uint32', [T, k + ns], 'router.idx');
  const weights = allocOutput(ctx, opts.pool, 'float32', [T, k + ns], 'router.weights');
  const bind: Record<string, GPUBuffer> = { L: logits.buffer, IDX: idx.buffer, WT: weights.buffer };
  if (cb) bind.CB = cb.buffer;
  return {
    T,
    E,
    k,
    ns,
    routing: { idx, weights },
    variant: routerVariant(params, opts),
    bind,
    params: { T, E, k, nGroup, topkGroup, scale: params.routedScalingFactor ?? 1 },
  };
}

/** The router kernel's variant for params and opts (the correction bias bound or not, shared experts appended). */
export function routerVariant(params: RouterParams, opts: RouterOptions): RouterVariant {
  const ns = opts.sharedExperts ?? 0;
  return { kind: params.kind, norm: params.normTopkProb && renormalises(params.kind), cbias: !!opts.correctionBias, ...(ns ? { ns } : {}) };
}

const sigmoidRef = (x: number) => Math.fround(1 / (1 + Math.exp(-x)));

/** Indices of the top `k` of `score` among `allowed` (descending, ties to the lower index). */
function topk(score: ArrayLike<number>, k: number, allowed?: (i: number) => boolean): number[] {
  const taken = new Uint8Array(score.length);
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    let bi = -1;
    for (let i = 0; i < score.length; i++) {
      if (taken[i] || (allowed && !allowed(i))) continue;
      if (bi < 0 || score[i] > score[bi]) bi = i;
    }
    if (bi < 0) break;
    taken[bi] = 1;
    out.push(bi);
  }
  return out;
}

/**
 * The TypeScript reference of {@link routerGpu}: logits [T*E] row-major ->
 * idx [T*k], weights [T*k].
 *
 * @example
 * ```ts
 * const { idx, weights } = routerRef(logits, T, { kind: 'sigmoid_topk', numExperts: 16, topK: 1, normTopkProb: false });
 * ```
 */
export function routerRef(logits: Float32Array, T: number, params: RouterParams, correctionBias?: Float32Array): RoutingRef {
  const E = params.numExperts;
  if (logits.length !== T * E) throw new ShapeError('routerRef logits', `${T * E} values ([${T}, ${E}])`, `${logits.length} values`);
  const { nGroup, topkGroup } = checkRouterParams('routerRef', params, E);
  if (correctionBias && correctionBias.length !== E) throw new ShapeError('routerRef correctionBias', [E], [correctionBias.length]);
  const k = params.topK;
  const scale = Math.fround(params.routedScalingFactor ?? 1);
  const idx = new Uint32Array(T * k);
  const weights = new Float32Array(T * k);
  for (let t = 0; t < T; t++) {
    const l = logits.subarray(t * E, (t + 1) * E);
    let sel: number[];
    let w: number[];
    switch (params.kind) {
      case 'raw_topk':
        sel = topk(l, k);
        w = sel.map((e) => l[e]);
        break;
      case 'sigmoid_topk':
        sel = topk(l, k);
        w = sel.map((e) => sigmoidRef(l[e]));
        break;
      case 'softmax_topk':
      case 'softmax_grouped':
      case 'softmax_biased': {
        let m = -Infinity;
        for (let e = 0; e < E; e++) m = Math.max(m, l[e]);
        let s = 0;
        for (let e = 0; e < E; e++) s += Math.exp(l[e] - m);
        if (params.kind === 'softmax_biased') {
          // the probability plus the correction bias, each rounded to f32 as the kernel holds it
          const c = Array.from(l, (x, e) => Math.fround(Math.fround(Math.exp(x - m) / s) + (correctionBias ? correctionBias[e] : 0)));
          sel = topk(c, k);
        } else if (params.kind === 'softmax_grouped' && topkGroup < nGroup) {
          // a group's score is its largest probability: it ranks as its largest logit
          const gsize = E / nGroup;
          const gs: number[] = [];
          for (let g = 0; g < nGroup; g++) gs.push(Math.max(...l.subarray(g * gsize, (g + 1) * gsize)));
          const kept = new Set(topk(gs, topkGroup));
          sel = topk(l, k, (e) => kept.has(Math.floor(e / gsize)));
        } else sel = topk(l, k);
        w = sel.map((e) => Math.fround(Math.exp(l[e] - m) / s));
        break;
      }
      case 'topk_softmax': {
        sel = topk(l, k);
        const m0 = l[sel[0]];
        const ex = sel.map((e) => Math.exp(l[e] - m0));
        const s = ex.reduce((a, b) => a + b, 0);
        w = ex.map((x) => Math.fround(x / s));
        break;
      }
      case 'sigmoid_grouped': {
        const s = Array.from(l, sigmoidRef);
        const c = s.map((x, e) => Math.fround(x + (correctionBias ? correctionBias[e] : 0)));
        const gsize = E / nGroup;
        const gs: number[] = [];
        for (let g = 0; g < nGroup; g++) {
          const sorted = c.slice(g * gsize, (g + 1) * gsize).sort((a, b) => b - a);
          gs.push(gsize >= 2 ? Math.fround(sorted[0] + sorted[1]) : sorted[0]);
        }
        const kept = new Set(topk(gs, topkGroup));
        sel = topk(c, k, (e) => kept.has(Math.floor(e / gsize)));
        w = sel.map((e) => s[e]);
        break;
      }
    }
    if (params.normTopkProb && renormalises(params.kind)) {
      const ws = w.reduce((a, b) => a + b, 0);
      const sum = params.kind === 'sigmoid_grouped' ? ws + 1e-20 : params.kind === 'softmax_biased' ? Math.max(ws, 1e-12) : ws;
      w = w.map((x) => x / sum);
    }
    for (let j = 0; j < k; j++) {
      idx[t * k + j] = sel[j];
      weights[t * k + j] = Math.fround(w[j] * scale);
    }
  }
  return { idx, weights };
}
