/**
 * Shapes and validation of expert weight containers (`ExpertWeightsGpu` /
 * `ExpertWeightsHost`), shared by the grouped GEMMs and their references: the containers' shape checks, the slot
 * walk (slots / mapContainer) that keeps every format's tensors in step, chunk planning (planExpertChunks) and
 * host chunking, chunked stacks (validation, appending, their chunk list, bytes and tensors). The three ways a stack
 * is made on the GPU (upload, create for a writer, stream) are expert-stack-upload.ts, on the walk exported here
 * (package-internal: index.ts names the public exports).
 */
import { DTYPES, DTypeError, HostTensor, ShapeError, ValueError, type DType, type HostArray } from '@webmoe/tensor';
import type { GpuTensor } from '../runtime/tensor.js';
import { LimitError } from '../runtime/errors.js';
import type { ChunkedExpertWeightsGpu, ChunkedExpertWeightsHost, ExpertChunk, ExpertRowLayout, ExpertStackGpu, ExpertStackHost, ExpertWeightsGpu, ExpertWeightsHost, ExpertWeightsShape } from './moe-types.js';

/** What the checks need of a tensor (GpuTensor and HostTensor both have it). */
export interface Shaped {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** The logical dimensions of an expert weight container: E experts of [rows, cols] (rows = output channels). @example `const { E, rows, cols }: ExpertDims = expertDims(w)` */
export interface ExpertDims {
  E: number;
  rows: number;
  cols: number;
}

function expectRank(what: string, t: Shaped, rank: number, expected: string): void {
  if (t.shape.length !== rank) throw new ShapeError(what, expected, t.shape);
}
export function expectDt(what: string, t: Shaped, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) throw new DTypeError(what, allowed, t.dtype);
}
export function expectDims(what: string, t: Shaped, want: readonly number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) throw new ShapeError(what, want, t.shape);
}

/**
 * Validates an expert weight container (GPU or host) and returns its logical
 * [E, rows, cols]. Throws DTypeError / ShapeError / ValueError saying what
 * was expected and what came.
 *
 * @example
 * ```ts
 * const { E, rows, cols } = expertDims({ kind: 'dense', w }); // w: [E, 2I, H]
 * ```
 */
export function expertDims(w: ExpertStackGpu | ExpertStackHost | ExpertWeightsShape, what = 'expert weights'): ExpertDims {
  if (w.kind === 'chunked') return chunkedDims(w, what);
  return plainDims(w, what);
}

