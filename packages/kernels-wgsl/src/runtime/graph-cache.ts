import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from './context.js';
import { GpuTensor } from './tensor.js';
import { outputPool, type BufferPool } from './pool.js';
import { GpuGraph, Recorder, objectId, type GraphBinding, type SubmitPieces } from './kernel.js';
import { GraphScratch } from './graph-scratch.js';

/**
 * Records a forward on `x` into `rec` (no submit), pushing the scratch it must keep alive to `scratch`; returns its
 * output. `transient` is a pool for the scratch (and the output) that the forward writes before it reads: a capture's
 * GraphScratch (shared with every other captured graph of the device), or for a call recorded afresh (a key's calls
 * before `captureAt`) a pool on the context's shared scratch cache. A forward may take its scratch elsewhere.
 */
export type RecordForward = (rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[], transient: BufferPool) => GpuTensor;

/** Keys remembered (with their number of calls) before their capture. */
const KEYS_SEEN = 64;

interface Entry {
  graph: GpuGraph;
  xIn: GpuTensor;
  out: GpuTensor;
  scratch: { destroy(): void }[];
  /** The arena buffers the graph binds (its input, the transient scratch), given back when it is freed. */
  transient: GraphScratch;
  /** The copies in and out of this call (set before each replay; the closures are made once). */
  io: { x: GpuTensor; y: GpuTensor };
  pre: (enc: GPUCommandEncoder) => void;
  post: (enc: GPUCommandEncoder) => void;
  /** The graph rebound onto callers' input and output buffers (GpuGraph.rebound), by buffer pair; least recently used first. */
  direct: Map<number | string, GraphBinding>;
  /** Whether the graph may be rebound at all: it does not write its input buffer, and input and output are two buffers. */
  rebindable: boolean;
}

/** Bindings kept per graph (distinct input / output buffer pairs: a decode chain cycles through a few). */
const DIRECT_BINDINGS = 8;

/** Object ids below this pack two to a number key (2^26: both fit 2^52 exactly). */
const PAIR_ID_LIMIT = 2 ** 26;

/** The key of an (input, output) buffer pair: a number (no string built per forward) while both ids are below PAIR_ID_LIMIT. */
function bufferPairKey(x: GPUBuffer, y: GPUBuffer): number | string {
  const a = objectId(x);
  const b = objectId(y);
  return a < PAIR_ID_LIMIT && b < PAIR_ID_LIMIT ? a * PAIR_ID_LIMIT + b : `${a},${b}`;
}

/**
 * Captured forward graphs, one per key (e.g. the token count), least
 * recently used evicted past `maxGraphs`. `run` replays the graph of a key
 * (capturing it on first use) on the caller's input and on `out` or a tensor
 * from the output pool: the graph rebound onto those buffers (bind groups
 * made once per buffer pair, kept for the last few pairs), or where they
 * cannot stand in for the captured ones (input and output one buffer, a
 * buffer without storage usage, a graph that writes its input) with the
 * input copied into the graph's input buffer and its output copied out. One
 * encoder and one submit, with no buffer or uniform created or written on a
 * replay. What `record` binds (weights) must stay alive and unchanged while a
 * graph of it is cached (`clear()` otherwise).
 *
 * A graph's input buffer and the scratch its forward takes from the
 * `transient` pool (GraphScratch) are the device's graph scratch, shared by
 * every captured graph: the cached graphs of all layers hold about one
 * forward's scratch per token count between them (graphScratchBytes).
 *
 * Output tensors from the pool belong to the caller: `destroy()` returns
 * their buffer (to the context's shared scratch cache) for a later call of any graph to reuse (so a chain that destroys each
 * output once it has been consumed allocates nothing); after `destroy()` of
 * the cache they are plain tensors.
 *
 * @example
 * ```ts
 * const graphs = new ForwardGraphs(ctx, 'moe');
 * const y = graphs.run(String(T), x, [T, H], (rec, xIn, scratch) => layer.record(rec, xIn, pool, scratch));
 * ```
 */
