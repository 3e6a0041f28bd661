/**
 * Dense linear layer: y[T,N] = x[T,K] @ W[N,K]^T (+ bias[N]). x and y are
 * float32; W stays in its storage dtype (float32, bfloat16 or float16,
 * 16-bit types packed two per u32); accumulation in f32.
 *
 * Three paths, chosen by T and N (plan.ts linearPath):
 * - GEMV (T <= 32 past the skinny kernel's rule: linears of more than 256 outputs):
 *   one workgroup per (token, output column); 256 threads
 *   split K (16-bit weights with even K read one u32 = two weights at a
 *   time), then a tree reduction in workgroup memory in a fixed order.
 * - Tiled (the rest): 64x64 output tiles, 16-deep K slices staged in workgroup
 *   memory, 4x4 outputs per thread; each output sums k = 0..K-1 in order.
 *   Where the tiles are few (a router's N of 8-384 outputs), K is split into
 *   S slices (plan.ts linearSplitK): each tile and slice is a workgroup
 *   writing its partial sums, and a second dispatch adds the S partials in
 *   slice order, then the bias.
 * - Skinny (routers of few outputs at many tokens, plan.ts linearPath): a workgroup per 1, 2 or 4 tokens
 *   (SKINNY_TOKENS; plan.ts linearSkinnyTokens: fewer where the workgroups would be few) x SKINNY_OUTPUTS outputs,
 *   its 256 lanes splitting K (16-byte loads of x and 4 weights where K % 4 == 0), each lane holding all sums of the
 *   block, then a fixed-order reduction in workgroup memory: every weight load serves the block's tokens and every x
 *   load 8 outputs, with no padded outputs (the tiles compute 64 columns for a router's 8) and no second dispatch.
 * All are deterministic (no atomics).
 */
import type { DType } from '@webmoe/tensor';
import { DTYPES, DTypeError, ShapeError, ValueError, toFloat32, type HostTensor } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, foldWorkgroups, uniformFields, type BindingDecl, type Recorder } from '../runtime/kernel.js';
import { BF16_UNPACK_WGSL, FP8_DECODE_WGSL, loadFn, storageType } from '../wgsl.js';
import { linearPath, linearSkinnyTokens, linearSplitK, SKINNY_OUTPUTS, SKINNY_TOKENS, type LinearPath, type SkinnyTokens } from './plan.js';
import { allocOutput, expect2d, expectLive } from './op-util.js';

/** Weight dtypes `linearGpu` takes. */
export const LINEAR_WEIGHT_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
/** Weight dtype of `linearGpu`. */
export type LinearWeightDType = (typeof LINEAR_WEIGHT_DTYPES)[number];


/** Variant of the linear kernels. */
export type LinearVariant = {
  path: LinearPath;
  wdtype: LinearWeightDType;
  /** Bias storage dtype, or 'none'. */
  bdtype: DType | 'none';
  /** 16-bit weights with even K, read as u32 pairs (two weights per load). */
  pairs: boolean;
  /** Tiled path with K split into slices: Y holds the partial sums [S, T, N] (no bias), summed by linearSplitKReduceKernel. */
  splitK?: boolean;
  /** Skinny path with K % 4 == 0: x and weights read 4 columns at a time (X as vec4<f32>, 16-bit W as vec2<u32>). */
  vec4?: boolean;
  /** Skinny path: tokens of one workgroup (one of SKINNY_TOKENS). */
  tw?: SkinnyTokens;
};

/**
 * What the WGSL of a linear's inputs depends on (LinearVariant's fields): the weight and bias dtypes, whether x and the
 * weights are read 4 columns at a time, 16-bit weights read in pairs, and the split-K partials (no bias read).
 */
export type LinearInputs = Pick<LinearVariant, 'wdtype' | 'bdtype'> & Partial<Pick<LinearVariant, 'pairs' | 'splitK' | 'vec4'>>;

/** The bindings of a linear's inputs: X (f32, or vec4 with v.vec4), W (its storage dtype), B (the bias, unless none or split-K). */
export function linearInputBindings(v: LinearInputs): BindingDecl[] {
  const b: BindingDecl[] = [
    { name: 'X', type: v.vec4 ? 'array<vec4<f32>>' : 'array<f32>', access: 'read' },
    { name: 'W', type: v.vec4 ? (v.wdtype === 'float32' ? 'array<vec4<f32>>' : 'array<vec2<u32>>') : storageType(v.wdtype), access: 'read' },
  ];
  if (v.bdtype !== 'none' && !v.splitK) b.push({ name: 'B', type: storageType(v.bdtype), access: 'read' });
  return b;
}

