// MoEStack (a decode step through several MoE layers, one submit) against the
// layers run one by one, and forwardGpuSync's caller-provided outputs.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor, ShapeError, DTypeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEStack } from '../src/index.js';
import { FIXTURES, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Layer i of a test stack: the qwen3_moe fixture with every weight scaled elementwise by 1 + 0.3 sin(j + 7i) (distinct layers). */
async function layer(c: GpuContext, i: number): Promise<MoE> {
  const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/qwen3_moe`, layer: 0, dtype: 'float32', device: DeviceRef.GPU(), ctx: c });
  if (i === 0) return moe;
  const sd: Record<string, HostTensor> = {};
  for (const [name, t] of moe.stateDict()) {
    const v = t.toFloat32().map((x, j) => x * (1 + 0.3 * Math.sin(j + 7 * i)));
    sd[name] = new HostTensor('float32', t.shape, v);
  }
  moe.loadStateDict(sd);
  return moe;
}

async function download(t: GpuTensor): Promise<Float32Array> {
  return (await t.download()).data as Float32Array;
}

describe('MoEStack', () => {
  it('equals the layers run one by one (graphs for T <= 64 and recorded for T > 64), and the host references', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const layers = [await layer(c, 0), await layer(c, 1), await layer(c, 2)];
    const stack = new MoEStack(layers);
    try {
      await gpuChecked(c, async () => {
        const H = stack.hiddenDim;
        const r = rng(5);
        for (const T of [1, 5, 70, 1]) {
          const x = randomArray(r, T * H);
          // one by one, on the GPU and through the host references
          let want = x;
          let wantHost = x;
          for (const m of layers) {
            want = (await m.forward(want)) as Float32Array;
            wantHost = m.forwardHost(wantHost, T);
          }
          const xg = GpuTensor.upload(c, new HostTensor('float32', [T, H], x));
          for (const useGraphs of [true, false]) {
            stack.useGraphs = useGraphs;
            const y = stack.forwardGpuSync(xg);
            expect(y.shape).toEqual([T, H]);
            const got = await download(y);
            y.destroy();
            expect(got, `T=${T} graphs=${useGraphs}`).toEqual(want);
            expect(relErr(got, wantHost), `T=${T} vs host`).toBeLessThan(1e-4);
          }
          stack.useGraphs = true;
          // host in/out and a caller-provided output
          expect(await stack.forward(x)).toEqual(want);
          const out = GpuTensor.empty(c, 'float32', [T, H]);
          expect(stack.forwardGpuSync(xg, { out })).toBe(out);
          expect(await download(out)).toEqual(want);
          out.destroy();
          xg.destroy();
        }
      });
    } finally {
      stack.destroy();
    }
    // the stack owned its layers
    expect(() => layers[0].gate.weight.gpuValue).toThrow();
  });

  it('rejects bad layers, inputs and outputs with typed errors', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    expect(() => new MoEStack([])).toThrow(ValueError);
    const a = await layer(c, 0);
    const other = new MoE({ devices: [DeviceRef.GPU()], ctx: c, hiddenDim: a.hiddenDim + 8, numExperts: 4, numExpertsPerToken: 2, moeDim: 8 });
    const cpu = new MoE({ hiddenDim: a.hiddenDim, numExperts: 4, numExpertsPerToken: 2, moeDim: 8 });
    expect(() => new MoEStack([a, other])).toThrow(ShapeError);
    expect(() => new MoEStack([a, cpu])).toThrow(ValueError);
    const stack = new MoEStack([a, a], { ownsLayers: false });
    const H = a.hiddenDim;
    const x = GpuTensor.upload(c, new HostTensor('float32', [2, H], new Float32Array(2 * H)));
    const xb = GpuTensor.empty(c, 'bfloat16', [2, H]);
    const wrong = GpuTensor.empty(c, 'float32', [3, H]);
    const wrongType = GpuTensor.empty(c, 'float16', [2, H]);
    try {
      expect(() => stack.forwardGpuSync(xb)).toThrow(DTypeError);
      expect(() => stack.forwardGpuSync(x, { out: wrong })).toThrow(ShapeError);
      expect(() => a.forwardGpuSync(x, { out: wrong })).toThrow(ShapeError);
      expect(() => a.forwardGpuSync(x, { out: wrongType })).toThrow(DTypeError);
      await expect(a.forwardGpu(x, { out: wrong })).rejects.toThrow(ShapeError);
    } finally {
      for (const g of [x, xb, wrong, wrongType]) g.destroy();
      stack.destroy();
      expect(a.gate.weight.gpuValue).toBeDefined(); // ownsLayers: false kept the layer
      a.destroy();
      other.destroy();
    }
  });

  it('MoE.forwardGpuSync: a chain that destroys consumed outputs reuses their buffers and gives the awaited forward\'s results', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const moe = await layer(c, 1);
    try {
      await gpuChecked(c, async () => {
        const H = moe.hiddenDim;
        const x0 = randomArray(rng(9), 3 * H);
        const xg = GpuTensor.upload(c, new HostTensor('float32', [3, H], x0));
        let want = x0;
        for (let i = 0; i < 4; i++) want = (await moe.forward(want)) as Float32Array;
        const buffers = new Set<GPUBuffer>();
        for (let rep = 0; rep < 3; rep++) {
          let cur = xg;
          for (let i = 0; i < 4; i++) {
            const y = moe.forwardGpuSync(cur);
            buffers.add(y.buffer);
            if (cur !== xg) cur.destroy();
            cur = y;
          }
          expect(await download(cur), `rep ${rep}`).toEqual(want);
          cur.destroy();
        }
        // 12 outputs from at most 2 buffers: the previous output is alive while the next one is written
        expect(buffers.size).toBeLessThanOrEqual(2);
        xg.destroy();
      });
    } finally {
      moe.destroy();
    }
  });
});
