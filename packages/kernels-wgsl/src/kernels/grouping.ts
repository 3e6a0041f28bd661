/**
 * Grouping of the T*k (token, slot) pairs by expert, on the GPU without a
 * host round trip: counts (integer atomics), offsets (single-workgroup
 * exclusive scan looping over E), then a scatter with one atomic cursor per
 * expert; for few pairs all of it in one workgroup (group_one). counts and offsets are exact; the order of pairs inside an
 * expert's range may vary run to run (allowed by the contract: results never
 * depend on it), and order/position are always inverse permutations.
 */
import { DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, foldWorkgroups, uniformFields, type BindingDecl, type Recorder } from '../runtime/kernel.js';
import { allocOutput, expect2d, expectLive } from './op-util.js';
import { inclusiveScanWgsl } from '../wgsl.js';
import type { GroupingGpu, GroupingRef } from './moe-types.js';
import { GEMV_GROUPS, NO_EXPERT, type ActiveExperts } from './moe-gemv.js';
import { useOneWorkgroupGrouping } from './plan.js';

const WG = 256;

const U32 = 'array<u32>';
const ATOMIC_U32 = 'array<atomic<u32>>';
/** A storage binding of the grouping kernels (read_write unless said). */
const bind = (name: string, type: string, access: BindingDecl['access'] = 'read_write'): BindingDecl => ({ name, type, access });
const NO_VARIANT = {} as Record<string, never>;


/** Zeroes counts[E]. */
export const groupZeroKernel = defineKernel<Record<string, never>>(
  'group_zero',
  () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i < u.E) { C[i] = 0u; }
}
`,
  { signature: () => ({ bindings: [bind('C', U32)], uniforms: uniformFields('u32', 'E') }) },
);

/** counts[idx[p]] += 1 for every pair p (pairs with idx >= E are ignored). */
export const groupCountKernel = defineKernel<Record<string, never>>(
  'group_count',
  () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * ${WG}u;
  if (p >= u.n) { return; }
  let e = IDX[p];
  if (e < u.E) { atomicAdd(&C[e], 1u); }
}
`,
  { signature: () => ({ bindings: [bind('IDX', U32, 'read'), bind('C', ATOMIC_U32)], uniforms: uniformFields('u32', 'n', 'E') }) },
);

/** offsets = exclusive scan of counts (offsets[E] = total); cursor[e] = offsets[e]. One workgroup. */
export const groupScanKernel = defineKernel<Record<string, never>>(
  'group_scan',
  () => /* wgsl */ `
var<workgroup> part: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  // ${WG} segments of E, summed per lane, then a parallel scan of the segment sums
  let seg = (u.E + ${WG - 1}u) / ${WG}u;
  let e0 = min(li * seg, u.E);
  let e1 = min(e0 + seg, u.E);
  var s = 0u;
  for (var e = e0; e < e1; e++) { s += C[e]; }
  part[li] = s;
  workgroupBarrier();
${inclusiveScanWgsl(['part'], WG)}
  if (li == ${WG - 1}u) { OFF[u.E] = part[li]; }
  var run = part[li] - s;
  for (var e = e0; e < e1; e++) { OFF[e] = run; CUR[e] = run; run += C[e]; }
}
`,
  { signature: () => ({ bindings: [bind('C', U32, 'read'), bind('OFF', U32), bind('CUR', U32)], uniforms: uniformFields('u32', 'E') }) },
);

/** order[slot] = p, position[p] = slot, slot from the expert's atomic cursor. */
export const groupScatterKernel = defineKernel<Record<string, never>>(
  'group_scatter',
  () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * ${WG}u;
  if (p >= u.n) { return; }
  let e = IDX[p];
  if (e >= u.E) { return; }
  let slot = atomicAdd(&CUR[e], 1u);
  ORD[slot] = p;
  POS[p] = slot;
}
`,
  { signature: () => ({ bindings: [bind('IDX', U32, 'read'), bind('CUR', ATOMIC_U32), bind('ORD', U32), bind('POS', U32)], uniforms: uniformFields('u32', 'n', 'E') }) },
);

/** Experts the one-workgroup grouping holds in workgroup memory (its counts, then its cursors, in one array). */
export const GROUP_ONE_MAX_EXPERTS = 1024;

/**
 * The whole grouping in one single-workgroup dispatch (group_zero, group_count, group_scan and group_scatter's
 * outputs: counts, offsets, order, position), its counts and cursors in workgroup memory: one dispatch instead of
 * four where the pairs are few enough for one workgroup to loop over them twice (plan.ts useOneWorkgroupGrouping).
 * E <= GROUP_ONE_MAX_EXPERTS. The order inside an expert's range is unspecified, as with the four passes.
 */
export const groupOneKernel = defineKernel<Record<string, never>>(
  'group_one',
  () => /* wgsl */ `
