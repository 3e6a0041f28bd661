/**
 * WGSL of the grouped expert GEMMs, declared by signature (named bindings and
 * uniforms, runtime/kernel.ts): the tile-offset kernel, the tiled GEMM
 * (gate_up fused with the activation, or down) with per-format weight
 * decoding inside the tile loads (grouped-gemm-weights.ts), and the fp8
 * dynamic activation quantiser.
 */
import { defineKernel, uniformFields, type BindingDecl, type Recorder, type UniformField } from '../runtime/kernel.js';
import type { GpuTensor } from '../runtime/tensor.js';
import { inclusiveScanWgsl, loadFn } from '../wgsl.js';
import { expertActWgsl } from './activation-wgsl.js';
import { WEIGHT_UNIFORMS, WORD_VALUES, weightBindings, weightWgsl, wordWgsl, type WeightFormat } from './grouped-gemm-weights.js';

// the weight layer's names that the fast kernels (grouped-gemm-fast*.ts) import from here
export { intZeroWgsl, weightLayout, type WeightFormat } from './grouped-gemm-weights.js';

/**
 * Variant of the grouped GEMM kernel (selects the WGSL; shapes go in uniforms).
 * @example
 * ```ts
 * const v: GroupedGemmVariant = { op: 'down', act: 'none', interleaved: false, wf: 'bfloat16', sd: 'none', bias: 'none', xmode: 'grouped', rowScale: false, tm: 32, tn: 32, rm: 4, rn: 4 };
 * ```
 */
export type GroupedGemmVariant = {
  /** 'gate_up' (two weight rows per output, activation fused) or 'down'. */
  op: 'gate_up' | 'down';
  /** gate_up activation. */
  act: 'silu' | 'swiglu_limit' | 'swigluoai' | 'none';
  /** gate_up row layout. */
  interleaved: boolean;
  /** Weight storage format. */
  wf: WeightFormat;
  /** Scale dtype of int formats ('none' otherwise). */
  sd: 'float32' | 'float16' | 'none';
  /** int formats: per-block zero-point codes in a WZ binding (u8, same index as the scales); absent/false: 8 / 128. */
  zp?: boolean;
  /** Bias dtype or 'none'. */
  bias: 'float32' | 'bfloat16' | 'float16' | 'none';
  /** Which row of X feeds grouped row p: 'token' = order[p] / k, 'pair' = order[p], 'grouped' = p. */
  xmode: 'token' | 'pair' | 'grouped';
  /** Multiply the X row by rowScale[order[p]]. */
  rowScale: boolean;
  /** Weights per u32 word decoded at once in the tile loads (1 = element by element; 2/4/8 need cols % vec == 0). */
  vec: number;
  /** With vec > 1: one scale per word (the scale block width is a multiple of vec). */
  s1: boolean;
  /** Tile: rows, outputs, per-thread rows, per-thread outputs (threads = TM/RM * TN/RN = 64). */
  tm: number;
  tn: number;
  rm: number;
  rn: number;
};

/** Inner-dimension step of the tiles. @example `Math.ceil(K / TK) // K steps` */
export const TK = 16;
/** Threads per GEMM workgroup. @example `(tm / rm) * (tn / rn) === GEMM_THREADS` */
export const GEMM_THREADS = 64;

/**
 * Uniform block of the GEMM, in order (u32 unless noted). E, N and wRows are
 * the dispatched chunk's (experts, outputs, weight rows per expert; the whole
 * stack when it is one chunk); wa..wd the weight uniforms (WEIGHT_UNIFORMS);
 * Y row p, output o is written at p * ys + yo + o (ys: the stack's outputs,
 * yo: the chunk's first output).
 * @example `GEMM_UNIFORM_FIELDS.length // 16 words`
 */
export const GEMM_UNIFORM_FIELDS: readonly UniformField[] = [
  ...uniformFields('u32', 'nRows', 'k', 'E', 'K', 'N', 'wRows', 'nTilesN', 'nWork'),
  ...WEIGHT_UNIFORMS,
  ...uniformFields('f32', 'limit', 'alpha'),
  ...uniformFields('u32', 'yo', 'ys'),
];

