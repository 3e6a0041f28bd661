// Prefill forwards (past the graph limit: useGraphReplay, KERNEL_CROSSOVERS.graphMaxTokens) take their outputs from the layer's output
// pool (layerOutputPool: the context's shared scratch cache): a chain that destroys each output once consumed creates
// no buffer per forward, the outputs are the uncached forward's bit for bit, outputs held at once are distinct
// buffers, and an output still held when its layer is destroyed stays valid.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GpuTensor, useGraphReplay, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEStack } from '../src/index.js';
import { FIXTURES } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Runs `fn` counting the device's createBuffer calls. */
async function countCreateBuffer<R>(c: GpuContext, fn: () => Promise<R>): Promise<{ result: R; created: number }> {
  const device = c.device;
  const original = device.createBuffer;
  let created = 0;
  device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor) {
    created++;
    return original.call(this, desc);
  } as typeof device.createBuffer;
  try {
    return { result: await fn(), created };
  } finally {
    device.createBuffer = original;
  }
}

describe('prefill outputs from the output pool', () => {
  it('qwen3_moe T past the graph limit: a chain of forwards creates no buffer once warm, the same bits each time; held outputs are distinct and outlive the layer', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const T = 101;
    expect(useGraphReplay(T), 'T past the graph limit').toBe(false);
    const load = () => MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c });
    const moe = await load();
    const second = await load();
    const H = moe.hiddenDim;
    const x = GpuTensor.upload(c, new HostTensor('float32', [T, H], randomArray(rng(7), T * H, -1, 1)));
    try {
      await gpuChecked(c, async () => {
        const want = (await (await moe.forward(x)).download()).data as Float32Array;
        // a chain of two layers, each output destroyed once the next has consumed it, as a caller's prefill loop does
        const chain = async () => {
          let cur = x;
          for (let i = 0; i < 4; i++) {
            const y = (i % 2 === 0 ? moe : second).forwardGpuSync(cur);
            if (cur !== x) cur.destroy();
            cur = y;
          }
          await c.sync();
          cur.destroy();
        };
        await chain();
        await chain();
        const { created } = await countCreateBuffer(c, async () => {
          for (let i = 0; i < 3; i++) await chain();
        });
        expect(created, 'buffers created by three warm chains of four forwards').toBe(0);
        // the same bits from the pooled outputs
        const a = moe.forwardGpuSync(x);
        const b = moe.forwardGpuSync(x);
        expect(a.buffer, 'two outputs held at once').not.toBe(b.buffer);
        const [ya, yb] = [(await a.download()).data as Float32Array, (await b.download()).data as Float32Array];
        expect(Buffer.from(ya.buffer).equals(Buffer.from(want.buffer)), 'pooled output equals the first forward').toBe(true);
        expect(Buffer.from(yb.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        b.destroy();
        // the layer destroyed while the caller holds `a`: it stays readable, and its destroy() frees it
        moe.destroy();
        expect(Buffer.from(((await a.download()).data as Float32Array).buffer).equals(Buffer.from(want.buffer)), 'an output held past its layer').toBe(true);
        a.destroy();
        expect(a.destroyed).toBe(true);
        // a stack of layers (one recorder, one submit) past the graph limit: outputs pooled too
        const stack = new MoEStack([second, second], { ownsLayers: false });
        try {
          for (let i = 0; i < 2; i++) stack.forwardGpuSync(x).destroy();
          await c.sync();
          const { created: inStack } = await countCreateBuffer(c, async () => {
            for (let i = 0; i < 3; i++) stack.forwardGpuSync(x).destroy();
            await c.sync();
          });
          expect(inStack, 'buffers created by three warm stack forwards').toBe(0);
        } finally {
          stack.destroy();
        }
      });
    } finally {
      x.destroy();
      moe.destroy();
      second.destroy();
    }
  }, 300_000);
});