var<workgroup> wc: array<atomic<u32>, ${GROUP_ONE_MAX_EXPERTS}>;
var<workgroup> part: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  for (var e = li; e < u.E; e += ${WG}u) { atomicStore(&wc[e], 0u); }
  workgroupBarrier();
  for (var p = li; p < u.n; p += ${WG}u) { let e = IDX[p]; if (e < u.E) { atomicAdd(&wc[e], 1u); } }
  workgroupBarrier();
  // ${WG} segments of E, summed per lane, then a parallel scan of the segment sums (as group_scan)
  let seg = (u.E + ${WG - 1}u) / ${WG}u;
  let e0 = min(li * seg, u.E);
  let e1 = min(e0 + seg, u.E);
  var s = 0u;
  for (var e = e0; e < e1; e++) { s += atomicLoad(&wc[e]); }
  part[li] = s;
  workgroupBarrier();
${inclusiveScanWgsl(['part'], WG)}
  if (li == ${WG - 1}u) { OFF[u.E] = part[li]; }
  // each lane's own experts: the count out, the offset out and in place of the count (the expert's cursor)
  var run = part[li] - s;
  for (var e = e0; e < e1; e++) { let c = atomicLoad(&wc[e]); C[e] = c; OFF[e] = run; atomicStore(&wc[e], run); run += c; }
  workgroupBarrier();
  for (var p = li; p < u.n; p += ${WG}u) {
    let e = IDX[p];
    if (e < u.E) { let slot = atomicAdd(&wc[e], 1u); ORD[slot] = p; POS[p] = slot; }
  }
}
`,
  { signature: () => ({ bindings: [bind('IDX', U32, 'read'), bind('C', U32), bind('OFF', U32), bind('ORD', U32), bind('POS', U32)], uniforms: uniformFields('u32', 'n', 'E') }) },
);

/** Identity grouping: E=1, k=1. */
export const denseGroupingKernel = defineKernel<Record<string, never>>(
  'dense_grouping',
  () => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i == 0u) { C[0] = u.T; OFF[0] = 0u; OFF[1] = u.T; }
  if (i < u.T) { ORD[i] = i; POS[i] = i; }
}
`,
  { signature: () => ({ bindings: [bind('C', U32), bind('OFF', U32), bind('ORD', U32), bind('POS', U32)], uniforms: uniformFields('u32', 'T') }) },
);

/** group_decode's storage bindings in binding order; IDX read-only, or read_write where the same kernel routes first. */
export function groupDecodeBindings(idxAccess: 'read' | 'read_write'): BindingDecl[] {
  return [bind('IDX', U32, idxAccess), bind('C', ATOMIC_U32), bind('OFF', U32), bind('CUR', ATOMIC_U32), bind('ORD', U32), bind('POS', U32), bind('ACT', U32), bind('ARGS', U32)];
}

/** group_decode's uniform fields: pairs, experts, and the GEMVs' output blocks (for the indirect args). */
export const GROUP_DECODE_UNIFORMS = uniformFields('u32', 'n', 'E', 'nbx0', 'nbx1');

/**
 * WGSL `fn active_tail(li: u32, na: u32)`: the rest of the decode GEMVs' active-expert list once its first `na`
 * entries are written (NO_EXPERT up to the experts `E`, a WGSL expression) and, from lane 0, the GEMVs' indirect args (gate_up's output blocks x na
 * experts, then down's). Part of GROUP_DECODE_WGSL; route_decode's one-token grouping uses it too.
 */
