/**
 * WGSL of the fast grouped GEMMs for prefill (same contract as
 * grouped-gemm-wgsl.ts's `groupedGemmKernel`: dense float32 / bfloat16 /
 * float16 weights or packed fp8_block (e4m3 / e5m2), int_block (int4 / int8,
 * f32 or f16 scales) and MXFP4, K a multiple of 8, no scale block boundary
 * inside an aligned group of 8 values). Packed weights are decoded in the
 * staging step (weightAccessWgsl: one load of the codes of 8 consecutive K
 * values and their scale, decoded with wgsl.ts's decoders to code x scale in
 * f32, then stored as f32 or f16 like the dense weights); f32 accumulation.
 *
 * - `groupedGemmFastKernel`: register-blocked shared-memory GEMM. 256
 *   threads, 64 grouped rows x 128 weight rows per workgroup (down: 128
 *   outputs; gate_up: 64 outputs, their 64 gate and 64 up rows), K slices of
 *   32 staged in workgroup memory (vec4 loads of gathered x rows and of 8
 *   bf16/f16 weights per vec4<u32>, converted at staging), each thread 4
 *   rows x 8 weight columns (32 f32 accumulators); the next K slice's global
 *   loads are issued into registers before the current slice's math. `h: true` stages the
 *   operands as f16 (half the shared-memory traffic; x and w rounded to f16,
 *   f32 accumulation).
 * - `groupedGemmSgmatKernel`: tiles on subgroup matrices
 *   (chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16), in
 *   the tile shapes of SGMAT_SHAPES (SgmatShape: rows, weight rows, K slice,
 *   a grid of subgroups each owning a block of result matrices, optional
 *   double buffering and rotated conflict-free staging): x rows and weights
 *   staged as f16 in workgroup memory (x optionally converted to f16 in
 *   grouped order by halfRowsKernel first, `xh`, and then staged or loaded
 *   as A matrices straight from those rows), the f32 results go through
 *   workgroup memory one 16-row block and column chunk at a time for bias +
 *   activation; the down GEMM optionally split along K (`splitK`, partials
 *   summed by splitKReduceKernel).
 *
 * f16 operands: bf16 -> f16 is exact for 6.1e-5 <= |w| <= 65504 (f16 has
 * more mantissa bits than bf16); smaller weights lose bits (subnormal) or
 * flush to 0, larger ones become inf. Decoded packed weights (code x scale,
 * an f32) are rounded to f16 the same way (relative 4.9e-4; fp8 e4m3 and
 * int4/int8/fp4 codes times a power-of-two scale are exact in that range).
 * x values are rounded to 11 bits (relative 4.9e-4); rows beyond f16's range
 * are scaled first (xScale). MoE weights of the supported models are far
 * inside that range.
 */
import { defineKernel } from '../runtime/kernel.js';
import { FP8_DECODE_WGSL, PACKED_CODE_WGSL, loadFn } from '../wgsl.js';
import { intZeroWgsl, type WeightFormat } from './grouped-gemm-wgsl.js';

/** Rows (grouped rows) per workgroup tile of the register-blocked kernel (the subgroup-matrix kernel's come from its SgmatShape). */
export const FAST_TM = 64;
/** Weight rows per workgroup tile (down: outputs; gate_up: 64 gate + 64 up rows). */
export const FAST_TNW = 128;
/** K slice staged per step. */
export const FAST_TK = 32;
/** Threads per workgroup. */
export const FAST_THREADS = 256;

/**
 * Variant of the fast grouped GEMMs (selects the WGSL; shapes go in uniforms).
 * @example `{ op: 'down', act: 'none', interleaved: false, wf: 'bfloat16', sd: 'none', bias: 'none', xmode: 'grouped', rowScale: false, h: false }`
 */
export type FastGemmVariant = {
  op: 'gate_up' | 'down';
  act: 'silu' | 'swiglu_limit' | 'swigluoai' | 'none';
  interleaved: boolean;
  /** Weight storage: dense float32 / bfloat16 / float16 or a packed format (decoded at staging, see weightAccessWgsl). */
  wf: WeightFormat;
  /** Scale dtype of the int formats ('none' otherwise; fp8 scales are f32, MXFP4 scales e8m0 bytes). */
  sd: 'float32' | 'float16' | 'none';
  /** int formats: per-block zero-point codes in a WZ binding (as the tiled GEMM's `zp`); absent/false: 8 / 128. */
  zp?: boolean;
  bias: 'float32' | 'bfloat16' | 'float16' | 'none';
  /** Which row of X feeds grouped row p: 'token' = order[p] / k, 'pair' = order[p], 'grouped' = p. */
  xmode: 'token' | 'pair' | 'grouped';
  rowScale: boolean;
  /** Register-blocked kernel only: stage operands as f16 (needs shader-f16). */
  h: boolean;
  /**
   * f16-staged kernels ('f16' and subgroup-matrix): each x row is multiplied by a power of two that brings
   * its largest |value| (times |rowScale|) to at most 2^14 before the f16 rounding, and the row's results are
   * divided by it before bias and activation, so inputs beyond f16's range (65504) stay finite and correct.
   * Needs the XAMAX binding (per x row max |x|, from rowAbsMaxKernel). Rows already inside the range are
   * untouched (scale 1).
   */
  xScale?: boolean;
  /**
   * Subgroup-matrix kernel only, tests: emulate the subgroup-matrix builtins per invocation in plain WGSL
   * (every invocation computes whole 16x16 matrices; slow) so the staging, layouts and epilogue run on
   * adapters without the feature. Never selected by the ops.
   */
  emu?: boolean;
  /** Subgroup-matrix kernel only: the tile shape, a key of SGMAT_SHAPES (absent: SGMAT_DEFAULT_SHAPE). */
  sg?: SgmatShapeName;
  /**
   * Subgroup-matrix kernel, down only: split K over this many workgroups per tile (2..8; absent: 1). Workgroup
   * w0 computes split w0 % splitK of tile w0 / splitK over K range [ks * kc, (ks + 1) * kc) (kc: K / splitK
   * rounded up to the K slice) and writes its partial sums to Y viewed as [splitK][nRows][ys] (bias in split
   * 0 only; recordFastGemm passes ys = N, yo = 0); splitKReduceKernel adds the splits into the output.
   */
  splitK?: number;
  /**
   * Subgroup-matrix kernel only: x arrives as f16 rows in grouped order (halfRowsKernel: gathered, times rowScale,
   * times the row's power-of-two staging scale, rounded to f16 once per call; rows of halfRowStride(K) halves, zero
   * padded, plus HALF_ROWS_PAD zero rows), XRU the per-grouped-row 1 / scale; the GEMM neither gathers nor converts x.
   * 'staged': X is array<vec4<u32>> (8 halves per load) staged into workgroup memory like before; 'direct': X is
   * array<f16> and the A matrices are loaded from it directly (no x staging at all; rows past the tile's end
   * belong to the next expert or the padding and only feed discarded output rows). Set with rowScale false and
   * xScale true (the variant of the ops).
   */
  xh?: 'staged' | 'direct';
};

/**
 * Tile shape of the subgroup-matrix kernel: a workgroup computes `tm` grouped rows x `tn` weight rows
 * (down: tn outputs; gate_up: tn / 2 outputs, their gate and up rows in alternating blocks of 16 columns),
 * staging K slices of `tk` (32 or 64) as f16 in workgroup memory; `wm` x `wn` subgroups of 32 invocations
 * (threads = 32 * wm * wn) each own a (tm / wm) x (tn / wn) block of 16x16 f32 accumulators, so one A and
 * one B fragment load feed tn / wn / 16 and tm / wm / 16 multiply-accumulates. `db`: two staging buffers
 * (one barrier per K slice instead of two: the next slice is stored into the other buffer while this one
 * is multiplied).
 */
