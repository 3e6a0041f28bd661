import { describe, expect, it } from 'vitest';
import { readBuffer, useCombinedDownGemv, useFusedDecodeRouting } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked } from '@webmoe/kernels-wgsl/testing';
import { parseArgs } from '../src/args.js';
import { runBench } from '../src/bench.js';
import { measureCopyGpu } from '../src/copybw.js';
import { ValueError } from '@webmoe/tensor';
import { randomGpuTensor, randomWords } from '../src/fill.js';
import { Progress } from '../src/progress.js';
import { createLayer, randomExpertWeights, routingOf, runMoE, type GpuLayer } from '../src/moe-run.js';
import { CHECK_TOL, FULL_CHECK_MAX_T, checkFailure, checkForward, sampleTokens } from '../src/check.js';
import { expertMatrixBytes, findModel, TINY, type BenchDtype, type ModelSpec } from '../src/models.js';
import { expertWeightBytes, Recorder, type GpuTensor } from '@webmoe/kernels-wgsl';
import type { ResultRow } from '../src/schema.js';

// On a WebGPU adapter (lavapipe in CI). Without one, testGpu() prints a visible
// SKIPPED line, and with CI=true it fails the suite instead.
const ctx = await testGpu();
const quiet = { write: () => true };

describe.runIf(ctx)('bench on a WebGPU adapter', () => {
  it('the GPU fill kernel writes the same bit patterns as its host twin', async () => {
    for (const [dtype, kind, n] of [
      ['bfloat16', 'bf16', 1001], ['float8_e4m3fn', 'e4m3', 1003], ['float32', 'f32', 999], ['float16', 'f16', 10],
      ['uint8', 'u8', 1005], ['uint8', 'e8m0', 333], ['float16', 'i4scale', 301], ['float16', 'i8scale', 64],
    ] as const) {
      const t = await gpuChecked(ctx!, () => randomGpuTensor(ctx!, dtype, [n], 5, kind));
      const got = new Uint32Array((await readBuffer(ctx!, t.buffer, t.byteLength)).slice().buffer);
      const want = randomWords(kind, n, 5);
      expect(Array.from(got.subarray(0, want.length - 1)), kind).toEqual(Array.from(want.subarray(0, want.length - 1)));
      t.destroy();
    }
    // bf16 values are finite and small; e4m3 bytes never NaN (0x7f / 0xff)
    const bf = new Uint16Array(randomWords('bf16', 4096, 9).buffer);
    const ex = (h: number) => (h >> 7) & 0xff;
    expect(bf.every((h) => (ex(h) >= 119 && ex(h) <= 122) || ex(h) === 105)).toBe(true);
    // about one in 128 is an f16 subnormal (exponent 105)
    const tiny = bf.filter((h) => ex(h) === 105).length;
    expect(tiny).toBeGreaterThan(4096 / 128 / 2);
    expect(tiny).toBeLessThan((4096 / 128) * 2);
    const f8 = new Uint8Array(randomWords('e4m3', 4096, 9).buffer);
    expect(f8.every((b) => (b & 0x7f) !== 0x7f)).toBe(true);
  });

  it('copy bandwidth probe: single copies, and chains of copies per timed submission after a burn (per copy)', async () => {
    const c = await measureCopyGpu(ctx!, 4 << 20, 3);
    expect(c.gbps).toBeGreaterThan(0);
    expect([c.bytes, c.chain]).toEqual([4 << 20, 1]);
    const chained = await measureCopyGpu(ctx!, 4 << 20, 3, { chain: 4, burnMs: 5 });
    expect([chained.bytes, chained.chain]).toEqual([4 << 20, 4]);
    // per copy: a chain of 4 is not timed as one copy (4x the bandwidth) on any adapter
    expect(chained.gbps).toBeGreaterThan(0);
    expect(chained.gbps).toBeLessThan(3 * c.gbps);
    await expect(measureCopyGpu(ctx!, 4 << 20, 1, { chain: 0 })).rejects.toThrow(ValueError);
  });

  /** The caller's-view columns of a row: a chain of `stack` distinct layers (tiny layers fit), host and wall times measured. */
  function expectCallerColumns(x: ResultRow, stack: number): void {
    const what = `${x.dtype} T=${x.tokens}`;
    expect(x.note ?? '', what).not.toMatch(/caller columns failed|reuses one layer/);
    expect(x, what).toMatchObject({ stack, stackLayers: stack });
    for (const k of ['wallGpuMs', 'hostUs', 'wallStackMs', 'stackHostUs', 'wallHostMs', 'wallHostOutMs'] as const) expect(x[k], `${what} ${k}`).toBeGreaterThan(0);
    expect(['thread-cpu', 'wall']).toContain(x.hostClock);
  }

  it('--drain-each (each timed forward drained and read back alone) and the default (back to back, one drain) both time every forward', async () => {
    for (const extra of [[], ['--drain-each']]) {
      const o = parseArgs(['--models', 'tiny', '--tokens', '5', '--dtypes', 'bf16', '--iters', '3', '--warmup', '1', '--copy-mib', '4', '--stack', '1', ...extra]);
      const r = await runBench(o, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(2, quiet, false));
      const [x] = r.results;
      expect(x.error, extra.join(' ')).toBeUndefined();
      expect(x.timing, extra.join(' ')).toBe(ctx!.features.timestampQuery ? 'timestamp' : 'wall');
      expect(x.minMs!, extra.join(' ')).toBeGreaterThan(0);
      expect(x.check, extra.join(' ')).toMatchObject({ pass: true });
    }
  });

  it('a tiny run through MoE.record (bf16, and fp8 experts passed to record) gives complete, checked rows with consistent units', async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '1,8', '--dtypes', 'bf16,fp8', '--iters', '2', '--warmup', '1', '--copy-mib', '4', '--stack', '3']);
    const r = await runBench(o, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(6, quiet, false));
    expect(r.results.map((x) => [x.dtype, x.tokens])).toEqual([['bf16', 1], ['bf16', 8], ['fp8', 1], ['fp8', 8]]);
    const { H, I, E } = TINY;
    for (const x of r.results) {
      const what = `${x.dtype} T=${x.tokens}`;
      expect(x.error, what).toBeUndefined();
      // the row checked the forward it timed against the float64 reference, on every token (T <= 16)
      expect(x.check, what).toMatchObject({ pass: true, tol: CHECK_TOL, tokens: x.tokens });
      expect(x.check!.relErr, what).toBeLessThan(CHECK_TOL);
      expect(x.check!.experts, what).toBe(x.expertsHit);
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.p10Ms).toBeLessThanOrEqual(x.medianMs);
      expect(x.p90Ms).toBeGreaterThanOrEqual(x.medianMs);
      expect(x.expertsHitSource).toBe('routing');
      expectCallerColumns(x, 3);
      expect(x.expertsHit).toBeGreaterThanOrEqual(2);
      expect(x.expertsHit).toBeLessThanOrEqual(Math.min(E, x.tokens * 2));
      // rows per routed expert: k = 2 rows per token over E experts; as many experts with rows as were hit
      expect(x.rowsPerExpert!.mean, what).toBeCloseTo((x.tokens * 2) / E, 12);
      expect(x.rowsPerExpert!.max, what).toBeGreaterThanOrEqual(Math.ceil((x.tokens * 2) / x.expertsHit!));
      if (x.expertsHit! < E) expect(x.rowsPerExpert!.min, what).toBe(0);
      else expect(x.rowsPerExpert!.min, what).toBeGreaterThanOrEqual(1);
      // bytes by hand: hit experts (bf16: 3*H*I*2; fp8: 3*H*I codes + one 128x128 f32 block scale per matrix),
      // bf16 shared expert 3*H*I*2, bf16 router E*H*2, x and y f32
      const perExpert = x.dtype === 'bf16' ? 3 * H * I * 2 : 3 * H * I + 2 * 4;
      expect(x.weightBytes, what).toBe(x.expertsHit! * perExpert + 3 * H * I * 2 + E * H * 2);
      expect(x.bytes, what).toBe(x.weightBytes! + 2 * x.tokens * H * 4);
      expect(x.flops, what).toBe(2 * x.tokens * 2 * 3 * H * I + 2 * x.tokens * H * E + 2 * x.tokens * 3 * H * I);
      // units: GB/s = bytes / ms / 1e6, TFLOP/s = flops / ms / 1e9, ratios and floors from the run's copy bandwidth
      expect(x.gbps).toBeCloseTo(x.bytes! / x.medianMs / 1e6, 9);
      expect(x.tflops).toBeCloseTo(x.flops! / x.medianMs / 1e9, 12);
      expect(x.copyRatio).toBeCloseTo(x.gbps / r.copyGBps, 9);
      expect(x.floorMs).toBeCloseTo(x.bytes! / r.copyGBps / 1e6, 9);
      expect(x.intensity).toBeCloseTo(x.flops! / x.bytes!, 9);
      if (ctx!.features.timestampQuery) {
        expect(x.timing).toBe('timestamp');
        const names = x.kernels.map((k) => k.name);
        // few tokens route in one dispatch with the decode grouping (route_decode), more in the router kernel; the
        // combine is its own kernel unless the planner puts it into the down GEMV (useCombinedDownGemv)
        const combined = useCombinedDownGemv(x.tokens, 'auto', { software: ctx!.adapterInfo.software, packed: x.dtype !== 'bf16' });
        expect(names, what).toEqual(expect.arrayContaining([useFusedDecodeRouting(x.tokens) ? 'route_decode' : 'router', combined ? 'moe_gemv' : 'combine']));
        expect(names.includes('combine'), what).toBe(!combined);
        expect(x.kernels.reduce((s, k) => s + k.share, 0)).toBeCloseTo(1, 6);
      }
    }
    expect(r.results.every((x) => x.impl === 'moe')).toBe(true);
    expect(ctx!.takeUncapturedErrors()).toEqual([]);
  });

  it('int4, int8 and mxfp4 experts passed to MoE.record give complete rows; packed bytes as expertWeightBytes counts them', async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '3', '--dtypes', 'int4,int8,mxfp4', '--iters', '1', '--warmup', '1', '--copy-mib', '4', '--stack', '2']);
    const r = await runBench(o, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(5, quiet, false));
    expect(r.results.map((x) => [x.dtype, x.impl, x.error])).toEqual([['int4', 'moe', undefined], ['int8', 'moe', undefined], ['mxfp4', 'moe', undefined]]);
    for (const x of r.results) {
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.check, x.dtype).toMatchObject({ pass: true, tokens: 3 });
      expectCallerColumns(x, 2);
    }
    for (const d of ['int4', 'int8', 'mxfp4'] as BenchDtype[]) {
      const own: GpuTensor[] = [];
      const gu = randomExpertWeights(ctx!, d, TINY.E, 2 * TINY.I, TINY.H, 21, own, 'gu');
      const dn = randomExpertWeights(ctx!, d, TINY.E, TINY.H, TINY.I, 31, own, 'dn');
      const want = (w: typeof gu) => { const b = expertWeightBytes(w); return (b.weights + b.scales) / TINY.E; };
      const a = expertMatrixBytes(d, 2 * TINY.I, TINY.H), b = expertMatrixBytes(d, TINY.H, TINY.I);
      expect(a.weights + a.scales + b.weights + b.scales, d).toBe(want(gu) + want(dn));
      expect(gu.kind, d).toBe(d === 'mxfp4' ? 'mxfp4' : 'int_block');
      for (const t of own) t.destroy();
    }
    expect(ctx!.takeUncapturedErrors()).toEqual([]);
  });

  const gptossLike: ModelSpec = {
    ...TINY, name: 'tiny-gptoss', shared: 0, bias: true, E: 6, k: 3,
    act: { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' },
    router: { kind: 'topk_softmax', numExperts: 6, topK: 3, normTopkProb: false },
  };
  const deepseekLike: ModelSpec = {
    ...TINY, name: 'tiny-deepseek', E: 8, k: 2, shared: 1,
    router: { kind: 'sigmoid_grouped', numExperts: 8, topK: 2, normTopkProb: true, nGroup: 2, topkGroup: 1, routedScalingFactor: 2.5 },
  };
  // The path each row times (createLayer + runMoE: MoE.record with the row's dtype and packed format), at a decode T
  // (expert GEMVs) and a T that takes the grouped GEMMs and a sampled check (T > FULL_CHECK_MAX_T).
  // Llama 4 (router weight on the expert input, top-1, sigmoid) and Kimi-K2 (one routing group, scaling 2.827), scaled down
  const llama4Like = findModel('llama4-maverick/s160');
  const kimiLike = findModel('kimi-k2/s224');
  const cases = [[TINY, 'bf16'], [TINY, 'fp8'], [TINY, 'f16'], [TINY, 'f32'], [gptossLike, 'bf16'], [deepseekLike, 'fp8'], [TINY, 'int4'], [gptossLike, 'mxfp4'], [deepseekLike, 'int8'], [llama4Like, 'bf16'], [kimiLike, 'fp8']] as [ModelSpec, BenchDtype][];
  for (const [spec, dtype] of cases) {
    // dense TINY rows also at T = 130: T*k >= 64E takes the fast (register-blocked f32) prefill GEMMs
    const Ts = spec === TINY && (dtype === 'bf16' || dtype === 'f32') ? [3, 37, 130] : [3, 37];
    it(`the timed GPU forward equals the float64 reference of its own weights (${spec.name} ${dtype}, T = ${Ts.join(', ')})`, async () => {
      const layer = await createLayer(ctx!, spec, dtype);
      try {
        for (const T of Ts) {
          const { x, y, idx } = await timedForward(layer, T);
          const c = await checkForward(spec, layer.stored, x, y, idx);
          expect(c, `T=${T}: ${c.reason}`).toMatchObject({ pass: true, experts: c.expertsRouted });
          expect(c.relErr).toBeLessThan(CHECK_TOL);
          expect(c.tokens).toBe(T <= FULL_CHECK_MAX_T ? T : sampleTokens(idx, T, spec.k).length);
          if (T > FULL_CHECK_MAX_T) expect(c.tokens).toBeLessThan(T);
          // an output off in one sampled token's row fails the check
          const bad = y.slice();
          bad[(T - 1) * spec.H] += 0.05 * Math.max(...y.map(Math.abs));
          const cb = await checkForward(spec, layer.stored, x, bad, idx);
          expect(cb.pass).toBe(false);
          expect(checkFailure(cb)).toMatch(/check failed: relative error/);
        }
      } finally {
        layer.destroy();
      }
      expect(ctx!.takeUncapturedErrors()).toEqual([]);
    });
  }

  it("on a software adapter, cpuRows puts each row's CPU-path twin beside it: the same weights (the same routing), checked", async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '1,8', '--dtypes', 'bf16,int4', '--iters', '2', '--warmup', '1', '--copy-mib', '4', '--stack', '2']);
    expect(o.cpuRows).toBeUndefined(); // the CLI decides by the device
    expect(parseArgs(['--no-cpu-rows']).cpuRows).toBe(false);
    const r = await runBench({ ...o, cpuRows: true }, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(10, quiet, false));
    expect(r.results.map((x) => [x.dtype, x.tokens, x.impl])).toEqual([
      ['bf16', 1, 'moe'], ['bf16', 8, 'moe'], ['bf16', 1, 'cpu'], ['bf16', 8, 'cpu'],
      ['int4', 1, 'moe'], ['int4', 8, 'moe'], ['int4', 1, 'cpu'], ['int4', 8, 'cpu'],
    ]);
    for (const x of r.results) {
      expect(x.error, `${x.impl} ${x.dtype} T=${x.tokens}`).toBeUndefined();
      expect(x.check, `${x.impl} ${x.dtype} T=${x.tokens}`).toMatchObject({ pass: true });
    }
    // the twins route the same tokens to the same experts: the same random weights and inputs
    for (const x of r.results.filter((y) => y.impl === 'cpu')) {
      const gpu = r.results.find((y) => y.impl === 'moe' && y.dtype === x.dtype && y.tokens === x.tokens)!;
      expect(x.expertsHit, `${x.dtype} T=${x.tokens}`).toBe(gpu.expertsHit);
      expect(x.rowsPerExpert, `${x.dtype} T=${x.tokens}`).toEqual(gpu.rowsPerExpert);
      expect(x.device).toBe('cpu');
    }
  });

  it('the check reaches every routed expert: wrong weights of any one routed expert fail it', async () => {
    const spec = deepseekLike;
    const layer = await createLayer(ctx!, spec, 'bf16');
    try {
      const T = 40;
      const { x, y, idx } = await timedForward(layer, T);
      const routed = [...new Set(idx)].sort((a, b) => a - b);
      expect(routed.length).toBeGreaterThanOrEqual(4);
      for (const e of routed) {
        // the stored gate_up with expert e's bytes scaled by 2 (as if the forward had read other weights)
        const gu = layer.stored.gateUp;
        if (gu.kind !== 'dense') throw new Error('dense bf16 experts expected');
        const per = 2 * spec.I * spec.H * 2;
        const w = { ...gu.w, read: async (off: number, len: number) => {
          const b = (await gu.w.read(off, len)).slice();
          if (off === e * per) for (let i = 1; i < b.length; i += 2) b[i] = (b[i] & 0x80) | Math.min(0x7f, (b[i] & 0x7f) + 1); // bf16 exponent high bits: roughly x4
          return b;
        } };
        const c = await checkForward(spec, { ...layer.stored, gateUp: { kind: 'dense', w } }, x, y, idx);
        expect(c.pass, `expert ${e}`).toBe(false);
      }
    } finally {
      layer.destroy();
    }
  });
});

/** One forward of the timed path on the bench's input for T tokens: x, y and the routing, on the host. */
async function timedForward(layer: GpuLayer, T: number): Promise<{ x: Float32Array; y: Float32Array; idx: Uint32Array }> {
  const xg = randomGpuTensor(ctx!, 'float32', [T, layer.spec.H], 7 + T, 'f32', 'x');
  try {
    const rec = new Recorder(ctx!);
    const f = runMoE(ctx!, layer, rec, xg);
    rec.submit();
    const y = (await f.out.download()).data as Float32Array;
    f.release();
    const idx = await routingOf(ctx!, layer, xg, new Recorder(ctx!));
    return { x: (await xg.download()).data as Float32Array, y, idx };
  } finally {
    xg.destroy();
  }
}
