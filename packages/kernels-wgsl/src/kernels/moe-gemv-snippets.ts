/**
 * The decode GEMVs' variant, declarations and WGSL snippets: the packed-code decoders of the wide and
 * row-blocked paths, the table path's loaders, the scale lookups, bias, activation and output store, the
 * bindings and uniforms every GEMV kernel declares (moe-gemv-kernel.ts and moe-gemv-rows.ts compose them).
 */
import { ValueError } from '@webmoe/tensor';
import { uniformFields, type BindingDecl, type UniformField } from '../runtime/kernel.js';
import { ownFn, wgslDecls, type GemvNames, type GemvPiece } from './moe-gemv-names.js';
import type { PackedCodeFormat } from './plan.js';

/** Outputs per decode-GEMV workgroup, one per 32-lane group (its indirect args count blocks of these). */
export const GEMV_GROUPS = 8;
/** Lanes of one 32-lane group (one output, or ro outputs, per group). */
export const GEMV_LANES = 32;

export type DenseDtype = 'float32' | 'bfloat16' | 'float16';

/** Variant of the decode GEMV kernels. */
export type GemvVariant = {
  /** Weight storage: a dense dtype or a packed quantized format. */
  wdtype: DenseDtype | PackedCodeFormat;
  /** Storage dtype of the quantized scales ('none' for dense weights). */
  sdtype: 'float32' | 'float16' | 'uint8' | 'none';
  /** int4 / int8: per-block zero-point codes in a QZ binding (u8, indexed as the scales); absent/false: 8 / 128. */
  zp?: boolean;
  /** cols % 8 == 0: 8-wide vector loads. */
  vec8: boolean;
  /** 'gate_up' (two rows per output + activation) or 'down'. */
  mode: 'gate_up' | 'down';
  act: 'silu' | 'swiglu_limit' | 'swigluoai' | 'none';
  interleaved: boolean;
  bias: boolean;
  rowScale: boolean;
  bdtype: DenseDtype;
  /** Token rows accumulated per weight load (1, 2, 4 or 8: about the rows per active expert). */
  mr: number;
  /**
   * Packed codes read 16 bytes per load (vec4<u32>: 32 int4/mxfp4 or 16
   * int8/fp8-e4m3 columns) and decoded with arithmetic (see {@link wideChunkCols});
   * false: 8 columns per load through a byte -> value table.
   */
  wide: boolean;
  /**
   * Row-blocked packed path (absent: the table or wide path above): each 32-lane group computes this many
   * outputs (1, 2 or 4; gate_up: gate/up pairs), reading 16 bytes of codes per row and chunk, decoding
   * them with exact bit arithmetic ({@link ROWS_CODECS}) and using every x load for all its rows.
   */
  ro?: number;
  /**
   * Row-blocked path split over K (absent: 1): groups of 32 lanes per output block, splitting its columns
   * (2, 4 or 8: GEMV_GROUPS / ks output blocks per workgroup); a bench candidate ('rows<ro>k<ks>').
   */
  ks?: number;
  /**
   * Row-blocked path with units interleaved over the lanes (a unit: one code word, two for 16-bit weights): lane l
   * takes units l, l + 32, ... so the warp's x loads are contiguous; absent: a 16-byte chunk per lane ('rows<ro>i').
   */
  il?: boolean;
  /**
   * Row-blocked path with x staged in workgroup memory ('rows<ro>s'): the workgroup copies its token rows' x for the
   * next 64 chunks (coalesced, one slice at a time, XS_SLICE_CHUNKS) and each lane reads its 16-byte chunks' x from
   * there (rows padded so that the lanes' reads do not conflict), keeping the lane's 16-byte code loads: the x loads
   * of a 16-byte chunk per lane are no longer strided by the chunk's columns in memory. Not with ks, il or combine.
   */
  xs?: boolean;
  /**
   * With xs: each lane's code and scale loads of a slice are issued before the workgroup's copy of the slice's x (their
   * memory latencies overlap; the loads' registers live across the copy's barriers), instead of after it
   * (KERNEL_CROSSOVERS.stagedXLoadsFirst).
   */
  xsFirst?: boolean;
  /**
   * Row-blocked path with 16-byte chunks per lane (no il): each lane's codes and scales of its next step (the next
   * slice's with xs) are loaded before the current step decodes (GemvOptions.prefetchCodes), so that they are in
   * flight during its arithmetic; twice the code registers.
   */
  pf?: boolean;
  /**
   * Row-blocked path, one token row per pass (mr 1), ks groups per output block: each lane takes one 16-byte column
   * chunk per step, loads its x once into registers and streams the block's ro output rows past it (one code load per
   * row), and the block's ks * 32 lanes are summed in a fixed-order tree ('rowsNkSx'). Not with xs, il, pf or combine.
   */
  xr?: boolean;
  /** Row-blocked path: chunks per scale block is a power of two (a shift by u.cbs, else a division by u.cb). */
  cbPow2?: boolean;
  /**
   * Chunks of a chunked stack bound by one dispatch (2..GEMV_MAX_CHUNKS_PER_DISPATCH, moe-gemv-chunks.ts); absent:
   * one weight container (a stack in one buffer, or one chunk) per dispatch, the kernel as before chunking.
   */
  chunks?: number;
  /**
   * The down GEMV with the combine (mode 'down', row-blocked, one weight container): workgroup row wid.y is a token,
   * whose k slots (expert Idx, grouped input row Pos) are summed into its output row: 'weighted' times the router
   * weights WT, 'sum' unweighted. moe-gemv-combine.ts.
   */
  combine?: 'weighted' | 'sum';
  /** With `combine`: the shared experts' output SH added ('shared'), times sigmoid of its gate logit GL ('gated'). */
  combineShared?: 'none' | 'shared' | 'gated';
};