export interface SgmatShape {
  /** Grouped rows per workgroup tile (a multiple of 16 * wm, at most 128). */
  tm: number;
  /** Weight rows per workgroup tile (a multiple of 32 and of 16 * wn, at most 256). */
  tn: number;
  /** K slice staged per step: 32 or 64. */
  tk: number;
  /** Subgroups along the rows. */
  wm: number;
  /** Subgroups along the weight rows (wm * wn <= 8). */
  wn: number;
  /** Double-buffered staging. */
  db?: boolean;
  /**
   * Conflict-free weight staging (bf16 / f16 weights): thread j stores its 8 values starting at value 2 (j % (tk / 8))
   * (its raw words rotated by j % (tk / 8)), so the 32 lanes of one store instruction hit 32 different banks (without:
   * 4 lanes per bank, the rows being 16-byte aligned); and x held as f16 between load and staging (fewer registers).
   */
  swz?: boolean;
  /**
   * The A matrices always come from the f16 x rows directly (FastGemmVariant.xh 'direct'): the layout has no A
   * staging tile, which leaves room for wider tiles.
   */
  xd?: boolean;
}

/**
 * The named tile shapes (bench candidates, docs/PERF-NOTES.md; which one runs is plan.ts's choice).
 * Subgroup block per shape: m64n128k32 32x32 (the kernel measured on the H200 on 2026-12-03; every other shape
 * has `swz`, m64n128k32s is it with `swz` only), m128n128k32 64x32, w4: 4 subgroups with 32x64 blocks, w4x2:
 * 8 subgroups with 32x64 blocks, w2x2: 4 subgroups with 64x64 blocks (half the fragment loads per multiply of
 * 32x32 blocks); k64: 64-wide K slices; db: double-buffered staging; m32 / m16: tiles for few rows per expert;
 * xd: A matrices loaded from the f16 x rows directly (no A tile: room for 64-wide K slices with 128 rows, or 256
 * weight rows).
 */
export type SgmatShapeName =
  | 'm64n128k32'
  | 'm64n128k32s'
  | 'm128n128k32'
  | 'm128n128k32w4x2'
  | 'm64n128k32w4'
  | 'm64n128k64'
  | 'm64n128k64w4'
  | 'm64n64k32db'
  | 'm32n128k32db'
  | 'm32n128k32'
  | 'm32n128k64'
  | 'm16n128k64'
  | 'm16n128k32'
  | 'm128n128k32w2x2'
  | 'm128n128k64xd'
  | 'm64n256k32xd'
  | 'm128n256k32xd';

/** The tile shape of each name. @example `SGMAT_SHAPES.m64n128k64 // { tm: 64, tn: 128, tk: 64, wm: 2, wn: 4, swz: true }` */
export const SGMAT_SHAPES: Readonly<Record<SgmatShapeName, Readonly<SgmatShape>>> = {
  m64n128k32: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 4 },
  m64n128k32s: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m128n128k32: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m128n128k32w4x2: { tm: 128, tn: 128, tk: 32, wm: 4, wn: 2, swz: true },
  m64n128k32w4: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 2, swz: true },
  m64n128k64: { tm: 64, tn: 128, tk: 64, wm: 2, wn: 4, swz: true },
  m64n128k64w4: { tm: 64, tn: 128, tk: 64, wm: 2, wn: 2, swz: true },
  m64n64k32db: { tm: 64, tn: 64, tk: 32, wm: 2, wn: 2, db: true, swz: true },
  m32n128k32db: { tm: 32, tn: 128, tk: 32, wm: 1, wn: 4, db: true, swz: true },
  m32n128k32: { tm: 32, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m32n128k64: { tm: 32, tn: 128, tk: 64, wm: 1, wn: 4, swz: true },
  m16n128k64: { tm: 16, tn: 128, tk: 64, wm: 1, wn: 8, swz: true },
  m16n128k32: { tm: 16, tn: 128, tk: 32, wm: 1, wn: 8, swz: true },
  m128n128k32w2x2: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 2, swz: true },
  m128n128k64xd: { tm: 128, tn: 128, tk: 64, wm: 2, wn: 4, swz: true, xd: true },
  m64n256k32xd: { tm: 64, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, xd: true },
  m128n256k32xd: { tm: 128, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, xd: true },
};


/** The shape of the subgroup-matrix kernel measured on the H200 (plan.ts may choose others). */
export const SGMAT_DEFAULT_SHAPE: SgmatShapeName = 'm64n128k32';

/** Workgroup memory budget of the subgroup-matrix kernel's shapes (the H200's limit under Dawn; the epilogue tile shrinks to fit). */
export const SGMAT_MAX_WORKGROUP_BYTES = 32768;

/**
 * Derived layout of a shape: staging row stride (tk + 8 halves: 16-byte aligned rows, conflict-free
 * fragment loads), epilogue tile width `ow` (columns of f32 results staged per 16-row block; the widest
 * divisor of tn, a multiple of 32, that fits the budget), the workgroup bytes, or `error` for an invalid shape.
 */
export function sgmatLayout(s: SgmatShape): { str: number; ow: number; bytes: number; threads: number; error?: string } {
  const str = s.tk + 8;
  const threads = 32 * s.wm * s.wn;
  const staging = (s.db ? 2 : 1) * ((s.xd ? 0 : s.tm) + s.tn) * str * 2;
  const rows = 12 * s.tm + 16;
  let ow = s.tn;
  while (ow > 32 && (s.tn % ow !== 0 || staging + rows + 64 * ow > SGMAT_MAX_WORKGROUP_BYTES)) ow -= 32;
  const bytes = staging + rows + 64 * ow;
  const bad = (what: string) => ({ str, ow, bytes, threads, error: `${what} (shape ${JSON.stringify(s)})` });
  if (s.tk !== 32 && s.tk !== 64) return bad('tk must be 32 or 64');
  if (!(s.wm >= 1 && s.wn >= 1 && s.wm * s.wn <= 8)) return bad('wm * wn must be 1..8 subgroups');
  if (s.tm % (16 * s.wm) !== 0 || s.tm > 128) return bad('tm must be a multiple of 16 * wm, at most 128');
  if (s.tn % 32 !== 0 || s.tn % (16 * s.wn) !== 0 || s.tn > 256) return bad('tn must be a multiple of 32 and of 16 * wn, at most 256');
  if (s.tn % ow !== 0 || bytes > SGMAT_MAX_WORKGROUP_BYTES) return bad(`needs ${bytes} bytes of workgroup memory (budget ${SGMAT_MAX_WORKGROUP_BYTES})`);
  return { str, ow, bytes, threads };
}

/** The shape of a subgroup-matrix variant. */
export function sgmatShape(v: Pick<FastGemmVariant, 'sg'>): SgmatShape {
  return SGMAT_SHAPES[v.sg ?? SGMAT_DEFAULT_SHAPE];
}

/** Output columns (down: outputs; gate_up: gate/up pairs) per workgroup tile of a weight-row tile of tn. */
export function tileOutputs(op: FastGemmVariant['op'], tn: number): number {
  return op === 'gate_up' ? tn / 2 : tn;
}

/**
 * Geometry shared by the kernels' staging code: rows tm, weight rows tn, K slice tk, threads, and how
 * gate_up's tile columns map to gate / up rows ('halves': the first tn / 2 are gate rows; 'pairs16':
 * alternating blocks of 16 gate and 16 up rows, so every 32 aligned columns hold whole pairs).
 */
interface Geo {
  tm: number;
  tn: number;
  tk: number;
  threads: number;
  gateUpCols: 'halves' | 'pairs16';
  /** x registers of loadSlice as f16 (converted at load) instead of f32. */
  xHalf: boolean;
}

const FMA_GEO: Geo = { tm: FAST_TM, tn: FAST_TNW, tk: FAST_TK, threads: FAST_THREADS, gateUpCols: 'halves', xHalf: false };

