import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor } from '@webmoe/kernels-wgsl';
import { gpuRequired, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { DeviceGroup, createLocalTransports, rankAllReduce, rankAllGather, rankAllToAllv, cpuAllReduce, cpuAllGather, cpuAllToAllv, ShardingError } from '@webmoe/sharding';

describe('LocalTransport (host bytes)', () => {
  it('allToAllv and allGatherv deliver blocks in rank order, incl. empty blocks', async () => {
    const trs = createLocalTransports(3);
    const res = await Promise.all(
      trs.map((tr) => {
        const r = tr.rank;
        // rank r sends (r*10 + d) repeated d times to destination d
        const blocks = [0, 1, 2].map((d) => new Uint8Array(d).fill(r * 10 + d));
        const send = new Uint8Array(blocks.reduce((a, b) => a + b.length, 0));
        let w = 0;
        for (const b of blocks) (send.set(b, w), (w += b.length));
        return tr.allToAllv(send, blocks.map((b) => b.length));
      }),
    );
    expect(Array.from(res[0].recv)).toEqual([]);
    expect(res[2].recvCounts).toEqual([2, 2, 2]);
    expect(Array.from(res[2].recv)).toEqual([2, 2, 12, 12, 22, 22]);
    const g = await Promise.all(trs.map((tr) => tr.allGatherv(Uint8Array.of(tr.rank, 7))));
    expect(g[1].map((b) => Array.from(b))).toEqual([[0, 7], [1, 7], [2, 7]]);
    await expect(trs[0].allToAllv(new Uint8Array(2), [1, 0, 0])).rejects.toThrow(ShardingError);
  });
});

let group: DeviceGroup | undefined;
let missing = '';
beforeAll(async () => {
  try {
    group = await DeviceGroup.create(3, { placement: 'same-adapter', context: { label: 'rank' } });
  } catch (e) {
    missing = (e as Error).message;
    if (gpuRequired()) throw new Error(`GPU tests need a WebGPU adapter (CI=true): ${missing}`);
  }
});
afterAll(() => group?.destroy());
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('rank collectives over a transport (3 ranks, one device each)', () => {
  it('rankAllReduce (reduce-scatter in rank order + all-gather) is bit-identical to cpuAllReduce; odd length', async (c) => {
    if (!group) return c.skip(`no WebGPU adapter: ${missing}`);
    const g = group;
    const r = rng(31337);
    const L = 7 * 13;
    const hosts = [0, 1, 2].map((d) => randomArray(r, L).map((v, j) => v * 10 ** ((d + j) % 5 - 2)));
    const want = cpuAllReduce(hosts)[0];
    const trs = createLocalTransports(3);
    const outs = await Promise.all(
      trs.map(async (tr, d) => {
        const t = GpuTensor.upload(g.context(d), HostTensor.fromFloat32([7, 13], hosts[d]));
        const o = await rankAllReduce(tr, t);
        expect(o.ctx).toBe(g.context(d));
        const h = await o.download();
        t.destroy();
        o.destroy();
        return h;
      }),
    );
    for (const o of outs) {
      expect(o.shape).toEqual([7, 13]);
      expect(bits(o.data as Float32Array)).toEqual(bits(want));
    }
  });

  it('rankAllGather (uneven, bf16) and rankAllToAllv (zero-row blocks) equal the CPU collectives', async (c) => {
    if (!group) return c.skip(`no WebGPU adapter: ${missing}`);
    const g = group;
    const r = rng(4711);
    const parts = [3, 0, 5].map((m) => HostTensor.fromFloat32([m, 5], randomArray(r, m * 5), 'bfloat16'));
    const counts = [Uint32Array.of(0, 2, 1), Uint32Array.of(0, 0, 0), Uint32Array.of(4, 0, 1)];
    const sends = counts.map((cs) => {
      const R = cs.reduce((a, b) => a + b, 0);
      return HostTensor.fromFloat32([R, 3], randomArray(r, R * 3));
    });
    const wantG = cpuAllGather(parts, 0)[0];
    const wantV = cpuAllToAllv(sends, counts);
    const trs = createLocalTransports(3);
    const res = await Promise.all(
      trs.map(async (tr, d) => {
        const a = GpuTensor.upload(g.context(d), parts[d]);
        const b = GpuTensor.upload(g.context(d), sends[d]);
        const ga = await rankAllGather(tr, a, 0);
        const vb = await rankAllToAllv(tr, b, counts[d]);
        const out = { g: await ga.download(), v: await vb.recv.download(), rc: Array.from(vb.recvCounts) };
        [a, b, ga, vb.recv].forEach((t) => t.destroy());
        return out;
      }),
    );
    for (let d = 0; d < 3; d++) {
      expect(res[d].g.shape).toEqual(wantG.shape);
      expect(Array.from(res[d].g.data as Uint16Array)).toEqual(Array.from(wantG.data as Uint16Array));
      expect(res[d].v.shape).toEqual(wantV.recv[d].shape);
      expect(bits(res[d].v.data as Float32Array)).toEqual(bits(wantV.recv[d].data as Float32Array));
      expect(res[d].rc).toEqual(Array.from(wantV.recvCounts[d]));
    }
    expect(res[1].v.shape).toEqual([2, 3]);
  });
});
