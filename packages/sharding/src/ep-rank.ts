import type { GroupingRef } from '@webmoe/kernels-wgsl';
import { ShapeError } from '@webmoe/tensor';
import { ShardingError } from './errors.js';
import { expertPlacement, gatherRowsRef, planEPReceive } from './ep.js';
import type { HostTransport } from './transport.js';

/** A slot whose expert the destination does not own (in {@link EPRankDispatchPlan.slotExperts}). */
export const NO_LOCAL_EXPERT = 0xffffffff;

/**
 * What one rank sends in a token-deduplicated EP dispatch (DeepEP style):
 * each token goes **once to each rank that owns at least one of its k
 * experts**, with its k slots' local expert ids (or {@link NO_LOCAL_EXPERT})
 * and router weights. Send rows are grouped by destination (rank order),
 * inside a destination in token order.
 */
export interface EPRankDispatchPlan {
  readonly T: number;
  readonly k: number;
  readonly numExperts: number;
  readonly epSize: number;
  /** [epSize] token rows to each destination. */
  readonly sendCounts: Uint32Array;
  /** [epSize + 1] first send row of each destination. */
  readonly sendOffsets: Uint32Array;
  /** [rows] the token of each send row. */
  readonly sendTokens: Uint32Array;
  /** [rows * k] slot j of row r: the expert among the destination's experts, or NO_LOCAL_EXPERT. */
  readonly slotExperts: Uint32Array;
  /** [rows * k] the router weight of each slot. */
  readonly slotWeights: Float32Array;
}

/**
 * Plans one rank's deduplicated dispatch from its routing (idx, weights
 * [T, k]).
 *
 * @example
 * ```ts
 * const p = planEPRankDispatch(Uint32Array.of(0, 1, 2, 3), Float32Array.of(.5, .5, .5, .5), 2, 2, 4, 2);
 * p.sendCounts // [1, 1]: token 0 (experts 0, 1) to rank 0 once, token 1 (experts 2, 3) to rank 1 once
 * ```
 */
export function planEPRankDispatch(idx: Uint32Array, weights: Float32Array, T: number, k: number, numExperts: number, epSize: number): EPRankDispatchPlan {
  const place = expertPlacement(numExperts, epSize);
  if (!Number.isInteger(T) || T < 0) throw new ShardingError('planEPRankDispatch T', 'a non-negative integer', T);
  if (!Number.isInteger(k) || k < 1) throw new ShardingError('planEPRankDispatch k', 'a positive integer', k);
  if (idx.length !== T * k) throw new ShapeError('planEPRankDispatch idx', [T, k], [idx.length]);
  if (weights.length !== T * k) throw new ShapeError('planEPRankDispatch weights', [T, k], [weights.length]);
  const per = place.perDevice;
  const sendCounts = new Uint32Array(epSize);
  for (let p = 0; p < idx.length; p++) if (idx[p] >= numExperts) throw new ShardingError(`planEPRankDispatch idx[${p}]`, `an expert in [0, ${numExperts})`, idx[p]);
  const goes = (t: number, d: number) => {
    for (let j = 0; j < k; j++) if (Math.floor(idx[t * k + j] / per) === d) return true;
    return false;
  };
  for (let t = 0; t < T; t++) for (let d = 0; d < epSize; d++) if (goes(t, d)) sendCounts[d]++;
  const sendOffsets = new Uint32Array(epSize + 1);
  for (let d = 0; d < epSize; d++) sendOffsets[d + 1] = sendOffsets[d] + sendCounts[d];
  const rows = sendOffsets[epSize];
  const sendTokens = new Uint32Array(rows);
  const slotExperts = new Uint32Array(rows * k).fill(NO_LOCAL_EXPERT);
  const slotWeights = new Float32Array(rows * k);
  let r = 0;
  for (let d = 0; d < epSize; d++) {
    for (let t = 0; t < T; t++) {
      if (!goes(t, d)) continue;
      sendTokens[r] = t;
      for (let j = 0; j < k; j++) {
        const e = idx[t * k + j];
        if (Math.floor(e / per) === d) slotExperts[r * k + j] = e % per;
        slotWeights[r * k + j] = weights[t * k + j];
      }
      r++;
    }
  }
  return Object.freeze({ T, k, numExperts, epSize, sendCounts, sendOffsets, sendTokens, slotExperts, slotWeights });
}

