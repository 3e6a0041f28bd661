// GpuContext.reclaimMemory: Dawn frees a destroyed buffer's memory once a submit issued after the destroy completes,
// so reclaimMemory must submit work of its own after the context's deferred work and wait for it; the memory effect
// itself is checked on a GPU filled to its memory (the bench's 48-layer chains on an 80 GB H100, docs/PERFORMANCE.md).
import { describe, it, expect, beforeAll } from 'vitest';
import { readBuffer, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('GpuContext.reclaimMemory', () => {
  it('submits after the deferred work and the destroys before it, then waits for that submit; the context stays usable', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const q = c.device.queue;
    const events: string[] = [];
    const submit = q.submit;
    const done = q.onSubmittedWorkDone;
    q.submit = (cbs: Iterable<GPUCommandBuffer>) => {
      events.push(`submit ${[...cbs].map((b) => b.label).join(',')}`);
      return submit.call(q, cbs);
    };
    q.onSubmittedWorkDone = () => {
      events.push('wait');
      return done.call(q);
    };
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const src = c.device.createBuffer({ size: 16, usage });
    const dst = c.device.createBuffer({ size: 16, usage });
    try {
      c.writeBuffer(src, 0, new Uint32Array([7, 8, 9, 10]));
      // deferred work (as a deferred graph replay appends it): reclaimMemory submits it first
      c.deferredEncoder().copyBufferToBuffer(src, 0, dst, 0, 16);
      const doomed = c.device.createBuffer({ size: 1 << 20, usage });
      doomed.destroy();
      await c.reclaimMemory();
      expect(events.length).toBe(3);
      expect(events[0]).toMatch(/^submit (?!reclaim)/); // the deferred copy
      expect(events.slice(1)).toEqual(['submit reclaim', 'wait']);
      // twice: the marker buffer is made once and cleared again
      events.length = 0;
      await c.reclaimMemory();
      expect(events).toEqual(['submit reclaim', 'wait']);
    } finally {
      q.submit = submit;
      q.onSubmittedWorkDone = done;
    }
    const back = await readBuffer(c, dst, 16);
    expect([...new Uint32Array(back.buffer, back.byteOffset, 4)]).toEqual([7, 8, 9, 10]);
    src.destroy();
    dst.destroy();
  });
});
