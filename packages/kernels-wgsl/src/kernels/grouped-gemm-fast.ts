/**
 * Fast dense grouped GEMMs for prefill: selection, planning and recording of
 * the kernels in grouped-gemm-fast-wgsl.ts. `groupedGateUpGpu` /
 * `groupedDownGpu` route here (same contract, same results up to rounding)
 * when the weights are dense (float32 / bfloat16 / float16), K % 8 == 0 and
 * either `tile: 'fast'` is passed or the call is prefill-sized
 * (T*k >= 64*E). Which fast kernel runs:
 *
 * - 'subgroup-matrix' (tensor cores, f16 operands, f32 accumulation) when the
 *   device has chromium-experimental-subgroup-matrix + shader-f16 +
 *   subgroups, the adapter lists an f16 x f16 -> f32 16x16x16 config, its
 *   subgroup size is at most 32 and the workgroup memory suffices;
 * - else 'f32' (register-blocked, f32 staging: the tiled path's precision).
 *
 * 'f16' (register-blocked, operands staged as f16, f32 accumulation) runs
 * only when asked for (`fast: 'f16'`, needs shader-f16; else 'f32'): it
 * rounds x and w to f16 like the subgroup-matrix kernel, without tensor
 * cores. `fast: 'subgroup-matrix'` falls back to 'f32' where unsupported.
 */
import { ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import type { GpuTensor } from '../runtime/tensor.js';
import { foldWorkgroups, type Recorder, Uniforms, warmPipeline } from '../runtime/kernel.js';
import type { ExpertWeightsGpu } from './moe-types.js';
import { tileOffsetsKernel } from './grouped-gemm-wgsl.js';
import { FAST_TM, SGMAT_WORKGROUP_BYTES, groupedGemmFastKernel, groupedGemmSgmatKernel, type FastGemmVariant } from './grouped-gemm-fast-wgsl.js';

/** Which fast kernel. @example `groupedDownGpu(ctx, rec, h, g, w, undefined, { tile: 'fast', fast: 'f32' })` */
export type FastGemmKind = 'f32' | 'f16' | 'subgroup-matrix';

/** A planned fast GEMM (grid checked against the device limits before recording). */
export interface FastGemmPlan {
  kind: FastGemmKind;
  /** Rows per workgroup tile (64; subgroup-matrix: 64 or 128). */
  tm: number;
  nTilesN: number;
  nWork: number;
  grid: [number, number, number];
}

interface SgConfig {
  componentType?: string;
  resultComponentType?: string;
  M?: number;
  N?: number;
  K?: number;
}

/** Devices on which the subgroup-matrix pipeline failed to compile in warmGroupedGemmFast (the f32 kernel is used there). */
const sgmatBroken = new WeakSet<GPUDevice>();

/** Whether the subgroup-matrix kernel can run on this context (features, adapter configs, subgroup size, workgroup memory). */
export function sgmatSupported(ctx: GpuContext): boolean {
  if (sgmatBroken.has(ctx.device)) return false;
  const f = ctx.features;
  if (!f.subgroupMatrix || !f.shaderF16 || !f.subgroups) return false;
  if ((ctx.limits.maxComputeWorkgroupStorageSize ?? 0) < SGMAT_WORKGROUP_BYTES) return false;
  const info = (ctx.adapter as GPUAdapter & { info?: { subgroupMatrixConfigs?: readonly SgConfig[]; subgroupMaxSize?: number } }).info;
  const cfgs = info?.subgroupMatrixConfigs;
  if (!cfgs || !cfgs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16)) return false;
  const sgMax = info?.subgroupMaxSize;
  return typeof sgMax === 'number' && sgMax > 0 && sgMax <= 32;
}

/**
 * The fast kernel a context runs for a requested kind (default f32;
 * subgroup-matrix and f16 only when asked and available). The
 * subgroup-matrix kernel is opt-in: on the H200 (Dawn/Vulkan, 2026-11-28) it
 * ran at 94 TFLOP/s but its output disagreed with the reference (relative
 * error ~1.3), so it is not trusted by default until that is fixed.
 */
