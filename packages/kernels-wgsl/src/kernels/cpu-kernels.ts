/**
 * The kernels of the CPU path: what the host forward runs (a device without
 * WebGPU, `DeviceRef.CPU()`): the grouped GEMMs and the linear. Same contract
 * and results as the references (grouped-gemm-ref.ts, linear.ts' linearRef:
 * weights decoded one row at a time, f64 sums rounded to f32), built for
 * speed in JavaScript and WebAssembly SIMD:
 * - each weight format has a row decoder of its own, chosen once per call
 *   ({@link expertRowDecoder}): no allocation, no per-value format branch,
 *   table lookups for f16 / fp8 / fp4 codes; dense bf16 and f16 rows are not
 *   decoded at all where SIMD runs (their bits are copied, and dot_bf16 /
 *   dot_f16 convert them); int4 / int8 / MXFP4 / e4m3 rows decode in SIMD;
 * - a decoded row is reused by every grouped row of its expert (T > 1);
 * - the dot products run in WebAssembly SIMD where it is there
 *   (cpu-simd.ts: f32 products summed in f64), else in JavaScript with four
 *   partial f64 sums; either way the results differ from the references'
 *   by the rounding of the sums (and of the products, in SIMD) only;
 * - a call's input rows go through a block of at most 4 MiB (the SIMD
 *   memory), each weight row decoded once per block; 16-bit weight rows
 *   are copied into the SIMD memory ~64 KiB at a time (one copy per block of
 *   rows, not per row).
 * The references stay the oracle (test/cpu-kernels.test.ts).
 */
import { HostTensor, toFloat32, type DType } from '@webmoe/tensor';
import type { ExpertActivation, ExpertStackHost, ExpertWeightsHost, GroupingRef } from './moe-types.js';
import { chunkOfRow, FP4_VALUES, type ExpertActQuantOptions } from './quant-ref.js';
import { gatedActivationRef } from './activation-ref.js';
import { downHostCall, gateUpHostCall } from './grouped-gemm-ref.js';
import { expertDims } from './expert-weights.js';
import { linearHostCall } from './linear.js';
import { cpuSimd, type CpuSimd, type SimdCodes } from './cpu-simd.js';
import { residentMemoryOf, ROW_DOTS } from './cpu-resident.js';

/** Writes row `row` of expert `e`, dequantised to f32, into `out[0, cols)`. */
export type ExpertRowDecoder = (e: number, row: number, out: Float32Array) => void;

/** Every code of a 16- or 8-bit float dtype decoded (exact, the tensor package's conversion), built on first use. */
const codeTables = new Map<DType, Float32Array>();
function codeTable(dtype: 'float16' | 'float8_e4m3fn' | 'float8_e5m2'): Float32Array {
  let t = codeTables.get(dtype);
  if (!t) {
    const n = dtype === 'float16' ? 65536 : 256;
    const codes = dtype === 'float16' ? new Uint16Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) codes[i] = i;
    t = toFloat32(dtype, codes);
    codeTables.set(dtype, t);
  }
  return t;
}

let mxfp4Lut: Float64Array | undefined;
/** Every MXFP4 value, [e8m0 scale byte * 16 + fp4 code]: the e2m1 value times 2^(scale - 127), exact in f64. */
function mxfp4Table(): Float64Array {
  if (!mxfp4Lut) {
    mxfp4Lut = new Float64Array(256 * 16);
    for (let s = 0; s < 256; s++) for (let v = 0; v < 16; v++) mxfp4Lut[s * 16 + v] = (v & 8 ? -FP4_VALUES[v & 7] : FP4_VALUES[v & 7]) * 2 ** (s - 127);
  }
  return mxfp4Lut;
}

/** The f32 scale of block `i` of a scales tensor (f32, or f16 bits). */
function scaleReader(scales: HostTensor): (i: number) => number {
  if (scales.dtype === 'float32') {
    const s = scales.data as Float32Array;
    return (i) => s[i];
  }
  const s = scales.data as Uint16Array;
  const t = codeTable('float16');
  return (i) => t[s[i]];
}

/**
 * The row decoder of a weight container ([E, rows, cols] in any expert
 * format; a chunked stack reads each row from its chunk). The values are the
 * references' (`decodeExpertRow`) bit for bit: a code times its block's
 * scale is exact in f64 and rounded to f32 once, on the store.
 * @example `const dec = expertRowDecoder(w, rows, cols); dec(3, 17, row)`
 */
export function expertRowDecoder(w: ExpertStackHost, rows: number, cols: number): ExpertRowDecoder {
  return perRow(w, rows, (x, xRows) => plainDecoder(x, xRows, cols));
}

