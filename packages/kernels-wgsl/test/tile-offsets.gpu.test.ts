// The grouped GEMMs' tile offsets (tileOffsetsKernel: a workgroup scan over the experts' tile counts) against a plain
// loop: expert ranges of one, part of one and several scan steps (256 experts each), chunks that start past expert 0,
// tile heights of the fast and matrix kernels, empty experts and experts of many tiles.
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng } from '@webmoe/kernels-wgsl/testing';
import { tileOffsetsKernel } from '../src/kernels/grouped-gemm-wgsl.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** META of experts e0..e0+E-1 as the kernel's contract states it, by one loop. */
function tileOffsetsRef(off: Uint32Array, e0: number, E: number, tm: number): Uint32Array {
  const meta = new Uint32Array(2 * E + 2);
  let acc = 0;
  for (let e = 0; e < E; e++) {
    meta[e] = off[e0 + e];
    meta[E + 1 + e] = acc;
    acc += Math.ceil((off[e0 + e + 1] - off[e0 + e]) / tm);
  }
  meta[E] = off[e0 + E];
  meta[2 * E + 1] = acc;
  return meta;
}

describe('tileOffsetsKernel', () => {
  const cases: { experts: number; e0: number; E: number; tm: number }[] = [
    { experts: 1, e0: 0, E: 1, tm: 64 },
    { experts: 8, e0: 0, E: 8, tm: 144 },
    { experts: 128, e0: 0, E: 128, tm: 32 },
    { experts: 300, e0: 45, E: 255, tm: 128 },
    { experts: 256, e0: 0, E: 256, tm: 16 },
    { experts: 261, e0: 3, E: 257, tm: 144 },
    { experts: 700, e0: 0, E: 700, tm: 64 },
  ];
  it.each(cases.map((c) => ({ ...c, name: `${c.E} experts from expert ${c.e0} of ${c.experts}, ${c.tm}-row tiles` })))('$name: the plain loop\'s words', async ({ experts, e0, E, tm }, t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(experts * 31 + tm);
    // rows per expert: empty (a quarter), a few, or many tiles' worth
    const off = new Uint32Array(experts + 1);
    for (let e = 0; e < experts; e++) {
      const u = r();
      off[e + 1] = off[e] + (u < 0.25 ? 0 : u < 0.75 ? Math.floor(r() * 2 * tm) : Math.floor(r() * 40 * tm));
    }
    const offT = GpuTensor.upload(c, new HostTensor('uint32', [experts + 1], off));
    const meta = GpuTensor.empty(c, 'uint32', [2 * E + 2]);
    try {
      const rec = new Recorder(c, { label: 'tile-offsets test' });
      rec.dispatch({ kernel: tileOffsetsKernel, variant: { tm }, bind: { OFF: offT.buffer, META: meta.buffer }, params: { E, e0 }, workgroups: [1] });
      rec.submit();
      const got = (await meta.download()).data as Uint32Array;
      const want = tileOffsetsRef(off, e0, E, tm);
      expect(want[2 * E + 1], 'not vacuous: tiles to count').toBeGreaterThan(0);
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(c.takeUncapturedErrors()).toEqual([]);
    } finally {
      offT.destroy();
      meta.destroy();
    }
  });
});