export function plainDims(w: ExpertWeightsShape, what: string): ExpertDims {
  switch (w.kind) {
    case 'dense': {
      expectDt(`${what} (dense) w`, w.w, ['float32', 'bfloat16', 'float16']);
      expectRank(`${what} (dense) w`, w.w, 3, '[E, rows, cols]');
      const [E, rows, cols] = w.w.shape;
      return { E, rows, cols };
    }
    case 'fp8_block': {
      expectDt(`${what} (fp8_block) q`, w.q, ['float8_e4m3fn', 'float8_e5m2']);
      expectRank(`${what} (fp8_block) q`, w.q, 3, '[E, rows, cols]');
      expectDt(`${what} (fp8_block) scaleInv`, w.scaleInv, ['float32']);
      const [E, rows, cols] = w.q.shape;
      if (!Array.isArray(w.block) || w.block.length !== 2 || !w.block.every((b) => Number.isInteger(b) && b > 0))
        throw new ValueError(`${what} (fp8_block) block`, 'two positive integers [blockRows, blockCols]', w.block);
      const [br, bc] = w.block;
      expectDims(`${what} (fp8_block) scaleInv`, w.scaleInv, [E, Math.ceil(rows / br), Math.ceil(cols / bc)]);
      return { E, rows, cols };
    }
    case 'mxfp4': {
      expectDt(`${what} (mxfp4) blocks`, w.blocks, ['uint8']);
      expectRank(`${what} (mxfp4) blocks`, w.blocks, 4, '[E, rows, cols/32, 16]');
      expectDt(`${what} (mxfp4) scales`, w.scales, ['uint8']);
      const [E, rows, nb, sixteen] = w.blocks.shape;
      if (sixteen !== 16) throw new ShapeError(`${what} (mxfp4) blocks`, `[E, rows, cols/32, 16]`, w.blocks.shape);
      expectDims(`${what} (mxfp4) scales`, w.scales, [E, rows, nb]);
      return { E, rows, cols: nb * 32 };
    }
    case 'int_block': {
      if (w.bits !== 4 && w.bits !== 8) throw new ValueError(`${what} (int_block) bits`, '4 or 8', w.bits);
      if (!Number.isInteger(w.blockSize) || w.blockSize < 1) throw new ValueError(`${what} (int_block) blockSize`, 'a positive integer', w.blockSize);
      expectDt(`${what} (int_block) q`, w.q, ['uint8']);
      expectRank(`${what} (int_block) q`, w.q, 3, `[E, rows, cols*${w.bits}/8]`);
      expectDt(`${what} (int_block) scales`, w.scales, ['float32', 'float16']);
      const [E, rows, bytes] = w.q.shape;
      const cols = w.bits === 4 ? bytes * 2 : bytes;
      expectDims(`${what} (int_block) scales`, w.scales, [E, rows, Math.ceil(cols / w.blockSize)]);
      if (w.zeros !== undefined) {
        expectDt(`${what} (int_block) zeros`, w.zeros, ['uint8']);
        expectDims(`${what} (int_block) zeros`, w.zeros, [E, rows, Math.ceil(cols / w.blockSize)]);
      }
      return { E, rows, cols };
    }
    default:
      throw new ValueError(`${what} kind`, "'dense' | 'fp8_block' | 'mxfp4' | 'int_block'", (w as { kind: unknown }).kind);
  }
}

/** A tensor of a plain container with its row group: rows per tensor row (fp8 scales: the block rows; else 1). */
interface Slot<T> {
  t: T;
  g: number;
}

/** The tensor fields of each container kind: codes, then scales (int_block: then its optional zero points; also the buffer labels). */
const SLOT_FIELDS = { dense: ['w'], fp8_block: ['q', 'scaleInv'], mxfp4: ['blocks', 'scales'], int_block: ['q', 'scales', 'zeros'] } as const;

export type Plain<T> = { kind: 'dense'; w: T } | { kind: 'fp8_block'; q: T; scaleInv: T; block: [number, number] } | { kind: 'mxfp4'; blocks: T; scales: T } | { kind: 'int_block'; q: T; scales: T; zeros?: T };

/** The tensors a plain container holds (codes first, then scales, then zero points), each with its field and row group. */
export function slots<T>(w: Plain<T>): (Slot<T> & { field: string })[] {
  const out: (Slot<T> & { field: string })[] = [];
  SLOT_FIELDS[w.kind].forEach((field, i) => {
    const t = (w as unknown as Record<string, T | undefined>)[field];
    if (t !== undefined) out.push({ t, g: w.kind === 'fp8_block' && i === 1 ? w.block[0] : 1, field });
  });
  return out;
}

/** The same container (other fields copied) with its tensors replaced by `f(tensor, row group, field)`; the caller casts the result. */
export function mapContainer(w: ExpertWeightsHost, f: (t: HostTensor, g: number, field: string) => unknown): unknown {
  const out: Record<string, unknown> = { ...w };
  if (w.kind === 'fp8_block') out.block = [w.block[0], w.block[1]];
  for (const s of slots(w)) out[s.field] = f(s.t, s.g, s.field);
  return out;
}

/** Outputs of one expert of `rows` rows in `layout` (gate_up: rows / 2). */
export function expertOutputs(layout: ExpertRowLayout, rows: number): number {
  return layout === 'rows' ? rows : rows / 2;
}

/** Rows of `outputs` outputs of one expert in `layout`. */
function rowsOfOutputs(layout: ExpertRowLayout, outputs: number): number {
  return layout === 'rows' ? outputs : 2 * outputs;
}