/**
 * A function of one weight row over `w` ([E, rows, ...]): `make(container, its rows)` itself for a plain stack; for a
 * chunked one, each row goes to the function of the chunk that holds it (chunkOfRow), with the expert and row local to
 * that chunk.
 */
function perRow<A extends unknown[]>(w: ExpertStackHost, rows: number, make: (x: ExpertWeightsHost, xRows: number) => (e: number, row: number, ...a: A) => void): (e: number, row: number, ...a: A) => void {
  if (w.kind !== 'chunked') return make(w, rows);
  const perChunk = new Map(w.chunks.map((c) => [c, make(c.w, expertDims(c.w).rows)]));
  return (e, row, ...a) => {
    const { chunk, localRow } = chunkOfRow(w, e, row);
    perChunk.get(chunk)!(e - chunk.e0, localRow, ...a);
  };
}

/** The plain containers of `w`: itself, or a chunked stack's chunks. */
function containers(w: ExpertStackHost): ExpertWeightsHost[] {
  return w.kind === 'chunked' ? w.chunks.map((c) => c.w) : [w];
}

function plainDecoder(w: ExpertWeightsHost, rows: number, cols: number): ExpertRowDecoder {
  switch (w.kind) {
    case 'dense': {
      const d = w.w.data;
      switch (w.w.dtype) {
        case 'float32':
          return (e, row, out) => {
            const o = (e * rows + row) * cols;
            out.set((d as Float32Array).subarray(o, o + cols));
          };
        case 'bfloat16':
          return (e, row, out) => {
            const o = (e * rows + row) * cols;
            const u = new Uint32Array(out.buffer, out.byteOffset, cols);
            const src = d as Uint16Array;
            for (let c = 0; c < cols; c++) u[c] = src[o + c] << 16;
          };
        default: {
          const t = codeTable('float16');
          return (e, row, out) => {
            const o = (e * rows + row) * cols;
            const src = d as Uint16Array;
            for (let c = 0; c < cols; c++) out[c] = t[src[o + c]];
          };
        }
      }
    }
    case 'fp8_block': {
      const q = w.q.data as Uint8Array;
      const s = w.scaleInv.data as Float32Array;
      const t = codeTable(w.q.dtype as 'float8_e4m3fn' | 'float8_e5m2');
      const [br, bc] = w.block;
      const nbr = Math.ceil(rows / br);
      const nbc = Math.ceil(cols / bc);
      return (e, row, out) => {
        const o = (e * rows + row) * cols;
        const sb = (e * nbr + Math.floor(row / br)) * nbc;
        for (let b = 0, c0 = 0; c0 < cols; b++, c0 += bc) {
          const sc = s[sb + b];
          const c1 = Math.min(cols, c0 + bc);
          for (let c = c0; c < c1; c++) out[c] = t[q[o + c]] * sc;
        }
      };
    }
    case 'mxfp4': {
      const blocks = w.blocks.data as Uint8Array;
      const scales = w.scales.data as Uint8Array;
      const nb = cols / 32;
      const lut = mxfp4Table();
      return (e, row, out) => {
        const er = e * rows + row;
        for (let b = 0; b < nb; b++) {
          const l0 = scales[er * nb + b] * 16;
          const o = er * (cols / 2) + b * 16;
          for (let j = 0; j < 16; j++) {
            const byte = blocks[o + j];
            out[b * 32 + 2 * j] = lut[l0 + (byte & 15)];
            out[b * 32 + 2 * j + 1] = lut[l0 + (byte >> 4)];
          }
        }
      };
    }
    case 'int_block': {
      const q = w.q.data as Uint8Array;
      const bs = w.blockSize;
      const nb = Math.ceil(cols / bs);
      const scale = scaleReader(w.scales);
      const zeros = w.zeros?.data as Uint8Array | undefined;
      const zp0 = w.bits === 4 ? 8 : 128;
      const four = w.bits === 4;
      return (e, row, out) => {
        const er = e * rows + row;
        for (let b = 0, c0 = 0; b < nb; b++, c0 += bs) {
          const bi = er * nb + b;
          const sc = scale(bi);
          const z = zeros ? zeros[bi] : zp0;
          const c1 = Math.min(cols, c0 + bs);
          if (four && bs % 2 === 0) {
            // a byte's two codes at once (low nibble first; even blocks start on a byte)
            for (let c = c0, o = er * (cols / 2) + (c0 >> 1); c < c1; c += 2, o++) {
              const byte = q[o];
              out[c] = ((byte & 15) - z) * sc;
              out[c + 1] = ((byte >> 4) - z) * sc;
            }
          } else if (four) {
            const o = er * (cols / 2);
            for (let c = c0; c < c1; c++) {
              const byte = q[o + (c >> 1)];
              out[c] = ((c & 1 ? byte >> 4 : byte & 15) - z) * sc;
            }
          } else {
            const o = er * cols;
            for (let c = c0; c < c1; c++) out[c] = (q[o + c] - z) * sc;
          }
        }
      };
    }
  }
}

