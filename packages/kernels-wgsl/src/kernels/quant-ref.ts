/**
 * Host side of the expert weight formats: per-row decoding (the reference /
 * CPU path dequantises one expert row at a time, never a whole tensor),
 * quantisation of f32 weights into each format, and the fp8 dynamic
 * activation fake-quantiser. See docs/moe-semantics.md "Number formats".
 */
import { HostTensor, ValueError, e4m3ToF32, e5m2ToF32, f16ToF32, fakeQuantizeActivationsFp8, fromFloat32, quantizeFp8Block, toFloat32 } from '@webmoe/tensor';
import type { ExpertChunk, ExpertRowLayout, ExpertStackHost, ExpertWeightsHost } from './moe-types.js';
import { expertDims } from './expert-weights.js';

/** The e2m1 (fp4) magnitudes of codes 0..7; bit 3 is the sign. @example `FP4_VALUES[7] // 6` */
export const FP4_VALUES: readonly number[] = Object.freeze([0, 0.5, 1, 1.5, 2, 3, 4, 6]);

/** Decodes one fp4 (e2m1) code (low 4 bits of `c`). @example `fp4ToF32(0xb) // -1.5` */
export function fp4ToF32(c: number): number {
  const v = FP4_VALUES[c & 7];
  return c & 8 ? -v : v;
}

/**
 * Writes row `row` of expert `e` of a weight container, dequantised to f32,
 * into `out` (length cols). This is how the reference and the CPU path read
 * weights: one row at a time, no dequantised copy of the tensor.
 *
 * @example
 * ```ts
 * const row = new Float32Array(H);
 * decodeExpertRow(w, 3, 17, row); // expert 3, output channel 17
 * ```
 */
export function decodeExpertRow(w: ExpertStackHost, e: number, row: number, out: Float32Array): Float32Array {
  if (w.kind === 'chunked') {
    // (validated by the callers' expertDims; here only the row's chunk is looked up)
    if (!(Number.isInteger(e) && e >= 0 && e < w.E)) throw new ValueError('decodeExpertRow expert', `an integer in [0, ${w.E})`, e);
    if (!(Number.isInteger(row) && row >= 0 && row < w.rows)) throw new ValueError('decodeExpertRow row', `an integer in [0, ${w.rows})`, row);
    const { chunk, localRow } = chunkOfRow(w, e, row);
    return decodeExpertRow(chunk.w, e - chunk.e0, localRow, out);
  }
  const { E, rows, cols } = expertDims(w);
  if (!(Number.isInteger(e) && e >= 0 && e < E)) throw new ValueError('decodeExpertRow expert', `an integer in [0, ${E})`, e);
  if (!(Number.isInteger(row) && row >= 0 && row < rows)) throw new ValueError('decodeExpertRow row', `an integer in [0, ${rows})`, row);
  if (out.length < cols) throw new ValueError('decodeExpertRow out length', `>= ${cols}`, out.length);
  const er = e * rows + row;
  switch (w.kind) {
    case 'dense': {
      const d = w.w.data;
      out.set(toFloat32(w.w.dtype, d.subarray(er * cols, er * cols + cols) as typeof d));
      return out;
    }
    case 'fp8_block': {
      const q = w.q.data as Uint8Array;
      const s = w.scaleInv.data as Float32Array;
      const [br, bc] = w.block;
      const nbr = Math.ceil(rows / br);
      const nbc = Math.ceil(cols / bc);
      const dec = w.q.dtype === 'float8_e4m3fn' ? e4m3ToF32 : e5m2ToF32;
      const sBase = (e * nbr + Math.floor(row / br)) * nbc;
      for (let c = 0; c < cols; c++) out[c] = Math.fround(dec(q[er * cols + c]) * s[sBase + Math.floor(c / bc)]);
      return out;
    }
    case 'mxfp4': {
      const b = w.blocks.data as Uint8Array;
      const s = w.scales.data as Uint8Array;
      const nb = cols / 32;
      for (let c = 0; c < cols; c++) {
        const byte = b[er * (cols / 2) + (c >> 1)];
        const code = c & 1 ? byte >> 4 : byte & 15;
        out[c] = Math.fround(fp4ToF32(code) * 2 ** (s[er * nb + (c >> 5)] - 127));
      }
      return out;
    }
    case 'int_block': {
      const q = w.q.data as Uint8Array;
      const nb = Math.ceil(cols / w.blockSize);
      const sd = w.scales.data;
      const sc = (i: number) => (w.scales.dtype === 'float16' ? f16ToF32(sd[i]) : (sd as Float32Array)[i]);
      // Zero point: the block's code in `zeros` (asymmetric), else 8 (int4) / 128 (int8).
      const zeros = w.zeros?.data as Uint8Array | undefined;
      const zp0 = w.bits === 4 ? 8 : 128;
      for (let c = 0; c < cols; c++) {
        const code = w.bits === 8 ? q[er * cols + c] : c & 1 ? q[er * (cols / 2) + (c >> 1)] >> 4 : q[er * (cols / 2) + (c >> 1)] & 15;
        const bi = er * nb + Math.floor(c / w.blockSize);
        out[c] = Math.fround((code - (zeros ? zeros[bi] : zp0)) * sc(bi));
      }
      return out;
    }
  }
}

