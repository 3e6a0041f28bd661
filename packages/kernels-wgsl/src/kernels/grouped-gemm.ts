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
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { foldWorkgroups, type Recorder, warmPipeline } from '../runtime/kernel.js';
import type { ExpertActivation, ExpertRowLayout, ExpertStackGpu, ExpertWeightsGpu, GroupingGpu } from './moe-types.js';
import { expertChunkList, expertDims, expertOutputs, type ExpertDims } from './expert-weights.js';
import { expectLive } from './op-util.js';
import { ACT_QUANT_GROUP, type ExpertActQuantOptions } from './quant-ref.js';
import { actQuantKernel, groupedGemmKernel, recordTileOffsets, tileOffsetsKernel, tileOffsetsOf, type GemmCallScratch, type GemmChunkPlace, type GroupedGemmVariant } from './grouped-gemm-wgsl.js';
import { WORD_VALUES, weightLayout, type WeightLayout } from './grouped-gemm-weights.js';
import { checkAct, checkActQuant, checkBias, checkGroupingGpu, type ActParams } from './grouped-gemm-args.js';
import { tiledGemmTile } from './plan.js';
// --- fast prefill path (grouped-gemm-fast.ts) ---
import { planFastGemm, recordFastGemm, warmGroupedGemmFast, type FastGemmOptions, type FastGemmPlan } from './grouped-gemm-fast.js';
// --- end fast prefill path ---


/** Options of the grouped GEMMs. @example `groupedDownGpu(ctx, rec, h, g, w, undefined, { pool, actQuant: 'fp8_dynamic' })` */
export interface GroupedGemmOptions extends ExpertActQuantOptions, FastGemmOptions {
  /** Output buffers come from this pool when given. */
  pool?: BufferPool;
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

/** A weight container as the tiled GEMM reads it: its layout (bindings, uniforms), word vectorisation (vec) and one scale per word (s1). */
type TiledWeights = WeightLayout & { vec: number; s1: boolean };

/** The tiled GEMM's view of a weight container (whole-word loads where every row starts on a word boundary). */
function weightFormat(w: ExpertWeightsGpu, d: ExpertDims, opts: { vectorize?: boolean } = {}): TiledWeights {
  const base = weightLayout(w, d);
  const V = WORD_VALUES[base.wf];
  // Whole-word loads need every row to start on a word boundary.
  const vec = opts.vectorize !== false && V > 1 && d.cols % V === 0 ? V : 1;
  const blockW = w.kind === 'fp8_block' ? w.block[1] : w.kind === 'int_block' ? w.blockSize : w.kind === 'mxfp4' ? 32 : 0;
  return { ...base, vec, s1: vec > 1 && blockW > 0 && blockW % vec === 0 };
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
  // written in full by the quantiser (every row, every 128-column group): from the shared scratch cache, or a capture's
  // transient scratch, instead of a zero-filled buffer made every forward
  const out = rec.temp(rows * cols * 4, 'act_quant.out', { reuse: true });
  rec.dispatch({
    kernel: actQuantKernel,
    variant: { rowScale: !!rowScale, clamp: clamp !== undefined },
    bind: { X: x, ...(rowScale ? { RS: rowScale } : {}), Y: out },
    params: { rows, cols, kdiv, groups: Math.ceil(cols / ACT_QUANT_GROUP), clampv: clamp ?? 0 },
    workgroups: grid,
  });
  return out;
}

function gemmVariant(
  op: GroupedGemmVariant['op'],
  act: ActParams | undefined,
  wf: Pick<TiledWeights, 'wf' | 'sd' | 'zp' | 'vec' | 's1'>,
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
  // the tile offsets shared with the recording's other GEMMs of this grouping (the layer's gate_up and down)
  const scratch: GemmCallScratch = { meta: tileOffsetsOf(rec, c.g.offsets) };
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
    rec.dispatch({
      kernel: groupedGemmKernel,
      variant,
      bind: { X: c.x, ORDER: c.g.order.buffer, META: meta, ...(c.rowScale ? { RS: c.rowScale } : {}), ...wf.bind, ...(ch.bias ? { BIAS: ch.bias.buffer } : {}), Y: c.y.buffer },
      params: { nRows: rows, k, E: ch.place.experts, K: c.K, N: ch.N, wRows: ch.d.rows, nTilesN: ch.nTilesN, nWork: ch.nWork, ...wf.params, limit: c.act?.limit ?? 0, alpha: c.act?.alpha ?? 0, yo: ch.place.o0, ys: c.N },
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