export function activeTailWgsl(E = 'u.E'): string {
  return /* wgsl */ `
fn active_tail(li: u32, na: u32) {
  if (li == 0u) { ARGS[0] = u.nbx0; ARGS[1] = na; ARGS[2] = 1u; ARGS[3] = u.nbx1; ARGS[4] = na; ARGS[5] = 1u; }
  for (var i = na + li; i < ${E}; i += ${WG}u) { ACT[i] = ${NO_EXPERT}u; }
}
`;
}

/**
 * WGSL of the decode grouping in one workgroup of ${WG}: workgroup arrays and
 * `fn group_decode(li: u32)` (call from uniform control flow), over the
 * bindings of {@link groupDecodeBindings} and the uniforms `n` (pairs),
 * `E`, `nbx0`, `nbx1` (the GEMVs' output blocks, for the indirect args);
 * `E`: the experts as a WGSL expression (route_decode with shared experts: `(u.E + ns)`).
 */
export function groupDecodeWgsl(E = 'u.E'): string {
  return /* wgsl */ `${activeTailWgsl(E)}
var<workgroup> part: array<u32, ${WG}>;
var<workgroup> partAct: array<u32, ${WG}>;
fn group_decode(li: u32) {
  for (var e = li; e < ${E}; e += ${WG}u) { atomicStore(&C[e], 0u); }
  storageBarrier();
  for (var p = li; p < u.n; p += ${WG}u) { let e = IDX[p]; if (e < ${E}) { atomicAdd(&C[e], 1u); } }
  storageBarrier();
  // exclusive scans over E of the counts and of the active flags: ${WG} segments, then a parallel
  // (Hillis-Steele) scan of the segment sums in workgroup memory
  let seg = (${E} + ${WG - 1}u) / ${WG}u;
  let e0 = min(li * seg, ${E});
  let e1 = min(e0 + seg, ${E});
  var s = 0u;
  var act = 0u;
  for (var e = e0; e < e1; e++) { let c = atomicLoad(&C[e]); s += c; act += select(0u, 1u, c > 0u); }
  part[li] = s;
  partAct[li] = act;
  workgroupBarrier();
${inclusiveScanWgsl(['part', 'partAct'], WG)}
  // inclusive -> exclusive
  var run = part[li] - s;
  if (li == ${WG - 1}u) { OFF[${E}] = part[li]; }
  for (var e = e0; e < e1; e++) { OFF[e] = run; atomicStore(&CUR[e], run); run += atomicLoad(&C[e]); }
  let na = partAct[${WG - 1}u];
  var a = partAct[li] - act;
  for (var e = e0; e < e1; e++) { if (atomicLoad(&C[e]) > 0u) { ACT[a] = e; a++; } }
  active_tail(li, na);
  storageBarrier();
  for (var p = li; p < u.n; p += ${WG}u) {
    let e = IDX[p];
    if (e < ${E}) { let slot = atomicAdd(&CUR[e], 1u); ORD[slot] = p; POS[p] = slot; }
  }
}
`;
}

/**
 * The decode forward's whole grouping in one single-workgroup dispatch
 * (instead of zero, count, scan, scatter and the active-expert list: five
 * dispatches of ~7-15 us each on an H200, a third of a small model's T = 1
 * layer). Same outputs as groupGpu (counts, offsets, order, position; order
 * inside an expert's range unspecified) plus the active-expert list of the
 * decode GEMVs (experts with rows ascending, then NO_EXPERT up to E) and its
 * indirect args. One workgroup loops over the pairs and experts: meant for
 * the few pairs of decode (the planner sends larger T to groupGpu).
 */
export const groupDecodeKernel = defineKernel<Record<string, never>>(
  'group_decode',
  () => /* wgsl */ `
${groupDecodeWgsl()}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  group_decode(li);
}
`,
  { signature: () => ({ bindings: groupDecodeBindings('read'), uniforms: GROUP_DECODE_UNIFORMS }) },
);

function makeGrouping(T: number, k: number, E: number, counts: GpuTensor, offsets: GpuTensor, order: GpuTensor, position: GpuTensor): GroupingGpu {
  const destroy = () => {
    counts.destroy();
    offsets.destroy();
    order.destroy();
    position.destroy();
  };
  return { T, k, E, counts, offsets, order, position, destroy, [Symbol.dispose]: destroy } as GroupingGpu;
}

