import { describe, it, expect, beforeAll } from 'vitest';
import { DTypeError, HostTensor, ShapeError, ValueError, roundTo, type DType } from '@webmoe/tensor';
import {
  BufferPool,
  GpuTensor,
  Recorder,
  warmGroupedGemm,
  groupedDownGpu,
  groupedDownRef,
  groupedGateUpGpu,
  groupedGateUpRef,
  type ExpertActivation,
  type GpuContext,
  type GroupingRef,
} from '@webmoe/kernels-wgsl';
import { pipelineCount } from '../src/runtime/kernel.js';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { hostGrouping, naiveGateUp, randInt, randomIdx, uploadGrouping } from './grouped-helpers.js';
import { planFastGemm } from '../src/kernels/grouped-gemm-fast.js';

/**
 * GPU vs reference tolerance of a call by the kernel it plans onto: the f16-staged fast kernels
 * (subgroup-matrix, the default for 16-bit weights on adapters that have it; 'f16') round x and w to f16
 * (relative 4.9e-4 per operand); every other path computes in f32.
 */
function gemmTol(kind: string | undefined): number {
  return kind === 'subgroup-matrix' || kind === 'f16' ? 2e-3 : 2e-5;
}

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type Dense = 'float32' | 'bfloat16' | 'float16';
const DTS: Dense[] = ['float32', 'bfloat16', 'float16'];
const ACTS: ExpertActivation[] = [
  { kind: 'silu', layout: 'concat' },
  { kind: 'swiglu_limit', limit: 0.9, layout: 'concat' },
  { kind: 'swigluoai', limit: 1.1, alpha: 1.702, layout: 'interleaved' },
  { kind: 'silu', layout: 'interleaved' },
  { kind: 'swigluoai', layout: 'concat' },
  { kind: 'swiglu_limit', limit: 0.5, layout: 'interleaved' },
];

interface Case {
  T: number;
  k: number;
  E: number;
  H: number;
  I: number;
  dt: Dense;
  act: ExpertActivation;
  bias: boolean;
  rowScale: boolean;
  tile?: 'decode' | 'prefill';
}

function cases(): Case[] {
  const r = rng(20261128);
  const out: Case[] = [];
  const Ts = [1, 5, 1, 5, 17, 64, 3, 9];
  for (let n = 0; n < 12; n++) {
    const E = [1, 2, 7, 16, 33][n % 5];
    const k = Math.min(E, randInt(r, 1, 4));
    out.push({
      T: Ts[n % Ts.length],
      k,
      E,
      H: randInt(r, 1, 70) | 1,
      I: randInt(r, 1, 45) | 1,
      dt: DTS[n % 3],
      act: ACTS[n % ACTS.length],
      bias: n % 2 === 0,
      rowScale: n % 3 === 1,
      tile: n % 4 === 3 ? 'prefill' : n % 4 === 2 ? 'decode' : undefined,
    });
  }
  // >= 1000 grouped rows (prefill tiles), odd sizes, zero-row experts.
  out.push({ T: 301, k: 4, E: 12, H: 37, I: 29, dt: 'bfloat16', act: ACTS[2], bias: true, rowScale: true });
  out.push({ T: 1100, k: 1, E: 5, H: 19, I: 13, dt: 'float16', act: ACTS[0], bias: false, rowScale: false });
  // Many experts, decode.
  out.push({ T: 1, k: 8, E: 520, H: 33, I: 65, dt: 'float32', act: ACTS[1], bias: true, rowScale: false });
  return out;
}