function bindingsFor(v: LinearVariant): BindingDecl[] {
  return [...linearInputBindings(v), { name: 'Y', type: 'array<f32>', access: 'read_write' }];
}

function biasCode(v: LinearVariant, n: string): string {
  return v.bdtype === 'none' ? '0.0' : `ldb(${n})`;
}

/** The WGSL function decoding a u32 of two 16-bit weights into vec2<f32> (the `pairs` variants). */
function pairDecoder(v: LinearVariant): string {
  return v.wdtype === 'bfloat16' ? 'unpack2x16bf16' : 'unpack2x16float';
}

/**
 * WGSL loaders of a linear's inputs (bound as linearInputBindings gives): `ldw(i)` (weight i) or with v.vec4 `ldw4(i)`
 * (weights 4i..4i+3), and `ldb(n)` (bias n) unless none or split-K; with v.pairs the bf16 pair decoder.
 */
export function linearLoadersWgsl(v: LinearInputs): string {
  return `
${v.bdtype !== 'none' && DTYPES[v.bdtype].bytes === 1 ? FP8_DECODE_WGSL : ''}
${v.pairs && v.wdtype === 'bfloat16' ? BF16_UNPACK_WGSL : ''}
${v.vec4 ? vec4WeightLoader(v.wdtype) : loadFn('ldw', 'W', v.wdtype)}
${v.bdtype !== 'none' && !v.splitK ? loadFn('ldb', 'B', v.bdtype) : ''}
`;
}

/** WGSL `fn ldw4(i: u32) -> vec4<f32>`: weights 4i..4i+3 (the skinny path's vec4 variant; W bound as bindingsFor gives). */
function vec4WeightLoader(d: LinearWeightDType): string {
  switch (d) {
    case 'float32':
      return 'fn ldw4(i: u32) -> vec4<f32> { return W[i]; }';
    case 'bfloat16':
      return 'fn ldw4(i: u32) -> vec4<f32> { let w = W[i]; return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u)); }';
    case 'float16':
      return 'fn ldw4(i: u32) -> vec4<f32> { let w = W[i]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }';
  }
}

/** K steps of the GEMV path's loop issued together per lane. */
const UNROLL = 4;

function gemvSource(v: LinearVariant): string {
  // One workgroup per (token, output column): 256 threads split K, then a
  // fixed-order tree reduction. Small-N linears (router logits, shared-expert
  // gate) get T*N workgroups instead of one per 8 columns.
  // The K loop steps UNROLL * WG at a time with an inner loop of constant trip count: the compiler unrolls it and
  // issues its loads together (one lane's loads are otherwise one round trip each: 8.6 us for Qwen3's
  // router at T = 1 on the H200, against 2.1 us for an empty dispatch). The sum keeps its order (k = li, li + WG, ..).
  const loop = v.pairs
    ? `
  let rowWord = (n * u.K) >> 1u;
  let halfK = u.K >> 1u;
  let xb = t * u.K;
  for (var p0 = li; p0 < halfK; p0 += ${UNROLL}u * WG) {
    for (var q = 0u; q < ${UNROLL}u; q++) {
      let p = p0 + q * WG;
      if (p < halfK) {
        let wv = ${pairDecoder(v)}(W[rowWord + p]);
        acc = acc + (X[xb + 2u * p] * wv.x + X[xb + 2u * p + 1u] * wv.y);
      }
    }
  }`
    : `
  let row = n * u.K;
  for (var k0 = li; k0 < u.K; k0 += ${UNROLL}u * WG) {
    for (var q = 0u; q < ${UNROLL}u; q++) {
      let kk = k0 + q * WG;
      if (kk < u.K) { acc = acc + X[t * u.K + kk] * ldw(row + kk); }
    }
  }`;
  return /* wgsl */ `
${linearLoadersWgsl(v)}
const WG = 256u;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let blk = wid.x + wid.y * nwg.x;
  if (blk >= u.nGroups) { return; }
  let t = blk / u.N;
  let n = blk % u.N;
  var acc = 0.0;${loop}
  red[li] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { Y[t * u.N + n] = red[0] + ${biasCode(v, 'n')}; }
}
`;
}