/** Columns of one 16-byte chunk of weights in the wide and row-blocked GEMVs (16-bit dense weights: 8; row-blocked only). */
export function wideChunkCols(wfmt: GemvVariant['wdtype']): number {
  return wfmt === 'int4' || wfmt === 'mxfp4' ? 32 : wfmt === 'bfloat16' || wfmt === 'float16' ? 8 : 16;
}

/**
 * WGSL `fn dec(c: vec4<u32>) -> vec4<f32>`: four codes (already shifted down
 * and masked to their width) to values, with arithmetic (no table):
 * int4 c - 8; int8 c - 128; mxfp4 e2m1 as mant * 2^(max(e,1)-2) with the
 * sign bit or-ed in; fp8 e4m3 by moving the exponent/mantissa bits into an
 * f32 and scaling by 2^120 (subnormals m * 2^-9, 0x7f/0xff NaN), as
 * decode_e4m3.
 */
export function wideDecodeWgsl(wfmt: GemvVariant['wdtype']): string {
  switch (wfmt) {
    case 'int4':
      return `fn dec(c: vec4<u32>) -> vec4<f32> { return vec4<f32>(c) - 8.0; }`;
    case 'int8':
      return `fn dec(c: vec4<u32>) -> vec4<f32> { return vec4<f32>(c) - 128.0; }`;
    case 'mxfp4':
      return `fn dec(c: vec4<u32>) -> vec4<f32> {
  let e = (c >> vec4<u32>(1u)) & vec4<u32>(3u);
  let m = c & vec4<u32>(1u);
  let mant = vec4<f32>(select(m, m + vec4<u32>(2u), e > vec4<u32>(0u)));
  let p2 = bitcast<vec4<f32>>((max(e, vec4<u32>(1u)) + vec4<u32>(125u)) << vec4<u32>(23u));
  return bitcast<vec4<f32>>(bitcast<vec4<u32>>(mant * p2) | ((c & vec4<u32>(8u)) << vec4<u32>(28u)));
}`;
    case 'fp8_e4m3':
      return `fn dec(c: vec4<u32>) -> vec4<f32> {
  let mag = c & vec4<u32>(0x7fu);
  let normal = bitcast<vec4<f32>>(mag << vec4<u32>(20u)) * bitcast<f32>(0x7b800000u);
  let sub = vec4<f32>(c & vec4<u32>(7u)) * 0.001953125;
  let v = select(normal, sub, (mag >> vec4<u32>(3u)) == vec4<u32>(0u));
  let signed = bitcast<vec4<f32>>(bitcast<vec4<u32>>(v) | ((c & vec4<u32>(0x80u)) << vec4<u32>(24u)));
  return select(signed, bitcast<vec4<f32>>(vec4<u32>(0x7fc00000u) | (c & vec4<u32>(0u))), mag == vec4<u32>(0x7fu));
}`;
    default:
      throw new ValueError('wide GEMV format', 'int4 | int8 | mxfp4 | fp8_e4m3', wfmt);
  }
}

