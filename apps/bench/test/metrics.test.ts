import { describe, expect, it } from 'vitest';
import { distinctExperts, expectedDistinctExperts, gbps, rowsPerExpert, tflops, work } from '../src/metrics.js';
import { expertMatrixBytes, findModel, scaled, MODELS, type BenchDtype, type ModelSpec } from '../src/models.js';
import { expertWeightBytes, gpuByteLength, type ExpertWeightsGpu, type GpuTensor } from '@webmoe/kernels-wgsl';

const mixtral = findModel('mixtral-8x7b');

describe('bytes and flops', () => {
  it('expected distinct experts for uniform routing', () => {
    expect(expectedDistinctExperts(8, 2, 1)).toBeCloseTo(2, 12);
    // T=2: 8 * (1 - (6/8)^2) = 8 * 0.4375 = 3.5
    expect(expectedDistinctExperts(8, 2, 2)).toBeCloseTo(3.5, 12);
    expect(expectedDistinctExperts(128, 8, 4096)).toBeCloseTo(128, 6);
  });
  it('distinct experts counted from routing', () => {
    expect(distinctExperts(new Uint32Array([0, 3, 3, 1, 0, 7]))).toBe(4);
    // rows per routed expert over E = 8: experts 2, 4, 5, 6 got none; slots of shared experts (index >= E) not counted
    expect(rowsPerExpert(new Uint32Array([0, 3, 3, 1, 0, 7, 8, 8]), 8)).toEqual({ min: 0, max: 2, mean: 6 / 8 });
    expect(rowsPerExpert(new Uint32Array([1, 0, 0, 1]), 2)).toEqual({ min: 2, max: 2, mean: 2 });
  });
  it('Mixtral bf16 T=1, 2 experts hit (hand computed)', () => {
    const H = 4096, I = 14336, E = 8, T = 1;
    const w = work(mixtral, 'bf16', T, 2);
    const expertBytes = 2 * 3 * H * I * 2; // two experts, 3 matrices H x I, 2 bytes
    const routerBytes = E * H * 2;
    expect(w.weightBytes).toBe(expertBytes + routerBytes);
    expect(w.actBytes).toBe(2 * T * H * 4);
    expect(w.bytes).toBe(expertBytes + routerBytes + 2 * H * 4);
    // 2*T*k*(2I*H + H*I) + router 2*T*H*E
    expect(w.flops).toBe(2 * 1 * 2 * (2 * I * H + H * I) + 2 * 1 * H * E);
    expect(w.intensity).toBeCloseTo(w.flops / w.bytes, 12);
  });
  it('shared experts, fp8 block scales and biases', () => {
    const m: ModelSpec = { ...findModel('tiny'), H: 256, I: 128, E: 4, k: 2, shared: 2, bias: true };
    const w = work(m, 'fp8', 3, 4);
    const scales = (Math.ceil(256 / 128) * Math.ceil(256 / 128) + Math.ceil(256 / 128) * Math.ceil(128 / 128)) * 4; // (2*2 + 2*1) * 4 = 24
    expect(scales).toBe(24);
    const perExpert = 3 * 256 * 128 + 24 + (2 * 128 + 256) * 4;
    const shared = 2 * 3 * 256 * 128 * 2; // bf16 shared experts in fp8 rows
    const router = 4 * 256 * 2 + 4 * 4;
    expect(w.weightBytes).toBe(4 * perExpert + shared + router);
    expect(w.flops).toBe(2 * 3 * 2 * 3 * 256 * 128 + 2 * 3 * 256 * 4 + 2 * 3 * 3 * 256 * 2 * 128);
  });
  it('int4, int8 and mxfp4 experts: packed codes + scales (hand computed), router and shared experts bf16', () => {
    const m: ModelSpec = { ...findModel('tiny'), H: 256, I: 128, E: 4, k: 2, shared: 1, bias: false };
    const H = 256, I = 128;
    const shared = 3 * H * I * 2;
    const router = 4 * H * 2;
    // int4: two codes per byte; one f16 scale per 32 inputs: gate_up [2I, H] has 2I*H/32, down [H, I] has H*I/32
    const int4 = (3 * H * I) / 2 + ((2 * I * H) / 32 + (H * I) / 32) * 2;
    const int8 = 3 * H * I + ((2 * I * H) / 32 + (H * I) / 32) * 2;
    // mxfp4: two codes per byte; one e8m0 byte per 32 inputs
    const mx = (3 * H * I) / 2 + (2 * I * H) / 32 + (H * I) / 32;
    expect(int4).toBe(49152 + 6144);
    expect(work(m, 'int4', 2, 3).weightBytes).toBe(3 * int4 + shared + router);
    expect(work(m, 'int8', 2, 3).weightBytes).toBe(3 * int8 + shared + router);
    expect(work(m, 'mxfp4', 2, 3).weightBytes).toBe(3 * mx + shared + router);
    expect(work(m, 'mxfp4', 2, 3).flops).toBe(work(m, 'bf16', 2, 3).flops);
    // a row of 48 inputs takes ceil(48/32) = 2 int scales
    expect(expertMatrixBytes('int8', 3, 48)).toEqual({ weights: 144, scales: 12 });
  });
  it('the per-expert formula agrees with expertWeightBytes of the GPU containers (real shapes)', () => {
    const t = (dtype: Parameters<typeof gpuByteLength>[0], shape: number[]) => ({ dtype, shape, byteLength: gpuByteLength(dtype, shape.reduce((a, b) => a * b, 1)) }) as unknown as GpuTensor;
    const container = (d: BenchDtype, E: number, rows: number, cols: number): ExpertWeightsGpu =>
      d === 'int4' || d === 'int8'
        ? { kind: 'int_block', bits: d === 'int4' ? 4 : 8, q: t('uint8', [E, rows, (cols * (d === 'int4' ? 4 : 8)) / 8]), scales: t('float16', [E, rows, Math.ceil(cols / 32)]), blockSize: 32 }
        : d === 'mxfp4'
          ? { kind: 'mxfp4', blocks: t('uint8', [E, rows, cols / 32, 16]), scales: t('uint8', [E, rows, cols / 32]) }
          : d === 'fp8'
            ? { kind: 'fp8_block', q: t('float8_e4m3fn', [E, rows, cols]), scaleInv: t('float32', [E, Math.ceil(rows / 128), Math.ceil(cols / 128)]), block: [128, 128] }
            : { kind: 'dense', w: t('bfloat16', [E, rows, cols]) };
    for (const name of ['gpt-oss-20b', 'qwen3-30b-a3b', 'deepseek-v2-lite', 'mixtral-8x7b']) {
      const { E, H, I } = findModel(name);
      for (const d of ['bf16', 'fp8', 'int4', 'int8', 'mxfp4'] as BenchDtype[]) {
        for (const [rows, cols] of [[2 * I, H], [H, I]]) {
          const per = expertMatrixBytes(d, rows, cols);
          const got = expertWeightBytes(container(d, E, rows, cols));
          expect({ weights: E * per.weights, scales: E * per.scales }, `${name} ${d} [${rows}, ${cols}]`).toEqual(got);
        }
      }
    }
  });
  it('rates', () => {
    expect(gbps(2e9, 1)).toBe(2000);
    expect(tflops(3e12, 1000)).toBe(3);
  });
  it('model table and scaled shapes', () => {
    expect(MODELS.map((m) => [m.name, m.H, m.I, m.E, m.k, m.shared])).toEqual([
      ['mixtral-8x7b', 4096, 14336, 8, 2, 0],
      ['qwen3-30b-a3b', 2048, 768, 128, 8, 0],
      ['gpt-oss-20b', 2880, 2880, 32, 4, 0],
      ['deepseek-v2-lite', 2048, 1408, 64, 6, 2],
      ['deepseek-v3', 7168, 2048, 256, 8, 1],
      ['kimi-k2', 7168, 2048, 384, 8, 1],
      ['llama4-maverick', 5120, 8192, 128, 1, 1],
      ['glm-4.5-air', 4096, 1408, 128, 8, 1],
      ['minimax-m2', 3072, 1536, 256, 8, 0],
      ['ernie-4.5-21b-a3b', 2560, 1536, 64, 6, 2],
      ['deepseek-v2', 5120, 1536, 160, 6, 2],
    ]);
    expect(findModel('deepseek-v2').router).toMatchObject({ kind: 'softmax_grouped', nGroup: 8, topkGroup: 3, routedScalingFactor: 16 });
    expect(findModel('ernie-4.5-21b-a3b').router.kind).toBe('softmax_biased');
    expect(findModel('kimi-k2').router).toMatchObject({ kind: 'sigmoid_grouped', nGroup: 1, topkGroup: 1, routedScalingFactor: 2.827 });
    expect(findModel('llama4-maverick')).toMatchObject({ routerWeightFirst: true, router: { kind: 'sigmoid_topk', topK: 1 } });
    expect(findModel('deepseek-v3').dtypes).toEqual(['bf16', 'fp8']);
    expect(findModel('gpt-oss-20b').dtypes).toEqual(['bf16', 'mxfp4']);
    const q = scaled(findModel('qwen3-30b-a3b'), 4);
    expect([q.name, q.H, q.I, q.E, q.k, q.router.numExperts]).toEqual(['qwen3-30b-a3b/s4', 512, 192, 32, 8, 32]);
    // routing must still choose: at least 2k experts (or all)
    expect(findModel('mixtral-8x7b/s16').E).toBe(4);
    expect(findModel('gpt-oss-20b/s8').E).toBe(8);
    const d = findModel('deepseek-v3/s64');
    expect(d.E % (d.router.nGroup ?? 1)).toBe(0);
    expect(d.E).toBeGreaterThanOrEqual(d.k);
    // the kept groups must hold k experts: topkGroup * E / nGroup >= k
    expect(((d.router.topkGroup ?? 1) * d.E) / (d.router.nGroup ?? 1)).toBeGreaterThanOrEqual(d.k);
    expect(() => findModel('nope')).toThrow(/unknown model/);
  });
});