function sgmatGeo(v: FastGemmVariant): Geo {
  const s = sgmatShape(v);
  return { tm: s.tm, tn: s.tn, tk: s.tk, threads: sgmatLayout(s).threads, gateUpCols: 'pairs16', xHalf: !!s.swz };
}

/** Per-thread count of `total` work items over `threads` threads, and whether the last round needs a bound check. */
function rounds(total: number, threads: number): { n: number; guard: boolean } {
  return { n: Math.ceil(total / threads), guard: total % threads !== 0 };
}

/**
 * Uniform block of the fast GEMMs (u32 unless noted; wa..wd: the weight uniforms of weightLayout in grouped-gemm-wgsl.ts).
 * E, N, wRows: the dispatched chunk's; Y row p, output o is written at p * ys + yo + o (GEMM_UNIFORM_FIELDS).
 */
export const FAST_UNIFORM_FIELDS = ['nRows', 'k', 'E', 'K', 'N', 'wRows', 'nTilesN', 'nWork', 'limit:f32', 'alpha:f32', 'wa', 'wb', 'wc', 'wd', 'yo', 'ys'] as const;

function activationWgsl(act: FastGemmVariant['act']): string {
  switch (act) {
    case 'silu':
      return `fn act(g: f32, v: f32) -> f32 { return g / (1.0 + exp(-g)) * v; }`;
    case 'swiglu_limit':
      return `fn act(g: f32, v: f32) -> f32 { return min(g / (1.0 + exp(-g)), u.limit) * clamp(v, -u.limit, u.limit); }`;
    case 'swigluoai':
      return `fn act(g0: f32, v0: f32) -> f32 { let g = min(g0, u.limit); let v = clamp(v0, -u.limit, u.limit); return (v + 1.0) * g / (1.0 + exp(-u.alpha * g)); }`;
    case 'none':
      return '';
  }
}

/** Values per vector load of the weights: 4 (f32 in vec4<f32>) or 8 (bf16/f16 in vec4<u32>; packed: the codes of 8 values and their scale). */
export function fastVpl(wf: FastGemmVariant['wf']): number {
  return wf === 'float32' ? 4 : 8;
}

/** WGSL type of the raw weight registers (what wload returns and wdec takes). */
function rawType(wf: FastGemmVariant['wf']): string {
  return wf === 'float32' ? 'vec4<f32>' : 'vec4<u32>';
}

/** Binding declarations of the weights: the codes (WQ), for packed formats their scales (WSC), and int zero points (WZ). */
function weightBindings(v: FastGemmVariant): string[] {
  return v.zp ? [...codeScaleBindings(v), 'WZ: array<u32>'] : codeScaleBindings(v);
}

function codeScaleBindings(v: FastGemmVariant): string[] {
  switch (v.wf) {
    case 'float32':
      return ['WQ: array<vec4<f32>>'];
    case 'bfloat16':
    case 'float16':
      return ['WQ: array<vec4<u32>>'];
    case 'fp8_e4m3':
    case 'fp8_e5m2':
      return ['WQ: array<vec2<u32>>', 'WSC: array<f32>'];
    case 'int8':
      return ['WQ: array<vec2<u32>>', v.sd === 'float16' ? 'WSC: array<u32>' : 'WSC: array<f32>'];
    case 'int4':
      return ['WQ: array<u32>', v.sd === 'float16' ? 'WSC: array<u32>' : 'WSC: array<f32>'];
    case 'mxfp4':
      return ['WQ: array<u32>', 'WSC: array<u32>'];
  }
}

/**
 * The per-format weight access of the staging step:
 * - `wload(e, row, col)`: the raw storage of weights col..col+V-1 (V = fastVpl; col % V == 0) of row `row` of
 *   expert e, one vector load: f32 vec4, or 8 bf16/f16 in a vec4<u32>; packed formats: the 8 codes in .x
 *   (4-bit) or .xy (8-bit; one vec2 load) and their scale in .z (f32 bits; MXFP4: the e8m0 byte). The 8
 *   values never straddle a scale block (planFastGemm checks), so one scale serves them.
 * - `wdec(raw) -> array<f32, V>`: the decoded f32 values (packed: code * scale, the reference's order of
 *   operations, decoders of wgsl.ts).
 * Element index (e * wRows + row) * K + col: with K % 8 == 0 the 8 values start on a 16-byte (16-bit
 * formats), 8-byte (8-bit codes) or 4-byte (4-bit codes) boundary, so each is one aligned vector.
 */
function weightAccessWgsl(v: FastGemmVariant): string {
  const idx = `(e * u.wRows + row) * u.K + col`;
  const load = (body: string) => `fn wload(e: u32, row: u32, col: u32) -> ${rawType(v.wf)} { ${body} }`;
  const unrolled = (value: (i: number) => string) => `array<f32, 8>(${Array.from({ length: 8 }, (_, i) => value(i)).join(', ')})`;
  const byte = (i: number) => `((w.${i < 4 ? 'x' : 'y'} >> ${(i % 4) * 8}u) & 0xffu)`;
  const nibble = (i: number) => `((w.x >> ${i * 4}u) & 15u)`;
  // int_block scale of (e, row, col): block col / wb of the row's wa blocks, f32 or f16.
  const intScale = `${loadFn('wscale', 'WSC', v.sd === 'float16' ? 'float16' : 'float32')}\n`;
  switch (v.wf) {
    case 'float32':
      return `${load(`return WQ[(${idx}) >> 2u];`)}
fn wdec(w: vec4<f32>) -> array<f32, 4> { return array<f32, 4>(w.x, w.y, w.z, w.w); }`;
    case 'bfloat16':
      return `${load(`return WQ[(${idx}) >> 3u];`)}
fn bf2(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }
fn wdec(w: vec4<u32>) -> array<f32, 8> { let a = bf2(w.x); let b = bf2(w.y); let c = bf2(w.z); let d = bf2(w.w); return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y); }`;
    case 'float16':
      return `${load(`return WQ[(${idx}) >> 3u];`)}
fn wdec(w: vec4<u32>) -> array<f32, 8> { let a = unpack2x16float(w.x); let b = unpack2x16float(w.y); let c = unpack2x16float(w.z); let d = unpack2x16float(w.w); return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y); }`;
    case 'fp8_e4m3':
    case 'fp8_e5m2': {
      // wa = scale blocks along rows, wb = along cols, wc = block rows, wd = block cols.
      const dec = v.wf === 'fp8_e4m3' ? 'decode_e4m3' : 'decode_e5m2';
      return `${FP8_DECODE_WGSL}
${load(`let q = WQ[(${idx}) >> 3u]; return vec4<u32>(q, bitcast<u32>(WSC[(e * u.wa + row / u.wc) * u.wb + col / u.wd]), 0u);`)}
fn wdec(w: vec4<u32>) -> array<f32, 8> { let s = bitcast<f32>(w.z); return ${unrolled((i) => `${dec}${byte(i)} * s`)}; }`;
    }
    case 'int8':
    case 'int4': {
      // wa = scale blocks per row, wb = block size. With zp: .w = the zero point's shift from 8 / 128 (f32 bits, wzshift).
      const four = v.wf === 'int4';
      const codes = four ? `vec2<u32>(WQ[(${idx}) >> 3u], 0u)` : `WQ[(${idx}) >> 3u]`;
      const shift = v.zp ? 'bitcast<u32>(wzshift(si))' : '0u';
      const dec = (i: number) => (four ? `decode_int4${nibble(i)}` : `decode_int8${byte(i)}`) + (v.zp ? ' - z' : '');
      return `${PACKED_CODE_WGSL}
${intScale}${intZeroWgsl(v)}
${load(`let si = (e * u.wRows + row) * u.wa + col / u.wb; return vec4<u32>(${codes}, bitcast<u32>(wscale(si)), ${shift});`)}
fn wdec(w: vec4<u32>) -> array<f32, 8> { let s = bitcast<f32>(w.z);${v.zp ? ' let z = bitcast<f32>(w.w);' : ''} return ${unrolled((i) => `(${dec(i)}) * s`)}; }`;
    }
    case 'mxfp4':
      // wa = scale bytes per row (K / 32).
      return `${PACKED_CODE_WGSL}
${loadFn('wexp', 'WSC', 'uint8')}
${load(`return vec4<u32>(WQ[(${idx}) >> 3u], 0u, u32(wexp((e * u.wRows + row) * u.wa + (col >> 5u))), 0u);`)}
fn wdec(w: vec4<u32>) -> array<f32, 8> { let x = i32(w.z) - 127; return ${unrolled((i) => `ldexp(decode_fp4${nibble(i)}, x)`)}; }`;
  }
}