/** Threads of tileOffsetsKernel: experts per step of its scan. */
const TILE_SCAN = 256;

/**
 * Which rows tileOffsetsKernel tiles: every row of each expert in `tm`-row tiles (no `tail`, no `of`); with `tail`, the
 * rows of each expert past its last full `tm`-row tile only where they are more than `tail` (the rest is left to a tail
 * dispatch); with `of`, only those rest rows (the rows past the last full `of`-row tile, where they are at most `tm`:
 * one `tm`-row tile of the expert), META then also holding each expert's end row.
 */
export type TileOffsetsVariant = { tm: number; tail?: number; of?: number };

/**
 * Tile offsets of experts e0..e0+E-1 (uniforms E, e0; a chunk of a chunked
 * stack, or all experts with e0 = 0): meta[0..E] = offsets[e0..e0+E] (with `of`:
 * meta[e] = the first row past expert e's full `of`-row tiles),
 * meta[E+1+e] = first M-tile of expert e0+e (sum of ceil(count/TM) before
 * it, or the tile counts TileOffsetsVariant says), meta[2E+1] = total tiles
 * (with `of`: meta[2E+2+e] = the end row of expert e). One workgroup: each thread reads one
 * expert's offsets at a time, TILE_SCAN experts per step, and a workgroup
 * scan sums the tiles (one lane reading the experts in turn took ~20 us for
 * Qwen3's 128 experts on an H100, ~10 us for Mixtral's 8: session 28 call 3's
 * per-kernel times). Integer sums: the same words in any order.
 * @example `rec.dispatch({ kernel: tileOffsetsKernel, variant: { tm: 32 }, bind: { OFF: offsets, META: meta }, params: { E, e0: 0 }, workgroups: [1] })`
 */
export const tileOffsetsKernel = defineKernel<TileOffsetsVariant>(
  'grouped_gemm_tiles',
  ({ tm, tail, of }) => /* wgsl */ `
var<workgroup> sc: array<u32, ${TILE_SCAN}>;
@compute @workgroup_size(${TILE_SCAN})
fn main(@builtin(local_invocation_index) li: u32) {
  // the scan's steps: up to the experts of one step (uniform)
  let width = min(u.E, ${TILE_SCAN}u);
  var acc = 0u; // tiles of the experts of earlier steps (the same in every thread)
  for (var base = 0u; base < u.E; base += ${TILE_SCAN}u) {
    let e = base + li;
    var c = 0u;
    if (e < u.E) {
      let a = OFF[u.e0 + e];
      let n = OFF[u.e0 + e + 1u] - a;
${
  of
    ? `      // the rows past the expert's full ${of}-row tiles, where they fit one ${tm}-row tile
      let full = (n / ${of}u) * ${of}u;
      META[e] = a + full;
      META[2u * u.E + 2u + e] = a + n;
      c = select(0u, 1u, n > full && n - full <= ${tm}u);`
    : tail
      ? `      META[e] = a;
      // full tiles, and a last partial one only where it holds more than ${tail} rows (else the tail dispatch's)
      c = n / ${tm}u + select(0u, 1u, n % ${tm}u > ${tail}u);`
      : `      META[e] = a;
      c = (n + ${tm - 1}u) / ${tm}u;`
}
    }
    sc[li] = c;
    workgroupBarrier();
    // inclusive scan over the step's experts
${inclusiveScanWgsl(['sc'], TILE_SCAN, 'width')}
    if (e < u.E) { META[u.E + 1u + e] = acc + sc[li] - c; }
    acc += sc[min(u.E - base, ${TILE_SCAN}u) - 1u]; // the step's last expert: its inclusive sum
    workgroupBarrier(); // every thread has read sc before the next step writes it
  }
  if (li == 0u) {
    META[u.E] = OFF[u.e0 + u.E];
    META[2u * u.E + 1u] = acc;
  }
}
`,
  {
    signature: () => ({
      bindings: [
        { name: 'OFF', type: 'array<u32>', access: 'read' },
        { name: 'META', type: 'array<u32>', access: 'read_write' },
      ],
      uniforms: uniformFields('u32', 'E', 'e0'),
    }),
  },
);

