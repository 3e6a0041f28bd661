import { describe, it, expect } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import {
  expertPlacement,
  planEPDispatch,
  planEPReceive,
  planEP,
  gatherRowsRef,
  epCombineRef,
  cpuAllToAllv,
  allToAllCounts,
  cpuAllReduce,
  DeviceGroup,
  ShardingError,
} from '@webmoe/sharding';

describe('expert placement', () => {
  it('contiguous ranges, owner and local index', () => {
    const p = expertPlacement(8, 4);
    expect(p.ranges).toEqual([[0, 2], [2, 4], [4, 6], [6, 8]]);
    expect([0, 1, 2, 5, 7].map((e) => p.owner(e))).toEqual([0, 0, 1, 2, 3]);
    expect([0, 1, 2, 5, 7].map((e) => p.localIndex(e))).toEqual([0, 1, 0, 1, 1]);
  });
  it('E not divisible by epSize is a typed error', () => {
    expect(() => expertPlacement(10, 4)).toThrow(ShardingError);
    expect(() => expertPlacement(10, 4)).toThrow(/a multiple of 4, got 10/);
    expect(() => expertPlacement(8, 0)).toThrow(ShardingError);
    expect(() => expertPlacement(8, 2).owner(8)).toThrow(ShardingError);
  });
});

describe('planEPDispatch by hand', () => {
  it('T=3, k=2, E=4 over 2 devices', () => {
    // token 0 -> experts 3, 0; token 1 -> 1, 2; token 2 -> 0, 3
    const idx = Uint32Array.of(3, 0, 1, 2, 0, 3);
    const p = planEPDispatch(idx, 3, 2, 4, 2, 0);
    // sorted by expert then pair: e0: pairs 1, 4; e1: 2; e2: 3; e3: 0, 5
    expect(Array.from(p.order)).toEqual([1, 4, 2, 3, 0, 5]);
    expect(Array.from(p.sendCounts)).toEqual([3, 3]);
    expect(Array.from(p.sendOffsets)).toEqual([0, 3, 6]);
    expect(Array.from(p.sendTokens)).toEqual([0, 2, 1, 1, 0, 2]);
    expect(Array.from(p.sendExperts)).toEqual([0, 0, 1, 0, 1, 1]);
    expect(Array.from(p.combine.position)).toEqual([4, 0, 2, 3, 1, 5]);
    expect(p.combine.E).toBe(2);
  });
  it('bad routing is rejected with expected vs got', () => {
    expect(() => planEPDispatch(Uint32Array.of(0, 4), 1, 2, 4, 2)).toThrow(/an expert in \[0, 4\), got 4/);
    expect(() => planEPDispatch(Uint32Array.of(0, 1, 2), 1, 2, 4, 2)).toThrow(/expected shape \[1, 2\], got \[3\]/);
    expect(() => planEPDispatch(Uint32Array.of(0, 1), 1, 2, 6, 4)).toThrow(ShardingError);
    expect(() => planEPDispatch(Uint32Array.of(0, 1), 1, 2, 4, 2, 2)).toThrow(ShardingError);
  });
  it('planEPReceive groups received rows by local expert', () => {
    const r = planEPReceive(1, [Uint32Array.of(1, 0), Uint32Array.of(), Uint32Array.of(1)], 2);
    expect(Array.from(r.recvCounts)).toEqual([2, 0, 1]);
    expect(Array.from(r.experts)).toEqual([1, 0, 1]);
    expect(Array.from(r.grouping.counts)).toEqual([1, 2]);
    expect(Array.from(r.grouping.order)).toEqual([1, 0, 2]);
    expect(() => planEPReceive(0, [Uint32Array.of(2)], 2)).toThrow(ShardingError);
  });
});

