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
import type { ActiveExperts } from './moe-gemv.js';
import { prepareRouting, routeTokenWgsl, routerBindings, ROUTER_UNIFORMS, type RouterOptions, type RouterVariant } from './router.js';
import { allocGrouping, decodeGroupingTargets, decodeGroupingParams, groupDecodeBindings, GROUP_DECODE_UNIFORMS, GROUP_DECODE_WGSL, type GroupOptions } from './grouping.js';

/** The fused kernel: route_token for t = 0..T-1, then group_decode over the T*k pairs it wrote. */
export const routeDecodeKernel = defineKernel<RouterVariant>(
  'route_decode',
  (v) => /* wgsl */ `
${routeTokenWgsl(v)}
${GROUP_DECODE_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  for (var t = 0u; t < u.T; t++) { route_token(t, li); }
  storageBarrier(); // IDX, written above by lane 0 of each token, read by every lane below
  group_decode(li);
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
      variant: r.variant,
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
