import { BufferPool, mapForRead, type GpuContext, type GpuTensor, type MappedRead } from '@webmoe/kernels-wgsl';
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
 * A GPU forward called with host data: `xs` [T, H] goes up into a pooled
 * buffer (no buffer created per call; past 2 MiB through the context's kept
 * upload staging, `writeBufferStaged`), `forward` runs on it, the result comes
 * back through a reused staging buffer, into `out` (a caller's array of the
 * output's size, checked by {@link hostOutput}) or a new Float32Array; all inside
 * validation / out-of-memory error scopes (GPU errors become typed errors,
 * never silent), popped right after the submits so that they resolve while
 * the GPU works, and with the input and output buffers returned to their
 * pools. `out` is written only once the scopes reported no error (nothing
 * half-written on failure). Serves `MoE.forward` and `MoEStack.forward` with host tensors.
 * @example `const y = await forwardHostArray(ctx, pool, xs, [T, H], 'MoE.forward', (xg) => this.forwardGpuSync(xg), out)`
 */
export async function forwardHostArray(ctx: GpuContext, pool: BufferPool, xs: Float32Array, shape: readonly [number, number], label: string, forward: (x: GpuTensor) => GpuTensor, out?: Float32Array): Promise<Float32Array> {
  const closeScopes = ctx.openErrorScopes(label);
  let read: Promise<MappedRead> | undefined;
  let thrown: unknown;
  try {
    const xg = pool.tensor('float32', shape, `${label}.x`);
    try {
      ctx.writeBufferStaged(xg.buffer, 0, new Uint8Array(xs.buffer, xs.byteOffset, xs.byteLength));
      const yg = forward(xg);
      try {
        read = mapForRead(ctx, yg.buffer, yg.byteLength); // copy submitted and map requested now
      } finally {
        yg.destroy(); // back to its pool: the submitted copy still reads it
      }
    } finally {
      xg.destroy();
    }
  } catch (e) {
    thrown = e;
  }
  const [scopes, mapped] = await Promise.allSettled([closeScopes(), read ?? Promise.resolve(undefined)]);
  const m = mapped.status === 'fulfilled' ? mapped.value : undefined;
  try {
    if (scopes.status === 'rejected') throw scopes.reason; // a GPU error explains whatever else failed
    if (thrown !== undefined) throw thrown;
    if (mapped.status === 'rejected') throw mapped.reason;
    if (!out) return new Float32Array(m!.bytes.slice().buffer);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(m!.bytes);
    return out;
  } finally {
    m?.release();
  }
}

/**
 * The caller's output array of a host forward (`options.out` of `MoE.forward` / `MoEStack.forward`), checked before
 * anything runs: undefined, or a Float32Array of T*H values (it may be the input array itself). `what` names it in
 * the typed errors.
 * @example `const out = hostOutput('MoE.forward options.out', opts.out, T, H)`
 */
export function hostOutput(what: string, out: unknown, T: number, H: number): Float32Array | undefined {
  if (out === undefined) return undefined;
  if (!(out instanceof Float32Array)) throw new ValueError(what, 'a Float32Array (or undefined)', describe(out));
  if (out.length !== T * H) throw new ShapeError(what, `${T * H} values (T ${T} x H ${H})`, `${out.length} values`);
  return out;
}

/** A host forward's result `y` in the caller's `out` (copied; `out` returned) where given, else `y`. */
export function intoOutput(y: Float32Array, out: Float32Array | undefined): Float32Array {
  if (!out) return y;
  out.set(y);
  return out;
}

function describe(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
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