async function runGateUp(c: Case, seed: number): Promise<{ got: Float32Array; want: Float32Array; naive: Float32Array }> {
  const r = rng(seed);
  const { T, k, E, H, I } = c;
  const x = randomArray(r, T * H, -1, 1);
  const wf = roundTo(c.dt, randomArray(r, E * 2 * I * H, -0.3, 0.3));
  const w = HostTensor.fromFloat32([E, 2 * I, H], wf, c.dt);
  const bf = c.bias ? roundTo('bfloat16', randomArray(r, E * 2 * I, -0.5, 0.5)) : undefined;
  const bias = bf ? HostTensor.fromFloat32([E, 2 * I], bf, 'bfloat16') : undefined;
  const rs = c.rowScale ? randomArray(r, T * k, 0.1, 1.5) : undefined;
  const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
  const want = groupedGateUpRef(x, g, { kind: 'dense', w }, bias, c.act, rs);
  const naive = naiveGateUp(x, g, wf, bf, c.act, rs, H, I);
  let kind: string | undefined;
  const got = await gpuChecked(ctx!, async () => {
    const gx = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, H], x));
    const gw = GpuTensor.upload(ctx!, w);
    const gb = bias ? GpuTensor.upload(ctx!, bias) : undefined;
    const grs = rs ? GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, k], rs)) : undefined;
    const gg = uploadGrouping(ctx!, g);
    const rec = new Recorder(ctx!);
    kind = planFastGemm(ctx!, { tile: c.tile }, { kind: 'dense', w: gw }, T * k, E, I, H, 'gate_up')?.kind;
    const y = groupedGateUpGpu(ctx!, rec, gx, gg, { kind: 'dense', w: gw }, gb, c.act, { rowScale: grs, tile: c.tile });
    rec.submit();
    expect(y.shape).toEqual([T * k, I]);
    const out = (await y.download()).data as Float32Array;
    for (const t of [gx, gw, gb, grs, y]) t?.destroy();
    gg.destroy();
    return out;
  });
  return { got, want, naive, kind };
}

