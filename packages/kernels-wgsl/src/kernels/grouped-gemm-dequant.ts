/**
 * Packed expert weights decoded to an f16 dense stack in one pass: the prefill path that decodes a range of experts
 * once per call into a scratch buffer and runs the subgroup-matrix GEMM on those f16 weights (FastGemmPlan.dequant),
 * instead of decoding every weight tile again for every row tile of its expert in the GEMM's staging step.
 *
 * The values are the staging step's: packedHalfPairsWgsl's wdecq (code x scale in f32, rounded to f16; NaN codes
 * NaN), or for bfloat16 weights halfPairsWgsl's wdech (each value rounded to f16), so a GEMM on the decoded stack
 * multiplies the same f16 tiles as the GEMM that decodes at staging. The stored weights stay packed; the scratch
 * (one buffer per recorder, grouped-gemm-fast.ts dequantScratch) holds one range of f16 experts, at most
 * KERNEL_CROSSOVERS.sgmatDequant.maxScratchBytes. plan.ts's sgmatDequantExperts takes this path for packed weights
 * from 512 grouped rows per expert, where decoding once costs less than decoding in every row tile's staging.
 */
import { ShapeError, ValueError } from '@webmoe/tensor';
import { defineKernel, foldWorkgroups, uniformFields, type Recorder } from '../runtime/kernel.js';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { ExpertWeightsGpu } from './moe-types.js';
import type { FastGemmVariant } from './grouped-gemm-fast-shapes.js';
import { fastVpl, halfPairsWgsl, isPackedFormat, packedHalfPairsWgsl, weightAccessWgsl, weightBind, weightBindings } from './grouped-gemm-fast-weights-wgsl.js';
import { weightLayout } from './grouped-gemm-weights.js';
import { expertDims } from './expert-weights.js';

/** What the decoding depends on: the packed format (or bfloat16: converted to f16), int scale dtype, zero points, and 16-byte code loads. */
export type DequantHalfVariant = Pick<FastGemmVariant, 'wf' | 'sd' | 'zp' | 'wide'>;

const WG = 256;

/** One invocation per load of V values (fastVpl): its f16 pairs (V / 8 vec4<u32>) at the values' place in OUT. */
export const dequantHalfKernel = defineKernel<DequantHalfVariant>(
  'dequant_f16',
  (v) => {
    const fv = v as FastGemmVariant;
    const V = fastVpl(fv);
    return /* wgsl */ `
${weightAccessWgsl(fv)}
${v.wf === 'bfloat16' ? `${halfPairsWgsl(fv)}\nfn wdecq(w: vec4<u32>) -> array<vec4<u32>, 1> { return array<vec4<u32>, 1>(wdech(w)); }` : packedHalfPairsWgsl(fv)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= u.n) { return; }
  // load i: expert e0 + i / (wRows * K / V), its row, and V values from column col
  let upr = u.K / ${V}u;
  let er = i / upr;
  let col = (i - er * upr) * ${V}u;
  let h = wdecq(wload(u.e0 + er / u.wRows, er % u.wRows, col));
  for (var j = 0u; j < ${V / 8}u; j++) { OUT[i * ${V / 8}u + j] = h[j]; }
}
`;
  },
  {
    signature: (v) => ({
      bindings: [...weightBindings(v as FastGemmVariant), { name: 'OUT', type: 'array<vec4<u32>>', access: 'read_write' }],
      uniforms: uniformFields('u32', 'n', 'K', 'wRows', 'e0', 'wa', 'wb', 'wc', 'wd'),
      f16: true,
    }),
  },
);

/** Whether the decoding pass takes weights of format `wf` (a WeightFormat): the packed formats, and bfloat16 (converted). */
export function dequantHalfSupports(wf: FastGemmVariant['wf']): boolean {
  return wf === 'bfloat16' || isPackedFormat(wf);
}

/** Bytes of the f16 stack of `experts` experts of `rows` x `cols` weights (what {@link recordDequantHalf} writes). */
export function dequantHalfBytes(experts: number, rows: number, cols: number): number {
  return experts * rows * cols * 2;
}

/**
 * Records the decoding of experts [e0, e0 + experts) of the packed container `w` (K = its cols, a multiple of the
 * variant's values per load) into `out` as f16 [experts, rows, K] (row-major, the layout of a dense float16 stack).
 * `wide`: 16-byte code loads (fastWeightFormat's `wide` for this container and K).
 * @example `recordDequantHalf(rec, w, 0, 2, scratch, true)`
 */
export function recordDequantHalf(rec: Recorder, w: ExpertWeightsGpu, e0: number, experts: number, out: GPUBuffer, wide: boolean): void {
  const d = expertDims(w, 'recordDequantHalf weights');
  const layout = weightLayout(w, d);
  if (!dequantHalfSupports(layout.wf)) throw new ValueError('recordDequantHalf weights', 'a packed format (fp8_block, int_block, mxfp4) or bfloat16', layout.wf);
  const v: DequantHalfVariant = { wf: layout.wf, sd: layout.sd, zp: layout.zp, wide };
  const V = fastVpl(v as FastGemmVariant);
  if (d.cols % V !== 0) throw new ShapeError('recordDequantHalf weights', `K a multiple of ${V} (values per load)`, `K = ${d.cols}`);
  if (!(Number.isInteger(e0) && Number.isInteger(experts) && e0 >= 0 && experts >= 1 && e0 + experts <= d.E)) {
    throw new ValueError('recordDequantHalf experts', `a range inside [0, ${d.E})`, `[${e0}, ${e0 + experts})`);
  }
  const need = dequantHalfBytes(experts, d.rows, d.cols);
  if (out.size < need) throw new ShapeError('recordDequantHalf out', `at least ${need} bytes`, `${out.size} bytes`);
  const n = (experts * d.rows * d.cols) / V;
  rec.dispatch({
    kernel: dequantHalfKernel,
    variant: v,
    bind: { ...weightBind(v as FastGemmVariant, layout.buffers), OUT: out },
    params: { n, K: d.cols, wRows: d.rows, e0, ...layout.params },
    workgroups: foldWorkgroups(rec.ctx, Math.ceil(n / WG)),
  });
}

/** A dense float16 container over `buffer` holding `experts` experts of rows x cols (not owning the buffer). */
export function halfStackOver(ctx: GpuContext, buffer: GPUBuffer, experts: number, rows: number, cols: number): ExpertWeightsGpu {
  return { kind: 'dense', w: new GpuTensor(ctx, 'float16', [experts, rows, cols], buffer) };
}
