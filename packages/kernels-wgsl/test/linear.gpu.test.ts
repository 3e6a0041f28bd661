import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, DTypeError, ShapeError, ValueError, type DType } from '@webmoe/tensor';
import { GpuTensor, Recorder, BufferPool, LINEAR_KERNELS, linearGpu, linearRef, type GpuContext, type LinearPath, type SkinnyTokens } from '@webmoe/kernels-wgsl';
import { KERNEL_CROSSOVERS, linearPath } from '../src/kernels/plan.js';
import { testGpu, gpuChecked, rng, randomArray, relErr, maxAbsDiff, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { withSmallGrid } from './small-grid.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** Independent f64 matmul on f32 values (not linearRef) to check the reference itself. */
function naive(x: Float32Array, T: number, wf: Float32Array, N: number, K: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    let s = b ? b[n] : 0;
    for (let k = 0; k < K; k++) s += x[t * K + k] * wf[n * K + k];
    y[t * N + n] = s;
  }
  return y;
}

/** Runs linearGpu in the contract's call form (bias positional) or, with `optsForm`, with `{ bias, pool }`. */
async function runLinear(c: GpuContext, x: Float32Array, T: number, w: HostTensor, bias?: HostTensor, pool?: BufferPool, optsForm = false, path?: LinearPath, skinnyTokens?: SkinnyTokens): Promise<Float32Array> {
  return gpuChecked(c, async () => {
    const K = w.shape[1];
    const gx = GpuTensor.upload(c, HostTensor.fromFloat32([T, K], x));
    const gw = GpuTensor.upload(c, w);
    const gb = bias ? GpuTensor.upload(c, bias) : undefined;
    const rec = new Recorder(c);
    const y = optsForm || path ? linearGpu(c, rec, gx, gw, { bias: gb, pool, path, skinnyTokens }) : linearGpu(c, rec, gx, gw, gb ?? null, { pool });
    rec.submit();
    const h = await y.download();
    for (const t of [gx, gw, gb, y]) t?.destroy();
    return h.data as Float32Array;
  });
}

describe('linearRef', () => {
  it('matches a plain f64 matmul (bf16 weights converted exactly)', () => {
    const r = rng(1);
    const T = 5, K = 13, N = 7;
    const x = randomArray(r, T * K);
    const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
    const b = HostTensor.fromFloat32([N], randomArray(r, N), 'float16');
    const want = naive(x, T, w.toFloat32(), N, K, b.toFloat32());
    expect(relErr(linearRef(x, T, w, b), want)).toBeLessThan(1e-6);
    // hand-checked 1x2 @ 2x1
    expect(Array.from(linearRef(new Float32Array([1, 2]), 1, HostTensor.fromFloat32([1, 2], [3, 4])))).toEqual([11]);
  });
});

const CASES: { T: number; K: number; N: number }[] = [
  { T: 1, K: 1, N: 1 },
  { T: 1, K: 37, N: 65 },
  { T: 1, K: 256, N: 33 },
  { T: 3, K: 63, N: 17 },
  { T: 8, K: 130, N: 9 },
  { T: 9, K: 31, N: 70 },
  { T: 32, K: 2050, N: 3 },
  { T: 33, K: 40, N: 12 },
  { T: 77, K: 100, N: 129 },
  { T: 1003, K: 45, N: 67 },
  // few output tiles and long K: the tiled path splits K (3 slices, odd K; 16 slices, a last slice shorter)
  { T: 70, K: 1001, N: 37 },
  { T: 129, K: 4100, N: 300 },
];

