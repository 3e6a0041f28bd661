/**
 * The staging and epilogue code shared by the fast grouped GEMMs (the
 * register-blocked kernel of grouped-gemm-fast-wgsl.ts and the
 * subgroup-matrix kernel of grouped-gemm-sgmat-wgsl.ts): their signature
 * (bindings and uniforms by name), the prologue (the workgroup's expert and
 * rows, the x row table), the global loads of a K slice into registers, the
 * shared workgroup rows, and the store of one output (scale, bias,
 * activation).
 */
import { loadFn } from '../wgsl.js';
import { expertActWgsl } from './activation-wgsl.js';
import { expertTileWgsl } from './grouped-gemm-wgsl.js';
import { uniformFields, type BindingDecl, type KernelSignature, type UniformField } from '../runtime/kernel.js';
import { FAST_TK, FAST_TM, FAST_THREADS, FAST_TNW, sgmatLayout, sgmatShape, tileOutputs, type FastGemmVariant } from './grouped-gemm-fast-shapes.js';
import { fastVpl, rawType, weightAccessWgsl, weightBindings } from './grouped-gemm-fast-weights-wgsl.js';

/**
 * Geometry shared by the kernels' staging code: rows tm, weight rows tn, K slice tk, threads, and how
 * gate_up's tile columns map to gate / up rows ('halves': the first tn / 2 are gate rows; 'pairs16':
 * alternating blocks of 16 gate and 16 up rows, so every 32 aligned columns hold whole pairs).
 */
export interface Geo {
  tm: number;
  tn: number;
  tk: number;
  threads: number;
  gateUpCols: 'halves' | 'pairs16';
  /** x registers of loadSlice as f16 (converted at load) instead of f32. */
  xHalf: boolean;
  /**
   * No row tables in workgroup memory (SgmatShape.xo; f16 x rows only, FastGemmVariant.xh): the x row of grouped row p
   * starts at vec4 p * kp / 8 and its 1 / scale is XRU[p], read where used.
   */
  xo?: boolean;
}

export const FMA_GEO: Geo = { tm: FAST_TM, tn: FAST_TNW, tk: FAST_TK, threads: FAST_THREADS, gateUpCols: 'halves', xHalf: false };

export function sgmatGeo(v: FastGemmVariant): Geo {
  const s = sgmatShape(v);
  return { tm: s.tm, tn: s.tn, tk: s.tk, threads: sgmatLayout(s).threads, gateUpCols: 'pairs16', xHalf: !!s.swz, xo: !!s.xo };
}

/** Per-thread count of `total` work items over `threads` threads, and whether the last round needs a bound check. */
export function rounds(total: number, threads: number): { n: number; guard: boolean } {
  return { n: Math.ceil(total / threads), guard: total % threads !== 0 };
}

/**
 * Uniform block of the fast GEMMs (wa..wd: the weight uniforms of weightLayout in grouped-gemm-wgsl.ts). E, N, wRows:
 * the dispatched chunk's; Y row p, output o is written at p * ys + yo + o; be0: the bias row of expert 0 of the
 * weights (a decoded range of the dequantize-then-GEMM path; else 0).
 */
const FAST_UNIFORMS: readonly UniformField[] = [
  ...uniformFields('u32', 'nRows', 'k', 'E', 'K', 'N', 'wRows', 'nTilesN', 'nWork'),
  ...uniformFields('f32', 'limit', 'alpha'),
  ...uniformFields('u32', 'wa', 'wb', 'wc', 'wd', 'yo', 'ys', 'be0'),
];

/**
 * The signature of both fast GEMM kernels: the x rows (X: f32 rows, or the f16 grouped rows of halfRowsKernel with
 * `xh`), the grouped row order, the tile offsets (META of tileOffsetsKernel), then per variant XRU (`xh`: 1 / the
 * rows' staging scale) or RS (rowScale) and XAMAX (xScale), the weight bindings of the format, BIAS, and Y (written).
 * `directives`: the subgroup-matrix kernel's extra enables.
 */