/** Shared header: bindings, uniforms, helpers. */
function header(v: FastGemmVariant, g: Geo): { decl: string; helpers: string } {
  const bindings: string[] = [v.xh === 'direct' ? 'X: array<f16>' : v.xh ? 'X: array<vec4<u32>>' : 'X: array<vec4<f32>>', 'ORDER: array<u32>', 'META: array<u32>'];
  if (v.xh) bindings.push('XRU: array<f32>');
  else {
    if (v.rowScale) bindings.push('RS: array<f32>');
    if (v.xScale) bindings.push('XAMAX: array<f32>');
  }
  bindings.push(...weightBindings(v));
  if (v.bias !== 'none') bindings.push(v.bias === 'float32' ? 'BIAS: array<f32>' : 'BIAS: array<u32>');
  const fields = FAST_UNIFORM_FIELDS.map((f) => (f.endsWith(':f32') ? `${f.slice(0, -4)}: f32,` : `${f}: u32,`)).join(' ');
  const decl =
    `struct U { ${fields} }\n` +
    bindings.map((b, i) => `@group(0) @binding(${i}) var<storage, read> ${b};`).join('\n') +
    `\n@group(0) @binding(${bindings.length}) var<storage, read_write> Y: array<f32>;` +
    `\n@group(0) @binding(${bindings.length + 1}) var<uniform> u: U;`;
  // wrow(n, o0): weight row of tile column n (0..tn-1), or 0xffffffff when its output is out of range (Geo.gateUpCols).
  const gateRow = v.interleaved ? '2u * o' : 'o';
  const upRow = v.interleaved ? '2u * o + 1u' : 'u.N + o';
  const half = g.tn / 2;
  const gateUp =
    g.gateUpCols === 'halves'
      ? `let o = o0 + (n % ${half}u); if (o >= u.N) { return 0xffffffffu; } return select(${upRow}, ${gateRow}, n < ${half}u);`
      : `let o = o0 + ((n >> 5u) << 4u) + (n & 15u); if (o >= u.N) { return 0xffffffffu; } return select(${gateRow}, ${upRow}, (n & 16u) != 0u);`;
  const wrow =
    v.op === 'gate_up'
      ? `fn wrow(n: u32, o0: u32) -> u32 { ${gateUp} }`
      : `fn wrow(n: u32, o0: u32) -> u32 { let o = o0 + n; return select(0xffffffffu, o, o < u.N); }`;
  const helpers = [wrow, weightAccessWgsl(v), v.bias === 'none' ? '' : loadFn('bld', 'BIAS', v.bias), v.op === 'gate_up' ? activationWgsl(v.act) : ''].join('\n');
  return { decl, helpers };
}

/** Finds the workgroup's expert and row range (binary search over the tile offsets; meta from tileOffsetsKernel with tm = 64), then the row gather table. */
function prologue(v: FastGemmVariant, g: Geo): string {
  const tm = g.tm;
  const xrow = v.xmode === 'token' ? 'pair / u.k' : v.xmode === 'pair' ? 'pair' : 'p';
  const S = v.splitK ?? 1;
  // K range of this workgroup: all of K, or split ks of S (kc a multiple of the K slice).
  const kRange =
    S > 1
      ? `let ks = wAll % ${S}u;
  let w = wAll / ${S}u;
  let kc = ((u.K + ${S * g.tk - 1}u) / ${S * g.tk}u) * ${g.tk}u;
  let kBeg = ks * kc;
  let kEnd = min(u.K, kBeg + kc);`
      : `let w = wAll;
  let kBeg = 0u;
  let kEnd = u.K;`;
  return `
  let wAll = wid.x + wid.y * nwg.x;
  ${kRange}
  if (lid == 0u) {
    var e = 0u;
    var r0 = 0u;
    var r1 = 0u;
    if (w < u.nWork) {
      let mt = w / u.nTilesN;
      let ts = u.E + 1u;
      if (mt < META[ts + u.E]) {
        var lo = 0u;
        var hi = u.E - 1u;
        while (lo < hi) {
          let mid = (lo + hi + 1u) >> 1u;
          if (META[ts + mid] <= mt) { lo = mid; } else { hi = mid - 1u; }
        }
        e = lo;
        r0 = META[e] + (mt - META[ts + e]) * ${tm}u;
        r1 = min(r0 + ${tm}u, META[e + 1u]);
      }
    }
    shW = vec4<u32>(e, r0, r1, 0u);
  }
  let shw = workgroupUniformLoad(&shW);
  let e = shw.x;
  let r0 = shw.y;
  let r1 = shw.z;
  if (r1 <= r0) { return; }
  let nt = w % u.nTilesN;
  let o0 = nt * ${tileOutputs(v.op, g.tn)}u;
  let kv = u.K >> 2u;
  ${v.xh ? xhRows(tm, g.threads) : `for (var lr = lid; lr < ${tm}u; lr += ${g.threads}u) {
    var xb = 0u;
    var m = 0.0;${v.xScale ? '\n    var s = 1.0;' : ''}
    let p = r0 + lr;
    if (p < r1) {
      let pair = ORDER[p];
      xb = (${xrow}) * kv;
      m = ${v.rowScale ? 'RS[pair]' : '1.0'};${
        v.xScale
          ? `
      // f16 staging: a power of two s with max |x * m * s| <= 2^14 (1 inside f16's comfortable range; not for inf/NaN rows).
      let a = XAMAX[${xrow}] * abs(m);
      if (a > 16384.0 && a <= 3.4e38) { s = exp2(14.0 - ceil(log2(a))); }
      m = m * s;`
          : ''
      }
    }
    ROWX[lr] = xb;
    ROWM[lr] = m;${v.xScale ? '\n    ROWU[lr] = 1.0 / s;' : ''}
  }`}
  let eRow = e * u.wRows;
  workgroupBarrier();`;
}

/** Row stride (halves) of the f16 x rows of halfRowsKernel for K input channels: K rounded up to 64 (whole K slices). */
export function halfRowStride(K: number): number {
  return Math.ceil(K / 64) * 64;
}

/** Zero rows after the f16 x rows (the 'direct' A loads of a last tile read up to 127 rows past the end). */
export const HALF_ROWS_PAD = 128;

/** The row table of an `xh` variant: x row p of the grouped f16 rows starts at vec4 p * kp / 8 (kp = halfRowStride(K)); ROWU from XRU. */
function xhRows(tm: number, threads: number): string {
  return `let kp = (u.K + 63u) & ~63u;
  for (var lr = lid; lr < ${tm}u; lr += ${threads}u) {
    var xb = 0u;
    var ru = 1.0;
    let p = r0 + lr;
    if (p < r1) {
      xb = p * (kp >> 3u);
      ru = XRU[p];
    }
    ROWX[lr] = xb;
    ROWM[lr] = 1.0;
    ROWU[lr] = ru;
  }`;
}

/**
 * Global loads of one K slice (starting at kb) into registers xg / wg
 * (issued one slice ahead of the compute, so their latency hides behind it).
 * Item j = lid + i * threads: x vec4 (row j / (tk / 4), column 4 (j % (tk / 4))), weight vector
 * (tile column j / (tk / V), values V (j % (tk / V)).. of the slice).
 */