function tiledSource(v: LinearVariant): string {
  // Weights: element-wise through ldw, or (16-bit, even K) one u32 = two
  // weights per load: 512 words per 16x64 slice, two per thread.
  const wload = v.pairs
    ? `for (var i = 0u; i < 2u; i++) {
      let q = li + i * 256u;
      let kk = (q % 8u) * 2u;
      let r = q / 8u;
      let gk = k0 + kk;
      var w0 = 0.0;
      var w1 = 0.0;
      if (n0 + r < u.N && gk < kEnd) {
        let word = W[((n0 + r) * u.K + gk) >> 1u];
        let h = ${pairDecoder(v)}(word); w0 = h.x; w1 = h.y;
      }
      Bs[kk * BN + r] = w0;
      Bs[(kk + 1u) * BN + r] = w1;
    }`
    : `for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let kk = e % BK;
      let r = e / BK;
      let gk = k0 + kk;
      var w = 0.0;
      if (n0 + r < u.N && gk < kEnd) { w = ldw((n0 + r) * u.K + gk); }
      Bs[kk * BN + r] = w;
    }`;
  return /* wgsl */ `
${linearLoadersWgsl(v)}
const BM = 64u;
const BN = 64u;
const BK = 16u;
var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let blk = wid.x + wid.y * nwg.x;
  if (blk >= u.nGroups) { return; }
  // K slice ks of [0, K) (one slice, all of K, without splitK), then the output tile
  let ks = blk / u.tilesMN;
  let tile = blk % u.tilesMN;
  let kBegin = ks * u.kPer;
  let kEnd = min(u.K, kBegin + u.kPer);
  let m0 = (tile / u.tilesN) * BM;
  let n0 = (tile % u.tilesN) * BN;
  let tx = li % 16u;
  let ty = li / 16u;
  var acc: array<f32, 16>;
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let kk = e % BK;
      let r = e / BK;
      let gk = k0 + kk;
      var a = 0.0;
      if (m0 + r < u.T && gk < kEnd) { a = X[(m0 + r) * u.K + gk]; }
      As[kk * BM + r] = a;
    }
    ${wload}
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[kk * BM + ty * 4u + i]; b[i] = Bs[kk * BN + tx * 4u + i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + tx * 4u + j;
    if (n >= u.N) { continue; }
    ${v.splitK ? '' : `let b = ${biasCode(v, 'n')};`}
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + ty * 4u + i;
      if (m < u.T) { ${v.splitK ? 'Y[(ks * u.T + m) * u.N + n] = acc[i * 4u + j];' : 'Y[m * u.N + n] = acc[i * 4u + j] + b;'} }
    }
  }
}
`;
}


function skinnySource(v: LinearVariant): string {
  // linearGpu sets tw on every skinny variant (linearSkinnyTokens or LinearOptions.skinnyTokens): no default here
  const tw = v.tw;
  if (tw === undefined) throw new ValueError('linear skinny variant tw', SKINNY_TOKENS.join(' | '), tw);
  const ts = Array.from({ length: tw }, (_, i) => i);
  const ns = Array.from({ length: SKINNY_OUTPUTS }, (_, j) => j);
  // chunk q of a row: 4 columns (vec4) or one
  const fma = (i: number, j: number) => (v.vec4 ? `a${i}_${j} += dot(x${i}, w);` : `a${i}_${j} += x${i} * w;`);
  // one reduction pass per token row i of the block: its SKINNY_OUTPUTS sums over the 256 lanes, 8 lanes at a time
  // then the 32 groups in order (lane order: a fixed sum order for every output)
  const pass = (i: number) => `
  ${ns.map((j) => `red[${j}u * WG + li] = a${i}_${j};`).join(' ')}
  workgroupBarrier();
  {
    let j = li / 32u;
    let s = li % 32u;
    var v = 0.0;
    for (var r = 0u; r < 8u; r++) { v += red[j * WG + s * 8u + r]; }
    red2[j * 32u + s] = v;
  }
  workgroupBarrier();
  if (li < ${SKINNY_OUTPUTS}u) {
    var v = 0.0;
    for (var s = 0u; s < 32u; s++) { v += red2[li * 32u + s]; }
    let t = t0 + ${i}u;
    let n = n0 + li;
    if (t < u.T && n < u.N) { Y[t * u.N + n] = v + ${biasCode(v, 'n')}; }
  }`;
  return /* wgsl */ `
${linearLoadersWgsl(v)}
const WG = 256u;
var<workgroup> red: array<f32, ${SKINNY_OUTPUTS * 256}>;
var<workgroup> red2: array<f32, ${SKINNY_OUTPUTS * 32}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let blk = wid.x + wid.y * nwg.x;
  if (blk >= u.nGroups) { return; }
  // token block (consecutive workgroups share it: its x rows stay in cache) and output block
  let t0 = (blk / u.nb) * ${tw}u;
  let n0 = (blk % u.nb) * ${SKINNY_OUTPUTS}u;
  // rows past T or N read the last row (their sums are not stored); u.kc chunks of ${v.vec4 ? 4 : 1} per row
${ts.map((i) => `  let xr${i} = min(t0 + ${i}u, u.T - 1u) * u.kc;`).join('\n')}
${ns.map((j) => `  let wr${j} = min(n0 + ${j}u, u.N - 1u) * u.kc;`).join('\n')}
${ts.map((i) => `  ${ns.map((j) => `var a${i}_${j} = 0.0;`).join(' ')}`).join('\n')}
  for (var q = li; q < u.kc; q += WG) {
${ts.map((i) => `    let x${i} = X[xr${i} + q];`).join('\n')}
${ns.map((j) => `    { let w = ${v.vec4 ? 'ldw4' : 'ldw'}(wr${j} + q); ${ts.map((i) => fma(i, j)).join(' ')} }`).join('\n')}
  }
  // passes need no barrier between them: a pass's reads of red end before its second barrier, its reads of red2
  // before the next pass's first
${ts.map((i) => pass(i)).join('\n')}
}
`;
}

