/**
 * Test helpers of the grouped-GEMM tests: a host grouping (stable sort of
 * pair ids by expert, written here independently of kernels/grouping.ts)
 * and its upload as a GroupingGpu.
 */
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, type GpuContext, type GroupingGpu, type GroupingRef } from '@webmoe/kernels-wgsl';

/** Random routing idx [T*k]: k distinct experts per token, drawn from a subset so that some experts get no rows. */
export function randomIdx(r: () => number, T: number, k: number, E: number): Uint32Array {
  const active: number[] = [];
  for (let e = 0; e < E; e++) if (E < 3 || e % 3 !== 1) active.push(e);
  while (active.length < k) {
    for (let e = 0; e < E && active.length < k; e++) if (!active.includes(e)) active.push(e);
  }
  const idx = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) {
    const pool = active.slice();
    for (let j = 0; j < k; j++) {
      const i = Math.floor(r() * pool.length);
      idx[t * k + j] = pool[i];
      pool.splice(i, 1);
    }
  }
  return idx;
}

/** Groups pair ids by expert (stable sort). */
export function hostGrouping(idx: Uint32Array, T: number, k: number, E: number): GroupingRef {
  const n = T * k;
  const counts = new Uint32Array(E);
  for (let p = 0; p < n; p++) counts[idx[p]]++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const cursor = offsets.slice(0, E);
  const order = new Uint32Array(n);
  const position = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const at = cursor[idx[p]]++;
    order[at] = p;
    position[p] = at;
  }
  return { T, k, E, counts, offsets, order, position };
}

/** Uploads a host grouping as uint32 GPU tensors. */
export function uploadGrouping(ctx: GpuContext, g: GroupingRef): GroupingGpu {
  const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));
  const t = { counts: up(g.counts), offsets: up(g.offsets), order: up(g.order), position: up(g.position) };
  return {
    T: g.T,
    k: g.k,
    E: g.E,
    ...t,
    destroy() {
      for (const x of Object.values(t)) x.destroy();
    },
  };
}

/** A random integer in [lo, hi]. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}
