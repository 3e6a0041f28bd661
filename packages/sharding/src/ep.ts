import { groupRef, type GroupingRef } from '@webmoe/kernels-wgsl';
import { ShapeError } from '@webmoe/tensor';
import { ShardingError } from './errors.js';
import type { IndexRange } from './range.js';

/**
 * Which device owns which experts under expert parallelism: device i owns
 * the contiguous experts `[i*E/n, (i+1)*E/n)`; E must be divisible by n.
 *
 * @example
 * ```ts
 * const p = expertPlacement(8, 4);
 * p.owner(5) // 2
 * p.localIndex(5) // 1
 * p.ranges[3] // [6, 8]
 * ```
 */
export interface ExpertPlacement {
  readonly numExperts: number;
  readonly epSize: number;
  /** Experts per device (E / epSize). */
  readonly perDevice: number;
  /** Expert range of each device. */
  readonly ranges: readonly IndexRange[];
  /** The device that owns expert e. */
  owner(e: number): number;
  /** e's index among its owner's experts. */
  localIndex(e: number): number;
}

/** See {@link ExpertPlacement}. Throws ShardingError when E is not divisible by epSize. @example `expertPlacement(64, 8).perDevice // 8` */
export function expertPlacement(numExperts: number, epSize: number): ExpertPlacement {
  if (!Number.isInteger(epSize) || epSize < 1) throw new ShardingError('epSize', 'a positive integer', epSize);
  if (!Number.isInteger(numExperts) || numExperts < 1) throw new ShardingError('numExperts', 'a positive integer', numExperts);
  if (numExperts % epSize !== 0) throw new ShardingError(`expert parallelism: numExperts (over epSize ${epSize})`, `a multiple of ${epSize}`, numExperts);
  const per = numExperts / epSize;
  const ranges = Object.freeze(Array.from({ length: epSize }, (_, i) => Object.freeze([i * per, (i + 1) * per] as const)));
  const check = (e: number) => {
    if (!Number.isInteger(e) || e < 0 || e >= numExperts) throw new ShardingError('expert index', `an integer in [0, ${numExperts})`, e);
  };
  return Object.freeze({
    numExperts,
    epSize,
    perDevice: per,
    ranges,
    owner: (e: number) => (check(e), Math.floor(e / per)),
    localIndex: (e: number) => (check(e), e % per),
  });
}

/**
 * What one source device sends in an EP dispatch, from its routing idx
 * [T, k] (T = the tokens on that device). Pair id `p = t*k + j`.
 * Send rows are grouped by destination (device order), inside a destination
 * by expert, inside an expert by pair id: row r carries token
 * `sendTokens[r]` for pair `order[r]`.
 */
export interface EPDispatchPlan {
  readonly src: number;
  readonly T: number;
  readonly k: number;
  readonly numExperts: number;
  readonly epSize: number;
  /** [epSize] rows to each destination (the counts to exchange first). */
  readonly sendCounts: Uint32Array;
  /** [epSize + 1] first send row of each destination. */
  readonly sendOffsets: Uint32Array;
  /** [T*k] pair id at each send row. */
  readonly order: Uint32Array;
  /** [T*k] token of each send row (the gather index that builds the send buffer from x). */
  readonly sendTokens: Uint32Array;
  /** [T*k] the row's expert, as an index among the destination's experts (sent along with the counts). */
  readonly sendExperts: Uint32Array;
  /**
   * The combine plan: the rows come back in send order, so this grouping
   * (E = epSize destinations, counts = sendCounts, order, position =
   * inverse of order) is what a combine kernel needs: `out[t] = sum_j
   * w[t,j] * y[position[t*k+j]]` in slot order j = 0..k-1, in f32.
   */
  readonly combine: GroupingRef;
}

/**
 * Plans one device's EP dispatch (host side; idx downloaded when EP is on,
 * or computed on that device).
 *
 * @example
 * ```ts
 * const plan = planEPDispatch(Uint32Array.of(0, 3, 2, 1), 2, 2, 4, 2); // T=2, k=2, E=4, 2 devices
 * plan.sendCounts // [2, 2]
 * plan.order // [0, 3, 2, 1]  (experts 0, 1 | 2, 3)
 * ```
 */