function loadSlice(v: FastGemmVariant, g: Geo, kb: string): string {
  const xt = g.xHalf ? 'f16' : 'f32';
  const V = fastVpl(v.wf);
  const perRow = g.tk / V;
  const xr = rounds((g.tm * g.tk) / (v.xh ? 8 : 4), g.threads);
  const wr = rounds(g.tn * perRow, g.threads);
  const raw = rawType(v.wf);
  const xLoads = v.xh === 'direct' ? '' : v.xh
    ? `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${g.threads}u;
      let r = j / ${g.tk / 8}u;
      let c8 = j % ${g.tk / 8}u;
      var xv = vec4<u32>();
      if (${xr.guard ? `r < ${g.tm}u && ` : ''}r0 + r < r1 && ${kb} + c8 * 8u < kEnd) { xv = X[ROWX[r] + (${kb} >> 3u) + c8]; }
      xg[i] = xv;
    }`
    : '';
  return `${xLoads}${v.xh ? '' : `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${g.threads}u;
      let r = j / ${g.tk / 4}u;
      let c4 = j % ${g.tk / 4}u;
      var xv = vec4<${xt}>(0.0);
      if (${xr.guard ? `r < ${g.tm}u && ` : ''}r0 + r < r1 && ${kb} + c4 * 4u < kEnd) { xv = vec4<${xt}>(X[ROWX[r] + (${kb} >> 2u) + c4]${v.rowScale || v.xScale ? ' * ROWM[r]' : ''}); }
      xg[i] = xv;
    }`}
    for (var i = 0u; i < ${wr.n}u; i++) {
      let q = (lid + i * ${g.threads}u) % ${perRow}u;
      let col = ${kb} + q * ${V}u;
      var wv = ${raw}();
      if (wr[i] != 0xffffffffu && col < kEnd) { wv = wload(e, wr[i], col); }
      wg[i] = wv;
    }`;
}

/** Register declarations of loadSlice (and the weight rows wr each thread stages, fixed over K), then the loads of the first slice. */
function sliceRegs(v: FastGemmVariant, g: Geo): string {
  const perRow = g.tk / fastVpl(v.wf);
  const wr = rounds(g.tn * perRow, g.threads);
  return `var wr: array<u32, ${wr.n}>;
  for (var i = 0u; i < ${wr.n}u; i++) { let j = lid + i * ${g.threads}u; wr[i] = ${wr.guard ? `select(0xffffffffu, wrow(j / ${perRow}u, o0), j < ${g.tn * perRow}u)` : `wrow(j / ${perRow}u, o0)`}; }
  ${v.xh === 'direct' ? '' : `var xg: array<${v.xh ? 'vec4<u32>' : `vec4<${g.xHalf ? 'f16' : 'f32'}>`}, ${rounds((g.tm * g.tk) / (v.xh ? 8 : 4), g.threads).n}>;`}
  var wg: array<${rawType(v.wf)}, ${wr.n}>;
  { let kb = kBeg; ${loadSlice(v, g, 'kb')}
  }`;
}

/**
 * Workgroup declarations shared by both kernels. Every workgroup variable of
 * these kernels is a multiple of 16 bytes (the workgroup's expert and row
 * range travel as one vec4<u32>): drivers place workgroup variables one after
 * another, and subgroupMatrixLoad/Store on NVIDIA (Vulkan cooperative
 * matrices) silently round a matrix pointer down to 16 bytes. Three u32
 * scalars placed before the staging tiles shifted every tile by 12 bytes on
 * the H200 (matrices read 6 halves early; found with scripts/gpu/sgmat-debug.ts).
 */
const sharedRows = (tm: number, v: FastGemmVariant) => `
var<workgroup> ROWX: array<u32, ${tm}>;
var<workgroup> ROWM: array<f32, ${tm}>;${v.xScale ? `\nvar<workgroup> ROWU: array<f32, ${tm}>;` : ''}
var<workgroup> shW: vec4<u32>;`;

/** Epilogue of one output: p grouped row, o output index, g (gate or down sum), v (up sum). */
function store(v: FastGemmVariant, p: string, o: string, g0: string, up0: string, r: string): string {
  // Undo the x row's f16 staging scale (xScale) before bias and activation.
  const g = v.xScale ? `(${g0}) * ROWU[${r}]` : g0;
  const up = v.xScale && up0 ? `(${up0}) * ROWU[${r}]` : up0;
  const gateRow = v.interleaved ? `2u * (${o})` : `(${o})`;
  const upRow = v.interleaved ? `2u * (${o}) + 1u` : `u.N + (${o})`;
  const split = (v.splitK ?? 1) > 1;
  const b = (row: string) => (v.bias === 'none' ? '' : split ? ` + select(0.0, bld(eRow + ${row}), ks == 0u)` : ` + bld(eRow + ${row})`);
  const yRow = split ? `(ks * u.nRows + ${p})` : `(${p})`;
  return v.op === 'gate_up' ? `Y[${yRow} * u.ys + u.yo + (${o})] = act(${g}${b(gateRow)}, ${up}${b(upRow)});` : `Y[${yRow} * u.ys + u.yo + (${o})] = ${g}${b(o)};`;
}

/**
 * Register-blocked grouped GEMM (see the file comment). Thread (ty, tx) =
 * (lid / 16, lid % 16) owns rows 4ty..4ty+3 and weight columns 4tx..4tx+3
 * and 64+4tx..64+4tx+3 of the tile (gate_up: the gate and up rows of
 * outputs o0+4tx..o0+4tx+3).
 * @example `rec.dispatch({ kernel: groupedGemmFastKernel, variant, buffers, uniforms, workgroups })` (normally through groupedGateUpGpu / groupedDownGpu)
 */
