/**
 * Decode-path expert GEMMs: few rows per expert (token generation). The
 * weights of each expert that got tokens are read exactly once, at full
 * width (16-byte loads of 8 bf16/f16 values), by a grid that covers only the
 * active experts (indirect dispatch built on the GPU: no host round trip).
 * Same contract as groupedGateUpGpu / groupedDownGpu (grouped row order), so
 * the layer picks either by rows per expert.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, Recorder, Uniforms } from '../runtime/kernel.js';
import { LimitError } from '../runtime/errors.js';
import type { ExpertActivation, ExpertWeightsGpu, GroupingGpu } from './moe-types.js';


/** Outputs per workgroup (one per 32-lane group). */
const GROUPS = 8;
const LANES = 32;
/** Token rows accumulated at once per weight load. */
const MR = 4;

type DenseDtype = 'float32' | 'bfloat16' | 'float16';

/** Variant of the decode GEMV kernels. */
export type GemvVariant = {
  /** Weight storage dtype. */
  wdtype: DenseDtype;
  /** cols % 8 == 0: 8-wide vector loads. */
  vec8: boolean;
  /** 'gate_up' (two rows per output + activation) or 'down'. */
  mode: 'gate_up' | 'down';
  act: 'silu' | 'swiglu_limit' | 'swigluoai' | 'none';
  interleaved: boolean;
  bias: boolean;
  rowScale: boolean;
  bdtype: DenseDtype;
};