export function fastGemmSignature(v: FastGemmVariant, directives: readonly string[] = []): KernelSignature {
  const read = (name: string, type: string): BindingDecl => ({ name, type, access: 'read' });
  const b: BindingDecl[] = [read('X', v.xh === 'direct' ? 'array<f16>' : v.xh ? 'array<vec4<u32>>' : 'array<vec4<f32>>'), read('ORDER', 'array<u32>'), read('META', 'array<u32>')];
  if (v.xh) b.push(read('XRU', 'array<f32>'));
  else {
    if (v.rowScale) b.push(read('RS', 'array<f32>'));
    if (v.xScale) b.push(read('XAMAX', 'array<f32>'));
  }
  b.push(...weightBindings(v));
  if (v.bias !== 'none') b.push(read('BIAS', v.bias === 'float32' ? 'array<f32>' : 'array<u32>'));
  b.push({ name: 'Y', type: 'array<f32>', access: 'read_write' });
  return { bindings: b, uniforms: FAST_UNIFORMS, f16: directives.length > 0 || !!v.h || !!v.xh, directives };
}

/** The WGSL helpers of both kernels: wrow (tile column -> weight row), the weight access, the bias load and the activation. */
export function helpersWgsl(v: FastGemmVariant, g: Geo): string {
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
  return [wrow, weightAccessWgsl(v), v.bias === 'none' ? '' : loadFn('bld', 'BIAS', v.bias), v.op === 'gate_up' ? expertActWgsl(v.act) : ''].join('\n');
}

/** Finds the workgroup's expert and row range (binary search over the tile offsets; meta from tileOffsetsKernel with tm = 64), then the row gather table. */
export function prologue(v: FastGemmVariant, g: Geo): string {
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
${expertTileWgsl(tm, v.band, v.ends)}
    shW = vec4<u32>(e, r0, r1, nt);
  }
  let shw = workgroupUniformLoad(&shW);
  let e = shw.x;
  let r0 = shw.y;
  let r1 = shw.z;
  if (r1 <= r0) { return; }
  let nt = shw.w;
  let o0 = nt * ${tileOutputs(v.op, g.tn)}u;
  let kv = u.K >> 2u;
  ${v.xh ? (g.xo ? 'let kp = (u.K + 63u) & ~63u;' : xhRows(tm, g.threads)) : `for (var lr = lid; lr < ${tm}u; lr += ${g.threads}u) {
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
  let eRow = (e + u.be0) * u.wRows;
  workgroupBarrier();`;
}

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

/** The register arrays one K slice is loaded into (x rows, weight vectors). */
export interface SliceRegs {
  x: string;
  w: string;
}

/** The kernels' register arrays (`var xg`, `var wg`); the pf2 tiles' second set is `{ x: 'xg2', w: 'wg2' }`. */
export const SLICE_REGS: SliceRegs = { x: 'xg', w: 'wg' };

/**
 * Global loads of one K slice (starting at kb) into registers `regs` (xg / wg)
 * (issued one slice ahead of the compute, so their latency hides behind it).
 * Item j = lid + i * threads: x vec4 (row j / (tk / 4), column 4 (j % (tk / 4))), weight vector
 * (tile column j / (tk / V), values V (j % (tk / V)).. of the slice).
 */
