/** The compute roof: an f32 FMA-rate probe (WGSL, no tensor cores) or the CPU kernels' measured rate. */
import { defineKernel, linearCpu, Recorder, Uniforms, type GpuContext } from '@webmoe/kernels-wgsl';
import { HostTensor } from '@webmoe/tensor';
import { median } from './stats.js';

const WG = 256;
const CHAINS = 8;
const fmaKernel = defineKernel<{ chains: number }>('bench_fma', ({ chains }) => /* wgsl */ `
struct U { iters: u32, _a: u32, _b: u32, _c: u32, }
@group(0) @binding(0) var<storage, read_write> Y: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var a: array<f32, ${chains}>;
  for (var c = 0u; c < ${chains}u; c++) { a[c] = f32(gid.x + c) * 1e-7; }
  let m = 0.999999; let b = 1e-7;
  for (var i = 0u; i < u.iters; i++) {
    ${Array.from({ length: chains }, (_, c) => `a[${c}] = fma(a[${c}], m, b);`).join(' ')}
  }
  var s = 0.0;
  for (var c = 0u; c < ${chains}u; c++) { s += a[c]; }
  Y[gid.x] = s;
}
`);

/**
 * Measures the device's f32 FMA rate in TFLOP/s (2 flops per FMA). Not a
 * matrix-engine rate: WGSL reaches tensor cores only through subgroup-matrix.
 * @example `const tf = await measureFmaGpu(ctx, false)`
 */
export async function measureFmaGpu(ctx: GpuContext, small: boolean): Promise<number> {
  const groups = small ? 64 : 4096;
  const iters = small ? 256 : 4096;
  const n = groups * WG;
  const y = ctx.device.createBuffer({ label: 'bench.fma', size: n * 4, usage: GPUBufferUsage.STORAGE });
  const samples: number[] = [];
  try {
    for (let r = 0; r < 4; r++) {
      const rec = new Recorder(ctx, { timestamps: ctx.features.timestampQuery, label: 'bench.fma' });
      rec.dispatch({ kernel: fmaKernel, variant: { chains: CHAINS }, buffers: [y], uniforms: new Uniforms().u32(iters, 0, 0, 0).finish(), workgroups: [groups] });
      const t0 = performance.now();
      rec.submit();
      await ctx.sync();
      const wall = performance.now() - t0;
      const t = await rec.timings();
      if (r > 0) samples.push(t.length ? t[0].ns / 1e6 : wall);
    }
  } finally {
    y.destroy();
  }
  return (2 * n * iters * CHAINS) / median(samples) / 1e9;
}

/**
 * Keeps the GPU busy with FMA dispatches for at least `ms` of wall time and
 * returns the dispatches run. An H200 that idled through a row's CPU-side
 * check stays at reduced clocks under a light load (T = 1 forwards, even back
 * to back: every kernel of the row timed 2-3x slow); a user's decode loop
 * keeps it busy, so rows are timed after this burn.
 * @example `await burnGpu(ctx, 200)`
 */
export async function burnGpu(ctx: GpuContext, ms: number): Promise<number> {
  const groups = 4096;
  const y = ctx.device.createBuffer({ label: 'bench.burn', size: groups * WG * 4, usage: GPUBufferUsage.STORAGE });
  let n = 0;
  try {
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      const rec = new Recorder(ctx, { label: 'bench.burn' });
      for (let i = 0; i < 4; i++) rec.dispatch({ kernel: fmaKernel, variant: { chains: CHAINS }, buffers: [y], uniforms: new Uniforms().u32(1024, 0, 0, 0).finish(), workgroups: [groups] });
      rec.submit();
      await ctx.sync();
      n += 4;
    }
  } finally {
    y.destroy();
  }
  return n;
}

/**
 * The CPU path's roof in TFLOP/s: the rate of its kernels' dot products (`linearCpu` over f32 weights [256, 2048], 16
 * rows per weight row: WebAssembly SIMD where there, else JavaScript), median of 3.
 * @example `measureFmaCpu()`
 */
export function measureFmaCpu(): number {
  const [T, N, K] = [16, 256, 2048];
  const w = new HostTensor('float32', [N, K], Float32Array.from({ length: N * K }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5));
  const x = Float32Array.from({ length: T * K }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const samples: number[] = [];
  let sink = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    sink += linearCpu(x, T, w)[0];
    samples.push(performance.now() - t0);
  }
  if (sink === 42) console.error('');
  return (2 * T * N * K) / median(samples) / 1e9;
}