/** The linear kernel (GEMV, tiled and skinny paths, selected by the variant). */
export const linearKernel = defineKernel<LinearVariant>('linear', (v) => (v.path === 'gemv' ? gemvSource(v) : v.path === 'skinny' ? skinnySource(v) : tiledSource(v)), {
  signature: (v) => ({
    bindings: bindingsFor(v),
    uniforms: v.path === 'skinny' ? uniformFields('u32', 'T', 'K', 'N', 'nb', 'kc', 'nGroups') : uniformFields('u32', 'T', 'K', 'N', 'tilesN', 'tilesMN', 'kPer', 'nGroups'),
  }),
});

/** The split-K tiled linear's second dispatch: Y[i] = sum over slices s = 0..S-1 (in order) of P[s, i], plus bias[i % N]. */
export const linearSplitKReduceKernel = defineKernel<{ bdtype: DType | 'none' }>(
  'linear_splitk_reduce',
  (v) => /* wgsl */ `
${v.bdtype !== 'none' && DTYPES[v.bdtype].bytes === 1 ? FP8_DECODE_WGSL : ''}
${v.bdtype !== 'none' ? loadFn('ldb', 'B', v.bdtype) : ''}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let tn = u.T * u.N;
  if (i >= tn) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.S; k++) { s = s + P[k * tn + i]; }
  Y[i] = s${v.bdtype !== 'none' ? ' + ldb(i % u.N)' : ''};
}
`,
  {
    signature: (v) => ({
      bindings: [
        { name: 'P', type: 'array<f32>', access: 'read' },
        ...(v.bdtype !== 'none' ? [{ name: 'B', type: storageType(v.bdtype), access: 'read' } as const] : []),
        { name: 'Y', type: 'array<f32>', access: 'read_write' },
      ],
      uniforms: uniformFields('u32', 'T', 'N', 'S'),
    }),
  },
);

/** The linear's kernels (module doc); linearGpu's `path` option. */
export const LINEAR_PATHS: readonly LinearPath[] = ['gemv', 'tiled', 'skinny'];

/** Every kernel linearGpu can run, the skinny one once per tokens-per-workgroup count: what tests and probes sweep. */
export const LINEAR_KERNELS: readonly LinearKernel[] = LINEAR_PATHS.flatMap((path): LinearKernel[] =>
  path === 'skinny' ? SKINNY_TOKENS.map((skinnyTokens) => ({ path, skinnyTokens })) : [{ path }],
);

/** One entry of {@link LINEAR_KERNELS}: linearGpu's `path` and `skinnyTokens` options. */
export interface LinearKernel {
  readonly path: LinearPath;
  readonly skinnyTokens?: SkinnyTokens;
}

