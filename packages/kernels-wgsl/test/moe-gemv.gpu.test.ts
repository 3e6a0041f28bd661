import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, type DType } from '@webmoe/tensor';
import { GpuTensor, Recorder, gemvGateUpGpu, gemvDownGpu, activeExpertsGpu, readBuffer, type GpuContext, type GroupingGpu, type ExpertActivation } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Independent host grouping: stable sort of pair ids by expert. */
function hostGroup(idx: Uint32Array, T: number, k: number, E: number) {
  const counts = new Uint32Array(E);
  for (const e of idx) counts[e]++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const cur = offsets.slice(0, E);
  const order = new Uint32Array(T * k);
  const position = new Uint32Array(T * k);
  for (let p = 0; p < T * k; p++) {
    const e = idx[p];
    order[cur[e]] = p;
    position[p] = cur[e]++;
  }
  return { counts, offsets, order, position };
}

function upload(c: GpuContext, a: Uint32Array | Float32Array, shape: number[]): GpuTensor {
  return GpuTensor.upload(c, new HostTensor(a instanceof Uint32Array ? 'uint32' : 'float32', shape, a));
}

function act(kind: ExpertActivation['kind'], g: number, u: number, L: number, alpha: number): number {
  const silu = (v: number) => v / (1 + Math.exp(-v));
  if (kind === 'silu') return silu(g) * u;
  if (kind === 'swiglu_limit') return Math.min(silu(g), L) * Math.min(Math.max(u, -L), L);
  const gg = Math.min(g, L);
  const uu = Math.min(Math.max(u, -L), L);
  return (uu + 1) * gg * (1 / (1 + Math.exp(-alpha * gg)));
}

interface Case { T: number; k: number; E: number; H: number; I: number; dtype: DType; kind: ExpertActivation['kind']; layout: 'concat' | 'interleaved'; bias: boolean; scale: boolean }

async function runCase(c: Case, seed: number) {
  const r = rng(seed);
  const { T, k, E, H, I } = c;
  const idx = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) {
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(r() * E));
    [...chosen].forEach((e, j) => (idx[t * k + j] = e));
  }
  const g = hostGroup(idx, T, k, E);
  const x = randomArray(r, T * H);
  const wguH = HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H, -0.2, 0.2), c.dtype);
  const wdnH = HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I, -0.2, 0.2), c.dtype);
  const bguH = HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I), c.dtype);
  const bdnH = HostTensor.fromFloat32([E, H], randomArray(r, E * H), c.dtype);
  const scale = randomArray(r, T * k, 0.1, 1);
  const wgu = wguH.toFloat32(), wdn = wdnH.toFloat32(), bgu = bguH.toFloat32(), bdn = bdnH.toFloat32();
  const L = 0.6, alpha = 1.702;
  // reference, in grouped row order
  const hRef = new Float32Array(T * k * I);
  const yRef = new Float32Array(T * k * H);
  for (let e = 0; e < E; e++) {
    for (let p = g.offsets[e]; p < g.offsets[e + 1]; p++) {
      const pair = g.order[p];
      const t = Math.floor(pair / k);
      const s = c.scale ? scale[pair] : 1;
      for (let i = 0; i < I; i++) {
        const rg = c.layout === 'concat' ? i : 2 * i;
        const ru = c.layout === 'concat' ? I + i : 2 * i + 1;
        let gs = 0, us = 0;
        for (let hh = 0; hh < H; hh++) {
          gs += x[t * H + hh] * wgu[(e * 2 * I + rg) * H + hh];
          us += x[t * H + hh] * wgu[(e * 2 * I + ru) * H + hh];
        }
        gs *= s; us *= s;
        if (c.bias) { gs += bgu[e * 2 * I + rg]; us += bgu[e * 2 * I + ru]; }
        hRef[p * I + i] = act(c.kind, gs, us, L, alpha);
      }
      for (let n = 0; n < H; n++) {
        let acc = 0;
        for (let i = 0; i < I; i++) acc += hRef[p * I + i] * wdn[(e * H + n) * I + i];
        yRef[p * H + n] = acc + (c.bias ? bdn[e * H + n] : 0);
      }
    }
  }
  const cx = ctx!;
  const { h, y } = await gpuChecked(cx, async () => {
    const grouping: GroupingGpu = {
      T, k, E,
      counts: upload(cx, g.counts, [E]), offsets: upload(cx, g.offsets, [E + 1]),
      order: upload(cx, g.order, [T * k]), position: upload(cx, g.position, [T * k]),
      destroy() { this.counts.destroy(); this.offsets.destroy(); this.order.destroy(); this.position.destroy(); },
    };
    const xg = upload(cx, x, [T, H]);
    const wg = GpuTensor.upload(cx, wguH), wd = GpuTensor.upload(cx, wdnH);
    const bg = GpuTensor.upload(cx, bguH), bd = GpuTensor.upload(cx, bdnH);
    const sg = upload(cx, scale, [T, k]);
    const rec = new Recorder(cx);
    // odd seeds share one active-expert list between both GEMVs, even seeds let each build its own
    const active = seed % 2 ? activeExpertsGpu(cx, rec, grouping, I, H) : undefined;
    const hg = gemvGateUpGpu(cx, rec, xg, grouping, { kind: 'dense', w: wg }, { kind: c.kind, layout: c.layout, limit: L, alpha }, { bias: c.bias ? bg : undefined, rowScale: c.scale ? sg : undefined, active });
    const yg = gemvDownGpu(cx, rec, hg, grouping, { kind: 'dense', w: wd }, { bias: c.bias ? bd : undefined, active });
    rec.submit();
    const h = (await hg.download()).toFloat32();
    const y = (await yg.download()).toFloat32();
    for (const t of [xg, wg, wd, bg, bd, sg, hg, yg]) t.destroy();
    grouping.destroy();
    return { h, y };
  });
  expect(relErr(h, hRef), `h ${JSON.stringify(c)}`).toBeLessThan(2e-5);
  expect(relErr(y, yRef), `y ${JSON.stringify(c)}`).toBeLessThan(2e-5);
}