/**
 * The row ranges [a, b) of one expert holding outputs [o0, o0 + n), in the
 * order a chunk stores them (concat: the gate rows, then the up rows).
 */
export function outputRowRanges(layout: ExpertRowLayout, rows: number, o0: number, n: number): [number, number][] {
  const N = expertOutputs(layout, rows);
  if (o0 === 0 && n === N) return [[0, rows]];
  switch (layout) {
    case 'rows':
      return [[o0, o0 + n]];
    case 'interleaved':
      return [[2 * o0, 2 * (o0 + n)]];
    case 'concat':
      return [
        [o0, o0 + n],
        [N + o0, N + o0 + n],
      ];
  }
}

export function checkLayout(what: string, layout: unknown, rows: number): ExpertRowLayout {
  if (layout !== 'rows' && layout !== 'concat' && layout !== 'interleaved') throw new ValueError(`${what} layout`, "'rows' | 'concat' | 'interleaved'", layout);
  if (layout !== 'rows' && rows % 2 !== 0) throw new ShapeError(`${what} (${layout} layout) rows`, 'an even row count (gate and up rows)', `${rows}`);
  return layout;
}

/** Where one chunk of a split expert stack sits: outputs [o0, o0 + outputs) of experts [e0, e0 + experts). */
export interface ExpertChunkRange {
  e0: number;
  experts: number;
  o0: number;
  outputs: number;
}

/**
 * How an expert stack splits over buffers of at most `maxBytes` each:
 * whole experts per chunk (as many as fit, balanced over the chunks) when
 * one expert fits, else each expert cut into pieces of whole output units
 * (the format's block unit: fp8 scale block rows; 1 otherwise). One chunk
 * when everything fits. Each tensor (codes, scales, bias) is its own
 * binding and must fit. LimitError when one unit does not fit, or a split
 * inside an expert would cut an fp8 scale block (concat gate_up with I not
 * a multiple of the block rows).
 *
 * @example
 * ```ts
 * planExpertChunks(host, 'concat', ctx.maxBindingBytes) // [{ e0: 0, experts: 11, o0: 0, outputs: 2048 }, ...]
 * ```
 */
