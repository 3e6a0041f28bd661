/**
 * Grouped expert GEMMs: gate_up (fused with the activation) and down, over
 * the (token, slot) pairs grouped by expert. Weights stay in their storage
 * type (dense f32/bf16/f16, block fp8, mxfp4, int4/int8 blocks) and are
 * decoded inside the tile loads; f32 accumulation.
 *
 * Work distribution needs no GPU->CPU read: a one-thread kernel turns the
 * grouping offsets into per-expert M-tile offsets, the GEMM grid covers the
 * upper bound ceil(T*k/TM) + min(E, T*k) M-tiles times the N-tiles (folded
 * into 2D), and each workgroup finds its expert by binary search and exits
 * when idle. Decode-sized inputs (few rows per expert) use short, narrow
 * tiles so that the outputs spread over many workgroups.
 */
import type { HostTensor } from '@webmoe/tensor';
import { DTypeError, ShapeError, ValueError, toFloat32 } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { foldWorkgroups, type Recorder, Uniforms, warmPipeline } from '../runtime/kernel.js';
import type { ExpertActivation, ExpertRowLayout, ExpertStackGpu, ExpertStackHost, ExpertWeightsGpu, GroupingGpu, GroupingRef } from './moe-types.js';
import { expertChunkList, expertDims, expertOutputs, type ExpertDims } from './expert-weights.js';
import { expectLive } from './op-util.js';
import { ACT_QUANT_GROUP, chunkOfRow, decodeExpertRow, fakeQuantFp8Ref, type ExpertActQuantOptions } from './quant-ref.js';
import { WORD_VALUES, actQuantKernel, groupedGemmKernel, recordTileOffsets, tileOffsetsKernel, weightLayout, type GemmCallScratch, type GemmChunkPlace, type GroupedGemmVariant, type WeightFormat } from './grouped-gemm-wgsl.js';
import { tiledGemmTile } from './plan.js';
import { gatedActivationRef, type GatedActivationParams } from './activation-ref.js';
// --- fast prefill path (grouped-gemm-fast.ts) ---
import { planFastGemm, recordFastGemm, warmGroupedGemmFast, type FastGemmKind, type FastGemmPlan, type SgmatShapeName } from './grouped-gemm-fast.js';
import type { SgmatXRows } from './plan.js';
// --- end fast prefill path ---


/** Options of the grouped GEMMs. @example `groupedDownGpu(ctx, rec, h, g, w, undefined, { pool, actQuant: 'fp8_dynamic' })` */
export interface GroupedGemmOptions extends ExpertActQuantOptions {
  /** Output buffers come from this pool when given. */
  pool?: BufferPool;
  /**
   * Force the tile shape (tests / tuning): 'decode' (4 rows x 32 outputs), 'prefill' (32 x 32) or 'fast' (the
   * prefill kernels of grouped-gemm-fast.ts, dense or packed weights; falls back to 'prefill' where they do not
   * apply: K % 8 != 0, a scale block boundary inside 8 values, actQuant). Default: by rows per expert ('fast'
   * from FAST_MIN_ROWS_PER_EXPERT rows per expert).
   */
  tile?: 'decode' | 'prefill' | 'fast';
  /** With the fast path: which kernel ('subgroup-matrix' | 'f16' | 'f32'; default 'subgroup-matrix' for bfloat16/float16 and packed weights where supported, else 'f32'; an unavailable one falls back to 'f32'). */
  fast?: FastGemmKind;
  /** With the subgroup-matrix fast kernel: the tile shape (tests / tuning; default plan.ts's sgmatShapeFor). */
  sgmatShape?: SgmatShapeName;
  /** With the subgroup-matrix fast kernel, down GEMMs: split K over this many workgroups per tile (1..8; tests / tuning; default plan.ts's sgmatSplitKFor). */
  sgmatSplitK?: number;
  /** With the subgroup-matrix fast kernel: how x rows are read ('gather' | 'half' | 'direct', see plan.ts's SgmatXRows; tests / tuning; default sgmatXRowsFor). */
  sgmatXRows?: SgmatXRows;
  /** With the subgroup-matrix fast kernel and packed weights: 16-byte loads of codes at staging (tests / tuning; default plan.ts's sgmatWideLoadsFor). */
  sgmatWideLoads?: boolean;
  /** Decode whole u32 words of weights at once where the row length allows (default true; false forces element-by-element loads, for tests). */
  vectorize?: boolean;
}