/**
 * Where a CPU kernel's dot products run: a block of input rows `xs` ([rows, n]) and two weight slots of `slotRows`
 * rows each, in the SIMD module's memory where WebAssembly SIMD is there (cpu-simd.ts), else in plain arrays with the
 * JavaScript dot product; or, for resident dense weights (cpu-resident.ts), the input block in their memory and the
 * slots where the weights lie. `load(j, e, row0, count)` puts rows [row0, row0 + count) of expert `e` (count <=
 * slotRows) into slot j: 16-bit dense weights as their bit patterns (the SIMD dots convert them; a block of rows in one
 * copy), else decoded to f32 row by row; resident weights stay where they are. `dots(r, j, q0, count)`: input row r of
 * the block times rows q0.. of slot j.
 */
interface DotSpace {
  xs: Float32Array;
  /** Rows of the input block. */
  rows: number;
  /** Rows of each weight slot (even, at least 2). */
  slotRows: number;
  load(j: 0 | 1, e: number, row0: number, count: number): void;
  /** Weight rows one `dots` call takes at most. */
  runRows: number;
  /**
   * Input row r times rows [q0, q0 + count) of slot j (count <= runRows), into the first count values of the array it
   * returns (one array per slot, rewritten by the slot's next call).
   */
  dots(r: number, j: 0 | 1, q0: number, count: number): Float64Array;
}

/** A dot space before its row dots: its input block, slots and `load`. */
type SlotSpace = Omit<DotSpace, 'dots' | 'runRows'>;

/**
 * `space` with `dots` one call of the SIMD row dots `f` (CpuSimd.dots, dotsBf16 or dotsF16) per run of at most
 * `runRows` rows: input row r at byte xAt + 4 r n of the SIMD memory, slot j's rows from slotAt[j] (read at each call:
 * a resident space moves it on load), rowBytes apart, the results at byte `results` (two arrays of ROW_DOTS f64).
 */
function simdDots(space: SlotSpace, f: CpuSimd['dots'], mem: ArrayBuffer, n: number, xAt: number, slotAt: readonly number[], rowBytes: number, results: number, runRows: number): DotSpace {
  const res = [0, 1].map((j) => new Float64Array(mem, results + 8 * ROW_DOTS * j, ROW_DOTS));
  return {
    ...space,
    runRows,
    dots: (r, j, q0, count) => {
      f(xAt + 4 * r * n, slotAt[j] + rowBytes * q0, n, count, results + 8 * ROW_DOTS * j);
      return res[j];
    },
  };
}

/** Bytes of the weight rows of one `dots` run over resident weights: they stay in the cache while the block's input rows pass. */
const RUN_BYTES = 64 * 1024;
/** Input rows per block: at most 4 MiB of them (the SIMD memory holds one block), at least one. */
const BLOCK_BYTES = 4 * 1024 * 1024;
/** Weight rows per slot: about 64 KiB of f32 values (an even count, at least 2): one copy per block of 16-bit rows. */
const SLOT_BYTES = 64 * 1024;

