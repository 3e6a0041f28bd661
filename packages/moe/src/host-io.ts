import { BufferPool, readBuffer, type GpuContext, type GpuTensor } from '@webmoe/kernels-wgsl';
import { DTYPES, DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';

/**
 * A layer's (or stack's) scratch pool: 64 MiB of its own, the rest through the context's shared scratch cache
 * (BufferPool `shared`), so the layers of one context share one cache of the largest forward's scratch.
 * Serves MoE, MoEStack and ShardedMoE.
 * @example `const pool = (this.pool ??= layerScratchPool(ctx))`
 */
export function layerScratchPool(ctx: GpuContext): BufferPool {
  return new BufferPool(ctx, { maxFreeBytes: 64 << 20, shared: true });
}

/**
 * A GPU forward called with host data: `xs` [T, H] goes up through a pooled
 * buffer (no buffer created per call), `forward` runs on it, the result comes
 * back as a Float32Array through a reused staging buffer; all inside
 * validation / out-of-memory error scopes (GPU errors become typed errors,
 * never silent), popped right after the submits so that they resolve while
 * the GPU works, and with the input and output buffers returned to their
 * pools. Serves `MoE.forward` and `MoEStack.forward` with host tensors.
 * @example `const y = await forwardHostArray(ctx, pool, xs, [T, H], 'MoE.forward', (xg) => this.forwardGpuSync(xg))`
 */
export async function forwardHostArray(ctx: GpuContext, pool: BufferPool, xs: Float32Array, shape: readonly [number, number], label: string, forward: (x: GpuTensor) => GpuTensor): Promise<Float32Array> {
  const closeScopes = ctx.openErrorScopes(label);
  let read: Promise<Uint8Array> | undefined;
  let thrown: unknown;
  try {
    const xg = pool.tensor('float32', shape, `${label}.x`);
    try {
      ctx.writeBuffer(xg.buffer, 0, xs.buffer, xs.byteOffset, xs.byteLength);
      const yg = forward(xg);
      try {
        read = readBuffer(ctx, yg.buffer, yg.byteLength); // copy submitted and map requested now
      } finally {
        yg.destroy(); // back to its pool: the submitted copy still reads it
      }
    } finally {
      xg.destroy();
    }
  } catch (e) {
    thrown = e;
  }
  const [scopes, bytes] = await Promise.allSettled([closeScopes(), read ?? Promise.resolve(undefined)]);
  if (scopes.status === 'rejected') throw scopes.reason; // a GPU error explains whatever else failed
  if (thrown !== undefined) throw thrown;
  if (bytes.status === 'rejected') throw bytes.reason;
  const b = bytes.value!;
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}


/**
 * The rows of a host input of a layer of width H: a HostTensor [T, H] of any
 * float dtype (converted to f32) or a Float32Array of T*H values; typed
 * errors naming `what` otherwise. Serves `MoE.forward` and `MoEStack.forward`.
 * @example `const { T, xs } = hostInputRows('MoE.forward input', x, 64)`
 */
export function hostInputRows(what: string, x: unknown, H: number): { T: number; xs: Float32Array } {
  if (x instanceof HostTensor) {
    if (x.shape.length !== 2 || x.shape[1] !== H) throw new ShapeError(what, ['T', H], x.shape);
    if (!DTYPES[x.dtype]?.isFloat) throw new DTypeError(what, ['float32', 'bfloat16', 'float16', 'float8_e4m3fn', 'float8_e5m2'], x.dtype);
    return { T: x.shape[0], xs: x.toFloat32() };
  }
  if (x instanceof Float32Array) {
    if (x.length % H !== 0) throw new ShapeError(what, `T*${H} values`, `${x.length} values`);
    return { T: x.length / H, xs: x };
  }
  throw new ValueError(what, 'a GpuTensor, HostTensor or Float32Array', typeof x);
}
