import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, combineGpu, combineRef, groupRef, uploadGrouping, type GpuContext, type GroupingRef } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { withSmallGrid } from './small-grid.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** A valid grouping of random idx, with the rows inside each expert's range shuffled (any order is allowed). */
function randomGrouping(r: () => number, T: number, k: number, E: number): GroupingRef {
  const idx = new Uint32Array(T * k);
  for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(r() * E);
  const g = groupRef(idx, T, k, E);
  for (let e = 0; e < E; e++) {
    for (let a = g.offsets[e + 1] - 1; a > g.offsets[e]; a--) {
      const b = g.offsets[e] + Math.floor(r() * (a - g.offsets[e] + 1));
      [g.order[a], g.order[b]] = [g.order[b], g.order[a]];
    }
  }
  for (let s = 0; s < g.order.length; s++) g.position[g.order[s]] = s;
  return g;
}

/** Independent f64 combine, indexing y through order (not position). */
function naive(y: Float32Array, g: GroupingRef, H: number, w: Float32Array | null, sh?: Float32Array, gl?: Float32Array): Float64Array {
  const out = new Float64Array(g.T * H);
  for (let s = 0; s < g.order.length; s++) {
    const p = g.order[s];
    const t = Math.floor(p / g.k);
    for (let h = 0; h < H; h++) out[t * H + h] += (w ? w[p] : 1) * y[s * H + h];
  }
  if (sh) for (let i = 0; i < out.length; i++) out[i] += sh[i] * (gl ? 1 / (1 + Math.exp(-gl[Math.floor(i / H)])) : 1);
  return out;
}

describe('combineRef', () => {
  it('matches an independent f64 combine', () => {
    const r = rng(2);
    const g = randomGrouping(r, 5, 3, 4);
    const H = 7;
    const y = randomArray(r, 15 * H), w = randomArray(r, 15), sh = randomArray(r, 5 * H), gl = randomArray(r, 5, -3, 3);
    expect(relErr(combineRef(y, g, w, sh, gl), naive(y, g, H, w, sh, gl))).toBeLessThan(1e-6);
    expect(relErr(combineRef(y, g, null), naive(y, g, H, null))).toBeLessThan(1e-6);
  });
});

