import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { HostTensor, ShapeError, DTypeError } from '@webmoe/tensor';
import { GpuTensor, BufferPool } from '@webmoe/kernels-wgsl';
import { gpuRequired, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import {
  DeviceGroup,
  allReduce,
  allGather,
  allToAll,
  allToAllv,
  cpuAllReduce,
  cpuAllGather,
  cpuAllToAll,
  cpuAllToAllv,
  planEP,
  gatherRowsRef,
  epCombineRef,
  ShardingError,
} from '@webmoe/sharding';

const groups = new Map<number, DeviceGroup>();
let missing = '';
beforeAll(async () => {
  try {
    for (const n of [2, 3, 4]) groups.set(n, await DeviceGroup.create(n, { placement: 'same-adapter', context: { label: `coll${n}` } }));
    const g = groups.get(2)!;
    console.log(`[webmoe] collective tests on ${g.adapterNames()[0]} (2, 3 and 4 devices from one adapter)`);
  } catch (e) {
    missing = (e as Error).message;
    if (gpuRequired()) throw new Error(`GPU tests need a WebGPU adapter (CI=true): ${missing}`);
    console.log(`[webmoe] collective GPU tests SKIPPED: ${missing}`);
  }
});
afterAll(() => {
  for (const g of groups.values()) g.destroy();
});

/** Runs fn with validation + OOM scopes on every device of the group; fails on any GPU error. */
async function checkedAll<T>(g: DeviceGroup, fn: () => Promise<T>): Promise<T> {
  for (const c of g.contexts) {
    c.device.pushErrorScope('out-of-memory');
    c.device.pushErrorScope('validation');
  }
  let out: T | undefined;
  let thrown: unknown;
  try {
    out = await fn();
  } catch (e) {
    thrown = e;
  }
  const errs: string[] = [];
  for (const c of g.contexts) {
    const v = await c.device.popErrorScope();
    const o = await c.device.popErrorScope();
    if (v) errs.push(`validation: ${v.message}`);
    if (o) errs.push(`oom: ${o.message}`);
    errs.push(...c.takeUncapturedErrors());
  }
  if (thrown) throw thrown;
  if (errs.length) throw new Error(`GPU errors: ${errs.join('; ')}`);
  return out!;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe.each([2, 3, 4])('collectives on %i devices that share no memory', (n) => {
  it('the devices are distinct GPUDevices', (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    expect(new Set(g.contexts.map((x) => x.device)).size).toBe(n);
  });

  it('allReduce: f32 sum in device order, bit-identical on every device, random odd shapes', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const r = rng(100 + n);
    for (const shape of [[1], [7, 13], [33, 5], [3, 129]]) {
      const size = shape.reduce((a, b) => a * b, 1);
      // values of very different magnitudes so that the order of the sum matters
      const hosts = Array.from({ length: n }, (_, d) => randomArray(r, size, -1, 1).map((v, j) => v * 10 ** ((d * 3 + j) % 7 - 3)));
      const want = new Float32Array(size);
      for (let j = 0; j < size; j++) {
        let acc = hosts[0][j];
        for (let d = 1; d < n; d++) acc = Math.fround(acc + hosts[d][j]);
        want[j] = acc;
      }
      expect(bits(cpuAllReduce(hosts)[n - 1])).toEqual(bits(want));
      const got = await checkedAll(g, async () => {
        const ins = hosts.map((h, d) => GpuTensor.upload(g.context(d), HostTensor.fromFloat32(shape, h)));
        const outs = await allReduce(ins);
        const back = await Promise.all(outs.map((o) => o.download()));
        outs.forEach((o, d) => expect(o.ctx).toBe(g.context(d)));
        [...ins, ...outs].forEach((t) => t.destroy());
        return back;
      });
      for (const b of got) {
        expect(b.shape).toEqual(shape);
        expect(bits(b.data as Float32Array), `shape [${shape}]`).toEqual(bits(want));
      }
    }
  });

  it('allGather: uneven sizes along the axis, f32 and bf16, equals the host concatenation', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const r = rng(200 + n);
    for (const [dtype, axis] of [['float32', 0], ['bfloat16', 1], ['bfloat16', -1], ['float32', 1]] as const) {
      const other = 2 * Math.floor(r() * 4) + 1;
      const hosts = Array.from({ length: n }, (_, d) => {
        const len = d === n - 1 ? 0 : 1 + Math.floor(r() * 5); // one device contributes nothing
        const shape = axis === 0 ? [len, other] : [other, len];
        return HostTensor.fromFloat32(shape, randomArray(r, len * other, -3, 3), dtype);
      });
      const want = cpuAllGather(hosts, axis)[0];
      const got = await checkedAll(g, async () => {
        const ins = hosts.map((h, d) => GpuTensor.upload(g.context(d), h));
        const outs = await allGather(ins, axis);
        const back = await Promise.all(outs.map((o) => o.download()));
        [...ins, ...outs].forEach((t) => t.destroy());
        return back;
      });
      for (const b of got) {
        expect(b.dtype).toBe(dtype);
        expect(b.shape).toEqual(want.shape);
        expect(Array.from(b.data as Uint16Array)).toEqual(Array.from(want.data as Uint16Array));
      }
    }
  });

  it('allToAll: variable row blocks incl. zero-row blocks and a device that receives nothing', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const r = rng(300 + n);
    for (let trial = 0; trial < 3; trial++) {
      const C = 2 * Math.floor(r() * 6) + 1;
      const starved = trial % n; // receives nothing
      const rows = Array.from({ length: n }, (_, s) => Array.from({ length: n }, (_, d) => (d === starved || r() < 0.25 ? 0 : 1 + Math.floor(r() * 9))));
      const hosts = rows.map((row) => row.map((m) => HostTensor.fromFloat32([m, C], randomArray(r, m * C))));
      const want = cpuAllToAll(hosts);
      const got = await checkedAll(g, async () => {
        const ins = hosts.map((row, s) => row.map((h) => GpuTensor.upload(g.context(s), h)));
        const recv = await allToAll(ins);
        const back = await Promise.all(recv.map((row) => Promise.all(row.map((t) => t.download()))));
        recv.forEach((row, d) => row.forEach((t) => expect(t.ctx).toBe(g.context(d))));
        [...ins.flat(), ...recv.flat()].forEach((t) => t.destroy());
        return back;
      });
      for (let d = 0; d < n; d++) {
        for (let s = 0; s < n; s++) {
          expect(got[d][s].shape).toEqual([rows[s][d], C]);
          expect(bits(got[d][s].data as Float32Array), `recv[${d}][${s}]`).toEqual(bits(want[d][s].data as Float32Array));
        }
      }
      expect(got[starved].every((t) => t.shape[0] === 0)).toBe(true);
    }
  });

  it('allToAllv: contiguous blocks in destination order, received in source order', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const r = rng(400 + n);
    const C = 11;
    const counts = Array.from({ length: n }, (_, s) => Uint32Array.from({ length: n }, (_, d) => (s === 0 || d === 1 ? 0 : Math.floor(r() * 7))));
    const hosts = counts.map((cs) => {
      const R = cs.reduce((a, b) => a + b, 0);
      return HostTensor.fromFloat32([R, C], randomArray(r, R * C));
    });
    const want = cpuAllToAllv(hosts, counts);
    const got = await checkedAll(g, async () => {
      const ins = hosts.map((h, s) => GpuTensor.upload(g.context(s), h));
      const res = await allToAllv(ins, counts);
      const back = await Promise.all(res.recv.map((t) => t.download()));
      [...ins, ...res.recv].forEach((t) => t.destroy());
      return { back, res };
    });
    for (let d = 0; d < n; d++) {
      expect(got.back[d].shape).toEqual(want.recv[d].shape);
      expect(bits(got.back[d].data as Float32Array)).toEqual(bits(want.recv[d].data as Float32Array));
      expect(Array.from(got.res.recvCounts[d])).toEqual(counts.map((cs) => cs[d]));
    }
    expect(got.back[1].shape[0]).toBe(0);
  });

  it('outputs come from the per-device pools when given, and nothing stays live after destroy()', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const pools = g.contexts.map((cx) => new BufferPool(cx));
    const r = rng(600 + n);
    await checkedAll(g, async () => {
      const ins = g.contexts.map((cx) => GpuTensor.upload(cx, HostTensor.fromFloat32([3, 5], randomArray(r, 15))));
      const counts = g.contexts.map((_, s) => Uint32Array.from({ length: n }, (_, d) => (d === s ? 3 : 0)));
      const empties = g.contexts.map((cx) => GpuTensor.empty(cx, 'float32', [0, 5]));
      const outs = [
        ...(await allReduce(ins, { pools })),
        ...(await allGather(ins, 0, { pools })),
        ...(await allToAll(ins.map((t, s) => ins.map((_, d) => (d === s ? t : empties[s]))), { pools })).flat(),
        ...(await allToAllv(ins, counts, { pools })).recv,
      ];
      expect(pools.reduce((a, p) => a + p.liveCount, 0)).toBe(outs.length);
      outs.forEach((t) => t.destroy());
      [...ins, ...empties].forEach((t) => t.destroy());
    });
    for (const p of pools) {
      expect(p.liveCount).toBe(0);
      p.destroy();
    }
  });

  it('bad input gets a typed error before anything is recorded', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const a = GpuTensor.upload(g.context(0), HostTensor.fromFloat32([2, 3], new Float32Array(6)));
    const b = GpuTensor.upload(g.context(1), HostTensor.fromFloat32([3, 2], new Float32Array(6)));
    const h = GpuTensor.upload(g.context(1), HostTensor.fromFloat32([2, 3], new Float32Array(6), 'bfloat16'));
    await expect(allReduce([a, b])).rejects.toThrow(ShapeError);
    await expect(allReduce([a, h])).rejects.toThrow(DTypeError);
    await expect(allGather([a, b], 0)).rejects.toThrow(ShapeError);
    await expect(allToAll([[a, a], [b]])).rejects.toThrow(ShardingError);
    await expect(allToAllv([a, a], [Uint32Array.of(1, 0), Uint32Array.of(2, 0)])).rejects.toThrow(/sum of 2/);
    [a, b, h].forEach((t) => t.destroy());
  });
});

