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
 *   summed by splitKReduceKernel). Its WGSL: grouped-gemm-sgmat-wgsl.ts.
 *
 * This file: the register-blocked kernel and the helper kernels of both
 * (split-K sum, f16 x rows, row maxima). The variants and tile shapes are in
 * grouped-gemm-fast-shapes.ts, the shared staging / prologue / epilogue code
 * and the signature (bindings and uniforms by name) in
 * grouped-gemm-fast-staging-wgsl.ts, the per-format weight decoders in
 * grouped-gemm-fast-weights-wgsl.ts.
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
import { defineKernel, uniformFields, type BindingDecl } from '../runtime/kernel.js';
import { FAST_TK, FAST_TM, FAST_THREADS, FAST_TNW, HALF_ROWS_PAD, halfRowStride, type FastGemmVariant } from './grouped-gemm-fast-shapes.js';
import { FMA_GEO, fastGemmSignature, helpersWgsl, loadSlice, prologue, sharedRows, sliceRegs, store } from './grouped-gemm-fast-staging-wgsl.js';
import { fastVpl } from './grouped-gemm-fast-weights-wgsl.js';

/**
 * Register-blocked grouped GEMM (see the file comment). Thread (ty, tx) =
 * (lid / 16, lid % 16) owns rows 4ty..4ty+3 and weight columns 4tx..4tx+3
 * and 64+4tx..64+4tx+3 of the tile (gate_up: the gate and up rows of
 * outputs o0+4tx..o0+4tx+3).
 * @example `rec.dispatch({ kernel: groupedGemmFastKernel, variant, bind: { X, ORDER, META, ..., Y }, params: { nRows, ... }, workgroups })` (normally through groupedGateUpGpu / groupedDownGpu)
 */
export const groupedGemmFastKernel = defineKernel<FastGemmVariant>('grouped_gemm_fast', (v) => {
  const S = v.h ? 'f16' : 'f32';
  if (v.wide) throw new Error('grouped_gemm_fast: wide packed loads are for the subgroup-matrix kernel');
  const helpers = helpersWgsl(v, FMA_GEO);
  const V = fastVpl(v);
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
}, { signature: (v) => fastGemmSignature(v) });

/**
 * Sum of the split-K partials of the subgroup-matrix down GEMM (FastGemmVariant.splitK): Y[p * ys + yo + o] =
 * sum over s < S of P[(s * rows + p) * N + o], for p < rows, o < N (the GEMM ran with ys = N, yo = 0).
 */
export const splitKReduceKernel = defineKernel<{ S: number }>('grouped_gemm_splitk_reduce', ({ S }) => /* wgsl */ `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.rows * u.N) { return; }
  var s = P[i];
  for (var j = 1u; j < ${S}u; j++) { s += P[j * u.rows * u.N + i]; }
  Y[(i / u.N) * u.ys + u.yo + i % u.N] = s;
}
`, {
  signature: () => ({
    bindings: [{ name: 'P', type: 'array<f32>', access: 'read' }, { name: 'Y', type: 'array<f32>', access: 'read_write' }],
    uniforms: uniformFields('u32', 'rows', 'N', 'ys', 'yo'),
  }),
});

/**
 * Variant of halfRowsKernel: which x row feeds grouped row p, and whether the router weight scales it; `regs` (from
 * halfRowsRegs): the row is read once into that many vec4 registers per thread of HALF_ROWS_REG_WG, its max taken
 * from them and its halves written from them, instead of read twice by AMAX_WG threads (the max, then the halves).
 */
export type HalfRowsVariant = { xmode: FastGemmVariant['xmode']; rowScale: boolean; regs?: number };

/** Threads per row of halfRowsKernel's register variant. */
const HALF_ROWS_REG_WG = 256;
/** The most vec4 registers per thread of halfRowsKernel's register variant (64 values: rows of up to 16384 inputs). */
const HALF_ROWS_MAX_REGS = 16;

/**
 * halfRowsKernel's `regs` for rows of K inputs: the vec4s of a padded row (halfRowStride(K) / 4) per thread of
 * HALF_ROWS_REG_WG, or undefined past HALF_ROWS_MAX_REGS (the two-read variant).
 * @example `halfRowsRegs(14336) // 14`
 */
export function halfRowsRegs(K: number): number | undefined {
  const regs = Math.ceil(halfRowStride(K) / 4 / HALF_ROWS_REG_WG);
  return regs <= HALF_ROWS_MAX_REGS ? regs : undefined;
}

/**
 * The x rows of the subgroup-matrix GEMM in grouped order as f16 (FastGemmVariant.xh), one workgroup per
 * grouped row p: source row ORDER[p] / k ('token'), ORDER[p] ('pair') or p ('grouped'), times rowScale[ORDER[p]]
 * (rowScale) and a power of two s that brings the row's max |value| to at most 2^14 (1 when already inside;
 * also for inf / NaN rows, which then propagate as in f32), rounded to f16: XH[p] (kvp = halfRowStride(K) / 4
 * vec2<u32> of 4 halves, zero past K), XRU[p] = 1 / s. Workgroups rows..rows + HALF_ROWS_PAD - 1 write zero rows.
 * K % 8 == 0. With `regs` the row is read once (HalfRowsVariant); the same halves.
 */
