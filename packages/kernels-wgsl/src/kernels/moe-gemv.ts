/**
 * Decode-path expert GEMMs: few rows per expert (token generation). The
 * weights of each expert that got tokens are read exactly once, at full
 * width (16-byte loads of 8 bf16/f16 values), by a grid of min(E, T*k)
 * expert slots over the active-expert list built on the GPU (no host round
 * trip); slots past the active experts do no work.
 * Same contract as groupedGateUpGpu / groupedDownGpu (grouped row order), so
 * the layer picks either by rows per expert.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, Recorder, Uniforms } from '../runtime/kernel.js';
import { LimitError } from '../runtime/errors.js';
import type { ExpertActivation, ExpertStackGpu, ExpertWeightsGpu, GroupingGpu } from './moe-types.js';
import { FP8_DECODE_WGSL, PACKED_CODE_WGSL } from '../wgsl.js';
import { expertChunkList, expertDims } from './expert-weights.js';
import { gemvPackedKernelFor, gemvRowsPerPass, type GemvPackedKernel } from './plan.js';


/** Outputs per decode-GEMV workgroup, one per 32-lane group (its indirect args count blocks of these). */
export const GEMV_GROUPS = 8;
const GROUPS = GEMV_GROUPS;
const LANES = 32;

type DenseDtype = 'float32' | 'bfloat16' | 'float16';
/** Packed formats the GEMV dequantises in its 8-wide loads. */
type QuantFmt = 'fp8_e4m3' | 'fp8_e5m2' | 'int4' | 'int8' | 'mxfp4';

/** Variant of the decode GEMV kernels. */
export type GemvVariant = {
  /** Weight storage: a dense dtype or a packed quantized format. */
  wdtype: DenseDtype | QuantFmt;
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
  /** Row-blocked path: chunks per scale block is a power of two (a shift by p.cbs, else a division by p.cb). */
  cbPow2?: boolean;
};


/** Columns of one 16-byte chunk of packed codes in the wide GEMV. */
function wideChunkCols(wfmt: GemvVariant['wdtype']): number {
  return wfmt === 'int4' || wfmt === 'mxfp4' ? 32 : 16;
}

/**
 * WGSL `fn dec(c: vec4<u32>) -> vec4<f32>`: four codes (already shifted down
 * and masked to their width) to values, with arithmetic (no table):
 * int4 c - 8; int8 c - 128; mxfp4 e2m1 as mant * 2^(max(e,1)-2) with the
 * sign bit or-ed in; fp8 e4m3 by moving the exponent/mantissa bits into an
 * f32 and scaling by 2^120 (subnormals m * 2^-9, 0x7f/0xff NaN), as
 * decode_e4m3.
 */