/**
 * Where one dispatch of a grouped GEMM sits in its stack: experts
 * [e0, e0 + experts), outputs [o0, o0 + its N) of each (a chunk of a
 * chunked stack; the whole stack: e0 = 0, experts = E, o0 = 0).
 */
export interface GemmChunkPlace {
  e0: number;
  experts: number;
  o0: number;
}

/** Scratch shared by the dispatches of one grouped GEMM call (its chunks): tile offsets per (tile rows, expert range), the x row maxima. */
export interface GemmCallScratch {
  meta: Map<string, GPUBuffer>;
  xAmax?: GPUBuffer;
  /** Subgroup-matrix GEMM with f16 x rows (FastGemmVariant.xh): the rows and their 1 / scale. */
  xHalf?: { xh: GPUBuffer; ru: GPUBuffer };
}

/** The tile offsets recorded per recording and grouping (tileOffsetsOf). */
const recordedTileOffsets = new WeakMap<Recorder, WeakMap<GpuTensor, Map<string, GPUBuffer>>>();

/**
 * The tile offsets (GemmCallScratch.meta) that the GEMM calls of one recording share for one grouping's `offsets`:
 * a layer's gate_up and down GEMMs take the same row tiles (plan.ts sizes both by rows per expert), so the second
 * call finds the first's META instead of dispatching tile_offsets again. Safe within a recording: its temps are held
 * until submit (a Recorder records once), and a grouping's offsets are written once, by the grouping that made them.
 * @example `const scratch: GemmCallScratch = { meta: tileOffsetsOf(rec, g.offsets) }`
 */
export function tileOffsetsOf(rec: Recorder, offsets: GpuTensor): Map<string, GPUBuffer> {
  let byGrouping = recordedTileOffsets.get(rec);
  if (!byGrouping) recordedTileOffsets.set(rec, (byGrouping = new WeakMap()));
  let meta = byGrouping.get(offsets);
  if (!meta) byGrouping.set(offsets, (meta = new Map()));
  return meta;
}

/**
 * Records (once per recording, grouping, expert range and tile rows: GemmCallScratch.meta) the tile offsets of experts
 * [e0, e0 + experts) for `tm`-row tiles (`split`: only the rows TileOffsetsVariant's tail / of say); returns the META
 * buffer.
 * @example `const meta = recordTileOffsets(rec, g.offsets.buffer, 32, { e0: 0, experts: E, o0: 0 }, scratch)`
 */
export function recordTileOffsets(rec: Recorder, offsets: GPUBuffer, tm: number, place: GemmChunkPlace, scratch: GemmCallScratch, split: Omit<TileOffsetsVariant, 'tm'> = {}): GPUBuffer {
  const key = `${tm}:${split.tail ?? ''}:${split.of ?? ''}:${place.e0}:${place.experts}`;
  let meta = scratch.meta.get(key);
  if (!meta) {
    const E = place.experts;
    meta = rec.temp(((split.of ? 3 : 2) * E + 2) * 4, 'grouped_gemm.meta', { reuse: true }); // written in full by tile_offsets
    rec.dispatch({ kernel: tileOffsetsKernel, variant: { tm, ...split }, bind: { OFF: offsets, META: meta }, params: { E, e0: place.e0 }, workgroups: [1] });
    scratch.meta.set(key, meta);
  }
  return meta;
}

/**
 * WGSL statements (inside `if (lid == 0u)`) that find the expert e and the grouped rows [r0, r1) of work item w from
 * the tile offsets META (tileOffsetsKernel: row offsets [E + 1], then tile starts [E + 1]) for row tiles of `tm`:
 * binary search over the tile starts; e = r0 = r1 = 0 past the work (u.nWork, u.E, u.nTilesN: the kernel's uniforms),
 * and nt its column tile; `ends`: the rows end at META's end rows (TileOffsetsVariant.of), not at the next expert's
 * first row. Shared by the tiled and the fast grouped GEMMs.
 *
 * The order of the work items: without `band`, row tile w / u.nTilesN and column tile w % u.nTilesN (the
 * column tiles of one row tile are consecutive). With `band` = G (the fast kernels' FastGemmVariant.band), within
 * each expert the row tiles go in bands of G, and within a band the G row tiles of one column tile are consecutive:
 * the workgroups that read the same weight tile run together, so an expert's weights come from memory about once
 * per band instead of once per row tile (the expert's w / u.nTilesN range is the same in both orders, so the
 * same search finds it).
 */