/**
 * One dequantised weight element W[e, row, col] (tests and debugging; slow).
 * @example `expertWeightAt(w, 0, 1, 2)`
 */
export function expertWeightAt(w: ExpertStackHost, e: number, row: number, col: number): number {
  const { cols } = expertDims(w);
  return decodeExpertRow(w, e, row, new Float32Array(cols))[col];
}

/**
 * The chunk of a chunked stack that holds row `row` of expert `e`, and
 * the row's index inside that chunk's expert (see ExpertRowLayout).
 */
export function chunkOfRow<W, T>(w: { rows: number; layout: ExpertRowLayout; chunks: readonly ExpertChunk<W, T>[] }, e: number, row: number): { chunk: ExpertChunk<W, T>; localRow: number } {
  const N = w.layout === 'rows' ? w.rows : w.rows / 2;
  const o = w.layout === 'rows' ? row : w.layout === 'interleaved' ? row >> 1 : row < N ? row : row - N;
  for (const c of w.chunks) {
    if (e < c.e0 || e >= c.e0 + c.experts || o < c.o0 || o >= c.o0 + c.outputs) continue;
    const localRow = w.layout === 'rows' ? o - c.o0 : w.layout === 'interleaved' ? row - 2 * c.o0 : row < N ? o - c.o0 : c.outputs + (o - c.o0);
    return { chunk: c, localRow };
  }
  throw new ValueError('decodeExpertRow chunks', `a chunk holding expert ${e}, output ${o}`, 'none');
}

/** Target formats of {@link quantizeExperts}. @example `const f: ExpertQuantFormat = { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }` */
export type ExpertQuantFormat =
  | { kind: 'dense'; dtype: 'float32' | 'bfloat16' | 'float16' }
  | { kind: 'fp8_block'; dtype?: 'float8_e4m3fn' | 'float8_e5m2'; block?: [number, number] }
  | { kind: 'mxfp4' }
  | { kind: 'int_block'; bits: 4 | 8; blockSize: number; scaleDtype?: 'float32' | 'float16'; zeroPoint?: boolean };

/**
 * Quantises f32 expert weights [E, rows, cols] (rows = output channels) into
 * one of the expert formats (for checkpoints that are not quantized, and for
 * tests):
 * - `fp8_block`: per [128,128] block (or `block`), scaleInv = amax / fmax
 *   (448 for e4m3fn, 57344 for e5m2), q = fp8(w / scaleInv), saturating.
 * - `mxfp4`: per 32 inputs, shared exponent s = ceil(log2(amax / 6)) (e8m0
 *   byte s + 127), codes = nearest e2m1 of w / 2^s. Needs cols % 32 == 0.
 * - `int_block`: symmetric per `blockSize` inputs of a row, scale =
 *   amax / (2^(bits-1) - 1) (stored in `scaleDtype`), q = round(w / scale)
 *   + 2^(bits-1) clamped to [0, 2^bits - 1]. int4 needs even cols. With
 *   `zeroPoint: true` asymmetric (compressed-tensors' min/max scheme, in
 *   unsigned codes): lo = min(0, min w), hi = max(0, max w), scale =
 *   (hi - lo) / (2^bits - 1) (at least 2^-23; stored in `scaleDtype`), zero =
 *   clamp(round(-lo / scale), 0, 2^bits - 1) stored per block in `zeros`,
 *   q = clamp(round(w / scale + zero), 0, 2^bits - 1).
 *
 * @example
 * ```ts
 * const w = quantizeExperts(f32, E, 2 * I, H, { kind: 'int_block', bits: 4, blockSize: 32 });
 * ```
 */
