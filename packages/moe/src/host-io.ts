import { BufferPool, mapForRead, type GpuContext, type GpuTensor, type MappedRead } from '@webmoe/kernels-wgsl';
import { DTYPES, DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import type { MoEHostForwardOptions, MoEOutput } from './moe-options.js';

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
 * output's size, checked by {@link forwardHostData}) or a new Float32Array; all inside
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
 * The host-data side of `MoE.forward` / `MoEStack.forward` (`label` names them in the typed errors): x's rows
 * (hostInputRows) and the caller's `opts.out`, checked before anything runs (a Float32Array of T*H values; it may be
 * x itself), then `run` on the rows, which either writes `out` itself (a GPU forward: forwardHostArray) or returns
 * its result, copied into `out` where given; the result comes back as x's kind (a HostTensor over it for a
 * HostTensor input).
 * @example `return forwardHostData('MoE.forward', x, H, opts, (xs, T, out) => forwardHostArray(ctx, pool, xs, [T, H], 'MoE.forward', fwd, out))`
 */
export async function forwardHostData<X extends GpuTensor | HostTensor | Float32Array>(
  label: string,
  x: X,
  H: number,
  opts: MoEHostForwardOptions,
  run: (xs: Float32Array, T: number, out: Float32Array | undefined) => Float32Array | Promise<Float32Array>,
): Promise<MoEOutput<X>> {
  const { T, xs } = hostInputRows(`${label} input`, x, H);
  const out = hostOutput(`${label} options.out`, opts.out, T, H);
  let y = await run(xs, T, out);
  if (out && y !== out) {
    out.set(y);
    y = out;
  }
  return (x instanceof HostTensor ? new HostTensor('float32', [T, H], y) : y) as MoEOutput<X>;
}

/**
 * Throws a ValueError naming `label` where a forward of a GpuTensor was given `opts.out` (a host array): its output
 * is a GpuTensor, written into a GpuTensor `out` through `gpuMethod`.
 * @example `noHostOutput('MoE.forward', opts, 'forwardGpu')`
 */
export function noHostOutput(label: string, opts: MoEHostForwardOptions, gpuMethod: string): void {
  if (opts.out !== undefined) throw new ValueError(`${label} options.out`, `undefined for a GpuTensor input (${gpuMethod} takes { out: GpuTensor })`, 'an output array');
}

/** The caller's output array of a host forward (undefined, or a Float32Array of T*H values), typed errors naming `what`. */
function hostOutput(what: string, out: unknown, T: number, H: number): Float32Array | undefined {
  if (out === undefined) return undefined;
  if (!(out instanceof Float32Array)) throw new ValueError(what, 'a Float32Array (or undefined)', describe(out));
  if (out.length !== T * H) throw new ShapeError(what, `${T * H} values (T ${T} x H ${H})`, `${out.length} values`);
  return out;
}

function describe(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}

/**
 * The rows of a host input of a layer of width H: a HostTensor [T, H] of any
 * float dtype (converted to f32) or a Float32Array of T*H values; typed
 * errors naming `what` otherwise.
 */
function hostInputRows(what: string, x: unknown, H: number): { T: number; xs: Float32Array } {
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
