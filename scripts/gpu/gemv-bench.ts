// Micro-benchmark of the decode GEMVs on real MoE shapes (bf16), with a copy
// kernel measuring the device bandwidth in the same process. Prints JSON.
//   node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs
import { HostTensor } from '@webmoe/tensor';
import { createGpuContext, GpuTensor, Recorder, defineKernel, Uniforms, gemvGateUpGpu, gemvDownGpu, activeExpertsGpu, foldWorkgroups, type GroupingGpu } from '@webmoe/kernels-wgsl';

const ctx = await createGpuContext();
console.log('adapter', ctx.adapterName, JSON.stringify(ctx.features), 'maxBinding', ctx.limits.maxStorageBufferBindingSize);
const copyK = defineKernel<{ v: number }>('copy4', () => `
@group(0) @binding(0) var<storage, read> A: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> B: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> n: vec4<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u; if (i < n.x) { B[i] = A[i]; } }`);

function median(a: number[]) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }

async function timeIt(label: string, record: (rec: Recorder) => (() => void) | void, iters = 30): Promise<number> {
  // whole-pass timing (what a forward costs), then a per-kernel breakdown
  const tot: number[] = [];
  for (let i = 0; i < iters + 5; i++) {
    const rec = new Recorder(ctx, { timestamps: 'total' });
    const done = record(rec);
    rec.submit();
    if (done) done();
    const t = await rec.timings();
    if (i >= 5) tot.push(t[0].ns / 1e6);
  }
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) { const rec = new Recorder(ctx); const done = record(rec); rec.submit(); if (done) done(); }
  await ctx.device.queue.onSubmittedWorkDone();
  const wall = (performance.now() - t0) / iters;
  console.log(label, 'one-pass median ms', median(tot).toFixed(4), 'wall/iter ms', wall.toFixed(4));
  const ts: number[] = [];
  const per = new Map<string, number[]>();
  for (let i = 0; i < iters + 5; i++) {
    const rec = new Recorder(ctx, { timestamps: true });
    const done = record(rec);
    rec.submit();
    if (done) done();
    const t = await rec.timings();
    if (i >= 5) {
      ts.push(t.reduce((s, x) => s + x.ns, 0) / 1e6);
      t.forEach((x, j) => { const k = `${j}:${x.name}`; per.set(k, [...(per.get(k) ?? []), x.ns / 1e3]); });
    }
  }
  const m = median(tot);
  console.log('   per kernel (us):', [...per].map(([k, v]) => `${k}=${median(v).toFixed(1)}`).join(' '));
  console.log(label, 'median ms', m.toFixed(4), 'min', Math.min(...ts).toFixed(4));
  return m;
}

// copy bandwidth
const words = (1024 << 20) / 16;
const A = ctx.device.createBuffer({ size: words * 16, usage: GPUBufferUsage.STORAGE });
const B = ctx.device.createBuffer({ size: words * 16, usage: GPUBufferUsage.STORAGE });
const copyMs = await timeIt('copy 1GiB', (rec) => rec.dispatch({ kernel: copyK, variant: { v: 1 }, buffers: [A, B], uniforms: new Uniforms().u32(words).finish(), workgroups: foldWorkgroups(ctx, Math.ceil(words / 256)) }));
const copyGBps = (2 * words * 16) / (copyMs * 1e6);
console.log('copy GB/s', copyGBps.toFixed(0));
A.destroy(); B.destroy();

function randBf16(n: number): Uint16Array {
  const u = new Uint16Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; u[i] = 0x3c00 | ((s >>> 16) & 0x83ff); } // |w| ~ 2^-7..2^-6 with random sign
  return u;
}
const results: Record<string, unknown>[] = [];
for (const [name, H, I, E, k] of [['qwen3-30b-a3b', 2048, 768, 128, 8], ['gpt-oss-20b', 2880, 2880, 32, 4], ['mixtral-8x7b', 4096, 14336, 8, 2]] as [string, number, number, number, number][]) {
  const wgu = GpuTensor.upload(ctx, new HostTensor('bfloat16', [E, 2 * I, H], randBf16(E * 2 * I * H)));
  const wdn = GpuTensor.upload(ctx, new HostTensor('bfloat16', [E, H, I], randBf16(E * H * I)));
  for (const T of [1, 16]) {
    const idx = new Uint32Array(T * k);
    for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) idx[t * k + j] = (t * 7 + j * 13) % E;
    const counts = new Uint32Array(E); for (const e of idx) counts[e]++;
    const offsets = new Uint32Array(E + 1); for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
    const cur = offsets.slice(0, E); const order = new Uint32Array(T * k), position = new Uint32Array(T * k);
    for (let p = 0; p < T * k; p++) { order[cur[idx[p]]] = p; position[p] = cur[idx[p]]++; }
    const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));
    const g: GroupingGpu = { T, k, E, counts: up(counts), offsets: up(offsets), order: up(order), position: up(position), destroy() {} };
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H).map((_, i) => Math.sin(i))));
    const distinct = counts.filter((c) => c > 0).length;
    const bytes = distinct * 3 * I * H * 2 + T * H * 4 * 2 + T * k * I * 4 * 2;
    const ms = await timeIt(`${name} T=${T}`, (rec) => {
      const active = activeExpertsGpu(ctx, rec, g, I, H);
      const h = gemvGateUpGpu(ctx, rec, x, g, { kind: 'dense', w: wgu }, { kind: 'silu', layout: 'concat' }, { active });
      const y = gemvDownGpu(ctx, rec, h, g, { kind: 'dense', w: wdn }, { active });
      return () => { h.destroy(); y.destroy(); };
    });
    const gbps = bytes / (ms * 1e6);
    results.push({ name, T, ms, distinct, bytes, gbps, frac: gbps / copyGBps });
    console.log(`  ${name} T=${T}: ${ms.toFixed(4)} ms, ${gbps.toFixed(0)} GB/s = ${(100 * gbps / copyGBps).toFixed(1)}% of copy`);
  }
  wgu.destroy(); wdn.destroy();
}
console.log(JSON.stringify({ adapter: ctx.adapterName, copyGBps, results }));
process.exit(0);