/** The dot space of rows of n values, for at most maxRows input rows, over weights `w` ([E, wRows, n]). */
function dotSpace(n: number, maxRows: number, w: ExpertStackHost, wRows: number): DotSpace {
  const rows = Math.max(1, Math.min(maxRows, Math.floor(BLOCK_BYTES / (4 * Math.max(1, n)))));
  // even, at least 2, at most the weight rows (rounded up to even): no views or arrays for rows that cannot come
  const slotRows = Math.max(2, Math.min(Math.floor(SLOT_BYTES / (8 * Math.max(1, n))) * 2, wRows + (wRows % 2)));
  const simd = cpuSimd();
  if (!simd) {
    // the JavaScript dot, one call per weight row
    const xs = new Float32Array(rows * n);
    const ws = [0, 1].map(() => Array.from({ length: slotRows }, () => new Float32Array(n)));
    const res = [new Float64Array(slotRows), new Float64Array(slotRows)];
    return {
      ...decodedSpace(xs, rows, ws, expertRowDecoder(w, wRows, n)),
      runRows: slotRows,
      dots: (r, j, q0, count) => {
        for (let q = 0; q < count; q++) res[j][q] = dot(xs, r * n, ws[j][q0 + q], n);
        return res[j];
      },
    };
  }
  const resident = residentSpace(w, wRows, n, maxRows);
  if (resident) return resident;
  const { at, stage, results } = simdLayout(simd, rows, slotRows, n);
  const buf = simd.memory.buffer;
  const xs = new Float32Array(buf, 0, rows * n);
  // the slots' rows one after another: a slot is one run
  const slotDots = (space: SlotSpace, f: CpuSimd['dots'], rowBytes: number) => simdDots(space, f, buf, n, 0, at, rowBytes, results, Math.min(slotRows, ROW_DOTS));
  const raw = rawRows(w, wRows, n);
  if (raw) {
    // a slot's rows as 16-bit patterns, 2n bytes apart
    const ws = at.map((o) => new Uint16Array(buf, o, slotRows * n));
    return slotDots({ xs, rows, slotRows, load: (j, e, row0, count) => raw.copy(e, row0, count, ws[j]) }, raw.kind === 'bf16' ? simd.dotsBf16 : simd.dotsF16, 2 * n);
  }
  const packed = simdPackedRows(w, wRows, n);
  if (packed) {
    const codes = new Uint8Array(buf, stage[0], slotRows * n);
    const sc = new Float32Array(buf, stage[1], (slotRows * n) / 16);
    const z = new Float32Array(buf, stage[2], (slotRows * n) / 16);
    const dec = simd.decode[packed.kind];
    return slotDots(
      {
        xs,
        rows,
        slotRows,
        // the block's rows staged together, then decoded by one call
        load: (j, e, row0, count) => {
          packed.stage(e, row0, count, codes, sc, z);
          dec(stage[0], stage[1], stage[2], count * n, at[j], packed.gs);
        },
      },
      simd.dots,
      4 * n,
    );
  }
  const ws = at.map((o) => Array.from({ length: slotRows }, (_, q) => new Float32Array(buf, o + 4 * q * n, n)));
  return slotDots(decodedSpace(xs, rows, ws, expertRowDecoder(w, wRows, n)), simd.dots, 4 * n);
}

/**
 * The dot space of a plain dense stack whose data lies in a memory cpuResident made (f32, bf16, or f16 with n % 8 ==
 * 0): the input block in that memory's scratch, the weight rows read where they are (`load` only notes where a slot's
 * rows start; a slot spans a whole expert), runs of them dotted by one call (the row dots: the same dot functions on
 * the same bit patterns as the copying path's).
 * Undefined for any other stack (a chunked one's chunks lie apart), or where the scratch holds no input row.
 */
function residentSpace(w: ExpertStackHost, wRows: number, n: number, maxRows: number): DotSpace | undefined {
  if (w.kind !== 'dense') return undefined;
  const t = w.w;
  const mem = residentMemoryOf(t.data);
  if (!mem || 4 * n > mem.scratchBytes) return undefined;
  const { simd, scratch, results } = mem;
  const kind = t.dtype === 'float32' ? 'f32' : t.dtype === 'bfloat16' ? 'bf16' : t.dtype === 'float16' && n % 8 === 0 ? 'f16' : undefined;
  if (!kind) return undefined;
  const bytes = kind === 'f32' ? 4 : 2;
  const dotsOf = kind === 'f32' ? simd.dots : kind === 'bf16' ? simd.dotsBf16 : simd.dotsF16;
  const rows = Math.max(1, Math.min(maxRows, Math.floor(mem.scratchBytes / (4 * n))));
  const base: [number, number] = [0, 0];
  const w0 = t.data.byteOffset;
  const buf = simd.memory.buffer;
  const space: SlotSpace = {
    xs: new Float32Array(buf, scratch, rows * n),
    rows,
    slotRows: Math.max(2, wRows + (wRows % 2)),
    load: (j, e, row0) => {
      base[j] = w0 + (e * wRows + row0) * n * bytes;
    },
  };
  // runs of weight rows that stay in the cache while the block's input rows pass (~64 KiB), one call each
  return simdDots(space, dotsOf, buf, n, scratch, base, bytes * n, results, Math.max(1, Math.min(ROW_DOTS, Math.floor(RUN_BYTES / (bytes * n)))));
}

/**
 * Whether the CPU kernels read the rows (of n values) of `w` ([E, wRows, n]) where they lie, as dotSpace decides (a
 * resident plain dense stack, WebAssembly SIMD on), rather than copying or decoding them first. For the tests.
 * @example `readsInPlace({ kind: 'dense', w: cpuResident([t])[0] }, rows, cols) // true`
 */
export function readsInPlace(w: ExpertStackHost, wRows: number, n: number): boolean {
  return !!cpuSimd() && residentSpace(w, wRows, n, 1) !== undefined;
}

