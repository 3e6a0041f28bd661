/**
 * Decode routing in one dispatch: the router's top-k for each of the T
 * tokens (one workgroup, token after token) and then the decode grouping
 * with the GEMVs' active-expert list, so that a decode forward runs
 * router linear -> route_decode -> gate_up GEMV -> down GEMV -> combine.
 * Same outputs as routerGpu followed by groupDecodeGpu; meant for the few
 * tokens of decode (the planner: useFusedDecodeRouting). For one token and a
 * small router the linear runs in it too (useRouterLinearInRouting).
 */
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import { defineKernel, uniformFields, type Recorder } from '../runtime/kernel.js';
import { ShapeError, ValueError } from '@webmoe/tensor';
import { LINEAR_WEIGHT_DTYPES, checkLinearGpuInputs, linearGpu, linearInputBindings, linearLoadersWgsl, type LinearInputs, type LinearWeightDType } from './linear.js';
import { allocOutput } from './op-util.js';
import { routeLinearGroups, useRouterLinearInRouting } from './plan.js';
import type { GroupingGpu, RouterParams, RoutingGpu, RoutingRef } from './moe-types.js';
import { checkRouting, prepareRouting, routeTokenWgsl, routerBindings, routerVariant, slotsWgsl, ROUTER_UNIFORMS, type RouterOptions, type RouterVariant } from './router.js';
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

/**
 * The router linear of one token inside route_decode (its fields of RouteDecodeVariant): its inputs' dtypes and
 * whether they are read 4 columns at a time (linear.ts), and `linG` groups of 256 / linG lanes, group g summing the
 * logits of experts g, g + linG, .. (linJ of them, one register each) over its lanes' columns (plan.ts
 * routeLinearGroups).
 */
export type RouteLinear = { linW: LinearWeightDType; linB: LinearInputs['bdtype']; linVec4: boolean; linG: number; linJ: number };

/** The linear's inputs of a route_decode variant with the router linear in it. */
function linearInputsOf(lin: RouteLinear): LinearInputs {
  return { wdtype: lin.linW, bdtype: lin.linB, vec4: lin.linVec4 };
}

/**
 * WGSL `fn route_linear(li: u32)`: the logits of token 0 (X [H], W [E, H], bias B) into L[0..E), as routeLinearGroups'
 * groups give: each lane sums J logits' products over its columns (chunks q = i, i + 256 / G, .. of u.kc per row, 4
 * columns each with linVec4), then the sums of each logit over its group's lanes in a fixed order, in passes of up to
 * 8 slots through the score array `sc` (free before route_token) and `rv`: parts of PS consecutive lanes, then the
 * parts in order. Ends with a storage barrier: route_token reads L.
 */
function routeLinearWgsl(lin: RouteLinear, one: boolean | undefined): string {
  if (!one) throw new ValueError('route_decode variant with the router linear', 'one token (one: true)', 'several tokens');
  const { linG: G, linJ: J } = lin;
  const lanes = 256 / G;
  const P = Math.min(J, 8);
  const PS = lanes >= 128 ? 16 : 8;
  const parts = lanes / PS;
  const js = Array.from({ length: J }, (_, j) => j);
  const product = (j: number) => (lin.linVec4 ? `dot(x, ldw4(r${j} + q))` : `x * ldw(r${j} + q)`);
  const pass = (p: number) => {
    const slots = js.slice(p * P, (p + 1) * P);
    return /* wgsl */ `
  ${slots.map((j, jj) => `wput((${jj * G}u + g) * ${lanes}u + i, a${j});`).join(' ')}
  workgroupBarrier();
  if (li < ${(slots.length * 256) / PS}u) {
    var s = 0.0;
    for (var m = 0u; m < ${PS}u; m++) { s += wget(li * ${PS}u + m); }
    rv[li] = s;
  }
  workgroupBarrier();
  if (li < ${slots.length * G}u) {
    var s = 0.0;
    for (var m = 0u; m < ${parts}u; m++) { s += rv[li * ${parts}u + m]; }
    let e = li % ${G}u + ${G}u * (${p * P}u + li / ${G}u);
    if (e < u.E) { L[e] = s${lin.linB === 'none' ? '' : ' + ldb(e)'}; }
  }`;
  };
  return /* wgsl */ `
${linearLoadersWgsl(linearInputsOf(lin))}
fn wput(w: u32, v: f32) { sc[w >> 2u][w & 3u] = bitcast<u32>(v); }
fn wget(w: u32) -> f32 { return bitcast<f32>(sc[w >> 2u][w & 3u]); }
fn route_linear(li: u32) {
  let g = li / ${lanes}u;
  let i = li % ${lanes}u;
  // rows past E read the last row (their sums are not stored)
${js.map((j) => `  let r${j} = min(g + ${j * G}u, u.E - 1u) * u.kc; var a${j} = 0.0;`).join('\n')}
  for (var q = i; q < u.kc; q += ${lanes}u) {
    let x = X[q];
${js.map((j) => `    a${j} += ${product(j)};`).join('\n')}
  }
  // a pass's level-2 lanes read rv only: the next pass writes sc before its first barrier, rv after it
${Array.from({ length: Math.ceil(J / P) }, (_, p) => pass(p)).join('\n')}
  storageBarrier();
}
`;
}

