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
import { allocGrouping, decodeGroupingTargets, decodeGroupingParams, groupDecodeBindings, groupDecodeWgsl, GROUP_DECODE_UNIFORMS, type GroupOptions } from './grouping.js';

/** Pairs (T*k) that route_decode keeps in workgroup memory for the grouping; past them the grouping reads IDX back. */
const KEPT_PAIRS = 256;

/**
 * The fused kernel: route_token for t = 0..T-1, each token's pairs copied to
 * workgroup memory (`rp`) as it is routed, then group_decode over them,
 * counting in the router's score array `sc` (ROUTER_MAX_EXPERTS >= E, free
 * once the tokens are routed): no storage barrier and no global read-back
 * unless T*k > KEPT_PAIRS. Workgroup memory, every array counted: the
 * router's sc 8192 + taken 256 + rv 1024 + sel 128 (+ gsc, gkeep 2048 for
 * sigmoid_grouped, smax/ssum 8 for softmax_topk), rp 1024, group_decode's
 * 3200: at most 15880 of WebGPU's default 16384 bytes
 * (decode-grouping.gpu.test.ts compiles every variant under that limit).
 */
export const routeDecodeKernel = defineKernel<RouterVariant>(
  'route_decode',
  (v) => /* wgsl */ `
${routeTokenWgsl(v)}
var<workgroup> rp: array<u32, ${KEPT_PAIRS}>;
fn gd_pair(p: u32) -> u32 {
  if (u.n <= ${KEPT_PAIRS}u) { return rp[p]; }
  return IDX[p];
}
${groupDecodeWgsl('sc')}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  for (var t = 0u; t < u.T; t++) {
    route_token(t, li);
    // sel holds the token's experts until the next route_token clears it (after its first barrier)
    for (var j = li; j < u.k; j += WG) { let p = t * u.k + j; if (p < ${KEPT_PAIRS}u) { rp[p] = sel[j]; } }
  }
  if (u.n > ${KEPT_PAIRS}u) { storageBarrier(); } // IDX, written by lane 0 of each token, read back by every lane
  group_decode(li); // its first barrier comes before any read of rp or sc
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
