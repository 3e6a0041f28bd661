/**
 * The three ways an expert stack is made on the GPU, each split over buffers at the binding limit as
 * planExpertChunks says and each leaving nothing allocated on failure: uploaded from host tensors
 * (uploadExpertWeights / uploadExpertStack), created empty for a writer (createExpertStack), and streamed one
 * expert at a time into buffers mapped at creation (uploadExpertStackStreamed). Built on expert-weights.ts's slot
 * walk, so that every format's tensors stay in step.
 */
import { DTypeError, HostTensor, ShapeError, ValueError, type DType } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor, checkBufferSize, gpuByteLength } from '../runtime/tensor.js';
import type { ExpertChunk, ExpertRowLayout, ExpertStackGpu, ExpertWeightsGpu, ExpertWeightsHost, ExpertWeightsShape } from './moe-types.js';
import {
  checkLayout,
  checkStackBias,
  chunkTensor,
  destroyExpertWeights,
  expectDims,
  expectDt,
  hostChunk,
  mapContainer,
  outputRowRanges,
  plainDims,
  planExpertChunks,
  slots,
  type ExpertChunkRange,
  type Plain,
  type Shaped,
} from './expert-weights.js';

/**
 * Uploads host expert weights to the GPU in their storage type (codes and
 * scales as they are; nothing is dequantised), as one container. The caller
 * owns the result: free it with {@link destroyExpertWeights}. A tensor over
 * the device's binding limit is a LimitError: {@link uploadExpertStack}
 * splits such stacks.
 *
 * @example
 * ```ts
 * const wg = uploadExpertWeights(ctx, quantizeExperts(f32, E, 2 * I, H, { kind: 'mxfp4' }));
 * destroyExpertWeights(wg);
 * ```
 */
export function uploadExpertWeights(ctx: GpuContext, w: ExpertWeightsHost, label = 'experts'): ExpertWeightsGpu {
  plainDims(w, 'uploadExpertWeights weights');
  const uploaded: GpuTensor[] = [];
  try {
    return mapContainer(w, (t, _g, field) => {
      const u = GpuTensor.upload(ctx, t, `${label}.${field}`);
      uploaded.push(u);
      return u;
    }) as ExpertWeightsGpu;
  } catch (e) {
    for (const u of uploaded) u.destroy(); // nothing half-uploaded
    throw e;
  }
}


/** Options of {@link uploadExpertStack}. @example `{ layout: 'concat', bias: gateUpBias }` */
export interface UploadExpertStackOptions {
  /** How an expert's rows map to outputs, kept together by a split inside an expert (gate_up: the activation's layout; down: 'rows'). */
  layout: ExpertRowLayout;
  /** Bias [E, rows] (float32 / bfloat16 / float16), split with the weights. */
  bias?: HostTensor;
  /** Bytes per binding (default and cap: `ctx.maxBindingBytes`). */
  maxBindingBytes?: number;
  /** Label prefix of the buffers. */
  label?: string;
}

/**
 * Uploads an expert stack (weights with their scales, and a bias) as one
 * container when every tensor fits one binding (`weights` plain, `bias` a
 * GpuTensor), else split over as many buffers as `ctx.maxBindingBytes`
 * requires (see {@link planExpertChunks}; `weights` chunked with the biases
 * inside, `bias` undefined). Each chunk is uploaded from a view of the host
 * data (whole experts) or a copy of its rows (a concat split), never a copy
 * of the whole stack. Pass both to the GEMMs as they are; free with
 * {@link destroyExpertWeights} (and `bias?.destroy()`).
 *
 * @example
 * ```ts
 * const s = uploadExpertStack(ctx, hostGateUp, { layout: 'concat', bias });
 * const h = groupedGateUpGpu(ctx, rec, x, g, s.weights, s.bias, act);
 * ```
 */