/** Variant of route_decode: the router's, `one` for a single token (grouped from workgroup memory), RouteLinear's fields with the router linear in it (one token). */
export type RouteDecodeVariant = RouterVariant & { one?: boolean } & Partial<RouteLinear>;

/** The router linear's fields of a route_decode variant, where it has them. */
function routeLinearOf(v: RouteDecodeVariant): RouteLinear | undefined {
  const { linW, linB, linVec4, linG, linJ } = v;
  return linW === undefined || linB === undefined || linVec4 === undefined || linG === undefined || linJ === undefined ? undefined : { linW, linB, linVec4, linG, linJ };
}

/**
 * The fused kernel: route_token for t = 0..T-1, then group_decode over the T*k pairs it wrote (one token:
 * group_one_token); with shared experts (v.ns), over the T*(k+ns) pairs and E+ns experts.
 */
export const routeDecodeKernel = defineKernel<RouteDecodeVariant>(
  'route_decode',
  (v) => {
    const lin = routeLinearOf(v);
    return /* wgsl */ `
${routeTokenWgsl(v)}
${v.one ? groupOneTokenWgsl(slotsWgsl(v).E, slotsWgsl(v).k) : groupDecodeWgsl(slotsWgsl(v).E)}
${lin ? routeLinearWgsl(lin, v.one) : ''}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
${
  v.one
    ? `${lin ? '  route_linear(li);\n' : ''}  route_token(0u, li); // ends with a barrier: sel holds the token's k experts
  group_one_token(li);`
    : `  for (var t = 0u; t < u.T; t++) { route_token(t, li); }
  storageBarrier(); // IDX, written above by the first k lanes of each token, read by every lane below
  group_decode(li);`
}
}
`;
  },
  {
    // the router's bindings and uniforms, then group_decode's (IDX shared; E declared once); with the router linear
    // (RouteLinear's fields) L is written, and the linear's inputs and its chunks per row follow
    signature: (v) => {
      const lin = routeLinearOf(v);
      return {
        bindings: [
          ...routerBindings(v).map((b) => (b.name === 'L' && lin ? { ...b, access: 'read_write' as const } : b)),
          ...groupDecodeBindings('read_write').filter((b) => b.name !== 'IDX'),
          ...(lin ? linearInputBindings(linearInputsOf(lin)) : []),
        ],
        uniforms: [...ROUTER_UNIFORMS, ...GROUP_DECODE_UNIFORMS.filter((f) => f.name !== 'E'), ...(lin ? uniformFields('u32', 'kc') : [])],
      };
    },
  },
);

/** What routeDecodeGpu records, all the caller's: the routing, its decode grouping, the GEMVs' active-expert list. */
export interface RouteDecodeOutputs {
  /** idx and weights [T, k (+ ns)], as routerGpu gives them. */
  routing: RoutingGpu;
  /** The decode grouping of idx, as groupDecodeGpu gives it. */
  grouping: GroupingGpu;
  /** The decode GEMVs' active-expert list. */
  active: ActiveExperts;
}

/** routeDecodeGpu's input when it also runs the router linear: x float32 [T, H], the router weight [E, H] (float32, bfloat16 or float16) and bias [E]. */
export interface RouterLinearInput {
  /** The token rows, float32 [T, H]. */
  x: GpuTensor;
  /** The router weight [E, H] in its storage dtype. */
  weight: GpuTensor;
  /** The router bias [E], any float dtype (inside route_decode: float32, bfloat16 or float16). */
  bias?: GpuTensor;
}

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
 * Given the router linear's inputs instead of logits (RouterLinearInput), it
 * also records the linear (x @ weight^T + bias) and returns its `logits`: in
 * the same dispatch where plan.ts's useRouterLinearInRouting takes it (one
 * token, a small router, the device's storage bindings), else as linearGpu.
 * @example
 * ```ts
 * const { routing, grouping, active } = routeDecodeGpu(ctx, rec, logits, params, moeDim, hiddenDim, { pool });
 * gemvGateUpGpu(ctx, rec, x, grouping, w.gateUp, act, { pool, active });
 * const withLinear = routeDecodeGpu(ctx, rec, { x, weight: gate.weight, bias: gate.bias }, params, moeDim, hiddenDim, { pool });
 * ```
 */
