import type { BufferPool, GpuContext, GpuTensor } from '@webmoe/kernels-wgsl';

/**
 * A GPU forward called with host data: `xs` [T, H] goes up through a pooled
 * buffer (no buffer created per call), `forward` runs on it, the result comes
 * back as a Float32Array; all inside `ctx.checked` (GPU errors become typed
 * errors) and with the input and output buffers returned to their pools.
 * Serves `MoE.forward` and `MoEStack.forward` with host tensors.
 * @example `const y = await forwardHostArray(ctx, pool, xs, [T, H], 'MoE.forward', (xg) => this.forwardGpuSync(xg))`
 */
export async function forwardHostArray(ctx: GpuContext, pool: BufferPool, xs: Float32Array, shape: readonly [number, number], label: string, forward: (x: GpuTensor) => GpuTensor): Promise<Float32Array> {
  return ctx.checked(label, async () => {
    const xg = pool.tensor('float32', shape, `${label}.x`);
    try {
      ctx.device.queue.writeBuffer(xg.buffer, 0, xs.buffer, xs.byteOffset, xs.byteLength);
      const yg = forward(xg);
      try {
        return (await yg.download()).data as Float32Array;
      } finally {
        yg.destroy();
      }
    } finally {
      xg.destroy();
    }
  });
}