/**
 * Row-blocked path: exact bit-arithmetic decoding of one u32 word of packed
 * codes (no table, no integer -> float conversion instruction).
 * - int4 / int8: each code is masked into the mantissa of 2^23 (bits | 0x4b000000
 *   is 2^23 + code * 2^s), then one fma scales it back and subtracts 2^23 and the
 *   zero point (exact in f32).
 * - fp8 and mxfp4 codes are moved into f16 bit patterns and widened two at a time
 *   with unpack2x16float: e5m2 is the high byte of an f16 (inf/NaN included);
 *   e4m3's exponent and mantissa land in the f16's low exponent bits (the value
 *   times 2^-8, subnormals as f16 subnormals; S.1111.111 is NaN by a separate
 *   check, as decode_e4m3); e2m1 likewise at 2^-14. `unit` undoes the factor on
 *   each chunk's partial sum. The f16 subnormals need an adapter whose
 *   unpack2x16float keeps them (the GEMV tests decode all 256 fp8 codes).
 */
export interface RowsCodec {
  /** Columns per u32 word: 8 (4-bit codes, low nibble first), 4 (bytes) or 2 (16-bit dense weights, decoded two words at a time). */
  perWord: 2 | 4 | 8;
  /** WGSL: `fn dw(w: u32, z: vec4<f32>) -> V8` (8 per word) or `-> vec4<f32>` (4; 2 per word: `w: vec2<u32>`), z from `zoff` (int formats; else unused). */
  wgsl: string;
  /** WGSL expression: the fma offsets of the int formats for zero-point code `z` (an f32 expression). */
  zoff?: (z: string) => string;
  /** Power of two undoing the f16 placement, applied to each chunk's partial sums. */
  unit: number;
  /**
   * WGSL `fn nanw(w: u32) -> u32`: a flag word whose bits NAN_FLAG_BITS are set for the bytes of w holding a NaN code
   * that the placement would miss; flag words are or-ed together and masked once, after the chunk loop.
   */
  nan?: string;
}

/** WGSL: the bits of or-ed `RowsCodec.nan` flag words that mark a NaN code. */
export const NAN_FLAG_BITS = '0x80808080u';

/** The struct of 8 decoded values that the 4-bit codecs' `dw` returns (values 0-3 in lo, 4-7 in hi). */
export const V8_WGSL = 'struct V8 { lo: vec4<f32>, hi: vec4<f32>, }';

export const ROWS_CODECS: Partial<Record<GemvVariant['wdtype'], RowsCodec>> = {
  int4: {
    perWord: 8,
    wgsl: `const I4M = vec4<u32>(0xfu, 0xf0u, 0xf00u, 0xf000u);
const I4S = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
fn dw(w: u32, z: vec4<f32>) -> V8 {
  return V8(fma(bitcast<vec4<f32>>((vec4<u32>(w) & I4M) | vec4<u32>(0x4b000000u)), I4S, z),
            fma(bitcast<vec4<f32>>((vec4<u32>(w >> 16u) & I4M) | vec4<u32>(0x4b000000u)), I4S, z));
}`,
    zoff: (z) => `-(vec4<f32>(8388608.0, 524288.0, 32768.0, 2048.0) + ${z})`,
    unit: 1,
  },
  int8: {
    perWord: 4,
    wgsl: `fn dw(w: u32, z: vec4<f32>) -> vec4<f32> {
  let h = w >> 16u;
  return fma(bitcast<vec4<f32>>((vec4<u32>(w, w, h, h) & vec4<u32>(0xffu, 0xff00u, 0xffu, 0xff00u)) | vec4<u32>(0x4b000000u)), vec4<f32>(1.0, 0.00390625, 1.0, 0.00390625), z);
}`,
    zoff: (z) => `-(vec4<f32>(8388608.0, 32768.0, 8388608.0, 32768.0) + ${z})`,
    unit: 1,
  },
  fp8_e5m2: {
    perWord: 4,
    wgsl: `fn dw(w: u32, z: vec4<f32>) -> vec4<f32> {
  let a = unpack2x16float((w << 8u) & 0xff00ff00u); let b = unpack2x16float(w & 0xff00ff00u);
  return vec4<f32>(a.x, b.x, a.y, b.y);
}`,
    unit: 1,
  },
  fp8_e4m3: {
    perWord: 4,
    wgsl: `fn dw(w: u32, z: vec4<f32>) -> vec4<f32> {
  let a = unpack2x16float(((w & 0x00800080u) << 8u) | ((w & 0x007f007fu) << 7u));
  let b = unpack2x16float((w & 0x80008000u) | ((w >> 1u) & 0x3f803f80u));
  return vec4<f32>(a.x, b.x, a.y, b.y);
}`,
    // a byte's low 7 bits plus one reach bit 7 only from 0x7f (no carry leaves the byte): two operations a word
    nan: `fn nanw(w: u32) -> u32 { return (w & 0x7f7f7f7fu) + 0x01010101u; }`,
    unit: 256,
  },
  // 16-bit dense weights (no scales): a bf16 is the high half of an f32; f16 pairs widen with unpack2x16float
  bfloat16: {
    perWord: 2,
    wgsl: `fn dw(w: vec2<u32>, z: vec4<f32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}`,
    unit: 1,
  },
  float16: {
    perWord: 2,
    wgsl: `fn dw(w: vec2<u32>, z: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}`,
    unit: 1,
  },
  mxfp4: {
    perWord: 8,
    wgsl: `fn dw(w: u32, z: vec4<f32>) -> V8 {
  let a = unpack2x16float(((w << 9u) & 0x0e000e00u) | ((w << 12u) & 0x80008000u));
  let b = unpack2x16float(((w << 5u) & 0x0e000e00u) | ((w << 8u) & 0x80008000u));
  let c = unpack2x16float(((w << 1u) & 0x0e000e00u) | ((w << 4u) & 0x80008000u));
  let d = unpack2x16float(((w >> 3u) & 0x0e000e00u) | (w & 0x80008000u));
  return V8(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y));
}`,
    unit: 16384,
  },
};