export function expertTileWgsl(tm: number, band?: number, ends = false): string {
  const place = band
    ? `// banded: this expert's m row tiles in bands of ${band}; inside a band, column tile by column tile
        let m = META[ts + e + 1u] - META[ts + e];
        let local = w - META[ts + e] * u.nTilesN;
        let b = local / (${band}u * u.nTilesN);
        let g = min(${band}u, m - b * ${band}u);
        let rest = local - b * ${band}u * u.nTilesN;
        nt = rest / g;
        r0 = META[e] + (b * ${band}u + rest % g) * ${tm}u;`
    : `nt = w % u.nTilesN;
        r0 = META[e] + (mt - META[ts + e]) * ${tm}u;`;
  return `    var e = 0u;
    var r0 = 0u;
    var r1 = 0u;
    var nt = 0u;
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
        ${place}
        r1 = min(r0 + ${tm}u, ${ends ? 'META[2u * u.E + 2u + e]' : 'META[e + 1u]'});
      }
    }`;
}

/**
 * The grouped GEMM's storage bindings (read-only but Y): X (input rows), ORDER (grouped order), META (tile
 * offsets), RS with rowScale, the weight bindings (weightBindings: WQ, WS, WZ), BIAS (u32 words unless f32)
 * when the variant has one, then Y.
 */
function gemmBindings(v: GroupedGemmVariant): BindingDecl[] {
  const read = (name: string, type = 'array<f32>'): BindingDecl => ({ name, type, access: 'read' });
  const b = [read('X'), read('ORDER', 'array<u32>'), read('META', 'array<u32>')];
  if (v.rowScale) b.push(read('RS'));
  b.push(...weightBindings(v));
  if (v.bias !== 'none') b.push(read('BIAS', v.bias === 'float32' ? 'array<f32>' : 'array<u32>'));
  b.push({ name: 'Y', type: 'array<f32>', access: 'read_write' });
  return b;
}

