/**
 * The decode down GEMV with the combine in it: one dispatch instead of the down GEMV (an expert's grouped rows per
 * workgroup) followed by the combine. Each workgroup row is a token: its k slots' weight rows are read one after
 * the other by the same lanes, each chunk's partial sum scaled by the slot's router weight, so that one accumulator
 * per output holds the weighted sum over the slots and a single reduction ends it; the slots' weighted biases and
 * the shared experts' output are added by the storing lane. Weights are read once per (token, slot): the same
 * bytes as the expert-major GEMV where the token's experts differ (T = 1), more where tokens share experts, so the
 * planner takes it for the fewest tokens only (plan.ts useCombinedDownGemv). The row-blocked path (moe-gemv-rows.ts)
 * only, one weight container (an unchunked stack).
 * Its reference: combineRef over groupedDownRef's rows (the same sums in another order: f32 rounding apart).
 */
import { ShapeError, ValueError, DTypeError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import type { BufferPool } from '../runtime/pool.js';
import type { Recorder } from '../runtime/kernel.js';
import type { GpuTensor } from '../runtime/tensor.js';
import { LimitError } from '../runtime/errors.js';
import { allocOutput, expectLive } from './op-util.js';
import { checkCombineInputs } from './combine.js';
import { expertDims } from './expert-weights.js';
import { KERNEL_CROSSOVERS, type GemvPackedKernel } from './plan.js';
import { gemvKernel } from './moe-gemv-kernel.js';
import { checkGemvBias, gemvWeights, kernelBlocking, packedPath, plannedKernel, rowsScaleBlocks, rowsVariantFields, type GemvWeights } from './moe-gemv.js';
import { GEMV_GROUPS as GROUPS, type DenseDtype, type GemvVariant } from './moe-gemv-snippets.js';
import type { ExpertStackGpu, GroupingGpu } from './moe-types.js';

/** Options of {@link gemvDownCombineGpu}. */
export interface GemvCombineOptions {
  /** Allocate the output from this pool (default: its own buffer). */
  pool?: BufferPool;
  /** Down bias [E, H] (float32, bfloat16 or float16), added per slot times its router weight. */
  bias?: GpuTensor;
  /** Shared experts' output, float32 [T, H], added to every token. */
  shared?: GpuTensor;
  /** Qwen2-MoE shared expert gate logit, float32 [T] (or [T, 1]): adds sigmoid(l) * shared. Needs `shared`. */
  sharedGateLogit?: GpuTensor;
  /** The row-blocked kernel ('rowsN', 'rowsNkS'; default: the planner's for T rows of one token each). */
  packedKernel?: GemvPackedKernel;
}

/** The weights and kernel the combined down GEMV takes for T tokens over `w` on an adapter of kind `software`, or why it does not. */
function combinedPlan(w: ExpertStackGpu, T: number, kernel: GemvPackedKernel | undefined, software: boolean): { gw: GemvWeights; kernel: GemvPackedKernel } | string {
  if (w.kind === 'chunked') return 'a chunked stack (one weight container per dispatch only)';
  let gw: GemvWeights;
  try {
    gw = gemvWeights('down', w);
  } catch (e) {
    return (e as Error).message;
  }
  const dense = gw.sdtype === 'none';
  // one token per workgroup row, over T rows of blocks: 16-bit weights on KERNEL_CROSSOVERS.combinedDownDenseKernel, packed
  // ones on the expert-major GEMV's kernel at one row per pass (the GPU rule on every adapter); never a staged-x kernel
  // (its slice holds one token row's x) nor an x-in-registers one (workgroupBytes 0: never a long-row kernel)
  const chosen = kernel ?? (dense ? KERNEL_CROSSOVERS.combinedDownDenseKernel[software ? 'software' : 'gpu'] : plannedKernel(1, T, gw, gw.rows, { software: false, workgroupBytes: 0 }, 'down'));
  if (packedPath(gw, chosen) !== 'rows') return `weights without the row-blocked path (${gw.wfmt}, ${gw.cols} columns, kernel ${chosen})`;
  if (kernelBlocking(chosen).xs) return `a staged-x kernel (${chosen}): its x slice is one token row's, the combined GEMV sums several`;
  if (kernelBlocking(chosen).xr) return `an x-in-registers kernel (${chosen}): not written for the combined GEMV's slots`;
  return { gw, kernel: chosen };
}

/**
 * Whether {@link gemvDownCombineGpu} takes these down weights for T tokens (k per token; the weights alone decide): an
 * unchunked stack on the row-blocked path (16-bit dense weights with H % 8 == 0; packed formats in whole 16-byte chunks
 * and scale blocks).
 * @example `if (gemvCombineSupports(w.down, 1, 8)) out = gemvDownCombineGpu(...)`
 */
export function gemvCombineSupports(w: ExpertStackGpu, T: number, k: number): boolean {
  return typeof combinedPlan(w, T, undefined, false) !== 'string';
}

/**
 * Records the down projection of the grouped rows `h` (float32 [T*k, I], in the row order of `g`) with the
 * combine: out[t] = sum over j (w[t, j] *) (h[position[t*k+j]] @ W[idx[t, j]]^T + bias[idx[t, j]]) (+ shared[t],
 * times sigmoid(sharedGateLogit[t]) when given), a new float32 [T, H] tensor owned by the caller. `weights` null:
 * the unweighted sum (applyRouterWeightFirst). Same meaning as combineGpu over gemvDownGpu's rows.
 *
 * @example
 * ```ts
 * const out = gemvDownCombineGpu(ctx, rec, h, grouping, routing.idx, routing.weights, w.down, { shared });
 * ```
 */
export function gemvDownCombineGpu(
  ctx: GpuContext,
  rec: Recorder,
  h: GpuTensor,
  g: GroupingGpu,
  idx: GpuTensor,
  weights: GpuTensor | null,
  w: ExpertStackGpu,
  opts: GemvCombineOptions = {},
): GpuTensor {
  const { T, k } = g;
  expectLive('gemvDownCombineGpu', { h, idx, weights, 'g.position': g.position, bias: opts.bias, shared: opts.shared, sharedGateLogit: opts.sharedGateLogit });
  const { E, rows: H, cols: I } = expertDims(w, 'down weights');
  if (E !== g.E) throw new ShapeError('gemvDownCombineGpu weights experts', [g.E, H, I], [E, H, I]);
  if (h.dtype !== 'float32' || h.shape.length !== 2 || h.shape[0] !== T * k || h.shape[1] !== I) throw new ShapeError('gemvDownCombineGpu input', [T * k, I], h.shape);
  if (idx.dtype !== 'uint32') throw new DTypeError('gemvDownCombineGpu idx', 'uint32', idx.dtype);
  if (idx.size !== T * k) throw new ShapeError('gemvDownCombineGpu idx', [T, k], idx.shape);
  checkCombineInputs('gemvDownCombineGpu', T, k, H, g.position, weights, opts);
  const plan = combinedPlan(w, T, opts.packedKernel, ctx.adapterInfo.software);
  if (typeof plan === 'string') throw new ValueError('gemvDownCombineGpu weights', 'an unchunked stack on the row-blocked GEMV path', plan);
  const { gw, kernel } = plan;
  const bias = opts.bias;
  if (bias) checkGemvBias('gemvDownCombineGpu bias', bias, E, H);
  const blocking = kernelBlocking(kernel);
  const { ro, ks } = blocking;
  const nbx = Math.ceil(H / ((GROUPS / ks) * ro));
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (nbx > max) throw new LimitError('maxComputeWorkgroupsPerDimension', nbx, max, 'down output blocks');
  if (T > max) throw new LimitError('maxComputeWorkgroupsPerDimension', T, max, 'combined down GEMV tokens');
  const out = allocOutput(ctx, opts.pool, 'float32', [T, H], 'down_combine.out');
  if (T === 0) return out;
  const { cb, cbPow2, cbs } = rowsScaleBlocks(gw);
  const { shared, sharedGateLogit: gate } = opts;
  const variant: GemvVariant = {
    wdtype: gw.wfmt,
    sdtype: gw.sdtype,
    vec8: true,
    mode: 'down',
    act: 'none',
    interleaved: false,
    bias: !!bias,
    rowScale: false,
    bdtype: (bias?.dtype ?? 'float32') as DenseDtype,
    wide: false,
    mr: 1,
    cbPow2,
    ...rowsVariantFields(blocking),
    combine: weights ? 'weighted' : 'sum',
    combineShared: gate ? 'gated' : shared ? 'shared' : 'none',
  };
  if (gw.zeros) variant.zp = true;
  const bind: Record<string, GPUBuffer> = { X4: h.buffer, W: gw.codes.buffer, Idx: idx.buffer, Pos: g.position.buffer, Y: out.buffer };
  if (weights) bind.WT = weights.buffer;
  if (shared) bind.SH = shared.buffer;
  if (gate) bind.GL = gate.buffer;
  if (bias) bind.B = bias.buffer;
  if (gw.scales) bind.QS = gw.scales.buffer;
  if (gw.zeros) bind.QZ = gw.zeros.buffer;
  const [s0, s1, s2, s3] = gw.su;
  try {
    rec.dispatch({
      kernel: gemvKernel,
      variant,
      bind,
      params: { rows: H, cols: I, nout: H, k, limit: 0, alpha: 1.702, s0, s1, s2, s3, eb: 0, ne: E, yo: 0, ys: H, cb, cbs },
      workgroups: [nbx, T, 1],
    });
  } catch (e) {
    out.destroy();
    throw e;
  }
  return out;
}