export class ForwardGraphs {
  readonly ctx: GpuContext;
  readonly label: string;
  readonly maxGraphs: number;
  private entries = new Map<string, Entry>();
  /** Replays submit in these pieces (GpuGraph.replay's `pieces`); undefined: one submit. */
  readonly pieces: SubmitPieces | undefined;
  private outputs: BufferPool;
  /** The call of a key that captures its graph (1: the first; 2: the second, the first recorded afresh). */
  readonly captureAt: number;
  /** Calls of keys not captured yet (at most KEYS_SEEN keys, the least recently seen dropped first). */
  private seen = new Map<string, number>();

  /**
   * @param opts.pieces submit each replay in pieces (long graphs, e.g. a stack of layers: STACK_SUBMIT_PIECES)
   * @param opts.captureAt the call of a key that captures its graph (default 1, its first). 2: a key's first call is
   *   recorded afresh and submitted (no graph), the second captures: a token count called once (a prompt's length)
   *   costs no capture, which takes more host time than a recording (new bind groups for the graph's buffers).
   */
  constructor(ctx: GpuContext, label: string, opts: { maxGraphs?: number; pieces?: SubmitPieces; captureAt?: number } = {}) {
    this.ctx = ctx;
    this.label = label;
    this.maxGraphs = opts.maxGraphs ?? 4;
    this.pieces = opts.pieces;
    this.captureAt = opts.captureAt ?? 1;
    this.outputs = outputPool(ctx);
  }

  /** Number of cached graphs. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The forward of `x` (f32 `outShape`) through the graph of `key`, issued
   * synchronously (one submit). Writes into `out` when given (checked: f32,
   * `outShape`, this context), else returns a tensor from the output pool.
   */
  run(key: string, x: GpuTensor, outShape: readonly number[], record: RecordForward, out?: GpuTensor): GpuTensor {
    if (out) checkOutput(`${this.label} out`, this.ctx, out, outShape);
    const e = this.entries.get(key);
    if (!e) {
      const calls = (this.seen.get(key) ?? 0) + 1;
      this.seen.delete(key);
      if (calls >= this.captureAt) return this.capture(key, x, outShape, record, out);
      this.seen.set(key, calls);
      if (this.seen.size > KEYS_SEEN) this.seen.delete(this.seen.keys().next().value!);
      return recordAndSubmit(this.ctx, this.label, (rec, scratch) => record(rec, x, scratch, this.outputs), out);
    }
    this.entries.delete(key); // LRU: re-insert at the end
    this.entries.set(key, e);
    const y = out ?? this.outputs.tensor('float32', outShape, `${this.label}.out`);
    const binding = this.directBinding(e, x.buffer, y.buffer);
    if (binding) {
      void e.graph.replay({ binding, pieces: this.pieces });
      return y;
    }
    e.io.x = x;
    e.io.y = y;
    void e.graph.replay({ pre: e.pre, post: e.post, pieces: this.pieces });
    return y;
  }

  /**
   * The graph of `e` rebound onto input buffer `x` and output buffer `y` (no copies), or undefined where they cannot
   * take the captured buffers' places: a graph that writes its input (the caller's would change) or whose input is its
   * output, one buffer for both x and y (a dispatch would read and write it), or either without storage usage.
   */
  private directBinding(e: Entry, x: GPUBuffer, y: GPUBuffer): GraphBinding | undefined {
    if (!e.rebindable || x === y) return undefined;
    const key = bufferPairKey(x, y);
    let b = e.direct.get(key);
    if (b) e.direct.delete(key);
    else {
      // usages are fixed at creation: checked once per pair (a usage read is a call into the WebGPU binding)
      if (!(x.usage & GPUBufferUsage.STORAGE) || !(y.usage & GPUBufferUsage.STORAGE)) return undefined;
      b = e.graph.rebound(new Map([[e.xIn.buffer, x], [e.out.buffer, y]]));
      if (e.direct.size >= DIRECT_BINDINGS) e.direct.delete(e.direct.keys().next().value!);
    }
    e.direct.set(key, b);
    return b;
  }