/** Options of {@link groupedGateUpGpu}. @example `{ rowScale: routing.weights, pool }` */
export interface GroupedGateUpOptions extends GroupedGemmOptions {
  /** float32 [T, k]: input row of pair (t, j) is scaled by rowScale[t, j] before the matmul (applyRouterWeightFirst). */
  rowScale?: GpuTensor;
}

const TILES = {
  decode: { tm: 4, tn: 32, rm: 1, rn: 2 },
  prefill: { tm: 32, tn: 32, rm: 4, rn: 4 },
} as const;

interface ActParams extends GatedActivationParams {
  interleaved: boolean;
}

function checkAct(act: ExpertActivation): ActParams {
  if (!act || typeof act !== 'object') throw new ValueError('activation', 'an ExpertActivation object', act);
  if (act.layout !== 'concat' && act.layout !== 'interleaved') throw new ValueError('activation layout', "'concat' | 'interleaved'", act.layout);
  const interleaved = act.layout === 'interleaved';
  switch (act.kind) {
    case 'silu':
      return { kind: 'silu', limit: 0, alpha: 0, interleaved };
    case 'swiglu_limit':
      if (!(typeof act.limit === 'number' && act.limit > 0 && Number.isFinite(act.limit))) throw new ValueError('swiglu_limit activation limit', 'a finite number > 0', act.limit);
      return { kind: 'swiglu_limit', limit: act.limit, alpha: 0, interleaved };
    case 'swigluoai': {
      const limit = act.limit ?? 7;
      const alpha = act.alpha ?? 1.702;
      if (!(limit > 0 && Number.isFinite(limit))) throw new ValueError('swigluoai activation limit', 'a finite number > 0 (GPT-OSS: 7)', limit);
      if (!Number.isFinite(alpha)) throw new ValueError('swigluoai activation alpha', 'a finite number (GPT-OSS: 1.702)', alpha);
      return { kind: 'swigluoai', limit, alpha, interleaved };
    }
    default:
      throw new ValueError('activation kind', "'silu' | 'swiglu_limit' | 'swigluoai'", (act as { kind: unknown }).kind);
  }
}

function checkActQuant(o: ExpertActQuantOptions): { on: boolean; clamp: number | undefined } {
  const q = o.actQuant ?? 'none';
  if (q !== 'none' && q !== 'fp8_dynamic') throw new ValueError('actQuant', "'none' | 'fp8_dynamic'", q);
  if (o.actAmaxClamp !== undefined && !(o.actAmaxClamp > 0 && Number.isFinite(o.actAmaxClamp)))
    throw new ValueError('actAmaxClamp', 'a finite number > 0 (MAX: 1200) or undefined', o.actAmaxClamp);
  return { on: q === 'fp8_dynamic', clamp: o.actAmaxClamp };
}

function checkGroupingGpu(g: GroupingGpu): { T: number; k: number; E: number } {
  const { T, k, E } = g;
  if (!(Number.isInteger(T) && T >= 0)) throw new ValueError('grouping T', 'a non-negative integer', T);
  if (!(Number.isInteger(k) && k >= 1)) throw new ValueError('grouping k', 'a positive integer', k);
  if (!(Number.isInteger(E) && E >= 1)) throw new ValueError('grouping E', 'a positive integer', E);
  for (const [name, t, n] of [['offsets', g.offsets, E + 1], ['order', g.order, T * k]] as const) {
    if (t.dtype !== 'uint32') throw new DTypeError(`grouping ${name}`, ['uint32'], t.dtype);
    if (t.size !== n) throw new ShapeError(`grouping ${name}`, `${n} elements`, t.shape);
  }
  return { T, k, E };
}