/** Options of {@link linearGpu}. */
export interface LinearOptions {
  /** Bias [N] in any float dtype. */
  bias?: GpuTensor;
  /** Allocate the output from this pool. */
  pool?: BufferPool;
  /** The kernel (tests / tuning). Default plan.ts's linearPath by T and N. */
  path?: LinearPath;
  /** The skinny kernel's tokens per workgroup (tests / tuning; one of SKINNY_TOKENS). Default plan.ts's linearSkinnyTokens. */
  skinnyTokens?: SkinnyTokens;
}

function checkWeightDType(what: string, d: DType): asserts d is LinearWeightDType {
  if (!(LINEAR_WEIGHT_DTYPES as readonly string[]).includes(d)) throw new DTypeError(what, LINEAR_WEIGHT_DTYPES, d);
}
function checkBiasDType(what: string, d: DType): void {
  if (!DTYPES[d].isFloat) throw new DTypeError(what, ['float32', 'bfloat16', 'float16', 'float8_e4m3fn', 'float8_e5m2'], d);
}

/**
 * Checks a GPU linear's inputs (`what`: the caller's name in errors; typed errors, before anything is allocated):
 * x float32 [T, K], w [N, K] in a LINEAR_WEIGHT_DTYPES dtype, the bias [N] (or [1, N]) in a float dtype.
 * @example `const { T, K, N, wdtype } = checkLinearGpuInputs('linearGpu', x, w, bias)`
 */
export function checkLinearGpuInputs(what: string, x: GpuTensor, w: GpuTensor, bias: GpuTensor | undefined): { T: number; K: number; N: number; wdtype: LinearWeightDType } {
  expectLive(what, { x, w, bias });
  if (x.dtype !== 'float32') throw new DTypeError(`${what} x`, 'float32', x.dtype);
  const [T, K] = expect2d(`${what} x [T, K]`, x.shape);
  checkWeightDType(`${what} w`, w.dtype);
  const [N, Kw] = expect2d(`${what} w [N, K]`, w.shape);
  if (Kw !== K) throw new ShapeError(`${what} w [N, K]`, [N, K], w.shape);
  if (K < 1 || N < 1) throw new ValueError(`${what} K and N`, 'both >= 1', { K, N });
  if (bias) {
    checkBiasDType(`${what} bias`, bias.dtype);
    if (bias.size !== N || bias.shape.length > 2 || (bias.shape.length === 2 && bias.shape[0] !== 1)) throw new ShapeError(`${what} bias`, [N], bias.shape);
  }
  return { T, K, N, wdtype: w.dtype };
}

/**
 * Records y[T,N] = x[T,K] @ W[N,K]^T (+ bias[N]) into `rec`. x float32,
 * W float32 / bfloat16 / float16 in storage type, bias any float dtype.
 * Returns a new float32 [T,N] tensor owned by the caller.
 *
 * Two call forms: the contract's `linearGpu(ctx, rec, x, w, bias, opts)`
 * (bias a GpuTensor, or null/undefined) and `linearGpu(ctx, rec, x, w,
 * { bias, pool })`.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx);
 * const y = linearGpu(ctx, rec, x, w, bias, { pool }); // x [T,K] f32, w [N,K] bf16
 * const z = linearGpu(ctx, rec, x, w, { bias, pool }); // the same
 * rec.submit();
 * ```
 */