export function uploadExpertStack(ctx: GpuContext, w: ExpertWeightsHost, opts: UploadExpertStackOptions): { weights: ExpertStackGpu; bias: GpuTensor | undefined } {
  const { E, rows, cols } = plainDims(w, 'uploadExpertStack weights');
  const layout = checkLayout('uploadExpertStack', opts.layout, rows);
  if (opts.bias) checkStackBias('uploadExpertStack bias', opts.bias, E, rows);
  const max = Math.min(opts.maxBindingBytes ?? ctx.maxBindingBytes, ctx.maxBindingBytes);
  const label = opts.label ?? 'experts';
  const ranges = planExpertChunks(w, layout, max, opts.bias, label);
  if (ranges.length === 1) {
    const weights = uploadExpertWeights(ctx, w, label);
    try {
      return { weights, bias: opts.bias ? GpuTensor.upload(ctx, opts.bias, `${label}.bias`) : undefined };
    } catch (e) {
      destroyExpertWeights(weights);
      throw e;
    }
  }
  const chunks: ExpertChunk<ExpertWeightsGpu, GpuTensor>[] = [];
  try {
    for (const [i, r] of ranges.entries()) {
      // one chunk's host tensors at a time (views, or a copy of its rows)
      const hc = hostChunk(w, E, rows, layout, r, opts.bias);
      chunks.push({ ...r, w: uploadExpertWeights(ctx, hc.w, `${label}.${i}`) });
      if (hc.bias) chunks[i].bias = GpuTensor.upload(ctx, hc.bias, `${label}.${i}.bias`);
    }
  } catch (e) {
    for (const c of chunks) {
      destroyExpertWeights(c.w);
      c.bias?.destroy();
    }
    throw e;
  }
  return { weights: { kind: 'chunked', E, rows, cols, layout, chunks }, bias: undefined };
}

/** Options of {@link createExpertStack} and {@link uploadExpertStackStreamed}. @example `{ layout: 'concat', label: 'experts.gate_up_proj' }` */
export interface ExpertStackPlanOptions {
  /** How an expert's rows map to outputs, kept together by a split inside an expert (gate_up: the activation's layout; down: 'rows'). */
  layout: ExpertRowLayout;
  /** The dtype of a bias [E, rows] split with the weights (float32 / bfloat16 / float16); none by default. */
  biasDtype?: DType;
  /** Bytes per binding (default and cap: `ctx.maxBindingBytes`). */
  maxBindingBytes?: number;
  /** Label prefix of the buffers. */
  label?: string;
}

/** One expert of a streamed stack: a container of E = 1 with the stack's kind and dtypes, and its bias [1, rows] when the stack has one. */
export interface ExpertStreamPiece {
  w: ExpertWeightsHost;
  bias?: HostTensor;
}

/** The shape of a chunk's tensor: [experts, tensor rows of its outputs, ...] for a tensor [E, ceil(rows / g), ...] of the stack. */
function chunkTensorShape(shape: readonly number[], g: number, rows: number, layout: ExpertRowLayout, r: ExpertChunkRange): number[] {
  const local = outputRowRanges(layout, rows, r.o0, r.outputs).reduce((n, [a, b]) => n + Math.ceil(b / g) - a / g, 0);
  return [r.experts, local, ...shape.slice(2)];
}

/** A GPU buffer mapped at creation for a tensor of `shape`: `put` copies a host tensor into its i-th slot of that size, `finish` unmaps it as a GpuTensor. */
interface MappedTensor extends Shaped {
  put(src: HostTensor, i: number): void;
  finish(): GpuTensor;
  destroy(): void;
}

function mappedTensor(ctx: GpuContext, dtype: DType, shape: number[], label: string): MappedTensor {
  ctx.assertAlive();
  const bytes = gpuByteLength(dtype, shape.reduce((a, b) => a * b, 1));
  checkBufferSize(ctx, bytes, label);
  const buf = ctx.device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  const view = new Uint8Array(buf.getMappedRange());
  return {
    dtype,
    shape,
    put: (src, i) => {
      const b = src.bytes();
      view.set(b, i * b.byteLength);
    },
    finish: () => {
      buf.unmap();
      return new GpuTensor(ctx, dtype, shape, buf);
    },
    destroy: () => buf.destroy(),
  };
}

/** A stack's dimensions, row layout, chunk ranges and label, as {@link planStack} checks them. */
interface PlannedStack {
  E: number;
  rows: number;
  cols: number;
  layout: ExpertRowLayout;
  ranges: ExpertChunkRange[];
  label: string;
}

/** The chunks (or the single range) of a stack shape, checked, with the binding limit of `opts` capped by the context's. */
function planStack(ctx: GpuContext, shape: ExpertWeightsShape, opts: ExpertStackPlanOptions, what: string): PlannedStack {
  const { E, rows, cols } = plainDims(shape, `${what} shape`);
  const layout = checkLayout(what, opts.layout, rows);
  if (opts.biasDtype !== undefined) expectDt(`${what} biasDtype`, { dtype: opts.biasDtype, shape: [] }, ['float32', 'bfloat16', 'float16']);
  const max = Math.min(opts.maxBindingBytes ?? ctx.maxBindingBytes, ctx.maxBindingBytes);
  const label = opts.label ?? 'experts';
  const ranges = planExpertChunks(shape, layout, max, opts.biasDtype ? { dtype: opts.biasDtype } : undefined, label);
  return { E, rows, cols, layout, ranges, label };
}