function checkGroupingRef(g: GroupingRef): void {
  const { T, k, E } = g;
  if (!(Number.isInteger(T) && T >= 0 && Number.isInteger(k) && k >= 1 && Number.isInteger(E) && E >= 1))
    throw new ValueError('grouping (T, k, E)', 'T >= 0, k >= 1, E >= 1 integers', [T, k, E]);
  if (g.offsets.length !== E + 1) throw new ShapeError('grouping offsets', [E + 1], [g.offsets.length]);
  if (g.order.length !== T * k) throw new ShapeError('grouping order', [T * k], [g.order.length]);
}

/** Storage format, word vectorisation (vec, one scale per word) and buffers of a weight container. */
function weightFormat(w: ExpertWeightsGpu, d: ExpertDims, opts: { vectorize?: boolean } = {}): { wf: WeightFormat; sd: GroupedGemmVariant['sd']; zp: boolean; vec: number; s1: boolean; buffers: GPUBuffer[]; wu: [number, number, number, number] } {
  const base = weightLayout(w, d);
  const V = WORD_VALUES[base.wf];
  // Whole-word loads need every row to start on a word boundary.
  const vec = opts.vectorize !== false && V > 1 && d.cols % V === 0 ? V : 1;
  const blockW = w.kind === 'fp8_block' ? w.block[1] : w.kind === 'int_block' ? w.blockSize : w.kind === 'mxfp4' ? 32 : 0;
  return { ...base, vec, s1: vec > 1 && blockW > 0 && blockW % vec === 0 };
}

function checkBias(what: string, bias: { dtype: string; shape: readonly number[] } | undefined, E: number, rows: number): GroupedGemmVariant['bias'] {
  if (!bias) return 'none';
  if (bias.dtype !== 'float32' && bias.dtype !== 'bfloat16' && bias.dtype !== 'float16') throw new DTypeError(what, ['float32', 'bfloat16', 'float16'], bias.dtype);
  if (bias.shape.length !== 2 || bias.shape[0] !== E || bias.shape[1] !== rows) throw new ShapeError(what, [E, rows], bias.shape);
  return bias.dtype;
}

function chooseTile(opts: GroupedGemmOptions, rows: number, E: number): (typeof TILES)[keyof typeof TILES] {
  if (opts.tile !== undefined && opts.tile !== 'decode' && opts.tile !== 'prefill' && opts.tile !== 'fast') throw new ValueError('tile', "'decode' | 'prefill' | 'fast' | undefined", opts.tile);
  if (opts.tile === 'fast') return TILES.prefill; // fast path: see planFastGemm (this is its fallback)
  if (opts.tile) return TILES[opts.tile];
  return TILES[tiledGemmTile(rows, E)];
}

/** The grids of one dispatch (one chunk of the stack), computed (and checked against the device limits) before anything is recorded. */
interface ChunkPlan {
  place: GemmChunkPlace;
  /** The chunk's weights (a plain container), dims, bias and outputs. */
  w: ExpertWeightsGpu;
  d: ExpertDims;
  bias: GpuTensor | undefined;
  N: number;
  nTilesN: number;
  nWork: number;
  grid: [number, number, number];
  /** The fast prefill path (grouped-gemm-fast.ts) when it applies. */
  fast?: FastGemmPlan;
}

/** The plan of one op: its tile, activation-quantiser grid and one ChunkPlan per chunk of the stack. */
interface GemmPlan {
  tile: (typeof TILES)[keyof typeof TILES];
  quantGrid: [number, number, number] | undefined;
  chunks: ChunkPlan[];
  biasDt: GroupedGemmVariant['bias'];
}

/**
 * Plans every dispatch of one op over the chunks of its stack (one chunk:
 * the whole stack, exactly the dispatches of an unchunked call). The tile and
 * the fast-path choice are made once for the whole stack (rows per expert of
 * all E), so a chunked stack runs the kernels an unchunked one would.
 */
