// Prefill forwards take their outputs from a pool, replayed graphs (useGraphs, the default: ForwardGraphs' output
// pool) and recorded forwards (useGraphs false: the layer's output pool, outputPool, the context's shared scratch
// cache) alike: a chain that destroys each output once consumed creates no buffer per forward, the outputs are the
// first forward's bit for bit, outputs held at once are distinct buffers, and an output still held when its layer is
// destroyed stays valid. Two layers' prefill graphs share their scratch (GraphScratch) and give the recorded
// forward's bits.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GRAPH_CAPTURE_AT, GpuTensor, graphScratchBytes, trimGraphScratch, useStackGraph, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, spyDevice } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEStack } from '../src/index.js';
import { FIXTURES } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Runs `fn` counting the device's createBuffer calls. */
async function countCreateBuffer<R>(c: GpuContext, fn: () => Promise<R>): Promise<{ result: R; created: number }> {
  const spy = spyDevice(c.device, 'createBuffer');
  try {
    return { result: await fn(), created: spy.calls };
  } finally {
    spy.restore();
  }
}

describe('prefill outputs from the output pool', () => {
  it.each([true, false])('qwen3_moe T = 101, useGraphs %s: a chain of forwards creates no buffer once warm, the same bits each time; held outputs are distinct and outlive the layer', async (useGraphs, t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const T = 101;
    expect(useStackGraph(T), 'T past the whole-stack graph limit').toBe(false);
    const load = async () => {
      const m = await MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c });
      m.useGraphs = useGraphs;
      return m;
    };
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
        // a stack of layers past the whole-stack graph limit (each layer's graph, or one recorder): outputs pooled too
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

  it('two qwen3_moe layers\' prefill graphs share one forward\'s scratch and give the recorded forward\'s bits, interleaved; freed with the layers', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const T = 101;
    trimGraphScratch(c);
    const base = graphScratchBytes(c).bound;
    // the fixture's one layer in bf16 and in f16: other weights (and kernels), the same shapes
    const [a, b] = await Promise.all((['bfloat16', 'float16'] as const).map((dtype) => MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype, device: DeviceRef.GPU(), ctx: c })));
    const H = a.hiddenDim;
    const xs = [11, 12, 13].map((seed) => GpuTensor.upload(c, new HostTensor('float32', [T, H], randomArray(rng(seed), T * H, -1, 1))));
    const bits = async (y: GpuTensor) => {
      const v = Buffer.from(((await y.download()).data as Float32Array).buffer);
      y.destroy();
      return v;
    };
    try {
      await gpuChecked(c, async () => {
        // the recorded forwards (no graph) first
        for (const m of [a, b]) m.useGraphs = false;
        const want = await Promise.all(xs.map(async (x) => [await bits(a.forwardGpuSync(x)), await bits(b.forwardGpuSync(x)), await bits(b.forwardGpuSync(a.forwardGpuSync(x)))]));
        for (const m of [a, b]) m.useGraphs = true;
        // a token count's first call is recorded afresh (GRAPH_CAPTURE_AT), its second captures
        for (let i = 0; i < GRAPH_CAPTURE_AT - 1; i++) a.forwardGpuSync(xs[0]).destroy();
        expect(graphScratchBytes(c).bound, 'no capture before GRAPH_CAPTURE_AT').toBe(base);
        a.forwardGpuSync(xs[0]).destroy();
        const afterA = graphScratchBytes(c).bound;
        expect(afterA, 'the capture takes scratch from the arena').toBeGreaterThan(base);
        for (let i = 0; i < GRAPH_CAPTURE_AT; i++) b.forwardGpuSync(xs[0]).destroy();
        expect(graphScratchBytes(c).bound, 'the second layer\'s graph binds the first one\'s scratch').toBe(afterA);
        // interleaved replays, all issued before any is read: each layer's output is its recorded forward's
        const got = xs.map((x) => {
          const ya = a.forwardGpuSync(x);
          const yb = b.forwardGpuSync(x);
          const ya2 = a.forwardGpuSync(x);
          return { ya, yb, ya2, yab: b.forwardGpuSync(ya2) };
        });
        for (let i = 0; i < xs.length; i++) {
          const { ya, yb, ya2, yab } = got[i];
          const [ga, gb, gab] = [await bits(ya), await bits(yb), await bits(yab)];
          ya2.destroy();
          expect(ga.equals(want[i][0]), `x${i}: layer 0`).toBe(true);
          expect(gb.equals(want[i][1]), `x${i}: layer 1`).toBe(true);
          expect(gab.equals(want[i][2]), `x${i}: layer 1 after layer 0`).toBe(true);
        }
      });
    } finally {
      for (const x of xs) x.destroy();
      a.destroy();
      b.destroy();
    }
    expect(graphScratchBytes(c).bound, 'the layers\' graphs freed with them').toBe(base);
  }, 300_000);
  it.each([true, false])('a warm chain through four qwen3_moe layers (useGraphs %s) cycles its outputs through two buffers: given back to the shared cache, not kept per layer', async (useGraphs, t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const T = 101;
    const layers = await Promise.all([0, 1, 2, 3].map(() => MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c })));
    for (const m of layers) m.useGraphs = useGraphs;
    const x = GpuTensor.upload(c, new HostTensor('float32', [T, layers[0].hiddenDim], randomArray(rng(3), T * layers[0].hiddenDim, -1, 1)));
    try {
      await gpuChecked(c, async () => {
        const chain = () => {
          const used = new Set<GPUBuffer>();
          let cur = x;
          for (const m of layers) {
            const y = m.forwardGpuSync(cur);
            used.add(y.buffer);
            if (cur !== x) cur.destroy();
            cur = y;
          }
          cur.destroy();
          return used.size;
        };
        chain();
        chain();
        await c.sync();
        expect(chain(), 'distinct output buffers in a warm chain of four layers').toBe(2);
      });
    } finally {
      x.destroy();
      for (const m of layers) m.destroy();
    }
  }, 300_000);
});