/** A dot space whose slots hold rows decoded to f32 by `decode` (`ws[j][q]`: row q of slot j), before its row dots. */
function decodedSpace(xs: Float32Array, rows: number, ws: Float32Array[][], decode: ExpertRowDecoder): SlotSpace {
  return {
    xs,
    rows,
    slotRows: ws[0].length,
    load: (j, e, row0, count) => {
      for (let q = 0; q < count; q++) decode(e, row0 + q, ws[j][q]);
    },
  };
}

/**
 * Byte offsets in the SIMD memory (grown to hold them) of a dot space of `rows` input rows of n values and weight
 * slots of `slotRows` rows: [input block | slot 0 | slot 1 | a slot's packed rows: codes (n bytes a row), scales and
 * zero points (at most n / 16 f32 a row each) | the row dots' results of the two slots (ROW_DOTS f64 each)].
 */
function simdLayout(simd: CpuSimd, rows: number, slotRows: number, n: number): { at: [number, number]; stage: [number, number, number]; results: number } {
  const groups = 4 * slotRows * Math.ceil(n / 16);
  const s0 = 4 * (rows + 2 * slotRows) * n;
  const stage: [number, number, number] = [s0, s0 + slotRows * n, s0 + slotRows * n + groups];
  const results = Math.ceil((stage[2] + groups) / 8) * 8;
  const bytes = results + 2 * 8 * ROW_DOTS;
  const have = simd.memory.buffer.byteLength;
  if (have < bytes) simd.memory.grow(Math.ceil((bytes - have) / 65536));
  return { at: [4 * rows * n, 4 * (rows + slotRows) * n], stage, results };
}

/**
 * Stages rows [row0, row0 + count) of expert `e` for a SIMD decoder, as rows `at`.. of the staging: their code bytes
 * back to back, and one scale and zero point per unit of values (SimdPacked.gs).
 */
type PackedStager = (e: number, row0: number, count: number, codes: Uint8Array, sc: Float32Array, z: Float32Array, at?: number) => void;

/** A stack's SIMD decoder, its row stager, and the values per staged scale: 16 << gs. */
interface SimdPacked {
  kind: SimdCodes;
  stage: PackedStager;
  gs: number;
}

let mxHalfScales: Float32Array | undefined;
/** 2^(e - 127) / 2 for every e8m0 byte e (the MXFP4 decoder doubles the e2m1 magnitudes). */
function mxHalfScale(): Float32Array {
  mxHalfScales ??= Float32Array.from({ length: 256 }, (_, e) => 2 ** (e - 128));
  return mxHalfScales;
}

/**
 * The SIMD decoder (cpu-simd.ts `dec_*`) and row stager of `w`, where every container is of one kind among int4 /
 * int8 blocks of a multiple of 16 values, MXFP4, and e4m3 fp8 blocks a multiple of 16 columns wide, with cols % 16 ==
 * 0; else undefined (the JavaScript decoders).
 */