export const groupedGemmFastKernel = defineKernel<FastGemmVariant>('grouped_gemm_fast', (v) => {
  const S = v.h ? 'f16' : 'f32';
  const { decl, helpers } = header(v, FMA_GEO);
  const V = fastVpl(v.wf);
  const perRow = FAST_TK / V; // vectors per weight row and K slice
  const wLoads = (FAST_TNW * perRow) / FAST_THREADS;
  // Weight tile, k-major with 8 words of padding per 8 k (bank-conflict-free transposing stores): word of (kk, n) = kk*128 + (kk/8)*8 + n.
  const wsWords = FAST_TK * FAST_TNW + (FAST_TK / 8) * 8;
  const acc: string[] = [];
  for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) acc.push(`var c${r}${h} = vec4<f32>(0.0);`);
  let inner = '';
  for (let q = 0; q < 4; q++) {
    inner += `      { let kk = kk4 * 4u + ${q}u; let wb = kk * 32u + (kk >> 3u) * 2u; let b0 = vec4<f32>(WS[wb + tx]); let b1 = vec4<f32>(WS[wb + 16u + tx]);\n`;
    for (let r = 0; r < 4; r++) inner += `        c${r}0 = fma(vec4<f32>(a${r}.${'xyzw'[q]}), b0, c${r}0); c${r}1 = fma(vec4<f32>(a${r}.${'xyzw'[q]}), b1, c${r}1);\n`;
    inner += `      }\n`;
  }
  let epi = '';
  for (let r = 0; r < 4; r++) {
    epi += `  { let p = r0 + ty * 4u + ${r}u; if (p < r1) {\n`;
    for (let j = 0; j < 4; j++) {
      const c = 'xyzw'[j];
      if (v.op === 'gate_up') epi += `    { let o = o0 + tx * 4u + ${j}u; if (o < u.N) { ${store(v, 'p', 'o', `c${r}0.${c}`, `c${r}1.${c}`, `ty * 4u + ${r}u`)} } }\n`;
      else epi += `    { let o = o0 + tx * 4u + ${j}u; if (o < u.N) { ${store(v, 'p', 'o', `c${r}0.${c}`, '', `ty * 4u + ${r}u`)} } let o2 = o + 64u; if (o2 < u.N) { ${store(v, 'p', 'o2', `c${r}1.${c}`, '', `ty * 4u + ${r}u`)} } }\n`;
    }
    epi += `  } }\n`;
  }
  return /* wgsl */ `
${decl}
${helpers}
// x tile row-major: XS[r * 8 + c4] = x[row r][k0 + 4c4 .. +3].
var<workgroup> XS: array<vec4<${S}>, ${(FAST_TM * FAST_TK) / 4}>;
var<workgroup> WS: array<vec4<${S}>, ${wsWords / 4}>;
${sharedRows(FAST_TM, v)}

@compute @workgroup_size(${FAST_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${prologue(v, FMA_GEO)}
  let tx = lid % 16u;
  let ty = lid / 16u;
  ${acc.join(' ')}
  ${sliceRegs(v, FMA_GEO)}
  for (var k0 = 0u; k0 < u.K; k0 += ${FAST_TK}u) {
    for (var i = 0u; i < ${(FAST_TM * FAST_TK) / 4 / FAST_THREADS}u; i++) { XS[lid + i * ${FAST_THREADS}u] = vec4<${S}>(xg[i]); }
    for (var i = 0u; i < ${wLoads}u; i++) {
      let j = lid + i * ${FAST_THREADS}u;
      let n = j / ${perRow}u;
      let q = j % ${perRow}u;
      let wv = wdec(wg[i]);
      for (var t = 0u; t < ${V}u; t++) {
        let kk = q * ${V}u + t;
        let wi = kk * ${FAST_TNW}u + (kk >> 3u) * 8u + n;
        WS[wi >> 2u][wi & 3u] = ${S}(wv[t]);
      }
    }
    workgroupBarrier();
    { let kb = k0 + ${FAST_TK}u; if (kb < u.K) { ${loadSlice(v, FMA_GEO, 'kb')}
    } }
    for (var kk4 = 0u; kk4 < ${FAST_TK / 4}u; kk4++) {
      let a0 = vec4<f32>(XS[(ty * 4u + 0u) * ${FAST_TK / 4}u + kk4]);
      let a1 = vec4<f32>(XS[(ty * 4u + 1u) * ${FAST_TK / 4}u + kk4]);
      let a2 = vec4<f32>(XS[(ty * 4u + 2u) * ${FAST_TK / 4}u + kk4]);
      let a3 = vec4<f32>(XS[(ty * 4u + 3u) * ${FAST_TK / 4}u + kk4]);
${inner}    }
    workgroupBarrier();
  }
${epi}}
`;
});

/**
 * The subgroup-matrix operations of the kernel as WGSL statements: the builtins, or (`emu`, tests) a
 * per-invocation emulation in plain WGSL where every matrix is a slot of 256 f32 in a private array
 * (loops over slots, no by-value matrices: cheap to compile on lavapipe). Matrices are named; each name
 * gets its own slot.
 */
function matrixOps(emu: boolean, names: string[], xDirect: boolean) {
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const C = 'subgroup_matrix_result<f32, 16, 16>';
  const slot = (n: string) => {
    const i = names.indexOf(n);
    if (i < 0) throw new Error(`grouped_gemm_sgmat: unknown matrix ${n}`);
    return `${i}u`;
  };
  if (!emu) {
    return {
      head: 'diagnostic(off, chromium.subgroup_matrix_uniformity);\nenable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;',
      decls: '',
      args: '',
      entry: '',
      zero: (c: string) => `var ${c} = ${C}();`,
      /** A (left, row-major rows of AS) or B (right, column-major: weight rows of BS are its columns). */
      /** A (left, row-major: rows of AS or of the f16 x rows X) or B (right, column-major: weight rows of BS are its columns). */
      load: (m: string, arr: 'AS' | 'BS' | 'X', off: string, stride: string) =>
        `let ${m} = subgroupMatrixLoad<${arr === 'BS' ? R : L}>(&${arr}, ${off}, ${arr === 'BS'}, ${stride});`,
      mma: (c: string, a: string, b: string) => `${c} = subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c});`,
      store: (c: string, off: string, stride: number) => `subgroupMatrixStore(&OS, ${off}, ${c}, false, ${stride}u);`,
    };
  }
  // Emulation following the Dawn spec's layouts: element (r, c) of a matrix at offset o with stride s is
  // o + r * s + c (row-major) or o + c * s + r (column-major). Only the first invocation of each subgroup works
  // (the whole subgroup's matrices; the others' would be copies), so the emulation costs one invocation per subgroup.
  const decls = /* wgsl */ `
var<private> EM: array<f32, ${names.length * 256}>;
var<private> EMU_LEAD: bool;
// 16, from a uniform so that the compiler cannot unroll the loops below (unrolled, each inlined call is thousands of instructions).
var<private> EMN: u32;
fn emuZero(m: u32) { if (!EMU_LEAD) { return; } for (var i = 0u; i < EMN * EMN; i++) { EM[m * 256u + i] = 0.0; } }
${xDirect ? '' : 'fn emuLoadA(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = f32(AS[off + r * s + c]); } } }\n'}${xDirect ? 'fn emuLoadX(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = f32(X[off + r * s + c]); } } }\n' : ''}fn emuLoadB(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = f32(BS[off + c * s + r]); } } }
fn emuMma(c: u32, a: u32, b: u32) { if (!EMU_LEAD) { return; } for (var i = 0u; i < EMN; i++) { for (var j = 0u; j < EMN; j++) { var t = 0.0; for (var k = 0u; k < EMN; k++) { t = fma(EM[a * 256u + i * 16u + k], EM[b * 256u + k * 16u + j], t); } EM[c * 256u + i * 16u + j] += t; } } }
fn emuStore(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { OS[off + r * s + c] = EM[m * 256u + r * 16u + c]; } } }`;
  return {
    head: 'enable f16;\nenable subgroups;',
    decls,
    args: ', @builtin(subgroup_invocation_id) sgi: u32',
    entry: '\n  EMU_LEAD = sgi == 0u;\n  EMN = 16u + (u.E >> 31u);',
    zero: (c: string) => `emuZero(${slot(c)});`,
    load: (m: string, arr: 'AS' | 'BS' | 'X', off: string, stride: string) => `emuLoad${arr === 'AS' ? 'A' : arr === 'BS' ? 'B' : 'X'}(${slot(m)}, ${off}, ${stride});`,
    mma: (c: string, a: string, b: string) => `emuMma(${slot(c)}, ${slot(a)}, ${slot(b)});`,
    store: (c: string, off: string, stride: number) => `emuStore(${slot(c)}, ${off}, ${stride}u);`,
  };
}

/**
 * Subgroup-matrix grouped GEMM (see the file comment). Needs
 * chromium-experimental-subgroup-matrix with an f16 x f16 -> f32 16x16x16
 * config, shader-f16, subgroups, a subgroup size <= 32 and the shape's
 * workgroup memory (sgmatLayout). Subgroup s < wm * wn owns rows
 * (s % wm) * tm / wm.. and tile columns (s / wm) * tn / wn..; extra subgroups
 * (subgroup size < 32) only stage and store.
 * @example `rec.dispatch({ kernel: groupedGemmSgmatKernel, variant, buffers, uniforms, workgroups })`
 */