/**
 * WGSL storing output o of grouped row `row` from its sums sg (and su):
 * rowScale, bias of weight rows rg (ru), activation. Needs e, o, row, rg (ru) in scope; the chunk's names n.
 */
export function storeWgsl(v: GemvVariant, n: GemvNames): string {
  const gu = v.mode === 'gate_up';
  return [
    v.rowScale ? `let sc = S[Order[row]]; sg = sg * sc;${gu ? ' su = su * sc;' : ''}` : '',
    v.bias ? `sg = sg + bload${n.fn}(e * u.${n.rows} + rg);${gu ? ` su = su + bload${n.fn}(e * u.${n.rows} + ru);` : ''}` : '',
    `Y[row * u.ys + u.${n.yo} + o] = ${gu ? 'act(sg, su)' : 'sg'};`,
  ]
    .filter((l) => l)
    .join(' ');
}

/** WGSL `fn bload(i: u32) -> f32` (named with the suffix n.fn): bias element i of binding n.B in dtype d. */
export function biasLoader(d: DenseDtype, n: GemvNames): string {
  const { B } = n;
  return d === 'float32'
    ? `fn bload${n.fn}(i: u32) -> f32 { return ${B}[i]; }`
    : d === 'bfloat16'
      ? `fn bload${n.fn}(i: u32) -> f32 { let w = ${B}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`
      : `fn bload${n.fn}(i: u32) -> f32 { let v = unpack2x16float(${B}[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }`;
}


/** The Active-list entry of a slot past the active experts. */
export const NO_EXPERT = 0xffffffff;

/**
 * WGSL opening every GEMV main (needs `var<workgroup> wcnt: u32`, wid and lid): the expert of this workgroup's
 * active slot wid.y (slots past the active experts hold NO_EXPERT, and experts outside this dispatch's chunk
 * [eb, eb + ne) of the stack are another dispatch's: their workgroups see no rows and write nothing). eg: global
 * expert, e: in the chunk, off: its first grouped row, cnt: its rows, workgroup-uniform (a workgroup with none returns).
 * The multi-chunk kernel (GemvVariant.chunks) replaces it with a lookup of the chunk (moe-gemv-chunks.ts).
 */
export const EXPERT_SLOT_WGSL = `  let e0 = Active[wid.y];
  let mine = e0 != ${NO_EXPERT}u && e0 >= u.eb && e0 - u.eb < u.ne;
  let eg = select(u.eb, e0, mine);
  let e = eg - u.eb;
  let off = Offsets[eg];
  if (lid.x == 0u && lid.y == 0u) { wcnt = select(0u, Counts[eg], mine); }
  let cnt = workgroupUniformLoad(&wcnt);
  // a workgroup of another chunk's expert or of an empty slot leaves at once (cnt is workgroup-uniform): one
  // dispatch per chunk of a chunked stack launches every active slot, and most are another chunk's
  if (cnt == 0u) { return; }`;