export function fastGemmKind(ctx: GpuContext, want?: FastGemmKind): FastGemmKind {
  if (want !== undefined && want !== 'f32' && want !== 'f16' && want !== 'subgroup-matrix') throw new ValueError('fast', "'f32' | 'f16' | 'subgroup-matrix' | undefined", want);
  if (want === 'subgroup-matrix' && sgmatSupported(ctx)) return 'subgroup-matrix';
  if (want === 'f16' && ctx.features.shaderF16) return 'f16';
  return 'f32';
}

/**
 * Plans the fast path, or returns undefined when the call must take the
 * tiled path: weights not dense, K % 8 != 0, actQuant on, or (without
 * `tile: 'fast'`) fewer than 64 rows per expert on average.
 */
export function planFastGemm(
  ctx: GpuContext,
  opts: { tile?: string; fast?: FastGemmKind; fastTileM?: 64 | 128; actQuant?: string },
  w: ExpertWeightsGpu,
  rows: number,
  E: number,
  N: number,
  K: number,
  op: 'gate_up' | 'down',
): FastGemmPlan | undefined {
  if (opts.tile !== undefined && opts.tile !== 'fast') return undefined;
  if (w.kind !== 'dense' || (opts.actQuant ?? 'none') !== 'none') return undefined;
  if (w.w.dtype !== 'float32' && w.w.dtype !== 'bfloat16' && w.w.dtype !== 'float16') return undefined;
  if (K % 8 !== 0 || K === 0 || rows === 0 || N === 0) return undefined;
  if (opts.tile !== 'fast' && rows < 64 * E) return undefined;
  if (opts.fastTileM !== undefined && opts.fastTileM !== 64 && opts.fastTileM !== 128) throw new ValueError('fastTileM', '64 | 128 | undefined', opts.fastTileM);
  const kind = fastGemmKind(ctx, opts.fast);
  // Subgroup-matrix: 128-row tiles where experts average >= 128 rows (fewer weight re-reads), else 64.
  const tm = kind !== 'subgroup-matrix' ? FAST_TM : (opts.fastTileM ?? (rows >= 128 * E ? 128 : 64));
  const mTiles = Math.ceil(rows / tm) + Math.min(E, rows);
  const nTilesN = Math.ceil(N / (op === 'gate_up' ? 64 : 128));
  const nWork = mTiles * nTilesN;
  return { kind, tm, nTilesN, nWork, grid: foldWorkgroups(ctx, nWork) };
}

/** The inputs of one grouped GEMM call (structurally the tiled path's call record). */
export interface FastGemmCall {
  op: 'gate_up' | 'down';
  act: { kind: FastGemmVariant['act']; limit: number; alpha: number; interleaved: boolean } | undefined;
  x: GPUBuffer;
  xmode: FastGemmVariant['xmode'];
  rowScale: GPUBuffer | undefined;
  g: { T: number; k: number; E: number; offsets: GpuTensor; order: GpuTensor };
  w: ExpertWeightsGpu;
  d: { rows: number };
  bias: GpuTensor | undefined;
  biasDt: FastGemmVariant['bias'];
  K: number;
  N: number;
  y: GpuTensor;
}

function fastVariant(c: Pick<FastGemmCall, 'op' | 'act' | 'xmode' | 'biasDt'> & { rowScale: boolean; wf: FastGemmVariant['wf'] }, kind: FastGemmKind): FastGemmVariant {
  return { op: c.op, act: c.act?.kind ?? 'none', interleaved: c.act?.interleaved ?? false, wf: c.wf, bias: c.biasDt, xmode: c.xmode, rowScale: c.rowScale, h: kind === 'f16' };
}