function simdPackedRows(w: ExpertStackHost, rows: number, cols: number): SimdPacked | undefined {
  if (cols % 16 !== 0) return undefined;
  const kindOf = (x: ExpertWeightsHost): SimdCodes | undefined => {
    if (x.kind === 'mxfp4') return 'mxfp4';
    if (x.kind === 'int_block' && x.blockSize % 16 === 0) return x.bits === 4 ? 'int4' : 'int8';
    if (x.kind === 'fp8_block' && x.q.dtype === 'float8_e4m3fn' && x.block[1] % 16 === 0) return 'e4m3';
    return undefined;
  };
  const kinds = containers(w).map(kindOf);
  const kind = kinds[0];
  if (!kind || kinds.some((k) => k !== kind)) return undefined;
  // values per staged scale: a container's block where every container's is the same power-of-two multiple of 16
  // that divides a row (no block across two rows), else 16 (each block's scale repeated per 16 values)
  const blockCols = (x: ExpertWeightsHost) => (x.kind === 'mxfp4' ? 32 : x.kind === 'fp8_block' ? x.block[1] : (x as { blockSize: number }).blockSize);
  const blocks = containers(w).map(blockCols);
  const b0 = blocks[0];
  const unit = blocks.every((b) => b === b0) && cols % b0 === 0 && Number.isInteger(Math.log2(b0 / 16)) ? b0 : 16;
  const units = cols / unit;
  const gs = Math.log2(unit / 16);
  const plain = (x: ExpertWeightsHost, xRows: number): PackedStager => {
    // codeBytes: a row's code bytes; fill(e, row, sc, z, o): the row's scales (and zero points), one per unit, from o
    const codeBytes = x.kind === 'mxfp4' || (x.kind === 'int_block' && x.bits === 4) ? cols / 2 : cols;
    const src = (x.kind === 'mxfp4' ? x.blocks.data : (x as { q: HostTensor }).q.data) as Uint8Array;
    // fill(e, row0, count, sc, z, o): the scales (and zero points) of rows [row0, row0 + count), one per unit, from o;
    // where a unit is one block and blocks do not span rows, the rows' scales lie back to back and go over in one pass
    let fill: (e: number, row0: number, count: number, sc: Float32Array, z: Float32Array, o: number) => void;
    if (x.kind === 'mxfp4') {
      const scales = x.scales.data as Uint8Array;
      const half = mxHalfScale();
      fill =
        unit === 32
          ? (e, row0, count, sc, _z, o) => {
              const s0 = (e * xRows + row0) * units;
              for (let i = 0, n = count * units; i < n; i++) sc[o + i] = half[scales[s0 + i]];
            }
          : (e, row0, count, sc, _z, o) => {
              for (let r = 0; r < count; r++) {
                const s0 = (e * xRows + row0 + r) * (cols / 32);
                for (let u = 0; u < units; u++) sc[o + r * units + u] = half[scales[s0 + ((u * unit) >> 5)]];
              }
            };
    } else if (x.kind === 'fp8_block') {
      const s = x.scaleInv.data as Float32Array;
      const [br, bc] = x.block;
      const nbr = Math.ceil(xRows / br);
      const nbc = Math.ceil(cols / bc);
      fill = (e, row0, count, sc, _z, o) => {
        for (let r = 0; r < count; r++) {
          const sb = (e * nbr + Math.floor((row0 + r) / br)) * nbc;
          // a unit per block: the block row's scales as they are
          if (unit === bc) sc.set(s.subarray(sb, sb + units), o + r * units);
          else for (let u = 0; u < units; u++) sc[o + r * units + u] = s[sb + Math.floor((u * unit) / bc)];
        }
      };
    } else {
      const ib = x as Extract<ExpertWeightsHost, { kind: 'int_block' }>;
      const nb = Math.ceil(cols / ib.blockSize);
      const scale = scaleReader(ib.scales);
      const f32Scales = ib.scales.dtype === 'float32' ? (ib.scales.data as Float32Array) : undefined;
      const zeros = ib.zeros?.data as Uint8Array | undefined;
      const zp0 = ib.bits === 4 ? 8 : 128;
      fill =
        unit === ib.blockSize
          ? (e, row0, count, sc, z, o) => {
              const b0 = (e * xRows + row0) * nb;
              const n = count * units;
              if (f32Scales) sc.set(f32Scales.subarray(b0, b0 + n), o);
              else for (let i = 0; i < n; i++) sc[o + i] = scale(b0 + i);
              if (zeros) z.set(zeros.subarray(b0, b0 + n), o);
              else z.fill(zp0, o, o + n);
            }
          : (e, row0, count, sc, z, o) => {
              for (let r = 0; r < count; r++) {
                const b0 = (e * xRows + row0 + r) * nb;
                for (let u = 0; u < units; u++) {
                  const bi = b0 + Math.floor((u * unit) / ib.blockSize);
                  sc[o + r * units + u] = scale(bi);
                  z[o + r * units + u] = zeros ? zeros[bi] : zp0;
                }
              }
            };
    }
    return (e, row0, count, codes, sc, z, at = 0) => {
      const o = (e * xRows + row0) * codeBytes;
      codes.set(src.subarray(o, o + count * codeBytes), at * codeBytes);
      fill(e, row0, count, sc, z, at * units);
    };
  };
  if (w.kind !== 'chunked') return { kind, stage: plain(w, rows), gs };
  // a chunked stack: row by row (a block may span chunks)
  const one = perRow(w, rows, plain);
  return {
    kind,
    gs,
    stage: (e, row0, count, codes, sc, z, at = 0) => {
      for (let r = 0; r < count; r++) one(e, row0 + r, 1, codes, sc, z, at + r);
    },
  };
}

/**
 * The SIMD decoder of `w` (int4 / int8 blocks of a multiple of 16 values, MXFP4, e4m3 fp8 blocks) as the slots load
 * it: `(e, row0, count, out)` stages rows [row0, row0 + count) of expert e together and decodes them by one call into
 * out[0, count * cols); undefined where the JavaScript decoders run. For the tests, which check it bit for bit against
 * decodeExpertRow.
 */
export function simdRowsDecoder(w: ExpertStackHost, rows: number, cols: number): ((e: number, row0: number, count: number, out: Float32Array) => void) | undefined {
  const simd = cpuSimd();
  const packed = simd && simdPackedRows(w, rows, cols);
  if (!simd || !packed) return undefined;
  const { at, stage } = simdLayout(simd, 1, rows, cols);
  return (e, row0, count, out) => {
    const buf = simd.memory.buffer;
    packed.stage(e, row0, count, new Uint8Array(buf, stage[0], count * cols), new Float32Array(buf, stage[1], (count * cols) / 16), new Float32Array(buf, stage[2], (count * cols) / 16));
    simd.decode[packed.kind](stage[0], stage[1], stage[2], count * cols, at[0], packed.gs);
    out.set(new Float32Array(buf, at[0], count * cols));
  };
}