/** Options of {@link groupGpu} and {@link denseGroupingGpu}. */
export interface GroupOptions {
  /** Allocate the four outputs from this pool. */
  pool?: BufferPool;
  /**
   * groupGpu: the grouping in one single-workgroup dispatch (true; E <= GROUP_ONE_MAX_EXPERTS) or in four passes
   * (false). Tests / tuning; default plan.ts's useOneWorkgroupGrouping by pairs and experts. The same counts and
   * offsets either way.
   */
  oneWorkgroup?: boolean;
}

/** Checks idx (uint32 [T, k], k >= 1) and E, and allocates the four outputs of a grouping (from `opts.pool` if given). */
export function allocGrouping(ctx: GpuContext, what: string, idx: GpuTensor, E: number, opts: GroupOptions): GroupingGpu {
  expectLive(what, { idx });
  if (idx.dtype !== 'uint32') throw new DTypeError(`${what} idx`, 'uint32', idx.dtype);
  const [T, k] = expect2d(`${what} idx [T, k]`, idx.shape);
  if (!Number.isInteger(E) || E < 1) throw new ValueError(`${what} E`, 'an integer >= 1', E);
  if (k < 1) throw new ShapeError(`${what} idx [T, k]`, '[T, k] with k >= 1', idx.shape);
  const n = T * k;
  const counts = allocOutput(ctx, opts.pool, 'uint32', [E], 'group.counts');
  const offsets = allocOutput(ctx, opts.pool, 'uint32', [E + 1], 'group.offsets');
  const order = allocOutput(ctx, opts.pool, 'uint32', [n], 'group.order');
  const position = allocOutput(ctx, opts.pool, 'uint32', [n], 'group.position');
  return makeGrouping(T, k, E, counts, offsets, order, position);
}


/**
 * Records the grouping of the (token, slot) pairs of `idx` (uint32 [T,k],
 * values < E) by expert. Returns a GroupingGpu (counts [E], offsets [E+1],
 * order [T*k], position [T*k], all uint32) owned by the caller: destroy()
 * frees its four tensors. Never reads back to the host.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx);
 * const r = routerGpu(ctx, rec, logits, params);
 * const g = groupGpu(ctx, rec, r.idx, params.numExperts);
 * rec.submit();
 * g.destroy();
 * ```
 */
export function groupGpu(ctx: GpuContext, rec: Recorder, idx: GpuTensor, E: number, opts: GroupOptions = {}): GroupingGpu {
  if (opts.oneWorkgroup === true && E > GROUP_ONE_MAX_EXPERTS) throw new ValueError('groupGpu oneWorkgroup', `E <= ${GROUP_ONE_MAX_EXPERTS}`, E);
  const g = allocGrouping(ctx, 'groupGpu', idx, E, opts);
  const { counts, offsets, order, position } = g;
  const n = g.T * g.k;
  try {
    const v = NO_VARIANT;
    if (opts.oneWorkgroup ?? (E <= GROUP_ONE_MAX_EXPERTS && useOneWorkgroupGrouping(n))) {
      rec.dispatch({ kernel: groupOneKernel, variant: v, bind: { IDX: idx.buffer, C: counts.buffer, OFF: offsets.buffer, ORD: order.buffer, POS: position.buffer }, params: { n, E }, workgroups: [1] });
      return g;
    }
    // written in full by group_scan before group_scatter reads it: reused from the scratch cache
    const cursor = rec.temp(E * 4, 'group.cursor', { reuse: true });
    rec.dispatch({ kernel: groupZeroKernel, variant: v, bind: { C: counts.buffer }, params: { E }, workgroups: foldWorkgroups(ctx, Math.ceil(E / WG)) });
    if (n > 0) rec.dispatch({ kernel: groupCountKernel, variant: v, bind: { IDX: idx.buffer, C: counts.buffer }, params: { n, E }, workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)) });
    rec.dispatch({ kernel: groupScanKernel, variant: v, bind: { C: counts.buffer, OFF: offsets.buffer, CUR: cursor }, params: { E }, workgroups: [1] });
    if (n > 0) rec.dispatch({ kernel: groupScatterKernel, variant: v, bind: { IDX: idx.buffer, CUR: cursor, ORD: order.buffer, POS: position.buffer }, params: { n, E }, workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)) });
  } catch (e) {
    g.destroy();
    throw e;
  }
  return g;
}