/**
 * The table path's 8-column loader of packed codes: 8 consecutive codes of `bits` (8: two words, 4: one word,
 * low bits first), each looked up in the byte -> value table `lut` (workgroup memory), as W8 (even columns, odd columns).
 */
function tableLoad8Wgsl(bits: 4 | 8, n: GemvNames): string {
  const perWord = 32 / bits;
  const mask = bits === 8 ? '0xffu' : '0xfu';
  const code = (i: number) => {
    const word = i < perWord ? 'a' : 'b';
    const sh = bits * (i % perWord);
    return sh === 0 ? `${word} & ${mask}` : sh + bits === 32 ? `${word} >> ${sh}u` : `(${word} >> ${sh}u) & ${mask}`;
  };
  const lane = (first: number) => `vec4<f32>(${[0, 2, 4, 6].map((i) => `lut[${code(first + i)}]`).join(', ')})`;
  const { W } = n;
  const words = bits === 8 ? `let a = ${W}[base >> 2u]; let b = ${W}[(base >> 2u) + 1u];` : `let a = ${W}[base >> 3u];`;
  return `fn wload8${n.fn}(base: u32) -> W8 { ${words}\n  return W8(${lane(0)},\n            ${lane(1)}); }`;
}

/**
 * The table and dense paths' weight loaders: `wload8` (8 consecutive weights as W8, even / odd columns; packed
 * codes through the table), `wload1` (one dense weight), and for packed weights `scaleFns`: `wscale` (the scale
 * of row r at column col: all 8 columns of a chunk share it) and `wzshift` (zero points: the block's shift from
 * the table's fixed 8 / 128), each a helper of the chunk's own; and the table's initialisation `lutInit` (entry
 * li). Functions and bindings named by n (GEMV_NAMES: as above).
 */
export function tableLoadersWgsl(v: GemvVariant, n: GemvNames): { load8: string; load1: string; scaleFns: GemvPiece[]; lutInit: string } {
  const { W, QS, QZ, rows, s0, fn } = n;
  let load8 = '';
  if (v.wdtype === 'bfloat16') {
    load8 = `fn wload8${fn}(base: u32) -> W8 { let q = ${W}[base >> 3u]; return W8(bitcast<vec4<f32>>(q << vec4<u32>(16u)), bitcast<vec4<f32>>(q & vec4<u32>(0xffff0000u))); }`;
  } else if (v.wdtype === 'float16') {
    load8 = `fn wload8${fn}(base: u32) -> W8 { let q = ${W}[base >> 3u]; let a = unpack2x16float(q.x); let b = unpack2x16float(q.y); let c = unpack2x16float(q.z); let d = unpack2x16float(q.w);
  return W8(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y)); }`;
  } else if (v.wdtype === 'float32') {
    load8 = `fn wload8${fn}(base: u32) -> W8 { let a = ${W}[base >> 2u]; let b = ${W}[(base >> 2u) + 1u]; return W8(vec4<f32>(a.xz, b.xz), vec4<f32>(a.yw, b.yw)); }`;
  } else {
    load8 = tableLoad8Wgsl(v.wdtype === 'int4' || v.wdtype === 'mxfp4' ? 4 : 8, n);
  }
  let scaleFn = '';
  let zshiftFn = '';
  let lutInit = '';
  if (v.wdtype === 'fp8_e4m3' || v.wdtype === 'fp8_e5m2') {
    scaleFn = `fn wscale${fn}(e: u32, r: u32, col: u32) -> f32 { return ${QS}[(e * u.${s0} + r / u.s2) * u.s1 + col / u.s3]; }`;
    lutInit = `lut[li] = ${v.wdtype === 'fp8_e4m3' ? 'decode_e4m3' : 'decode_e5m2'}(li);`;
  } else if (v.wdtype === 'int8' || v.wdtype === 'int4') {
    scaleFn =
      v.sdtype === 'float16'
        ? `fn wscale${fn}(e: u32, r: u32, col: u32) -> f32 { let i = (e * u.${rows} + r) * u.${s0} + col / u.s1; let q = unpack2x16float(${QS}[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`
        : `fn wscale${fn}(e: u32, r: u32, col: u32) -> f32 { return ${QS}[(e * u.${rows} + r) * u.${s0} + col / u.s1]; }`;
    lutInit = v.wdtype === 'int8' ? `lut[li] = decode_int8(li);` : `lut[li] = decode_int4(li);`;
    if (v.zp) zshiftFn = `fn wzshift${fn}(e: u32, r: u32, col: u32) -> f32 { let i = (e * u.${rows} + r) * u.${s0} + col / u.s1; return f32((${QZ}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) - ${v.wdtype === 'int4' ? '8.0' : '128.0'}; }`;
  } else if (v.wdtype === 'mxfp4') {
    scaleFn = `fn wscale${fn}(e: u32, r: u32, col: u32) -> f32 { let i = (e * u.${rows} + r) * u.${s0} + col / 32u; return e8m0((${QS}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }`;
    lutInit = `lut[li] = decode_fp4(li);`;
  }
  const load1 =
    v.wdtype === 'float32'
      ? `fn wload1${fn}(i: u32) -> f32 { return ${W}[i]; }`
      : v.wdtype === 'bfloat16'
        ? `fn wload1${fn}(i: u32) -> f32 { let w = ${W}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`
        : `fn wload1${fn}(i: u32) -> f32 { let q = unpack2x16float(${W}[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`;
  const scaleFns = zshiftFn ? wgslDecls`${ownFn(scaleFn)}\n${ownFn(zshiftFn)}` : ownFn(scaleFn);
  return { load8, load1, scaleFns, lutInit };
}