export function planExpertChunks(w: ExpertWeightsShape, layout: ExpertRowLayout, maxBytes: number, bias?: { dtype: DType }, what = 'expert stack'): ExpertChunkRange[] {
  const { E, rows } = plainDims(w, 'planExpertChunks weights');
  checkLayout('planExpertChunks', layout, rows);
  if (!(Number.isInteger(maxBytes) && maxBytes >= 4)) throw new ValueError('planExpertChunks maxBytes', 'an integer >= 4', maxBytes);
  const N = expertOutputs(layout, rows);
  // bytes of one tensor row (a row group of g weight rows) per tensor
  const specs = slots(w as Plain<Shaped>).map(({ t, g }) => ({
    g,
    rowBytes: (t.shape.slice(2).reduce((a, b) => a * b, 1) || 1) * DTYPES[t.dtype].bytes,
  }));
  if (bias) specs.push({ g: 1, rowBytes: DTYPES[bias.dtype].bytes });
  const pad4 = (b: number) => Math.max(4, Math.ceil(b / 4) * 4);
  const bytesOf = (experts: number, n: number) => Math.max(...specs.map((s) => pad4(experts * Math.ceil(rowsOfOutputs(layout, n) / s.g) * s.rowBytes)));
  /** The largest m in [0, hi] with fits(m) (fits monotone). */
  const largest = (hi: number, fits: (m: number) => boolean) => {
    let lo = 0;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  if (E === 0 || N === 0 || bytesOf(E, N) <= maxBytes) return [{ e0: 0, experts: E, o0: 0, outputs: N }];
  const out: ExpertChunkRange[] = [];
  const perChunk = largest(E, (m) => bytesOf(m, N) <= maxBytes);
  if (perChunk >= 1) {
    // as few chunks as fit, their sizes within one expert of each other
    const n = Math.ceil(E / perChunk);
    for (let i = 0; i < n; i++) {
      const e0 = Math.ceil((i * E) / n);
      out.push({ e0, experts: Math.ceil(((i + 1) * E) / n) - e0, o0: 0, outputs: N });
    }
    return out;
  }
  // One expert alone exceeds a binding: cut it at whole output units.
  const g = Math.max(...specs.map((s) => s.g));
  const unit = layout === 'interleaved' ? g / gcd(g, 2) : g;
  if (layout === 'concat' && N % g !== 0) {
    throw new LimitError('maxBindingBytes', bytesOf(1, N), maxBytes, `${what}: one expert [${rows}, ...] (splitting it would cut a ${g}-row scale block at the gate/up boundary I = ${N})`);
  }
  const units = largest(Math.ceil(N / unit), (m) => bytesOf(1, Math.min(N, m * unit)) <= maxBytes);
  if (units === 0) throw new LimitError('maxBindingBytes', bytesOf(1, Math.min(N, unit)), maxBytes, `${what}: one unit of ${unit} output(s) of an expert [${rows}, ...] (the format's block unit)`);
  // as few pieces as fit, boundaries at whole units, sizes within one unit of each other
  const pieces = Math.ceil(N / (units * unit));
  const bounds = [0];
  for (let i = 1; i <= pieces; i++) {
    const b = Math.min(N, unit * Math.ceil((i * N) / (pieces * unit)));
    if (b > bounds[bounds.length - 1]) bounds.push(b);
  }
  for (let e = 0; e < E; e++) for (let i = 0; i + 1 < bounds.length; i++) out.push({ e0: e, experts: 1, o0: bounds[i], outputs: bounds[i + 1] - bounds[i] });
  return out;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The host tensor of one chunk: the rows of `t` (a tensor of an expert
 * container with row group g, or a bias with g = 1) for outputs [o0, o0 + n)
 * of experts [e0, e0 + experts). Whole experts (and a single row range) are
 * a view of `t`'s data, no copy; a concat split copies its two ranges.
 */
export function chunkTensor(t: HostTensor, g: number, E: number, rows: number, layout: ExpertRowLayout, r: ExpertChunkRange): HostTensor {
  const tRows = Math.ceil(rows / g); // tensor rows per expert
  const perRow = t.size / (E * tRows); // elements per tensor row
  const ranges = outputRowRanges(layout, rows, r.o0, r.outputs).map(([a, b]) => [a / g, Math.ceil(b / g)] as const);
  const local = ranges.reduce((s, [a, b]) => s + b - a, 0);
  const shape = [r.experts, local, ...t.shape.slice(2)];
  const d = t.data;
  if (ranges.length === 1) {
    const [a, b] = ranges[0];
    const start = (r.e0 * tRows + a) * perRow;
    const end = r.experts === 1 ? start + (b - a) * perRow : (r.e0 + r.experts) * tRows * perRow;
    return new HostTensor(t.dtype, shape, d.subarray(start, end) as HostArray);
  }
  const out = new (d.constructor as new (n: number) => HostArray)(r.experts * local * perRow);
  let at = 0;
  for (let e = r.e0; e < r.e0 + r.experts; e++) {
    for (const [a, b] of ranges) {
      out.set(d.subarray((e * tRows + a) * perRow, (e * tRows + b) * perRow) as never, at);
      at += (b - a) * perRow;
    }
  }
  return new HostTensor(t.dtype, shape, out);
}

/**
 * Splits host expert weights (and their bias [E, rows]) into the chunks of
 * `ranges` (from {@link planExpertChunks}): the CPU path reads each row from
 * its chunk, which is how tests check that a split changes nothing. Chunks
 * of whole experts are views of the data (no copy).
 *
 * @example
 * ```ts
 * const c = chunkExpertWeightsHost(w, 'concat', planExpertChunks(w, 'concat', 1 << 20));
 * groupedGateUpRef(x, g, c, undefined, act); // == groupedGateUpRef(x, g, w, bias, act)
 * ```
 */
export function chunkExpertWeightsHost(w: ExpertWeightsHost, layout: ExpertRowLayout, ranges: readonly ExpertChunkRange[], bias?: HostTensor): ChunkedExpertWeightsHost {
  const { E, rows, cols } = plainDims(w, 'chunkExpertWeightsHost weights');
  checkLayout('chunkExpertWeightsHost', layout, rows);
  if (bias) checkStackBias('chunkExpertWeightsHost bias', bias, E, rows);
  const chunks = ranges.map((r) => hostChunk(w, E, rows, layout, r, bias));
  const out: ChunkedExpertWeightsHost = { kind: 'chunked', E, rows, cols, layout, chunks };
  chunkedDims(out, 'chunkExpertWeightsHost');
  return out;
}

/** One chunk of host weights (and bias): views of whole experts, or a copy of a split expert's rows. */
export function hostChunk(w: ExpertWeightsHost, E: number, rows: number, layout: ExpertRowLayout, r: ExpertChunkRange, bias: HostTensor | undefined): ExpertChunk<ExpertWeightsHost, HostTensor> {
  const out: ExpertChunk<ExpertWeightsHost, HostTensor> = { ...r, w: mapContainer(w, (t, g) => chunkTensor(t, g, E, rows, layout, r)) as ExpertWeightsHost };
  if (bias) out.bias = chunkTensor(bias, 1, E, rows, layout, r);
  return out;
}

export function checkStackBias(what: string, b: Shaped, E: number, rows: number): void {
  expectDt(what, b, ['float32', 'bfloat16', 'float16']);
  expectDims(what, b, [E, rows]);
}

/**
 * Validates a chunked stack: chunks in (expert, output) order covering every
 * output of every expert once, each a container of the same kind and dtypes
 * with the rows of its outputs, biases on all chunks or none.
 */
function chunkedDims(w: ChunkedExpertWeightsGpu | ChunkedExpertWeightsHost, what: string): ExpertDims {
  const { E, rows, cols } = w;
  for (const [n, v] of [['E', E], ['rows', rows], ['cols', cols]] as const) {
    if (!(Number.isInteger(v) && v >= 0)) throw new ValueError(`${what} (chunked) ${n}`, 'a non-negative integer', v);
  }
  const layout = checkLayout(`${what} (chunked)`, w.layout, rows);
  const N = expertOutputs(layout, rows);
  if (!Array.isArray(w.chunks) || w.chunks.length === 0) throw new ValueError(`${what} (chunked) chunks`, 'a non-empty array', w.chunks);
  let e = 0;
  let o = 0;
  const first = w.chunks[0];
  w.chunks.forEach((c: ExpertChunk<ExpertWeightsGpu | ExpertWeightsHost, Shaped>, i) => {
    const at = `${what} chunk ${i}`;
    const whole = c.o0 === 0 && c.outputs === N;
    if (c.e0 !== e || c.o0 !== o || !(Number.isInteger(c.experts) && c.experts >= 1) || !(Number.isInteger(c.outputs) && c.outputs >= 1) || (!whole && c.experts !== 1) || c.o0 + c.outputs > N) {
      throw new ValueError(`${at} range`, `experts from ${e}, outputs from ${o} (whole experts, or part of one expert)`, `experts [${c.e0}, +${c.experts}), outputs [${c.o0}, +${c.outputs})`);
    }
    if (c.w.kind !== first.w.kind) throw new ValueError(`${at} kind`, first.w.kind, c.w.kind);
    const d = plainDims(c.w, at);
    const want = [c.experts, rowsOfOutputs(layout, c.outputs), cols];
    if (d.E !== want[0] || d.rows !== want[1] || d.cols !== want[2]) throw new ShapeError(`${at} weights`, want, [d.E, d.rows, d.cols]);
    const fs = slots(first.w as ExpertWeightsHost);
    const cs = slots(c.w as ExpertWeightsHost);
    if (cs.length !== fs.length) throw new ValueError(`${at} tensors`, fs.map((s) => s.field).join(', '), cs.map((s) => s.field).join(', '));
    cs.forEach((s, j) => {
      const f = fs[j];
      if (s.t.dtype !== f.t.dtype) throw new DTypeError(`${at} tensor ${j}`, [f.t.dtype], s.t.dtype);
      if (s.g !== f.g) throw new ValueError(`${at} scale block rows`, String(f.g), s.g);
    });
    if (!!c.bias !== !!first.bias) throw new ValueError(`${at} bias`, first.bias ? 'a bias (every chunk has one)' : 'no bias (no chunk has one)', c.bias ? 'a bias' : 'none');
    if (c.bias) {
      checkStackBias(`${at} bias`, c.bias, c.experts, want[1]);
      if (c.bias.dtype !== first.bias!.dtype) throw new DTypeError(`${at} bias`, [first.bias!.dtype], c.bias.dtype);
    }
    o += c.outputs;
    if (o === N) {
      o = 0;
      e += c.experts;
    }
  });
  if (e !== E || o !== 0) throw new ValueError(`${what} (chunked) chunks`, `chunks covering ${E} experts x ${N} outputs`, `chunks ending at expert ${e}, output ${o}`);
  return { E, rows, cols };
}

/**
 * The chunks of an expert stack with their biases, as the GEMMs dispatch
 * them, for an op that reads the rows in `layout` (gate_up: the activation's
 * layout; down: 'rows'): a plain container is one chunk (its bias the `bias`
 * argument); a chunked one carries its biases (a separate `bias` is a
 * ValueError) and, where it splits an expert, must have been split in that
 * layout (ValueError otherwise).
 * @example `for (const c of expertChunkList(w, bias, 'groupedDown', 'rows')) record(c)`
 */
export function expertChunkList<T extends Shaped>(w: ExpertStackGpu, bias: T | undefined, what: string, layout: ExpertRowLayout): ExpertChunk<ExpertWeightsGpu, T | GpuTensor>[] {
  if (w.kind !== 'chunked') {
    const { E, rows } = plainDims(w, `${what} weights`);
    return [{ e0: 0, experts: E, o0: 0, outputs: expertOutputs(layout, rows), w, bias }];
  }
  chunkedDims(w, `${what} weights`);
  if (bias !== undefined) throw new ValueError(`${what} bias`, 'undefined with chunked weights (their biases travel in the chunks)', `a ${bias.dtype} [${bias.shape.join(', ')}] tensor`);
  const N = expertOutputs(w.layout, w.rows);
  if (w.layout !== layout) {
    if (w.chunks.some((c) => c.outputs !== N)) throw new ValueError(`${what} weights (chunked) layout`, `'${layout}' (its experts are split by output)`, w.layout);
    // whole experts: the chunk's outputs in the op's layout
    return w.chunks.map((c) => ({ ...c, outputs: expertOutputs(layout, w.rows) }));
  }
  return [...w.chunks];
}

/** A plain container's format apart from its shapes: kind, dtypes and block parameters (what a kernel variant and its scale indexing depend on). */
function containerFormat(w: ExpertWeightsGpu): string {
  const dts = slots(w).map((x) => `${x.field}:${x.t.dtype}`).join(' ');
  const blocks = w.kind === 'fp8_block' ? ` block ${w.block.join('x')}` : w.kind === 'int_block' ? ` int${w.bits} block ${w.blockSize}` : '';
  return `${w.kind} ${dts}${blocks}`;
}

/**
 * The experts of stack `a` followed by those of `b` as one chunked stack of a.E + b.E experts, without a copy:
 * the chunks of both (a plain container is one chunk), b's renumbered after a's. Both in the same format (kind,
 * dtypes, blocks), rows and cols, with biases on both or neither (a typed error naming `what` otherwise). How a
 * layer's shared experts join its routed ones in the decode GEMVs (routeDecodeGpu's `sharedExperts`).
 * @example `const w = appendExpertStacks(routed.gateUp, shared.gateUp, 'concat')`
 */
export function appendExpertStacks(a: ExpertStackGpu, b: ExpertStackGpu, layout: ExpertRowLayout, what = 'appendExpertStacks'): ChunkedExpertWeightsGpu {
  const ca = expertChunkList<GpuTensor>(a, undefined, `${what} first stack`, layout);
  const cb = expertChunkList<GpuTensor>(b, undefined, `${what} second stack`, layout);
  const fa = containerFormat(ca[0].w);
  for (const c of cb) {
    const f = containerFormat(c.w);
    if (f !== fa) throw new ValueError(`${what} second stack format`, fa, f);
  }
  const da = expertDims(a, `${what} first stack`);
  const db = expertDims(b, `${what} second stack`);
  if (db.rows !== da.rows || db.cols !== da.cols) throw new ShapeError(`${what} second stack [E, rows, cols]`, [db.E, da.rows, da.cols], [db.E, db.rows, db.cols]);
  const out: ChunkedExpertWeightsGpu = { kind: 'chunked', E: da.E + db.E, rows: da.rows, cols: da.cols, layout, chunks: [...ca, ...cb.map((c) => ({ ...c, e0: c.e0 + da.E }))] };
  chunkedDims(out, what);
  return out;
}

/**
 * {@link appendExpertStacks}, or undefined where its rules refuse stacks `a` and `b` (another format, rows or cols;
 * a bias on one only): the one place they are asked without an error.
 * @example `const w = tryAppendExpertStacks(routed.down, shared.down, 'rows') ?? separatePath()`
 */
export function tryAppendExpertStacks(a: ExpertStackGpu, b: ExpertStackGpu, layout: ExpertRowLayout): ChunkedExpertWeightsGpu | undefined {
  try {
    return appendExpertStacks(a, b, layout);
  } catch (e) {
    if (e instanceof ValueError || e instanceof ShapeError || e instanceof DTypeError) return undefined;
    throw e;
  }
}

/**
 * GPU bytes an expert weight container holds: packed weight codes and
 * (for quantized kinds) their scales (int_block zero points count as
 * scales); a chunked stack sums its chunks (biases not counted).
 *
 * @example
 * ```ts
 * const { weights, scales } = expertWeightBytes(gpuWeights);
 * console.log(`${(weights + scales) / 2 ** 20} MiB`);
 * ```
 */
export function expertWeightBytes(w: ExpertStackGpu): { weights: number; scales: number } {
  if (w.kind === 'chunked') {
    const sum = { weights: 0, scales: 0 };
    for (const c of w.chunks) {
      const b = expertWeightBytes(c.w);
      sum.weights += b.weights;
      sum.scales += b.scales;
    }
    return sum;
  }
  if (!['dense', 'fp8_block', 'mxfp4', 'int_block'].includes(w.kind)) throw new ValueError('expertWeightBytes kind', "'dense' | 'fp8_block' | 'mxfp4' | 'int_block' | 'chunked'", (w as { kind: unknown }).kind);
  const [codes, ...scales] = slots(w);
  return { weights: codes.t.byteLength, scales: scales.reduce((a, s) => a + s.t.byteLength, 0) };
}

/** Every GPU tensor of an expert stack (codes, scales, chunk biases). @example `for (const t of expertTensors(w)) keyParts.push(t.buffer)` */
export function expertTensors(w: ExpertStackGpu): GpuTensor[] {
  if (w.kind !== 'chunked') return slots(w).map((s) => s.t);
  return w.chunks.flatMap((c) => [...expertTensors(c.w), ...(c.bias ? [c.bias] : [])]);
}

/**
 * Frees the GPU tensors of an expert weight container (a chunked stack: every
 * chunk's, biases included).
 * @example `destroyExpertWeights(wg)`
 */
export function destroyExpertWeights(w: ExpertStackGpu): void {
  for (const t of expertTensors(w)) t.destroy();
}
