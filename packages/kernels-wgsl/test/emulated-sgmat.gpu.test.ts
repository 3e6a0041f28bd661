// withEmulatedSubgroupMatrix (testing): a context view on which the planner chooses what it chooses on the H200
// (the f16-staged subgroup-matrix GEMM for packed weights from 8 rows per expert) and whose subgroup-matrix
// dispatches run the emulated builtins, so the H200's kernel mix runs on lavapipe (sharded-quant.gpu.test.ts).
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, groupedGateUpGpu, groupedGateUpRef, quantizeExperts, uploadExpertWeights, type ExpertActivation, type GpuContext } from '@webmoe/kernels-wgsl';
import { gpuChecked, randomArray, relErr, rng, stagedTol, testGpu, withDispatchLog, withEmulatedSubgroupMatrix } from '@webmoe/kernels-wgsl/testing';
import { hostGrouping, randomIdx, uploadGrouping } from './grouped-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('withEmulatedSubgroupMatrix', () => {
  it("the H200's planner on the view: packed weights at 9 rows of one expert take the subgroup-matrix GEMM (emulated), within the f16-staged tolerance of the reference; the context itself keeps its own kernels", async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    // (NVIDIA refuses the emulation's private memory for the large tile shapes; there the real builtins run in the other tests)
    if (ctx.features.subgroupMatrix) return c.skip('the adapter has the subgroup-matrix kernel: the other tests run its real builtins');
    const view = withEmulatedSubgroupMatrix(ctx);
    expect(view.device).toBe(ctx.device);
    expect(view.features.subgroupMatrix).toBe(true);
    const r = rng(91);
    const [T, k, E, H, I] = [9, 1, 1, 16, 20];
    const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
    const host = quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, { kind: 'int_block', bits: 8, blockSize: 8 });
    const x = randomArray(r, T * H, -2, 2);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const want = groupedGateUpRef(x, g, host, undefined, act);
    const run = async (cx: GpuContext) =>
      gpuChecked(cx, () =>
        withDispatchLog(async () => {
          const rec = new Recorder(cx);
          const h = groupedGateUpGpu(cx, rec, GpuTensor.upload(cx, HostTensor.fromFloat32([T, H], x)), uploadGrouping(cx, g), uploadExpertWeights(cx, host), undefined, act);
          rec.submit();
          return (await h.download()).data as Float32Array;
        }),
      );
    const onView = await run(view);
    expect(onView.dispatched.map((d) => d.kernel)).toContain('grouped_gemm_sgmat');
    const err = relErr(onView.result, want);
    expect(err).toBeLessThan(stagedTol(onView.dispatched, 1e-5));
    expect(err, 'f16 staging shows (not the f32 kernels)').toBeGreaterThan(1e-5);
    const plain = await run(ctx);
    expect(plain.dispatched.map((d) => d.kernel)).not.toContain('grouped_gemm_sgmat');
    expect(relErr(plain.result, want)).toBeLessThan(1e-5);
  });

  it('float32 weights asked onto the subgroup-matrix GEMM: staged value by value (rounded to f16), within the staged tolerance', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    if (ctx.features.subgroupMatrix) return c.skip('the adapter has the subgroup-matrix kernel: grouped-gemm-fast runs this case on its real builtins');
    const view = withEmulatedSubgroupMatrix(ctx);
    const r = rng(92);
    const [T, k, E, H, I] = [33, 1, 3, 56, 24];
    const act: ExpertActivation = { kind: 'swiglu_limit', layout: 'concat', limit: 7 };
    const host = { kind: 'dense' as const, w: HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H, -0.3, 0.3)) };
    const x = randomArray(r, T * H, -2, 2);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const want = groupedGateUpRef(x, g, host, undefined, act);
    const { result, dispatched } = await gpuChecked(view, () =>
      withDispatchLog(async () => {
        const rec = new Recorder(view);
        const h = groupedGateUpGpu(view, rec, GpuTensor.upload(view, HostTensor.fromFloat32([T, H], x)), uploadGrouping(view, g), uploadExpertWeights(view, host), undefined, act, { tile: 'fast', fast: 'subgroup-matrix' });
        rec.submit();
        return (await h.download()).data as Float32Array;
      }),
    );
    expect(dispatched.map((d) => d.kernel)).toContain('grouped_gemm_sgmat');
    expect(relErr(result, want)).toBeLessThan(stagedTol(dispatched, 1e-5));
  });
});
