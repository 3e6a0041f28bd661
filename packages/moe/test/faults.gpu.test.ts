// Faults on the GPU: a lost device, device limits checked before dispatch, GPU validation errors.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { createGpuContext, DeviceLostError, GpuTensor, GpuValidationError, LimitError, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, withMaxBindingBytes } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { CASES, buildCase, type RandomCase } from './random-cases.js';

let shared: GpuContext | null;
beforeAll(async () => {
  shared = await testGpu();
});

/** The same device seen through a context whose limits are reported smaller (nothing else changes). */
function withLimits(ctx: GpuContext, small: Record<string, number>): GpuContext {
  const limits = new Proxy(ctx.limits, {
    get: (t, p) => (typeof p === 'string' && p in small ? small[p] : (t as unknown as Record<string | symbol, unknown>)[p]),
  });
  return Object.create(ctx, { limits: { value: limits } }) as GpuContext;
}

const c: RandomCase = CASES[2]; // DeepSeek-like: grouped sigmoid router, shared expert, bf16
function build(ctx: GpuContext, sd: Map<string, import('@webmoe/tensor').HostTensor>): MoE {
  const moe = new MoE({ ...c.opts, dtype: c.dtype, devices: [DeviceRef.GPU()], ctx });
  moe.loadStateDict(sd);
  return moe;
}

describe('device loss', () => {
  it('a device destroyed between forwards gives DeviceLostError; the layer rebuilt on a new device gives the same output', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 5, 6);
    const ctx1 = await createGpuContext({ label: 'faults-1' });
    const moe1 = build(ctx1, sd);
    const before = await moe1.forward(x);
    ctx1.device.destroy(); // as a driver reset would: not through GpuContext.destroy()
    const e = await moe1.forward(x).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(DeviceLostError);
    expect((e as DeviceLostError).code).toBe('DEVICE_LOST');
    expect(ctx1.isLost).toBe(true);
    // Every later use says the same, including recording and the GpuTensor path.
    await expect(moe1.forward(x)).rejects.toThrow(DeviceLostError);
    expect(() => new Recorder(ctx1)).toThrow(DeviceLostError);
    moe1.destroy(); // destroying on a lost device does not throw
    // Rebuild from the same state dict on a fresh device.
    const ctx2 = await createGpuContext({ label: 'faults-2' });
    try {
      const moe2 = build(ctx2, sd);
      const after = await moe2.forward(x);
      expect(after).toEqual(before); // bit-identical: same adapter, same kernels
      moe2.destroy();
    } finally {
      ctx2.destroy();
    }
  });

  it('a device destroyed while a forward is in flight rejects that forward with DeviceLostError', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 6, 40);
    const ctx = await createGpuContext({ label: 'faults-3' });
    const moe = build(ctx, sd);
    await moe.forward(x); // pipelines compiled
    const inFlight = moe.forward(x);
    ctx.device.destroy();
    await expect(inFlight).rejects.toThrow(DeviceLostError);
    // GpuContext.destroy() is a loss too, reported as such.
    const ctx2 = await createGpuContext({ label: 'faults-4' });
    const moe2 = build(ctx2, sd);
    const xg = GpuTensor.upload(ctx2, new (await import('@webmoe/tensor')).HostTensor('float32', [40, c.cfg.H], x));
    ctx2.destroy();
    await expect(moe2.forwardGpu(xg)).rejects.toThrow(/device lost \(destroyed\)/);
  });
});