describe('linearGpu vs linearRef', () => {
  for (const wd of ['float32', 'bfloat16', 'float16'] as DType[]) {
    for (const bd of ['none', 'float32', 'bfloat16', 'float8_e4m3fn'] as const) {
      it(`w ${wd}, bias ${bd}, random shapes`, async (c) => {
        if (!ctx) return c.skip('no WebGPU adapter');
        const r = rng(wd.length * 97 + bd.length);
        for (const { T, K, N } of CASES) {
          if (bd !== 'none' && bd !== 'float32' && T > 100 && wd !== 'bfloat16') continue; // keep the big case to a few combos (lavapipe is slow)
          const x = randomArray(r, T * K);
          const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), wd);
          const b = bd === 'none' ? undefined : HostTensor.fromFloat32([N], randomArray(r, N, -2, 2), bd);
          const got = await runLinear(ctx, x, T, w, b);
          const want = linearRef(x, T, w, b);
          const e = relErr(got, want);
          expect(e, `T=${T} K=${K} N=${N} rel=${e} maxabs=${maxAbsDiff(got, want)}`).toBeLessThan(1e-5);
        }
      });
    }
  }

  it('uses the pool for its output and is bit-identical run to run', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(5);
    const pool = new BufferPool(ctx);
    for (const T of [2, 40]) {
      const K = 33, N = 21;
      const x = randomArray(r, T * K);
      const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
      const bias = HostTensor.fromFloat32([N], randomArray(r, N), 'bfloat16');
      const a = await runLinear(ctx, x, T, w, bias, pool);
      const b = await runLinear(ctx, x, T, w, bias, pool, true);
      expect(Array.from(a)).toEqual(Array.from(b));
    }
    expect(pool.liveCount).toBe(0);
    expect(pool.freeByteCount).toBeGreaterThan(0);
    pool.destroy();
  });

  it("takes the planner's kernel on each side of its crossovers (linearPath), right on each", async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const r = rng(21);
    const sk = KERNEL_CROSSOVERS.linearSkinny[cx.adapterInfo.software ? 'software' : 'gpu'];
    // [T, K, N]: narrow at many tokens; T * N at and past maxTokenOutputs (GPUs); the widest skinny N and one past it
    const line = Number.isFinite(sk.maxTokenOutputs) ? sk.maxTokenOutputs / 128 : 256;
    for (const [T, K, N] of [
      [600, 260, sk.narrowOutputs],
      [line, 130, 128],
      [line + 1, 130, 128],
      [3, 4096, sk.maxOutputs],
      [33, 132, sk.maxOutputs + 1],
      [32, 4096, sk.maxOutputs + 1],
    ] as const) {
      const x = randomArray(r, T * K);
      const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
      const { result: got, dispatched } = await withDispatchLog(() => runLinear(cx, x, T, w));
      expect(dispatched[0].variant.path, `T=${T} K=${K} N=${N}`).toBe(linearPath(T, N, cx.adapterInfo.software));
      expect(relErr(got, linearRef(x, T, w)), `T=${T} K=${K} N=${N}`).toBeLessThan(1e-5);
    }
  });

  it('gives linearRef\'s result on every path, forced (odd T, N and K, every weight dtype, a bias)', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const r = rng(23);
    const shapes = [
      { T: 1, K: 4, N: 1 },
      { T: 5, K: 12, N: 9 },
      { T: 33, K: 260, N: 7 },
      { T: 37, K: 4100, N: 8 },
      { T: 131, K: 132, N: 17 },
      { T: 70, K: 1001, N: 33 },
    ];
    for (const wd of ['float32', 'bfloat16', 'float16'] as DType[]) {
      // the skinny kernel with each of its tokens per workgroup
      for (const { path, skinnyTokens: tw } of LINEAR_KERNELS) {
        for (const { T, K, N } of shapes) {
          const x = randomArray(r, T * K);
          const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), wd);
          const b = HostTensor.fromFloat32([N], randomArray(r, N, -2, 2), 'bfloat16');
          const { result: got, dispatched } = await withDispatchLog(() => runLinear(ctx!, x, T, w, b, undefined, false, path, tw));
          const want = linearRef(x, T, w, b);
          expect(relErr(got, want), `${path}${tw ?? ''} w ${wd} T=${T} K=${K} N=${N}`).toBeLessThan(1e-5);
          // the skinny kernel reads 4 columns at a time exactly where K % 4 == 0 (both of its loops reached)
          if (path === 'skinny') expect(dispatched.map((d) => [d.variant.vec4 === true, d.variant.tw]), `T=${T} K=${K}`).toEqual([[K % 4 === 0, tw]]);
        }
      }
    }
  });

  it('rejects an unknown path or skinny token count before allocating or recording anything', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const x = GpuTensor.upload(cx, HostTensor.fromFloat32([40, 6], new Float32Array(240)));
    const w = GpuTensor.upload(cx, HostTensor.fromFloat32([8, 6], new Float32Array(48), 'bfloat16'));
    const pool = new BufferPool(cx);
    const { dispatched } = await withDispatchLog(async () => {
      const rec = new Recorder(cx);
      expect(() => linearGpu(cx, rec, x, w, { path: 'narrow' as LinearPath, pool })).toThrow(ValueError);
      expect(() => linearGpu(cx, rec, x, w, { path: 'skinny', skinnyTokens: 3 as SkinnyTokens, pool })).toThrow(ValueError);
      rec.submit();
    });
    expect(dispatched).toEqual([]);
    expect(pool.liveCount, 'no output allocated').toBe(0);
    pool.destroy();
    x.destroy();
    w.destroy();
  });

  it('the tiled kernel splits K where the tiles are few (a router at T = 128: 8 tiles, K 7168) and not where they are many', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const cx = ctx;
    const r = rng(9);
    for (const [T, K, N, split] of [
      [128, 7168, 256, true],
      [40, 600, 120, true],
      [2000, 96, 700, false],
    ] as const) {
      const x = randomArray(r, T * K);
      const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
      const bias = HostTensor.fromFloat32([N], randomArray(r, N), 'float32');
      // the tiled kernel forced (the planner gives software adapters the skinny kernel for these routers)
      const { result: got, dispatched } = await withDispatchLog(() => runLinear(cx, x, T, w, bias, undefined, false, 'tiled'));
      expect(dispatched.map((d) => d.kernel), `T=${T} K=${K} N=${N}`).toEqual(split ? ['linear', 'linear_splitk_reduce'] : ['linear']);
      expect(relErr(got, linearRef(x, T, w, bias)), `T=${T} K=${K} N=${N}`).toBeLessThan(1e-5);
    }
  });

  it('rejects bad shapes and dtypes before recording', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([2, 3], new Float32Array(6)));
    const xb = GpuTensor.upload(ctx, HostTensor.fromFloat32([2, 3], new Float32Array(6), 'bfloat16'));
    const w = GpuTensor.upload(ctx, HostTensor.fromFloat32([4, 3], new Float32Array(12)));
    const w8 = GpuTensor.upload(ctx, HostTensor.fromFloat32([4, 3], new Float32Array(12), 'float8_e4m3fn'));
    const wk = GpuTensor.upload(ctx, HostTensor.fromFloat32([4, 5], new Float32Array(20)));
    const b5 = GpuTensor.upload(ctx, HostTensor.fromFloat32([5], new Float32Array(5)));
    const bi = GpuTensor.upload(ctx, HostTensor.fromFloat32([4], new Float32Array(4), 'int32'));
    const rec = new Recorder(ctx);
    expect(() => linearGpu(ctx!, rec, xb, w)).toThrow(DTypeError);
    expect(() => linearGpu(ctx!, rec, x, w8)).toThrow(DTypeError);
    expect(() => linearGpu(ctx!, rec, x, wk)).toThrow(ShapeError);
    expect(() => linearGpu(ctx!, rec, x, wk)).toThrow(/expected shape \[4, 3\], got \[4, 5\]/);
    expect(() => linearGpu(ctx!, rec, x, w, { bias: b5 })).toThrow(ShapeError);
    expect(() => linearGpu(ctx!, rec, x, w, b5)).toThrow(ShapeError);
    expect(() => linearGpu(ctx!, rec, x, w, { bias: bi })).toThrow(DTypeError);
    rec.submit();
    for (const t of [x, xb, w, w8, wk, b5, bi]) t.destroy();
  });

  it('folds the grid past maxComputeWorkgroupsPerDimension (every path)', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const small = withSmallGrid(ctx, 5);
    const r = rng(77);
    // each kernel forced with 6-25 workgroups: more than one row of 5, at most 5 x 5 (the skinny one at each of its
    // tokens per workgroup: the default count depends on the adapter, 1 on GPUs for so few workgroups)
    const shape = ({ path, skinnyTokens: tw }: (typeof LINEAR_KERNELS)[number]) =>
      path === 'gemv'
        ? { T: 2, K: 19, N: 11 } // 22 workgroups
        : path === 'tiled'
          ? { T: 200, K: 21, N: 130 } // 4 x 3 tiles
          : { T: 5 * (tw ?? 1), K: 24, N: 17 }; // 5 token blocks x 3 output blocks
    for (const kernel of LINEAR_KERNELS) {
      const { T, K, N } = shape(kernel);
      const x = randomArray(r, T * K);
      const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), 'bfloat16');
      const got = await runLinear(small, x, T, w, undefined, undefined, false, kernel.path, kernel.skinnyTokens);
      expect(relErr(got, linearRef(x, T, w)), `${kernel.path}${kernel.skinnyTokens ?? ''} T=${T} N=${N}`).toBeLessThan(1e-5);
    }
  });
});