/**
 * Where every weight of `w` is dense bf16, or dense f16 with cols % 8 == 0 (whole or chunked), the SIMD dot that reads
 * their bit patterns as they are (dot_bf16, dot_f16) and a copier of one row's patterns; else undefined.
 */
function rawRows(w: ExpertStackHost, rows: number, cols: number): { kind: 'bf16' | 'f16'; copy: (e: number, row0: number, count: number, out: Uint16Array) => void } | undefined {
  const dtypes = containers(w).map((x) => (x.kind === 'dense' ? x.w.dtype : undefined));
  const dt = dtypes[0];
  const kind = dt === 'bfloat16' ? 'bf16' : dt === 'float16' && cols % 8 === 0 ? 'f16' : undefined;
  if (!kind || dtypes.some((d) => d !== dt)) return undefined;
  // rows [row0, row0 + count) of expert e of one container, contiguous there, to out[at..]
  const copy = (x: ExpertWeightsHost, xRows: number, e: number, row0: number, count: number, out: Uint16Array, at: number) => {
    const o = (e * xRows + row0) * cols;
    out.set((x as { w: HostTensor }).w.data.subarray(o, o + count * cols) as Uint16Array, at);
  };
  if (w.kind !== 'chunked') return { kind, copy: (e, row0, count, out) => copy(w, rows, e, row0, count, out, 0) };
  // a chunked stack: row by row (a block may span chunks)
  const one = perRow(w, rows, (x, xRows) => (e: number, row: number, out: Uint16Array, at: number) => copy(x, xRows, e, row, 1, out, at));
  return {
    kind,
    copy: (e, row0, count, out) => {
      for (let q = 0; q < count; q++) one(e, row0 + q, out, q * cols);
    },
  };
}

/** sum over c < n of a[ao + c] * b[c], in f64 with four partial sums. */
function dot(a: Float32Array, ao: number, b: Float32Array, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let c = 0;
  for (; c + 3 < n; c += 4) {
    s0 += a[ao + c] * b[c];
    s1 += a[ao + c + 1] * b[c + 1];
    s2 += a[ao + c + 2] * b[c + 2];
    s3 += a[ao + c + 3] * b[c + 3];
  }
  for (; c < n; c++) s0 += a[ao + c] * b[c];
  return s0 + s1 + (s2 + s3);
}

/**
 * {@link groupedGateUpRef} on the CPU (same arguments, checks and results up
 * to the sums' f64 rounding): h[p] = act(x[p] @ gate[e]^T + b, x[p] @ up[e]^T + b)
 * for the grouped rows p of each expert e.
 * @example `const h = groupedGateUpCpu(x, groupRef(idx, T, k, E), { kind: 'dense', w }, undefined, { kind: 'silu', layout: 'concat' })`
 */
