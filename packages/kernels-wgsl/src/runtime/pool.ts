import type { DType } from '@webmoe/tensor';
import { numel } from '@webmoe/tensor';
import type { GpuContext } from './context.js';
import { GpuTensor, gpuByteLength, checkBufferSize, type BufferOwner } from './tensor.js';

/**
 * The size of every buffer a pool made (what `createBuffer` was given): pools read it on each acquire and release,
 * and `GPUBuffer.size` is a call into the WebGPU binding (~0.1 us in Dawn's Node binding, several per forward).
 */
const pooledBufferSize = new WeakMap<GPUBuffer, number>();

/**
 * A bounded pool of scratch buffers (activations, routing tables). Buffers
 * are bucketed by size rounded up to 256 bytes (and to 1/8 of the power of
 * two above 64 KiB); at most `maxFreeBytes` stay cached, the oldest leave
 * first. Weights are not pooled.
 *
 * With `shared: true` the pool draws on its context's shared scratch cache
 * (`sharedScratch`): a buffer this pool does not keep goes there instead of
 * being destroyed, and a size this pool has no free buffer of is taken from
 * there before a new one is created. The shared cache keeps up to the largest
 * scratch one pool has held at once (its floor: SHARED_SCRATCH_FLOOR_BYTES),
 * so a prefill forward's large activations are made once and reused by the
 * next forward of any layer on the context, instead of allocated and freed
 * every call (on the H200 that cost 36 ms of host time per Mixtral forward of
 * 4096 tokens, docs/PERF-NOTES.md); `sharedScratch(ctx).trim()` gives them back.
 *
 * @example
 * ```ts
 * const pool = new BufferPool(ctx, { maxFreeBytes: 256 << 20 });
 * const t = pool.tensor('float32', [T, H]); t.destroy(); // back to the pool
 * pool.destroy();
 * ```
 */
export class BufferPool implements BufferOwner {
  readonly ctx: GpuContext;
  private cap: number;
  private free = new Map<number, GPUBuffer[]>();
  private order: GPUBuffer[] = [];
  private freeBytes = 0;
  private liveBytes = 0;
  private peakLiveBytes = 0;
  private live = new Set<GPUBuffer>();
  private closed = false;
  /** The context's shared cache this pool spills to and draws on (`shared: true`). */
  private readonly parent: BufferPool | undefined;
  /** Shared cache: the largest live bytes one of its pools reported. */
  private childPeak = 0;

  constructor(ctx: GpuContext, opts: { maxFreeBytes?: number; shared?: boolean } = {}) {
    this.ctx = ctx;
    this.cap = opts.maxFreeBytes ?? 256 * 1024 * 1024;
    this.parent = opts.shared ? sharedScratch(ctx) : undefined;
  }

  /** Most bytes of free buffers kept (a shared cache: at least the largest scratch one of its pools held at once). */
  get maxFreeBytes(): number {
    return this.cap;
  }

  static bucket(bytes: number): number {
    if (bytes <= 65536) return Math.max(256, Math.ceil(bytes / 256) * 256);
    const p = 2 ** Math.floor(Math.log2(bytes));
    const step = p / 8;
    return Math.ceil(bytes / step) * step;
  }

  /** Bytes held by live (handed-out) buffers. */
  get liveByteCount(): number {
    return this.liveBytes;
  }
  /** Bytes held by cached free buffers. */
  get freeByteCount(): number {
    return this.freeBytes;
  }
  /** Number of buffers handed out and not returned. */
  get liveCount(): number {
    return this.live.size;
  }

  /** A raw buffer of at least `bytes` (STORAGE | COPY_SRC | COPY_DST | INDIRECT). Return it with `release`. */
  acquire(bytes: number, label = 'scratch'): GPUBuffer {
    const size = pooledSize(this.ctx, bytes, label);
    let buf = this.takeFree(size) ?? this.parent?.takeFree(size);
    if (!buf) {
      buf = this.ctx.device.createBuffer({ label, size, usage: poolUsage() });
      pooledBufferSize.set(buf, size);
    }
    this.live.add(buf);
    this.liveBytes += size;
    if (this.liveBytes > this.peakLiveBytes) {
      this.peakLiveBytes = this.liveBytes;
      this.parent?.noteChildPeak(this.liveBytes);
      this.grow();
    }
    return buf;
  }

  /** A cached free buffer of exactly `size` bytes, now the caller's (not live here), or undefined. */
  private takeFree(size: number): GPUBuffer | undefined {
    const buf = this.free.get(size)?.pop();
    if (!buf) return undefined;
    this.freeBytes -= size;
    this.order.splice(this.order.indexOf(buf), 1);
    return buf;
  }

  /** Shared cache: one of its pools held `bytes` at once. */
  private noteChildPeak(bytes: number): void {
    if (bytes > this.childPeak) this.childPeak = bytes;
    this.grow();
  }

