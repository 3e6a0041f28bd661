// The token-deduplicated EP dispatch (planEPRankDispatch) by hand and on random routings, and rankEPForward
// over in-process transports against a per-pair host reference (routing, experts and combine written out here).
import { describe, it, expect } from 'vitest';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { NO_LOCAL_EXPERT, createLocalTransports, planEPRankDispatch, rankEPForward, epRankRecordBytes, ShardingError } from '@webmoe/sharding';

const NONE = NO_LOCAL_EXPERT;

describe('planEPRankDispatch by hand', () => {
  it('T=3, k=2, E=4 over 2 ranks: a token goes once to each rank owning one of its experts', () => {
    // token 0 -> experts 3, 0 (ranks 1, 0); token 1 -> 0, 1 (rank 0 twice); token 2 -> 2, 3 (rank 1 twice)
    const idx = Uint32Array.of(3, 0, 0, 1, 2, 3);
    const w = Float32Array.of(0.6, 0.4, 0.7, 0.3, 0.5, 0.5);
    const p = planEPRankDispatch(idx, w, 3, 2, 4, 2);
    expect(Array.from(p.sendCounts)).toEqual([2, 2]);
    expect(Array.from(p.sendTokens)).toEqual([0, 1, 0, 2]);
    expect(Array.from(p.slotExperts)).toEqual([NONE, 0, 0, 1, 1, NONE, 0, 1]);
    expect(Array.from(p.slotWeights)).toEqual(Array.from(Float32Array.of(0.6, 0.4, 0.7, 0.3, 0.6, 0.4, 0.5, 0.5)));
  });
  it('bad input is a typed error', () => {
    expect(() => planEPRankDispatch(Uint32Array.of(0, 9), new Float32Array(2), 1, 2, 4, 2)).toThrow(ShardingError);
    expect(() => planEPRankDispatch(Uint32Array.of(0, 1), new Float32Array(2), 1, 2, 6, 4)).toThrow(/a multiple of 4/);
  });
});

describe('planEPRankDispatch on random routings', () => {
  for (const [T, k, E, n] of [[17, 2, 8, 2], [23, 4, 16, 4], [9, 8, 16, 8], [5, 1, 6, 3], [0, 2, 4, 2]]) {
    it(`T=${T} k=${k} E=${E} n=${n}: rows = distinct owner ranks per token, every slot at its owner`, () => {
      const r = rng(T * 31 + k);
      const idx = new Uint32Array(T * k);
      for (let t = 0; t < T; t++) {
        const pick = [...Array(E).keys()].sort(() => r() - 0.5).slice(0, k); // k distinct experts
        idx.set(pick, t * k);
      }
      const per = E / n;
      const p = planEPRankDispatch(idx, new Float32Array(T * k).map(() => r()), T, k, E, n);
      let rows = 0;
      for (let t = 0; t < T; t++) rows += new Set(Array.from(idx.subarray(t * k, (t + 1) * k), (e) => Math.floor(e / per))).size;
      expect(p.sendTokens.length).toBe(rows);
      for (let d = 0; d < n; d++) {
        for (let q = p.sendOffsets[d]; q < p.sendOffsets[d + 1]; q++) {
          const t = p.sendTokens[q];
          for (let j = 0; j < k; j++) {
            const e = idx[t * k + j];
            expect(p.slotExperts[q * k + j]).toBe(Math.floor(e / per) === d ? e % per : NONE);
          }
        }
      }
    });
  }
});

describe('rankEPForward over in-process transports', () => {
  it('equals the per-pair sum; T = 0 on some ranks; applyRouterWeightFirst', async () => {
    const H = 5, E = 6, k = 2, n = 3;
    const r = rng(7);
    const Ts = [4, 0, 3];
    const xs = Ts.map((T) => Float32Array.from({ length: T * H }, () => r() * 2 - 1));
    const idxs = Ts.map((T) => Uint32Array.from({ length: T * k }, (_, p) => (p % k === 0 ? Math.floor(r() * 3) : 3 + Math.floor(r() * 3))));
    const ws = Ts.map((T) => Float32Array.from({ length: T * k }, () => r()));
    // "expert" e maps a row to row * (e + 1) + e (global e, from the owner's rank and local index)
    for (const arwf of [false, true]) {
      const trs = createLocalTransports(n);
      const res = await Promise.all(
        trs.map((tr, s) =>
          rankEPForward(tr, {
            x: xs[s], T: Ts[s], H, idx: idxs[s], weights: ws[s], k, numExperts: E, applyRouterWeightFirst: arwf,
            experts: (xp, g) => {
              const out = new Float32Array(xp.length);
              // grouped order: row gi holds pair order[gi] of local expert le (offsets)
              for (let le = 0; le < g.E; le++) {
                for (let gi = g.offsets[le]; gi < g.offsets[le + 1]; gi++) {
                  const e = tr.rank * (E / n) + le;
                  const src = g.order[gi];
                  for (let c = 0; c < H; c++) out[gi * H + c] = xp[src * H + c] * (e + 1) + e;
                }
              }
              return out;
            },
          }),
        ),
      );
      for (let s = 0; s < n; s++) {
        const want = new Float32Array(Ts[s] * H);
        for (let t = 0; t < Ts[s]; t++) {
          for (let j = 0; j < k; j++) {
            const e = idxs[s][t * k + j];
            const w = ws[s][t * k + j];
            for (let c = 0; c < H; c++) {
              const xin = arwf ? Math.fround(xs[s][t * H + c] * w) : xs[s][t * H + c];
              const y = xin * (e + 1) + e;
              want[t * H + c] += arwf ? y : w * y;
            }
          }
        }
        expect(res[s].out.length).toBe(want.length);
        for (let i = 0; i < want.length; i++) expect(res[s].out[i]).toBeCloseTo(want[i], 4);
      }
      // bytes: rank 0's 4 tokens each go to ranks {0 or 1} and {1 or 2}; what leaves rank 0 is its rows to 1 and 2
      const rec = epRankRecordBytes(H, k);
      expect(res[0].stats.dispatchBytes % rec).toBe(0);
      expect(res[1].stats.rowsSent).toBe(0);
    }
  });
});
