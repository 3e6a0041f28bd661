/**
 * Decode routing in one dispatch: the router's top-k for each of the T
 * tokens (one workgroup, token after token) and then the decode grouping
 * with the GEMVs' active-expert list, so that a decode forward runs
 * router linear -> route_decode -> gate_up GEMV -> down GEMV -> combine.
 * Same outputs as routerGpu followed by groupDecodeGpu; meant for the few
 * tokens of decode (the planner: useFusedDecodeRouting).
 */
import type { GpuContext } from '../runtime/context.js';
import type { GpuTensor } from '../runtime/tensor.js';
import { defineKernel, type Recorder } from '../runtime/kernel.js';
import type { GroupingGpu, RouterParams, RoutingGpu } from './moe-types.js';
import { prepareRouting, routeTokenWgsl, routerBindings, ROUTER_UNIFORMS, type RouterOptions, type RouterVariant } from './router.js';
import type { ActiveExperts } from './moe-gemv.js';
import { ACTIVE_TAIL_WGSL, allocGrouping, decodeGroupingTargets, decodeGroupingParams, groupDecodeBindings, GROUP_DECODE_UNIFORMS, GROUP_DECODE_WGSL, type GroupOptions } from './grouping.js';

/**
 * The decode grouping of one token from the router's selection in workgroup memory (`sel`: k distinct experts):
 * group_decode's outputs without its atomics and storage barriers (each selected expert has one row, at its rank
 * among the selected).
 */
const GROUP_ONE_TOKEN_WGSL = /* wgsl */ `${ACTIVE_TAIL_WGSL}
fn group_one_token(li: u32) {
  for (var e = li; e < u.E; e += WG) {
    var below = 0u;
    var hit = 0u;
    for (var j = 0u; j < u.k; j++) { let s = sel[j]; below += select(0u, 1u, s < e); hit |= select(0u, 1u, s == e); }
    atomicStore(&C[e], hit);
    OFF[e] = below;
  }
  if (li == 0u) { OFF[u.E] = u.k; }
  if (li < u.k) {
    let e = sel[li];
    var rank = 0u;
    for (var j = 0u; j < u.k; j++) { rank += select(0u, 1u, sel[j] < e); }
    ACT[rank] = e;
    ORD[rank] = li;
    POS[li] = rank;
  }
  active_tail(li, u.k);
}
`;

/** Variant of route_decode: the router's, and `one` for a single token (grouped from workgroup memory). */
export type RouteDecodeVariant = RouterVariant & { one?: boolean };

/** The fused kernel: route_token for t = 0..T-1, then group_decode over the T*k pairs it wrote (one token: group_one_token). */
export const routeDecodeKernel = defineKernel<RouteDecodeVariant>(
  'route_decode',
  (v) => /* wgsl */ `
${routeTokenWgsl(v)}
${v.one ? GROUP_ONE_TOKEN_WGSL : GROUP_DECODE_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
${
  v.one
    ? `  route_token(0u, li); // ends with a barrier: sel holds the token's k experts
  group_one_token(li);`
    : `  for (var t = 0u; t < u.T; t++) { route_token(t, li); }
  storageBarrier(); // IDX, written above by the first k lanes of each token, read by every lane below
  group_decode(li);`
}
}
`,
  {
    // the router's bindings and uniforms, then group_decode's (IDX shared; E declared once)
    signature: (v) => ({
      bindings: [...routerBindings(v), ...groupDecodeBindings('read_write').filter((b) => b.name !== 'IDX')],
      uniforms: [...ROUTER_UNIFORMS, ...GROUP_DECODE_UNIFORMS.filter((f) => f.name !== 'E')],
    }),
  },
);

/**
 * Records routing and decode grouping of logits float32 [T, E] in one
 * dispatch: the routing (idx, weights) as routerGpu gives it, the grouping
 * as groupDecodeGpu gives it for that idx, and the active-expert list of
 * the decode GEMVs (`nGateUp`, `nDown`: their output widths). All outputs
 * belong to the caller (scratch from `opts.pool` when given).
 * @example
 * ```ts
 * const { routing, grouping, active } = routeDecodeGpu(ctx, rec, logits, params, moeDim, hiddenDim, { pool });
 * gemvGateUpGpu(ctx, rec, x, grouping, w.gateUp, act, { pool, active });
 * ```
 */
export function routeDecodeGpu(
  ctx: GpuContext,
  rec: Recorder,
  logits: GpuTensor,
  params: RouterParams,
  nGateUp: number,
  nDown: number,
  opts: RouterOptions & GroupOptions = {},
): { routing: RoutingGpu; grouping: GroupingGpu; active: ActiveExperts } {
  const r = prepareRouting(ctx, 'routeDecodeGpu', logits, params, opts);
  let g: GroupingGpu | undefined;
  try {
    g = allocGrouping(ctx, 'routeDecodeGpu', r.routing.idx, r.E, opts);
    const t = decodeGroupingTargets(rec, g);
    rec.dispatch({
      kernel: routeDecodeKernel,
      variant: r.T === 1 ? { ...r.variant, one: true } : r.variant,
      bind: { ...r.bind, ...t.bind },
      params: { ...r.params, n: r.T * r.k, ...decodeGroupingParams(nGateUp, nDown) },
      workgroups: [1],
    });
    return { routing: r.routing, grouping: g, active: t.active };
  } catch (e) {
    g?.destroy();
    r.routing.idx.destroy();
    r.routing.weights.destroy();
    throw e;
  }
}
