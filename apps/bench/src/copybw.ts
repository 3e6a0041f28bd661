/**
 * The device's own copy bandwidth, measured by the bench: a vec4<u32) copy
 * kernel (GPU) or TypedArray.set (CPU). GB/s counts bytes read plus written.
 */
import { defineKernel, foldWorkgroups, Recorder, Uniforms, type GpuContext } from '@webmoe/kernels-wgsl';
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
  /** Bytes copied per iteration. */
  bytes: number;
  /** 'timestamp' (GPU timestamp queries) or 'wall'. */
  timing: 'timestamp' | 'wall';
  ms: Summary;
}

/**
 * Copies `bytes` (capped by the binding limit) with a vec4 kernel and
 * returns the median bandwidth.
 * @example `const { gbps } = await measureCopyGpu(ctx, 256 << 20)`
 */
export async function measureCopyGpu(ctx: GpuContext, bytes: number, iters = 10): Promise<CopyResult> {
  const size = Math.max(1024, Math.floor(Math.min(bytes, ctx.limits.maxStorageBufferBindingSize) / 16) * 16);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const a = ctx.device.createBuffer({ label: 'bench.copy.src', size, usage });
  const b = ctx.device.createBuffer({ label: 'bench.copy.dst', size, usage });
  const n = size / 16;
  const ts = ctx.features.timestampQuery;
  const samples: number[] = [];
  try {
    const once = async () => {
      const rec = new Recorder(ctx, { timestamps: ts, label: 'bench.copy' });
      rec.dispatch({ kernel: copyKernel, variant: { v: 4 }, buffers: [a, b], uniforms: new Uniforms().u32(n, 0, 0, 0).finish(), workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)) });
      const t0 = performance.now();
      rec.submit();
      await ctx.sync();
      const wall = performance.now() - t0;
      const t = await rec.timings();
      return ts && t.length ? t[0].ns / 1e6 : wall;
    };
    await ctx.checked('copy bandwidth probe', once); // warm-up, inside error scopes
    for (let i = 0; i < iters; i++) samples.push(await once());
  } finally {
    a.destroy();
    b.destroy();
  }
  const ms = summarize(samples);
  return { gbps: (2 * size) / ms.median / 1e6, bytes: size, timing: ts ? 'timestamp' : 'wall', ms };
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
  return { gbps: (2 * n * 4) / ms.median / 1e6, bytes: n * 4, timing: 'wall', ms };
}