function planGemm(
  ctx: GpuContext,
  opts: GroupedGemmOptions,
  op: 'gate_up' | 'down',
  w: ExpertStackGpu,
  bias: GpuTensor | undefined,
  layout: ExpertRowLayout,
  rows: number,
  E: number,
  K: number,
  quantRows: number,
): GemmPlan {
  const tile = chooseTile(opts, rows, E);
  const quantGrid = quantRows > 0 ? foldWorkgroups(ctx, Math.ceil((quantRows * Math.ceil(K / ACT_QUANT_GROUP)) / 64)) : undefined;
  const what = op === 'gate_up' ? 'groupedGateUp' : 'groupedDown';
  const list = expertChunkList(w, bias, what, layout);
  const Nall = expertOutputs(layout, expertDims(w).rows);
  const fastAll = planFastGemm(ctx, opts, list[0].w, rows, E, Nall, K, op) !== undefined; // fast prefill path
  const biasDts = new Set<GroupedGemmVariant['bias']>();
  const chunks = list.map((c): ChunkPlan => {
    const d = expertDims(c.w);
    biasDts.add(checkBias(list.length > 1 ? `${what} bias (chunk of experts ${c.e0}.., outputs ${c.o0}..)` : `${what} bias`, c.bias, c.experts, d.rows));
    const N = c.outputs;
    const mTiles = Math.ceil(rows / tile.tm) + Math.min(c.experts, rows);
    const nTilesN = Math.ceil(N / tile.tn);
    const nWork = mTiles * nTilesN;
    const fast = fastAll ? planFastGemm(ctx, { ...opts, tile: 'fast' }, c.w, rows, c.experts, N, K, op) : undefined;
    return { place: { e0: c.e0, experts: c.experts, o0: c.o0 }, w: c.w, d, bias: c.bias, N, nTilesN, nWork, grid: foldWorkgroups(ctx, nWork), fast };
  });
  // (a chunked stack's chunks all have the bias dtype of the first: expertChunkList checked)
  return { tile, quantGrid, chunks, biasDt: [...biasDts][0] };
}

function outTensor(ctx: GpuContext, opts: GroupedGemmOptions, shape: number[], label: string): GpuTensor {
  return opts.pool ? opts.pool.tensor('float32', shape, label) : GpuTensor.empty(ctx, 'float32', shape, label);
}

/** Records the fp8 activation quantiser; returns the temp buffer of quantised rows. */
function recordActQuant(rec: Recorder, grid: [number, number, number], x: GPUBuffer, rows: number, cols: number, kdiv: number, rowScale: GPUBuffer | undefined, clamp: number | undefined): GPUBuffer {
  const out = rec.temp(rows * cols * 4, 'act_quant.out');
  const groups = Math.ceil(cols / ACT_QUANT_GROUP);
  rec.dispatch({
    kernel: actQuantKernel,
    variant: { rowScale: !!rowScale, clamp: clamp !== undefined },
    buffers: rowScale ? [x, rowScale, out] : [x, out],
    uniforms: new Uniforms().u32(rows, cols, kdiv, groups).f32(clamp ?? 0).u32(0, 0, 0).finish(),
    workgroups: grid,
  });
  return out;
}

function gemmVariant(
  op: GroupedGemmVariant['op'],
  act: ActParams | undefined,
  wf: { wf: WeightFormat; sd: GroupedGemmVariant['sd']; zp: boolean; vec: number; s1: boolean },
  bias: GroupedGemmVariant['bias'],
  xmode: GroupedGemmVariant['xmode'],
  rowScale: boolean,
  tile: (typeof TILES)[keyof typeof TILES],
): GroupedGemmVariant {
  const v: GroupedGemmVariant = { op, act: act?.kind ?? 'none', interleaved: act?.interleaved ?? false, wf: wf.wf, sd: wf.sd, vec: wf.vec, s1: wf.s1, bias, xmode, rowScale, ...tile };
  // zp only when set, so the pipelines of weights without zero points keep their variant keys.
  if (wf.zp) v.zp = true;
  return v;
}

/** One grouped GEMM call: its inputs and output (the weights are in the plan's chunks). */
interface GemmCall {
  op: 'gate_up' | 'down';
  act: ActParams | undefined;
  x: GPUBuffer;
  xmode: GroupedGemmVariant['xmode'];
  rowScale: GPUBuffer | undefined;
  g: GroupingGpu;
  K: number;
  /** Outputs of the whole stack (the row stride of y). */
  N: number;
  y: GpuTensor;
  vectorize: boolean | undefined;
}