/** Frees the chunks made so far (nothing half-made on failure). */
function destroyChunks(chunks: readonly ExpertChunk<ExpertWeightsGpu, GpuTensor>[]): void {
  for (const c of chunks) {
    destroyExpertWeights(c.w);
    c.bias?.destroy();
  }
}

/** The stack from its chunks: one range is a plain container (bias separate), several a chunked one. */
function stackOf({ E, rows, cols, layout }: PlannedStack, chunks: ExpertChunk<ExpertWeightsGpu, GpuTensor>[]): { weights: ExpertStackGpu; bias: GpuTensor | undefined } {
  if (chunks.length === 1) return { weights: chunks[0].w, bias: chunks[0].bias };
  return { weights: { kind: 'chunked', E, rows, cols, layout, chunks }, bias: undefined };
}

/**
 * Allocates an expert stack of `shape` on the GPU without data (zeros),
 * split over buffers as {@link planExpertChunks} says for the binding limit
 * (one plain container when everything fits), for a caller that writes the
 * tensors itself (a GPU kernel generating weights, `queue.writeBuffer`).
 * Nothing is staged on the host. Free with {@link destroyExpertWeights}.
 *
 * @example
 * ```ts
 * const s = createExpertStack(ctx, { kind: 'dense', w: { dtype: 'bfloat16', shape: [256, 4096, 7168] } }, { layout: 'concat' });
 * for (const t of expertTensors(s.weights)) fill(t);
 * ```
 */
export function createExpertStack(ctx: GpuContext, shape: ExpertWeightsShape, opts: ExpertStackPlanOptions): { weights: ExpertStackGpu; bias: GpuTensor | undefined } {
  const plan = planStack(ctx, shape, opts, 'createExpertStack');
  const chunks: ExpertChunk<ExpertWeightsGpu, GpuTensor>[] = [];
  try {
    for (const [i, r] of plan.ranges.entries()) {
      const c = chunkTensors(shape, opts, plan, i, (dtype, dims, label) => GpuTensor.empty(ctx, dtype, dims, label));
      chunks.push({ ...r, w: c.w as ExpertWeightsGpu, ...(c.bias ? { bias: c.bias } : {}) });
    }
  } catch (e) {
    destroyChunks(chunks);
    throw e;
  }
  return stackOf(plan, chunks);
}

/**
 * The tensors of chunk `i` of a stack of `shape` planned as `plan` (its
 * weights as the container stores them, and its bias with
 * `opts.biasDtype`), each made by `make`: empty GPU tensors for
 * {@link createExpertStack}, buffers mapped at creation for
 * {@link uploadExpertStackStreamed}. On an error the ones made are freed.
 */
function chunkTensors<T extends { destroy(): void }>(
  shape: ExpertWeightsShape,
  opts: ExpertStackPlanOptions,
  plan: PlannedStack,
  i: number,
  make: (dtype: DType, dims: number[], label: string) => T,
): { w: Record<string, unknown>; bias: T | undefined; made: T[] } {
  const { E, rows, layout, ranges, label } = plan;
  const r = ranges[i];
  const l = ranges.length === 1 ? label : `${label}.${i}`;
  const made: T[] = [];
  const add = (t: T): T => (made.push(t), t);
  try {
    const w = mapShape(shape, (t, g, field) => add(make(t.dtype, chunkTensorShape(t.shape, g, rows, layout, r), `${l}.${field}`))) as Record<string, unknown>;
    const bias = opts.biasDtype ? add(make(opts.biasDtype, chunkTensorShape([E, rows], 1, rows, layout, r), `${l}.bias`)) : undefined;
    return { w, bias, made };
  } catch (e) {
    for (const t of made) t.destroy();
    throw e;
  }
}

/** The same container shape with its tensors replaced by `f(tensor, row group, field)`. */
function mapShape(w: ExpertWeightsShape, f: (t: Shaped, g: number, field: string) => unknown): unknown {
  const out: Record<string, unknown> = { ...w };
  if (w.kind === 'fp8_block') out.block = [w.block[0], w.block[1]];
  for (const s of slots(w as Plain<Shaped>)) out[s.field] = f(s.t, s.g, s.field);
  return out;
}