export function planEPDispatch(idx: Uint32Array, T: number, k: number, numExperts: number, epSize: number, src = 0): EPDispatchPlan {
  const place = expertPlacement(numExperts, epSize);
  if (!Number.isInteger(T) || T < 0) throw new ShardingError('planEPDispatch T', 'a non-negative integer', T);
  if (!Number.isInteger(k) || k < 1) throw new ShardingError('planEPDispatch k', 'a positive integer', k);
  if (!Number.isInteger(src) || src < 0 || src >= epSize) throw new ShardingError('planEPDispatch src', `an integer in [0, ${epSize})`, src);
  if (!(idx instanceof Uint32Array)) throw new ShardingError('planEPDispatch idx', 'a Uint32Array [T, k]', (idx as object)?.constructor?.name ?? typeof idx);
  if (idx.length !== T * k) throw new ShapeError('planEPDispatch idx', [T, k], [idx.length]);
  const E = numExperts;
  const perExpert = new Uint32Array(E + 1);
  for (let p = 0; p < idx.length; p++) {
    const e = idx[p];
    if (e >= E) throw new ShardingError(`planEPDispatch idx[${p}]`, `an expert in [0, ${E})`, e);
    perExpert[e + 1]++;
  }
  for (let e = 0; e < E; e++) perExpert[e + 1] += perExpert[e];
  const n = T * k;
  const order = new Uint32Array(n);
  const cursor = perExpert.slice(0, E);
  for (let p = 0; p < n; p++) order[cursor[idx[p]]++] = p; // stable counting sort by expert
  const sendOffsets = new Uint32Array(epSize + 1);
  for (let d = 0; d <= epSize; d++) sendOffsets[d] = perExpert[Math.min(E, d * place.perDevice)];
  const sendCounts = new Uint32Array(epSize);
  for (let d = 0; d < epSize; d++) sendCounts[d] = sendOffsets[d + 1] - sendOffsets[d];
  const sendTokens = new Uint32Array(n);
  const sendExperts = new Uint32Array(n);
  const position = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    const p = order[r];
    sendTokens[r] = Math.floor(p / k);
    sendExperts[r] = idx[p] % place.perDevice;
    position[p] = r;
  }
  const combine: GroupingRef = { T, k, E: epSize, counts: sendCounts, offsets: sendOffsets, order, position };
  return Object.freeze({ src, T, k, numExperts, epSize, sendCounts, sendOffsets, order, sendTokens, sendExperts, combine });
}

/** What one destination device receives and computes in an EP dispatch. */
export interface EPReceivePlan {
  readonly dst: number;
  /** [epSize] rows from each source. */
  readonly recvCounts: Uint32Array;
  /** [epSize + 1] first received row of each source. */
  readonly recvOffsets: Uint32Array;
  /** Total rows received. */
  readonly rows: number;
  /** [rows] local expert of each received row. */
  readonly experts: Uint32Array;
  /**
   * The received rows grouped by local expert (T = rows, k = 1, E = E/epSize):
   * the grouping the grouped gate_up / down GEMMs take. Their output is in
   * grouped order; `grouping.position[r]` maps received row r to it, so the
   * rows to send back (in received order) are `y[position[r]]`.
   */
  readonly grouping: GroupingRef;
}

/**
 * Plans one destination's side from what every source sends it:
 * `expertsFromSrc[src]` = the slice of `plans[src].sendExperts` for this
 * destination (in one process, {@link planEP} takes it from the plans;
 * across processes it travels with the counts).
 *
 * @example
 * ```ts
 * const r = planEPReceive(1, [Uint32Array.of(0, 1), Uint32Array.of(1)], 2);
 * r.grouping.counts // [1, 2]
 * ```
 */
export function planEPReceive(dst: number, expertsFromSrc: readonly Uint32Array[], localExperts: number): EPReceivePlan {
  const n = expertsFromSrc.length;
  if (!Number.isInteger(localExperts) || localExperts < 1) throw new ShardingError('planEPReceive localExperts', 'a positive integer', localExperts);
  const recvCounts = Uint32Array.from(expertsFromSrc, (a) => a.length);
  const recvOffsets = new Uint32Array(n + 1);
  for (let s = 0; s < n; s++) recvOffsets[s + 1] = recvOffsets[s] + recvCounts[s];
  const rows = recvOffsets[n];
  const experts = new Uint32Array(rows);
  for (let s = 0; s < n; s++) {
    const a = expertsFromSrc[s];
    for (let r = 0; r < a.length; r++) {
      if (a[r] >= localExperts) throw new ShardingError(`planEPReceive expert of row ${r} from ${s}`, `a local expert in [0, ${localExperts})`, a[r]);
    }
    experts.set(a, recvOffsets[s]);
  }
  // the received rows grouped by local expert, in receive order inside an expert (the counting sort of groupRef)
  return Object.freeze({ dst, recvCounts, recvOffsets, rows, experts, grouping: groupRef(experts, rows, 1, localExperts) });
}