/** The decode GEMV's storage bindings: X (X4 with 8-wide loads), W, the grouping, Active, Y, then B, S, QS, QZ as the variant has them. */
export function gemvBindings(v: GemvVariant): BindingDecl[] {
  const read = (name: string, type: string): BindingDecl => ({ name, type, access: 'read' });
  const quant = v.sdtype !== 'none';
  const wtype = v.wide || v.ro !== undefined ? 'array<vec4<u32>>' : quant ? 'array<u32>' : v.vec8 ? (v.wdtype === 'float32' ? 'array<vec4<f32>>' : 'array<vec4<u32>>') : v.wdtype === 'float32' ? 'array<f32>' : 'array<u32>';
  const x = v.vec8 ? read('X4', 'array<vec4<f32>>') : read('X', 'array<f32>');
  const y = { name: 'Y', type: 'array<f32>', access: 'read_write' } as const;
  const sh = v.combineShared ?? 'none';
  // the combined down GEMV reads the token's slots (routing and grouped rows) instead of an expert's grouped rows
  const rowsOf = v.combine
    ? [read('Idx', 'array<u32>'), read('Pos', 'array<u32>'), ...(v.combine === 'weighted' ? [read('WT', 'array<f32>')] : []), ...(sh !== 'none' ? [read('SH', 'array<f32>')] : []), ...(sh === 'gated' ? [read('GL', 'array<f32>')] : [])]
    : [read('Counts', 'array<u32>'), read('Offsets', 'array<u32>'), read('Order', 'array<u32>'), read('Active', 'array<u32>')];
  const b: BindingDecl[] = [x, read('W', wtype), ...rowsOf, y];
  if (v.bias) b.push(read('B', v.bdtype === 'float32' ? 'array<f32>' : 'array<u32>'));
  if (v.rowScale) b.push(read('S', 'array<f32>'));
  if (quant) b.push(read('QS', v.sdtype === 'float32' ? 'array<f32>' : 'array<u32>'));
  if (v.zp) b.push(read('QZ', 'array<u32>'));
  return b;
}

/**
 * The decode GEMV's uniforms: weight rows and columns of the chunk, outputs, k; the activation's limit and alpha;
 * the scale lookup s0..s3 (GemvWeights.su); the chunk's experts [eb, eb + ne) and output placement yo / ys;
 * the row-blocked path's chunks per scale block cb and its log2 cbs.
 */
export const GEMV_UNIFORMS: readonly UniformField[] = [
  ...uniformFields('u32', 'rows', 'cols', 'nout', 'k'),
  ...uniformFields('f32', 'limit', 'alpha'),
  ...uniformFields('u32', 's0', 's1', 's2', 's3', 'eb', 'ne', 'yo', 'ys', 'cb', 'cbs'),
];
