/**
 * Fast grouped GEMMs for prefill: selection, planning and recording of the
 * kernels in grouped-gemm-fast-wgsl.ts. `groupedGateUpGpu` /
 * `groupedDownGpu` route here (same contract, same results up to rounding)
 * when the weights are dense (float32 / bfloat16 / float16) or packed
 * (fp8_block, int_block 4/8 bits, mxfp4; decoded at staging) with K % 8 == 0
 * and no scale block boundary inside an aligned group of 8 values
 * (fastWeightFormat), no actQuant, and either `tile: 'fast'` is passed or
 * the call is prefill-sized (plan.ts fastGemmMinRowsPerExpert). Which fast kernel
 * runs by default:
 *
 * - 'subgroup-matrix' (tensor cores, f16 operands, f32 accumulation) for
 *   bfloat16 / float16 and packed weights when the device has
 *   chromium-experimental-subgroup-matrix + shader-f16 + subgroups, the
 *   adapter lists an f16 x f16 -> f32 16x16x16 config, its subgroup size is
 *   at most 32 and the workgroup memory suffices;
 * - else 'f32' (register-blocked, f32 staging: the tiled path's precision).
 *   float32 weights always default to 'f32' (their results keep f32 accuracy).
 *
 * 'f16' (register-blocked, operands staged as f16, f32 accumulation) runs
 * only when asked for (`fast: 'f16'`, needs shader-f16; else 'f32'): it
 * rounds x and w to f16 like the subgroup-matrix kernel, without tensor
 * cores. `fast: 'subgroup-matrix'` falls back to 'f32' where unsupported.
 * Both f16-staged kernels scale each x row by a power of two first when its
 * values exceed f16's range (rowAbsMaxKernel; FastGemmVariant.xScale).
 */
import { ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import type { GpuTensor } from '../runtime/tensor.js';
import { foldWorkgroups, type Recorder, warmPipeline } from '../runtime/kernel.js';
import type { ExpertWeightsGpu } from './moe-types.js';
import type { ExpertActQuantOptions } from './quant-ref.js';
import { expertDims } from './expert-weights.js';
import { KERNEL_CROSSOVERS, SGMAT_CHOICES, chooseFastGemmKind, sgmatDequantExperts, sgmatDequantUnasked, sgmatScalarShapeFor, sgmatSplitKFor, sgmatTailFor, sgmatTileFor, sgmatTilesOf, sgmatValueDecodeFor, sgmatWideLoadsFor, useFastGemm, type FastGemmKind, type SgmatXRows } from './plan.js';
import { recordTileOffsets, tileOffsetsKernel, weightLayout, type GemmCallScratch, type GemmChunkPlace, type WeightFormat } from './grouped-gemm-wgsl.js';
import { blockShiftUniforms } from './grouped-gemm-weights.js';
import { FAST_TM, FAST_TNW, HALF_ROWS_PAD, SGMAT_DEFAULT_SHAPE, SGMAT_SHAPES, halfRowStride, sgmatLayout, tileOutputs, type FastGemmVariant, type SgmatShape, type SgmatShapeName } from './grouped-gemm-fast-shapes.js';
import { ROW_ABSMAX_VARIANT, groupedGemmFastKernel, halfRowsKernel, halfRowsRegs, rowAbsMaxKernel, splitKReduceKernel, type HalfRowsVariant } from './grouped-gemm-fast-wgsl.js';
import { groupedGemmSgmatKernel } from './grouped-gemm-sgmat-wgsl.js';
import { isPackedFormat, weightBind } from './grouped-gemm-fast-weights-wgsl.js';
import { dequantHalfBytes, dequantHalfKernel, dequantHalfSupports, halfStackOver, recordDequantHalf } from './grouped-gemm-dequant.js';

export type { FastGemmKind, SgmatShapeName };

/**
 * Temps the fast GEMMs write in full before reading (halfRowsKernel's f16 rows with their zero padding and row scales,
 * rowAbsMaxKernel's row maxima, every split's partial sums): reused from the context's scratch cache, not allocated
 * per call.
 */
const REUSE = { reuse: true } as const;

/** A planned fast GEMM (grid checked against the device limits before recording). */
export interface FastGemmPlan {
  kind: FastGemmKind;
  /** Rows per workgroup tile (FMA kernels: 64; subgroup-matrix: its shape's tm). */
  tm: number;
  /** Subgroup-matrix kernel: the tile shape (SGMAT_SHAPES). */
  shape?: SgmatShapeName;
  /** Subgroup-matrix down GEMM: workgroups per tile along K (1: no split; FastGemmVariant.splitK). */
  splitK?: number;
  /** Subgroup-matrix kernel: x rows converted to f16 in grouped order first (halfRowsKernel), then staged or loaded directly (FastGemmVariant.xh). */
  xh?: 'staged' | 'direct';
  /** Subgroup-matrix kernel, packed weights: 16 bytes of codes per staging load (FastGemmVariant.wide). */
  wide?: boolean;
  /** Subgroup-matrix kernel, packed weights: the per-value staging (FastGemmVariant.vdec; bench comparisons). */
  valueDecode?: boolean;
  /** Subgroup-matrix kernel: the work order's band of row tiles (FastGemmVariant.band); absent: row tile by row tile. */
  band?: number;
  /** Subgroup-matrix kernel: row fragments past a tile's last row skip their matrix work (FastGemmVariant.rowSkip). */
  rowSkip?: boolean;
  /** Packed weights whose scale blocks are powers of two, indexed by divisions all the same (GroupedGemmOptions.blockShifts false). */
  divideBlocks?: boolean;
  /**
   * Subgroup-matrix kernel, packed weights: decoded to f16 first (grouped-gemm-dequant.ts), `experts` experts per pass
   * into one scratch buffer, each pass followed by the f16 GEMM `gemm` on that range; `wide`: 16-byte code loads.
   */
  dequant?: { experts: number; wide: boolean; gemm: FastGemmPlan };
  /**
   * Subgroup-matrix kernel: a tail dispatch on a tile of fewer rows takes the rows past each expert's last full row
   * tile where they fit it (instead of a last, nearly empty row tile of `shape`: an expert one row past the tile costs
   * a second wave of full-cost workgroups); sgmatTailPlan.
   */
  tail?: SgmatTailPlan;
  nTilesN: number;
  nWork: number;
  grid: [number, number, number];
}

/**
 * The tail dispatch of a subgroup-matrix GEMM (FastGemmPlan.tail): its tile shape, column tiles, work items and grid
 * (whole K; under a split-K down recordFastGemm splits it as the main dispatch, nWork x splitK workgroups).
 */
export interface SgmatTailPlan {
  shape: SgmatShapeName;
  nTilesN: number;
  nWork: number;
  grid: [number, number, number];
}

/**
 * The tail dispatch for a call of N outputs over E experts on the tile `shape` (at most one row tile per expert).
 * @example `sgmatTailPlan(ctx, 'm32n128k32v', 'gate_up', 14336, 8).nWork // 8 * 224`
 */
export function sgmatTailPlan(ctx: GpuContext, shape: SgmatShapeName, op: 'gate_up' | 'down', N: number, E: number): SgmatTailPlan {
  const nTilesN = Math.ceil(N / tileOutputs(op, SGMAT_SHAPES[shape].tn));
  return { shape, nTilesN, nWork: E * nTilesN, grid: foldWorkgroups(ctx, E * nTilesN) };
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
/**
 * Devices whose Dawn refused a vector-staged tile (SgmatShape.vs: matrices loaded from vec4<u32> arrays, which older
 * Dawn builds may not accept) in warmGroupedGemmFast: the scalar-staged tiles of plan.ts's sgmatScalarShapeFor run there.
 */
const sgmatNoVectorStaging = new WeakSet<GPUDevice>();

/** The device's workgroup memory in bytes (maxComputeWorkgroupStorageSize; 0 where the limit is not reported). */
function workgroupBytes(ctx: GpuContext): number {
  return ctx.limits.maxComputeWorkgroupStorageSize ?? 0;
}

/** Whether the subgroup-matrix kernel can run on this context (features, adapter configs, subgroup size, workgroup memory of `shape`, default the default shape's). */
export function sgmatSupported(ctx: GpuContext, shape: SgmatShapeName = SGMAT_DEFAULT_SHAPE): boolean {
  if (sgmatBroken.has(ctx.device)) return false;
  const f = ctx.features;
  if (!f.subgroupMatrix || !f.shaderF16 || !f.subgroups) return false;
  const lay = sgmatLayout(SGMAT_SHAPES[shape]);
  if (workgroupBytes(ctx) < lay.bytes || (ctx.limits.maxComputeInvocationsPerWorkgroup ?? 256) < lay.threads) return false;
  const info = (ctx.adapter as GPUAdapter & { info?: { subgroupMatrixConfigs?: readonly SgConfig[]; subgroupMaxSize?: number } }).info;
  const cfgs = info?.subgroupMatrixConfigs;
  if (!cfgs || !cfgs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16)) return false;
  const sgMax = info?.subgroupMaxSize;
  return typeof sgMax === 'number' && sgMax > 0 && sgMax <= 32;
}

/**
 * The fast kernel a context runs for a requested kind. Default: the
 * subgroup-matrix kernel for 16-bit and packed weights (`wf`: a dtype or
 * WeightFormat; packed ones are decoded to f16 tiles) where the adapter
 * supports it (about 4x the f32 kernel on the H200, docs/PERFORMANCE.md),
 * else 'f32'. An explicit kind is honoured where available, else 'f32'.
 */
export function fastGemmKind(ctx: GpuContext, want?: FastGemmKind, wf?: string): FastGemmKind {
  return chooseFastGemmKind({ subgroupMatrix: sgmatSupported(ctx), shaderF16: ctx.features.shaderF16 }, want, wf);
}

/**
 * The weight format the fast kernels read for a container with K input
 * channels, or undefined where they cannot: K % 8 != 0, or a scale block
 * boundary (fp8 block cols, int_block blockSize) inside an aligned group of
 * 8 values (block width not a multiple of 8 and below K). MXFP4 blocks are
 * 32 wide. Packed values are decoded to f32 (FMA kernel) or f16 tiles
 * ('f16', subgroup-matrix kernels): a decoded weight (code x scale) beyond
 * f16's range becomes inf there and one below 6.1e-5 loses bits (subnormal)
 * or flushes to 0 (the f32 kernel has neither limit); the weights of the
 * supported checkpoints are far inside that range.
 * `wide`: whether the subgroup-matrix kernel can load 16 bytes of codes at once (packed formats with K and the scale
 * block width multiples of 16 (8-bit) / 32 (4-bit) values, or one block per row).
 * `blockK`: the inputs of one scale block (8 for dense weights).
 * @example `fastWeightFormat({ kind: 'int_block', bits: 4, q, scales, blockSize: 32 }, 4096) // { wf: 'int4', sd: 'float16', zp: false, wide: true, blockK: 32, ... }`
 */
export function fastWeightFormat(w: ExpertWeightsGpu, K: number): { wf: WeightFormat; sd: FastGemmVariant['sd']; zp: boolean; wide: boolean; blockShifts: boolean; blockK: number } | undefined {
  if (K % 8 !== 0 || K === 0) return undefined;
  if (w.kind === 'dense' && w.w.dtype !== 'float32' && w.w.dtype !== 'bfloat16' && w.w.dtype !== 'float16') return undefined;
  const blockK = w.kind === 'fp8_block' ? w.block[1] : w.kind === 'int_block' ? w.blockSize : w.kind === 'mxfp4' ? 32 : 8;
  if (blockK % 8 !== 0 && blockK < K) return undefined;
  if (w.kind === 'int_block' && w.scales.dtype !== 'float32' && w.scales.dtype !== 'float16') return undefined;
  const layout = weightLayout(w, { rows: 0, cols: K });
  const { wf, sd, zp } = layout;
  // Wide loads (FastGemmVariant.wide): the values of one 16-byte load start aligned and share one scale block.
  const wv = isPackedFormat(wf) ? (wf === 'int4' || wf === 'mxfp4' ? 32 : 16) : 0;
  const wide = wv > 0 && K % wv === 0 && (blockK % wv === 0 || blockK >= K);
  return { wf, sd, zp, wide, blockShifts: blockShiftUniforms(layout).shifts, blockK };
}

/**
 * Plans the fast path, or returns undefined when the call must take the
 * tiled path: weights the fast kernels cannot read (fastWeightFormat), actQuant on, or (without
 * `tile: 'fast'`) fewer rows per expert on average than
 * plan.ts fastGemmMinRowsPerExpert of the kernel.
 */
export function planFastGemm(ctx: GpuContext, opts: FastGemmOptions & Pick<ExpertActQuantOptions, 'actQuant'>, w: ExpertWeightsGpu, rows: number, E: number, N: number, K: number, op: 'gate_up' | 'down'): FastGemmPlan | undefined {
  if (opts.tile !== undefined && opts.tile !== 'fast') return undefined;
  if ((opts.actQuant ?? 'none') !== 'none') return undefined;
  const wfmt = fastWeightFormat(w, K);
  if (!wfmt || rows === 0 || N === 0) return undefined;
  const plan = planFastFormat(ctx, opts, wfmt, rows, E, N, K, op);
  if (!plan || plan.kind !== 'subgroup-matrix' || !dequantHalfSupports(wfmt.wf)) return plan;
  // packed (or bf16) weights decoded to f16 first (plan.ts's sgmatDequantExperts), then the f16 tile of the same call
  const wRows = expertDims(w).rows;
  const experts = sgmatDequantExperts(rows, E, dequantHalfBytes(1, wRows, K), ctx.maxBindingBytes, wfmt.wf, opts.sgmatDequant);
  if (experts === 0) return plan;
  const gemm = planFastFormat(ctx, { ...opts, sgmatWideLoads: undefined, sgmatValueDecode: undefined }, HALF_FORMAT, rows, E, N, K, op);
  return gemm && gemm.kind === 'subgroup-matrix' ? { ...plan, dequant: { experts, wide: wfmt.wide, gemm } } : plan;
}

/** The format of an f16 dense stack (what the dequantize-then-GEMM path multiplies). */
const HALF_FORMAT: FastWeightFormat = { wf: 'float16', sd: 'none', zp: false, wide: false, blockShifts: false, blockK: 8 };

/** What fastWeightFormat tells of a container: its format, int scale dtype, zero points, 16-byte code loads, scale block. */
type FastWeightFormat = NonNullable<ReturnType<typeof fastWeightFormat>>;

/** The grouped GEMMs' options of the tile choice and the fast path (part of GroupedGemmOptions; what planFastGemm reads). */
export interface FastGemmOptions {
  /**
   * Force the tile shape (tests / tuning): 'decode' (4 rows x 32 outputs), 'prefill' (32 x 32) or 'fast' (the
   * prefill kernels of grouped-gemm-fast.ts, dense or packed weights; falls back to 'prefill' where they do not
   * apply: K % 8 != 0, a scale block boundary inside 8 values, actQuant). Default: by rows per expert ('fast'
   * from plan.ts fastGemmMinRowsPerExpert rows per expert).
   */
  tile?: 'decode' | 'prefill' | 'fast';
  /** With the fast path: which kernel ('subgroup-matrix' | 'f16' | 'f32'; default 'subgroup-matrix' for bfloat16/float16 and packed weights where supported, else 'f32'; an unavailable one falls back to 'f32'). */
  fast?: FastGemmKind;
  /** With the subgroup-matrix fast kernel: the tile shape (tests / tuning; default plan.ts's sgmatTileFor). */
  sgmatShape?: SgmatShapeName;
  /** With the subgroup-matrix fast kernel, down GEMMs: split K over this many workgroups per tile (1..8; tests / tuning; default plan.ts's sgmatSplitKFor). */
  sgmatSplitK?: number;
  /** With the subgroup-matrix fast kernel: how x rows are read ('gather' | 'half' | 'direct', see plan.ts's SgmatXRows; tests / tuning; default plan.ts's sgmatTileFor with its shape, else 'gather'). */
  sgmatXRows?: SgmatXRows;
  /** With the subgroup-matrix fast kernel and packed weights: 16-byte loads of codes at staging (tests / tuning; default plan.ts's sgmatWideLoadsFor). */
  sgmatWideLoads?: boolean;
  /**
   * With the subgroup-matrix fast kernel and packed weights: stage each weight through its f32 value one code at a
   * time (true) or a word of codes at a time (false); the same f16 tiles. Default plan.ts's sgmatValueDecodeFor.
   */
  sgmatValueDecode?: boolean;
  /**
   * With the fast kernels and packed weights whose scale blocks are powers of two: index the scales by shifts (true,
   * the default: FastGemmVariant.blockShifts) or by integer divisions as blocks of other sizes (false: bench A/B). Same
   * values.
   */
  blockShifts?: boolean;
  /**
   * With the subgroup-matrix fast kernel: order the workgroups in bands of this many row tiles per expert, the band's
   * row tiles of one weight tile consecutive (1..64; FastGemmVariant.band; bench comparisons, default off).
   */
  sgmatBand?: number;
  /**
   * With the subgroup-matrix fast kernel: skip the matrix work of 16-row fragments past a tile's last row
   * (FastGemmVariant.rowSkip: an expert's partial last row tile costs its staging, not a full tile's multiplies).
   * Same results. Default off: on the H200 it cost 6% (Mixtral T = 512 bf16, uneven routing: 3.48 against 3.29 ms;
   * docs/PERFORMANCE.md, session 16).
   */
  sgmatRowSkip?: boolean;
  /**
   * With the subgroup-matrix fast kernel: the rows past each expert's last full row tile, where they fit this smaller
   * tile, go to a second dispatch on it (FastGemmPlan.tail); false: none. Default plan.ts's sgmatTailFor (split-K down
   * GEMMs), dropped where the call's tile is not taller or its x rows do not suit the tail's shape; an asked shape that
   * does not suit is a ValueError. Its x rows are the call's: a shape without an A tile (xd) needs x loaded directly,
   * one without row tables (xo) f16 x rows.
   */
  sgmatTail?: SgmatShapeName | false;
  /**
   * With the subgroup-matrix fast kernel and packed weights: decode the experts to f16 first, a range at a time into a
   * scratch buffer, and multiply those (true), or decode in the GEMM's staging step (false). Default plan.ts's
   * sgmatDequantExperts (KERNEL_CROSSOVERS.sgmatDequant); the f16 values are the same either way.
   */
  sgmatDequant?: boolean;
}

/** planFastGemm for a weight format (rows, E, N, K of the call; no decoding pass). */
function planFastFormat(ctx: GpuContext, opts: FastGemmOptions & Pick<ExpertActQuantOptions, 'actQuant'>, wfmt: FastWeightFormat, rows: number, E: number, N: number, K: number, op: 'gate_up' | 'down'): FastGemmPlan | undefined {
  if (opts.sgmatShape !== undefined && !Object.hasOwn(SGMAT_SHAPES, opts.sgmatShape)) throw new ValueError('sgmatShape', `one of ${Object.keys(SGMAT_SHAPES).join(' | ')} | undefined`, opts.sgmatShape);
  let kind = fastGemmKind(ctx, opts.fast, wfmt.wf);
  if (opts.tile !== 'fast' && !useFastGemm(kind, rows, E, ctx.adapterInfo.software)) return undefined;
  // Subgroup-matrix: the asked shape (x gathered unless asked otherwise), else plan.ts's tile where this device holds
  // its workgroup memory, else the default shape; a shape this device cannot hold falls back to the f32 kernel.
  const tile = kind !== 'subgroup-matrix' ? undefined : opts.sgmatShape !== undefined ? { shape: opts.sgmatShape, xRows: 'gather' as const } : plannedSgmatTile(ctx, rows, E, N, wfmt.wf);
  const shape = tile?.shape;
  if (shape && !sgmatSupported(ctx, shape)) kind = 'f32';
  const sg = shape && kind === 'subgroup-matrix' ? SGMAT_SHAPES[shape] : undefined;
  const tm = sg ? sg.tm : FAST_TM;
  const mTiles = Math.ceil(rows / tm) + Math.min(E, rows);
  const nTilesN = Math.ceil(N / tileOutputs(op, sg ? sg.tn : FAST_TNW));
  const nWork = mTiles * nTilesN;
  if (opts.sgmatSplitK !== undefined && !(Number.isInteger(opts.sgmatSplitK) && opts.sgmatSplitK >= 1 && opts.sgmatSplitK <= 8)) throw new ValueError('sgmatSplitK', 'an integer 1..8 | undefined', opts.sgmatSplitK);
  // Split-K (down only): the partials [S][rows][N] must fit one binding.
  let splitK = sg && op === 'down' ? (opts.sgmatSplitK ?? sgmatSplitKFor(nWork, K, op, rows / Math.max(1, E), undefined, shape)) : 1;
  if (splitK > 1 && splitK * rows * N * 4 > ctx.maxBindingBytes) splitK = 1;
  // f16 x rows (grouped order) in a temp buffer of (rows + pad) * stride halves: where it fits one binding.
  if (opts.sgmatXRows !== undefined && !['gather', 'half', 'direct'].includes(opts.sgmatXRows)) throw new ValueError('sgmatXRows', "'gather' | 'half' | 'direct' | undefined", opts.sgmatXRows);
  // Shapes without an A tile (xd) always load x directly; shapes without row tables (xo) take f16 x rows, staged
  // unless asked to load them directly.
  const xRows = sg ? (sg.xd ? 'direct' : sg.xo ? (opts.sgmatXRows === 'direct' ? 'direct' : 'half') : (opts.sgmatXRows ?? tile!.xRows)) : 'gather';
  const fits = (rows + HALF_ROWS_PAD) * halfRowStride(K) * 2 <= ctx.maxBindingBytes;
  if ((sg?.xd || sg?.xo) && !fits) return planFastFormat(ctx, { ...opts, sgmatShape: SGMAT_DEFAULT_SHAPE }, wfmt, rows, E, N, K, op);
  const xh = fits ? xhOf(xRows) : undefined;
  // Wide packed loads where the format allows them (plan.ts's default unless asked).
  const wide = !!sg && wfmt.wide && (opts.sgmatWideLoads ?? sgmatWideLoadsFor(wfmt.wf, wfmt.blockK));
  const plan: FastGemmPlan = { kind, tm, shape: sg ? shape : undefined, splitK, xh, wide, nTilesN, nWork, grid: foldWorkgroups(ctx, nWork * splitK) };
  if (sg && (opts.sgmatValueDecode ?? sgmatValueDecodeFor(wfmt.wf, shape)) && isPackedFormat(wfmt.wf)) plan.valueDecode = true;
  if (opts.sgmatBand !== undefined && !(Number.isInteger(opts.sgmatBand) && opts.sgmatBand >= 1 && opts.sgmatBand <= 64)) throw new ValueError('sgmatBand', 'an integer 1..64 | undefined', opts.sgmatBand);
  if (sg && opts.sgmatBand) plan.band = opts.sgmatBand;
  if (sg && opts.sgmatRowSkip) plan.rowSkip = true;
  if (opts.blockShifts !== undefined && typeof opts.blockShifts !== 'boolean') throw new ValueError('blockShifts', 'a boolean | undefined', opts.blockShifts);
  if (opts.blockShifts === false) plan.divideBlocks = true;
  const asked = opts.sgmatTail;
  const tailShape = asked === undefined ? (sg ? sgmatTailFor(op, splitK) : undefined) : asked === false ? undefined : asked;
  if (tailShape !== undefined) {
    const ts = Object.hasOwn(SGMAT_SHAPES, tailShape) ? SGMAT_SHAPES[tailShape] : undefined;
    const suits = !!ts && (!sg || tailSuits(ts, sg, xh));
    const want = `false | a subgroup-matrix shape of fewer rows than the call's${sg ? ` ${shape} (${tm})` : ''}, able to read its x rows (${xh ?? 'gathered'})`;
    if (asked !== undefined && !suits) throw new ValueError('sgmatTail', want, asked);
    if (sg && suits && sgmatSupported(ctx, tailShape)) plan.tail = sgmatTailPlan(ctx, tailShape, op, N, E);
  }
  return plan;
}

/**
 * Whether a tail dispatch on `tail` can follow a call on the tile `main` whose x rows are `xh` (FastGemmPlan.xh): a tile
 * of fewer rows, able to read those x rows (one without an A tile, xd, loads f16 rows directly; one without row
 * tables, xo, needs f16 rows).
 */
function tailSuits(tail: SgmatShape, main: SgmatShape, xh: FastGemmPlan['xh']): boolean {
  return tail.tm < main.tm && !(tail.xd && xh !== 'direct') && !(tail.xo && !xh);
}

/**
 * plan.ts's subgroup-matrix tile for a call (its scalar-staged tile, sgmatScalarShapeFor, where the device refused vector staging) where this
 * device holds its workgroup memory, else the default shape with gathered x.
 */
function plannedSgmatTile(ctx: GpuContext, rows: number, E: number, N: number, wf: WeightFormat): { shape: SgmatShapeName; xRows: SgmatXRows } {
  const planned = sgmatTileFor(rows, E, N, wf, workgroupBytes(ctx));
  const shape = sgmatNoVectorStaging.has(ctx.device) ? sgmatScalarShapeFor(planned.shape) : planned.shape;
  return shape !== undefined && sgmatSupported(ctx, shape) ? { ...planned, shape } : { shape: SGMAT_DEFAULT_SHAPE, xRows: 'gather' };
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
  /** A chunk of a chunked stack: its experts (from g) and first output; N is then the chunk's outputs, `ys` the stack's (Y row stride). Default: the whole stack. */
  place?: GemmChunkPlace;
  ys?: number;
  /** Scratch shared with the call's other chunks (tile offsets, x row maxima). */
  scratch?: GemmCallScratch;
  /** The bias's first expert: `w` holds experts be0.. of the bias's (a decoded range of the dequantize-then-GEMM path). Default 0. */
  be0?: number;
}

/** The kernel's x-row variant (FastGemmVariant.xh) of a plan.ts x-row mode. */
function xhOf(x: SgmatXRows): FastGemmVariant['xh'] {
  return x === 'gather' ? undefined : x === 'half' ? 'staged' : 'direct';
}

/**
 * The subgroup-matrix variant of a call's base variant for a tile shape, x rows and split: the pipeline keys
 * recordFastGemm dispatches and warmGroupedGemmFast compiles (sg only for shapes other than the default, so the
 * default's pipeline keeps its key; f16 x rows carry the router weight, so rowScale goes off; wide only when set).
 */
function sgmatVariant(base: FastGemmVariant, p: { shape?: SgmatShapeName; xh?: FastGemmVariant['xh']; splitK?: number; wide?: boolean; valueDecode?: boolean; band?: number; rowSkip?: boolean }): FastGemmVariant {
  const v: FastGemmVariant = { ...base };
  if (p.shape && p.shape !== SGMAT_DEFAULT_SHAPE) v.sg = p.shape;
  if (p.xh) {
    v.xh = p.xh;
    v.rowScale = false;
  }
  if ((p.splitK ?? 1) > 1) v.splitK = p.splitK;
  if (p.wide) v.wide = true;
  if (p.valueDecode) v.vdec = true;
  if (p.band) v.band = p.band;
  if (p.rowSkip) v.rowSkip = true;
  return v;
}

function fastVariant(c: Pick<FastGemmCall, 'op' | 'act' | 'xmode' | 'biasDt'> & { rowScale: boolean; wf: FastGemmVariant['wf']; sd: FastGemmVariant['sd']; zp: boolean; blockShifts: boolean }, kind: FastGemmKind): FastGemmVariant {
  const v: FastGemmVariant = { op: c.op, act: c.act?.kind ?? 'none', interleaved: c.act?.interleaved ?? false, wf: c.wf, sd: c.sd, bias: c.biasDt, xmode: c.xmode, rowScale: c.rowScale, h: kind === 'f16', xScale: kind !== 'f32' };
  // zp and blockShifts only when set, so the pipelines of other weights keep their variant keys.
  if (c.zp) v.zp = true;
  if (c.blockShifts) v.blockShifts = true;
  return v;
}

/** Records the tile-offset kernel and the fast GEMM. */
export function recordFastGemm(rec: Recorder, c: FastGemmCall, plan: FastGemmPlan, test: { emulateSubgroupMatrix?: boolean } = {}): void {
  if (plan.dequant) {
    recordDequantGemm(rec, c, plan.dequant, test);
    return;
  }
  const layout = weightLayout(c.w, { rows: c.d.rows, cols: c.K });
  const { T, k } = c.g;
  const rows = T * k;
  const place = c.place ?? { e0: 0, experts: c.g.E, o0: 0 };
  const E = place.experts;
  const scratch: GemmCallScratch = c.scratch ?? { meta: new Map() };
  const meta = recordTileOffsets(rec, c.g.offsets.buffer, plan.tm, place, scratch, plan.tail ? { tail: SGMAT_SHAPES[plan.tail.shape].tm } : {});
  const sgmat = plan.kind === 'subgroup-matrix';
  const xh = sgmat ? plan.xh : undefined;
  const splitK = sgmat && c.op === 'down' ? (plan.splitK ?? 1) : 1;
  // scale blocks of power-of-two sizes: indexed by shifts (the uniforms hold their log2)
  const blocks = plan.divideBlocks ? { shifts: false, wu: layout.wu } : blockShiftUniforms(layout);
  const base = fastVariant({ ...c, rowScale: !!c.rowScale, wf: layout.wf, sd: layout.sd, zp: layout.zp, blockShifts: blocks.shifts }, plan.kind);
  const variant = sgmat ? sgmatVariant(base, { shape: plan.shape, xh, splitK, wide: plan.wide, valueDecode: plan.valueDecode, band: plan.band, rowSkip: plan.rowSkip }) : base;
  if (test.emulateSubgroupMatrix && sgmat) variant.emu = true;
  let xHalf: { xh: GPUBuffer; ru: GPUBuffer } | undefined;
  if (xh) {
    // x rows in grouped order as f16 with their staging scale (one pass, shared by the call's chunks); the GEMM reads only these.
    xHalf = scratch.xHalf;
    if (!xHalf) {
      const kp = halfRowStride(c.K);
      xHalf = scratch.xHalf = { xh: rec.temp((rows + HALF_ROWS_PAD) * kp * 2, 'grouped_gemm_fast.xh', REUSE), ru: rec.temp(Math.max(4, rows * 4), 'grouped_gemm_fast.xru', REUSE) };
      const bind: Record<string, GPUBuffer> = { X: c.x, ORDER: c.g.order.buffer, XH: xHalf.xh, XRU: xHalf.ru };
      if (c.rowScale) bind.RS = c.rowScale;
      rec.dispatch({ kernel: halfRowsKernel, variant: halfRowsVariant(c.xmode, !!c.rowScale, c.K), bind, params: { rows, kv: c.K / 4, k, kvp: kp / 4 }, workgroups: foldWorkgroups(rec.ctx, rows + HALF_ROWS_PAD) });
    }
  }
  let xAmax: GPUBuffer | undefined;
  if (variant.xScale && !xh && !(xAmax = scratch.xAmax)) {
    // Per x row max |x| for the f16 staging scale (one pass over X, shared by the call's chunks).
    const xRows = c.xmode === 'token' ? T : rows;
    xAmax = scratch.xAmax = rec.temp(Math.max(4, xRows * 4), 'grouped_gemm_fast.xamax', REUSE);
    rec.dispatch({ kernel: rowAbsMaxKernel, variant: ROW_ABSMAX_VARIANT, bind: { X: c.x, AMAX: xAmax }, params: { rows: xRows, kv: c.K / 4 }, workgroups: foldWorkgroups(rec.ctx, xRows) });
  }
  const ys = c.ys ?? c.N;
  // Split-K: the GEMM writes its partials [splitK][rows][N] (this call's N, output offset 0) to a temp buffer,
  // splitKReduceKernel sums them into Y at p * ys + o0 + o.
  const yOut = splitK > 1 ? rec.temp(splitK * rows * c.N * 4, 'grouped_gemm_fast.splitk', REUSE) : c.y.buffer;
  const bind: Record<string, GPUBuffer> = xHalf ? { X: xHalf.xh, ORDER: c.g.order.buffer, META: meta, XRU: xHalf.ru } : { X: c.x, ORDER: c.g.order.buffer, META: meta };
  if (c.rowScale && !xHalf) bind.RS = c.rowScale;
  if (xAmax) bind.XAMAX = xAmax;
  Object.assign(bind, weightBind(variant, layout.buffers));
  if (c.bias) bind.BIAS = c.bias.buffer;
  bind.Y = yOut;
  const [wa, wb, wc, wd] = blocks.wu;
  const params = {
    nRows: rows, k, E, K: c.K, N: c.N, wRows: c.d.rows, nTilesN: plan.nTilesN, nWork: plan.nWork,
    limit: c.act?.limit ?? 0, alpha: c.act?.alpha ?? 0,
    wa, wb, wc, wd,
    // split-K partials: [splitK][rows][N] from output 0 (splitKReduceKernel places them)
    yo: splitK > 1 ? 0 : place.o0, ys: splitK > 1 ? c.N : ys,
    be0: c.be0 ?? 0,
  };
  rec.dispatch({ kernel: plan.kind === 'subgroup-matrix' ? groupedGemmSgmatKernel : groupedGemmFastKernel, variant, bind, params, workgroups: plan.grid });
  if (sgmat && plan.tail) {
    // the tail rows (those the main dispatch left), one row tile per expert on the tail's shape; under a split-K down
    // split as the main dispatch is, into its partials, before the sums (whole K there, one lone expert's tile row, was
    // one full-K wave after the GEMM: a second wave's latency for a few rows)
    const t = plan.tail;
    const tmeta = recordTileOffsets(rec, c.g.offsets.buffer, SGMAT_SHAPES[t.shape].tm, place, scratch, { of: plan.tm });
    const tv = sgmatVariant(base, { shape: t.shape, xh, splitK, wide: plan.wide, valueDecode: plan.valueDecode, rowSkip: plan.rowSkip });
    tv.ends = true;
    if (variant.emu) tv.emu = true;
    const tbind = { ...bind, META: tmeta, ...weightBind(tv, layout.buffers) };
    rec.dispatch({ kernel: groupedGemmSgmatKernel, variant: tv, bind: tbind, params: { ...params, nTilesN: t.nTilesN, nWork: t.nWork }, workgroups: splitK > 1 ? foldWorkgroups(rec.ctx, t.nWork * splitK) : t.grid });
  }
  if (splitK > 1) {
    const n = rows * c.N;
    rec.dispatch({ kernel: splitKReduceKernel, variant: { S: splitK }, bind: { P: yOut, Y: c.y.buffer }, params: { rows, N: c.N, ys, yo: place.o0 }, workgroups: foldWorkgroups(rec.ctx, Math.ceil(n / 256)) });
  }
}

/**
 * halfRowsKernel's variant for rows of K inputs: the row read once into registers (halfRowsRegs) from
 * KERNEL_CROSSOVERS.halfRowsRegsMinInputs inputs, else read twice.
 */
function halfRowsVariant(xmode: FastGemmVariant['xmode'], rowScale: boolean, K: number): HalfRowsVariant {
  const regs = K >= KERNEL_CROSSOVERS.halfRowsRegsMinInputs ? halfRowsRegs(K) : undefined;
  return regs ? { xmode, rowScale, regs } : { xmode, rowScale };
}

/** The decoding scratch of each recorder (dequantScratch). */
const dequantScratches = new WeakMap<Recorder, GPUBuffer>();

/**
 * The decoding pass's scratch buffer of `rec`, at least `bytes`: one per recorder, shared by its GEMM calls (a layer's
 * gate_up and down, the layers of a stack), so that a forward holds one range of f16 experts, not one per call; a
 * range is decoded only after the GEMMs that read the previous one (the pass orders its dispatches). From the
 * context's shared scratch cache.
 */
function dequantScratch(rec: Recorder, bytes: number): GPUBuffer {
  const have = dequantScratches.get(rec);
  if (have && have.size >= bytes) return have;
  const buf = rec.temp(bytes, 'grouped_gemm_fast.wdq', REUSE);
  dequantScratches.set(rec, buf);
  return buf;
}

/**
 * The dequantize-then-GEMM path (FastGemmPlan.dequant): the call's experts in ranges of `dq.experts`, each range decoded
 * to f16 into one scratch buffer (grouped-gemm-dequant.ts) and multiplied by the f16 GEMM `dq.gemm` (the range as
 * its experts, the bias from the range's first expert on). The ranges share the call's scratch (tile offsets, f16 x
 * rows) and the recorder's decoding buffer (dequantScratch); a range's decoding is ordered after the previous range's GEMM.
 */
function recordDequantGemm(rec: Recorder, c: FastGemmCall, dq: NonNullable<FastGemmPlan['dequant']>, test: { emulateSubgroupMatrix?: boolean }): void {
  const place = c.place ?? { e0: 0, experts: c.g.E, o0: 0 };
  const scratch: GemmCallScratch = c.scratch ?? { meta: new Map() };
  const per = Math.min(dq.experts, place.experts);
  const buf = dequantScratch(rec, dequantHalfBytes(per, c.d.rows, c.K));
  for (let j = 0; j < place.experts; j += per) {
    const n = Math.min(per, place.experts - j);
    recordDequantHalf(rec, c.w, j, n, buf, dq.wide);
    const w = halfStackOver(rec.ctx, buf, n, c.d.rows, c.K);
    recordFastGemm(rec, { ...c, w, place: { e0: place.e0 + j, experts: n, o0: place.o0 }, scratch, be0: (c.be0 ?? 0) + j }, dq.gemm, test);
  }
}

/**
 * Compiles the fast pipeline a call site will use on this context (no-op
 * for weights the fast kernels cannot read, see fastWeightFormat). If the subgroup-matrix pipeline fails to compile,
 * it warns once, marks the device so that the f32 kernel is selected from
 * then on, and compiles that instead.
 * @example `await warmGroupedGemmFast(ctx, { op: 'down', w, K: I, biasDt: 'none', xmode: 'grouped', rowScale: false })`
 */
export async function warmGroupedGemmFast(
  ctx: GpuContext,
  spec: { op: 'gate_up' | 'down'; w: ExpertWeightsGpu; K: number; act?: FastGemmCall['act']; biasDt: FastGemmVariant['bias']; xmode: FastGemmVariant['xmode']; rowScale: boolean; fast?: FastGemmKind },
): Promise<void> {
  const wfmt = fastWeightFormat(spec.w, spec.K);
  if (!wfmt) return;
  const kind = fastGemmKind(ctx, spec.fast, wfmt.wf);
  const v = fastVariant({ op: spec.op, act: spec.act, xmode: spec.xmode, biasDt: spec.biasDt, rowScale: spec.rowScale, ...wfmt }, kind);
  const wide = wfmt.wide && sgmatWideLoadsFor(wfmt.wf, wfmt.blockK);
  await warmPipeline(ctx, tileOffsetsKernel, { tm: FAST_TM });
  if (kind !== 'f32') await warmPipeline(ctx, rowAbsMaxKernel, ROW_ABSMAX_VARIANT);
  if (kind === 'subgroup-matrix') {
    // One tile (shape and x-row mode) of a weight format's base variant, with every split plan.ts can choose.
    const warmTile = async (shape: SgmatShapeName, xRows: SgmatXRows, base: FastGemmVariant, wideLoads: boolean) => {
      await warmPipeline(ctx, tileOffsetsKernel, { tm: SGMAT_SHAPES[shape].tm });
      const xh = xhOf(SGMAT_SHAPES[shape].xd ? 'direct' : xRows);
      if (xh) await warmPipeline(ctx, halfRowsKernel, halfRowsVariant(spec.xmode, spec.rowScale, spec.K));
      for (const splitK of spec.op === 'down' ? SGMAT_CHOICES.splitK : [1]) {
        await warmPipeline(ctx, groupedGemmSgmatKernel, sgmatVariant(base, { shape, xh, splitK, wide: wideLoads }));
        if (splitK > 1) await warmPipeline(ctx, splitKReduceKernel, { S: splitK });
        // the planner's tail dispatch of this split (planFastFormat), where it suits this tile
        const tail = sgmatTailFor(spec.op, splitK);
        if (tail && tailSuits(SGMAT_SHAPES[tail], SGMAT_SHAPES[shape], xh) && sgmatSupported(ctx, tail)) await warmPipeline(ctx, groupedGemmSgmatKernel, sgmatVariant(base, { shape: tail, xh, splitK, wide: wideLoads }));
      }
    };
    // the weights' own format, and where plan.ts may decode packed weights first (sgmatDequant), the f16 GEMM's
    const formats = [{ wf: wfmt.wf, base: v, wideLoads: wide }];
    if (sgmatDequantUnasked(wfmt.wf)) {
      await warmPipeline(ctx, dequantHalfKernel, { wf: wfmt.wf, sd: wfmt.sd, zp: wfmt.zp, wide: wfmt.wide });
      formats.push({ wf: HALF_FORMAT.wf, base: fastVariant({ op: spec.op, act: spec.act, xmode: spec.xmode, biasDt: spec.biasDt, rowScale: spec.rowScale, ...HALF_FORMAT }, kind), wideLoads: false });
    }
    try {
      // The tiles plan.ts can choose for each format on this device (sgmatTilesOf), and the default tile its
      // fallback takes; a vector-staged one the device refuses marks the device (plannedSgmatTile takes the
      // scalar-staged tiles there) and warms its scalar-staged tile.
      for (const f of formats) {
        const tiles = [...sgmatTilesOf(f.wf, workgroupBytes(ctx)), { shape: SGMAT_DEFAULT_SHAPE, xRows: 'gather' as const }];
        for (const { shape, xRows } of tiles) {
          if (!sgmatSupported(ctx, shape)) continue;
          if (SGMAT_SHAPES[shape].vs && !sgmatNoVectorStaging.has(ctx.device)) {
            try {
              await warmTile(shape, xRows, f.base, f.wideLoads);
              continue;
            } catch (e) {
              console.warn(`[webmoe] vector-staged subgroup-matrix GEMM failed to compile; using scalar staging: ${(e as Error).message}`);
              sgmatNoVectorStaging.add(ctx.device);
            }
          }
          const twin = sgmatScalarShapeFor(shape);
          await warmTile(twin ?? SGMAT_DEFAULT_SHAPE, twin ? xRows : 'gather', f.base, f.wideLoads);
        }
      }
      return;
    } catch (e) {
      if (!sgmatBroken.has(ctx.device)) console.warn(`[webmoe] subgroup-matrix grouped GEMM failed to compile; using the f32 kernel: ${(e as Error).message}`);
      sgmatBroken.add(ctx.device);
    }
  }
  await warmPipeline(ctx, groupedGemmFastKernel, kind === 'subgroup-matrix' ? { ...v, h: false, xScale: false } : v);
}
