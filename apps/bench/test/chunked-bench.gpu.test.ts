// The bench on layers whose expert stacks are split over several buffers (the full-size models on the H200: DeepSeek-V3,
// Kimi-K2, Llama-4-Maverick; here the binding limit is lowered so that scaled-down shapes split): weights generated
// chunk by chunk on the GPU, the row's float64 check reading the routed experts back from the chunks, gpuBytes within
// 2% of the packed bytes plus scales, and rows that say their memory and chunk counts.
import { describe, expect, it } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { destroyExpertWeights, quantizeExperts, uploadExpertStack, type ExpertQuantFormat, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { testGpu, withMaxBindingBytes, rng, randomArray, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { parseArgs } from '../src/args.js';
import { runBench } from '../src/bench.js';
import { Progress } from '../src/progress.js';
import { createLayer, runMoE, routingOf } from '../src/moe-run.js';
import { CHECK_TOL, checkForward, storedGpuExperts } from '../src/check.js';
import { randomGpuTensor } from '../src/fill.js';
import { expertMatrixBytes, findModel, TINY, type BenchDtype, type ModelSpec } from '../src/models.js';
import { readExpertBytes } from '../src/stored.js';
import { GPU_BYTES_SLACK, layerMemory } from '../src/expert-gen.js';
import { Recorder } from '@webmoe/kernels-wgsl';

const ctx = await testGpu();
const quiet = { write: () => true };

const deepseekLike: ModelSpec = {
  ...TINY, name: 'tiny-deepseek', H: 256, I: 256, E: 8, k: 2, shared: 1,
  router: { kind: 'sigmoid_grouped', numExperts: 8, topK: 2, normTopkProb: true, nGroup: 2, topkGroup: 1, routedScalingFactor: 2.5 },
};
const gptossLike: ModelSpec = {
  ...TINY, name: 'tiny-gptoss', shared: 0, bias: true, E: 6, k: 3,
  act: { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' },
  router: { kind: 'topk_softmax', numExperts: 6, topK: 3, normTopkProb: false },
};

/** Bytes of one expert's gate_up codes in `dtype`. */
const guExpertBytes = (s: ModelSpec, d: BenchDtype) => expertMatrixBytes(d, 2 * s.I, s.H).weights;

describe.runIf(ctx)('bench layers split over buffers', () => {
  it('the check reads a chunked stack as the unsplit one: every expert, every format and layout, experts cut in pieces', async () => {
    const E = 5;
    const fmts: (ExpertQuantFormat | 'bf16')[] = ['bf16', { kind: 'fp8_block', dtype: 'float8_e4m3fn', block: [128, 128] }, { kind: 'mxfp4' }, { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }];
    for (const fmt of fmts) {
      for (const layout of ['concat', 'interleaved', 'rows'] as const) {
        if (fmt !== 'bf16' && fmt.kind === 'fp8_block' && layout !== 'concat') continue; // an fp8 split inside an expert keeps 128-row blocks: concat only
        const [rows, cols] = layout === 'rows' ? [96, 256] : [512, 96];
        const w = randomArray(rng(rows + cols), E * rows * cols, 0.5);
        const host: ExpertWeightsHost = fmt === 'bf16' ? { kind: 'dense', w: HostTensor.fromFloat32([E, rows, cols], w).cast('bfloat16') } : quantizeExperts(w, E, rows, cols, fmt);
        const per = Math.max(...Object.values(host).filter((t): t is HostTensor => t instanceof HostTensor).map((t) => t.byteLength / E));
        const whole = uploadExpertStack(ctx!, host, { layout });
        const split = uploadExpertStack(ctx!, host, { layout, maxBindingBytes: Math.ceil((0.6 * per) / 4) * 4 });
        try {
          expect(split.weights.kind).toBe('chunked');
          if (split.weights.kind === 'chunked') expect(split.weights.chunks.length).toBeGreaterThan(E);
          const [a, b] = [storedGpuExperts(whole.weights), storedGpuExperts(split.weights)];
          for (let e = 0; e < E; e++) {
            expect(await readExpertBytes(b, e, rows, cols), `${JSON.stringify(fmt)} ${layout} expert ${e}`).toEqual(await readExpertBytes(a, e, rows, cols));
          }
        } finally {
          destroyExpertWeights(whole.weights);
          destroyExpertWeights(split.weights);
        }
      }
    }
  });

  const cases: [ModelSpec, BenchDtype, number][] = [
    [deepseekLike, 'bf16', 2.5], // several whole experts per chunk
    [deepseekLike, 'fp8', 0.6], // every gate_up expert cut at its 128-row blocks
    [TINY, 'int4', 0.6],
    [gptossLike, 'mxfp4', 0.6], // interleaved gate_up with biases in the chunks
    [findModel('kimi-k2/s224'), 'fp8', 2.5],
    [findModel('llama4-maverick/s160'), 'bf16', 0.6],
  ];
  for (const [spec, dtype, experts] of cases) {
    it(`${spec.name} ${dtype}, ${experts} gate_up experts per binding: the timed forward passes its check; memory within ${GPU_BYTES_SLACK * 100}% of the packed bytes`, async () => {
      const small = withMaxBindingBytes(ctx!, Math.ceil((experts * guExpertBytes(spec, dtype)) / 4) * 4);
      const layer = await createLayer(small, spec, dtype);
      try {
        const m = layer.memory!;
        expect(m.chunks.gateUp, 'gate_up split').toBeGreaterThan(1);
        if (experts < 1) expect(m.chunks.gateUp).toBeGreaterThan(spec.E);
        expect(m.gpu.expertWeights + m.gpu.expertScales).toBeGreaterThanOrEqual(m.packed);
        expect(m.gpu.expertWeights + m.gpu.expertScales).toBeLessThanOrEqual((1 + GPU_BYTES_SLACK) * m.packed);
        for (const T of [3, 37]) {
          const xg = randomGpuTensor(small, 'float32', [T, spec.H], 7 + T, 'f32', 'x');
          try {
            const rec = new Recorder(small);
            // the kernels dispatched decide the tolerance: from 8 rows per expert an adapter with subgroup matrices
            // (the H200) takes the f16-staged GEMMs (T = 37 here), which round x and w to f16
            const { result: f, dispatched } = await withDispatchLog(async () => runMoE(small, layer, rec, xg));
            rec.submit();
            const y = (await f.out.download()).data as Float32Array;
            f.release();
            const idx = await routingOf(small, layer, xg, new Recorder(small));
            const x = (await xg.download()).data as Float32Array;
            const c = await checkForward(spec, layer.stored, x, y, idx, stagedTol(dispatched, CHECK_TOL));
            expect(c, `T=${T}: ${c.reason}`).toMatchObject({ pass: true, experts: c.expertsRouted });
            // an output off in one token's row fails it (the check is not vacuous on chunked stacks)
            const bad = y.slice();
            bad[(T - 1) * spec.H + 1] += 0.05 * Math.max(...y.map(Math.abs));
            expect((await checkForward(spec, layer.stored, x, bad, idx, stagedTol(dispatched, CHECK_TOL))).pass).toBe(false);
          } finally {
            xg.destroy();
          }
        }
      } finally {
        layer.destroy();
      }
      expect(ctx!.takeUncapturedErrors()).toEqual([]);
    }, 300_000);
  }

  it('layerMemory: experts holding fewer or more bytes than packed + 2% fail the layer', async () => {
    const layer = await createLayer(ctx!, deepseekLike, 'fp8');
    try {
      const m = layer.memory!;
      expect(() => layerMemory({ ...deepseekLike, I: deepseekLike.I + 32 }, 'fp8', layer.moe!)).toThrow(/expected the packed/);
      expect(() => layerMemory({ ...deepseekLike, E: 7 }, 'fp8', layer.moe!)).toThrow(/expected the packed/);
      expect(layerMemory(deepseekLike, 'fp8', layer.moe!).packed).toBe(m.packed);
    } finally {
      layer.destroy();
    }
  });

  it('runBench rows on a chunked layer: checked, with memory and chunk counts', async () => {
    const o = parseArgs(['--models', 'tiny', '--tokens', '3', '--dtypes', 'bf16', '--iters', '1', '--warmup', '1', '--copy-mib', '4', '--stack', '2']);
    const small = withMaxBindingBytes(ctx!, Math.ceil((2 * guExpertBytes(TINY, 'bf16')) / 4) * 4);
    const lines: string[] = [];
    const r = await runBench(o, { kind: 'lavapipe', ctx: small, name: small.adapterName }, new Progress(5, { write: (s: string) => lines.push(s) }, false));
    const row = r.results[0];
    expect(row.error).toBeUndefined();
    expect(row.check?.pass).toBe(true);
    expect(row.chunks).toEqual({ gateUp: 2, down: 1 });
    expect(row.gpuBytes).toBeGreaterThan(row.packedBytes!);
    expect(lines.join('')).toMatch(/tiny bf16: .* GB on the GPU .*gate_up 2 \+ down 1 chunks/);
    void quiet;
  });
});
