// Host time of `queue.writeBuffer` by size and piece size (the upload of `MoE.forward(Float32Array)`'s input). Dawn
// stages a write of more than its 4 MiB upload ring in a staging buffer of its own, a new host-visible allocation per
// call (dawn/native/DynamicUploader.cpp); session 27's H100 `wallHost` rose steeply past 4 MiB of input (Qwen3 T = 512,
// 4 MiB: 2.19 ms; GPT-OSS, 5.9 MB: 7.30; Mixtral, 8 MiB: 11.5; the forwards themselves 0.7-2.7 ms). This times one
// write of N MiB whole and in pieces under 2 MiB (two per ring buffer), each followed by a drain, median of 25.
//   node scripts/gpu/build-one.mjs scripts/gpu/upload-probe.ts .gpu-kit/upload-probe.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/upload-probe.mjs
// Lavapipe (this machine, 2026-12-06): whole and in pieces within 10% at 2-8 MiB (0.30 / 0.28 ms at 8 MiB): its
// allocations are plain host memory.
import { createGpuContext } from '@webmoe/kernels-wgsl';

const ctx = await createGpuContext({});
const d = ctx.device;
console.log(`adapter: ${ctx.adapterName}`);
const PIECE = (2 << 20) - 256;
for (const mib of [2, 4, 5, 6, 8, 16]) {
  const n = mib << 20;
  const buf = d.createBuffer({ size: n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const data = new Uint8Array(n).fill(1);
  const row: string[] = [];
  for (const piece of [n, PIECE]) {
    const ts: number[] = [];
    for (let it = 0; it < 25; it++) {
      const t0 = performance.now();
      for (let o = 0; o < n; o += piece) d.queue.writeBuffer(buf, o, data, o, Math.min(piece, n - o));
      d.queue.submit([]);
      await d.queue.onSubmittedWorkDone();
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    row.push(`${piece === n ? 'whole' : 'pieces'} ${ts[12].toFixed(3)} ms`);
  }
  console.log(`${mib} MiB: ${row.join(' | ')}`);
  buf.destroy();
}
ctx.destroy();