/**
 * Uploads an expert stack of `shape` read one expert at a time
 * (`readExpert(e)`: a container of that expert alone, E = 1, as the stack
 * stores it, and its bias row), never holding the whole stack on the host:
 * each chunk of {@link planExpertChunks} is assembled in its own buffers
 * (mapped at creation: host memory of at most the binding limit per tensor),
 * unmapped before the next. An expert split over several chunks is read once. The
 * stacks of a checkpoint larger than host memory or than one typed array
 * (DeepSeek-V3's gate_up: 15 GB in bf16) load this way. Each piece is
 * checked (kind, dtypes, [1, rows, cols]); on any error nothing stays
 * allocated. The chunk's buffers are mapped at creation and each expert's
 * rows are copied straight into them. The result is what
 * {@link uploadExpertStack} gives.
 *
 * @example
 * ```ts
 * const s = await uploadExpertStackStreamed(ctx, shape, { layout: 'concat' }, async (e) => ({ w: { kind: 'dense', w: await readExpert(e) } }));
 * ```
 */
export async function uploadExpertStackStreamed(
  ctx: GpuContext,
  shape: ExpertWeightsShape,
  opts: ExpertStackPlanOptions,
  readExpert: (e: number) => ExpertStreamPiece | Promise<ExpertStreamPiece>,
): Promise<{ weights: ExpertStackGpu; bias: GpuTensor | undefined }> {
  const plan = planStack(ctx, shape, opts, 'uploadExpertStackStreamed');
  const { rows, cols, layout } = plan;
  const want = slots(shape as Plain<Shaped>);
  let last: { e: number; piece: ExpertStreamPiece } | undefined;
  const piece = async (e: number): Promise<ExpertStreamPiece> => {
    if (last?.e === e) return last.piece;
    const p = await readExpert(e);
    const at = `uploadExpertStackStreamed expert ${e}`;
    if (p?.w?.kind !== shape.kind) throw new ValueError(`${at} kind`, shape.kind, p?.w?.kind);
    const d = plainDims(p.w, at);
    if (d.E !== 1 || d.rows !== rows || d.cols !== cols) throw new ShapeError(`${at} weights`, [1, rows, cols], [d.E, d.rows, d.cols]);
    slots(p.w).forEach((s, j) => {
      if (j >= want.length || s.field !== want[j].field) throw new ValueError(`${at} tensors`, want.map((x) => x.field).join(', '), slots(p.w).map((x) => x.field).join(', '));
      if (s.t.dtype !== want[j].t.dtype) throw new DTypeError(`${at} ${s.field}`, [want[j].t.dtype], s.t.dtype);
    });
    if (slots(p.w).length !== want.length) throw new ValueError(`${at} tensors`, want.map((x) => x.field).join(', '), slots(p.w).map((x) => x.field).join(', '));
    if (!!opts.biasDtype !== !!p.bias) throw new ValueError(`${at} bias`, opts.biasDtype ? `a ${opts.biasDtype} [1, ${rows}] tensor` : 'none', p.bias ? 'a bias' : 'none');
    if (p.bias) {
      expectDims(`${at} bias`, p.bias, [1, rows]);
      expectDt(`${at} bias`, p.bias, [opts.biasDtype!]);
    }
    last = { e, piece: p };
    return p;
  };
  const chunks: ExpertChunk<ExpertWeightsGpu, GpuTensor>[] = [];
  try {
    for (const [i, r] of plan.ranges.entries()) {
      // the chunk's buffers, mapped at creation: each expert's rows are copied straight into them (no host copy of the chunk)
      const { w, bias, made } = chunkTensors(shape, opts, plan, i, (dtype, dims, label) => mappedTensor(ctx, dtype, dims, label));
      try {
        const part: ExpertChunkRange = { e0: 0, experts: 1, o0: r.o0, outputs: r.outputs };
        for (let e = r.e0; e < r.e0 + r.experts; e++) {
          const p = await piece(e);
          const dst = slots(w as Plain<MappedTensor>);
          slots(p.w).forEach((s, j) => dst[j].t.put(chunkTensor(s.t, s.g, 1, rows, layout, part), e - r.e0));
          if (bias && p.bias) bias.put(chunkTensor(p.bias, 1, 1, rows, layout, part), e - r.e0);
        }
        const gw = mapShape(w as unknown as ExpertWeightsShape, (t) => (t as unknown as MappedTensor).finish()) as ExpertWeightsGpu;
        chunks.push({ ...r, w: gw, ...(bias ? { bias: bias.finish() } : {}) });
      } catch (e) {
        for (const m of made) m.destroy();
        throw e;
      }
    }
  } catch (e) {
    destroyChunks(chunks);
    throw e;
  }
  return stackOf(plan, chunks);
}