describe('decode GEMV (gate_up + act, down) vs a plain reference', () => {
  const cases: Case[] = [
    { T: 1, k: 2, E: 8, H: 64, I: 40, dtype: 'bfloat16', kind: 'silu', layout: 'concat', bias: false, scale: false },
    { T: 1, k: 4, E: 16, H: 37, I: 21, dtype: 'float32', kind: 'swigluoai', layout: 'interleaved', bias: true, scale: false },
    { T: 3, k: 2, E: 5, H: 48, I: 19, dtype: 'float16', kind: 'swiglu_limit', layout: 'concat', bias: true, scale: true },
    { T: 16, k: 8, E: 60, H: 72, I: 24, dtype: 'bfloat16', kind: 'silu', layout: 'concat', bias: false, scale: true },
    { T: 7, k: 1, E: 3, H: 33, I: 9, dtype: 'bfloat16', kind: 'silu', layout: 'interleaved', bias: true, scale: false },
    { T: 2, k: 3, E: 6, H: 40, I: 16, dtype: 'float32', kind: 'silu', layout: 'concat', bias: true, scale: false },
    { T: 5, k: 2, E: 4, H: 24, I: 32, dtype: 'float16', kind: 'silu', layout: 'interleaved', bias: false, scale: true },
    { T: 2, k: 8, E: 300, H: 16, I: 8, dtype: 'bfloat16', kind: 'silu', layout: 'concat', bias: false, scale: false },
    { T: 1000, k: 2, E: 4, H: 16, I: 8, dtype: 'bfloat16', kind: 'silu', layout: 'concat', bias: false, scale: false },
    // one expert (shared experts): index 9 (odd seed) shares a computed list, index 10 (even) takes the constant [0]
    { T: 1, k: 1, E: 1, H: 40, I: 24, dtype: 'bfloat16', kind: 'silu', layout: 'concat', bias: false, scale: false },
    { T: 9, k: 1, E: 1, H: 33, I: 17, dtype: 'float32', kind: 'swigluoai', layout: 'interleaved', bias: true, scale: true },
  ];
  cases.forEach((c, i) => {
    it(`T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I} ${c.dtype} ${c.kind} ${c.layout}${c.bias ? ' bias' : ''}${c.scale ? ' rowScale' : ''}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      await runCase(c, 1000 + i);
    });
  });
  it('rejects weights whose expert count disagrees with the routing', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const w = GpuTensor.empty(cx, 'bfloat16', [3, 8, 8]);
    const u = (n: number) => GpuTensor.empty(cx, 'uint32', [n]);
    const g: GroupingGpu = { T: 1, k: 1, E: 4, counts: u(4), offsets: u(5), order: u(1), position: u(1), destroy() {} };
    const x = GpuTensor.empty(cx, 'float32', [1, 8]);
    const rec = new Recorder(cx);
    expect(() => gemvGateUpGpu(cx, rec, x, g, { kind: 'dense', w }, { kind: 'silu', layout: 'concat' })).toThrow(/experts/);
    rec.submit();
    for (const t2 of [w, x, g.counts, g.offsets, g.order, g.position]) t2.destroy();
  });
});

describe('active-expert list of the decode GEMVs', () => {
  // E past the 256-lane workgroup (several scan rounds), E = 1, and random counts with many empty experts
  for (const [E, seed] of [[1, 1], [7, 2], [64, 3], [300, 4], [513, 5]] as const) {
    it(`E=${E}: the experts with rows in increasing order, then 0xffffffff in every slot up to E, and the indirect args`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(seed);
      const counts = new Uint32Array(E).map(() => (r() < 0.6 ? 0 : 1 + Math.floor(r() * 5)));
      const want: number[] = [];
      counts.forEach((c, e) => c > 0 && want.push(e));
      while (want.length < E) want.push(0xffffffff);
      const { active, args } = await gpuChecked(cx, async () => {
        const cg = upload(cx, counts, [E]);
        const rec = new Recorder(cx);
        // only counts and E are read
        const a = activeExpertsGpu(cx, rec, { T: 1, k: 1, E, counts: cg } as unknown as GroupingGpu, 24, 40);
        const keepActive = cx.device.createBuffer({ size: 4 * E, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
        const keepArgs = cx.device.createBuffer({ size: 24, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
        rec.copy(a.active, 0, keepActive, 0, 4 * E);
        rec.copy(a.args, 0, keepArgs, 0, 24);
        rec.submit();
        const out = { active: new Uint32Array((await readBuffer(cx, keepActive, 4 * E)).buffer), args: new Uint32Array((await readBuffer(cx, keepArgs, 24)).buffer) };
        keepActive.destroy();
        keepArgs.destroy();
        cg.destroy();
        return out;
      });
      const nActive = counts.filter((c) => c > 0).length;
      expect([...active]).toEqual(want);
      expect([...args]).toEqual([Math.ceil(24 / 8), nActive, 1, Math.ceil(40 / 8), nActive, 1]);
    });
  }
});