import { finishRow } from '../src/bench.js';

describe('finishRow', () => {
  it('derives the rates and floors from the median (hand computed)', () => {
    const spec = findModel('tiny'); // H 64, I 32, E 4, k 2, 1 shared
    const row = finishRow({ model: 'tiny', tokens: 2, dtype: 'bf16', device: 'd', medianMs: 0.5, p10Ms: 0.4, p90Ms: 0.6, gbps: NaN, tflops: NaN, kernels: [] }, spec, 'bf16', 3, 'routing', 100, 2);
    const bytes = 3 * 3 * 64 * 32 * 2 + 1 * 3 * 64 * 32 * 2 + 4 * 64 * 2 + 2 * 2 * 64 * 4; // experts hit, shared, router, x+y
    const flops = 2 * 2 * 2 * 3 * 64 * 32 + 2 * 2 * 64 * 4 + 2 * 2 * 3 * 64 * 32;
    expect(row.bytes).toBe(bytes);
    expect(row.flops).toBe(flops);
    expect(row.gbps).toBeCloseTo(bytes / 0.5 / 1e6, 12);
    expect(row.tflops).toBeCloseTo(flops / 0.5 / 1e9, 15);
    expect(row.copyRatio).toBeCloseTo(bytes / 0.5 / 1e6 / 100, 12);
    expect(row.floorMs).toBeCloseTo(bytes / 100 / 1e6, 12);
    expect(row.computeFloorMs).toBeCloseTo(flops / 2 / 1e9, 15);
    expect(row.expertsHit).toBe(3);
  });
});