/** Bytes of one dispatched token row: H f32 activations, k u32 local experts, k f32 weights. @example `epRankRecordBytes(7168, 8) // 28736` */
export function epRankRecordBytes(H: number, k: number): number {
  return 4 * (H + 2 * k);
}

/** The bytes one {@link rankEPForward} step moved (this rank's view). */
export interface EPRankStats {
  /** Token rows this rank sent (all destinations, itself included). */
  rowsSent: number;
  /** Dispatch bytes sent to other ranks (its own block excluded). */
  dispatchBytes: number;
  /** Combine bytes sent back to other ranks (its own block excluded). */
  combineBytes: number;
  /** (token, slot) pairs of this rank's tokens whose expert lives on another rank: what a once-per-pair dispatch would send. */
  remotePairs: number;
}

/** Options of {@link rankEPForward}. */
export interface RankEPForwardOptions {
  /** This rank's tokens f32 [T, H]. */
  x: Float32Array;
  T: number;
  H: number;
  /** Routing of this rank's tokens: idx u32 [T, k], weights f32 [T, k]. */
  idx: Uint32Array;
  weights: Float32Array;
  k: number;
  numExperts: number;
  /** Scale the expert input by the router weight (Llama 4) instead of the output. */
  applyRouterWeightFirst: boolean;
  /**
   * This rank's experts: the expanded (token, local expert) rows f32 [P, H]
   * in pair order (already scaled when applyRouterWeightFirst) and their
   * grouping (T = P, k = 1, E = E / epSize), as the grouped GEMMs
   * (`groupedGateUpRef` / `groupedGateUpGpu`) take them -> outputs f32
   * [P, H] in grouped order.
   */
  experts(x: Float32Array, grouping: GroupingRef): Promise<Float32Array> | Float32Array;
}

