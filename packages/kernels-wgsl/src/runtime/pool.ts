import type { DType } from '@webmoe/tensor';
import { numel } from '@webmoe/tensor';
import type { GpuContext } from './context.js';
import { GpuTensor, gpuByteLength, checkBufferSize, type BufferOwner } from './tensor.js';

/**
 * A bounded pool of scratch buffers (activations, routing tables). Buffers
 * are bucketed by size rounded up to 256 bytes (and to 1/8 of the power of
 * two above 64 KiB); at most `maxFreeBytes` stay cached, the oldest are
 * destroyed first. Weights are not pooled.
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
  readonly maxFreeBytes: number;
  private free = new Map<number, GPUBuffer[]>();
  private order: GPUBuffer[] = [];
  private freeBytes = 0;
  private liveBytes = 0;
  private live = new Set<GPUBuffer>();
  private closed = false;

  constructor(ctx: GpuContext, opts: { maxFreeBytes?: number } = {}) {
    this.ctx = ctx;
    this.maxFreeBytes = opts.maxFreeBytes ?? 256 * 1024 * 1024;
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

  /** A raw buffer of at least `bytes` (STORAGE | COPY_SRC | COPY_DST). Return it with `release`. */
  acquire(bytes: number, label = 'scratch'): GPUBuffer {
    checkBufferSize(this.ctx, bytes, label);
    const size = Math.min(BufferPool.bucket(bytes), Math.max(bytes, Math.floor(this.ctx.limits.maxStorageBufferBindingSize / 4) * 4));
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.freeBytes -= size;
      this.order.splice(this.order.indexOf(buf), 1);
    } else {
      buf = this.ctx.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    }
    this.live.add(buf);
    this.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) return;
    this.liveBytes -= buf.size;
    if (this.closed) {
      this.ctx.flush(); // deferred work may still use them
      buf.destroy();
      return;
    }
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
    this.order.push(buf);
    this.freeBytes += buf.size;
    while (this.freeBytes > this.maxFreeBytes && this.order.length) {
      const old = this.order.shift()!;
      const l = this.free.get(old.size)!;
      l.splice(l.indexOf(old), 1);
      this.freeBytes -= old.size;
      this.ctx.flush(); // deferred work may still use them
      old.destroy();
    }
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
