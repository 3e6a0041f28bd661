/**
 * BufferPool and the context's shared scratch cache (sharedScratch): a pool made with `shared: true` hands what it
 * does not keep to the shared cache and takes sizes it has no free buffer of from there, so that the next forward of
 * any layer reuses a prefill forward's large activations; the shared cache's cap follows the largest scratch one pool
 * held at once; a plain pool keeps its fixed cap. Recorder temps with `reuse` come from the shared cache (not when
 * capturing a graph) and go back after submit or discard; plain temps are fresh and zero-filled.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { BufferPool, GpuTensor, Recorder, sharedScratch, SHARED_SCRATCH_FLOOR_BYTES, readBuffer, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const MiB = 1 << 20;

describe('scratch pools', () => {
  it('a plain pool keeps its cap: a buffer over it is destroyed on release, not cached', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    await gpuChecked(ctx, () => {
      const pool = new BufferPool(ctx!, { maxFreeBytes: 64 * 1024 });
      const b = pool.acquire(MiB);
      pool.release(b);
      expect(pool.maxFreeBytes).toBe(64 * 1024);
      expect(pool.freeByteCount).toBe(0);
      expect(pool.acquire(MiB)).not.toBe(b);
      pool.destroy();
    });
  });

  it('shared pools spill to the context cache and draw on it; its cap follows the largest scratch held at once', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    await gpuChecked(ctx, () => {
      const cache = sharedScratch(ctx!);
      expect(sharedScratch(ctx!)).toBe(cache);
      expect(cache.maxFreeBytes).toBeGreaterThanOrEqual(SHARED_SCRATCH_FLOOR_BYTES);
      cache.trim();
      const a = new BufferPool(ctx!, { maxFreeBytes: 64 * 1024, shared: true });
      const b = new BufferPool(ctx!, { maxFreeBytes: 64 * 1024, shared: true });
      // a forward's worth of scratch over the floor: 80 MiB live at once in pool a
      const bufs = [40, 24, 16].map((m) => a.acquire(m * MiB));
      const live = a.liveByteCount;
      expect(live).toBeGreaterThanOrEqual(80 * MiB);
      expect(cache.maxFreeBytes).toBeGreaterThanOrEqual(live);
      for (const x of bufs) a.release(x);
      // a keeps at most its own cap; the rest is in the shared cache, not destroyed
      expect(a.freeByteCount).toBeLessThanOrEqual(64 * 1024);
      expect(cache.freeByteCount).toBeGreaterThanOrEqual(live);
      // pool b (another layer) gets the very same buffers back
      const again = [40, 24, 16].map((m) => b.acquire(m * MiB));
      expect(new Set(again)).toEqual(new Set(bufs));
      expect(cache.freeByteCount).toBe(0);
      for (const x of again) b.release(x);
      // never more cached than the cap
      expect(cache.freeByteCount).toBeLessThanOrEqual(cache.maxFreeBytes);
      a.destroy();
      b.destroy();
      cache.trim();
      expect(cache.freeByteCount).toBe(0);
    });
  });

  it('recorder temps with reuse come from the shared cache and go back after submit; plain temps are fresh and zero-filled', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    await gpuChecked(c, async () => {
      const cache = sharedScratch(c);
      cache.trim();
      const liveBefore = cache.liveCount;
      const r1 = new Recorder(c);
      const t1 = r1.temp(2 * MiB + 4, 'reused', { reuse: true });
      expect(t1.size).toBeGreaterThanOrEqual(2 * MiB + 4);
      expect(cache.liveCount).toBe(liveBefore + 1);
      // write something into it, so that a stale buffer would show below
      const src = GpuTensor.upload(c, new HostTensor('uint32', [4], new Uint32Array([7, 7, 7, 7])));
      r1.copy(src.buffer, 0, t1, 0, 16);
      r1.submit();
      expect(cache.liveCount).toBe(liveBefore);
      const r2 = new Recorder(c);
      expect(r2.temp(2 * MiB + 4, 'reused again', { reuse: true })).toBe(t1);
      const plain = r2.temp(2 * MiB + 4, 'plain');
      expect(plain).not.toBe(t1);
      // the reused temp still holds what r1 wrote (undefined contents); the plain one is zero-filled
      const seen = GpuTensor.empty(c, 'uint32', [8]);
      r2.copy(t1, 0, seen.buffer, 0, 16);
      r2.copy(plain, 0, seen.buffer, 16, 16);
      r2.submit();
      expect(Array.from(new Uint32Array((await readBuffer(c, seen.buffer, 32)).slice().buffer))).toEqual([7, 7, 7, 7, 0, 0, 0, 0]);
      seen.destroy();
      // a capturing recorder's temps belong to its graph: never from the cache
      const r3 = new Recorder(c, { capture: true });
      expect(r3.temp(2 * MiB + 4, 'captured', { reuse: true })).not.toBe(t1);
      r3.submit();
      r3.toGraph().destroy();
      // a discarded recording gives its reused temps back
      const r4 = new Recorder(c);
      expect(r4.temp(2 * MiB + 4, 'dropped', { reuse: true })).toBe(t1);
      expect(cache.liveCount).toBe(liveBefore + 1);
      r4.discard();
      expect(cache.liveCount).toBe(liveBefore);
      src.destroy();
    });
  });
});