const asBytes = (a: Float32Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * One expert-parallel MoE step of one rank over a {@link HostTransport}
 * (every rank calls it, also with T = 0): routes nothing itself, takes the
 * rank's routing, sends each token once per destination rank
 * ({@link planEPRankDispatch}) in one allToAllv, expands the received tokens
 * to (token, local expert) pairs grouped by expert, runs `experts`, sums each
 * received token's pairs in slot order (`w * y`, f32) into one partial row,
 * sends the partials back in one allToAllv and adds them per token in rank
 * order. Returns the routed-experts output f32 [T, H] (no shared expert) and
 * the bytes moved.
 *
 * @example
 * ```ts
 * const { out } = await rankEPForward(tr, { x, T, H, idx, weights, k, numExperts: E, applyRouterWeightFirst: false, experts: run });
 * ```
 */
export async function rankEPForward(tr: HostTransport, o: RankEPForwardOptions): Promise<{ out: Float32Array; stats: EPRankStats }> {
  const { x, T, H, k } = o;
  const n = tr.size;
  if (x.length !== T * H) throw new ShapeError(`rankEPForward x on rank ${tr.rank}`, [T, H], [x.length / H, H]);
  const plan = planEPRankDispatch(o.idx, o.weights, T, k, o.numExperts, n);
  const local = o.numExperts / n;
  // 1. dispatch: one record per (token, destination): x row | k local experts | k weights
  const R = epRankRecordBytes(H, k);
  const rows = plan.sendTokens.length;
  const send = new Uint8Array(rows * R);
  const sendF = new Float32Array(send.buffer);
  const sendU = new Uint32Array(send.buffer);
  const W = R / 4;
  for (let r = 0; r < rows; r++) {
    const t = plan.sendTokens[r];
    sendF.set(x.subarray(t * H, (t + 1) * H), r * W);
    sendU.set(plan.slotExperts.subarray(r * k, (r + 1) * k), r * W + H);
    sendF.set(plan.slotWeights.subarray(r * k, (r + 1) * k), r * W + H + k);
  }
  const there = await tr.allToAllv(send, Array.from(plan.sendCounts, (c) => c * R));
  for (const [s, b] of there.recvCounts.entries()) {
    if (b % R !== 0) throw new ShardingError(`rankEPForward dispatch from rank ${s} on rank ${tr.rank}`, `whole records of ${R} bytes (H = ${H}, k = ${k} on every rank)`, `${b} bytes`);
  }
  // 2. expand the received tokens to (token, local expert) pairs, slot order inside a token
  const recvRows = there.recv.byteLength / R;
  const rF = new Float32Array(there.recv.buffer, there.recv.byteOffset, there.recv.byteLength / 4);
  const rU = new Uint32Array(there.recv.buffer, there.recv.byteOffset, there.recv.byteLength / 4);
  const xRecv = new Float32Array(recvRows * H);
  const pairRow: number[] = [];
  const pairExpert: number[] = [];
  const pairWeight: number[] = [];
  for (let r = 0; r < recvRows; r++) {
    xRecv.set(rF.subarray(r * W, r * W + H), r * H);
    for (let j = 0; j < k; j++) {
      const e = rU[r * W + H + j];
      if (e === NO_LOCAL_EXPERT) continue;
      if (e >= local) throw new ShardingError(`rankEPForward received expert on rank ${tr.rank}`, `a local expert in [0, ${local}) or none`, e);
      pairRow.push(r);
      pairExpert.push(e);
      pairWeight.push(rF[r * W + H + k + j]);
    }
  }
  const P = pairRow.length;
  const pr = Uint32Array.from(pairRow);
  const pw = Float32Array.from(pairWeight);
  const { grouping } = planEPReceive(tr.rank, [Uint32Array.from(pairExpert)], local);
  // 3. the experts, on the pairs in grouped order; back to pair order
  let yPair: Float32Array = new Float32Array(0);
  if (P > 0) {
    const xp = gatherRowsRef(xRecv, H, pr, o.applyRouterWeightFirst ? pw : undefined);
    const yg = await o.experts(xp, grouping);
    if (yg.length !== P * H) throw new ShapeError(`rankEPForward experts output on rank ${tr.rank}`, [P, H], [yg.length / H, H]);
    yPair = gatherRowsRef(yg, H, grouping.position);
  }
  // 4. one partial sum per received token (its pairs in slot order, f32)
  const partial = new Float32Array(recvRows * H);
  for (let q = 0; q < P; q++) {
    const r = pr[q];
    const w = pw[q];
    for (let c = 0; c < H; c++) partial[r * H + c] += o.applyRouterWeightFirst ? yPair[q * H + c] : Math.fround(w * yPair[q * H + c]);
  }
  // 5. combine: partials home, summed per token in rank order
  const home = await tr.allToAllv(asBytes(partial), there.recvCounts.map((b) => (b / R) * H * 4));
  const expect = Array.from(plan.sendCounts, (c) => c * H * 4);
  for (let d = 0; d < n; d++) {
    if (home.recvCounts[d] !== expect[d]) throw new ShardingError(`rankEPForward combine from rank ${d} on rank ${tr.rank}`, `${expect[d]} bytes (the rows sent there)`, home.recvCounts[d]);
  }
  const back = new Float32Array(home.recv.buffer, home.recv.byteOffset, home.recv.byteLength / 4);
  const out = new Float32Array(T * H);
  for (let r = 0; r < rows; r++) {
    const t = plan.sendTokens[r];
    for (let c = 0; c < H; c++) out[t * H + c] += back[r * H + c];
  }
  const own = tr.rank;
  let remotePairs = 0;
  for (let p = 0; p < o.idx.length; p++) if (Math.floor(o.idx[p] / local) !== own) remotePairs++;
  const stats: EPRankStats = {
    remotePairs,
    rowsSent: rows,
    dispatchBytes: (rows - plan.sendCounts[own]) * R,
    combineBytes: (recvRows - there.recvCounts[own] / R) * H * 4,
  };
  return { out, stats };
}