export const halfRowsKernel = defineKernel<HalfRowsVariant>('grouped_gemm_half_rows', ({ xmode, rowScale, regs }) => {
  const wg = regs ? HALF_ROWS_REG_WG : AMAX_WG;
  // the row's max |value| per thread, and the loop writing its halves (v: the 4 values of vec4 i, i < u.kv)
  const [maxLoop, writeLoop] = regs
    ? [
        `var xv: array<vec4<f32>, ${regs}>;
  for (var j = 0u; j < ${regs}u; j++) {
    let i = lid + j * ${wg}u;
    if (i < u.kv) { xv[j] = X[src + i]; let a = abs(xv[j]); m = max(m, max(max(a.x, a.y), max(a.z, a.w))); }
  }`,
        `for (var j = 0u; j < ${regs}u; j++) {
    let i = lid + j * ${wg}u;
    if (i < u.kvp) {
      var v = vec4<f16>();
      if (i < u.kv) { v = vec4<f16>(xv[j] * ms); }
      XH[p * u.kvp + i] = vec2<u32>(bitcast<u32>(v.xy), bitcast<u32>(v.zw));
    }
  }`,
      ]
    : [
        `for (var i = lid; i < u.kv; i += ${wg}u) { let a = abs(X[src + i]); m = max(m, max(max(a.x, a.y), max(a.z, a.w))); }`,
        `for (var i = lid; i < u.kvp; i += ${wg}u) {
    var v = vec4<f16>();
    if (i < u.kv) { v = vec4<f16>(X[src + i] * ms); }
    XH[p * u.kvp + i] = vec2<u32>(bitcast<u32>(v.xy), bitcast<u32>(v.zw));
  }`,
      ];
  return /* wgsl */ `
var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x + wid.y * nwg.x;
  if (p >= u.rows + ${HALF_ROWS_PAD}u) { return; }
  if (p >= u.rows) {
    for (var i = lid; i < u.kvp; i += ${wg}u) { XH[p * u.kvp + i] = vec2<u32>(0u); }
    return;
  }
  let pair = ORDER[p];
  let src = (${xmode === 'token' ? 'pair / u.k' : xmode === 'pair' ? 'pair' : 'p'}) * u.kv;
  var m = 0.0;
  ${maxLoop}
  part[lid] = m;
  workgroupBarrier();
  for (var w = ${wg / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { part[lid] = max(part[lid], part[lid + w]); }
    workgroupBarrier();
  }
  let rs = ${rowScale ? 'RS[pair]' : '1.0'};
  let a = part[0] * abs(rs);
  var s = 1.0;
  if (a > 16384.0 && a <= 3.4e38) { s = exp2(14.0 - ceil(log2(a))); }
  let ms = rs * s;
  ${writeLoop}
  if (lid == 0u) { XRU[p] = 1.0 / s; }
}
`;
}, {
  signature: ({ rowScale }) => {
    const read = (name: string, type: string): BindingDecl => ({ name, type, access: 'read' });
    const write = (name: string, type: string): BindingDecl => ({ name, type, access: 'read_write' });
    return {
      bindings: [read('X', 'array<vec4<f32>>'), read('ORDER', 'array<u32>'), ...(rowScale ? [read('RS', 'array<f32>')] : []), write('XH', 'array<vec2<u32>>'), write('XRU', 'array<f32>')],
      uniforms: uniformFields('u32', 'rows', 'kv', 'k', 'kvp'),
      f16: true,
    };
  },
});

/** Threads per row of rowAbsMaxKernel. */
const AMAX_WG = 64;

/**
 * Per-row max |x| of a row-major [rows, K] f32 matrix (K % 4 == 0), one
 * workgroup per row: the input of the f16-staged GEMMs' per-row scaling
 * (FastGemmVariant.xScale). NaN is ignored by max(); inf gives inf (the GEMM
 * then leaves that row unscaled, so inf propagates as in f32).
 */
export const rowAbsMaxKernel = defineKernel<{ wg: number }>('row_absmax', ({ wg }) => /* wgsl */ `
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
`, {
  signature: () => ({
    bindings: [{ name: 'X', type: 'array<vec4<f32>>', access: 'read' }, { name: 'AMAX', type: 'array<f32>', access: 'read_write' }],
    uniforms: uniformFields('u32', 'rows', 'kv'),
  }),
});

/** Workgroup size variant of rowAbsMaxKernel. */
export const ROW_ABSMAX_VARIANT = { wg: AMAX_WG } as const;
