// Where the host time of `MoE.forward(Float32Array)` goes at decode sizes: the call itself beside its
// parts (upload + forwardGpuSync + drain, + download, error scopes, a bare map of a staging buffer),
// on bench layers (random bf16 weights generated on the GPU). Medians over N calls after warm-up.
//   node scripts/gpu/build-one.mjs scripts/gpu/host-probe.ts .gpu-kit/host-probe.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/host-probe.mjs [iters] [models] [divide dims by]
import { BufferPool, createGpuContext, GpuTensor } from '@webmoe/kernels-wgsl';
import { HostTensor } from '@webmoe/tensor';
import { createMoELayer } from '../../apps/bench/src/moe-run.js';
import { findModel, scaled } from '../../apps/bench/src/models.js';
import { burnGpu } from '../../apps/bench/src/peak.js';

const iters = Number(process.argv[2] ?? 200);
const models = (process.argv[3] ?? 'qwen3-30b-a3b,mixtral-8x7b').split(',');
// a smaller stand-in (dimensions divided) for adapters with small bindings, e.g. lavapipe
const div = Number(process.argv[4] ?? 1);
const ctx = await createGpuContext();
console.log('adapter', ctx.adapterName);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function time(label: string, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await f();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  const us = median(ts) * 1000;
  console.log(`  ${label.padEnd(44)} ${us.toFixed(1).padStart(8)} us`);
  return us;
}

for (const id of models) {
  const spec = div > 1 ? scaled(findModel(id), div) : findModel(id);
  const pool = new BufferPool(ctx);
  const { moe } = createMoELayer(ctx, spec, 'bf16', pool);
  await ctx.sync();
  for (const T of [1, 16]) {
    console.log(`${id} bf16 T=${T}`);
    const xs = new Float32Array(T * spec.H).map((_, i) => Math.sin(i) * 0.5);
    const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, spec.H], xs));
    await burnGpu(ctx, 300);
    await time('forward(Float32Array)', () => moe.forward(xs));
    await time('checked(write + forwardGpuSync + download)', () => ctx.checked('probe', async () => { ctx.writeBuffer(xg.buffer, 0, xs); const y = moe.forwardGpuSync(xg); const h = await y.download(); y.destroy(); return h; }));
    await time('forwardGpuSync + sync', async () => { const y = moe.forwardGpuSync(xg); await ctx.sync(); y.destroy(); });
    await time('writeBuffer + forwardGpuSync + sync', async () => { ctx.writeBuffer(xg.buffer, 0, xs); const y = moe.forwardGpuSync(xg); await ctx.sync(); y.destroy(); });
    await time('forwardGpuSync + download', async () => { const y = moe.forwardGpuSync(xg); await y.download(); y.destroy(); });
    await time('checked(empty)', () => ctx.checked('probe', async () => 1));
    await time('sync (idle queue)', () => ctx.sync());
    const st = ctx.device.createBuffer({ size: 4 * T * spec.H, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    await time('copy + submit + mapAsync (pooled staging)', async () => {
      const enc = ctx.device.createCommandEncoder();
      enc.copyBufferToBuffer(xg.buffer, 0, st, 0, st.size);
      ctx.submit([enc.finish()]);
      await st.mapAsync(GPUMapMode.READ);
      st.unmap();
    });
    await time('forwardGpuSync (issue only)', async () => { moe.forwardGpuSync(xg).destroy(); });
    await ctx.sync();
    st.destroy();
    xg.destroy();
  }
  moe.destroy();
  pool.destroy();
}
process.exit(0);