/** Records the op's dispatches: per chunk of the stack, its tile offsets (once per expert range) and its GEMM. */
function recordGemm(rec: Recorder, c: GemmCall, plan: GemmPlan): void {
  const { T, k } = c.g;
  const rows = T * k;
  const scratch: GemmCallScratch = { meta: new Map() };
  for (const ch of plan.chunks) {
    if (ch.fast) {
      // fast prefill path
      recordFastGemm(rec, { ...c, w: ch.w, d: ch.d, bias: ch.bias, biasDt: plan.biasDt, N: ch.N, place: ch.place, ys: c.N, scratch }, ch.fast);
      continue;
    }
    const { tile } = plan;
    const meta = recordTileOffsets(rec, c.g.offsets.buffer, tile.tm, ch.place, scratch);
    const wf = weightFormat(ch.w, ch.d, { vectorize: c.vectorize });
    const variant = gemmVariant(c.op, c.act, wf, plan.biasDt, c.xmode, !!c.rowScale, tile);
    const buffers: GPUBuffer[] = [c.x, c.g.order.buffer, meta];
    if (c.rowScale) buffers.push(c.rowScale);
    buffers.push(...wf.buffers);
    if (ch.bias) buffers.push(ch.bias.buffer);
    buffers.push(c.y.buffer);
    rec.dispatch({
      kernel: groupedGemmKernel,
      variant,
      buffers,
      uniforms: new Uniforms()
        .u32(rows, k, ch.place.experts, c.K, ch.N, ch.d.rows, ch.nTilesN, ch.nWork, ...wf.wu)
        .f32(c.act?.limit ?? 0, c.act?.alpha ?? 0)
        .u32(ch.place.o0, c.N)
        .finish(),
      workgroups: ch.grid,
    });
  }
}

/**
 * gate_up projection plus activation for every grouped row: for grouped row
 * p (pair = order[p], token = pair / k, expert e with offsets[e] <= p <
 * offsets[e+1]) computes g and u = x[token] (x rowScale[pair]) against the
 * gate and up rows of W[e] ([E, 2I, H], `act.layout` concat or interleaved),
 * adds bias[e] ([E, 2I], same row order), applies `act.kind` and writes
 * h[p, 0..I-1]. With `actQuant: 'fp8_dynamic'` the input rows are first
 * fake-quantised to fp8 e4m3 per 128 channels. Records into `rec`; returns
 * float32 [T*k, I] owned by the caller.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx);
 * const h = groupedGateUpGpu(ctx, rec, x, grouping, { kind: 'dense', w: gateUp }, undefined, { kind: 'silu', layout: 'concat' });
 * const y = groupedDownGpu(ctx, rec, h, grouping, { kind: 'dense', w: down });
 * rec.submit();
 * ```
 */
export function groupedGateUpGpu(
  ctx: GpuContext,
  rec: Recorder,
  x: GpuTensor,
  g: GroupingGpu,
  w: ExpertStackGpu,
  bias: GpuTensor | undefined,
  act: ExpertActivation,
  opts: GroupedGateUpOptions = {},
): GpuTensor {
  expectLive('groupedGateUp', { x, bias, rowScale: opts.rowScale, 'g.offsets': g.offsets, 'g.order': g.order });
  const { T, k, E } = checkGroupingGpu(g);
  if (x.dtype !== 'float32') throw new DTypeError('groupedGateUp x', ['float32'], x.dtype);
  if (x.shape.length !== 2 || x.shape[0] !== T) throw new ShapeError('groupedGateUp x', `[T=${T}, H]`, x.shape);
  const H = x.shape[1];
  const d = expertDims(w, 'groupedGateUp weights');
  if (d.E !== E || d.cols !== H || d.rows % 2 !== 0) throw new ShapeError('groupedGateUp weights', `[E=${E}, 2I (even), H=${H}]`, [d.E, d.rows, d.cols]);
  const I = d.rows / 2;
  const a = checkAct(act);
  const rs = opts.rowScale;
  if (rs) {
    if (rs.dtype !== 'float32') throw new DTypeError('groupedGateUp rowScale', ['float32'], rs.dtype);
    if (rs.size !== T * k) throw new ShapeError('groupedGateUp rowScale', [T, k], rs.shape);
  }
  const q = checkActQuant(opts);
  const plan = planGemm(ctx, opts, 'gate_up', w, bias, a.interleaved ? 'interleaved' : 'concat', T * k, E, H, q.on && T * k > 0 && H > 0 ? (rs ? T * k : T) : 0);
  const y = outTensor(ctx, opts, [T * k, I], 'grouped_gate_up.out');
  if (T * k === 0 || I === 0) return y;
  let xb = x.buffer;
  let xmode: GroupedGemmVariant['xmode'] = 'token';
  let rowScale = rs?.buffer;
  if (q.on && H > 0) {
    // Quantise the rows the experts see: per token, or per pair when scaled first.
    xb = rs ? recordActQuant(rec, plan.quantGrid!, x.buffer, T * k, H, k, rs.buffer, q.clamp) : recordActQuant(rec, plan.quantGrid!, x.buffer, T, H, 1, undefined, q.clamp);
    xmode = rs ? 'pair' : 'token';
    rowScale = undefined;
  }
  recordGemm(rec, { op: 'gate_up', act: a, x: xb, xmode, rowScale, g, K: H, N: I, y, vectorize: opts.vectorize }, plan);
  return y;
}

