import { describe, it, expect, beforeAll } from 'vitest';
import { GpuTensor, readBuffer, STAGING_KEEP, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng, randomArray } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('readBuffer through reused staging buffers', () => {
  it('reads issued together (not awaited in between) each return their own bytes, across sizes and reuse', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(11);
    // sizes that share a 256-byte staging bucket (4 and 252 bytes), a size not a multiple of 256, and more reads in flight than STAGING_KEEP
    const sizes = [1, 63, 1000, 64, 1, 63, 1000, 4097, 1];
    expect(sizes.length).toBeGreaterThan(STAGING_KEEP);
    for (let round = 0; round < 3; round++) {
      const vals = sizes.map((n) => randomArray(r, n, -9, 9));
      const ts = vals.map((v) => {
        const g = GpuTensor.empty(c, 'float32', [v.length]);
        c.writeBuffer(g.buffer, 0, v);
        return g;
      });
      const reads = ts.map((g) => readBuffer(c, g.buffer, g.byteLength));
      const got = await Promise.all(reads);
      got.forEach((b, i) => {
        expect(b.byteLength, `read ${i} length`).toBe(4 * sizes[i]);
        expect(Array.from(new Float32Array(b.buffer, b.byteOffset, sizes[i])), `read ${i} of round ${round}`).toEqual(Array.from(vals[i]));
      });
      for (const g of ts) g.destroy();
    }
  });
});