describe('groupedGateUpGpu vs reference (dense weights)', () => {
  cases().forEach((c, n) => {
    it(`T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I} ${c.dt} ${c.act.kind}/${c.act.layout} bias=${c.bias} rowScale=${c.rowScale} tile=${c.tile ?? 'auto'}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const { got, want, naive, kind } = await runGateUp(c, 1000 + n);
      expect(relErr(want, naive), 'reference vs naive').toBeLessThan(1e-6);
      expect(relErr(got, want), `GPU vs reference (fast kernel: ${kind ?? 'none'})`).toBeLessThan(gemmTol(kind));
      expect(got.every(Number.isFinite)).toBe(true);
    });
  });
});

describe('tiled GEMMs: a NaN weight stays in its own output', () => {
  // The tiled kernels stage weights past K or N as zero (declared with an explicit zero value: lavapipe kept a bare
  // array declaration's values from one loop iteration to the next in session 29's narrow linear kernel). Whatever a
  // thread staged before must not reach another row's outputs: NaN weights in one row stay in that row's outputs.
  // (Bare declarations here passed this test on lavapipe as well; it guards the containment, not that observation.)
  for (const tile of ['decode', 'prefill'] as const) {
    it(`${tile} tile, bf16 (two weights per load), K and N not multiples of the tile`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const c = ctx;
      const r = rng(4242);
      const T = 37, k = 2, E = 3, H = 29, I = 38;
      const h = randomArray(r, T * k * I, -1, 1);
      const wf = roundTo('bfloat16', randomArray(r, E * H * I, -0.3, 0.3));
      const nanRow = 3;
      for (let e = 0; e < E; e++) for (let col = 0; col < I; col += 3) wf[(e * H + nanRow) * I + col] = NaN;
      const w = HostTensor.fromFloat32([E, H, I], wf, 'bfloat16');
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const want = groupedDownRef(h, g, { kind: 'dense', w });
      const got = await gpuChecked(c, async () => {
        const gh = GpuTensor.upload(c, HostTensor.fromFloat32([T * k, I], h));
        const gw = GpuTensor.upload(c, w);
        const gg = uploadGrouping(c, g);
        const rec = new Recorder(c);
        const y = groupedDownGpu(c, rec, gh, gg, { kind: 'dense', w: gw }, undefined, { tile });
        rec.submit();
        const out = (await y.download()).data as Float32Array;
        for (const b of [gh, gw, y]) b.destroy();
        gg.destroy();
        return out;
      });
      let bad = 0;
      for (let p = 0; p < T * k; p++) {
        for (let o = 0; o < H; o++) {
          const i = p * H + o;
          if (o === nanRow) {
            if (!Number.isNaN(got[i])) bad++;
          } else if (!(Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])))) bad++;
        }
      }
      expect(bad, 'outputs wrong (NaN outside its row, or off the reference)').toBe(0);
    });
  }
});

describe('groupedDownGpu vs reference (dense weights)', () => {
  const r0 = rng(77);
  const downCases = [
    { T: 1, k: 1, E: 1, H: 9, I: 5 },
    { T: 1, k: 4, E: 9, H: 131, I: 23 },
    { T: 5, k: 2, E: 3, H: 17, I: 41 },
    { T: 13, k: 3, E: 40, H: 31, I: 7 },
    { T: 257, k: 4, E: 6, H: 25, I: 33 },
    { T: 1001, k: 1, E: 2, H: 11, I: 19 },
  ];
  downCases.forEach((dc, n) => {
    for (const dt of DTS) {
      const bias = (n + dt.length) % 2 === 0;
      const tile = n === 3 ? 'prefill' : n === 4 && dt === 'float32' ? 'decode' : undefined;
      it(`T=${dc.T} k=${dc.k} E=${dc.E} H=${dc.H} I=${dc.I} ${dt} bias=${bias} tile=${tile ?? 'auto'}`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const r = rng(Math.floor(r0() * 1e9));
        const { T, k, E, H, I } = dc;
        const h = randomArray(r, T * k * I, -1, 1);
        const wf = roundTo(dt, randomArray(r, E * H * I, -0.3, 0.3));
        const w = HostTensor.fromFloat32([E, H, I], wf, dt);
        const bt = bias ? HostTensor.fromFloat32([E, H], randomArray(r, E * H, -1, 1), 'float16') : undefined;
        const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
        const want = groupedDownRef(h, g, { kind: 'dense', w }, bt);
        // Independent check of the reference: plain loops over pairs.
        const bfl = bt?.toFloat32();
        const naive = new Float32Array(T * k * H);
        for (let e = 0; e < E; e++)
          for (let p = g.offsets[e]; p < g.offsets[e + 1]; p++)
            for (let o = 0; o < H; o++) {
              let s = bfl ? bfl[e * H + o] : 0;
              for (let c = 0; c < I; c++) s += h[p * I + c] * wf[(e * H + o) * I + c];
              naive[p * H + o] = s;
            }
        expect(relErr(want, naive)).toBeLessThan(1e-6);
        let kind: string | undefined;
        const got = await gpuChecked(ctx, async () => {
          const gh = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T * k, I], h));
          const gw = GpuTensor.upload(ctx!, w);
          kind = planFastGemm(ctx!, { tile }, { kind: 'dense', w: gw }, T * k, E, H, I, 'down')?.kind;
          const gb = bt ? GpuTensor.upload(ctx!, bt) : undefined;
          const gg = uploadGrouping(ctx!, g);
          const rec = new Recorder(ctx!);
          const y = groupedDownGpu(ctx!, rec, gh, gg, { kind: 'dense', w: gw }, gb, { tile });
          rec.submit();
          const out = (await y.download()).data as Float32Array;
          for (const x of [gh, gw, gb, y]) x?.destroy();
          gg.destroy();
          return out;
        });
        expect(relErr(got, want), `fast kernel: ${kind ?? 'none'}`).toBeLessThan(gemmTol(kind));
      });
    }
  });
});

describe('gate_up then down in one recorder', () => {
  it('matches the chained references (T=64, E=8, k=2, bf16)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const r = rng(4242);
    const T = 64, k = 2, E = 8, H = 48, I = 35;
    const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
    const x = randomArray(r, T * H);
    const wgu = HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H, -0.3, 0.3), 'bfloat16');
    const wd = HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I, -0.3, 0.3), 'bfloat16');
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const want = groupedDownRef(groupedGateUpRef(x, g, { kind: 'dense', w: wgu }, undefined, act), g, { kind: 'dense', w: wd });
    let kind: string | undefined;
    const got = await gpuChecked(ctx, async () => {
      const gx = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, H], x));
      const a = GpuTensor.upload(ctx!, wgu);
      const b = GpuTensor.upload(ctx!, wd);
      kind = planFastGemm(ctx!, {}, { kind: 'dense', w: a }, T * k, E, I, H, 'gate_up')?.kind;
      const gg = uploadGrouping(ctx!, g);
      const rec = new Recorder(ctx!);
      const h = groupedGateUpGpu(ctx!, rec, gx, gg, { kind: 'dense', w: a }, undefined, act);
      const y = groupedDownGpu(ctx!, rec, h, gg, { kind: 'dense', w: b });
      rec.submit();
      const out = (await y.download()).data as Float32Array;
      for (const z of [gx, a, b, h, y]) z.destroy();
      gg.destroy();
      return out;
    });
    expect(relErr(got, want), `fast kernel: ${kind ?? 'none'}`).toBeLessThan(gemmTol(kind));
  });
});

describe('grouped GEMM input validation (typed errors before recording)', () => {
  it('rejects bad dtypes, shapes and activation parameters', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const T = 3, k = 2, E = 4, H = 8, I = 5;
    const g = hostGrouping(randomIdx(rng(1), T, k, E), T, k, E);
    const gg = uploadGrouping(ctx, g);
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H)));
    const xb = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H), 'bfloat16'));
    const w = GpuTensor.upload(ctx, HostTensor.fromFloat32([E, 2 * I, H], new Float32Array(E * 2 * I * H), 'bfloat16'));
    const wBadH = GpuTensor.upload(ctx, HostTensor.fromFloat32([E, 2 * I, H + 1], new Float32Array(E * 2 * I * (H + 1))));
    const wInt = GpuTensor.upload(ctx, new HostTensor('int8' as DType, [E, 2 * I, H]));
    const rec = new Recorder(ctx);
    const silu: ExpertActivation = { kind: 'silu', layout: 'concat' };
    expect(() => groupedGateUpGpu(ctx!, rec, xb, gg, { kind: 'dense', w }, undefined, silu)).toThrow(DTypeError);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w: wBadH }, undefined, silu)).toThrow(/expected shape \[E=4, 2I \(even\), H=8\], got \[4, 10, 9\]/);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w: wInt }, undefined, silu)).toThrow(DTypeError);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, undefined, { kind: 'swiglu_limit', layout: 'concat' })).toThrow(ValueError);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, undefined, { kind: 'silu', layout: 'rows' as 'concat' })).toThrow(/layout/);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, x, silu)).toThrow(ShapeError);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, undefined, silu, { rowScale: x })).toThrow(ShapeError);
    expect(() => groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, undefined, silu, { actQuant: 'int8' as 'none' })).toThrow(ValueError);
    expect(() => groupedDownGpu(ctx!, rec, x, gg, { kind: 'dense', w })).toThrow(/groupedDown h: expected shape \[T\*k=6, I\], got \[3, 8\]/);
    rec.submit();
    await ctx.sync();
    for (const z of [x, xb, w, wBadH, wInt]) z.destroy();
    gg.destroy();
  });
});

describe('determinism, empty input, pool and warm-up', () => {
  it('is bit-identical run to run, T=0 gives an empty output, outputs come from the pool, warm-up compiles ahead', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const r = rng(31337);
    const T = 77, k = 3, E = 9, H = 45, I = 27;
    const act: ExpertActivation = { kind: 'swigluoai', layout: 'interleaved' };
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], randomArray(r, T * H)));
    const w = GpuTensor.upload(ctx, HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H, -0.3, 0.3), 'float16'));
    const gg = uploadGrouping(ctx, hostGrouping(randomIdx(r, T, k, E), T, k, E));
    const before = pipelineCount(ctx);
    await warmGroupedGemm(ctx, { op: 'gate_up', w: { kind: 'dense', w }, act, rowScale: false });
    const warmed = pipelineCount(ctx);
    expect(warmed).toBeGreaterThan(before);
    const pool = new BufferPool(ctx);
    const runs: Uint32Array[] = [];
    await gpuChecked(ctx, async () => {
      for (let n = 0; n < 3; n++) {
        const rec = new Recorder(ctx!);
        const h = groupedGateUpGpu(ctx!, rec, x, gg, { kind: 'dense', w }, undefined, act, { pool });
        rec.submit();
        expect(pool.liveCount).toBe(1);
        const d = await h.download();
        runs.push(new Uint32Array((d.data as Float32Array).buffer.slice(0)));
        h.destroy();
        expect(pool.liveCount).toBe(0);
      }
    });
    // The warmed variant was used: no new pipeline compiled by the runs.
    expect(pipelineCount(ctx)).toBe(warmed);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    // T = 0: an empty [0, I] output, nothing dispatched.
    const g0 = uploadGrouping(ctx, hostGrouping(new Uint32Array(0), 0, k, E));
    const x0 = GpuTensor.upload(ctx, new HostTensor('float32', [0, H]));
    const wd = GpuTensor.empty(ctx, 'bfloat16', [E, H, I]);
    const rec = new Recorder(ctx);
    const h0 = groupedGateUpGpu(ctx, rec, x0, g0, { kind: 'dense', w }, undefined, act);
    const y0 = groupedDownGpu(ctx, rec, h0, g0, { kind: 'dense', w: wd });
    rec.submit();
    expect(h0.shape).toEqual([0, I]);
    expect(y0.shape).toEqual([0, H]);
    for (const z of [x, w, wd, x0, h0, y0]) z.destroy();
    gg.destroy();
    g0.destroy();
    pool.destroy();
  });
});