function wideDecodeWgsl(wfmt: GemvVariant['wdtype']): string {
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
interface RowsCodec {
  /** Columns per u32 word: 8 (4-bit codes, low nibble first) or 4 (bytes). */
  perWord: 4 | 8;
  /** WGSL: `fn dw(w: u32, z: vec4<f32>) -> V8` (8 per word) or `-> vec4<f32>` (4), z from `zoff` (int formats; else unused). */
  wgsl: string;
  /** WGSL expression: the fma offsets of the int formats for zero-point code `z` (an f32 expression). */
  zoff?: (z: string) => string;
  /** Power of two undoing the f16 placement, applied to each chunk's partial sums. */
  unit: number;
  /** WGSL `fn nanw(w: u32) -> u32`: nonzero when word w holds a NaN code that the placement would miss. */
  nan?: string;
}

const ROWS_CODECS: Partial<Record<GemvVariant['wdtype'], RowsCodec>> = {
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
    nan: `fn nanw(w: u32) -> u32 { let u = (w & 0x7f7f7f7fu) ^ 0x7f7f7f7fu; return (u - 0x01010101u) & ~u & 0x80808080u; }`,
    unit: 256,
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

/** Values per lane reduced in one pass of the row-blocked GEMV's workgroup reduction (bounds its workgroup memory). */
const ROWS_PASS = 8;

/**
 * The row-blocked GEMV's scale (and zero point) of scale index i, and the
 * scale row of weight row r: int blocks [E, rows, cols/bs], fp8 blocks
 * [E, rows/bh, cols/bw], mxfp4 e8m0 bytes [E, rows, cols/32].
 */
function rowsScaleWgsl(v: GemvVariant): string {
  const fp8 = v.wdtype === 'fp8_e4m3' || v.wdtype === 'fp8_e5m2';
  const srow = fp8 ? `fn srow(e: u32, r: u32) -> u32 { return (e * p.s0 + r / p.s2) * p.s1; }` : `fn srow(e: u32, r: u32) -> u32 { return (e * p.rows + r) * p.s0; }`;
  const sload =
    v.wdtype === 'mxfp4'
      ? `fn sload(i: u32) -> f32 { return exp2(f32((QS[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) - 127.0); }`
      : v.sdtype === 'float16'
        ? `fn sload(i: u32) -> f32 { let q = unpack2x16float(QS[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`
        : `fn sload(i: u32) -> f32 { return QS[i]; }`;
  const zload = v.zp ? `\nfn zload(i: u32) -> f32 { return f32((QZ[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }` : '';
  const blk = `fn cblk(c: u32) -> u32 { return ${v.cbPow2 ? 'c >> p.cbs' : 'c / p.cb'}; }`;
  return `${srow}\n${sload}${zload}\n${blk}`;
}

/** The row-blocked GEMV's module after the shared bindings: decoding, scale lookup, reduction memory, main. */
function rowsWgsl(v: GemvVariant): string {
  const codec = ROWS_CODECS[v.wdtype];
  if (!codec) throw new ValueError('row-blocked GEMV format', Object.keys(ROWS_CODECS).join(' | '), v.wdtype);
  return `struct V8 { lo: vec4<f32>, hi: vec4<f32>, }
${codec.nan ? `${FP8_DECODE_WGSL}\n${codec.nan}` : ''}
${codec.wgsl}
${rowsScaleWgsl(v)}
var<workgroup> red: array<f32, ${GROUPS * LANES * ROWS_PASS}>;
${rowsMain(v)}`;
}

/**
 * The row-blocked decode GEMV (v.ro outputs per 32-lane group): lanes split
 * the columns in 16-byte chunks (two chunks in flight per lane), every x load
 * serves all the group's weight rows, partial sums are reduced in workgroup
 * memory in passes of ROWS_PASS values per lane, each output summed over the
 * 32 lanes in a fixed order. Emitted unrolled over rows, gate/up and tokens.
 */
function rowsMain(v: GemvVariant): string {
  const codec = ROWS_CODECS[v.wdtype]!;
  const gu = v.mode === 'gate_up';
  const RO = v.ro!;
  const MRv = v.mr;
  const CW = wideChunkCols(v.wdtype);
  const X4W = codec.perWord / 4; // x vec4s per code word
  const rows = Array.from({ length: RO }, (_, r) => r);
  const ms = Array.from({ length: MRv }, (_, m) => m);
  const parts = gu ? ['g', 'u'] : ['g'];
  const us = [0, 1];
  // every accumulator, gate/up of one (row, token) adjacent: the reduction pairs them
  const vals = rows.flatMap((r) => ms.flatMap((m) => parts.map((a) => `a${a}${r}_${m}`)));
  const perPass = ROWS_PASS / parts.length;
  const passes = Math.ceil(vals.length / ROWS_PASS);
  const zdef = (a: string, r: number, u: number) =>
    codec.zoff ? `let z${a}${r}_${u} = ${codec.zoff(v.zp ? `zload(s${a}${r} + cblk(c${u}))` : v.wdtype === 'int4' ? '8.0' : '128.0')};` : '';
  // one decoded word d of row (a, r) against every token's x
  const dotw = (a: string, r: number) =>
    ms.map((m) => (X4W === 2 ? `p${a}${r}_${m} += dot(d.lo, x${m}_0) + dot(d.hi, x${m}_1);` : `p${a}${r}_${m} += dot(d, x${m}_0);`)).join(' ');
  // the two chunks' codes and scales are loaded first (all rows), then consumed one chunk at a time and one
  // 4-byte word at a time in loops (constant trip counts: small code for CPU drivers, unrolled by GPU compilers)
  const rowsParts = rows.flatMap((r) => parts.map((a) => `${a}${r}`));
  const chunkLoop = `
      for (var u = 0u; u < 2u; u++) {
        let cu = select(c0, c1, u == 1u); let oku = select(ok0, ok1, u == 1u);
${rowsParts.map((n) => `        let q${n} = select(q${n}_0, q${n}_1, u == 1u); let s${n}u = select(s${n}_0, s${n}_1, u == 1u);${codec.zoff ? ` let z${n} = select(z${n}_0, z${n}_1, u == 1u);` : ''}`).join('\n')}
${rowsParts.map((n) => `        ${ms.map((m) => `var p${n}_${m} = 0.0;`).join(' ')}`).join('\n')}
        for (var j = 0u; j < 4u; j++) {
${ms.map((m) => `          ${Array.from({ length: X4W }, (_, h) => `let x${m}_${h} = X4[xq${m} + cu * ${CW / 4}u + j * ${X4W}u${h ? ` + ${h}u` : ''}];`).join(' ')}`).join('\n')}
${rows.flatMap((r) => parts.map((a) => `          { let d = dw(q${a}${r}[j], ${codec.zoff ? `z${a}${r}` : 'vec4<f32>(0.0)'}); ${dotw(a, r)} }`)).join('\n')}
        }
${rowsParts.flatMap((n) => ms.map((m) => `        a${n}_${m} += select(0.0, s${n}u * (p${n}_${m}${codec.unit !== 1 ? ` * ${codec.unit}.0` : ''}), oku);`)).join('\n')}
      }`;
  return /* wgsl */ `
@compute @workgroup_size(${LANES}, ${GROUPS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e0 = Active[wid.y];
  let mine = e0 != ${NO_EXPERT}u && e0 >= p.eb && e0 - p.eb < p.ne;
  let eg = select(p.eb, e0, mine);
  let e = eg - p.eb;
  let off = Offsets[eg];
  if (lid.x == 0u && lid.y == 0u) { wcnt = select(0u, Counts[eg], mine); }
  let cnt = workgroupUniformLoad(&wcnt);
  let lane = lid.x;
  let g = lid.y;
  let ob = (wid.x * ${GROUPS}u + g) * ${RO}u;
  let nch = p.cols / ${CW}u;
${rows
  .map(
    (r) => `  let oc${r} = min(ob + ${r}u, p.nout - 1u);
  let rg${r} = ${gu ? `select(oc${r}, 2u * oc${r}, ${v.interleaved})` : `oc${r}`};${gu ? ` let ru${r} = select(oc${r} + p.nout, 2u * oc${r} + 1u, ${v.interleaved});` : ''}
${parts.map((a) => `  let w${a}${r} = (e * p.rows + r${a}${r}) * nch; let s${a}${r} = srow(e, r${a}${r});`).join('\n')}`,
  )
  .join('\n')}
  for (var m0 = 0u; m0 < cnt; m0 += ${MRv}u) {
${ms.map((m) => `    let xq${m} = (${gu ? `(Order[off + min(m0 + ${m}u, cnt - 1u)] / p.k)` : `(off + min(m0 + ${m}u, cnt - 1u))`} * p.cols) >> 2u;`).join('\n')}
${vals.map((n) => `    var ${n} = 0.0;`).join('\n')}
${codec.nan ? rows.flatMap((r) => parts.map((a) => `    var bad${a}${r} = 0u;`)).join('\n') : ''}
    for (var c = lane; c < nch; c += ${2 * LANES}u) {
      let c0 = c; let ok0 = true;
      let ok1 = c + ${LANES}u < nch; let c1 = select(c, c + ${LANES}u, ok1);
${us.map((u) => rows.flatMap((r) => parts.map((a) => `      let q${a}${r}_${u} = W[w${a}${r} + c${u}];`)).join('\n')).join('\n')}
${us.map((u) => rows.flatMap((r) => parts.map((a) => `      let s${a}${r}_${u} = sload(s${a}${r} + cblk(c${u})); ${zdef(a, r, u)}`)).join('\n')).join('\n')}
${codec.nan ? us.map((u) => rows.flatMap((r) => parts.map((a) => `      bad${a}${r} |= select(0u, nanw(q${a}${r}_${u}.x) | nanw(q${a}${r}_${u}.y) | nanw(q${a}${r}_${u}.z) | nanw(q${a}${r}_${u}.w), ok${u});`)).join('\n')).join('\n') : ''}
${chunkLoop}
    }
${codec.nan ? rows.flatMap((r) => parts.map((a) => `    if (bad${a}${r} != 0u) { ${ms.map((m) => `a${a}${r}_${m} = special_f32(0x7fc00000u, bad${a}${r});`).join(' ')} }`)).join('\n') : ''}
${Array.from({ length: passes }, (_, ps) => {
  const pv = vals.slice(ps * ROWS_PASS, (ps + 1) * ROWS_PASS);
  return `    // reduction pass ${ps}: outputs (row, token) ${ps * perPass}..${ps * perPass + pv.length / parts.length - 1}
${pv.map((n, q) => `    red[(g * ${ROWS_PASS}u + ${q}u) * ${LANES}u + lane] = ${n};`).join('\n')}
    workgroupBarrier();
    if (lane < ${pv.length / parts.length}u) {
      let j = ${ps * perPass}u + lane;
      let r = j / ${MRv}u;
      let m = j % ${MRv}u;
      let o = ob + r;
      if (o < p.nout && m0 + m < cnt) {
        let b = (g * ${ROWS_PASS}u + lane * ${parts.length}u) * ${LANES}u;
        var sg = 0.0;${gu ? ' var su = 0.0;' : ''}
        for (var i = 0u; i < ${LANES}u; i++) { sg += red[b + i];${gu ? ` su += red[b + ${LANES}u + i];` : ''} }
        let row = off + m0 + m;
        ${gu ? `let rg = select(o, 2u * o, ${v.interleaved}); let ru = select(o + p.nout, 2u * o + 1u, ${v.interleaved});` : 'let rg = o;'}
        ${storeWgsl(v)}
      }
    }
    workgroupBarrier();`;
}).join('\n')}
  }
}
`;
}

/**
 * WGSL storing output o of grouped row `row` from its sums sg (and su):
 * rowScale, bias of weight rows rg (ru), activation. Needs e, o, row, rg (ru) in scope.
 */
function storeWgsl(v: GemvVariant): string {
  const gu = v.mode === 'gate_up';
  return [
    v.rowScale ? `let sc = S[Order[row]]; sg = sg * sc;${gu ? ' su = su * sc;' : ''}` : '',
    v.bias ? `sg = sg + bload(e * p.rows + rg);${gu ? ' su = su + bload(e * p.rows + ru);' : ''}` : '',
    `Y[row * p.ys + p.yo + o] = ${gu ? 'act(sg, su)' : 'sg'};`,
  ]
    .filter((l) => l)
    .join(' ');
}

function biasLoader(d: DenseDtype): string {
  return d === 'float32'
    ? `fn bload(i: u32) -> f32 { return B[i]; }`
    : d === 'bfloat16'
      ? `fn bload(i: u32) -> f32 { let w = B[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`
      : `fn bload(i: u32) -> f32 { let v = unpack2x16float(B[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }`;
}

function actWgsl(act: GemvVariant['act']): string {
  switch (act) {
    case 'silu':
      return `fn act(g: f32, u: f32) -> f32 { return g / (1.0 + exp(-g)) * u; }`;
    case 'swiglu_limit':
      return `fn act(g: f32, u: f32) -> f32 { return min(g / (1.0 + exp(-g)), p.limit) * clamp(u, -p.limit, p.limit); }`;
    case 'swigluoai':
      return `fn act(g0: f32, u0: f32) -> f32 { let g = min(g0, p.limit); let u = clamp(u0, -p.limit, p.limit); return (u + 1.0) * g / (1.0 + exp(-p.alpha * g)); }`;
    default:
      return `fn act(g: f32, u: f32) -> f32 { return g; }`;
  }
}

/** The Active-list entry of a slot past the active experts. */
export const NO_EXPERT = 0xffffffff;

/**
 * The decode GEMV. Workgroup (bx, by): output block bx (GROUPS outputs), active
 * expert slot by (a direct grid of min(E, T*k) slots; slots past the active
 * experts exit without work). Lanes of a group split the reduction dimension in 8-wide
 * chunks; partial sums are reduced in workgroup memory in a fixed order.
 * The WGSL is generated fully unrolled over the MR token rows (no
 * dynamically indexed register arrays, which drivers spill to memory).
 */
export const gemvKernel = defineKernel<GemvVariant>('moe_gemv', (v) => {
  const gu = v.mode === 'gate_up';
  const MRv = v.mr;
  const NA = gu ? 2 : 1;
  const R = Array.from({ length: MRv }, (_, m) => m);
  const quant = v.sdtype !== 'none';
  const rows = v.ro !== undefined;
  const wdecl = v.wide || rows ? 'array<vec4<u32>>' : quant ? 'array<u32>' : v.vec8 ? (v.wdtype === 'float32' ? 'array<vec4<f32>>' : 'array<vec4<u32>>') : v.wdtype === 'float32' ? 'array<f32>' : 'array<u32>';
  // weight chunk loader: even/odd lanes of 8 consecutive weights
  let load8 = '';
  if (v.vec8) {
    if (v.wdtype === 'bfloat16') {
      load8 = `fn wload8(base: u32) -> W8 { let q = W[base >> 3u]; return W8(bitcast<vec4<f32>>(q << vec4<u32>(16u)), bitcast<vec4<f32>>(q & vec4<u32>(0xffff0000u))); }`;
    } else if (v.wdtype === 'float16') {
      load8 = `fn wload8(base: u32) -> W8 { let q = W[base >> 3u]; let a = unpack2x16float(q.x); let b = unpack2x16float(q.y); let c = unpack2x16float(q.z); let d = unpack2x16float(q.w);
  return W8(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y)); }`;
    } else if (v.wdtype === 'float32') {
      load8 = `fn wload8(base: u32) -> W8 { let a = W[base >> 2u]; let b = W[(base >> 2u) + 1u]; return W8(vec4<f32>(a.xz, b.xz), vec4<f32>(a.yw, b.yw)); }`;
    } else if (v.wdtype === 'fp8_e4m3' || v.wdtype === 'fp8_e5m2' || v.wdtype === 'int8') {
      // 8 one-byte codes in two words; the byte -> value table is in workgroup memory
      load8 = `fn wload8(base: u32) -> W8 { let a = W[base >> 2u]; let b = W[(base >> 2u) + 1u];
  return W8(vec4<f32>(lut[a & 0xffu], lut[(a >> 16u) & 0xffu], lut[b & 0xffu], lut[(b >> 16u) & 0xffu]),
            vec4<f32>(lut[(a >> 8u) & 0xffu], lut[a >> 24u], lut[(b >> 8u) & 0xffu], lut[b >> 24u])); }`;
    } else {
      // int4 / mxfp4: 8 nibbles in one word, low nibble first
      load8 = `fn wload8(base: u32) -> W8 { let a = W[base >> 3u];
  return W8(vec4<f32>(lut[a & 0xfu], lut[(a >> 8u) & 0xfu], lut[(a >> 16u) & 0xfu], lut[(a >> 24u) & 0xfu]),
            vec4<f32>(lut[(a >> 4u) & 0xfu], lut[(a >> 12u) & 0xfu], lut[(a >> 20u) & 0xfu], lut[(a >> 28u) & 0xfu])); }`;
    }
  }
  // per-chunk dequantisation scale of row r at column col (all 8 columns share it)
  let scaleFn = '';
  let lutInit = '';
  if (quant) {
    if (v.wdtype === 'fp8_e4m3' || v.wdtype === 'fp8_e5m2') {
      scaleFn = `fn wscale(e: u32, r: u32, col: u32) -> f32 { return QS[(e * p.s0 + r / p.s2) * p.s1 + col / p.s3]; }`;
      lutInit = `lut[li] = ${v.wdtype === 'fp8_e4m3' ? 'decode_e4m3' : 'decode_e5m2'}(li);`;
    } else if (v.wdtype === 'int8' || v.wdtype === 'int4') {
      scaleFn =
        v.sdtype === 'float16'
          ? `fn wscale(e: u32, r: u32, col: u32) -> f32 { let i = (e * p.rows + r) * p.s0 + col / p.s1; let q = unpack2x16float(QS[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`
          : `fn wscale(e: u32, r: u32, col: u32) -> f32 { return QS[(e * p.rows + r) * p.s0 + col / p.s1]; }`;
      lutInit = v.wdtype === 'int8' ? `lut[li] = decode_int8(li);` : `lut[li] = decode_int4(li);`;
      // zero point of the chunk's block, as its shift from the table's fixed 8 / 128 (all 8 or 32 columns share it)
      if (v.zp) scaleFn += `\nfn wzshift(e: u32, r: u32, col: u32) -> f32 { let i = (e * p.rows + r) * p.s0 + col / p.s1; return f32((QZ[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) - ${v.wdtype === 'int4' ? '8.0' : '128.0'}; }`;
    } else {
      scaleFn = `fn wscale(e: u32, r: u32, col: u32) -> f32 { let i = (e * p.rows + r) * p.s0 + col / 32u; return exp2(f32((QS[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) - 127.0); }`;
      lutInit = `lut[li] = decode_fp4(li);`;
    }
  }
  const load1 =
    v.wdtype === 'float32'
      ? `fn wload1(i: u32) -> f32 { return W[i]; }`
      : v.wdtype === 'bfloat16'
        ? `fn wload1(i: u32) -> f32 { let w = W[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`
        : `fn wload1(i: u32) -> f32 { let q = unpack2x16float(W[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`;
  // packed formats decode through a table: fewer chunks in flight keep the unrolled code (and its compile time on CPU drivers) small
  const U = v.vec8 ? (quant ? 2 : 4) : 1;
  // wide packed chunks: one 16-byte load per weight row, decoded word by word (4 words; a 4-bit word is 8 columns, an 8-bit word 4)
  const CW = wideChunkCols(v.wdtype);
  const four = CW === 32;
  const words = [0, 1, 2, 3];
  const halves = four ? [0, 1] : [0];
  const shifts = (h: number) => (four ? `vec4<u32>(${[0, 4, 8, 12].map((b) => b + 16 * h + 'u').join(', ')})` : 'vec4<u32>(0u, 8u, 16u, 24u)');
  const mask = four ? 'vec4<u32>(15u)' : 'vec4<u32>(255u)';
  const zsub = (z: string) => (v.zp ? ` - ${z}` : '');
  const wideInner = `
        let col = c * ${CW}u;
        let qg = W[(gbase + col) / ${CW}u];${gu ? ` let qu = W[(ubase + col) / ${CW}u];` : ''}
        let sg = wscale(e, rg, col);${gu ? ' let su = wscale(e, ru, col);' : ''}${v.zp ? ` let zg = wzshift(e, rg, col);${gu ? ' let zu = wzshift(e, ru, col);' : ''}` : ''}
${R.map((m) => `        var pg${m} = 0.0;${gu ? ` var pu${m} = 0.0;` : ''} let xq${m} = (xrow${m} + col) >> 2u;`).join('\n')}
${words
  .map((j) =>
    halves
      .map((h) => {
        const xo = four ? 2 * j + h : j;
        return `        { let wg = dec((vec4<u32>(qg[${j}]) >> ${shifts(h)}) & ${mask})${zsub('zg')};${gu ? ` let wu = dec((vec4<u32>(qu[${j}]) >> ${shifts(h)}) & ${mask})${zsub('zu')};` : ''}
${R.map((m) => `          { let xv = X4[xq${m} + ${xo}u]; pg${m} += dot(wg, xv);${gu ? ' pu' + m + ' += dot(wu, xv);' : ''} }`).join('\n')} }`;
      })
      .join('\n'),
  )
  .join('\n')}
${R.map((m) => `        ag${m} += sg * pg${m};${gu ? ` au${m} += su * pu${m};` : ''}`).join('\n')}`;
  const Us = Array.from({ length: U }, (_, u) => u);
  // zero points: the 8 table values minus the chunk's zero-point shift
  const wz = (w8: string, z: string) => (v.zp ? `wzsub(${w8}, ${z})` : w8);
  const inner = v.vec8
    ? `
${Us.map((u) => `        let c${u} = c + ${u * LANES}u; let ok${u} = c${u} < nchunks; let col${u} = min(c${u}, nchunks - 1u) * 8u;
        let wg${u} = ${wz(`wload8(gbase + col${u})`, `wzshift(e, rg, col${u})`)};${gu ? ` let wu${u} = ${wz(`wload8(ubase + col${u})`, `wzshift(e, ru, col${u})`)};` : ''}${quant ? ` let sg${u} = wscale(e, rg, col${u});${gu ? ` let su${u} = wscale(e, ru, col${u});` : ''}` : ''}`).join('\n')}
${Us.map((u) => R.map((m) => `        { let q = (xrow${m} + col${u}) >> 2u; let xa = X4[q]; let xb = X4[q + 1u];
          let xe = vec4<f32>(xa.xz, xb.xz); let xo = vec4<f32>(xa.yw, xb.yw);
          ag${m} += select(0.0, ${quant ? `sg${u} * ` : ''}(dot(wg${u}.e, xe) + dot(wg${u}.o, xo)), ok${u});${gu ? ` au${m} += select(0.0, ${quant ? `su${u} * ` : ''}(dot(wu${u}.e, xe) + dot(wu${u}.o, xo)), ok${u});` : ''} }`).join('\n')).join('\n')}`
    : `
        let col = c * 8u;
        let lim = min(8u, p.cols - col);
        for (var j = 0u; j < lim; j++) {
          let wgv = wload1(gbase + col + j);${gu ? `\n          let wuv = wload1(ubase + col + j);` : ''}
${R.map((m) => `          { let xv = X[xrow${m} + col + j]; ag${m} = fma(xv, wgv, ag${m});${gu ? ` au${m} = fma(xv, wuv, au${m});` : ''} }`).join('\n')}
        }`;
  return /* wgsl */ `
struct P { rows: u32, cols: u32, nout: u32, k: u32, limit: f32, alpha: f32, nblocks: u32, _p: u32, s0: u32, s1: u32, s2: u32, s3: u32, eb: u32, ne: u32, yo: u32, ys: u32, cb: u32, cbs: u32, _q0: u32, _q1: u32, }
struct W8 { e: vec4<f32>, o: vec4<f32>, }
@group(0) @binding(0) var<storage, read> ${v.vec8 ? 'X4: array<vec4<f32>>' : 'X: array<f32>'};
@group(0) @binding(1) var<storage, read> W: ${wdecl};
@group(0) @binding(2) var<storage, read> Counts: array<u32>;
@group(0) @binding(3) var<storage, read> Offsets: array<u32>;
@group(0) @binding(4) var<storage, read> Order: array<u32>;
@group(0) @binding(5) var<storage, read> Active: array<u32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;
${v.bias ? `@group(0) @binding(7) var<storage, read> B: ${v.bdtype === 'float32' ? 'array<f32>' : 'array<u32>'};` : ''}
${v.rowScale ? `@group(0) @binding(${v.bias ? 8 : 7}) var<storage, read> S: array<f32>;` : ''}
${quant ? `@group(0) @binding(${7 + (v.bias ? 1 : 0) + (v.rowScale ? 1 : 0)}) var<storage, read> QS: ${v.sdtype === 'float32' ? 'array<f32>' : 'array<u32>'};` : ''}
${v.zp ? `@group(0) @binding(${8 + (v.bias ? 1 : 0) + (v.rowScale ? 1 : 0)}) var<storage, read> QZ: array<u32>;` : ''}
@group(0) @binding(${7 + (v.bias ? 1 : 0) + (v.rowScale ? 1 : 0) + (quant ? 1 : 0) + (v.zp ? 1 : 0)}) var<uniform> p: P;
${v.bias ? biasLoader(v.bdtype) : ''}
${actWgsl(v.act)}
var<workgroup> wcnt: u32;
${rows ? rowsWgsl(v) : `${v.zp && !v.wide ? 'fn wzsub(w: W8, z: f32) -> W8 { return W8(w.e - z, w.o - z); }' : ''}
${v.wide ? `${wideDecodeWgsl(v.wdtype)}\n${scaleFn}` : quant ? `${FP8_DECODE_WGSL}${PACKED_CODE_WGSL}\nvar<workgroup> lut: array<f32, 256>;\n${scaleFn}` : ''}
${v.wide ? '' : v.vec8 ? load8 : load1}
var<workgroup> red: array<f32, ${GROUPS * LANES * MRv * NA}>;
@compute @workgroup_size(${LANES}, ${GROUPS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // slots past the active experts hold NO_EXPERT, and experts outside this dispatch's chunk [eb, eb + ne) of the
  // stack are another dispatch's: their workgroups see no rows and write nothing. eg: global expert, e: in the chunk.
  let e0 = Active[wid.y];
  let mine = e0 != ${NO_EXPERT}u && e0 >= p.eb && e0 - p.eb < p.ne;
  let eg = select(p.eb, e0, mine);
  let e = eg - p.eb;
  let off = Offsets[eg];
  ${quant && !v.wide ? `{ let li = lid.y * ${LANES}u + lid.x; ${lutInit} }` : ''}
  if (lid.x == 0u && lid.y == 0u) { wcnt = select(0u, Counts[eg], mine); }
  let cnt = workgroupUniformLoad(&wcnt);
  let lane = lid.x;
  let g = lid.y;
  let o = wid.x * ${GROUPS}u + g;
  let valid = o < p.nout;
  let oc = min(o, p.nout - 1u);
  let ebase = e * p.rows * p.cols;
  ${gu ? `let rg = select(oc, 2u * oc, ${v.interleaved});
  let ru = select(oc + p.nout, 2u * oc + 1u, ${v.interleaved});
  let ubase = ebase + ru * p.cols;` : `let rg = oc;`}
  let gbase = ebase + rg * p.cols;
  let nchunks = ${v.wide ? `p.cols / ${CW}u` : '(p.cols + 7u) / 8u'};
  for (var m0 = 0u; m0 < cnt; m0 += ${MRv}u) {
${R.map((m) => `    let xrow${m} = ${gu ? `(Order[off + min(m0 + ${m}u, cnt - 1u)] / p.k) * p.cols` : `(off + min(m0 + ${m}u, cnt - 1u)) * p.cols`};
    var ag${m} = 0.0;${gu ? ` var au${m} = 0.0;` : ''}`).join('\n')}
    if (valid) {
      for (var c = lane; c < nchunks; c += ${v.wide ? LANES : LANES * U}u) {${v.wide ? wideInner : inner}
      }
    }
${R.map((m) => `    red[(g * ${MRv * NA}u + ${m * NA}u) * ${LANES}u + lane] = ag${m};${gu ? `\n    red[(g * ${MRv * NA}u + ${m * NA + 1}u) * ${LANES}u + lane] = au${m};` : ''}`).join('\n')}
    workgroupBarrier();
    for (var s = ${LANES / 2}u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var q = 0u; q < ${MRv * NA}u; q++) {
          let b = (g * ${MRv * NA}u + q) * ${LANES}u;
          red[b + lane] = red[b + lane] + red[b + lane + s];
        }
      }
      workgroupBarrier();
    }
    if (valid && lane < ${MRv}u && m0 + lane < cnt) {
      let row = off + m0 + lane;
      var sg = red[(g * ${MRv * NA}u + lane * ${NA}u) * ${LANES}u];
      ${gu ? `var su = red[(g * ${MRv * NA}u + lane * ${NA}u + 1u) * ${LANES}u];` : ''}
      ${storeWgsl(v)}
    }
    workgroupBarrier();
  }
}`}
`;
});

/**
 * Builds the active-expert list (experts with rows, in increasing order, then
 * NO_EXPERT up to E) with a workgroup prefix scan, and indirect dispatch args
 * over the active experts: Args[0..2] = (gate_up blocks, nActive, 1),
 * Args[3..5] = (down blocks, nActive, 1). The GEMVs dispatch a direct grid
 * of min(E, T*k) slots instead: Dawn validates every indirect dispatch with
 * an extra pass and buffers of its own (~90 us of host time each on lavapipe).
 */
export const activeExpertsKernel = defineKernel<{ wg: number }>('moe_active_experts', ({ wg }) => /* wgsl */ `
struct P { E: u32, nbx0: u32, nbx1: u32, _b: u32, }
@group(0) @binding(0) var<storage, read> Counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> Active: array<u32>;
@group(0) @binding(2) var<storage, read_write> Args: array<u32>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> sc: array<u32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  var base = 0u;
  for (var e0 = 0u; e0 < p.E; e0 += ${wg}u) {
    let e = e0 + t;
    var flag = 0u;
    if (e < p.E) { flag = select(0u, 1u, Counts[e] > 0u); }
    sc[t] = flag;
    workgroupBarrier();
    for (var s = 1u; s < ${wg}u; s <<= 1u) {
      var v = 0u;
      if (t >= s) { v = sc[t - s]; }
      workgroupBarrier();
      sc[t] = sc[t] + v;
      workgroupBarrier();
    }
    if (flag == 1u) { Active[base + sc[t] - 1u] = e; }
    base += sc[${wg - 1}u];
    workgroupBarrier();
  }
  for (var i = base + t; i < p.E; i += ${wg}u) { Active[i] = ${NO_EXPERT}u; }
  if (t == 0u) { Args[0] = p.nbx0; Args[1] = base; Args[2] = 1u; Args[3] = p.nbx1; Args[4] = base; Args[5] = 1u; }
}
`);

/**
 * The active experts of a grouping and the indirect args of the two decode
 * GEMVs, computed once per forward on the GPU.
 */
export interface ActiveExperts {
  active: GPUBuffer;
  args: GPUBuffer;
}

/** Records the active-expert compaction (buffers owned by `rec`). @example `const a = activeExpertsGpu(ctx, rec, g, I, H)` */
export function activeExpertsGpu(ctx: GpuContext, rec: Recorder, g: GroupingGpu, nGateUp: number, nDown: number): ActiveExperts {
  const active = rec.temp(4 * Math.max(g.E, 1), 'active');
  const args = rec.temp(32, 'indirect');
  rec.dispatch({
    kernel: activeExpertsKernel,
    variant: { wg: 256 },
    buffers: [g.counts.buffer, active, args],
    uniforms: new Uniforms().u32(g.E, Math.ceil(nGateUp / GROUPS), Math.ceil(nDown / GROUPS)).finish(),
    workgroups: [1],
  });
  return { active, args };
}

const singleExpert = new WeakMap<GPUDevice, GPUBuffer>();

/** The active-expert list of a one-expert grouping ([0]), one small buffer per device, made on first use. */
function singleExpertList(ctx: GpuContext): GPUBuffer {
  let b = singleExpert.get(ctx.device);
  if (!b) {
    b = ctx.device.createBuffer({ label: 'active.single', size: 16, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Uint32Array(b.getMappedRange()).fill(0);
    b.unmap();
    singleExpert.set(ctx.device, b);
  }
  return b;
}

/** Options of the decode GEMVs. */
export interface GemvOptions {
  pool?: BufferPool;
  /**
   * Which kernel reads packed weights (default: the planner's gemvPackedKernelFor(rows per pass)); 'wide' and 'rowsN'
   * fall back to 'table' where the shapes do not allow 16-byte chunks (see {@link gemvPackedPath}).
   */
  packedKernel?: GemvPackedKernel;
  /** Reuse the active-expert list of this forward (else computed here). */
  active?: ActiveExperts;
  bias?: GpuTensor;
  rowScale?: GpuTensor;
}

/** What the GEMV binds for one weight container. */
interface GemvWeights {
  E: number;
  rows: number;
  cols: number;
  codes: GpuTensor;
  scales?: GpuTensor;
  /** int_block zero points (uint8, indexed as the scales). */
  zeros?: GpuTensor;
  wfmt: GemvVariant['wdtype'];
  sdtype: GemvVariant['sdtype'];
  /** s0..s3 uniforms of the scale lookup. */
  su: [number, number, number, number];
}

/**
 * Whether the decode GEMV takes these weights: dense f32/bf16/f16 (any
 * shape), or packed fp8_block / int_block / mxfp4 with cols % 8 == 0 and
 * scale blocks that never split an aligned group of 8 columns.
 *
 * @example `if (gemvSupports(w.gateUp) && gemvSupports(w.down)) useGemv()`
 */
export function gemvSupports(w: ExpertStackGpu): boolean {
  try {
    for (const c of stackChunks(w)) gemvWeights('weights', c);
    return true;
  } catch {
    return false;
  }
}

/** The plain containers of a stack (itself, or its chunks' weights). */
function stackChunks(w: ExpertStackGpu): ExpertWeightsGpu[] {
  return w.kind === 'chunked' ? w.chunks.map((c) => c.w) : [w];
}

function gemvWeights(what: string, w: ExpertWeightsGpu): GemvWeights {
  const { E, rows, cols } = expertDims(w, `${what} weights`);
  if (w.kind === 'dense') {
    return { E, rows, cols, codes: w.w, wfmt: w.w.dtype as DenseDtype, sdtype: 'none', su: [0, 0, 0, 0] };
  }
  if (cols % 8 !== 0) throw new ShapeError(`${what} weights (${w.kind}) cols`, 'a multiple of 8 for the decode GEMV', `${cols}`);
  if (w.kind === 'fp8_block') {
    const [bh, bw] = w.block;
    if (bw % 8 !== 0) throw new ValueError(`${what} fp8 block cols`, 'a multiple of 8 for the decode GEMV', bw);
    const wfmt = w.q.dtype === 'float8_e5m2' ? 'fp8_e5m2' : 'fp8_e4m3';
    return { E, rows, cols, codes: w.q, scales: w.scaleInv, wfmt, sdtype: 'float32', su: [Math.ceil(rows / bh), Math.ceil(cols / bw), bh, bw] };
  }
  if (w.kind === 'int_block') {
    if (w.blockSize % 8 !== 0) throw new ValueError(`${what} int block size`, 'a multiple of 8 for the decode GEMV', w.blockSize);
    const sd = w.scales.dtype;
    if (sd !== 'float32' && sd !== 'float16') throw new DTypeError(`${what} int scales`, ['float32', 'float16'], sd);
    return { E, rows, cols, codes: w.q, scales: w.scales, zeros: w.zeros, wfmt: w.bits === 4 ? 'int4' : 'int8', sdtype: sd, su: [Math.ceil(cols / w.blockSize), w.blockSize, 0, 0] };
  }
  return { E, rows, cols, codes: w.blocks, scales: w.scales, wfmt: 'mxfp4', sdtype: 'uint8', su: [cols / 32, 0, 0, 0] };
}

/**
 * The load path the decode GEMV takes for these weights under `kernel` (the
 * GemvOptions.packedKernel value): 'dense' for dense weights; 'wide' (int4,
 * int8, mxfp4, fp8 e4m3) and 'rows' (those and fp8 e5m2) where the columns and
 * the scale blocks are multiples of the 16-byte chunk (32 int4/mxfp4 or 16
 * int8/fp8 columns), else 'table'.
 * @example `gemvPackedPath(int4Weights, 'rows2') // 'rows' when cols and blocks are multiples of 32`
 */
export function gemvPackedPath(w: ExpertStackGpu, kernel: GemvPackedKernel = gemvPackedKernelFor(1)): 'dense' | 'table' | 'wide' | 'rows' {
  return packedPath(gemvWeights('weights', stackChunks(w)[0]), kernel);
}

/** Outputs per 32-lane group of a packed kernel name ('rows4' -> 4; 'table' and 'wide': 1). */
function kernelRows(kernel: GemvPackedKernel): number {
  return kernel.startsWith('rows') ? Number(kernel.slice(4)) : 1;
}

/** Scale block width in columns (fp8: the block's columns; int: the block size; mxfp4: 32). */
function blockCols(gw: GemvWeights): number {
  return gw.wfmt === 'fp8_e4m3' || gw.wfmt === 'fp8_e5m2' ? gw.su[3] : gw.wfmt === 'mxfp4' ? 32 : gw.su[1];
}

function packedPath(gw: GemvWeights, kernel: GemvPackedKernel): 'dense' | 'table' | 'wide' | 'rows' {
  if (gw.sdtype === 'none') return 'dense';
  if (kernel === 'table') return 'table';
  const rows = kernel !== 'wide';
  if (rows ? !ROWS_CODECS[gw.wfmt] : gw.wfmt === 'fp8_e5m2') return 'table';
  const cw = wideChunkCols(gw.wfmt);
  return gw.cols % cw === 0 && blockCols(gw) % cw === 0 ? (rows ? 'rows' : 'wide') : 'table';
}

/** One dispatch of a GEMV: a chunk of the stack (the whole stack when unchunked) with its bias. */
interface GemvChunk {
  place: { e0: number; experts: number; o0: number };
  gw: GemvWeights;
  nout: number;
  bias: GpuTensor | undefined;
}

function gemv(
  ctx: GpuContext,
  rec: Recorder,
  x: GpuTensor,
  g: GroupingGpu,
  w: ExpertStackGpu,
  mode: 'gate_up' | 'down',
  act: ExpertActivation | undefined,
  opts: GemvOptions,
): GpuTensor {
  const { E, rows, cols } = expertDims(w, `${mode} weights`);
  if (E !== g.E) throw new ShapeError(`${mode} weights experts`, [g.E, rows, cols], [E, rows, cols]);
  if (mode === 'gate_up' && rows % 2 !== 0) throw new ShapeError('gate_up weights', '[E, 2I, H] with an even row count', [E, rows, cols]);
  const nout = mode === 'gate_up' ? rows / 2 : rows;
  const xRows = mode === 'gate_up' ? g.T : g.T * g.k;
  if (x.dtype !== 'float32' || x.shape.length !== 2 || x.shape[0] !== xRows || x.shape[1] !== cols) {
    throw new ShapeError(`${mode} input`, [xRows, cols], x.shape);
  }
  if (opts.rowScale && opts.rowScale.size !== g.T * g.k) throw new ShapeError('rowScale', [g.T, g.k], opts.rowScale.shape);
  const layout = mode === 'down' ? 'rows' : act!.layout;
  const chunks: GemvChunk[] = expertChunkList(w, opts.bias, `${mode} GEMV`, layout).map((c) => {
    const gw = gemvWeights(mode, c.w);
    if (c.bias && c.bias.size !== c.experts * gw.rows) throw new ShapeError(`${mode} bias`, [c.experts, gw.rows], c.bias.shape);
    const bd = c.bias?.dtype;
    if (bd && bd !== 'float32' && bd !== 'bfloat16' && bd !== 'float16') throw new DTypeError(`${mode} bias`, ['float32', 'bfloat16', 'float16'], bd);
    return { place: { e0: c.e0, experts: c.experts, o0: c.o0 }, gw, nout: c.outputs, bias: c.bias as GpuTensor | undefined };
  });
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  // rows accumulated per weight pass: about the rows per active expert (uniform routing), a power of two <= 8
  const mr = gemvRowsPerPass(g.T, g.k, g.E, chunks[0].gw.sdtype !== 'none');
  const kernel = opts.packedKernel ?? gemvPackedKernelFor(mr);
  const path = packedPath(chunks[0].gw, kernel);
  // outputs per 32-lane group, and per workgroup
  const ro = path === 'rows' ? kernelRows(kernel) : 1;
  const perWg = GROUPS * ro;
  for (const c of chunks) {
    const nbx = Math.ceil(c.nout / perWg);
    if (nbx > max) throw new LimitError('maxComputeWorkgroupsPerDimension', nbx, max, `${mode} output blocks`);
  }
  // every slot that can hold an active expert: at most T*k experts have rows
  const slots = Math.min(g.E, g.T * g.k);
  if (slots > max) throw new LimitError('maxComputeWorkgroupsPerDimension', slots, max, `${mode} expert slots`);
  const y = opts.pool ? opts.pool.tensor('float32', [g.T * g.k, nout], `${mode}.out`) : GpuTensor.empty(ctx, 'float32', [g.T * g.k, nout], `${mode}.out`);
  // one expert (a dense grouping: shared experts) is always active: a constant list, no dispatch
  const active = opts.active?.active ?? (g.E === 1 ? singleExpertList(ctx) : activeExpertsGpu(ctx, rec, g, nout, nout).active);
  const first = chunks[0];
  // row-blocked path: chunks of 16 bytes per scale block, and its log2 where a power of two
  const cb = path === 'rows' ? blockCols(first.gw) / wideChunkCols(first.gw.wfmt) : 0;
  const cbPow2 = cb > 0 && (cb & (cb - 1)) === 0;
  const variant: GemvVariant = {
    wdtype: first.gw.wfmt,
    sdtype: first.gw.sdtype,
    vec8: cols % 8 === 0,
    mode,
    act: mode === 'gate_up' ? act!.kind : 'none',
    interleaved: mode === 'gate_up' && act!.layout === 'interleaved',
    bias: !!first.bias,
    rowScale: mode === 'gate_up' && !!opts.rowScale,
    bdtype: (first.bias?.dtype ?? 'float32') as DenseDtype,
    wide: path === 'wide',
    mr,
  };
  // zp only when set, so the pipelines of weights without zero points keep their variant keys.
  if (first.gw.zeros) variant.zp = true;
  if (path === 'rows') Object.assign(variant, { ro, cbPow2 });
  // one dispatch per chunk: each computes the outputs of its experts' rows that it holds
  for (const c of chunks) {
    const nbx = Math.ceil(c.nout / perWg);
    const buffers = [x.buffer, c.gw.codes.buffer, g.counts.buffer, g.offsets.buffer, g.order.buffer, active, y.buffer];
    if (c.bias) buffers.push(c.bias.buffer);
    if (variant.rowScale) buffers.push(opts.rowScale!.buffer);
    if (c.gw.scales) buffers.push(c.gw.scales.buffer);
    if (c.gw.zeros) buffers.push(c.gw.zeros.buffer);
    rec.dispatch({
      kernel: gemvKernel,
      variant,
      buffers,
      uniforms: new Uniforms()
        .u32(c.gw.rows, cols, c.nout, g.k)
        .f32(act?.limit ?? 0, act?.alpha ?? 1.702)
        .u32(nbx, 0, ...c.gw.su, c.place.e0, c.place.experts, c.place.o0, nout, cb, cbPow2 ? Math.log2(cb) : 0)
        .finish(),
      workgroups: [nbx, slots, 1],
    });
  }
  return y;
}

/**
 * Decode-path gate_up + activation: h[p, :] for grouped rows p, same meaning
 * as groupedGateUpGpu. Best when each active expert has few rows.
 *
 * @example
 * ```ts
 * const h = gemvGateUpGpu(ctx, rec, x, grouping, { kind: 'dense', w: gateUp }, { kind: 'silu', layout: 'concat' });
 * ```
 */
export function gemvGateUpGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, g: GroupingGpu, w: ExpertStackGpu, act: ExpertActivation, opts: GemvOptions = {}): GpuTensor {
  if (!act || (act.layout !== 'concat' && act.layout !== 'interleaved')) throw new ValueError('activation layout', "'concat' | 'interleaved'", act?.layout);
  if ((act.kind === 'swiglu_limit' || act.kind === 'swigluoai') && !(typeof act.limit === 'number' && act.limit > 0)) {
    throw new ValueError('activation limit', 'a positive number', act.limit);
  }
  return gemv(ctx, rec, x, g, w, 'gate_up', act, opts);
}

/**
 * Decode-path down projection: y[p, :] = h[p, :] @ W[e]^T (+ bias[e]), same
 * meaning as groupedDownGpu.
 *
 * @example
 * ```ts
 * const y = gemvDownGpu(ctx, rec, h, grouping, { kind: 'dense', w: down });
 * ```
 */
export function gemvDownGpu(ctx: GpuContext, rec: Recorder, h: GpuTensor, g: GroupingGpu, w: ExpertStackGpu, opts: Omit<GemvOptions, 'rowScale'> = {}): GpuTensor {
  return gemv(ctx, rec, h, g, w, 'down', undefined, opts);
}

