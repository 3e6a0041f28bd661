// `forward(x, { out })` with host data: the caller's Float32Array receives the output (MoE, MoEStack, GPU and CPU
// layers), the same bits as a forward into a new array, the input array itself allowed as out; a wrong out is a
// typed error before anything runs, and a forward that fails leaves out as it was.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, GpuValidationError, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, spyDevice } from '@webmoe/kernels-wgsl/testing';
import { MoE, MoEStack } from '../src/index.js';
import { CASES, buildCase, type RandomCase } from './random-cases.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const c: RandomCase = CASES[2]; // DeepSeek-like: grouped sigmoid router, shared expert, bf16

function build(device: DeviceRef, sd: Map<string, HostTensor>, gpu?: GpuContext): MoE {
  const moe = new MoE({ ...c.opts, dtype: c.dtype, devices: [device], ctx: gpu });
  moe.loadStateDict(sd);
  return moe;
}

/** A Float32Array of n values, every one NaN with a payload no forward writes (to see what was written). */
function sentinel(n: number): Float32Array {
  const a = new Float32Array(n);
  new Uint32Array(a.buffer).fill(0x7fc0beef);
  return a;
}

function untouched(a: Float32Array): boolean {
  return new Uint32Array(a.buffer, a.byteOffset, a.length).every((w) => w === 0x7fc0beef);
}

describe('host forwards into the caller’s array', () => {
  it.each([1, 37])('MoE on the GPU, T = %i: out written and returned, the bits of a new array; in place; HostTensor input over out', async (T, t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 11, T);
    const moe = build(DeviceRef.GPU(), sd, ctx);
    try {
      const want = await moe.forward(x);
      const out = sentinel(x.length);
      const y = await moe.forward(x, { out });
      expect(y).toBe(out);
      expect(new Uint32Array(out.buffer)).toEqual(new Uint32Array(want.buffer, want.byteOffset, want.length));
      // the same array again (a warm loop's call) and the input array itself as out
      out.fill(0);
      expect(await moe.forward(x, { out })).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(want));
      const inPlace = x.slice();
      expect(await moe.forward(inPlace, { out: inPlace })).toBe(inPlace);
      expect(Array.from(inPlace)).toEqual(Array.from(want));
      // a HostTensor input gives a HostTensor over out
      const out2 = sentinel(x.length);
      const yt = await moe.forward(new HostTensor('float32', [T, moe.hiddenDim], x), { out: out2 });
      expect(yt).toBeInstanceOf(HostTensor);
      expect(yt.data).toBe(out2);
      expect(Array.from(out2)).toEqual(Array.from(want));
      expect(ctx.takeUncapturedErrors()).toEqual([]);
    } finally {
      moe.destroy();
    }
  });

  it('a view into a larger array: only its T*H values are written', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const T = 5;
    const { sd, x } = buildCase(c, 12, T);
    const moe = build(DeviceRef.GPU(), sd, ctx);
    try {
      const want = await moe.forward(x);
      const big = sentinel(x.length + 16);
      const view = big.subarray(8, 8 + x.length);
      await moe.forward(x, { out: view });
      expect(Array.from(view)).toEqual(Array.from(want));
      expect(untouched(big.subarray(0, 8)) && untouched(big.subarray(8 + x.length))).toBe(true);
    } finally {
      moe.destroy();
    }
  });

  it('MoEStack on the GPU and on the CPU: out written, the bits of a new array', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const T = 9;
    const { sd, x } = buildCase(c, 13, T);
    for (const device of [DeviceRef.GPU(), DeviceRef.CPU()]) {
      const gpu = device.isGpu() ? ctx : undefined;
      const stack = new MoEStack([build(device, sd, gpu), build(device, sd, gpu)], { ownsLayers: true });
      try {
        const want = await stack.forward(x);
        const out = sentinel(x.length);
        expect(await stack.forward(x, { out })).toBe(out);
        expect(Array.from(out), String(device)).toEqual(Array.from(want));
      } finally {
        stack.destroy();
      }
    }
  });

  it('MoE on the CPU: out written, the bits of a new array', async () => {
    const T = 6;
    const { sd, x } = buildCase(c, 14, T);
    const moe = build(DeviceRef.CPU(), sd);
    try {
      const want = await moe.forward(x);
      const out = sentinel(x.length);
      expect(await moe.forward(x, { out })).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(want));
    } finally {
      moe.destroy();
    }
  });

  it('a wrong out is a typed error before anything is submitted; a GpuTensor input takes none', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const T = 4;
    const { sd, x } = buildCase(c, 15, T);
    const moe = build(DeviceRef.GPU(), sd, ctx);
    const stack = new MoEStack([moe]);
    try {
      await moe.forward(x); // warm: what follows would reuse everything
      const spy = spyDevice(ctx.device, 'createCommandEncoder');
      try {
        const short = sentinel(x.length - 1);
        await expect(moe.forward(x, { out: short })).rejects.toThrow(ShapeError);
        await expect(moe.forward(x, { out: short })).rejects.toThrow(`MoE.forward options.out: expected shape ${x.length} values (T ${T} x H ${moe.hiddenDim}), got ${x.length - 1} values`);
        await expect(stack.forward(x, { out: sentinel(x.length + 1) })).rejects.toThrow(/^MoEStack.forward options.out: expected shape/);
        await expect(moe.forward(x, { out: new Float64Array(x.length) as unknown as Float32Array })).rejects.toThrow(ValueError);
        await expect(moe.forward(x, { out: new Float64Array(x.length) as unknown as Float32Array })).rejects.toThrow(/got Float64Array/);
        expect(untouched(short)).toBe(true);
        expect(spy.calls, 'command encoders created by the failing calls').toBe(0);
      } finally {
        spy.restore();
      }
      const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, moe.hiddenDim], x));
      try {
        await expect(moe.forward(xg, { out: sentinel(x.length) })).rejects.toThrow(/^MoE.forward options.out: expected undefined for a GpuTensor input/);
        await expect(stack.forward(xg, { out: sentinel(x.length) })).rejects.toThrow(/^MoEStack.forward options.out: expected undefined for a GpuTensor input/);
      } finally {
        xg.destroy();
      }
    } finally {
      moe.destroy();
    }
  });

  it('a forward that fails on the GPU leaves out as it was', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 16, 3);
    const moe = build(DeviceRef.GPU(), sd, ctx);
    try {
      await moe.forward(x);
      moe.downProj.gpuValue.buffer.destroy(); // used after free, as a bug in a caller would
      const out = sentinel(x.length);
      await expect(moe.forward(x, { out })).rejects.toThrow(GpuValidationError);
      expect(untouched(out)).toBe(true);
      expect(ctx.takeUncapturedErrors()).toEqual([]);
    } finally {
      moe.destroy();
    }
  });
});