export const groupedGemmSgmatKernel = defineKernel<FastGemmVariant>('grouped_gemm_sgmat', (v) => {
  const shape = sgmatShape(v);
  const lay = sgmatLayout(shape);
  if (lay.error) throw new Error(`grouped_gemm_sgmat: ${lay.error}`);
  if (shape.xd && v.xh !== 'direct') throw new Error(`grouped_gemm_sgmat: shape ${v.sg} loads x directly (xh 'direct'), got xh ${String(v.xh)}`);
  if (v.splitK !== undefined && (v.op !== 'down' || !Number.isInteger(v.splitK) || v.splitK < 1 || v.splitK > 8)) throw new Error(`grouped_gemm_sgmat: splitK ${v.splitK} (down only, 1..8)`);
  const g = sgmatGeo(v);
  const { decl, helpers } = header(v, g);
  const { tm, tn, tk, wm, wn } = shape;
  const { str, ow, threads } = lay;
  const nb = shape.db ? 2 : 1;
  // Matrix pointers must be 16-byte aligned (see sharedRows): every workgroup variable's size is a multiple of 16 bytes, and so is every buffer's and row's offset.
  for (const [name, bytes] of [['AS', 2 * tm * str], ['BS', 2 * tn * str], ['row', 2 * str], ['OS', 4 * 16 * ow], ['ROWX', 4 * tm]] as const) {
    if (bytes % 16 !== 0) throw new Error(`grouped_gemm_sgmat: workgroup array ${name} is ${bytes} bytes, not a multiple of 16`);
  }
  const nsg = wm * wn;
  const RB = tm / wm; // rows per subgroup
  const CB = tn / wn; // tile columns per subgroup
  const MI = RB / 16;
  const NJ = CB / 16;
  const V = fastVpl(v.wf);
  const perRow = tk / V;
  const xr = rounds((tm * tk) / (v.xh ? 8 : 4), threads);
  const wr = rounds(tn * perRow, threads);
  // Rotated weight stores: 16-bit dense weights only (8 values in 4 words); packed formats keep the plain order.
  const swz = !!shape.swz && (v.wf === 'bfloat16' || v.wf === 'float16');
  const accNames: string[] = [];
  for (let i = 0; i < MI; i++) for (let j = 0; j < NJ; j++) accNames.push(`c${i}_${j}`);
  const bNames = Array.from({ length: NJ }, (_, j) => `b${j}`);
  const M = matrixOps(!!v.emu, [...accNames, ...bNames, 'a'], v.xh === 'direct');
  // Staging of the registers into buffer `buf` (0 / 1; a WGSL expression): x rows as f16 into AS [tm][str], weight rows into BS [tn][str].
  // Offset of staging buffer BUF0 (replaced by the buffer expression in stage()).
  const buf0 = (n: number) => `BUF0 * ${n}u + `;
  // xh: 8 halves per item, stored rotated by j % 4 words like the weights (SgmatShape.swz) when swz.
  const stageX = v.xh === 'direct' ? '' : v.xh
    ? `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${threads}u;${xr.guard ? `\n      if (j < ${(tm * tk) / 8}u) {` : ' {'}
        let ai = ${nb > 1 ? `${buf0(tm * str)}` : ''}(j / ${tk / 8}u) * ${str}u + (j % ${tk / 8}u) * 8u;${
          shape.swz
            ? `
        let q = j & 3u;
        let x1 = select(xg[i], xg[i].yzwx, (q & 1u) != 0u);
        let xw = select(x1, x1.zwxy, (q & 2u) != 0u);`
            : `
        let xw = xg[i];`
        }
${[0, 1, 2, 3].map((w) => `        { let h = bitcast<vec2<f16>>(xw.${'xyzw'[w]}); AS[ai + ${shape.swz ? `((${2 * w}u + 2u * q) & 7u)` : `${2 * w}u`}] = h.x; AS[ai + ${shape.swz ? `((${2 * w + 1}u + 2u * q) & 7u)` : `${2 * w + 1}u`}] = h.y; }`).join('\n')}
      }
    }`
    : `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${threads}u;${xr.guard ? `\n      if (j < ${(tm * tk) / 4}u) {` : ' {'}
        let xh = ${g.xHalf ? 'xg[i]' : 'vec4<f16>(xg[i])'};
        let ai = ${nb > 1 ? `${buf0(tm * str)}` : ''}(j / ${tk / 4}u) * ${str}u + (j % ${tk / 4}u) * 4u;
        AS[ai] = xh.x;
        AS[ai + 1u] = xh.y;
        AS[ai + 2u] = xh.z;
        AS[ai + 3u] = xh.w;
      }
    }`;
  const stage = (buf: string) => `${stageX.replaceAll('BUF0', buf)}
    for (var i = 0u; i < ${wr.n}u; i++) {
      let j = lid + i * ${threads}u;${wr.guard ? `\n      if (j < ${tn * perRow}u) {` : ' {'}
        let bi = ${nb > 1 ? `${buf} * ${tn * str}u + ` : ''}(j / ${perRow}u) * ${str}u + (j % ${perRow}u) * ${V}u;${
          swz
            ? `
        // words rotated by q = j % 4: value t of wv is value (t + 2q) % 8 of the 8 (see SgmatShape.swz).
        let q = j & 3u;
        let w1 = select(wg[i], wg[i].yzwx, (q & 1u) != 0u);
        let wv = wdec(select(w1, w1.zwxy, (q & 2u) != 0u));
${Array.from({ length: V }, (_, t) => `        BS[bi + ((${t}u + 2u * q) & 7u)] = f16(wv[${t}]);`).join('\n')}`
            : `
        let wv = wdec(wg[i]);
${Array.from({ length: V }, (_, t) => `        BS[bi + ${t}u] = f16(wv[${t}]);`).join('\n')}`
        }
      }
    }`;
  // The multiply-accumulates of one staged slice in buffer `buf`.
  const mma = (buf: string) => {
    const aBase = nb > 1 ? `${buf} * ${tm * str}u + ` : '';
    const bBase = nb > 1 ? `${buf} * ${tn * str}u + ` : '';
    let s = '';
    for (let kk = 0; kk < tk; kk += 16) {
      s += `      {\n`;
      for (let j = 0; j < NJ; j++) s += `        ${M.load(`b${j}`, 'BS', `${bBase}(sn * ${CB}u + ${16 * j}u) * ${str}u + ${kk}u`, `${str}u`)}\n`;
      for (let i = 0; i < MI; i++) {
        const aLoad = v.xh === 'direct' ? M.load('a', 'X', `(r0 + sm * ${RB}u + ${16 * i}u) * kp + k0 + ${kk}u`, 'kp') : M.load('a', 'AS', `${aBase}(sm * ${RB}u + ${16 * i}u) * ${str}u + ${kk}u`, `${str}u`);
        s += `        { ${aLoad}\n`;
        for (let j = 0; j < NJ; j++) s += `          ${M.mma(`c${i}_${j}`, 'a', `b${j}`)}\n`;
        s += `        }\n`;
      }
      s += `      }\n`;
    }
    return s;
  };
  const loop = shape.db
    ? `
  ${stage('0u')}
  workgroupBarrier();
  var buf = 0u;
  for (var k0 = kBeg; k0 < kEnd; k0 += ${tk}u) {
    let kb = k0 + ${tk}u;
    let more = kb < kEnd;
    if (more) { ${loadSlice(v, g, 'kb')}
    }
    if (sg < ${nsg}u) {
${mma('buf')}    }
    if (more) { ${stage('(1u - buf)')}
    }
    workgroupBarrier();
    buf = 1u - buf;
  }`
    : `
  for (var k0 = kBeg; k0 < kEnd; k0 += ${tk}u) {
    ${stage('0u')}
    workgroupBarrier();
    { let kb = k0 + ${tk}u; if (kb < kEnd) { ${loadSlice(v, g, 'kb')}
    } }
    if (sg < ${nsg}u) {
${mma('0u')}    }
    workgroupBarrier();
  }`;
  // Epilogue: per 16-row block and ow-wide column chunk, the owning subgroups store their results into OS, then every thread
  // applies bias / activation to its outputs (gate_up: gate column ((q / 16) * 32 + q % 16), up 16 further; Geo 'pairs16').
  const owOut = tileOutputs(v.op, ow);
  const epiStore =
    v.op === 'gate_up'
      ? `let cg = ((q >> 4u) << 5u) + (q & 15u); let g = OS[r * ${ow}u + cg]; let up = OS[r * ${ow}u + cg + 16u]; ${store(v, 'p', 'o', 'g', 'up', 'p - r0')}`
      : `let g = OS[r * ${ow}u + q]; ${store(v, 'p', 'o', 'g', '', 'p - r0')}`;
  let epi = '';
  for (let blk = 0; blk < tm / 16; blk++) {
    const sm0 = Math.floor((16 * blk) / RB);
    const i0 = (16 * blk - sm0 * RB) / 16;
    epi += `  if (r0 + ${16 * blk}u < r1) {\n`;
    for (let cc = 0; cc < tn / ow; cc++) {
      let stores = '';
      for (let j = 0; j < NJ; j++) {
        const col = `sn * ${CB}u + ${16 * j}u`;
        const inChunk = tn === ow ? 'true' : `${col} >= ${cc * ow}u && ${col} < ${(cc + 1) * ow}u`;
        stores += `      if (${inChunk}) { ${M.store(`c${i0}_${j}`, `${col} - ${cc * ow}u`, ow)} }\n`;
      }
      epi += `    if (sg < ${nsg}u && sm == ${sm0}u) {\n${stores}    }
    workgroupBarrier();
    for (var idx = lid; idx < ${16 * owOut}u; idx += ${threads}u) {
      let r = idx / ${owOut}u;
      let q = idx % ${owOut}u;
      let p = r0 + ${16 * blk}u + r;
      let o = o0 + ${cc * tileOutputs(v.op, ow)}u + q;
      if (p < r1 && o < u.N) { ${epiStore} }
    }
    workgroupBarrier();\n`;
    }
    epi += `  }\n`;
  }
  return /* wgsl */ `${M.head}
${decl}
${helpers}
// A: x rows row-major [${nb}][${tm}][${str}] f16; B: weight rows [${nb}][${tn}][${str}] f16 (k contiguous, read as column-major K x N).
${v.xh === 'direct' ? '// A: loaded from the f16 x rows X directly.' : `var<workgroup> AS: array<f16, ${nb * tm * str}>;`}
var<workgroup> BS: array<f16, ${nb * tn * str}>;
// f32 results of one 16-row block and ${ow} tile columns for the epilogue.
var<workgroup> OS: array<f32, ${16 * ow}>;
${sharedRows(tm, v)}
${M.decls}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32${M.args}) {${M.entry}
${prologue(v, g)}
  let sm = sg % ${wm}u;
  let sn = (sg / ${wm}u) % ${wn}u;
  ${accNames.map((c) => M.zero(c)).join('\n  ')}
  ${sliceRegs(v, g)}
${loop}
${epi}}
`;
});

/**
 * Sum of the split-K partials of the subgroup-matrix down GEMM (FastGemmVariant.splitK): Y[p * ys + yo + o] =
 * sum over s < S of P[(s * rows + p) * N + o], for p < rows, o < N (the GEMM ran with ys = N, yo = 0).
 */
export const splitKReduceKernel = defineKernel<{ S: number }>('grouped_gemm_splitk_reduce', ({ S }) => /* wgsl */ `
struct U { rows: u32, N: u32, ys: u32, yo: u32, }
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.rows * u.N) { return; }
  var s = P[i];
  for (var j = 1u; j < ${S}u; j++) { s += P[j * u.rows * u.N + i]; }
  Y[(i / u.N) * u.ys + u.yo + i % u.N] = s;
}
`);

/**
 * The x rows of the subgroup-matrix GEMM in grouped order as f16 (FastGemmVariant.xh), one workgroup per
 * grouped row p: source row ORDER[p] / k ('token'), ORDER[p] ('pair') or p ('grouped'), times rowScale[ORDER[p]]
 * (rowScale) and a power of two s that brings the row's max |value| to at most 2^14 (1 when already inside;
 * also for inf / NaN rows, which then propagate as in f32), rounded to f16: XH[p] (kvp = halfRowStride(K) / 4
 * vec2<u32> of 4 halves, zero past K), XRU[p] = 1 / s. Workgroups rows..rows + HALF_ROWS_PAD - 1 write zero rows.
 * K % 8 == 0.
 */
export const halfRowsKernel = defineKernel<{ xmode: FastGemmVariant['xmode']; rowScale: boolean }>('grouped_gemm_half_rows', ({ xmode, rowScale }) => /* wgsl */ `
enable f16;
struct U { rows: u32, kv: u32, k: u32, kvp: u32, }
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> ORDER: array<u32>;
${rowScale ? '@group(0) @binding(2) var<storage, read> RS: array<f32>;' : ''}
@group(0) @binding(${rowScale ? 3 : 2}) var<storage, read_write> XH: array<vec2<u32>>;
@group(0) @binding(${rowScale ? 4 : 3}) var<storage, read_write> XRU: array<f32>;
@group(0) @binding(${rowScale ? 5 : 4}) var<uniform> u: U;
var<workgroup> part: array<f32, ${AMAX_WG}>;
@compute @workgroup_size(${AMAX_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x + wid.y * nwg.x;
  if (p >= u.rows + ${HALF_ROWS_PAD}u) { return; }
  if (p >= u.rows) {
    for (var i = lid; i < u.kvp; i += ${AMAX_WG}u) { XH[p * u.kvp + i] = vec2<u32>(0u); }
    return;
  }
  let pair = ORDER[p];
  let src = (${xmode === 'token' ? 'pair / u.k' : xmode === 'pair' ? 'pair' : 'p'}) * u.kv;
  var m = 0.0;
  for (var i = lid; i < u.kv; i += ${AMAX_WG}u) { let a = abs(X[src + i]); m = max(m, max(max(a.x, a.y), max(a.z, a.w))); }
  part[lid] = m;
  workgroupBarrier();
  for (var w = ${AMAX_WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { part[lid] = max(part[lid], part[lid + w]); }
    workgroupBarrier();
  }
  let rs = ${rowScale ? 'RS[pair]' : '1.0'};
  let a = part[0] * abs(rs);
  var s = 1.0;
  if (a > 16384.0 && a <= 3.4e38) { s = exp2(14.0 - ceil(log2(a))); }
  let ms = rs * s;
  for (var i = lid; i < u.kvp; i += ${AMAX_WG}u) {
    var v = vec4<f16>();
    if (i < u.kv) { v = vec4<f16>(X[src + i] * ms); }
    XH[p * u.kvp + i] = vec2<u32>(bitcast<u32>(v.xy), bitcast<u32>(v.zw));
  }
  if (lid == 0u) { XRU[p] = 1.0 / s; }
}
`);

/** Threads per row of rowAbsMaxKernel. */
const AMAX_WG = 64;

/**
 * Per-row max |x| of a row-major [rows, K] f32 matrix (K % 4 == 0), one
 * workgroup per row: the input of the f16-staged GEMMs' per-row scaling
 * (FastGemmVariant.xScale). NaN is ignored by max(); inf gives inf (the GEMM
 * then leaves that row unscaled, so inf propagates as in f32).
 */
export const rowAbsMaxKernel = defineKernel<{ wg: number }>('row_absmax', ({ wg }) => /* wgsl */ `
struct U { rows: u32, kv: u32, p0: u32, p1: u32, }
@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> AMAX: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  var m = 0.0;
  for (var i = lid; i < u.kv; i += ${wg}u) { let a = abs(X[row * u.kv + i]); m = max(m, max(max(a.x, a.y), max(a.z, a.w))); }
  part[lid] = m;
  workgroupBarrier();
  for (var w = ${wg / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { part[lid] = max(part[lid], part[lid + w]); }
    workgroupBarrier();
  }
  if (lid == 0u) { AMAX[row] = part[0]; }
}
`);

/** Workgroup size variant of rowAbsMaxKernel. */
export const ROW_ABSMAX_VARIANT = { wg: AMAX_WG } as const;