/** WGSL: `fn wload8(base: u32) -> array<f32, 8>` reading 8 consecutive weights starting at flat element base (base % 8 == 0 when vec8), and `fn wload1(i: u32) -> f32`. */
function weightLoaders(d: DenseDtype, vec8: boolean): string {
  const one =
    d === 'float32'
      ? `fn wload1(i: u32) -> f32 { return W[i]; }`
      : d === 'bfloat16'
        ? `fn wload1(i: u32) -> f32 { let w = W[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`
        : `fn wload1(i: u32) -> f32 { let v = unpack2x16float(W[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }`;
  let eight: string;
  if (!vec8) {
    eight = `fn wload8(base: u32) -> array<f32, 8> { var r: array<f32, 8>; for (var j = 0u; j < 8u; j++) { r[j] = wload1(base + j); } return r; }`;
  } else if (d === 'float32') {
    eight = `fn wload8(base: u32) -> array<f32, 8> { let q = base >> 2u; let a = W4[q]; let b = W4[q + 1u]; return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w); }`;
  } else if (d === 'bfloat16') {
    eight = `fn wload8(base: u32) -> array<f32, 8> { let v = W4[base >> 3u];
  return array<f32, 8>(bitcast<f32>(v.x << 16u), bitcast<f32>(v.x & 0xffff0000u), bitcast<f32>(v.y << 16u), bitcast<f32>(v.y & 0xffff0000u),
                       bitcast<f32>(v.z << 16u), bitcast<f32>(v.z & 0xffff0000u), bitcast<f32>(v.w << 16u), bitcast<f32>(v.w & 0xffff0000u)); }`;
  } else {
    eight = `fn wload8(base: u32) -> array<f32, 8> { let v = W4[base >> 3u];
  let a = unpack2x16float(v.x); let b = unpack2x16float(v.y); let c = unpack2x16float(v.z); let e = unpack2x16float(v.w);
  return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, e.x, e.y); }`;
  }
  return `${one}\n${eight}`;
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

/**
 * The decode GEMV. Workgroup (bx, by): output block bx (GROUPS outputs), active
 * expert slot by. Lanes of a group split the reduction dimension in 8-wide
 * chunks; partial sums are reduced in workgroup memory in a fixed order.
 */
export const gemvKernel = defineKernel<GemvVariant>('moe_gemv', (v) => {
  const gu = v.mode === 'gate_up';
  const wdecl = v.wdtype === 'float32' ? 'array<f32>' : 'array<u32>';
  const w4decl = v.wdtype === 'float32' ? 'array<vec4<f32>>' : 'array<vec4<u32>>';
  const NA = gu ? 2 : 1; // accumulators per row
  return /* wgsl */ `
struct P { rows: u32, cols: u32, nout: u32, k: u32, limit: f32, alpha: f32, nblocks: u32, _p: u32, }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> ${v.vec8 ? 'W4' : 'W'}: ${v.vec8 ? w4decl : wdecl};
@group(0) @binding(2) var<storage, read> Counts: array<u32>;
@group(0) @binding(3) var<storage, read> Offsets: array<u32>;
@group(0) @binding(4) var<storage, read> Order: array<u32>;
@group(0) @binding(5) var<storage, read> Active: array<u32>;
@group(0) @binding(6) var<storage, read_write> Y: array<f32>;
${v.bias ? `@group(0) @binding(7) var<storage, read> B: ${v.bdtype === 'float32' ? 'array<f32>' : 'array<u32>'};` : ''}
${v.rowScale ? `@group(0) @binding(${v.bias ? 8 : 7}) var<storage, read> S: array<f32>;` : ''}
@group(0) @binding(${7 + (v.bias ? 1 : 0) + (v.rowScale ? 1 : 0)}) var<uniform> p: P;
${v.vec8 ? (v.wdtype === 'float32' ? '' : '') : ''}
${v.vec8 ? weightLoaders(v.wdtype, true).replace(/fn wload1[^\n]*\n/, '') : weightLoaders(v.wdtype, false)}
${v.bias ? biasLoader(v.bdtype) : ''}
${actWgsl(v.act)}
var<workgroup> red: array<f32, ${GROUPS * LANES * MR * NA}>;
var<workgroup> wcnt: u32;
@compute @workgroup_size(${LANES}, ${GROUPS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = Active[wid.y];
  let off = Offsets[e];
  if (lid.x == 0u && lid.y == 0u) { wcnt = Counts[e]; }
  let cnt = workgroupUniformLoad(&wcnt);
  let lane = lid.x;
  let g = lid.y;
  let o = wid.x * ${GROUPS}u + g;           // output index within [0, nout)
  let valid = o < p.nout;
  // weight rows of this output
  ${
    gu
      ? `let rg = select(o, 2u * o, ${v.interleaved});
  let ru = select(o + p.nout, 2u * o + 1u, ${v.interleaved});`
      : `let rg = o;`
  }
  let ebase = e * p.rows * p.cols;
  let nchunks = (p.cols + 7u) / 8u;
  for (var m0 = 0u; m0 < cnt; m0 += ${MR}u) {
    var ag: array<f32, ${MR}>;
    ${gu ? `var au: array<f32, ${MR}>;` : ''}
    var xrow: array<u32, ${MR}>;
    for (var m = 0u; m < ${MR}u; m++) {
      let r = min(m0 + m, cnt - 1u);
      ${gu ? `xrow[m] = (Order[off + r] / p.k) * p.cols;` : `xrow[m] = (off + r) * p.cols;`}
      ag[m] = 0.0; ${gu ? 'au[m] = 0.0;' : ''}
    }
    if (valid) {
      for (var c = lane; c < nchunks; c += ${LANES}u) {
        let col = c * 8u;
        ${
          v.vec8
            ? `let wg = wload8(ebase + rg * p.cols + col);${gu ? `\n        let wu = wload8(ebase + ru * p.cols + col);` : ''}
        for (var m = 0u; m < ${MR}u; m++) {
          let xb = xrow[m] + col;
          for (var j = 0u; j < 8u; j++) {
            let xv = X[xb + j];
            ag[m] = fma(xv, wg[j], ag[m]);${gu ? `\n            au[m] = fma(xv, wu[j], au[m]);` : ''}
          }
        }`
            : `let lim = min(8u, p.cols - col);
        for (var j = 0u; j < lim; j++) {
          let wgv = wload1(ebase + rg * p.cols + col + j);${gu ? `\n          let wuv = wload1(ebase + ru * p.cols + col + j);` : ''}
          for (var m = 0u; m < ${MR}u; m++) {
            let xv = X[xrow[m] + col + j];
            ag[m] = fma(xv, wgv, ag[m]);${gu ? `\n            au[m] = fma(xv, wuv, au[m]);` : ''}
          }
        }`
        }
      }
    }
    for (var m = 0u; m < ${MR}u; m++) {
      red[((g * ${MR}u + m) * ${NA}u + 0u) * ${LANES}u + lane] = ag[m];
      ${gu ? `red[((g * ${MR}u + m) * ${NA}u + 1u) * ${LANES}u + lane] = au[m];` : ''}
    }
    workgroupBarrier();
    // fixed-order tree reduction over the 32 lanes
    for (var s = ${LANES / 2}u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var q = 0u; q < ${MR * NA}u; q++) {
          let b = (g * ${MR * NA}u + q) * ${LANES}u;
          red[b + lane] = red[b + lane] + red[b + lane + s];
        }
      }
      workgroupBarrier();
    }
    if (valid && lane < ${MR}u && m0 + lane < cnt) {
      let m = lane;
      let row = off + m0 + m;
      var sg = red[((g * ${MR}u + m) * ${NA}u + 0u) * ${LANES}u];
      ${gu ? `var su = red[((g * ${MR}u + m) * ${NA}u + 1u) * ${LANES}u];` : ''}
      ${v.rowScale ? `let sc = S[Order[row]]; sg = sg * sc;${gu ? ' su = su * sc;' : ''}` : ''}
      ${v.bias ? `sg = sg + bload(e * p.rows + rg);${gu ? ' su = su + bload(e * p.rows + ru);' : ''}` : ''}
      Y[row * p.nout + o] = ${gu ? 'act(sg, su)' : 'sg'};
    }
    workgroupBarrier();
  }
}
`;
});

/** Builds the active-expert list and indirect dispatch args on the GPU. */
export const activeExpertsKernel = defineKernel<{ n: number }>('moe_active_experts', () => /* wgsl */ `
struct P { E: u32, nbx: u32, _a: u32, _b: u32, }
@group(0) @binding(0) var<storage, read> Counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> Active: array<u32>;
@group(0) @binding(2) var<storage, read_write> Args: array<u32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(1)
fn main() {
  var n = 0u;
  for (var e = 0u; e < p.E; e++) {
    if (Counts[e] > 0u) { Active[n] = e; n++; }
  }
  Args[0] = p.nbx; Args[1] = n; Args[2] = 1u;
}
`);

/** Options of the decode GEMVs. */
export interface GemvOptions {
  pool?: BufferPool;
  bias?: GpuTensor;
  rowScale?: GpuTensor;
}

function checkDense(what: string, w: ExpertWeightsGpu): GpuTensor {
  if (w.kind !== 'dense') throw new ValueError(`${what} weights`, "kind 'dense' (quantized decode GEMV not available)", w.kind);
  const d = w.w.dtype;
  if (d !== 'float32' && d !== 'bfloat16' && d !== 'float16') throw new DTypeError(`${what} weights`, ['float32', 'bfloat16', 'float16'], d);
  if (w.w.shape.length !== 3) throw new ShapeError(`${what} weights`, '[E, rows, cols]', w.w.shape);
  return w.w;
}

function gemv(
  ctx: GpuContext,
  rec: Recorder,
  x: GpuTensor,
  g: GroupingGpu,
  wt: GpuTensor,
  mode: 'gate_up' | 'down',
  act: ExpertActivation | undefined,
  opts: GemvOptions,
): GpuTensor {
  const [E, rows, cols] = wt.shape;
  if (E !== g.E) throw new ShapeError(`${mode} weights experts`, [g.E, rows, cols], wt.shape);
  const nout = mode === 'gate_up' ? rows / 2 : rows;
  if (mode === 'gate_up' && rows % 2 !== 0) throw new ShapeError('gate_up weights', '[E, 2I, H] with an even row count', wt.shape);
  const xRows = mode === 'gate_up' ? g.T : g.T * g.k;
  if (x.dtype !== 'float32' || x.shape.length !== 2 || x.shape[0] !== xRows || x.shape[1] !== cols) {
    throw new ShapeError(`${mode} input`, [xRows, cols], x.shape);
  }
  if (opts.bias && (opts.bias.size !== E * rows)) throw new ShapeError(`${mode} bias`, [E, rows], opts.bias.shape);
  if (opts.rowScale && opts.rowScale.size !== g.T * g.k) throw new ShapeError('rowScale', [g.T, g.k], opts.rowScale.shape);
  const bd = opts.bias?.dtype;
  if (bd && bd !== 'float32' && bd !== 'bfloat16' && bd !== 'float16') throw new DTypeError(`${mode} bias`, ['float32', 'bfloat16', 'float16'], bd);
  const nbx = Math.ceil(nout / GROUPS);
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (nbx > max) throw new LimitError('maxComputeWorkgroupsPerDimension', nbx, max, `${mode} output blocks`);
  const y = opts.pool ? opts.pool.tensor('float32', [g.T * g.k, nout], `${mode}.out`) : GpuTensor.empty(ctx, 'float32', [g.T * g.k, nout], `${mode}.out`);
  const active = rec.temp(4 * Math.max(E, 1), 'active');
  const args = rec.temp(16, 'indirect');
  rec.dispatch({ kernel: activeExpertsKernel, variant: { n: 0 }, buffers: [g.counts.buffer, active, args], uniforms: new Uniforms().u32(E, nbx).finish(), workgroups: [1] });
  const variant: GemvVariant = {
    wdtype: wt.dtype as DenseDtype,
    vec8: cols % 8 === 0,
    mode,
    act: mode === 'gate_up' ? act!.kind : 'none',
    interleaved: mode === 'gate_up' && act!.layout === 'interleaved',
    bias: !!opts.bias,
    rowScale: mode === 'gate_up' && !!opts.rowScale,
    bdtype: (bd ?? 'float32') as DenseDtype,
  };
  const buffers = [x.buffer, wt.buffer, g.counts.buffer, g.offsets.buffer, g.order.buffer, active, y.buffer];
  if (opts.bias) buffers.push(opts.bias.buffer);
  if (variant.rowScale) buffers.push(opts.rowScale!.buffer);
  rec.dispatch({
    kernel: gemvKernel,
    variant,
    buffers,
    uniforms: new Uniforms().u32(rows, cols, nout, g.k).f32(act?.limit ?? 0, act?.alpha ?? 1.702).u32(nbx, 0).finish(),
    workgroups: { indirect: args },
  });
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
export function gemvGateUpGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, g: GroupingGpu, w: ExpertWeightsGpu, act: ExpertActivation, opts: GemvOptions = {}): GpuTensor {
  const wt = checkDense('gate_up', w);
  if ((act.kind === 'swiglu_limit' || act.kind === 'swigluoai') && !(typeof act.limit === 'number' && act.limit > 0)) {
    throw new ValueError('activation limit', 'a positive number', act.limit);
  }
  return gemv(ctx, rec, x, g, wt, 'gate_up', act, opts);
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
export function gemvDownGpu(ctx: GpuContext, rec: Recorder, h: GpuTensor, g: GroupingGpu, w: ExpertWeightsGpu, opts: Omit<GemvOptions, 'rowScale'> = {}): GpuTensor {
  const wt = checkDense('down', w);
  return gemv(ctx, rec, h, g, wt, 'down', undefined, opts);
}

