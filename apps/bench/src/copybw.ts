/**
 * The device's own copy bandwidth, measured by the bench: a vec4<u32) copy
 * kernel (GPU) or TypedArray.set (CPU). GB/s counts bytes read plus written.
 */
import { defineKernel, foldWorkgroups, Recorder, Uniforms, type GpuContext } from '@webmoe/kernels-wgsl';
import { ValueError } from '@webmoe/tensor';
import { burnGpu } from './peak.js';
import { summarize, type Summary } from './stats.js';

const WG = 256;
const copyKernel = defineKernel<{ v: 4 }>('bench_copy_vec4', () => /* wgsl */ `
struct U { n: u32, _a: u32, _b: u32, _c: u32, }
@group(0) @binding(0) var<storage, read> X: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> Y: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i < u.n) { Y[i] = X[i]; }
}
`);

/** Result of the copy probe. */
export interface CopyResult {
  /** Median GB/s (read + write). */
  gbps: number;
  /** Bytes copied per copy. */
  bytes: number;
  /** 'timestamp' (GPU timestamp queries around each chain of copies) or 'wall'. */
  timing: 'timestamp' | 'wall';
  /** Copies recorded back to back in each timed submission (ms are per copy). */
  chain: number;
  ms: Summary;
}

/** How {@link measureCopyGpu} keeps the GPU at its clocks: the copies per timed submission and a burn before. */
export interface CopyProbeOptions {
  /** Copies recorded back to back in one pass per timed submission, timed together (default 1). */
  chain?: number;
  /** ms of FMA burn (peak.ts burnGpu) before the first copy: an idle GPU lowers its clocks (default 0). */
  burnMs?: number;
}

/**
 * Copies `bytes` (capped by the binding and buffer limits) with a vec4 kernel, `chain` copies per timed submission
 * after a `burnMs` burn, and returns the median bandwidth per copy. Single copies of 256 MiB without a burn read
 * 2567-2606 GB/s on H100s (sessions 25-34) where PyTorch's copy gave 2910-2992 and gemv-bench's (1 GiB, 8 chained, a
 * 300 ms burn) 3043 on the same machines: the bench times with the second method.
 * @example `const { gbps } = await measureCopyGpu(ctx, 1 << 30, 10, { chain: 8, burnMs: 300 })`
 */
export async function measureCopyGpu(ctx: GpuContext, bytes: number, iters = 10, opts: CopyProbeOptions = {}): Promise<CopyResult> {
  const chain = opts.chain ?? 1;
  if (!Number.isInteger(chain) || chain < 1) throw new ValueError('measureCopyGpu chain', 'a positive integer', chain);
  const size = Math.max(1024, Math.floor(Math.min(bytes, ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize) / 16) * 16);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const a = ctx.device.createBuffer({ label: 'bench.copy.src', size, usage });
  const b = ctx.device.createBuffer({ label: 'bench.copy.dst', size, usage });
  const n = size / 16;
  const ts = ctx.features.timestampQuery;
  const samples: number[] = [];
  try {
    const once = async () => {
      const rec = new Recorder(ctx, { timestamps: ts ? 'total' : false, label: 'bench.copy' });
      for (let i = 0; i < chain; i++) {
        rec.dispatch({ kernel: copyKernel, variant: { v: 4 }, buffers: [a, b], uniforms: new Uniforms().u32(n, 0, 0, 0).finish(), workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)) });
      }
      const t0 = performance.now();
      rec.submit();
      await ctx.sync();
      const wall = performance.now() - t0;
      const t = await rec.timings();
      return (ts && t.length ? t[0].ns / 1e6 : wall) / chain;
    };
    await ctx.checked('copy bandwidth probe', once); // compiles the kernel, inside error scopes
    if ((opts.burnMs ?? 0) > 0) await burnGpu(ctx, opts.burnMs!);
    for (let i = 0; i < iters; i++) samples.push(await once());
  } finally {
    a.destroy();
    b.destroy();
  }
  const ms = summarize(samples);
  return { gbps: (2 * size) / ms.median / 1e6, bytes: size, timing: ts ? 'timestamp' : 'wall', chain, ms };
}

/**
 * Host memory copy bandwidth (TypedArray.set), the CPU path's roof.
 * @example `measureCopyCpu(32 << 20).gbps`
 */
export function measureCopyCpu(bytes: number, iters = 10): CopyResult {
  const n = Math.floor(bytes / 4);
  const a = new Uint32Array(n).fill(1);
  const b = new Uint32Array(n);
  b.set(a);
  const samples: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    b.set(a);
    samples.push(performance.now() - t0);
  }
  const ms = summarize(samples);
  return { gbps: (2 * n * 4) / ms.median / 1e6, bytes: n * 4, timing: 'wall', chain: 1, ms };
}
