// What warmGroupedGemmFast does when the subgroup-matrix pipelines do not compile: a device that claims the feature but
// refuses its kernels (lavapipe seen through withEmulatedSubgroupMatrix, whose warm-up compiles the real builtins)
// first refuses the vector-staged tile (one warning; the scalar-staged twins would run there), then its scalar twin
// too (a second warning), and ends on the f32 kernel without an error. On its own device, so that the marks stay off
// the device the other tests share.
import { describe, it, expect, vi } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { createGpuContext, destroyExpertWeights, uploadExpertWeights } from '@webmoe/kernels-wgsl';
import { gpuRequired, withEmulatedSubgroupMatrix } from '@webmoe/kernels-wgsl/testing';
import { fastGemmKind, sgmatSupported, warmGroupedGemmFast } from '../src/kernels/grouped-gemm-fast.js';
import { SGMAT_SHAPES } from '../src/kernels/grouped-gemm-fast-shapes.js';
import { sgmatTilesOf } from '../src/kernels/plan.js';

describe('subgroup-matrix warm-up on a device that refuses the kernels', () => {
  it('warns for the vector-staged tile, then for its scalar twin, and leaves the device on the f32 kernel', async (t) => {
    const ctx = await createGpuContext().catch((e: unknown) => {
      if (gpuRequired()) throw e;
      return null;
    });
    if (!ctx) return t.skip('no WebGPU adapter');
    try {
      if (ctx.features.subgroupMatrix) return t.skip('the adapter has the subgroup-matrix kernel: its pipelines compile (the H200 runs them in the other tests)');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
      const view = withEmulatedSubgroupMatrix(ctx);
      // the planner's first tile for bf16 on this device is vector-staged (so the vector path is the one refused first)
      const first = sgmatTilesOf('bfloat16', view.limits.maxComputeWorkgroupStorageSize ?? 0).find((x) => sgmatSupported(view, x.shape));
      expect(first && SGMAT_SHAPES[first.shape].vs, 'a vector-staged tile comes first').toBe(true);
      expect(fastGemmKind(view, undefined, 'bfloat16')).toBe('subgroup-matrix');
      const [E, rows, cols] = [2, 64, 48];
      const w = uploadExpertWeights(view, { kind: 'dense', w: HostTensor.fromFloat32([E, rows, cols], new Float32Array(E * rows * cols).fill(0.5), 'bfloat16') });
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        await warmGroupedGemmFast(view, { op: 'down', w, K: cols, biasDt: 'none', xmode: 'grouped', rowScale: false });
        const said = warn.mock.calls.map((c) => String(c[0]));
        expect(said.length, said.join('\n')).toBe(2);
        expect(said[0]).toMatch(/vector-staged subgroup-matrix GEMM failed to compile; using scalar staging/);
        expect(said[1]).toMatch(/subgroup-matrix grouped GEMM failed to compile; using the f32 kernel/);
      } finally {
        warn.mockRestore();
        destroyExpertWeights(w);
      }
      expect(fastGemmKind(view, undefined, 'bfloat16')).toBe('f32');
    } finally {
      ctx.destroy();
    }
  }, 120_000);
});