/**
 * Records the grouping of `idx` (uint32 [T, k], values < E) and the decode
 * GEMVs' active-expert list in one dispatch ({@link groupDecodeKernel}):
 * the decode path's replacement for groupGpu + activeExpertsGpu. `nGateUp`
 * and `nDown` are the GEMVs' output widths (for the indirect args).
 * @example
 * ```ts
 * const { grouping, active } = groupDecodeGpu(ctx, rec, routing.idx, E, moeDim, hiddenDim, { pool });
 * gemvGateUpGpu(ctx, rec, x, grouping, w.gateUp, act, { pool, active });
 * ```
 */
export function groupDecodeGpu(ctx: GpuContext, rec: Recorder, idx: GpuTensor, E: number, nGateUp: number, nDown: number, opts: GroupOptions = {}): { grouping: GroupingGpu; active: ActiveExperts } {
  const g = allocGrouping(ctx, 'groupDecodeGpu', idx, E, opts);
  try {
    const t = decodeGroupingTargets(rec, g);
    rec.dispatch({
      kernel: groupDecodeKernel,
      variant: NO_VARIANT,
      bind: { IDX: idx.buffer, ...t.bind },
      params: { n: g.T * g.k, E, ...decodeGroupingParams(nGateUp, nDown) },
      workgroups: [1],
    });
    return { grouping: g, active: t.active };
  } catch (e) {
    g.destroy();
    throw e;
  }
}

/** The buffers group_decode writes for grouping `g` (by binding name; IDX is the caller's), and the active list it fills. */
export function decodeGroupingTargets(rec: Recorder, g: GroupingGpu): { bind: Record<string, GPUBuffer>; active: ActiveExperts } {
  const active = rec.temp(4 * g.E, 'active');
  const args = rec.temp(32, 'indirect');
  const bind = { C: g.counts.buffer, OFF: g.offsets.buffer, CUR: rec.temp(g.E * 4, 'group.cursor', { reuse: true }), ORD: g.order.buffer, POS: g.position.buffer, ACT: active, ARGS: args };
  return { bind, active: { active, args } };
}

/** group_decode's indirect-args fields: the GEMVs' output blocks for `nGateUp` and `nDown` outputs. */
export function decodeGroupingParams(nGateUp: number, nDown: number): { nbx0: number; nbx1: number } {
  return { nbx0: Math.ceil(nGateUp / GEMV_GROUPS), nbx1: Math.ceil(nDown / GEMV_GROUPS) };
}

/**
 * The TypeScript reference of {@link groupGpu}: a stable counting sort of
 * the pairs by expert (inside a group, pair ids ascend).
 *
 * @example
 * ```ts
 * const g = groupRef(new Uint32Array([1, 0, 1, 1]), 2, 2, 2); // counts [1, 3], order [1, 0, 2, 3]
 * ```
 */
export function groupRef(idx: Uint32Array, T: number, k: number, E: number): GroupingRef {
  if (idx.length !== T * k) throw new ShapeError('groupRef idx', `${T * k} values ([${T}, ${k}])`, `${idx.length} values`);
  if (!Number.isInteger(E) || E < 1) throw new ValueError('groupRef E', 'an integer >= 1', E);
  const n = T * k;
  const counts = new Uint32Array(E);
  for (let p = 0; p < n; p++) {
    if (idx[p] >= E) throw new ValueError(`groupRef idx[${p}]`, `an expert index < E=${E}`, idx[p]);
    counts[idx[p]]++;
  }
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const cursor = offsets.slice(0, E);
  const order = new Uint32Array(n);
  const position = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const slot = cursor[idx[p]]++;
    order[slot] = p;
    position[p] = slot;
  }
  return { T, k, E, counts, offsets, order, position };
}

/** Up to this many tokens a dense grouping is a constant of the device (uploaded once, no dispatch per call). */
export const DENSE_GROUPING_CONST_MAX_T = 64;

const denseConst = new WeakMap<GPUDevice, Map<number, GroupingGpu>>();

