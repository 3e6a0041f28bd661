// writeBufferStaged: writes past half Dawn's 4 MiB upload ring go through staging buffers the context keeps mapped; the
// bytes land where queue.writeBuffer would put them, in queue order with the context's other work, the buffers are
// reused by later writes and no more than UPLOAD_STAGING_KEEP are kept.
import { describe, it, expect, beforeAll } from 'vitest';
import { createGpuContext, readBuffer, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng, spyDevice } from '@webmoe/kernels-wgsl/testing';
import { STAGED_WRITE_ABOVE_BYTES, UPLOAD_RING_BYTES, UPLOAD_STAGING_KEEP } from '../src/runtime/upload-staging.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const MiB = 1 << 20;

function randomBytes(seed: number, n: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function target(c: GpuContext, size: number): GPUBuffer {
  return c.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
}

/** Lets the staging buffers' maps resolve (they were asked for right after each copy). */
async function settle(c: GpuContext): Promise<void> {
  await c.sync();
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

describe('writeBufferStaged', () => {
  it('a write past the upload ring lands at its offset, the bytes around it untouched; a view into a larger array writes only its bytes', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const n = UPLOAD_RING_BYTES + 3 * 1028; // past the ring, not a whole MiB
    const buf = target(c, n + 512);
    try {
      const before = randomBytes(1, n + 512);
      c.writeBuffer(buf, 0, before);
      const big = randomBytes(2, n + 64);
      const bytes = big.subarray(32, 32 + n);
      c.writeBufferStaged(buf, 256, bytes);
      const got = await readBuffer(c, buf, n + 512);
      expect(Buffer.from(got.subarray(0, 256)).equals(Buffer.from(before.subarray(0, 256)))).toBe(true);
      expect(Buffer.from(got.subarray(256, 256 + n)).equals(Buffer.from(bytes))).toBe(true);
      expect(Buffer.from(got.subarray(256 + n)).equals(Buffer.from(before.subarray(256 + n)))).toBe(true);
      expect(c.stagingBytes().write, 'one staging buffer kept, rounded up to a MiB').toBe(Math.ceil(n / MiB) * MiB);
      expect(c.takeUncapturedErrors()).toEqual([]);
    } finally {
      buf.destroy();
    }
  });

  it('in queue order: deferred work issued before it reads the old bytes, writes issued together land in order', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const n = 5 * MiB;
    const buf = target(c, n);
    const snap = target(c, n);
    try {
      const a = randomBytes(3, n);
      const b = randomBytes(4, n);
      const d = randomBytes(5, n);
      c.writeBufferStaged(buf, 0, a);
      c.deferredEncoder().copyBufferToBuffer(buf, 0, snap, 0, n); // reads a: the staged write below must not pass it
      c.writeBufferStaged(buf, 0, b);
      c.writeBufferStaged(buf, 0, d); // three writes in one task: no staging buffer is free for the later ones
      expect(Buffer.from(await readBuffer(c, snap, n)).equals(Buffer.from(a))).toBe(true);
      expect(Buffer.from(await readBuffer(c, buf, n)).equals(Buffer.from(d))).toBe(true);
      await settle(c);
      expect(c.stagingBytes().write, `at most ${UPLOAD_STAGING_KEEP} staging buffers kept`).toBeLessThanOrEqual(UPLOAD_STAGING_KEEP * 5 * MiB);
      expect(c.takeUncapturedErrors()).toEqual([]);
    } finally {
      buf.destroy();
      snap.destroy();
    }
  });

  it('later writes of that size or smaller reuse the kept buffers (no buffer created); writes within the ring use none', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = await createGpuContext({ label: 'upload-staging' }); // a context of its own: nothing kept before
    try {
      const n = 6 * MiB;
      const buf = target(c, n);
      c.writeBufferStaged(buf, 0, new Uint8Array(STAGED_WRITE_ABOVE_BYTES).fill(7));
      expect(c.stagingBytes().write, 'a write of half the ring keeps no staging').toBe(0);
      const past = randomBytes(5, STAGED_WRITE_ABOVE_BYTES + 4);
      c.writeBufferStaged(buf, 0, past);
      expect(c.stagingBytes().write, 'a write past half the ring: one staging buffer').toBe(STAGED_WRITE_ABOVE_BYTES + MiB);
      expect(Buffer.from(await readBuffer(c, buf, past.length)).equals(Buffer.from(past))).toBe(true);
      c.writeBufferStaged(buf, 0, randomBytes(6, n));
      await settle(c);
      const sizes = [n, n - 4, 5 * MiB + 8, n];
      for (const size of new Set(sizes)) await readBuffer(c, buf, size); // the read backs' staging made before counting
      const spy = spyDevice(c.device, 'createBuffer');
      try {
        for (const [i, size] of sizes.entries()) {
          const bytes = randomBytes(10 + i, size);
          c.writeBufferStaged(buf, 0, bytes);
          expect(Buffer.from(await readBuffer(c, buf, size)).equals(Buffer.from(bytes)), `write ${i} of ${size} bytes`).toBe(true);
          await settle(c);
        }
        expect(spy.calls, 'buffers created by writes the kept staging holds').toBe(0);
      } finally {
        spy.restore();
      }
      expect(c.stagingBytes().write, 'the 6 MiB buffer and the first 3 MiB one').toBe(n + STAGED_WRITE_ABOVE_BYTES + MiB);
      buf.destroy();
      expect(c.takeUncapturedErrors()).toEqual([]);
    } finally {
      c.destroy();
    }
  });

  it('a context destroyed with staging being mapped again: no error, no hang', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = await createGpuContext({ label: 'upload-staging-destroy' });
    const buf = target(c, 5 * MiB);
    c.writeBufferStaged(buf, 0, randomBytes(20, 5 * MiB));
    c.destroy();
    await new Promise((r) => setTimeout(r, 10));
    expect(() => c.writeBufferStaged(buf, 0, new Uint8Array(5 * MiB))).toThrow(/destroyed|lost/i);
  });
});