/**
 * down projection of the grouped rows: y[p, :] = h[p, :] @ W[e]^T + bias[e]
 * with W [E, H, I] in its storage type and bias [E, H]. With `actQuant:
 * 'fp8_dynamic'` the rows of h are fake-quantised to fp8 e4m3 per 128
 * channels first. Records into `rec`; returns float32 [T*k, H].
 *
 * @example
 * ```ts
 * const y = groupedDownGpu(ctx, rec, h, grouping, { kind: 'mxfp4', blocks, scales }, downBias);
 * ```
 */
export function groupedDownGpu(
  ctx: GpuContext,
  rec: Recorder,
  h: GpuTensor,
  g: GroupingGpu,
  w: ExpertStackGpu,
  bias?: GpuTensor,
  opts: GroupedGemmOptions = {},
): GpuTensor {
  expectLive('groupedDown', { h, bias, 'g.offsets': g.offsets, 'g.order': g.order });
  const { T, k, E } = checkGroupingGpu(g);
  if (h.dtype !== 'float32') throw new DTypeError('groupedDown h', ['float32'], h.dtype);
  if (h.shape.length !== 2 || h.shape[0] !== T * k) throw new ShapeError('groupedDown h', `[T*k=${T * k}, I]`, h.shape);
  const I = h.shape[1];
  const d = expertDims(w, 'groupedDown weights');
  if (d.E !== E || d.cols !== I) throw new ShapeError('groupedDown weights', `[E=${E}, H, I=${I}]`, [d.E, d.rows, d.cols]);
  const H = d.rows;
  const q = checkActQuant(opts);
  const plan = planGemm(ctx, opts, 'down', w, bias, 'rows', T * k, E, I, q.on && T * k > 0 && I > 0 ? T * k : 0);
  const y = outTensor(ctx, opts, [T * k, H], 'grouped_down.out');
  if (T * k === 0 || H === 0) return y;
  const xb = q.on && I > 0 ? recordActQuant(rec, plan.quantGrid!, h.buffer, T * k, I, 1, undefined, q.clamp) : h.buffer;
  recordGemm(rec, { op: 'down', act: undefined, x: xb, xmode: 'grouped', rowScale: undefined, g, K: I, N: H, y, vectorize: opts.vectorize }, plan);
  return y;
}

/** The bias [E * rows] of the reference GEMMs as f32: `bias`, or a chunked stack's chunk biases (then `bias` must be undefined). */
function biasRef(w: ExpertStackHost, bias: HostTensor | undefined, what: string, E: number, rows: number): Float32Array | undefined {
  checkBias(what, bias, E, rows);
  if (w.kind !== 'chunked' || !w.chunks[0].bias) return bias ? toFloat32(bias.dtype, bias.data) : undefined;
  if (bias) throw new ValueError(what, 'undefined with chunked weights (their biases travel in the chunks)', `a ${bias.dtype} [${bias.shape.join(', ')}] tensor`);
  const out = new Float32Array(E * rows);
  for (let e = 0; e < E; e++)
    for (let r = 0; r < rows; r++) {
      const { chunk, localRow } = chunkOfRow(w, e, r);
      const b = chunk.bias!;
      const i = (e - chunk.e0) * b.shape[1] + localRow;
      out[e * rows + r] = toFloat32(b.dtype, b.data.subarray(i, i + 1) as typeof b.data)[0];
    }
  return out;
}

