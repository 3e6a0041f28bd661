/**
 * The bench reference's view of a layer's weights as stored (src/reference.ts
 * reads them): the stored tensor and expert-container types, the scalar
 * decoders (bf16, f16, f32, fp8 e4m3, e2m1) and the readers that decode one
 * expert's matrix in float64 from its raw bytes. Like the reference, it shares
 * no code with @webmoe/kernels-wgsl or @webmoe/moe.
 */

/** Element storage types the reference decodes. */
export type StoredDtype = 'float32' | 'bfloat16' | 'float16' | 'float8_e4m3fn' | 'uint8';

/** One tensor as a layer stores it: dtype, shape and a reader of byte ranges of its storage. */
export interface StoredTensor {
  dtype: StoredDtype;
  shape: readonly number[];
  /** Bytes [offset, offset + length) of the tensor's storage (little-endian, row-major). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Routed-expert weights [E, rows, cols] as stored (the formats of docs/moe-semantics.md "Number formats"). */
export type StoredExperts =
  | { kind: 'dense'; w: StoredTensor }
  | { kind: 'fp8_block'; q: StoredTensor; scaleInv: StoredTensor; block: readonly [number, number] }
  | { kind: 'int_block'; bits: 4 | 8; q: StoredTensor; scales: StoredTensor; blockSize: number }
  | { kind: 'mxfp4'; blocks: StoredTensor; scales: StoredTensor };

/** A whole layer as stored. */
export interface StoredLayer {
  /** [E, H] */
  router: StoredTensor;
  /** [E] */
  routerBias?: StoredTensor;
  /** [E] (sigmoid grouped routers) */
  correctionBias?: StoredTensor;
  /** [E, 2I, H] */
  gateUp: StoredExperts;
  /** [E, H, I] */
  down: StoredExperts;
  /** [E, 2I] */
  gateUpBias?: StoredTensor;
  /** [E, H] */
  downBias?: StoredTensor;
  /** One SiLU-gated MLP of width S on every token, as one expert: gate_up [1, 2S, H] (gate rows, then up rows), down [1, H, S]; dense or packed like the routed experts. */
  shared?: { gateUp: StoredExperts; down: StoredExperts };
}

// --- scalar decoders (docs/moe-semantics.md "Number formats") ---

const f32b = new Float32Array(1);
const u32b = new Uint32Array(f32b.buffer);
/** f32 from its bits. */
export function f32FromBits(b: number): number {
  u32b[0] = b >>> 0;
  return f32b[0];
}
/** bfloat16 = the top 16 bits of an f32. */
export function bf16ToNumber(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}
/** IEEE binary16. */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** float8_e4m3fn: 1-4-3, bias 7, no infinities, S.1111.111 = NaN. */
export function e4m3ToNumber(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
/** e2m1 (MXFP4) code values; bit 3 is the sign. */
export const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6] as const;

const BYTES: Record<StoredDtype, number> = { float32: 4, bfloat16: 2, float16: 2, float8_e4m3fn: 1, uint8: 1 };

let f16Table: Float64Array | undefined;
let e4m3Table: Float64Array | undefined;
/** Every f16 / e4m3 code's value (built once from the scalar decoders). */
function tables(): { f16: Float64Array; e4m3: Float64Array } {
  f16Table ??= Float64Array.from({ length: 65536 }, (_, h) => f16ToNumber(h));
  e4m3Table ??= Float64Array.from({ length: 256 }, (_, b) => e4m3ToNumber(b));
  return { f16: f16Table, e4m3: e4m3Table };
}

/** `b`, or a copy of it when its byte offset is not a multiple of `bytes` (typed-array views need aligned offsets). */
function aligned(b: Uint8Array, bytes: number): Uint8Array {
  return b.byteOffset % bytes === 0 ? b : b.slice();
}

/** Scratch of the bf16 decoder (grown as needed; the reference runs on one thread). */
let bf16Bits = new Uint32Array(0);
let bf16Vals = new Float32Array(0);

/** Decodes `n` elements of a dense byte run into out[outOff..]. */
function decodeDense(dtype: StoredDtype, b: Uint8Array, n: number, out: Float64Array, outOff = 0): void {
  if (b.byteLength < n * BYTES[dtype]) throw new Error(`reference: ${b.byteLength} bytes for ${n} ${dtype} values`);
  switch (dtype) {
    case 'float32': {
      const a = aligned(b, 4);
      const v = new Float32Array(a.buffer, a.byteOffset, n);
      for (let i = 0; i < n; i++) out[outOff + i] = v[i];
      return;
    }
    case 'bfloat16': {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      if (bf16Bits.length < n) {
        bf16Bits = new Uint32Array(n);
        bf16Vals = new Float32Array(bf16Bits.buffer);
      }
      for (let i = 0; i < n; i++) bf16Bits[i] = h[i] << 16; // bfloat16 = the top 16 bits of an f32
      for (let i = 0; i < n; i++) out[outOff + i] = bf16Vals[i];
      return;
    }
    case 'float16': {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      const t = tables().f16;
      for (let i = 0; i < n; i++) out[outOff + i] = t[h[i]];
      return;
    }
    case 'float8_e4m3fn': {
      const t = tables().e4m3;
      for (let i = 0; i < n; i++) out[outOff + i] = t[b[i]];
      return;
    }
    case 'uint8':
      for (let i = 0; i < n; i++) out[outOff + i] = b[i];
      return;
  }
}

/** A whole (small) stored tensor as float64 values. */
export async function readAll(t: StoredTensor): Promise<Float64Array> {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  decodeDense(t.dtype, await t.read(0, n * BYTES[t.dtype]), n, out);
  return out;
}

function dims(t: StoredTensor, what: string, rank: number): number[] {
  if (t.shape.length !== rank) throw new Error(`reference: ${what} has shape [${t.shape.join(', ')}], expected rank ${rank}`);
  return [...t.shape];
}

/** One expert's [rows, cols] matrix, decoded row by row on demand from the bytes of that expert only. */
export interface ExpertMatrix {
  rows: number;
  cols: number;
  /** Writes row r (float64) into `out` [cols]. */
  row(r: number, out: Float64Array): void;
}

/**
 * The bytes of one expert's [rows, cols] matrix in its stored format, with
 * its scales decoded: plain data (structured-cloneable, so a worker thread
 * can decode it; see check-pool.ts).
 */
export type ExpertBytes =
  | { kind: 'dense'; rows: number; cols: number; dtype: StoredDtype; b: Uint8Array }
  | { kind: 'fp8_block'; rows: number; cols: number; block: [number, number]; q: Uint8Array; s: Float64Array }
  | { kind: 'int_block'; rows: number; cols: number; bits: 4 | 8; blockSize: number; q: Uint8Array; s: Float64Array }
  | { kind: 'mxfp4'; rows: number; cols: number; blocks: Uint8Array; scales: Uint8Array };

/** Reads the bytes of expert `e` of stored experts [E, rows, cols] (only that expert's bytes). */
export async function readExpertBytes(w: StoredExperts, e: number, rows: number, cols: number): Promise<ExpertBytes> {
  const slice = async (t: StoredTensor, perExpert: number) => t.read(e * perExpert, perExpert);
  switch (w.kind) {
    case 'dense': {
      const [, r, c] = dims(w.w, 'dense experts', 3);
      if (r !== rows || c !== cols) throw new Error(`reference: dense experts [${w.w.shape}] vs [E, ${rows}, ${cols}]`);
      return { kind: 'dense', rows, cols, dtype: w.w.dtype, b: await slice(w.w, rows * cols * BYTES[w.w.dtype]) };
    }
    case 'fp8_block': {
      if (w.q.dtype !== 'float8_e4m3fn') throw new Error(`reference: fp8 codes of dtype ${w.q.dtype}`);
      const [bm, bn] = w.block;
      const [, sr, sc] = dims(w.scaleInv, 'fp8 scale_inv', 3);
      if (sr !== Math.ceil(rows / bm) || sc !== Math.ceil(cols / bn)) throw new Error(`reference: fp8 scale_inv [${w.scaleInv.shape}] for [${rows}, ${cols}] blocks ${bm}x${bn}`);
      const q = await slice(w.q, rows * cols);
      const s = new Float64Array(sr * sc);
      decodeDense(w.scaleInv.dtype, await slice(w.scaleInv, sr * sc * BYTES[w.scaleInv.dtype]), sr * sc, s);
      return { kind: 'fp8_block', rows, cols, block: [bm, bn], q, s };
    }
    case 'int_block': {
      const { bits, blockSize } = w;
      const rowBytes = (cols * bits) / 8;
      const [, r, qb] = dims(w.q, 'int codes', 3);
      const nb = Math.ceil(cols / blockSize);
      if (r !== rows || qb !== rowBytes || w.scales.shape[2] !== nb) throw new Error(`reference: int${bits} codes [${w.q.shape}] / scales [${w.scales.shape}] for [${rows}, ${cols}]`);
      const q = await slice(w.q, rows * rowBytes);
      const s = new Float64Array(rows * nb);
      decodeDense(w.scales.dtype, await slice(w.scales, rows * nb * BYTES[w.scales.dtype]), rows * nb, s);
      return { kind: 'int_block', rows, cols, bits, blockSize, q, s };
    }
    case 'mxfp4': {
      if (cols % 32) throw new Error(`reference: mxfp4 needs cols % 32 == 0 (${cols})`);
      const nb = cols / 32;
      return { kind: 'mxfp4', rows, cols, blocks: await slice(w.blocks, rows * nb * 16), scales: await slice(w.scales, rows * nb) };
    }
  }
}

/** A row decoder over one expert's bytes. */
export function expertMatrix(x: ExpertBytes): ExpertMatrix {
  const { rows, cols } = x;
  switch (x.kind) {
    case 'dense': {
      const eb = BYTES[x.dtype];
      return { rows, cols, row: (i, out) => decodeDense(x.dtype, x.b.subarray(i * cols * eb, (i + 1) * cols * eb), cols, out) };
    }
    case 'fp8_block': {
      const [bm, bn] = x.block;
      const sc = Math.ceil(cols / bn);
      const { q, s } = x;
      return {
        rows, cols,
        row: (i, out) => {
          const t = tables().e4m3;
          const s0 = Math.floor(i / bm) * sc;
          for (let c = 0; c < cols; c++) out[c] = t[q[i * cols + c]] * s[s0 + Math.floor(c / bn)];
        },
      };
    }
    case 'int_block': {
      const { bits, blockSize, q, s } = x;
      const rowBytes = (cols * bits) / 8;
      const nb = Math.ceil(cols / blockSize);
      const zp = 2 ** (bits - 1);
      return {
        rows, cols,
        row: (i, out) => {
          for (let c = 0; c < cols; c++) {
            const byte = q[i * rowBytes + (bits === 8 ? c : c >> 1)];
            const code = bits === 8 ? byte : c & 1 ? byte >> 4 : byte & 15; // int4: low nibble first
            out[c] = (code - zp) * s[i * nb + Math.floor(c / blockSize)];
          }
        },
      };
    }
    case 'mxfp4': {
      const nb = cols / 32;
      const { blocks, scales } = x;
      return {
        rows, cols,
        row: (i, out) => {
          for (let c = 0; c < cols; c++) {
            const byte = blocks[i * nb * 16 + (c >> 1)];
            out[c] = E2M1[c & 1 ? byte >> 4 : byte & 15] * 2 ** (scales[i * nb + (c >> 5)] - 127);
          }
        },
      };
    }
  }
}

/** Rows per expert of stored experts [E, rows, ...] (their codes' second dimension). @example `storedExpertRows(layer.shared.gateUp) // 2 * S` */
export function storedExpertRows(w: StoredExperts): number {
  return (w.kind === 'dense' ? w.w : w.kind === 'mxfp4' ? w.blocks : w.q).shape[1];
}

/** Reads expert `e` of stored experts [E, rows, cols] (only that expert's bytes) and returns a row decoder. */
export async function readExpert(w: StoredExperts, e: number, rows: number, cols: number): Promise<ExpertMatrix> {
  return expertMatrix(await readExpertBytes(w, e, rows, cols));
}