  private capture(key: string, x: GpuTensor, outShape: readonly number[], record: RecordForward, out: GpuTensor | undefined): GpuTensor {
    const scratch: { destroy(): void }[] = [];
    const transient = new GraphScratch(this.ctx);
    const xIn = transient.tensor('float32', x.shape, `${this.label}.graph.in`);
    let y: GpuTensor | undefined;
    try {
      const rec = new Recorder(this.ctx, { label: `${this.label}.graph`, capture: true, transient });
      // this call's input and output copies are not part of the graph (each replay copies its own)
      rec.copy(x.buffer, 0, xIn.buffer, 0, xIn.byteLength, { capture: false });
      const gOut = record(rec, xIn, scratch, transient);
      scratch.push(gOut);
      if (gOut.dtype !== 'float32' || gOut.shape.join() !== outShape.join()) throw new ShapeError(`${this.label} graph output`, outShape, gOut.shape);
      y = out ?? this.outputs.tensor('float32', outShape, `${this.label}.out`);
      rec.copy(gOut.buffer, 0, y.buffer, 0, y.byteLength, { capture: false });
      rec.submit();
      const io = { x, y };
      const bytesIn = xIn.byteLength;
      const bytesOut = gOut.byteLength;
      const graph = rec.toGraph();
      this.entries.set(key, {
        graph,
        xIn,
        out: gOut,
        scratch,
        transient,
        io,
        pre: (enc) => enc.copyBufferToBuffer(io.x.buffer, 0, xIn.buffer, 0, bytesIn),
        post: (enc) => enc.copyBufferToBuffer(gOut.buffer, 0, io.y.buffer, 0, bytesOut),
        direct: new Map(),
        rebindable: xIn.buffer !== gOut.buffer && !graph.writes(xIn.buffer),
      });
    } catch (err) {
      for (const s of scratch) s.destroy();
      transient.end();
      if (y !== out) y?.destroy();
      throw err;
    }
    while (this.entries.size > this.maxGraphs) this.evict(this.entries.keys().next().value!);
    return y;
  }

  private evict(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    e.graph.destroy();
    for (const s of e.scratch) s.destroy();
    e.transient.end();
  }

  /** Frees every cached graph (and the scratch it holds) and forgets the keys seen; the output pool stays. */
  clear(): void {
    for (const k of [...this.entries.keys()]) this.evict(k);
    this.seen.clear();
  }

  /** Frees the graphs and the cached outputs; outputs still held by callers become plain tensors. */
  destroy(): void {
    this.clear();
    this.outputs.close();
  }
}

/**
 * Checks a caller-provided output tensor: f32, `shape`, on `ctx`, not destroyed.
 * @example `checkOutput('MoE.forward out', ctx, out, [T, H])`
 */
export function checkOutput(what: string, ctx: GpuContext, out: GpuTensor, shape: readonly number[]): void {
  if (!(out instanceof GpuTensor)) throw new ValueError(what, 'a GpuTensor', typeof out);
  if (out.ctx !== ctx) throw new ValueError(what, "a GpuTensor on the layer's GpuContext", 'a tensor of another context');
  if (out.destroyed) throw new ValueError(what, 'a tensor that is not destroyed', 'a destroyed tensor');
  if (out.dtype !== 'float32') throw new DTypeError(what, 'float32', out.dtype);
  if (out.shape.length !== shape.length || out.shape.some((d, i) => d !== shape[i])) throw new ShapeError(what, shape, out.shape);
}

/**
 * One forward recorded afresh (no graph): `record` fills one Recorder, its
 * output is copied into `out` when given, one submit, and the scratch it
 * pushed is returned to its pools. Serves ForwardGraphs' calls before a
 * capture, and `MoE.forwardGpuSync` / `MoEStack.forwardGpuSync` without graphs.
 * @example `return recordAndSubmit(ctx, 'moe.forward', (rec, scratch) => this.record(rec, x, pool, scratch, gw), opts.out)`
 */
export function recordAndSubmit(ctx: GpuContext, label: string, record: (rec: Recorder, scratch: { destroy(): void }[]) => GpuTensor, out?: GpuTensor): GpuTensor {
  const scratch: { destroy(): void }[] = [];
  const rec = new Recorder(ctx, { label });
  try {
    const y = record(rec, scratch);
    if (out) {
      scratch.push(y);
      rec.copy(y.buffer, 0, out.buffer, 0, out.byteLength);
    }
    rec.submit();
    return out ?? y;
  } catch (e) {
    rec.discard();
    throw e;
  } finally {
    for (const s of scratch) s.destroy();
  }
}