export function quantizeExperts(w: Float32Array, E: number, rows: number, cols: number, format: ExpertQuantFormat): ExpertWeightsHost {
  for (const [n, v] of [['E', E], ['rows', rows], ['cols', cols]] as const)
    if (!(Number.isInteger(v) && v >= 1)) throw new ValueError(`quantizeExperts ${n}`, 'a positive integer', v);
  if (w.length !== E * rows * cols) throw new ValueError('quantizeExperts w length', `E*rows*cols = ${E * rows * cols}`, w.length);
  const nRows = E * rows;
  switch (format.kind) {
    case 'dense':
      return { kind: 'dense', w: HostTensor.fromFloat32([E, rows, cols], w, format.dtype) };
    case 'fp8_block': {
      const dtype = format.dtype ?? 'float8_e4m3fn';
      if (dtype !== 'float8_e4m3fn' && dtype !== 'float8_e5m2') throw new ValueError('quantizeExperts fp8 dtype', "'float8_e4m3fn' | 'float8_e5m2'", dtype);
      const block: [number, number] = format.block ? [format.block[0], format.block[1]] : [128, 128];
      const [br, bc] = block;
      if (!(Number.isInteger(br) && br > 0 && Number.isInteger(bc) && bc > 0)) throw new ValueError('quantizeExperts fp8 block', 'two positive integers', format.block);
      const nbr = Math.ceil(rows / br);
      const nbc = Math.ceil(cols / bc);
      const q = new Uint8Array(E * rows * cols);
      const s = new Float32Array(E * nbr * nbc);
      // One expert at a time through @webmoe/tensor's block quantiser (DeepSeek-V3 format).
      for (let e = 0; e < E; e++) {
        const one = quantizeFp8Block(w.subarray(e * rows * cols, (e + 1) * rows * cols), rows, cols, { block, format: dtype });
        q.set(one.q.data as Uint8Array, e * rows * cols);
        s.set(one.scaleInv.data as Float32Array, e * nbr * nbc);
      }
      return { kind: 'fp8_block', q: new HostTensor(dtype, [E, rows, cols], q), scaleInv: new HostTensor('float32', [E, nbr, nbc], s), block };
    }
    case 'mxfp4': {
      if (cols % 32 !== 0) throw new ValueError('quantizeExperts mxfp4 cols', 'a multiple of 32 (pad the input channels with zeros)', cols);
      const nb = cols / 32;
      const blocks = new Uint8Array(nRows * cols / 2);
      const scales = new Uint8Array(nRows * nb);
      for (let r = 0; r < nRows; r++)
        for (let b = 0; b < nb; b++) {
          const base = r * cols + b * 32;
          let amax = 0;
          for (let c = 0; c < 32; c++) amax = Math.max(amax, Math.abs(w[base + c]));
          const ex = amax > 0 ? Math.min(127, Math.max(-127, Math.ceil(Math.log2(amax / 6)))) : 0;
          scales[r * nb + b] = ex + 127;
          const inv = 2 ** -ex;
          for (let c = 0; c < 32; c++) {
            const v = w[base + c] * inv;
            const a = Math.abs(v);
            let best = 0;
            for (let j = 1; j < 8; j++) if (Math.abs(FP4_VALUES[j] - a) < Math.abs(FP4_VALUES[best] - a)) best = j;
            const code = best | (v < 0 && best !== 0 ? 8 : 0);
            const bi = r * (cols / 2) + b * 16 + (c >> 1);
            blocks[bi] |= c & 1 ? code << 4 : code;
          }
        }
      return { kind: 'mxfp4', blocks: new HostTensor('uint8', [E, rows, nb, 16], blocks), scales: new HostTensor('uint8', [E, rows, nb], scales) };
    }
    case 'int_block': {
      const { bits, blockSize } = format;
      const sdt = format.scaleDtype ?? 'float32';
      if (bits !== 4 && bits !== 8) throw new ValueError('quantizeExperts int bits', '4 or 8', bits);
      if (!(Number.isInteger(blockSize) && blockSize >= 1)) throw new ValueError('quantizeExperts int blockSize', 'a positive integer', blockSize);
      if (sdt !== 'float32' && sdt !== 'float16') throw new ValueError('quantizeExperts int scaleDtype', "'float32' | 'float16'", sdt);
      if (bits === 4 && cols % 2 !== 0) throw new ValueError('quantizeExperts int4 cols', 'an even number (two codes per byte; pad the input channels with a zero)', cols);
      const nb = Math.ceil(cols / blockSize);
      const qmax = 2 ** bits - 1;
      const q = new Uint8Array((nRows * cols * bits) / 8);
      const sf = new Float32Array(nRows * nb);
      const zeros = format.zeroPoint ? new Uint8Array(nRows * nb) : undefined;
      for (let r = 0; r < nRows; r++)
        for (let b = 0; b < nb; b++) {
          const c0 = b * blockSize;
          const c1 = Math.min(cols, c0 + blockSize);
          let lo = 0;
          let hi = 0;
          for (let c = c0; c < c1; c++) {
            lo = Math.min(lo, w[r * cols + c]);
            hi = Math.max(hi, w[r * cols + c]);
          }
          // The scale as stored (rounded to its dtype), so codes match what is decoded.
          const raw = zeros ? Math.max((hi - lo) / qmax, 2 ** -23) : Math.max(hi, -lo) / (2 ** (bits - 1) - 1);
          const sc = toFloat32(sdt, fromFloat32(sdt, [raw]))[0];
          sf[r * nb + b] = sc;
          const zp = zeros ? Math.min(qmax, Math.max(0, Math.round(-lo / sc))) : 2 ** (bits - 1);
          if (zeros) zeros[r * nb + b] = zp;
          for (let c = c0; c < c1; c++) {
            const code = sc > 0 ? Math.min(qmax, Math.max(0, Math.round(w[r * cols + c] / sc) + zp)) : zp;
            if (bits === 8) q[r * cols + c] = code;
            else q[r * (cols / 2) + (c >> 1)] |= c & 1 ? code << 4 : code;
          }
        }
      const bytesPerRow = (cols * bits) / 8;
      const out: ExpertWeightsHost = {
        kind: 'int_block',
        bits,
        blockSize,
        q: new HostTensor('uint8', [E, rows, bytesPerRow], q),
        scales: new HostTensor(sdt, [E, rows, nb], fromFloat32(sdt, sf)),
      };
      if (zeros) out.zeros = new HostTensor('uint8', [E, rows, nb], zeros);
      return out;
    }
    default:
      throw new ValueError('quantizeExperts format kind', "'dense' | 'fp8_block' | 'mxfp4' | 'int_block'", (format as { kind: unknown }).kind);
  }
}