export function groupedGateUpCpu(
  x: Float32Array,
  g: GroupingRef,
  w: ExpertStackHost,
  bias: HostTensor | undefined,
  act: ExpertActivation,
  rowScale?: Float32Array,
  opts: ExpertActQuantOptions = {},
): Float32Array {
  const c = gateUpHostCall('groupedGateUpCpu', x, g, w, bias, act, rowScale, opts);
  const { E, H, I, a, b, xq } = c;
  const out = new Float32Array(c.rows * I);
  const sp = dotSpace(H, c.rows, w, 2 * I);
  // outputs per weight block: interleaved gate/up rows share slot 0 (rows 2i, 2i + 1), concat ones take a slot each
  const B = a.interleaved ? sp.slotRows / 2 : sp.slotRows;
  for (let e = 0; e < E; e++) {
    // the expert's rows a block at a time; each weight row decoded once per block
    for (let q0 = g.offsets[e], p1 = g.offsets[e + 1]; q0 < p1; q0 += sp.rows) {
      const nq = Math.min(sp.rows, p1 - q0);
      sp.xs.set(xq.subarray(q0 * H, (q0 + nq) * H));
      for (let i0 = 0; i0 < I; i0 += B) {
        const cnt = Math.min(B, I - i0);
        if (a.interleaved) sp.load(0, e, 2 * i0, 2 * cnt);
        else {
          sp.load(0, e, i0, cnt);
          sp.load(1, e, I + i0, cnt);
        }
        // runs of outputs (interleaved: their gate/up row pairs in one run of slot 0), each input row over the run's rows
        const run = a.interleaved ? Math.max(1, sp.runRows >> 1) : sp.runRows;
        for (let c0 = 0; c0 < cnt; c0 += run) {
          const c = Math.min(run, cnt - c0);
          for (let r = 0; r < nq; r++) {
            const gv = a.interleaved ? sp.dots(r, 0, 2 * c0, 2 * c) : sp.dots(r, 0, c0, c);
            const uv = a.interleaved ? gv : sp.dots(r, 1, c0, c);
            for (let q = 0; q < c; q++) {
              const i = i0 + c0 + q;
              const bg = b ? b[e * 2 * I + (a.interleaved ? 2 * i : i)] : 0;
              const bu = b ? b[e * 2 * I + (a.interleaved ? 2 * i + 1 : I + i)] : 0;
              const gate = a.interleaved ? gv[2 * q] : gv[q];
              const up = a.interleaved ? uv[2 * q + 1] : uv[q];
              out[(q0 + r) * I + i] = gatedActivationRef(a, Math.fround(gate + bg), Math.fround(up + bu));
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * {@link groupedDownRef} on the CPU (same arguments, checks and results up
 * to the sums' f64 rounding): y[p] = h[p] @ W[e]^T + bias[e].
 * @example `const y = groupedDownCpu(h, grouping, { kind: 'dense', w: down })`
 */
export function groupedDownCpu(h: Float32Array, g: GroupingRef, w: ExpertStackHost, bias?: HostTensor, opts: ExpertActQuantOptions = {}): Float32Array {
  const c = downHostCall('groupedDownCpu', h, g, w, bias, opts);
  const { E, H, I, b, hq } = c;
  const out = new Float32Array(c.rows * H);
  const sp = dotSpace(I, c.rows, w, H);
  for (let e = 0; e < E; e++) {
    for (let q0 = g.offsets[e], p1 = g.offsets[e + 1]; q0 < p1; q0 += sp.rows) {
      const nq = Math.min(sp.rows, p1 - q0);
      sp.xs.set(hq.subarray(q0 * I, (q0 + nq) * I));
      for (let n0 = 0; n0 < H; n0 += sp.slotRows) {
        const cnt = Math.min(sp.slotRows, H - n0);
        sp.load(0, e, n0, cnt);
        for (let c0 = 0; c0 < cnt; c0 += sp.runRows) {
          const c = Math.min(sp.runRows, cnt - c0);
          for (let r = 0; r < nq; r++) {
            const v = sp.dots(r, 0, c0, c);
            for (let q = 0; q < c; q++) out[(q0 + r) * H + n0 + c0 + q] = v[q] + (b ? b[e * H + n0 + c0 + q] : 0);
          }
        }
      }
    }
  }
  return out;
}

/**
 * {@link linearRef} on the CPU (same arguments, checks and results up to the
 * sums' f64 rounding): y[T, N] = x[T, K] @ W^T (+ bias), W [N, K] f32, bf16
 * or f16 decoded a row at a time (no f32 copy of W).
 * @example `const logits = linearCpu(x, T, gateWeight)`
 */
export function linearCpu(x: Float32Array, T: number, w: HostTensor, bias?: HostTensor): Float32Array {
  const { N, K, bf } = linearHostCall('linearCpu', x, T, w, bias);
  const y = new Float32Array(T * N);
  const sp = dotSpace(K, T, { kind: 'dense', w: new HostTensor(w.dtype, [1, N, K], w.data) }, N);
  for (let t0 = 0; t0 < T; t0 += sp.rows) {
    const nt = Math.min(sp.rows, T - t0);
    sp.xs.set(x.subarray(t0 * K, (t0 + nt) * K));
    for (let n0 = 0; n0 < N; n0 += sp.slotRows) {
      const cnt = Math.min(sp.slotRows, N - n0);
      sp.load(0, 0, n0, cnt);
      for (let c0 = 0; c0 < cnt; c0 += sp.runRows) {
        const c = Math.min(sp.runRows, cnt - c0);
        for (let r = 0; r < nt; r++) {
          const v = sp.dots(r, 0, c0, c);
          for (let q = 0; q < c; q++) y[(t0 + r) * N + n0 + c0 + q] = v[q] + (bf ? bf[n0 + c0 + q] : 0);
        }
      }
    }
  }
  return y;
}

/**
 * How the CPU kernels compute their dot products here: 'wasm-simd' (WebAssembly SIMD, cpu-simd.ts) or 'js' (where
 * WebAssembly SIMD is missing).
 * @example `cpuKernelPath() // 'wasm-simd' in Node >= 16 and current browsers`
 */
export function cpuKernelPath(): 'wasm-simd' | 'js' {
  return cpuSimd() ? 'wasm-simd' : 'js';
}
