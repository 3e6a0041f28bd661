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
import { ShapeError } from '@webmoe/tensor';
import type { GroupingGpu, RouterParams, RoutingGpu, RoutingRef } from './moe-types.js';
import { prepareRouting, routeTokenWgsl, routerBindings, slotsWgsl, ROUTER_UNIFORMS, type RouterOptions, type RouterVariant } from './router.js';
import type { ActiveExperts } from './moe-gemv.js';
import { activeTailWgsl, allocGrouping, decodeGroupingTargets, decodeGroupingParams, groupDecodeBindings, groupDecodeWgsl, GROUP_DECODE_UNIFORMS, type GroupOptions } from './grouping.js';

/**
 * The decode grouping of one token from the router's selection in workgroup memory (`sel`: k distinct experts):
 * group_decode's outputs without its atomics and storage barriers (each selected expert has one row, at its rank
 * among the selected). `E`, `k`: the experts and slots as WGSL expressions (with shared experts, E + ns and k + ns).
 */
function groupOneTokenWgsl(E: string, k: string): string {
  return /* wgsl */ `${activeTailWgsl(E)}
fn group_one_token(li: u32) {
  for (var e = li; e < ${E}; e += WG) {
    var below = 0u;
    var hit = 0u;
    for (var j = 0u; j < ${k}; j++) { let s = sel[j]; below += select(0u, 1u, s < e); hit |= select(0u, 1u, s == e); }
    atomicStore(&C[e], hit);
    OFF[e] = below;
  }
  if (li == 0u) { OFF[${E}] = ${k}; }
  if (li < ${k}) {
    let e = sel[li];
    var rank = 0u;
    for (var j = 0u; j < ${k}; j++) { rank += select(0u, 1u, sel[j] < e); }
    ACT[rank] = e;
    ORD[rank] = li;
    POS[li] = rank;
  }
  active_tail(li, ${k});
}
`;
}

/** Variant of route_decode: the router's, and `one` for a single token (grouped from workgroup memory). */
export type RouteDecodeVariant = RouterVariant & { one?: boolean };

/**
 * The fused kernel: route_token for t = 0..T-1, then group_decode over the T*k pairs it wrote (one token:
 * group_one_token); with shared experts (v.ns), over the T*(k+ns) pairs and E+ns experts.
 */
export const routeDecodeKernel = defineKernel<RouteDecodeVariant>(
  'route_decode',
  (v) => /* wgsl */ `
${routeTokenWgsl(v)}
${v.one ? groupOneTokenWgsl(slotsWgsl(v).E, slotsWgsl(v).k) : groupDecodeWgsl(slotsWgsl(v).E)}
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
 * With `opts.sharedExperts` = ns > 0, the shared experts run as always-selected
 * experts E..E+ns-1 (stacked after the routed ones, see appendExpertStacks):
 * each token's k routed slots are followed by ns slots of those experts with
 * weight 1, so idx and weights are [T, k + ns] and the grouping covers E + ns
 * experts (routeDecodeRef).
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
  const ns = r.ns;
  let g: GroupingGpu | undefined;
  try {
    g = allocGrouping(ctx, 'routeDecodeGpu', r.routing.idx, r.E + ns, opts);
    const t = decodeGroupingTargets(rec, g);
    rec.dispatch({
      kernel: routeDecodeKernel,
      variant: r.T === 1 ? { ...r.variant, one: true } : r.variant,
      bind: { ...r.bind, ...t.bind },
      params: { ...r.params, n: r.T * (r.k + ns), ...decodeGroupingParams(nGateUp, nDown) },
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

/**
 * The TypeScript reference of the routing of {@link routeDecodeGpu} and routerGpu with `ns` shared experts
 * (RouterOptions.sharedExperts): the router's routing (routerRef) with each token's k slots followed by ns slots of
 * experts E..E+ns-1 at weight 1 ([T, k + ns]); its grouping is groupRef over E + ns experts.
 * @example `const r = routeDecodeRef(routerRef(logits, T, E, params), T, params.topK, E, 1)`
 */
export function routeDecodeRef(routed: RoutingRef, T: number, k: number, E: number, ns: number): RoutingRef {
  if (routed.idx.length !== T * k || routed.weights.length !== T * k) throw new ShapeError('routeDecodeRef routing', `${T * k} slots ([${T}, ${k}])`, `${routed.idx.length}`);
  const kw = k + ns;
  const idx = new Uint32Array(T * kw);
  const weights = new Float32Array(T * kw);
  for (let t = 0; t < T; t++) {
    idx.set(routed.idx.subarray(t * k, (t + 1) * k), t * kw);
    weights.set(routed.weights.subarray(t * k, (t + 1) * k), t * kw);
    for (let s = 0; s < ns; s++) {
      idx[t * kw + k + s] = E + s;
      weights[t * kw + k + s] = 1;
    }
  }
  return { idx, weights };
}