/**
 * TypeScript reference of {@link groupedGateUpGpu} (also the CPU path):
 * weights are decoded one row at a time, accumulation in f64 rounded to f32.
 *
 * @example
 * ```ts
 * const h = groupedGateUpRef(x, groupRef(idx, T, k, E), { kind: 'dense', w }, undefined, { kind: 'silu', layout: 'concat' });
 * ```
 */
export function groupedGateUpRef(
  x: Float32Array,
  g: GroupingRef,
  w: ExpertStackHost,
  bias: HostTensor | undefined,
  act: ExpertActivation,
  rowScale?: Float32Array,
  opts: ExpertActQuantOptions = {},
): Float32Array {
  checkGroupingRef(g);
  const { T, k, E } = g;
  const d = expertDims(w, 'groupedGateUpRef weights');
  const H = d.cols;
  if (d.E !== E || d.rows % 2 !== 0) throw new ShapeError('groupedGateUpRef weights', `[E=${E}, 2I (even), H]`, [d.E, d.rows, d.cols]);
  if (x.length !== T * H) throw new ShapeError('groupedGateUpRef x', `[T=${T}, H=${H}] (${T * H} values)`, [x.length]);
  if (rowScale && rowScale.length !== T * k) throw new ShapeError('groupedGateUpRef rowScale', [T, k], [rowScale.length]);
  const I = d.rows / 2;
  const a = checkAct(act);
  const b = biasRef(w, bias, 'groupedGateUpRef bias', E, d.rows);
  const q = checkActQuant(opts);
  const rows = T * k;
  // Input rows in grouped order (scaled, then optionally fake-quantised).
  const xin = new Float32Array(rows * H);
  for (let p = 0; p < rows; p++) {
    const pair = g.order[p];
    const t = Math.floor(pair / k);
    const s = rowScale ? rowScale[pair] : 1;
    for (let c = 0; c < H; c++) xin[p * H + c] = rowScale ? Math.fround(x[t * H + c] * s) : x[t * H + c];
  }
  const xq = q.on ? fakeQuantFp8Ref(xin, rows, H, q.clamp) : xin;
  const out = new Float32Array(rows * I);
  const gr = new Float32Array(H);
  const ur = new Float32Array(H);
  for (let e = 0; e < E; e++) {
    const p0 = g.offsets[e];
    const p1 = g.offsets[e + 1];
    if (p1 <= p0) continue;
    for (let i = 0; i < I; i++) {
      const rg = a.interleaved ? 2 * i : i;
      const ru = a.interleaved ? 2 * i + 1 : I + i;
      decodeExpertRow(w, e, rg, gr);
      decodeExpertRow(w, e, ru, ur);
      const bg = b ? b[e * d.rows + rg] : 0;
      const bu = b ? b[e * d.rows + ru] : 0;
      for (let p = p0; p < p1; p++) {
        let sg = 0;
        let su = 0;
        for (let c = 0; c < H; c++) {
          const xv = xq[p * H + c];
          sg += xv * gr[c];
          su += xv * ur[c];
        }
        out[p * I + i] = gatedActivationRef(a, Math.fround(sg + bg), Math.fround(su + bu));
      }
    }
  }
  return out;
}

/**
 * TypeScript reference of {@link groupedDownGpu}: y[p] = h[p] @ W[e]^T + bias[e].
 *
 * @example
 * ```ts
 * const y = groupedDownRef(h, grouping, { kind: 'dense', w: down });
 * ```
 */
