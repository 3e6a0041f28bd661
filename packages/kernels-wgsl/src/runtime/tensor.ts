import type { DType, HostArray } from '@webmoe/tensor';
import { DTYPES, HostTensor, numel, allocHost, ShapeError, DTypeError, ValueError, checkShape } from '@webmoe/tensor';
import type { GpuContext } from './context.js';
import { LimitError } from './errors.js';

/** Bytes a tensor of `dtype` and `n` elements takes on the GPU (packed, padded to whole u32 words). */
export function gpuByteLength(dtype: DType, n: number): number {
  const bytes = n * DTYPES[dtype].bytes;
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** Who owns a GPU buffer: a pool (returned on destroy) or nobody (destroyed on destroy). */
export interface BufferOwner {
  release(buffer: GPUBuffer): void;
}

/**
 * A tensor on a GPU: its buffer holds the values in the storage type
 * (bf16/f16 two per u32, fp8/int8 four per u32, little-endian packing of the
 * flat element index). Owns its buffer: `destroy()` frees or returns it.
 *
 * @example
 * ```ts
 * const t = GpuTensor.upload(ctx, HostTensor.fromFloat32([2], [1, 2], 'bfloat16'));
 * const back = await t.download();
 * t.destroy();
 * ```
 */
export class GpuTensor {
  readonly ctx: GpuContext;
  readonly dtype: DType;
  readonly shape: readonly number[];
  private buf: GPUBuffer | undefined;
  private readonly owner: BufferOwner | undefined;

  constructor(ctx: GpuContext, dtype: DType, shape: readonly number[], buffer: GPUBuffer, owner?: BufferOwner) {
    checkShape('GpuTensor', shape);
    const need = gpuByteLength(dtype, numel(shape));
    if (buffer.size < need) throw new ShapeError('GpuTensor buffer', `at least ${need} bytes`, `${buffer.size} bytes`);
    this.ctx = ctx;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.buf = buffer;
    this.owner = owner;
  }

  /** The buffer (throws if destroyed). */
  get buffer(): GPUBuffer {
    if (!this.buf) throw new ValueError(`GpuTensor ${this.dtype} [${this.shape.join(', ')}]`, 'a tensor that is not destroyed', 'used after destroy()');
    return this.buf;
  }
  get size(): number {
    return numel(this.shape);
  }
  /** Bytes the data occupies (packed, padded to u32). */
  get byteLength(): number {
    return gpuByteLength(this.dtype, this.size);
  }
  get destroyed(): boolean {
    return this.buf === undefined;
  }

  /** Allocates an uninitialised (zeroed) tensor with its own buffer. */
  static empty(ctx: GpuContext, dtype: DType, shape: readonly number[], label = 'tensor'): GpuTensor {
    const bytes = gpuByteLength(dtype, numel(shape));
    checkBufferSize(ctx, bytes, label);
    const buf = ctx.device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    return new GpuTensor(ctx, dtype, shape, buf);
  }

  /** Uploads a host tensor in its storage type (no conversion). */
  static upload(ctx: GpuContext, t: HostTensor, label = 'tensor'): GpuTensor {
    ctx.assertAlive();
    const bytes = gpuByteLength(t.dtype, t.size);
    checkBufferSize(ctx, bytes, label);
    const buf = ctx.device.createBuffer({
      label,
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(t.bytes());
    buf.unmap();
    return new GpuTensor(ctx, t.dtype, t.shape, buf);
  }

  /** Reads the tensor back to the host in its storage type. */
  async download(): Promise<HostTensor> {
    const bytes = await readBuffer(this.ctx, this.buffer, this.byteLength);
    const n = this.size;
    const out = allocHost(this.dtype, n);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(0, out.byteLength));
    return new HostTensor(this.dtype, this.shape, out as HostArray);
  }

  /** Frees the buffer (or returns it to its pool). Idempotent. */
  destroy(): void {
    if (!this.buf) return;
    if (this.owner) this.owner.release(this.buf);
    else {
      this.ctx.flush(); // deferred work may still read it: submitted first
      this.buf.destroy();
    }
    this.buf = undefined;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Throws LimitError if one buffer of `bytes` exceeds the device's binding or buffer size. */
export function checkBufferSize(ctx: GpuContext, bytes: number, what: string): void {
  const maxBind = ctx.limits.maxStorageBufferBindingSize;
  const maxBuf = ctx.limits.maxBufferSize;
  if (bytes > maxBuf) throw new LimitError('maxBufferSize', bytes, maxBuf, what);
  if (bytes > maxBind) throw new LimitError('maxStorageBufferBindingSize', bytes, maxBind, what);
}

/**
 * A buffer's bytes mapped on the host by {@link mapForRead}: `bytes` views the mapped staging buffer until
 * `release()` (call it on every path: it unmaps and hands the staging buffer back; later calls do nothing).
 */
export interface MappedRead {
  readonly bytes: Uint8Array;
  release(): void;
}

/**
 * Copies `size` bytes of a buffer into a (reused) staging buffer and maps it: the copy is submitted and the map
 * requested before the first await, so a caller may issue other work and await later. The bytes are the caller's to
 * copy where it wants them (a fresh array: {@link readBuffer}; an array it owns: `dst.set(m.bytes)`) before
 * `release()`. A device destroyed or lost under the read rejects with DeviceLostError.
 * @example `const m = await mapForRead(ctx, y.buffer, y.byteLength); try { out.set(m.bytes) } finally { m.release() }`
 */
export async function mapForRead(ctx: GpuContext, buffer: GPUBuffer, size: number): Promise<MappedRead> {
  ctx.assertAlive();
  const staging = ctx.acquireStaging(size);
  try {
    const enc = ctx.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
    ctx.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, staging.size);
    } catch (e) {
      return await ctx.rethrowIfLost(e); // a device destroyed or lost under the read: DeviceLostError
    }
  } catch (e) {
    staging.destroy();
    throw e;
  }
  let released = false;
  return {
    bytes: new Uint8Array(staging.getMappedRange(0, size)),
    release() {
      if (released) return;
      released = true;
      staging.unmap();
      ctx.releaseStaging(staging);
    },
  };
}

/**
 * Copies `size` bytes of a buffer to the host, into a new array, through a (reused) staging buffer
 * ({@link mapForRead}). The copy is submitted and the map requested before the first await.
 */
export async function readBuffer(ctx: GpuContext, buffer: GPUBuffer, size: number): Promise<Uint8Array> {
  const m = await mapForRead(ctx, buffer, size);
  try {
    return m.bytes.slice();
  } finally {
    m.release();
  }
}

/** Checks that a GPU tensor has the given dtype(s). */
export function expectDType(what: string, t: { dtype: DType }, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) throw new DTypeError(what, allowed, t.dtype);
}
