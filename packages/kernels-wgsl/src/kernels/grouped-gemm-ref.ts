/**
 * TypeScript references of the grouped GEMMs (grouped-gemm.ts; the CPU path
 * runs cpu-kernels.ts, checked against these): weights decoded one row
 * at a time, accumulation in f64 rounded to f32.
 */
import type { HostTensor } from '@webmoe/tensor';
import { ShapeError, ValueError, toFloat32 } from '@webmoe/tensor';
import type { ExpertActivation, ExpertStackHost, GroupingRef } from './moe-types.js';
import { expertDims } from './expert-weights.js';
import { chunkOfRow, decodeExpertRow, fakeQuantFp8Ref, type ExpertActQuantOptions } from './quant-ref.js';
import { gatedActivationRef } from './activation-ref.js';
import { checkAct, checkActQuant, checkBias, checkGroupingRef, type ActParams } from './grouped-gemm-args.js';

/** The bias [E * rows] of the reference GEMMs as f32: `bias`, or a chunked stack's chunk biases (then `bias` must be undefined). */
function biasRef(w: ExpertStackHost, bias: HostTensor | undefined, what: string, E: number, rows: number): Float32Array | undefined {
  checkBias(what, bias, E, rows);
  if (w.kind !== 'chunked' || !w.chunks[0].bias) return bias ? toFloat32(bias.dtype, bias.data) : undefined;
  if (bias) throw new ValueError(what, 'undefined with chunked weights (their biases travel in the chunks)', `a ${bias.dtype} [${bias.shape.join(', ')}] tensor`);
  const out = new Float32Array(E * rows);
  for (let e = 0; e < E; e++)
    for (let r = 0; r < rows; r++) {
      const { chunk, localRow } = chunkOfRow(w, e, r);
      const b = chunk.bias!;
      const i = (e - chunk.e0) * b.shape[1] + localRow;
      out[e * rows + r] = toFloat32(b.dtype, b.data.subarray(i, i + 1) as typeof b.data)[0];
    }
  return out;
}

/** The checked operands of a grouped gate_up on the host (the reference's and the CPU kernel's). */
export interface GateUpHostCall {
  E: number;
  H: number;
  I: number;
  /** Grouped rows (T * k). */
  rows: number;
  a: ActParams;
  /** The bias [E * 2I] as f32. */
  b: Float32Array | undefined;
  /** Input rows in grouped order [rows, H]: scaled by the row scale, then fake-quantised where asked. */
  xq: Float32Array;
}

/**
 * Checks the arguments of a host gate_up (`what`: the caller's name in errors) and gathers its input rows.
 * @example `const { E, H, I, xq } = gateUpHostCall('groupedGateUpRef', x, g, w, undefined, act, undefined, {})`
 */
export function gateUpHostCall(
  what: string,
  x: Float32Array,
  g: GroupingRef,
  w: ExpertStackHost,
  bias: HostTensor | undefined,
  act: ExpertActivation,
  rowScale: Float32Array | undefined,
  opts: ExpertActQuantOptions,
): GateUpHostCall {
  checkGroupingRef(g);
  const { T, k, E } = g;
  const d = expertDims(w, `${what} weights`);
  const H = d.cols;
  if (d.E !== E || d.rows % 2 !== 0) throw new ShapeError(`${what} weights`, `[E=${E}, 2I (even), H]`, [d.E, d.rows, d.cols]);
  if (x.length !== T * H) throw new ShapeError(`${what} x`, `[T=${T}, H=${H}] (${T * H} values)`, [x.length]);
  if (rowScale && rowScale.length !== T * k) throw new ShapeError(`${what} rowScale`, [T, k], [rowScale.length]);
  const I = d.rows / 2;
  const a = checkAct(act);
  const b = biasRef(w, bias, `${what} bias`, E, d.rows);
  const q = checkActQuant(opts);
  const rows = T * k;
  // Input rows in grouped order (scaled, then optionally fake-quantised).
  const xin = new Float32Array(rows * H);
  for (let p = 0; p < rows; p++) {
    const pair = g.order[p];
    const t = Math.floor(pair / k);
    const s = rowScale ? rowScale[pair] : 1;
    for (let c = 0; c < H; c++) xin[p * H + c] = rowScale ? Math.fround(x[t * H + c] * s) : x[t * H + c];
  }
  return { E, H, I, rows, a, b, xq: q.on ? fakeQuantFp8Ref(xin, rows, H, q.clamp) : xin };
}