export function groupedDownRef(h: Float32Array, g: GroupingRef, w: ExpertStackHost, bias?: HostTensor, opts: ExpertActQuantOptions = {}): Float32Array {
  checkGroupingRef(g);
  const { T, k, E } = g;
  const d = expertDims(w, 'groupedDownRef weights');
  if (d.E !== E) throw new ShapeError('groupedDownRef weights', `[E=${E}, H, I]`, [d.E, d.rows, d.cols]);
  const I = d.cols;
  const H = d.rows;
  const rows = T * k;
  if (h.length !== rows * I) throw new ShapeError('groupedDownRef h', `[T*k=${rows}, I=${I}] (${rows * I} values)`, [h.length]);
  const b = biasRef(w, bias, 'groupedDownRef bias', E, H);
  const q = checkActQuant(opts);
  const hq = q.on ? fakeQuantFp8Ref(h, rows, I, q.clamp) : h;
  const out = new Float32Array(rows * H);
  const wr = new Float32Array(I);
  for (let e = 0; e < E; e++) {
    const p0 = g.offsets[e];
    const p1 = g.offsets[e + 1];
    if (p1 <= p0) continue;
    for (let n = 0; n < H; n++) {
      decodeExpertRow(w, e, n, wr);
      const bn = b ? b[e * H + n] : 0;
      for (let p = p0; p < p1; p++) {
        let s = 0;
        for (let c = 0; c < I; c++) s += hq[p * I + c] * wr[c];
        out[p * H + n] = s + bn;
      }
    }
  }
  return out;
}

/** What {@link warmGroupedGemm} compiles pipelines for: one grouped GEMM call site of a layer. @example `{ op: 'down', w: down, bias: downBias }` */
export interface GroupedGemmWarmSpec extends ExpertActQuantOptions {
  /** 'gate_up' (needs `act`) or 'down'. */
  op: 'gate_up' | 'down';
  /** The weights the call will use (their format selects the variant; a chunked stack: its chunks' format and biases). */
  w: ExpertStackGpu;
  /** The bias the call will pass, if any. */
  bias?: GpuTensor;
  /** gate_up activation. */
  act?: ExpertActivation;
  /** Whether gate_up will get `rowScale`. */
  rowScale?: boolean;
}

/**
 * Compiles the pipelines a grouped GEMM call will use (both tile shapes, the
 * tile-offset kernel and, with `actQuant`, the activation quantiser) with
 * createComputePipelineAsync, ahead of the first forward.
 *
 * @example
 * ```ts
 * await warmGroupedGemm(ctx, { op: 'gate_up', w: gateUp, act: { kind: 'silu', layout: 'concat' } });
 * await warmGroupedGemm(ctx, { op: 'down', w: down });
 * ```
 */
export async function warmGroupedGemm(ctx: GpuContext, spec: GroupedGemmWarmSpec): Promise<void> {
  if (spec.op !== 'gate_up' && spec.op !== 'down') throw new ValueError('warmGroupedGemm op', "'gate_up' | 'down'", spec.op);
  expertDims(spec.w, 'warmGroupedGemm weights');
  const act = spec.op === 'gate_up' ? checkAct(spec.act as ExpertActivation) : undefined;
  // every chunk of a stack runs the same variants: those of its first chunk
  const [first] = expertChunkList(spec.w, spec.bias, 'warmGroupedGemm', spec.w.kind === 'chunked' ? spec.w.layout : 'rows');
  const d = expertDims(first.w);
  const biasDt = checkBias('warmGroupedGemm bias', first.bias, d.E, d.rows);
  const q = checkActQuant(spec);
  const wf = weightFormat(first.w, d);
  const rs = spec.op === 'gate_up' && !!spec.rowScale;
  const xmode: GroupedGemmVariant['xmode'] = spec.op === 'down' ? 'grouped' : q.on && rs ? 'pair' : 'token';
  const jobs: Promise<void>[] = [];
  for (const tile of Object.values(TILES)) {
    jobs.push(warmPipeline(ctx, tileOffsetsKernel, { tm: tile.tm }));
    jobs.push(warmPipeline(ctx, groupedGemmKernel, gemmVariant(spec.op, act, wf, biasDt, xmode, rs && !q.on, tile)));
  }
  if (q.on) jobs.push(warmPipeline(ctx, actQuantKernel, { rowScale: rs, clamp: q.clamp !== undefined }));
  else jobs.push(warmGroupedGemmFast(ctx, { op: spec.op, w: first.w, K: d.cols, act, biasDt, xmode, rowScale: rs })); // fast prefill path
  await Promise.all(jobs);
}
