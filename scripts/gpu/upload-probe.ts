// Host time of `queue.writeBuffer` by size and piece size (the upload of `MoE.forward(Float32Array)`'s input). Dawn
// stages a write of more than its 4 MiB upload ring in a staging buffer of its own, a new host-visible allocation per
// call (dawn/native/DynamicUploader.cpp); session 27's H100 `wallHost` rose steeply past 4 MiB of input (Qwen3 T = 512,
// 4 MiB: 2.19 ms; GPT-OSS, 5.9 MB: 7.30; Mixtral, 8 MiB: 11.5; the forwards themselves 0.7-2.7 ms). This times one
// write of N MiB whole and in pieces under 2 MiB (two per ring buffer), each followed by a drain, median of 25; and
// the context's writeBufferStaged; the read back of N MiB (copy and mapAsync, then the bytes out by getMappedRange().slice() as readBuffer, or into one
// array allocated once), and what a fresh array of N MiB filled costs the process (no GPU).
//   node scripts/gpu/build-one.mjs scripts/gpu/upload-probe.ts .gpu-kit/upload-probe.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/upload-probe.mjs
// Lavapipe (this machine, 2026-12-06): whole and in pieces within 10% at 2-8 MiB (0.30 / 0.28 ms at 8 MiB): its
// allocations are plain host memory.
import { createGpuContext } from '@webmoe/kernels-wgsl';

const ctx = await createGpuContext({});
const d = ctx.device;
console.log(`adapter: ${ctx.adapterName}`);
const PIECE = (2 << 20) - 256;
/** The median of times (ms), to 3 decimals (the upper middle of an even count). */
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1].toFixed(3);
/** The median time of 25 runs of `write` (ms), each drained. */
async function timeWrites(write: () => void): Promise<string> {
  const ts: number[] = [];
  for (let it = 0; it < 25; it++) {
    const t0 = performance.now();
    write();
    await d.queue.onSubmittedWorkDone();
    ts.push(performance.now() - t0);
  }
  return med(ts);
}
for (const mib of [2, 4, 5, 6, 8, 16]) {
  const n = mib << 20;
  const buf = d.createBuffer({ size: n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const data = new Uint8Array(n).fill(1);
  const row: string[] = [];
  for (const piece of [n, PIECE]) {
    const ms = await timeWrites(() => {
      for (let o = 0; o < n; o += piece) d.queue.writeBuffer(buf, o, data, o, Math.min(piece, n - o));
      d.queue.submit([]);
    });
    row.push(`${piece === n ? 'whole' : 'pieces'} ${ms} ms`);
  }
  // the context's writeBufferStaged (kept MAP_WRITE staging past Dawn's 4 MiB ring), each write drained, as above
  row.push(`writeBufferStaged ${await timeWrites(() => ctx.writeBufferStaged(buf, 0, data))} ms`);
  // the way back: a copy into a reused MAP_READ staging buffer and mapAsync (readBuffer's steps), then the bytes out
  // of the mapped range either as readBuffer takes them (getMappedRange().slice: a fresh ArrayBuffer per call) or
  // into an array allocated once (a caller-provided output)
  const staging = d.createBuffer({ size: n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const into = new Uint8Array(n);
  const t = { map: [] as number[], slice: [] as number[], into: [] as number[], fresh: [] as number[] };
  for (let it = 0; it < 24; it++) {
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(buf, 0, staging, 0, n);
    const t0 = performance.now();
    d.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, n);
    const t1 = performance.now();
    const range = staging.getMappedRange(0, n);
    let out: Uint8Array;
    if (it % 2 === 0) out = new Uint8Array(range.slice(0));
    else (out = into).set(new Uint8Array(range));
    const t2 = performance.now();
    staging.unmap();
    t.map.push(t1 - t0);
    (it % 2 === 0 ? t.slice : t.into).push(t2 - t1);
    if (out[n - 1] !== 1) throw new Error('readback: wrong bytes');
    // a fresh array of the size filled (no GPU): what a new output array costs this process
    const t3 = performance.now();
    const f = new Uint8Array(n);
    f.set(data);
    t.fresh.push(performance.now() - t3);
    if (f[n - 1] !== 1) throw new Error('fresh array: wrong bytes');
  }
  row.push(`read back: copy + map ${med(t.map)} ms, bytes out by slice ${med(t.slice)} / into one array ${med(t.into)}; a fresh array filled ${med(t.fresh)}`);
  console.log(`${mib} MiB: ${row.join(' | ')}`);
  staging.destroy();
  buf.destroy();
}
ctx.destroy();