/** Options of the fp8 dynamic activation quantiser (w8a8) of the grouped GEMMs. @example `{ actQuant: 'fp8_dynamic', actAmaxClamp: 1200 }` */
export interface ExpertActQuantOptions {
  /** 'none' (default) or 'fp8_dynamic': per row, per 128 channels, scale = amax/448, q = e4m3(x/scale) saturating, x' = q*scale. */
  actQuant?: 'none' | 'fp8_dynamic';
  /** Clamp amax to at most this before computing the scale (MAX uses 1200). Default: no clamp. */
  actAmaxClamp?: number;
}

/** Channels per dynamic activation scale. @example `Math.ceil(H / ACT_QUANT_GROUP) // scales per token` */
export const ACT_QUANT_GROUP = 128;

/**
 * Fake-quantises activation rows [rows, cols] to fp8 e4m3 with dynamic
 * per-row, per-128-channel scales and back to f32 (the reference of the GPU
 * activation quantiser). A group whose amax is 0 stays 0.
 *
 * @example
 * ```ts
 * const xq = fakeQuantFp8Ref(x, T, H); // or fakeQuantFp8Ref(x, T, H, 1200)
 * ```
 */
export function fakeQuantFp8Ref(x: Float32Array, rows: number, cols: number, amaxClamp?: number): Float32Array {
  if (x.length !== rows * cols) throw new ValueError('fakeQuantFp8Ref x length', `rows*cols = ${rows * cols}`, x.length);
  return fakeQuantizeActivationsFp8(x, rows, cols, { group: ACT_QUANT_GROUP, amaxClamp });
}
