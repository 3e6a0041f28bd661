// Runs the MoE layer of @webmoe/moe (MoE.fromHuggingFace + forward) on one
// checkpoint, on the GPU or on the CPU path (kernels-wgsl's CPU kernels).
import { MoE } from '@webmoe/moe';
import { BufferPool, GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import type { PageSource } from './sources.js';
import { sumTimings } from './timing.js';
import type { KernelTime } from './types.js';

/** True when @webmoe/moe exports the MoE layer with its HuggingFace loader. */
export const moeAvailable = typeof MoE === 'function' && typeof MoE.fromHuggingFace === 'function';

export interface MoeRun {
  /** Output of the first forward (through MoE.forward), f32 [T*H]. */
  output: Float32Array;
  kernels: KernelTime[];
  timing: 'gpu-timestamps' | 'wall';
  /** Wall time of a second forward (upload of x to read-back of y), ms. */
  forwardMs: number;
  /** Time to build the layer (read tensors, upload weights), ms. */
  loadMs: number;
  /** Time of the first forward (pipeline compilation included), ms. */
  firstForwardMs: number;
  /** Whether the timed second run gave the first run's output bit for bit (the kernels are deterministic). */
  repeatMatches: boolean;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/**
 * Loads layer `layer`'s MoE block of `src` and runs it on `input` [T, H] f32:
 * on the GPU when `ctx` is given, else on the CPU path. The output
 * comes from the first `forward`; a second run is timed (per kernel with
 * timestamp queries when the device has them, else wall time) and compared
 * with the first bit for bit.
 */
export async function runMoe(src: PageSource, input: HostTensor, ctx: GpuContext | null, opts: { layer?: number; dtype?: 'float32' | 'bfloat16' | 'float16' } = {}): Promise<MoeRun> {
  const layer = opts.layer ?? 0;
  const t0 = performance.now();
  const moe = await MoE.fromHuggingFace({ source: src.source, layer, dtype: opts.dtype, device: ctx ? DeviceRef.GPU() : DeviceRef.CPU(), ctx: ctx ?? undefined });
  try {
    if (ctx) await ctx.sync();
    const loadMs = performance.now() - t0;
    const t1 = performance.now();
    const first = (await moe.forward(input)) as HostTensor;
    const firstForwardMs = performance.now() - t1;
    const output = first.toFloat32();
    if (!ctx || !ctx.features.timestampQuery) {
      const t2 = performance.now();
      const again = ((await moe.forward(input)) as HostTensor).toFloat32();
      const forwardMs = performance.now() - t2;
      return { output, kernels: [], timing: 'wall', forwardMs, loadMs, firstForwardMs, repeatMatches: sameBits(output, again) };
    }
    // One recorder with a timestamp pair per dispatch: the per-kernel breakdown.
    const pool = new BufferPool(ctx);
    const scratch: { destroy(): void }[] = [];
    try {
      const t2 = performance.now();
      const x = GpuTensor.upload(ctx, input, 'web.x');
      scratch.push(x);
      const rec = new Recorder(ctx, { timestamps: true, label: 'web.moe' });
      const y = moe.record(rec, x, pool, scratch);
      scratch.push(y);
      rec.submit();
      const again = (await y.download()).data as Float32Array;
      const forwardMs = performance.now() - t2;
      const kernels = sumTimings(await rec.timings());
      return { output, kernels, timing: kernels.length ? 'gpu-timestamps' : 'wall', forwardMs, loadMs, firstForwardMs, repeatMatches: sameBits(output, again) };
    } finally {
      for (const s of scratch) s.destroy();
      pool.destroy();
    }
  } finally {
    moe.destroy();
  }
}