/**
 * TypeScript reference of {@link groupedGateUpGpu}:
 * weights are decoded one row at a time, accumulation in f64 rounded to f32.
 * The CPU path runs {@link groupedGateUpCpu} (same results up to the sums' rounding).
 *
 * @example
 * ```ts
 * const h = groupedGateUpRef(x, groupRef(idx, T, k, E), { kind: 'dense', w }, undefined, { kind: 'silu', layout: 'concat' });
 * ```
 */
export function groupedGateUpRef(
  x: Float32Array,
  g: GroupingRef,
  w: ExpertStackHost,
  bias: HostTensor | undefined,
  act: ExpertActivation,
  rowScale?: Float32Array,
  opts: ExpertActQuantOptions = {},
): Float32Array {
  const { E, H, I, rows, a, b, xq } = gateUpHostCall('groupedGateUpRef', x, g, w, bias, act, rowScale, opts);
  const out = new Float32Array(rows * I);
  const gr = new Float32Array(H);
  const ur = new Float32Array(H);
  for (let e = 0; e < E; e++) {
    const p0 = g.offsets[e];
    const p1 = g.offsets[e + 1];
    if (p1 <= p0) continue;
    for (let i = 0; i < I; i++) {
      const rg = a.interleaved ? 2 * i : i;
      const ru = a.interleaved ? 2 * i + 1 : I + i;
      decodeExpertRow(w, e, rg, gr);
      decodeExpertRow(w, e, ru, ur);
      const bg = b ? b[e * 2 * I + rg] : 0;
      const bu = b ? b[e * 2 * I + ru] : 0;
      for (let p = p0; p < p1; p++) {
        let sg = 0;
        let su = 0;
        for (let c = 0; c < H; c++) {
          const xv = xq[p * H + c];
          sg += xv * gr[c];
          su += xv * ur[c];
        }
        out[p * I + i] = gatedActivationRef(a, Math.fround(sg + bg), Math.fround(su + bu));
      }
    }
  }
  return out;
}

/** The checked operands of a grouped down GEMM on the host (the reference's and the CPU kernel's). */
export interface DownHostCall {
  E: number;
  H: number;
  I: number;
  /** Grouped rows (T * k). */
  rows: number;
  /** The bias [E * H] as f32. */
  b: Float32Array | undefined;
  /** h [rows, I], fake-quantised where asked. */
  hq: Float32Array;
}

/**
 * Checks the arguments of a host down GEMM (`what`: the caller's name in errors).
 * @example `const { E, H, I, hq } = downHostCall('groupedDownRef', h, g, w, undefined, {})`
 */
export function downHostCall(what: string, h: Float32Array, g: GroupingRef, w: ExpertStackHost, bias: HostTensor | undefined, opts: ExpertActQuantOptions): DownHostCall {
  checkGroupingRef(g);
  const { T, k, E } = g;
  const d = expertDims(w, `${what} weights`);
  if (d.E !== E) throw new ShapeError(`${what} weights`, `[E=${E}, H, I]`, [d.E, d.rows, d.cols]);
  const I = d.cols;
  const H = d.rows;
  const rows = T * k;
  if (h.length !== rows * I) throw new ShapeError(`${what} h`, `[T*k=${rows}, I=${I}] (${rows * I} values)`, [h.length]);
  const b = biasRef(w, bias, `${what} bias`, E, H);
  const q = checkActQuant(opts);
  return { E, H, I, rows, b, hq: q.on ? fakeQuantFp8Ref(h, rows, I, q.clamp) : h };
}

/**
 * TypeScript reference of {@link groupedDownGpu}: y[p] = h[p] @ W[e]^T + bias[e].
 * The CPU path runs {@link groupedDownCpu} (same results up to the sums' rounding).
 *
 * @example
 * ```ts
 * const y = groupedDownRef(h, grouping, { kind: 'dense', w: down });
 * ```
 */
export function groupedDownRef(h: Float32Array, g: GroupingRef, w: ExpertStackHost, bias?: HostTensor, opts: ExpertActQuantOptions = {}): Float32Array {
  const { E, H, I, rows, b, hq } = downHostCall('groupedDownRef', h, g, w, bias, opts);
  const out = new Float32Array(rows * H);
  const wr = new Float32Array(I);
  for (let e = 0; e < E; e++) {
    const p0 = g.offsets[e];
    const p1 = g.offsets[e + 1];
    if (p1 <= p0) continue;
    for (let n = 0; n < H; n++) {
      decodeExpertRow(w, e, n, wr);
      const bn = b ? b[e * H + n] : 0;
      for (let p = p0; p < p1; p++) {
        let s = 0;
        for (let c = 0; c < I; c++) s += hq[p * I + c] * wr[c];
        out[p * H + n] = s + bn;
      }
    }
  }
  return out;
}
