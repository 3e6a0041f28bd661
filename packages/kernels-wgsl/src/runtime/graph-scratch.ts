import type { GpuContext } from './context.js';
import { BufferPool, SHARED_SCRATCH_FLOOR_BYTES, pooledSize, poolUsage } from './pool.js';

/** One buffer of a device's graph scratch arena and the number of cached graphs that bind it. */
interface Slot {
  buf: GPUBuffer;
  refs: number;
}

/**
 * The buffers every captured graph of a device records its transient scratch on (activations between its kernels,
 * routing tables, split-K partials: everything a replay writes before it reads it). Graphs run one after another on
 * the device's queue and keep nothing in these buffers from one replay to the next, so the graphs of all layers share
 * them: the n-th buffer of a size that one capture takes is the n-th that every other capture takes. A layer's graphs
 * thus cost one forward's scratch per token count for the whole model, not per layer. No buffer of the arena is ever
 * handed to anything but a capture (not to callers, not to the scratch pools), and one capture never takes a buffer
 * twice. A buffer no cached graph binds any more stays idle in the arena for a later capture (which then finds its
 * bind groups in the cache: a capture of a token count that was evicted costs about what a recording does), up to
 * the most one capture took (at least SHARED_SCRATCH_FLOOR_BYTES); past that the longest idle are destroyed.
 */
class GraphScratchArena {
  private slots = new Map<number, Slot[]>();
  /** Bytes bound by cached graphs, and idle. */
  bound = 0;
  idle = 0;
  /** Idle slots, longest idle first. */
  private idleOrder: Slot[] = [];
  /** The most bytes one capture took. */
  private peakLease = 0;
  constructor(private readonly ctx: GpuContext) {}

  /** A capture took `bytes` in all. */
  noteLease(bytes: number): void {
    this.peakLease = Math.max(this.peakLease, bytes);
  }

  /** The `index`-th buffer of `size` bytes (made on first use), now bound by one more graph. */
  take(size: number, index: number, label: string): GPUBuffer {
    const list = this.slots.get(size) ?? [];
    this.slots.set(size, list);
    let slot = list[index];
    if (!slot) {
      slot = { buf: this.ctx.device.createBuffer({ label: `graph-scratch.${label}`, size, usage: poolUsage() }), refs: 0 };
      list.push(slot);
    } else if (slot.refs === 0) {
      this.idle -= size;
      this.idleOrder.splice(this.idleOrder.indexOf(slot), 1);
    }
    if (slot.refs++ === 0) this.bound += size;
    return slot.buf;
  }

  /** A graph that bound `buf` is gone: once no graph binds it the buffer is idle (destroyed past the idle cap). */
  drop(buf: GPUBuffer): void {
    const slot = this.slots.get(buf.size)?.find((s) => s.buf === buf);
    if (!slot || --slot.refs > 0) return;
    this.bound -= buf.size;
    this.idle += buf.size;
    this.idleOrder.push(slot);
    this.trim(Math.max(SHARED_SCRATCH_FLOOR_BYTES, this.peakLease));
  }

  /** Destroys the longest idle buffers until at most `keep` bytes are idle. */
  trim(keep: number): void {
    if (this.idle <= keep) return;
    this.ctx.flush(); // deferred replays may still use them
    while (this.idle > keep && this.idleOrder.length) {
      const slot = this.idleOrder.shift()!;
      const list = this.slots.get(slot.buf.size)!;
      list.splice(list.indexOf(slot), 1);
      this.idle -= slot.buf.size;
      slot.buf.destroy();
    }
  }
}

const arenas = new WeakMap<GPUDevice, GraphScratchArena>();

function arenaOf(ctx: GpuContext): GraphScratchArena {
  let a = arenas.get(ctx.device);
  if (!a) {
    a = new GraphScratchArena(ctx);
    arenas.set(ctx.device, a);
  }
  return a;
}

/**
 * Bytes of the buffers that the captured graphs of `ctx`'s device share for their transient scratch (see
 * {@link GraphScratch}): `bound` by cached graphs (about one forward's scratch per token count a cached graph replays),
 * and `idle` (kept for later captures; `trimGraphScratch` frees them).
 * @example `graphScratchBytes(ctx).bound // 0 once every graph is freed`
 */
export function graphScratchBytes(ctx: GpuContext): { bound: number; idle: number } {
  const a = arenas.get(ctx.device);
  return { bound: a?.bound ?? 0, idle: a?.idle ?? 0 };
}

/**
 * Destroys the graph scratch no cached graph binds (kept for later captures otherwise).
 * @example `for (const m of layers) m.clearGraphs(); trimGraphScratch(ctx)`
 */
export function trimGraphScratch(ctx: GpuContext): void {
  arenas.get(ctx.device)?.trim(0);
}

/**
 * A capture's scratch pool: its buffers come from the device's graph scratch arena, shared with every other captured
 * graph (the n-th acquisition of a size gets the arena's n-th buffer of that size). A buffer given back (a scratch
 * tensor's destroy) stays the capture's: the graph binds it until `end()`, when the graph is freed. Only for work
 * that a graph replays and that writes each buffer before reading it; never for outputs a caller keeps.
 *
 * @example
 * ```ts
 * const scratch = new GraphScratch(ctx);
 * const rec = new Recorder(ctx, { capture: true, transient: scratch });
 * const h = scratch.tensor('float32', [T, I]); // ... record, submit, rec.toGraph()
 * graph.destroy(); scratch.end();
 * ```
 */
export class GraphScratch extends BufferPool {
  private readonly arena: GraphScratchArena;
  private taken: GPUBuffer[] = [];
  /** How many buffers of each size this capture took (the index of the next). */
  private next = new Map<number, number>();

  constructor(ctx: GpuContext) {
    super(ctx, { maxFreeBytes: 0 });
    this.arena = arenaOf(ctx);
  }

  /** The next arena buffer of the bucket of `bytes` for this capture. */
  override acquire(bytes: number, label = 'scratch'): GPUBuffer {
    const size = pooledSize(this.ctx, bytes, label);
    const i = this.next.get(size) ?? 0;
    this.next.set(size, i + 1);
    const buf = this.arena.take(size, i, label);
    this.taken.push(buf);
    return buf;
  }

  /** Kept: the captured graph binds it until `end()`. */
  override release(_buf: GPUBuffer): void {}

  /** The graph is gone: its buffers go back to the arena (idle there once no graph binds them). */
  end(): void {
    this.arena.noteLease(this.taken.reduce((n, b) => n + b.size, 0));
    for (const b of this.taken) this.arena.drop(b);
    this.taken = [];
    this.next.clear();
  }

  override trim(): void {}
  override close(): void {
    this.end();
  }
  override destroy(): void {
    this.end();
  }
}
