// The grouped GEMMs' tile offsets (tileOffsetsKernel: a workgroup scan over the experts' tile counts) against a plain
// loop: expert ranges of one, part of one and several scan steps (256 experts each), chunks that start past expert 0,
// tile heights of the fast and matrix kernels, empty experts and experts of many tiles.
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng } from '@webmoe/kernels-wgsl/testing';
import { tileOffsetsKernel, type TileOffsetsVariant } from '../src/kernels/grouped-gemm-wgsl.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/**
 * META of experts e0..e0+E-1 as the kernel's contract states it, by one loop: every row in tm-row tiles; with `tail`,
 * an expert's rows past its full tiles only where they are more than `tail`; with `of`, only those rows (where they
 * are at most tm), its first row past the full `of`-row tiles and its end row.
 */
function tileOffsetsRef(off: Uint32Array, e0: number, E: number, tm: number, split: Omit<TileOffsetsVariant, 'tm'> = {}): Uint32Array {
  const meta = new Uint32Array((split.of ? 3 : 2) * E + 2);
  let acc = 0;
  for (let e = 0; e < E; e++) {
    const [a, n] = [off[e0 + e], off[e0 + e + 1] - off[e0 + e]];
    meta[E + 1 + e] = acc;
    if (split.of) {
      const full = Math.floor(n / split.of) * split.of;
      meta[e] = a + full;
      meta[2 * E + 2 + e] = a + n;
      acc += n > full && n - full <= tm ? 1 : 0;
    } else {
      meta[e] = a;
      acc += split.tail !== undefined ? Math.floor(n / tm) + (n % tm > split.tail ? 1 : 0) : Math.ceil(n / tm);
    }
  }
  meta[E] = off[e0 + E];
  meta[2 * E + 1] = acc;
  return meta;
}

describe('tileOffsetsKernel', () => {
  const cases: ({ experts: number; e0: number; E: number } & TileOffsetsVariant)[] = [
    { experts: 1, e0: 0, E: 1, tm: 64 },
    { experts: 8, e0: 0, E: 8, tm: 144 },
    { experts: 128, e0: 0, E: 128, tm: 32 },
    { experts: 300, e0: 45, E: 255, tm: 128 },
    { experts: 256, e0: 0, E: 256, tm: 16 },
    { experts: 261, e0: 3, E: 257, tm: 144 },
    { experts: 700, e0: 0, E: 700, tm: 64 },
    // a call with a tail dispatch (FastGemmPlan.tail): the main tiles without the short rests, then the rests alone
    { experts: 8, e0: 0, E: 8, tm: 144, tail: 32 },
    { experts: 8, e0: 0, E: 8, tm: 32, of: 144 },
    { experts: 300, e0: 45, E: 255, tm: 64, tail: 16 },
    { experts: 300, e0: 45, E: 255, tm: 16, of: 64 },
  ];
  it.each(cases.map((c) => ({ ...c, name: `${c.E} experts from expert ${c.e0} of ${c.experts}, ${c.tm}-row tiles${c.tail ? `, rests of up to ${c.tail} rows left out` : ''}${c.of ? `, the rests past ${c.of}-row tiles` : ''}` })))('$name: the plain loop\'s words', async ({ experts, e0, E, tm, tail, of }, t) => {
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
    const split = { ...(tail ? { tail } : {}), ...(of ? { of } : {}) };
    const meta = GpuTensor.empty(c, 'uint32', [(of ? 3 : 2) * E + 2]);
    try {
      const rec = new Recorder(c, { label: 'tile-offsets test' });
      rec.dispatch({ kernel: tileOffsetsKernel, variant: { tm, ...split }, bind: { OFF: offT.buffer, META: meta.buffer }, params: { E, e0 }, workgroups: [1] });
      rec.submit();
      const got = (await meta.download()).data as Uint32Array;
      const want = tileOffsetsRef(off, e0, E, tm, split);
      expect(want[2 * E + 1], 'not vacuous: tiles to count').toBeGreaterThan(0);
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(c.takeUncapturedErrors()).toEqual([]);
    } finally {
      offT.destroy();
      meta.destroy();
    }
  });
});