/**
 * Plans a whole EP step in one process: each device's dispatch from its own
 * routing, then each device's receive side.
 *
 * @example
 * ```ts
 * const { dispatch, receive } = planEP([idx0, idx1], [T0, T1], k, E, 2);
 * ```
 */
export function planEP(idxPerDevice: readonly Uint32Array[], tokensPerDevice: readonly number[], k: number, numExperts: number, epSize: number): { dispatch: EPDispatchPlan[]; receive: EPReceivePlan[] } {
  if (idxPerDevice.length !== epSize || tokensPerDevice.length !== epSize) {
    throw new ShardingError('planEP', `routing and token counts for ${epSize} devices`, `${idxPerDevice.length} and ${tokensPerDevice.length}`);
  }
  const dispatch = idxPerDevice.map((idx, s) => planEPDispatch(idx, tokensPerDevice[s], k, numExperts, epSize, s));
  const local = numExperts / epSize;
  const receive = Array.from({ length: epSize }, (_, d) =>
    planEPReceive(
      d,
      dispatch.map((p) => p.sendExperts.subarray(p.sendOffsets[d], p.sendOffsets[d + 1])),
      local,
    ),
  );
  return { dispatch, receive };
}

/**
 * Builds a send buffer on the host: row r = `x[rows[r]]` (times `scale[r]`
 * when given: the router weight when applyRouterWeightFirst).
 *
 * @example
 * ```ts
 * gatherRowsRef(x, H, plan.sendTokens) // [T*k, H] in send order
 * ```
 */
export function gatherRowsRef(x: Float32Array, H: number, rows: Uint32Array, scale?: Float32Array): Float32Array {
  if (!Number.isInteger(H) || H < 1 || x.length % H !== 0) throw new ShapeError('gatherRowsRef x', `[T, ${H}]`, [x.length]);
  const T = x.length / H;
  if (scale && scale.length !== rows.length) throw new ShapeError('gatherRowsRef scale', [rows.length], [scale.length]);
  const out = new Float32Array(rows.length * H);
  for (let r = 0; r < rows.length; r++) {
    const t = rows[r];
    if (t >= T) throw new ShardingError(`gatherRowsRef rows[${r}]`, `a row in [0, ${T})`, t);
    const s = scale ? scale[r] : 1;
    for (let c = 0; c < H; c++) out[r * H + c] = scale ? Math.fround(x[t * H + c] * s) : x[t * H + c];
  }
  return out;
}

/**
 * The EP combine on the host: `out[t] = sum_j w[t,j] * y[position[t*k+j]]`
 * summed in slot order j = 0..k-1 in f32 (weights null: unweighted, for
 * applyRouterWeightFirst). `y` holds the returned rows in send order.
 *
 * @example
 * ```ts
 * const out = epCombineRef(yBack, plan, routing.weights, H); // [T, H]
 * ```
 */
export function epCombineRef(y: Float32Array, plan: EPDispatchPlan, weights: Float32Array | null, H: number): Float32Array {
  const { T, k } = plan;
  if (y.length !== T * k * H) throw new ShapeError('epCombineRef y', [T * k, H], [y.length / H, H]);
  if (weights && weights.length !== T * k) throw new ShapeError('epCombineRef weights', [T, k], [weights.length]);
  const pos = plan.combine.position;
  const out = new Float32Array(T * H);
  const acc = new Float32Array(H);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const p = t * k + j;
      const r = pos[p] * H;
      const w = weights ? weights[p] : 1;
      for (let c = 0; c < H; c++) acc[c] += weights ? Math.fround(w * y[r + c]) : y[r + c];
    }
    out.set(acc, t * H);
  }
  return out;
}
