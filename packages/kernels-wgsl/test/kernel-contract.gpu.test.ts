import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { defineKernel, uniformFields, GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, spyDevice } from '@webmoe/kernels-wgsl/testing';
import { BIND_GROUP_CACHE_MAX } from '../src/runtime/kernel.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** y = a * x + b over n values, with the bindings declared in the opposite order to the one the op lists them in. */
const axpb = defineKernel<{ bias: boolean }>(
  'test_axpb',
  (v) => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= u.n) { return; }
  Y[g.x] = u.a * X[g.x]${v.bias ? ' + B[g.x]' : ''};
}
`,
  {
    signature: (v) => ({
      bindings: [
        { name: 'Y', type: 'array<f32>', access: 'read_write' },
        ...(v.bias ? [{ name: 'B', type: 'array<f32>', access: 'read' } as const] : []),
        { name: 'X', type: 'array<f32>', access: 'read' },
      ],
      uniforms: [...uniformFields('u32', 'n'), { name: 'a', type: 'f32' }],
    }),
  },
);

describe('bind groups made once per pipeline and buffers (cachedBindGroup)', () => {
  it('a second recording on the same buffers creates no bind group and sees its own uniforms; new buffers get new ones', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    expect(BIND_GROUP_CACHE_MAX).toBeGreaterThanOrEqual(1024);
    const n = 70;
    const x = Float32Array.from({ length: n }, (_, i) => i - 20);
    const spy = spyDevice(c.device, 'createBindGroup');
    try {
      await gpuChecked(c, async () => {
        const gx = GpuTensor.upload(c, HostTensor.fromFloat32([n], x));
        const gy = GpuTensor.empty(c, 'float32', [n]);
        const run = async (a: number, y: GpuTensor) => {
          const rec = new Recorder(c);
          rec.dispatch({ kernel: axpb, variant: { bias: false }, bind: { X: gx.buffer, Y: y.buffer }, params: { a, n }, workgroups: [2] });
          rec.submit();
          return (await y.download()).data as Float32Array;
        };
        const first = await run(2, gy);
        const madeFirst = spy.calls;
        expect(madeFirst).toBeLessThanOrEqual(1);
        // the same buffers (and the uniform arena the first recorder gave back): no new bind group, the new uniform value
        const second = await run(-3, gy);
        expect(spy.calls).toBe(madeFirst);
        expect(Array.from(first)).toEqual(Array.from(x, (v) => 2 * v));
        expect(Array.from(second)).toEqual(Array.from(x, (v) => -3 * v));
        // another output buffer: a bind group of its own
        const gz = GpuTensor.empty(c, 'float32', [n]);
        expect(Array.from(await run(0.5, gz))).toEqual(Array.from(x, (v) => 0.5 * v));
        expect(spy.calls).toBe(madeFirst + 1);
        for (const g of [gx, gy, gz]) g.destroy();
      });
    } finally {
      spy.restore();
    }
  });
});

describe('kernels declared by signature (bindings and uniforms by name)', () => {
  it('binds buffers and writes uniforms by name, whatever the order they are given in', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(5);
    const n = 131;
    const x = randomArray(r, n, -3, 3);
    const b = randomArray(r, n, -1, 1);
    for (const bias of [false, true]) {
      const got = await gpuChecked(c, async () => {
        const gx = GpuTensor.upload(c, HostTensor.fromFloat32([n], x));
        const gb = GpuTensor.upload(c, HostTensor.fromFloat32([n], b));
        const gy = GpuTensor.empty(c, 'float32', [n]);
        const rec = new Recorder(c);
        rec.dispatch({ kernel: axpb, variant: { bias }, bind: bias ? { X: gx.buffer, B: gb.buffer, Y: gy.buffer } : { X: gx.buffer, Y: gy.buffer }, params: { a: -1.5, n }, workgroups: [Math.ceil(n / 64)] });
        rec.submit();
        const y = (await gy.download()).data as Float32Array;
        for (const g of [gx, gb, gy]) g.destroy();
        return y;
      });
      // a * x + b in f32: one rounding (fused multiply-add, as NVIDIA compiles it) or two
      got.forEach((g, i) => {
        const w = -1.5 * x[i] + (bias ? b[i] : 0);
        expect(Math.abs(g - w), `bias=${bias} [${i}]: ${g} vs ${w}`).toBeLessThanOrEqual(2 * 2 ** -23 * Math.max(Math.abs(w), Math.abs(1.5 * x[i])));
      });
    }
  });

  it('a missing or unknown binding or uniform, or positional buffers, is an error naming the kernel and the name', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const buf = () => c.device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
    const [x, y] = [buf(), buf()];
    const rec = new Recorder(c);
    const base = { kernel: axpb, variant: { bias: false }, workgroups: [1] as [number] };
    expect(() => rec.dispatch({ ...base, bind: { X: x }, params: { n: 1, a: 1 } })).toThrow(/test_axpb: binding Y not given/);
    expect(() => rec.dispatch({ ...base, bind: { X: x, Y: y, Z: x }, params: { n: 1, a: 1 } })).toThrow(/test_axpb: no binding named Z/);
    expect(() => rec.dispatch({ ...base, bind: { X: x, Y: y }, params: { n: 1 } })).toThrow(/test_axpb: uniform a not given/);
    expect(() => rec.dispatch({ ...base, bind: { X: x, Y: y }, params: { n: 1, a: 1, m: 2 } })).toThrow(/test_axpb: no uniform named m/);
    expect(() => rec.dispatch({ ...base, buffers: [y, x] })).toThrow(/test_axpb: a kernel with a signature is dispatched with bind \/ params/);
    rec.submit();
    x.destroy();
    y.destroy();
  });
});