/** The grouped GEMM's WGSL body (see groupedGemmKernel). */
function gemmWgsl(v: GroupedGemmVariant): string {
  const { tm, tn, rm, rn } = v;
  const tx = tn / rn;
  if ((tm / rm) * tx !== GEMM_THREADS || tm % rm || tn % rn) throw new Error(`grouped_gemm: bad tile ${tm}x${tn}/${rm}x${rn}`);
  if (![1, 2, 4, 8].includes(v.vec) || (v.vec > 1 && v.vec !== WORD_VALUES[v.wf]) || TK % v.vec) throw new Error(`grouped_gemm: bad vec ${v.vec} for ${v.wf}`);
  const fused = v.op === 'gate_up';
  const nw = fused ? 2 : 1;
  const gateRow = v.interleaved ? '2u * o' : 'o';
  const upRow = v.interleaved ? '2u * o + 1u' : 'u.N + o';
  const xrow = v.xmode === 'token' ? 'pair / u.k' : v.xmode === 'pair' ? 'pair' : 'p';
  const accDecl = `var acc: array<f32, ${rm * rn}>;` + (fused ? ` var accu: array<f32, ${rm * rn}>;` : '');
  const inner = fused
    ? `for (var c = 0u; c < ${rn}u; c++) { let wg = WS_T[kk * ${tn}u + tx + c * ${tx}u]; let wu = WS_T[${tn * TK}u + kk * ${tn}u + tx + c * ${tx}u]; for (var r = 0u; r < ${rm}u; r++) { acc[r * ${rn}u + c] = fma(a[r], wg, acc[r * ${rn}u + c]); accu[r * ${rn}u + c] = fma(a[r], wu, accu[r * ${rn}u + c]); } }`
    : `for (var c = 0u; c < ${rn}u; c++) { let wv = WS_T[kk * ${tn}u + tx + c * ${tx}u]; for (var r = 0u; r < ${rm}u; r++) { acc[r * ${rn}u + c] = fma(a[r], wv, acc[r * ${rn}u + c]); } }`;
  const V = v.vec;
  // weights past N or K staged as zero: explicit zero values (lavapipe kept a bare array declaration's values from one
  // loop iteration to the next in another kernel)
  const wloadVec = fused
    ? `var gv = array<f32, ${V}>(); var uv = array<f32, ${V}>(); if (o < u.N && col < u.K) { gv = wvec(e, ${gateRow}, col); uv = wvec(e, ${upRow}, col); } for (var i = 0u; i < ${V}u; i++) { WS_T[(kk + i) * ${tn}u + n] = gv[i]; WS_T[${tn * TK}u + (kk + i) * ${tn}u + n] = uv[i]; }`
    : `var wv = array<f32, ${V}>(); if (o < u.N && col < u.K) { wv = wvec(e, o, col); } for (var i = 0u; i < ${V}u; i++) { WS_T[(kk + i) * ${tn}u + n] = wv[i]; }`;
  const wload = fused
    ? `var gv = 0.0; var uv = 0.0; if (o < u.N && col < u.K) { gv = wld(e, ${gateRow}, col); uv = wld(e, ${upRow}, col); } WS_T[kk * ${tn}u + n] = gv; WS_T[${tn * TK}u + kk * ${tn}u + n] = uv;`
    : `var wv = 0.0; if (o < u.N && col < u.K) { wv = wld(e, o, col); } WS_T[kk * ${tn}u + n] = wv;`;
  const bias = (row: string) => (v.bias === 'none' ? '0.0' : `bld(e * u.wRows + ${row})`);
  const epilogue = fused
    ? `let h = act(acc[i] + ${bias(gateRow)}, accu[i] + ${bias(upRow)}); Y[p * u.ys + u.yo + o] = h;`
    : `Y[p * u.ys + u.yo + o] = acc[i] + ${bias('o')};`;
  return /* wgsl */ `
${weightWgsl(v)}
${v.vec > 1 ? wordWgsl(v) : ''}
${v.bias === 'none' ? '' : loadFn('bld', 'BIAS', v.bias)}
${fused ? expertActWgsl(v.act) : ''}
var<workgroup> XS: array<f32, ${tm * TK}>;
var<workgroup> WS_T: array<f32, ${tn * TK * nw}>;
var<workgroup> ROWX: array<u32, ${tm}>;
var<workgroup> ROWM: array<f32, ${tm}>;
var<workgroup> shE: u32;
var<workgroup> shR0: u32;
var<workgroup> shR1: u32;

@compute @workgroup_size(${GEMM_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (lid == 0u) {
${expertTileWgsl(tm)}
    shE = e;
    shR0 = r0;
    shR1 = r1;
  }
  let e = workgroupUniformLoad(&shE);
  let r0 = workgroupUniformLoad(&shR0);
  let r1 = workgroupUniformLoad(&shR1);
  if (r1 <= r0) { return; }
  let n0 = (w % u.nTilesN) * ${tn}u;
  if (lid < ${tm}u) {
    var xb = 0u;
    var m = 0.0;
    let p = r0 + lid;
    if (p < r1) {
      let pair = ORDER[p];
      xb = (${xrow}) * u.K;
      m = ${v.rowScale ? 'RS[pair]' : '1.0'};
    }
    ROWX[lid] = xb;
    ROWM[lid] = m;
  }
  workgroupBarrier();
  let tx = lid % ${tx}u;
  let ty = lid / ${tx}u;
  ${accDecl}
  for (var k0 = 0u; k0 < u.K; k0 += ${TK}u) {
    for (var j = lid; j < ${tm * TK}u; j += ${GEMM_THREADS}u) {
      let r = j / ${TK}u;
      let kk = j % ${TK}u;
      let col = k0 + kk;
      var xv = 0.0;
      if (r0 + r < r1 && col < u.K) { xv = X[ROWX[r] + col]${v.rowScale ? ' * ROWM[r]' : ''}; }
      XS[kk * ${tm}u + r] = xv;
    }
    for (var j = lid; j < ${(tn * TK) / V}u; j += ${GEMM_THREADS}u) {
      let n = j / ${TK / V}u;
      let kk = (j % ${TK / V}u) * ${V}u;
      let col = k0 + kk;
      let o = n0 + n;
      ${V > 1 ? wloadVec : wload}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      var a: array<f32, ${rm}>;
      for (var r = 0u; r < ${rm}u; r++) { a[r] = XS[kk * ${tm}u + ty + r * ${tm / rm}u]; }
      ${inner}
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${rm}u; r++) {
    let p = r0 + ty + r * ${tm / rm}u;
    if (p >= r1) { continue; }
    for (var c = 0u; c < ${rn}u; c++) {
      let o = n0 + tx + c * ${tx}u;
      if (o >= u.N) { continue; }
      let i = r * ${rn}u + c;
      ${epilogue}
    }
  }
}
`;
}