describe.each([2, 3, 4])('EP dispatch -> expert compute -> combine through allToAllv (host experts), %i devices', (n) => {
  it('random routing, odd sizes, a device without tokens: equals the unsharded MoE sum', async (c) => {
    const g = groups.get(n);
    if (!g) return c.skip(`no WebGPU adapter: ${missing}`);
    const r = rng(500 + n);
    const E = n * 3;
    const k = 3;
    const H = 7;
    const Ts = Array.from({ length: n }, (_, d) => (d === 1 ? 0 : 1 + Math.floor(r() * 9))); // device 1 has no tokens
    // a toy expert: y = x * (e + 1) + e / 8 (elementwise)
    const expert = (e: number, x: number) => Math.fround(Math.fround(x * (e + 1)) + e / 8);
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
    const outs = await checkedAll(g, async () => {
      const send = dispatch.map((p, s) => GpuTensor.upload(g.context(s), HostTensor.fromFloat32([p.T * k, H], gatherRowsRef(xs[s], H, p.sendTokens))));
      const there = await allToAllv(send, dispatch.map((p) => p.sendCounts));
      // each destination runs its experts on the rows it received (host stand-in for the grouped GEMMs)
      const ys = await Promise.all(
        there.recv.map(async (t, d) => {
          const x = (await t.download()).data as Float32Array;
          const y = new Float32Array(x.length);
          for (let row = 0; row < receive[d].rows; row++) {
            const e = d * (E / n) + receive[d].experts[row];
            for (let ch = 0; ch < H; ch++) y[row * H + ch] = expert(e, x[row * H + ch]);
          }
          return GpuTensor.upload(g.context(d), HostTensor.fromFloat32([receive[d].rows, H], y));
        }),
      );
      const back = await allToAllv(ys, there.recvCounts);
      const yBack = await Promise.all(back.recv.map((t) => t.download()));
      [...send, ...there.recv, ...ys, ...back.recv].forEach((t) => t.destroy());
      return yBack.map((y, s) => epCombineRef(y.data as Float32Array, dispatch[s], ws[s], H));
    });
    for (let s = 0; s < n; s++) {
      const want = new Float32Array(Ts[s] * H);
      for (let t = 0; t < Ts[s]; t++) {
        for (let ch = 0; ch < H; ch++) {
          let acc = 0;
          for (let j = 0; j < k; j++) acc = Math.fround(acc + Math.fround(ws[s][t * k + j] * expert(idxs[s][t * k + j], xs[s][t * H + ch])));
          want[t * H + ch] = acc;
        }
      }
      expect(bits(outs[s]), `device ${s}`).toEqual(bits(want));
    }
  });
});