describe('EP on CPU shards (DeviceGroup.cpu): dispatch -> experts -> combine equals the unsharded layer', () => {
  it.each([1, 2, 3, 4])('%i devices, random routing (odd T, H), incl. a device with no tokens', (n) => {
    const g = DeviceGroup.cpu(n);
    expect(g.devices.every((d) => d.isCpu())).toBe(true);
    const r = rng(900 + n);
    for (let trial = 0; trial < 5; trial++) {
      const E = n * (1 + Math.floor(r() * 3));
      const k = 1 + Math.floor(r() * Math.min(E, 4));
      const H = 2 * Math.floor(r() * 4) + 1;
      const Ts = Array.from({ length: n }, (_, d) => (d === trial % n && n > 1 ? 0 : 2 * Math.floor(r() * 5) + 1));
      const expert = (e: number, x: number) => Math.fround(Math.fround(x * (e - 1.5)) + e / 4);
      const xs = Ts.map((T) => randomArray(r, T * H));
      const idxs = Ts.map((T) => {
        const idx = new Uint32Array(T * k);
        for (let t = 0; t < T; t++) {
          const perm = Array.from({ length: E }, (_, e) => e).sort(() => r() - 0.5);
          for (let j = 0; j < k; j++) idx[t * k + j] = perm[j];
        }
        return idx;
      });
      const ws = Ts.map((T) => randomArray(r, T * k, 0, 1));
      const { dispatch, receive } = planEP(idxs, Ts, k, E, n);
      // the counts exchange agrees with what the receivers planned
      const rc = allToAllCounts(dispatch.map((p) => p.sendCounts));
      receive.forEach((rp, d) => expect(Array.from(rp.recvCounts)).toEqual(Array.from(rc[d])));
      const send = dispatch.map((p, s) => HostTensor.fromFloat32([p.T * k, H], gatherRowsRef(xs[s], H, p.sendTokens)));
      const there = cpuAllToAllv(send, dispatch.map((p) => p.sendCounts));
      const ys = there.recv.map((t, d) => {
        const x = t.data as Float32Array;
        // compute in grouped order (as the grouped GEMMs do), then return rows in received order via position
        const gr = receive[d].grouping;
        const yg = new Float32Array(x.length);
        for (let row = 0; row < gr.T; row++) {
          const src = gr.order[row];
          const e = d * (E / n) + receive[d].experts[src];
          for (let ch = 0; ch < H; ch++) yg[row * H + ch] = expert(e, x[src * H + ch]);
        }
        const y = new Float32Array(x.length);
        for (let row = 0; row < gr.T; row++) y.set(yg.subarray(gr.position[row] * H, gr.position[row] * H + H), row * H);
        return HostTensor.fromFloat32([gr.T, H], y);
      });
      const back = cpuAllToAllv(ys, there.recvCounts);
      for (let s = 0; s < n; s++) {
        const got = epCombineRef(back.recv[s].data as Float32Array, dispatch[s], ws[s], H);
        const want = new Float32Array(Ts[s] * H);
        for (let t = 0; t < Ts[s]; t++) {
          for (let ch = 0; ch < H; ch++) {
            let acc = 0;
            for (let j = 0; j < k; j++) acc = Math.fround(acc + Math.fround(ws[s][t * k + j] * expert(idxs[s][t * k + j], xs[s][t * H + ch])));
            want[t * H + ch] = acc;
          }
        }
        expect(Array.from(got), `n=${n} trial=${trial} device ${s}`).toEqual(Array.from(want));
        // unweighted combine (applyRouterWeightFirst)
        const unw = epCombineRef(back.recv[s].data as Float32Array, dispatch[s], null, H);
        if (Ts[s] > 0) {
          let acc = 0;
          for (let j = 0; j < k; j++) acc = Math.fround(acc + expert(idxs[s][j], xs[s][0]));
          expect(unw[0]).toBe(acc);
        }
      }
    }
    g.destroy();
  });

  it('gatherRowsRef scales rows and rejects out-of-range rows', () => {
    const x = Float32Array.of(1, 2, 3, 4);
    expect(Array.from(gatherRowsRef(x, 2, Uint32Array.of(1, 0, 1), Float32Array.of(2, 1, 0.5)))).toEqual([6, 8, 1, 2, 1.5, 2]);
    expect(() => gatherRowsRef(x, 2, Uint32Array.of(2))).toThrow(ShardingError);
  });
});

describe('CPU collectives', () => {
  it('cpuAllReduce sums in device order and gives each device its own copy', () => {
    const out = cpuAllReduce([Float32Array.of(1e8, 1), Float32Array.of(1, 2), Float32Array.of(-1e8, 3)]);
    expect(Array.from(out[0])).toEqual([0, 6]); // (1e8 + 1) rounds to 1e8 in f32, then - 1e8
    expect(out[1]).not.toBe(out[0]);
    expect(() => cpuAllReduce([Float32Array.of(1), Float32Array.of(1, 2)])).toThrow();
  });
  it('allToAllCounts transposes and validates', () => {
    expect(allToAllCounts([Uint32Array.of(1, 2), Uint32Array.of(3, 0)]).map((a) => Array.from(a))).toEqual([[1, 3], [2, 0]]);
    expect(() => allToAllCounts([Uint32Array.of(1), Uint32Array.of(3, 0)])).toThrow(ShardingError);
  });
});