describe('combineGpu vs combineRef', () => {
  const CASES = [
    { T: 1, k: 1, E: 1, H: 1 },
    { T: 3, k: 2, E: 8, H: 33 },
    { T: 1, k: 8, E: 60, H: 65 },
    { T: 3, k: 32, E: 512, H: 17 },
    { T: 1003, k: 8, E: 60, H: 31 },
    // rows of whole vec4s: four outputs per thread
    { T: 1, k: 2, E: 4, H: 4 },
    { T: 5, k: 3, E: 7, H: 12 },
    { T: 259, k: 8, E: 60, H: 68 },
  ];
  for (const weighted of [true, false]) {
    for (const sharedMode of ['none', 'shared', 'gated'] as const) {
      it(`weighted=${weighted} shared=${sharedMode}`, async (c) => {
        if (!ctx) return c.skip('no WebGPU adapter');
        const r = rng((weighted ? 100 : 200) + sharedMode.length);
        for (const { T, k, E, H } of CASES) {
          const g = randomGrouping(r, T, k, E);
          const y = randomArray(r, T * k * H);
          const w = weighted ? randomArray(r, T * k, 0, 1) : null;
          const sh = sharedMode !== 'none' ? randomArray(r, T * H) : undefined;
          const gl = sharedMode === 'gated' ? randomArray(r, T, -4, 4) : undefined;
          const got = await gpuChecked(ctx, async () => {
            const gg = uploadGrouping(ctx!, g);
            const up = (a: Float32Array, shape: number[]) => GpuTensor.upload(ctx!, HostTensor.fromFloat32(shape, a));
            const gy = up(y, [T * k, H]);
            const gw = w ? up(w, [T, k]) : null;
            const gs = sh ? up(sh, [T, H]) : undefined;
            const gx = gl ? up(gl, [T]) : undefined;
            const rec = new Recorder(ctx!);
            const out = combineGpu(ctx!, rec, gy, gg, gw, { shared: gs, sharedGateLogit: gx });
            rec.submit();
            const h = (await out.download()).data as Float32Array;
            for (const t of [gy, gw, gs, gx, out]) t?.destroy();
            gg.destroy();
            return h;
          });
          const want = combineRef(y, g, w, sh, gl);
          const e = relErr(got, want);
          // 5e-6: the gated shared term goes through exp(); an H200 (Vulkan) differs from V8 by ~2e-6 relative on one element
          expect(e, `T=${T} k=${k} H=${H}: rel ${e}`).toBeLessThan(5e-6);
        }
      });
    }
  }

  it('uses the pool and is bit-identical run to run', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(9);
    const pool = new BufferPool(ctx);
    const T = 40, k = 4, E = 8, H = 19;
    const g = randomGrouping(r, T, k, E);
    const y = randomArray(r, T * k * H), w = randomArray(r, T * k);
    const runs: number[][] = [];
    for (let i = 0; i < 2; i++) {
      runs.push(
        Array.from(
          await gpuChecked(ctx, async () => {
            const gg = uploadGrouping(ctx!, g);
            const gy = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T * k, H], y));
            const gw = GpuTensor.upload(ctx!, HostTensor.fromFloat32([T, k], w));
            const rec = new Recorder(ctx!);
            const out = combineGpu(ctx!, rec, gy, gg, gw, { pool });
            rec.submit();
            const h = (await out.download()).data as Float32Array;
            for (const t of [gy, gw, out]) t.destroy();
            gg.destroy();
            return h;
          }),
        ),
      );
    }
    expect(runs[0]).toEqual(runs[1]);
    expect(pool.liveCount).toBe(0);
    pool.destroy();
  });

  it('rejects bad input before recording', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = uploadGrouping(ctx, groupRef(new Uint32Array([0, 1, 1, 0]), 2, 2, 2));
    const up = (shape: number[], dtype: 'float32' | 'bfloat16' = 'float32') => GpuTensor.upload(ctx!, HostTensor.fromFloat32(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)), dtype));
    const y = up([4, 3]), y5 = up([5, 3]), yb = up([4, 3], 'bfloat16'), w = up([2, 2]), w3 = up([2, 3]), sh = up([2, 3]), sh4 = up([2, 4]), gl = up([2]), gl3 = up([3]);
    const rec = new Recorder(ctx);
    expect(() => combineGpu(ctx!, rec, yb, g, w)).toThrow(DTypeError);
    expect(() => combineGpu(ctx!, rec, y5, g, w)).toThrow(ShapeError);
    expect(() => combineGpu(ctx!, rec, y, g, w3)).toThrow(/expected shape \[2, 2\], got \[2, 3\]/);
    expect(() => combineGpu(ctx!, rec, y, g, w, { shared: sh4 })).toThrow(ShapeError);
    expect(() => combineGpu(ctx!, rec, y, g, w, { sharedGateLogit: gl })).toThrow(ValueError);
    expect(() => combineGpu(ctx!, rec, y, g, w, { shared: sh, sharedGateLogit: gl3 })).toThrow(ShapeError);
    rec.submit();
    for (const t of [y, y5, yb, w, w3, sh, sh4, gl, gl3]) t.destroy();
    g.destroy();
  });

  it('folds the grid past maxComputeWorkgroupsPerDimension', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const small = withSmallGrid(ctx, 5);
    const r = rng(80);
    const T = 100, k = 2, E = 8, H = 41;
    const g = randomGrouping(r, T, k, E);
    const y = randomArray(r, T * k * H), w = randomArray(r, T * k);
    const got = await gpuChecked(ctx, async () => {
      const gg = uploadGrouping(small, g);
      const gy = GpuTensor.upload(small, HostTensor.fromFloat32([T * k, H], y));
      const gw = GpuTensor.upload(small, HostTensor.fromFloat32([T, k], w));
      const rec = new Recorder(small);
      const out = combineGpu(small, rec, gy, gg, gw);
      rec.submit();
      const h = (await out.download()).data as Float32Array;
      for (const t of [gy, gw, out]) t.destroy();
      gg.destroy();
      return h;
    });
    expect(relErr(got, combineRef(y, g, w))).toBeLessThan(1e-6);
  });
});
