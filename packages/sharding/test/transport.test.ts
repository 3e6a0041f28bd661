// rankAllReduceHost (the host all-reduce over a HostTransport that tensor parallel over MPI uses) on
// in-process transports: sums in rank order with f32 rounding, so every rank gets cpuAllReduce's bits.
import { describe, it, expect } from 'vitest';
import { ShapeError } from '@webmoe/tensor';
import { createLocalTransports, rankAllReduceHost } from '@webmoe/sharding';

function rand(len: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: len }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 1e3);
}

/** The expected sum, written out: ((x0 + x1) + x2) + ... with f32 rounding after each add. */
function sumInRankOrder(xs: Float32Array[]): Float32Array {
  return Float32Array.from({ length: xs[0].length }, (_, j) => xs.reduce((acc, x, r) => (r === 0 ? x[j] : Math.fround(acc + x[j])), 0));
}

describe('rankAllReduceHost', () => {
  for (const n of [1, 2, 3, 4]) {
    for (const len of [0, 1, 5, 37]) {
      it(`n = ${n}, length ${len} (fewer values than ranks included): every rank gets the rank-order f32 sum`, async () => {
        const xs = Array.from({ length: n }, (_, r) => rand(len, 7 + 31 * r + len));
        const trs = createLocalTransports(n);
        const outs = await Promise.all(trs.map((tr, r) => rankAllReduceHost(tr, xs[r])));
        const want = sumInRankOrder(xs);
        for (const o of outs) expect(Array.from(o)).toEqual(Array.from(want));
      });
    }
  }

  it('ranks passing different lengths get a ShapeError', async () => {
    const trs = createLocalTransports(2);
    const res = await Promise.allSettled([rankAllReduceHost(trs[0], rand(8, 1)), rankAllReduceHost(trs[1], rand(6, 2))]);
    for (const r of res) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ShapeError);
    }
  });
});
