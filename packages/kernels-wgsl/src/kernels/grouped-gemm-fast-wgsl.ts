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
 * - `groupedGemmSgmatKernel`: the same tile on subgroup matrices
 *   (chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16):
 *   x rows and weights staged as f16 in workgroup memory, 8 subgroups of 32
 *   each own a 32x32 block (2x2 result matrices; with `tm: 128` tiles of
 *   128 rows, 64x32 = 4x2), the f32 results go through workgroup memory one
 *   16-row block at a time for bias + activation.
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

/** Rows (grouped rows) per workgroup tile. */
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
  /** Subgroup-matrix kernel only: rows per workgroup tile, 64 (default) or 128 (each subgroup then owns 64 x 32). */
  tm?: number;
};

/** Rows per workgroup tile of a variant. */
export function fastTm(v: FastGemmVariant): number {
  return v.tm ?? FAST_TM;
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
function header(v: FastGemmVariant): { decl: string; helpers: string } {
  const bindings: string[] = ['X: array<vec4<f32>>', 'ORDER: array<u32>', 'META: array<u32>'];
  if (v.rowScale) bindings.push('RS: array<f32>');
  if (v.xScale) bindings.push('XAMAX: array<f32>');
  bindings.push(...weightBindings(v));
  if (v.bias !== 'none') bindings.push(v.bias === 'float32' ? 'BIAS: array<f32>' : 'BIAS: array<u32>');
  const fields = FAST_UNIFORM_FIELDS.map((f) => (f.endsWith(':f32') ? `${f.slice(0, -4)}: f32,` : `${f}: u32,`)).join(' ');
  const decl =
    `struct U { ${fields} }\n` +
    bindings.map((b, i) => `@group(0) @binding(${i}) var<storage, read> ${b};`).join('\n') +
    `\n@group(0) @binding(${bindings.length}) var<storage, read_write> Y: array<f32>;` +
    `\n@group(0) @binding(${bindings.length + 1}) var<uniform> u: U;`;
  // wrow(n, o0): weight row of tile column n (0..127), or 0xffffffff when its output is out of range.
  const gateRow = v.interleaved ? '2u * o' : 'o';
  const upRow = v.interleaved ? '2u * o + 1u' : 'u.N + o';
  const wrow =
    v.op === 'gate_up'
      ? `fn wrow(n: u32, o0: u32) -> u32 { let o = o0 + (n & 63u); if (o >= u.N) { return 0xffffffffu; } return select(${upRow}, ${gateRow}, n < 64u); }`
      : `fn wrow(n: u32, o0: u32) -> u32 { let o = o0 + n; return select(0xffffffffu, o, o < u.N); }`;
  const helpers = [wrow, weightAccessWgsl(v), v.bias === 'none' ? '' : loadFn('bld', 'BIAS', v.bias), v.op === 'gate_up' ? activationWgsl(v.act) : ''].join('\n');
  return { decl, helpers };
}

/** Finds the workgroup's expert and row range (binary search over the tile offsets; meta from tileOffsetsKernel with tm = 64), then the row gather table. */
function prologue(v: FastGemmVariant): string {
  const tm = fastTm(v);
  const xrow = v.xmode === 'token' ? 'pair / u.k' : v.xmode === 'pair' ? 'pair' : 'p';
  return `
  let w = wid.x + wid.y * nwg.x;
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
  let o0 = nt * ${v.op === 'gate_up' ? 64 : 128}u;
  let kv = u.K >> 2u;
  if (lid < ${tm}u) {
    var xb = 0u;
    var m = 0.0;${v.xScale ? '\n    var s = 1.0;' : ''}
    let p = r0 + lid;
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
    ROWX[lid] = xb;
    ROWM[lid] = m;${v.xScale ? '\n    ROWU[lid] = 1.0 / s;' : ''}
  }
  let eRow = e * u.wRows;
  workgroupBarrier();`;
}

/**
 * Global loads of one K slice (starting at kb) into registers xg / wg
 * (issued one slice ahead of the compute, so their latency hides behind it).
 */
function loadSlice(v: FastGemmVariant, kb: string): string {
  const V = fastVpl(v.wf);
  const perRow = FAST_TK / V;
  const wLoads = (FAST_TNW * perRow) / FAST_THREADS;
  const raw = rawType(v.wf);
  return `
    for (var i = 0u; i < ${(fastTm(v) * FAST_TK) / 4 / FAST_THREADS}u; i++) {
      let j = lid + i * ${FAST_THREADS}u;
      let r = j / ${FAST_TK / 4}u;
      let c4 = j % ${FAST_TK / 4}u;
      var xv = vec4<f32>(0.0);
      if (r0 + r < r1 && ${kb} + c4 * 4u < u.K) { xv = X[ROWX[r] + (${kb} >> 2u) + c4]${v.rowScale || v.xScale ? ' * ROWM[r]' : ''}; }
      xg[i] = xv;
    }
    for (var i = 0u; i < ${wLoads}u; i++) {
      let q = (lid + i * ${FAST_THREADS}u) % ${perRow}u;
      let col = ${kb} + q * ${V}u;
      var wv = ${raw}();
      if (wr[i] != 0xffffffffu && col < u.K) { wv = wload(e, wr[i], col); }
      wg[i] = wv;
    }`;
}

/** Register declarations of loadSlice. */
function sliceRegs(v: FastGemmVariant): string {
  const V = fastVpl(v.wf);
  const wLoads = (FAST_TNW * (FAST_TK / V)) / FAST_THREADS;
  return `var xg: array<vec4<f32>, ${(fastTm(v) * FAST_TK) / 4 / FAST_THREADS}>;
  var wg: array<${rawType(v.wf)}, ${wLoads}>;
  { let kb = 0u; ${loadSlice(v, 'kb')}
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
  const b = (row: string) => (v.bias === 'none' ? '' : ` + bld(eRow + ${row})`);
  return v.op === 'gate_up' ? `Y[(${p}) * u.ys + u.yo + (${o})] = act(${g}${b(gateRow)}, ${up}${b(upRow)});` : `Y[(${p}) * u.ys + u.yo + (${o})] = ${g}${b(o)};`;
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
  const { decl, helpers } = header(v);
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
${sharedRows(fastTm(v), v)}

@compute @workgroup_size(${FAST_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${prologue(v)}
  // Weight rows this thread stages (fixed over K).
  var wr: array<u32, ${wLoads}>;
  for (var i = 0u; i < ${wLoads}u; i++) { wr[i] = wrow((lid + i * ${FAST_THREADS}u) / ${perRow}u, o0); }
  let tx = lid % 16u;
  let ty = lid / 16u;
  ${acc.join(' ')}
  ${sliceRegs(v)}
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
    { let kb = k0 + ${FAST_TK}u; if (kb < u.K) { ${loadSlice(v, 'kb')}
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

/** Row stride (f16 elements) of the staged subgroup-matrix tiles (32 + 8 padding). */
const SG_STR = 40;

/**
 * Subgroup-matrix grouped GEMM (see the file comment). Needs
 * chromium-experimental-subgroup-matrix with an f16 x f16 -> f32 16x16x16
 * config, shader-f16, subgroups, a subgroup size <= 32 and about 32 KiB of
 * workgroup memory (SGMAT_WORKGROUP_BYTES). Subgroup s < 8 owns rows 32*(s%2).. and tile columns
 * 32*(s/2)..; extra subgroups (subgroup size < 32) only stage and store.
 * @example `rec.dispatch({ kernel: groupedGemmSgmatKernel, variant, buffers, uniforms, workgroups })`
 */
export const groupedGemmSgmatKernel = defineKernel<FastGemmVariant>('grouped_gemm_sgmat', (v) => {
  const { decl, helpers } = header(v);
  const tm = fastTm(v);
  if (tm !== 64 && tm !== 128) throw new Error(`grouped_gemm_sgmat: tm ${tm} (64 | 128)`);
  // Matrix pointers must be 16-byte aligned (see sharedRows): every workgroup variable's size is a multiple of 16 bytes.
  for (const [name, bytes] of [['AS', 2 * tm * SG_STR], ['BS', 2 * FAST_TNW * SG_STR], ['OS', 4 * 16 * FAST_TNW], ['ROWX', 4 * tm], ['ROWM', 4 * tm], ['ROWU', 4 * tm]] as const) {
    if (bytes % 16 !== 0) throw new Error(`grouped_gemm_sgmat: workgroup array ${name} is ${bytes} bytes, not a multiple of 16`);
  }
  const RB = tm / 2; // rows per subgroup
  const MI = RB / 16; // 16-row blocks per subgroup
  const V = fastVpl(v.wf);
  const perRow = FAST_TK / V;
  const wLoads = (FAST_TNW * perRow) / FAST_THREADS;
  const tnOut = v.op === 'gate_up' ? 64 : 128;
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const C = 'subgroup_matrix_result<f32, 16, 16>';
  const emu = !!v.emu;
  const accs: string[] = [];
  for (let i = 0; i < MI; i++) for (let j = 0; j < 2; j++) accs.push(`var c${i}${j} = ${C}();`);
  let mma = '';
  for (const kk of [0, 16]) {
    mma += `      {\n`;
    mma += `        let b0 = subgroupMatrixLoad<${R}>(&BS, (sn * 32u) * ${SG_STR}u + ${kk}u, true, ${SG_STR}u);\n`;
    mma += `        let b1 = subgroupMatrixLoad<${R}>(&BS, (sn * 32u + 16u) * ${SG_STR}u + ${kk}u, true, ${SG_STR}u);\n`;
    for (let i = 0; i < MI; i++) {
      mma += `        { let a = subgroupMatrixLoad<${L}>(&AS, (sm * ${RB}u + ${16 * i}u) * ${SG_STR}u + ${kk}u, false, ${SG_STR}u);\n`;
      mma += `          c${i}0 = subgroupMatrixMultiplyAccumulate(a, b0, c${i}0);\n          c${i}1 = subgroupMatrixMultiplyAccumulate(a, b1, c${i}1); }\n`;
    }
    mma += `      }\n`;
  }
  const epilogue =
    v.op === 'gate_up'
      ? `let g = OS[r * ${FAST_TNW}u + c]; let up = OS[r * ${FAST_TNW}u + 64u + c]; ${store(v, 'p', 'o', 'g', 'up', 'p - r0')}`
      : `let g = OS[r * ${FAST_TNW}u + c]; ${store(v, 'p', 'o', 'g', '', 'p - r0')}`;
  // Epilogue: one 16-row block at a time through OS (8 KiB): its 4 subgroups store, everyone applies bias/activation.
  let epi = '';
  for (let blk = 0; blk < tm / 16; blk++) {
    const sm0 = Math.floor((16 * blk) / RB);
    const i0 = (16 * blk - sm0 * RB) / 16;
    epi += `  if (r0 + ${16 * blk}u < r1) {
    if (sg < 8u && sm == ${sm0}u) {
      subgroupMatrixStore(&OS, sn * 32u, c${i0}0, false, ${FAST_TNW}u);
      subgroupMatrixStore(&OS, sn * 32u + 16u, c${i0}1, false, ${FAST_TNW}u);
    }
    workgroupBarrier();
    for (var idx = lid; idx < ${16 * tnOut}u; idx += ${FAST_THREADS}u) {
      let r = idx / ${tnOut}u;
      let c = idx % ${tnOut}u;
      let p = r0 + ${16 * blk}u + r;
      let o = o0 + c;
      if (p < r1 && o < u.N) { ${epilogue} }
    }
    workgroupBarrier();
  }\n`;
  }
  const head = emu ? 'enable f16;\nenable subgroups;' : 'diagnostic(off, chromium.subgroup_matrix_uniformity);\nenable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;';
  let src = /* wgsl */ `${head}
${decl}
${helpers}
// A: x rows row-major [${tm}][40] f16; B: weight rows [128][40] f16 (k contiguous, read as column-major K x N).
var<workgroup> AS: array<f16, ${tm * SG_STR}>;
var<workgroup> BS: array<f16, ${FAST_TNW * SG_STR}>;
// f32 results of one 16-row block [16][128] for the epilogue.
var<workgroup> OS: array<f32, ${16 * FAST_TNW}>;
${sharedRows(tm, v)}
${emu ? SG_EMU : ''}

@compute @workgroup_size(${FAST_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
${prologue(v)}
  var wr: array<u32, ${wLoads}>;
  for (var i = 0u; i < ${wLoads}u; i++) { wr[i] = wrow((lid + i * ${FAST_THREADS}u) / ${perRow}u, o0); }
  let sm = sg % 2u;
  let sn = (sg / 2u) % 4u;
  ${accs.join('\n  ')}
  ${sliceRegs(v)}
  for (var k0 = 0u; k0 < u.K; k0 += ${FAST_TK}u) {
    for (var i = 0u; i < ${(tm * FAST_TK) / 4 / FAST_THREADS}u; i++) {
      let j = lid + i * ${FAST_THREADS}u;
      let r = j / ${FAST_TK / 4}u;
      let c4 = j % ${FAST_TK / 4}u;
      let xh = vec4<f16>(xg[i]);
      let ai = r * ${SG_STR}u + c4 * 4u;
      AS[ai] = xh.x;
      AS[ai + 1u] = xh.y;
      AS[ai + 2u] = xh.z;
      AS[ai + 3u] = xh.w;
    }
    for (var i = 0u; i < ${wLoads}u; i++) {
      let j = lid + i * ${FAST_THREADS}u;
      let n = j / ${perRow}u;
      let q = j % ${perRow}u;
      let wv = wdec(wg[i]);
      let bi = n * ${SG_STR}u + q * ${V}u;
      for (var t = 0u; t < ${V}u; t++) { BS[bi + t] = f16(wv[t]); }
    }
    workgroupBarrier();
    { let kb = k0 + ${FAST_TK}u; if (kb < u.K) { ${loadSlice(v, 'kb')}
    } }
    if (sg < 8u) {
${mma}    }
    workgroupBarrier();
  }
${epi}}
`;
  if (emu) {
    src = src
      .replaceAll(L, 'array<f32, 256>')
      .replaceAll(R, 'array<f32, 256>')
      .replaceAll(C, 'array<f32, 256>')
      .replaceAll('subgroupMatrixLoad<array<f32, 256>>(&AS, ', 'emuLoadA(')
      .replaceAll('subgroupMatrixLoad<array<f32, 256>>(&BS, ', 'emuLoadB(')
      .replaceAll('subgroupMatrixMultiplyAccumulate(', 'emuMma(')
      .replaceAll('subgroupMatrixStore(&OS, ', 'emuStore(');
  }
  return src;
});

/** Per-invocation emulation of the subgroup-matrix builtins the kernel uses (tests only; matrices as [row][col] arrays, the layouts of the Dawn spec). */
const SG_EMU = /* wgsl */ `
fn emuLoadA(off: u32, cm: bool, s: u32) -> array<f32, 256> { var m: array<f32, 256>; for (var r = 0u; r < 16u; r++) { for (var c = 0u; c < 16u; c++) { m[r * 16u + c] = f32(AS[select(off + r * s + c, off + c * s + r, cm)]); } } return m; }
fn emuLoadB(off: u32, cm: bool, s: u32) -> array<f32, 256> { var m: array<f32, 256>; for (var r = 0u; r < 16u; r++) { for (var c = 0u; c < 16u; c++) { m[r * 16u + c] = f32(BS[select(off + r * s + c, off + c * s + r, cm)]); } } return m; }
fn emuMma(a: array<f32, 256>, b: array<f32, 256>, c: array<f32, 256>) -> array<f32, 256> { var o = c; for (var m = 0u; m < 16u; m++) { for (var n = 0u; n < 16u; n++) { var s = 0.0; for (var k = 0u; k < 16u; k++) { s = fma(a[m * 16u + k], b[k * 16u + n], s); } o[m * 16u + n] += s; } } return o; }
fn emuStore(off: u32, m: array<f32, 256>, cm: bool, s: u32) { for (var r = 0u; r < 16u; r++) { for (var c = 0u; c < 16u; c++) { OS[select(off + r * s + c, off + c * s + r, cm)] = m[r * 16u + c]; } } }
`;

/** Workgroup memory of the subgroup-matrix kernel with 128-row tiles (the larger), bytes. */
export const SGMAT_WORKGROUP_BYTES = 2 * 128 * SG_STR + 2 * FAST_TNW * SG_STR + 4 * 16 * FAST_TNW + 12 * 128 + 16;

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