export function loadSlice(v: FastGemmVariant, g: Geo, kb: string, regs: SliceRegs = SLICE_REGS): string {
  const xt = g.xHalf ? 'f16' : 'f32';
  const V = fastVpl(v);
  const perRow = g.tk / V;
  const xr = rounds((g.tm * g.tk) / (v.xh ? 8 : 4), g.threads);
  const wr = rounds(g.tn * perRow, g.threads);
  const raw = rawType(v);
  const xLoads = v.xh === 'direct' ? '' : v.xh
    ? `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${g.threads}u;
      let r = j / ${g.tk / 8}u;
      let c8 = j % ${g.tk / 8}u;
      var xv = vec4<u32>();
      if (${xr.guard ? `r < ${g.tm}u && ` : ''}r0 + r < r1 && ${kb} + c8 * 8u < kEnd) { xv = X[${g.xo ? `(r0 + r) * (kp >> 3u)` : 'ROWX[r]'} + (${kb} >> 3u) + c8]; }
      ${regs.x}[i] = xv;
    }`
    : '';
  return `${xLoads}${v.xh ? '' : `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${g.threads}u;
      let r = j / ${g.tk / 4}u;
      let c4 = j % ${g.tk / 4}u;
      var xv = vec4<${xt}>(0.0);
      if (${xr.guard ? `r < ${g.tm}u && ` : ''}r0 + r < r1 && ${kb} + c4 * 4u < kEnd) { xv = vec4<${xt}>(X[ROWX[r] + (${kb} >> 2u) + c4]${v.rowScale || v.xScale ? ' * ROWM[r]' : ''}); }
      ${regs.x}[i] = xv;
    }`}
    for (var i = 0u; i < ${wr.n}u; i++) {
      let q = (lid + i * ${g.threads}u) % ${perRow}u;
      let col = ${kb} + q * ${V}u;
      var wv = ${raw}();
      if (wr[i] != 0xffffffffu && col < kEnd) { wv = wload(e, wr[i], col); }
      ${regs.w}[i] = wv;
    }`;
}

/** Register declarations of loadSlice (and the weight rows wr each thread stages, fixed over K), then the loads of the first slice. */
export function sliceRegs(v: FastGemmVariant, g: Geo): string {
  const perRow = g.tk / fastVpl(v);
  const wr = rounds(g.tn * perRow, g.threads);
  return `var wr: array<u32, ${wr.n}>;
  for (var i = 0u; i < ${wr.n}u; i++) { let j = lid + i * ${g.threads}u; wr[i] = ${wr.guard ? `select(0xffffffffu, wrow(j / ${perRow}u, o0), j < ${g.tn * perRow}u)` : `wrow(j / ${perRow}u, o0)`}; }
  ${v.xh === 'direct' ? '' : `var xg: array<${v.xh ? 'vec4<u32>' : `vec4<${g.xHalf ? 'f16' : 'f32'}>`}, ${rounds((g.tm * g.tk) / (v.xh ? 8 : 4), g.threads).n}>;`}
  var wg: array<${rawType(v)}, ${wr.n}>;
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
export const sharedRows = (tm: number, v: FastGemmVariant, xo = false) =>
  xo
    ? `
var<workgroup> shW: vec4<u32>;`
    : `
var<workgroup> ROWX: array<u32, ${tm}>;
var<workgroup> ROWM: array<f32, ${tm}>;${v.xScale ? `\nvar<workgroup> ROWU: array<f32, ${tm}>;` : ''}
var<workgroup> shW: vec4<u32>;`;

/**
 * Epilogue of one output: p grouped row, o output index, g (gate or down sum), v (up sum), r the row in the tile;
 * `xo`: the row's 1 / scale from XRU[p] (no row tables).
 */
export function store(v: FastGemmVariant, p: string, o: string, g0: string, up0: string, r: string, xo = false): string {
  // Undo the x row's f16 staging scale (xScale) before bias and activation.
  const ru = xo ? `XRU[${p}]` : `ROWU[${r}]`;
  const g = v.xScale ? `(${g0}) * ${ru}` : g0;
  const up = v.xScale && up0 ? `(${up0}) * ${ru}` : up0;
  const gateRow = v.interleaved ? `2u * (${o})` : `(${o})`;
  const upRow = v.interleaved ? `2u * (${o}) + 1u` : `u.N + (${o})`;
  const split = (v.splitK ?? 1) > 1;
  const b = (row: string) => (v.bias === 'none' ? '' : split ? ` + select(0.0, bld(eRow + ${row}), ks == 0u)` : ` + bld(eRow + ${row})`);
  const yRow = split ? `(ks * u.nRows + ${p})` : `(${p})`;
  return v.op === 'gate_up' ? `Y[${yRow} * u.ys + u.yo + (${o})] = act(${g}${b(gateRow)}, ${up}${b(upRow)});` : `Y[${yRow} * u.ys + u.yo + (${o})] = ${g}${b(o)};`;
}