/** Records the tile-offset kernel and the fast GEMM. */
export function recordFastGemm(rec: Recorder, c: FastGemmCall, plan: FastGemmPlan, test: { emulateSubgroupMatrix?: boolean } = {}): void {
  if (c.w.kind !== 'dense') throw new Error('recordFastGemm: dense weights only');
  const { T, k, E } = c.g;
  const rows = T * k;
  const meta = rec.temp((2 * E + 2) * 4, 'grouped_gemm_fast.meta');
  const tm = plan.kind === 'subgroup-matrix' ? plan.tm : FAST_TM;
  rec.dispatch({ kernel: tileOffsetsKernel, variant: { tm }, buffers: [c.g.offsets.buffer, meta], uniforms: new Uniforms().u32(E, 0, 0, 0).finish(), workgroups: [1] });
  const variant = fastVariant({ ...c, rowScale: !!c.rowScale, wf: c.w.w.dtype as FastGemmVariant['wf'] }, plan.kind);
  if (plan.kind === 'subgroup-matrix' && tm !== FAST_TM) variant.tm = tm;
  if (test.emulateSubgroupMatrix && plan.kind === 'subgroup-matrix') variant.emu = true;
  const buffers: GPUBuffer[] = [c.x, c.g.order.buffer, meta];
  if (c.rowScale) buffers.push(c.rowScale);
  buffers.push(c.w.w.buffer);
  if (c.bias) buffers.push(c.bias.buffer);
  buffers.push(c.y.buffer);
  rec.dispatch({
    kernel: plan.kind === 'subgroup-matrix' ? groupedGemmSgmatKernel : groupedGemmFastKernel,
    variant,
    buffers,
    uniforms: new Uniforms()
      .u32(rows, k, E, c.K, c.N, c.d.rows, plan.nTilesN, plan.nWork)
      .f32(c.act?.limit ?? 0, c.act?.alpha ?? 0)
      .u32(0, 0)
      .finish(),
    workgroups: plan.grid,
  });
}

/**
 * Compiles the fast pipeline a call site will use on this context (no-op
 * for non-dense weights). If the subgroup-matrix pipeline fails to compile,
 * it warns once, marks the device so that the f32 kernel is selected from
 * then on, and compiles that instead.
 * @example `await warmGroupedGemmFast(ctx, { op: 'down', w, biasDt: 'none', xmode: 'grouped', rowScale: false })`
 */
export async function warmGroupedGemmFast(
  ctx: GpuContext,
  spec: { op: 'gate_up' | 'down'; w: ExpertWeightsGpu; act?: FastGemmCall['act']; biasDt: FastGemmVariant['bias']; xmode: FastGemmVariant['xmode']; rowScale: boolean; fast?: FastGemmKind },
): Promise<void> {
  if (spec.w.kind !== 'dense') return;
  const wf = spec.w.w.dtype as FastGemmVariant['wf'];
  if (wf !== 'float32' && wf !== 'bfloat16' && wf !== 'float16') return;
  const kind = fastGemmKind(ctx, spec.fast);
  const v = fastVariant({ op: spec.op, act: spec.act, xmode: spec.xmode, biasDt: spec.biasDt, rowScale: spec.rowScale, wf }, kind);
  await warmPipeline(ctx, tileOffsetsKernel, { tm: FAST_TM });
  if (kind === 'subgroup-matrix') {
    try {
      await Promise.all([warmPipeline(ctx, tileOffsetsKernel, { tm: 128 }), warmPipeline(ctx, groupedGemmSgmatKernel, v), warmPipeline(ctx, groupedGemmSgmatKernel, { ...v, tm: 128 })]);
      return;
    } catch (e) {
      if (!sgmatBroken.has(ctx.device)) console.warn(`[webmoe] subgroup-matrix grouped GEMM failed to compile; using the f32 kernel: ${(e as Error).message}`);
      sgmatBroken.add(ctx.device);
    }
  }
  await warmPipeline(ctx, groupedGemmFastKernel, kind === 'subgroup-matrix' ? { ...v, h: false } : v);
}