/**
 * The grouped GEMM. Workgroup w handles M-tile w / nTilesN (found by binary
 * search in the tile offsets; idle tiles return) and N-tile w % nTilesN.
 * Each K step loads a TM x TK tile of gathered input rows and one (down) or
 * two (gate_up: gate and up rows of the same outputs) TN x TK weight tiles,
 * decoded from their storage type, into workgroup memory.
 * @example `await warmPipeline(ctx, groupedGemmKernel, variant)` (normally through `groupedGateUpGpu` / `groupedDownGpu`)
 */
export const groupedGemmKernel = defineKernel<GroupedGemmVariant>('grouped_gemm', gemmWgsl, {
  signature: (v) => ({ bindings: gemmBindings(v), uniforms: GEMM_UNIFORM_FIELDS }),
});

/** Variant of the activation quantiser. @example `{ rowScale: false, clamp: true }` */
export type ActQuantVariant = { rowScale: boolean; clamp: boolean };

/**
 * fp8 e4m3 dynamic fake-quantisation of activation rows: one thread per
 * (row, 128-channel group). Input row r reads X row r / kdiv (times RS[r]
 * with rowScale). scale = amax/448, q = e4m3(x/scale) (nearest even,
 * saturating), out = q * scale; amax 0 gives 0.
 * @example `await warmPipeline(ctx, actQuantKernel, { rowScale: false, clamp: false })`
 */
export const actQuantKernel = defineKernel<ActQuantVariant>(
  'act_quant_fp8',
  (v) => /* wgsl */ `
fn e4m3_round(x: f32) -> f32 {
  let a = min(abs(x), 448.0);
  var r = 0.0;
  if (a < 0.015625) {
    r = round(a * 512.0) * 0.001953125;
  } else {
    let fe = frexp(a);
    r = ldexp(round(ldexp(fe.fract, 4)), fe.exp - 4);
  }
  r = min(r, 448.0);
  return select(r, -r, x < 0.0);
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  if (t >= u.rows * u.groups) { return; }
  let row = t / u.groups;
  let c0 = (t % u.groups) * 128u;
  let c1 = min(c0 + 128u, u.cols);
  let xb = (row / u.kdiv) * u.cols;
  let m = ${v.rowScale ? 'RS[row]' : '1.0'};
  var amax = 0.0;
  for (var c = c0; c < c1; c++) { amax = max(amax, abs(X[xb + c]${v.rowScale ? ' * m' : ''})); }
  ${v.clamp ? 'amax = min(amax, u.clampv);' : ''}
  let ob = row * u.cols;
  if (!(amax > 0.0)) {
    for (var c = c0; c < c1; c++) { Y[ob + c] = 0.0; }
    return;
  }
  let s = amax / 448.0;
  for (var c = c0; c < c1; c++) { Y[ob + c] = e4m3_round(X[xb + c]${v.rowScale ? ' * m' : ''} / s) * s; }
}
`,
  {
    signature: (v) => ({
      bindings: [
        { name: 'X', type: 'array<f32>', access: 'read' },
        ...(v.rowScale ? [{ name: 'RS', type: 'array<f32>', access: 'read' } as const] : []),
        { name: 'Y', type: 'array<f32>', access: 'read_write' },
      ],
      uniforms: [...uniformFields('u32', 'rows', 'cols', 'kdiv', 'groups'), ...uniformFields('f32', 'clampv')],
    }),
  },
);