export function linearGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, w: GpuTensor, bias?: GpuTensor | null, opts?: { pool?: BufferPool }): GpuTensor;
export function linearGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, w: GpuTensor, opts?: LinearOptions): GpuTensor;
export function linearGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, w: GpuTensor, a?: GpuTensor | LinearOptions | null, b?: { pool?: BufferPool }): GpuTensor {
  const opts: LinearOptions = a instanceof GpuTensor ? { bias: a, pool: b?.pool } : a ? a : { pool: b?.pool };
  const bias = opts.bias;
  const { T, K, N, wdtype } = checkLinearGpuInputs('linearGpu', x, w, bias);
  const path = opts.path ?? linearPath(T, N, ctx.adapterInfo.software);
  if (!LINEAR_PATHS.includes(path)) throw new ValueError('linearGpu path', LINEAR_PATHS.join(' | '), path);
  if (opts.skinnyTokens !== undefined && !(SKINNY_TOKENS as readonly number[]).includes(opts.skinnyTokens)) throw new ValueError('linearGpu skinnyTokens', SKINNY_TOKENS.join(' | '), opts.skinnyTokens);
  const y = allocOutput(ctx, opts.pool, 'float32', [T, N], 'linear.out');
  if (T === 0) return y;
  const tilesN = Math.ceil(N / 64);
  const tilesMN = Math.ceil(T / 64) * tilesN;
  // the tiled path's K slices (a multiple of the 16-deep staging), 1 without a split
  const S = path === 'tiled' ? linearSplitK(tilesMN, K) : 1;
  const kPer = S > 1 ? Math.ceil(K / S / 16) * 16 : K;
  const slices = Math.ceil(K / kPer);
  const variant: LinearVariant = {
    path,
    wdtype,
    bdtype: bias ? bias.dtype : 'none',
    pairs: wdtype !== 'float32' && K % 2 === 0,
  };
  if (slices > 1) variant.splitK = true;
  let params: Record<string, number>;
  if (path === 'skinny') {
    // blocks of tw tokens x SKINNY_OUTPUTS outputs; K in chunks of 4 where it divides
    const nb = Math.ceil(N / SKINNY_OUTPUTS);
    const tw = opts.skinnyTokens ?? linearSkinnyTokens(T, N, K, ctx.adapterInfo.software);
    variant.tw = tw;
    if (K % 4 === 0) variant.vec4 = true;
    params = { T, K, N, nb, kc: variant.vec4 ? K / 4 : K, nGroups: Math.ceil(T / tw) * nb };
  } else {
    params = { T, K, N, tilesN, tilesMN, kPer, nGroups: path === 'gemv' ? T * N : tilesMN * slices };
  }
  try {
    // every (tile, slice) workgroup writes its partial sums in full: reused from the scratch cache
    const partials = slices > 1 ? rec.temp(slices * T * N * 4, 'linear.partials', { reuse: true }) : undefined;
    const bind: Record<string, GPUBuffer> = { X: x.buffer, W: w.buffer, Y: partials ?? y.buffer };
    if (bias && !partials) bind.B = bias.buffer;
    rec.dispatch({ kernel: linearKernel, variant, bind, params, workgroups: foldWorkgroups(ctx, params.nGroups) });
    if (partials) {
      const rb: Record<string, GPUBuffer> = { P: partials, Y: y.buffer };
      if (bias) rb.B = bias.buffer;
      rec.dispatch({ kernel: linearSplitKReduceKernel, variant: { bdtype: bias ? bias.dtype : 'none' }, bind: rb, params: { T, N, S: slices }, workgroups: foldWorkgroups(ctx, Math.ceil((T * N) / 256)) });
    }
  } catch (e) {
    y.destroy();
    throw e;
  }
  return y;
}

/**
 * Checks the arguments of a host linear (`what`: the caller's name in errors): W [N, K] and the bias as f32.
 * @example `const { N, K } = linearHostCall('linearRef', x, T, w)`
 */
export function linearHostCall(what: string, x: Float32Array, T: number, w: HostTensor, bias?: HostTensor): { N: number; K: number; bf: Float32Array | undefined } {
  checkWeightDType(`${what} w`, w.dtype);
  const [N, K] = expect2d(`${what} w [N, K]`, w.shape);
  if (x.length !== T * K) throw new ShapeError(`${what} x`, `${T * K} values ([${T}, ${K}])`, `${x.length} values`);
  let bf: Float32Array | undefined;
  if (bias) {
    checkBiasDType(`${what} bias`, bias.dtype);
    if (bias.size !== N) throw new ShapeError(`${what} bias`, [N], bias.shape);
    bf = toFloat32(bias.dtype, bias.data);
  }
  return { N, K, bf };
}

/**
 * The TypeScript reference of {@link linearGpu}: y[T,N] = x[T,K] @ W^T
 * (+ bias), W converted from its storage dtype to f32, sums in f64 rounded
 * to f32 at the end.
 *
 * @example
 * ```ts
 * const y = linearRef(x, T, HostTensor.fromFloat32([N, K], wVals, 'bfloat16'));
 * ```
 */
export function linearRef(x: Float32Array, T: number, w: HostTensor, bias?: HostTensor): Float32Array {
  const { N, K, bf } = linearHostCall('linearRef', x, T, w, bias);
  const wf = toFloat32(w.dtype, w.data);
  const y = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    const xo = t * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * wf[wo + k];
      y[t * N + n] = s + (bf ? bf[n] : 0);
    }
  }
  return y;
}
