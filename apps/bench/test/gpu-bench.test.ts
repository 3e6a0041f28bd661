import { describe, expect, it } from 'vitest';
import { readBuffer } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked } from '@webmoe/kernels-wgsl/testing';
import { parseArgs } from '../src/args.js';
import { runBench } from '../src/bench.js';
import { measureCopyGpu } from '../src/copybw.js';
import { randomGpuTensor, randomWords } from '../src/fill.js';
import { Progress } from '../src/progress.js';
import { createLayer, randomExpertWeights, runMoE } from '../src/moe-run.js';
import { createCpuLayer, cpuForward } from '../src/cpu-moe.js';
import { expertMatrixBytes, TINY, type BenchDtype, type ModelSpec } from '../src/models.js';
import { expertWeightBytes, Recorder, type GpuTensor } from '@webmoe/kernels-wgsl';
import { relErr } from '@webmoe/kernels-wgsl/testing';
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
    expect(bf.every((h) => ((h >> 7) & 0xff) >= 119 && ((h >> 7) & 0xff) <= 122)).toBe(true);
    const f8 = new Uint8Array(randomWords('e4m3', 4096, 9).buffer);
    expect(f8.every((b) => (b & 0x7f) !== 0x7f)).toBe(true);
  });

  it('copy bandwidth probe', async () => {
    const c = await measureCopyGpu(ctx!, 4 << 20, 3);
    expect(c.gbps).toBeGreaterThan(0);
    expect(c.bytes).toBe(4 << 20);
  });

  /** The caller's-view columns of a row: a chain of `stack` distinct layers (tiny layers fit), host and wall times measured. */
  function expectCallerColumns(x: ResultRow, stack: number): void {
    const what = `${x.dtype} T=${x.tokens}`;
    expect(x.note ?? '', what).not.toMatch(/caller columns failed|reuses one layer/);
    expect(x, what).toMatchObject({ stack, stackLayers: stack });
    for (const k of ['wallGpuMs', 'hostUs', 'wallStackMs', 'stackHostUs', 'wallHostMs'] as const) expect(x[k], `${what} ${k}`).toBeGreaterThan(0);
    expect(['thread-cpu', 'wall']).toContain(x.hostClock);
  }

  it('a tiny run through MoE.record (bf16, and fp8 experts passed to record) gives complete rows', async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '1,8', '--dtypes', 'bf16,fp8', '--iters', '2', '--warmup', '1', '--copy-mib', '4', '--stack', '3']);
    const r = await runBench(o, { kind: 'lavapipe', ctx: ctx!, name: ctx!.adapterName }, new Progress(6, quiet, false));
    expect(r.results).toHaveLength(4);
    for (const x of r.results) {
      expect(x.error, `${x.dtype} T=${x.tokens}`).toBeUndefined();
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.expertsHitSource).toBe('routing');
      expectCallerColumns(x, 3);
      expect(x.expertsHit).toBeGreaterThanOrEqual(2);
      expect(x.expertsHit).toBeLessThanOrEqual(Math.min(4, x.tokens * 2));
      if (ctx!.features.timestampQuery) {
        expect(x.timing).toBe('timestamp');
        expect(x.kernels.map((k) => k.name)).toEqual(expect.arrayContaining(['router', 'combine']));
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
  for (const [spec, dtype] of [[TINY, 'bf16'], [TINY, 'fp8'], [TINY, 'f16'], [gptossLike, 'bf16'], [deepseekLike, 'fp8'], [TINY, 'int4'], [gptossLike, 'mxfp4'], [deepseekLike, 'int8']] as [ModelSpec, BenchDtype][]) {
    it(`the timed GPU forward computes the same layer as the CPU reference path (${spec.name} ${dtype})`, async () => {
      const T = 5;
      const layer = await createLayer(ctx!, spec, dtype, 'kernels');
      const x = randomGpuTensor(ctx!, 'float32', [T, spec.H], 7 + T, 'f32', 'x');
      try {
        const rec = new Recorder(ctx!);
        const f = runMoE(ctx!, layer, rec, x);
        rec.submit();
        const got = (await f.out.download()).data as Float32Array;
        f.release();
        const want = cpuForward(createCpuLayer(spec, dtype), new Float32Array(randomWords('f32', T * spec.H, 7 + T).buffer), T).out;
        expect(want.some((v) => v !== 0)).toBe(true);
        expect(relErr(got, want)).toBeLessThan(1e-4);
      } finally {
        x.destroy();
        layer.destroy();
      }
    });
  }
});