describe('device limits are checked before anything is allocated or recorded', () => {
  it('expert weights larger than maxStorageBufferBindingSize are split over buffers (same output); one output unit over it is a LimitError naming the limit and the parameter', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 7, 1);
    const E = c.cfg.E;
    const H = c.cfg.H;
    const I = c.cfg.I;
    const gateUpBytes = E * 2 * I * H * 2; // bf16
    const whole = build(shared!, sd);
    const small = withLimits(shared!, { maxStorageBufferBindingSize: gateUpBytes - 4 });
    expect(small.maxBindingBytes).toBe(gateUpBytes - 4);
    const split = build(small, sd);
    try {
      expect(split.stacked.gpuWeights().gateUp.kind).toBe('chunked');
      expect(await split.forward(x)).toEqual(await whole.forward(x));
    } finally {
      split.destroy();
      whole.destroy();
    }
    // one output of gate_up (its gate and up rows, H bf16 each) does not fit a binding of expert weights
    const unit = 2 * H * 2;
    const tiny = withMaxBindingBytes(shared!, unit - 4);
    const moe = new MoE({ ...c.opts, dtype: c.dtype, devices: [DeviceRef.GPU()], ctx: tiny });
    const e = (() => {
      try {
        moe.loadStateDict(sd);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(LimitError);
    expect((e as LimitError).code).toBe('LIMIT_EXCEEDED');
    expect((e as Error).message).toMatch(/gate_up_proj/);
    expect((e as Error).message).toMatch(new RegExp(`maxBindingBytes exceeded: requested ${unit}, the device allows ${unit - 4}`));
    moe.destroy();
  });

  it('a batch whose scratch exceeds maxStorageBufferBindingSize or maxBufferSize: LimitError before any buffer or submit', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 8, 4);
    const H = c.cfg.H;
    const k = c.cfg.k;
    // Weights fit (the largest is gate_up, E*2I*H bf16 = 8*32*32*2 bytes); T=64 tokens' expert outputs [T*k, H] f32 do not.
    const limit = 16384;
    expect(c.cfg.E * 2 * c.cfg.I * H * 2).toBeLessThanOrEqual(limit);
    for (const name of ['maxStorageBufferBindingSize', 'maxBufferSize']) {
      const small = withLimits(shared!, { [name]: limit });
      const moe = build(small, sd);
      try {
        expect((await moe.forward(x)).length).toBe(4 * H); // small batches run
        const T = 64;
        const big = new Float32Array(T * H).fill(0.25);
        const q = shared!.device.queue;
        const submit = q.submit.bind(q);
        let submits = 0;
        q.submit = (cbs: Iterable<GPUCommandBuffer>) => {
          submits++;
          return submit(cbs);
        };
        const live = moe.scratchPool!.liveCount;
        let e: unknown;
        try {
          await moe.forward(big);
        } catch (err) {
          e = err;
        } finally {
          q.submit = submit;
        }
        expect(e).toBeInstanceOf(LimitError);
        expect((e as Error).message).toContain(`${name} exceeded: requested ${T * k * H * 4}, the device allows ${limit}`);
        expect((e as Error).message).toContain(`expert outputs [${T * k}, ${H}]`);
        expect(submits).toBe(0);
        expect(moe.scratchPool!.liveCount).toBe(live);
        // The GpuTensor path checks the same before recording.
        const xg = GpuTensor.empty(shared!, 'float32', [T, H]);
        const gsmall = Object.create(xg, { ctx: { value: small } }) as GpuTensor;
        await expect(moe.forwardGpu(gsmall)).rejects.toThrow(LimitError);
        xg.destroy();
      } finally {
        moe.destroy();
      }
    }
  });

  it('a grid beyond maxComputeWorkgroupsPerDimension^2: LimitError naming the limit, scratch returned', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 9, 40);
    const small = withLimits(shared!, { maxComputeWorkgroupsPerDimension: 3 });
    const moe = build(small, sd);
    try {
      await expect(moe.forward(x)).rejects.toThrow(/maxComputeWorkgroupsPerDimension/);
      await expect(moe.forward(x)).rejects.toThrow(LimitError);
      expect(moe.scratchPool?.liveCount ?? 0).toBe(0);
    } finally {
      moe.destroy();
    }
  });
});

describe('GPU validation errors never pass silently', () => {
  it('an invalid buffer inside ctx.checked is a GpuValidationError naming the place', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const ctx = shared!;
    const e = await ctx
      .checked('bad buffer', () => {
        ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE }).destroy();
      })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(GpuValidationError);
    expect((e as GpuValidationError).code).toBe('GPU_VALIDATION');
    expect((e as Error).message).toMatch(/^bad buffer: GPU validation error: /);
    expect(ctx.takeUncapturedErrors()).toEqual([]);
  });

  it('a forward over a destroyed weight buffer is a GpuValidationError from MoE.forward, not a silent wrong answer', async (t) => {
    if (!shared) return t.skip('no WebGPU adapter');
    const { sd, x } = buildCase(c, 10, 3);
    const moe = build(shared!, sd);
    try {
      await moe.forward(x);
      moe.downProj.gpuValue.buffer.destroy(); // used after free, as a bug in a caller would
      await expect(moe.forward(x)).rejects.toThrow(GpuValidationError);
      await expect(moe.forward(x)).rejects.toThrow(/MoE.forward: GPU validation error/);
      expect(shared!.takeUncapturedErrors()).toEqual([]);
    } finally {
      moe.destroy();
    }
  });
});
