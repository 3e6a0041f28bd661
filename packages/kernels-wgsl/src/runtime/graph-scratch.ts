import type { GpuContext } from './context.js';
import { BufferPool, pooledSize, poolUsage } from './pool.js';

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
 * twice. A buffer no cached graph binds any more is destroyed.
 */
class GraphScratchArena {
  private slots = new Map<number, Slot[]>();
  private bytes = 0;
  constructor(private readonly ctx: GpuContext) {}

  /** Bytes of the arena's buffers. */
  get byteCount(): number {
    return this.bytes;
  }

  /** The `index`-th buffer of `size` bytes (made on first use), now bound by one more graph. */
  take(size: number, index: number, label: string): GPUBuffer {
    const list = this.slots.get(size) ?? [];
    this.slots.set(size, list);
    let slot = list[index];
    if (!slot) {
      slot = { buf: this.ctx.device.createBuffer({ label: `graph-scratch.${label}`, size, usage: poolUsage() }), refs: 0 };
      this.bytes += size;
      list.push(slot);
    }
    slot.refs++;
    return slot.buf;
  }

  /** A graph that bound `buf` is gone: the buffer is destroyed once no graph binds it. */
  drop(buf: GPUBuffer): void {
    const list = this.slots.get(buf.size);
    const i = list?.findIndex((s) => s.buf === buf) ?? -1;
    if (!list || i < 0) return;
    if (--list[i].refs > 0) return;
    list.splice(i, 1);
    this.bytes -= buf.size;
    this.ctx.flush(); // deferred replays may still use it
    buf.destroy();
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
 * {@link GraphScratch}): about one forward's scratch per token count that a cached graph replays.
 * @example `graphScratchBytes(ctx) // 0 once every graph is freed`
 */
export function graphScratchBytes(ctx: GpuContext): number {
  return arenas.get(ctx.device)?.byteCount ?? 0;
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

  /** The graph is gone: its buffers go back to the arena (destroyed there once no graph binds them). */
  end(): void {
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