export function routeDecodeGpu(ctx: GpuContext, rec: Recorder, logits: GpuTensor, params: RouterParams, nGateUp: number, nDown: number, opts?: RouterOptions & GroupOptions): RouteDecodeOutputs;
/** routeDecodeGpu from the router linear's inputs: the routing as from its logits, which it returns (the caller's). */
export function routeDecodeGpu(ctx: GpuContext, rec: Recorder, linear: RouterLinearInput, params: RouterParams, nGateUp: number, nDown: number, opts?: RouterOptions & GroupOptions): RouteDecodeOutputs & { logits: GpuTensor };
export function routeDecodeGpu(
  ctx: GpuContext,
  rec: Recorder,
  input: GpuTensor | RouterLinearInput,
  params: RouterParams,
  nGateUp: number,
  nDown: number,
  opts: RouterOptions & GroupOptions = {},
): RouteDecodeOutputs & { logits?: GpuTensor } {
  if (input instanceof GpuTensor) return recordRouteDecode(ctx, rec, input, params, nGateUp, nDown, opts);
  // every check of the routing before the linear is recorded (its own dispatch where the planner keeps it out)
  checkRouting('routeDecodeGpu', params, params.numExperts, opts);
  const lin = routeLinearFor(ctx, input, params, opts);
  let logits: GpuTensor | undefined;
  try {
    logits = lin ? allocOutput(ctx, opts.pool, 'float32', [1, params.numExperts], 'linear.out') : linearGpu(ctx, rec, input.x, input.weight, { bias: input.bias, pool: opts.pool });
    return { ...recordRouteDecode(ctx, rec, logits, params, nGateUp, nDown, opts, lin && { lin, input }), logits };
  } catch (e) {
    logits?.destroy();
    throw e;
  }
}

/**
 * The router linear's variant inside route_decode for `input`, or undefined where it runs as its own dispatch
 * (useRouterLinearInRouting; or where route_decode's storage bindings would pass the device's limit). Checks the
 * inputs as linearGpu does (checkLinearGpuInputs) and the router weight's E.
 */
function routeLinearFor(ctx: GpuContext, input: RouterLinearInput, params: RouterParams, opts: RouterOptions): RouteLinear | undefined {
  const { x, weight, bias } = input;
  const { T, K: H, N: E, wdtype } = checkLinearGpuInputs('routeDecodeGpu router linear', x, weight, bias);
  if (E !== params.numExperts) throw new ShapeError('routeDecodeGpu router weight [E, H]', [params.numExperts, H], weight.shape);
  // the bias read as the weights are (float32, bfloat16, float16); fp8 ones by linearGpu
  const bdtype = bias ? bias.dtype : 'none';
  if (!useRouterLinearInRouting(T, E, H, ctx.adapterInfo.software) || (bdtype !== 'none' && !(LINEAR_WEIGHT_DTYPES as readonly string[]).includes(bdtype))) return undefined;
  const { G, J } = routeLinearGroups(E);
  const lin: RouteLinear = { linW: wdtype, linB: bdtype, linVec4: H % 4 === 0, linG: G, linJ: J };
  const bindings = routeDecodeKernel.signature!({ ...routerVariant(params, opts), one: true, ...lin }).bindings.length;
  return bindings <= ctx.device.limits.maxStorageBuffersPerShaderStage ? lin : undefined;
}

/** The bindings of the router linear's inputs in route_decode (linearInputBindings' names). */
function linearBind(input: RouterLinearInput): Record<string, GPUBuffer> {
  return { X: input.x.buffer, W: input.weight.buffer, ...(input.bias ? { B: input.bias.buffer } : {}) };
}

function recordRouteDecode(
  ctx: GpuContext,
  rec: Recorder,
  logits: GpuTensor,
  params: RouterParams,
  nGateUp: number,
  nDown: number,
  opts: RouterOptions & GroupOptions,
  linear?: { lin: RouteLinear; input: RouterLinearInput },
): RouteDecodeOutputs {
  const r = prepareRouting(ctx, 'routeDecodeGpu', logits, params, opts);
  const ns = r.ns;
  let g: GroupingGpu | undefined;
  try {
    g = allocGrouping(ctx, 'routeDecodeGpu', r.routing.idx, r.E + ns, opts);
    const t = decodeGroupingTargets(rec, g);
    const lin = linear && { variant: linear.lin, bind: linearBind(linear.input), params: { kc: linear.lin.linVec4 ? linear.input.x.shape[1] / 4 : linear.input.x.shape[1] } };
    rec.dispatch({
      kernel: routeDecodeKernel,
      variant: { ...r.variant, ...(r.T === 1 ? { one: true } : {}), ...lin?.variant },
      bind: { ...r.bind, ...t.bind, ...lin?.bind },
      params: { ...r.params, n: r.T * (r.k + ns), ...decodeGroupingParams(nGateUp, nDown), ...lin?.params },
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