/** The device's constant dense grouping of T tokens (T <= DENSE_GROUPING_CONST_MAX_T), uploaded on first use; its destroy() (and `using`'s dispose) keeps it. */
function constDenseGrouping(ctx: GpuContext, T: number): GroupingGpu {
  let m = denseConst.get(ctx.device);
  if (!m) denseConst.set(ctx.device, (m = new Map()));
  let g = m.get(T);
  if (!g) {
    // freed with the device (a destroyed device's buffers go with it); the uploaded grouping's own dispose would free it
    const keep = () => {};
    g = { ...uploadGrouping(ctx, denseGroupingRef(T)), destroy: keep, [Symbol.dispose]: keep } as GroupingGpu;
    m.set(T, g);
  }
  return g;
}

/**
 * A dense (identity) grouping of T tokens: E=1, k=1, counts [T],
 * offsets [0, T], order = position = 0..T-1. Runs a plain MLP (e.g. a
 * shared expert) through the grouped GEMMs. Up to
 * DENSE_GROUPING_CONST_MAX_T tokens (decode) it is the device's constant
 * one, uploaded on first use and shared by every caller (nothing recorded;
 * its destroy() keeps it); beyond that a dispatch writes it into buffers of
 * the caller's (from `opts.pool`).
 *
 * @example
 * ```ts
 * const g = denseGroupingGpu(ctx, rec, T);
 * ```
 */
export function denseGroupingGpu(ctx: GpuContext, rec: Recorder, T: number, opts: GroupOptions = {}): GroupingGpu {
  if (!Number.isInteger(T) || T < 0) throw new ValueError('denseGroupingGpu T', 'an integer >= 0', T);
  if (T <= DENSE_GROUPING_CONST_MAX_T) return constDenseGrouping(ctx, T);
  const counts = allocOutput(ctx, opts.pool, 'uint32', [1], 'group.counts');
  const offsets = allocOutput(ctx, opts.pool, 'uint32', [2], 'group.offsets');
  const order = allocOutput(ctx, opts.pool, 'uint32', [T], 'group.order');
  const position = allocOutput(ctx, opts.pool, 'uint32', [T], 'group.position');
  const g = makeGrouping(T, 1, 1, counts, offsets, order, position);
  try {
    rec.dispatch({
      kernel: denseGroupingKernel,
      variant: NO_VARIANT,
      bind: { C: counts.buffer, OFF: offsets.buffer, ORD: order.buffer, POS: position.buffer },
      params: { T },
      workgroups: foldWorkgroups(ctx, Math.max(1, Math.ceil(T / WG))),
    });
  } catch (e) {
    g.destroy();
    throw e;
  }
  return g;
}

/** The TypeScript reference of {@link denseGroupingGpu}. @example `denseGroupingRef(4).order // [0, 1, 2, 3]` */
export function denseGroupingRef(T: number): GroupingRef {
  if (!Number.isInteger(T) || T < 0) throw new ValueError('denseGroupingRef T', 'an integer >= 0', T);
  const id = new Uint32Array(T);
  for (let i = 0; i < T; i++) id[i] = i;
  return { T, k: 1, E: 1, counts: new Uint32Array([T]), offsets: new Uint32Array([0, T]), order: id, position: id.slice() };
}

/**
 * Uploads a host grouping (e.g. from {@link groupRef}) as a GroupingGpu
 * owned by the caller: lets tests and the CPU/GPU bridge feed a known
 * grouping to the grouped GEMMs and combine.
 *
 * @example
 * ```ts
 * const g = uploadGrouping(ctx, groupRef(idx, T, k, E));
 * g.destroy();
 * ```
 */
export function uploadGrouping(ctx: GpuContext, g: GroupingRef): GroupingGpu {
  const n = g.T * g.k;
  if (g.counts.length !== g.E || g.offsets.length !== g.E + 1 || g.order.length !== n || g.position.length !== n) {
    throw new ShapeError('uploadGrouping', `counts [${g.E}], offsets [${g.E + 1}], order and position [${n}]`, `[${g.counts.length}], [${g.offsets.length}], [${g.order.length}], [${g.position.length}]`);
  }
  const up = (a: Uint32Array, label: string) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a), label);
  return makeGrouping(g.T, g.k, g.E, up(g.counts, 'group.counts'), up(g.offsets, 'group.offsets'), up(g.order, 'group.order'), up(g.position, 'group.position'));
}