  /** Shared cache: the cap covers the largest scratch of one pool plus this cache's own peak (recorder temps). */
  private grow(): void {
    if (sharedCaches.get(this.ctx.device) === this) this.cap = Math.max(this.cap, this.childPeak + this.peakLiveBytes);
  }

  /** Caches a free buffer (released here, or handed over by one of this shared cache's pools); the oldest leave over the cap. */
  private putFree(buf: GPUBuffer, size: number): void {
    // a pool that keeps nothing (an output pool) hands the buffer straight on, as the eviction below would
    if (this.cap === 0 && this.parent) return this.parent.putFree(buf, size);
    const list = this.free.get(size) ?? [];
    list.push(buf);
    this.free.set(size, list);
    this.order.push(buf);
    this.freeBytes += size;
    while (this.freeBytes > this.cap && this.order.length) {
      const old = this.order.shift()!;
      const oldSize = pooledBufferSize.get(old)!;
      const l = this.free.get(oldSize)!;
      l.splice(l.indexOf(old), 1);
      this.freeBytes -= oldSize;
      if (this.parent) this.parent.putFree(old, oldSize);
      else {
        this.ctx.flush(); // deferred work may still use them
        old.destroy();
      }
    }
  }

  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) return;
    const size = pooledBufferSize.get(buf)!;
    this.liveBytes -= size;
    if (this.closed) {
      this.ctx.flush(); // deferred work may still use them
      buf.destroy();
      return;
    }
    this.putFree(buf, size);
  }

  /** A tensor whose buffer comes from (and returns to) this pool. Contents are undefined. */
  tensor(dtype: DType, shape: readonly number[], label = 'scratch'): GpuTensor {
    const buf = this.acquire(gpuByteLength(dtype, numel(shape)), label);
    return new GpuTensor(this.ctx, dtype, shape, buf, this);
  }

  /** Destroys every cached buffer (live ones stay with their holders). */
  trim(): void {
    this.ctx.flush(); // deferred work may still use them
    for (const b of this.order) b.destroy();
    this.order = [];
    this.free.clear();
    this.freeBytes = 0;
  }

  /**
   * Destroys every cached buffer and hands the live ones over to their
   * holders: from now on a released buffer is destroyed, not cached (for
   * pools whose tensors outlive their owner, e.g. forward outputs).
   */
  close(): void {
    this.closed = true;
    this.trim();
  }

  /** Destroys all buffers, live ones included. */
  destroy(): void {
    this.trim(); // flushes the context's deferred work first
    for (const b of this.live) b.destroy();
    this.live.clear();
    this.liveBytes = 0;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * The size of the pooled buffer that holds `bytes` (its bucket, capped at the device's largest storage binding);
 * throws LimitError naming `label` past the device's limits.
 */
export function pooledSize(ctx: GpuContext, bytes: number, label: string): number {
  checkBufferSize(ctx, bytes, label);
  return Math.min(BufferPool.bucket(bytes), Math.max(bytes, Math.floor(ctx.limits.maxStorageBufferBindingSize / 4) * 4));
}

/**
 * A pool for outputs handed to callers: it keeps no buffer of its own; its outputs come from, and go back to when
 * their holder destroys them, the context's shared scratch cache (sharedScratch), so a chain of forwards that destroys
 * each output once consumed creates (and destroys) no buffer per forward, and owners of many such pools (the layers of
 * a model) do not each keep their last output. Closed, not destroyed, with its owner: outputs still held stay valid.
 * @example `const outputs = outputPool(ctx); const y = outputs.tensor('float32', [T, H]); y.destroy(); outputs.close()`
 */
export function outputPool(ctx: GpuContext): BufferPool {
  return new BufferPool(ctx, { maxFreeBytes: 0, shared: true });
}

/** Usage of every pooled buffer (scratch tensors and recorder temps, which may hold indirect dispatch arguments). */
export function poolUsage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.INDIRECT;
}

/** Floor of a shared scratch cache's cap. */
export const SHARED_SCRATCH_FLOOR_BYTES = 64 << 20;

/**
 * The context's shared scratch cache (one per device): what pools made with
 * `shared: true` spill to and draw on, and where recorders take their temps.
 * Its cap follows the largest scratch one of its pools held at once (at least
 * SHARED_SCRATCH_FLOOR_BYTES).
 * @example `sharedScratch(ctx).trim() // give the cached prefill activations back`
 */
export function sharedScratch(ctx: GpuContext): BufferPool {
  let p = sharedCaches.get(ctx.device);
  if (!p) {
    p = new BufferPool(ctx, { maxFreeBytes: SHARED_SCRATCH_FLOOR_BYTES });
    sharedCaches.set(ctx.device, p);
  }
  return p;
}

/** The shared scratch cache of each device (their cap grows with the scratch their pools and recorders hold). */
const sharedCaches = new WeakMap<GPUDevice, BufferPool>();
