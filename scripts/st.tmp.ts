import { createGpuContext } from '@webmoe/kernels-wgsl';
const ctx = await createGpuContext({});
const d = ctx.device;
const n = 8 << 20;
const buf = d.createBuffer({ size: n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const data = new Uint8Array(n).fill(1);
let created = 0;
const orig = d.createBuffer.bind(d);
(d as any).createBuffer = (desc: GPUBufferDescriptor) => { created++; return orig(desc); };
for (const wait of ['workdone', 'workdone+timeout0']) {
  const ts: number[] = [];
  created = 0;
  for (let it = 0; it < 25; it++) {
    const t0 = performance.now();
    ctx.writeBufferStaged(buf, 0, data);
    await d.queue.onSubmittedWorkDone();
    ts.push(performance.now() - t0);
    if (wait !== 'workdone') await new Promise((r) => setTimeout(r, 0));
  }
  ts.sort((a, b) => a - b);
  console.log(wait, ts[12].toFixed(3), 'created', created);
}
ctx.destroy();
