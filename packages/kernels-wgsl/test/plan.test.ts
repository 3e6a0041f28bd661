// The kernel planner (src/kernels/plan.ts): the crossovers as documented, at and around each boundary.
import { describe, it, expect } from 'vitest';
import { KERNEL_CROSSOVERS, SGMAT_CHOICES, sgmatShapeFor, sgmatSplitKFor, sgmatXRowsFor, tiledGemmTile, useExpertGemv, useFastGemm, useGraphReplay, useSingleExpertGemv } from '../src/kernels/plan.js';
import { SGMAT_SHAPES } from '../src/kernels/grouped-gemm-fast-wgsl.js';

describe('kernel planner', () => {
  it('routed experts: GEMV while T <= 16 or T*k <= 8E', () => {
    expect(useExpertGemv(16, 8, 1)).toBe(true); // T <= 16 whatever the rows
    expect(useExpertGemv(17, 8, 17)).toBe(true); // 136 rows <= 8 * 17
    expect(useExpertGemv(17, 8, 16)).toBe(false); // 136 rows > 128
    expect(useExpertGemv(512, 2, 8)).toBe(false);
    expect(useExpertGemv(64, 8, 128)).toBe(true); // Qwen3-30B T=64: 4 rows per expert
  });
  it('single experts and graphs', () => {
    expect([16, 17].map(useSingleExpertGemv)).toEqual([true, false]);
    expect([1, 64, 65].map(useGraphReplay)).toEqual([true, true, false]);
  });
  it('tiled GEMM tile by rows per non-empty expert', () => {
    expect(tiledGemmTile(23, 1)).toBe('decode');
    expect(tiledGemmTile(24, 1)).toBe('prefill');
    expect(tiledGemmTile(5, 40)).toBe('decode'); // fewer rows than experts: 1 row each
    expect(tiledGemmTile(24 * 7, 7)).toBe('prefill');
  });
  it('fast GEMMs: 8 rows per expert on the subgroup-matrix kernel, 64 on the FMA kernels', () => {
    expect(KERNEL_CROSSOVERS.fastMinRowsPerExpert).toEqual({ 'subgroup-matrix': 8, f16: 64, f32: 64 });
    expect(useFastGemm('subgroup-matrix', 64, 8)).toBe(true);
    expect(useFastGemm('subgroup-matrix', 63, 8)).toBe(false);
    expect(useFastGemm('f32', 511, 8)).toBe(false);
    expect(useFastGemm('f32', 512, 8)).toBe(true);
  });
  it('subgroup-matrix choices stay inside SGMAT_CHOICES (what warmGroupedGemmFast compiles); today the measured 64 x 128 x 32 tile, gathered x, no split', () => {
    expect(SGMAT_CHOICES).toEqual({ shapes: ['m64n128k32'], xRows: ['gather'], splitK: [1] });
    for (const shape of SGMAT_CHOICES.shapes) expect(SGMAT_SHAPES[shape], shape).toBeDefined();
    // rows x experts x outputs of the benchmarked models (Mixtral, Qwen3-30B, DeepSeek-V3/e32, GPT-OSS-20B) at T = 8..4096
    for (const [H, I, E, k] of [[4096, 14336, 8, 2], [2048, 768, 128, 8], [7168, 2048, 32, 8], [2880, 2880, 32, 4]]) {
      for (const T of [8, 128, 512, 4096]) {
        const rows = T * k;
        for (const [op, N, K] of [['gate_up', I, H], ['down', H, I]] as const) {
          expect(SGMAT_CHOICES.shapes).toContain(sgmatShapeFor(rows, E, N, op));
          expect(SGMAT_CHOICES.xRows).toContain(sgmatXRowsFor(rows, K));
          expect(SGMAT_CHOICES.splitK).toContain(sgmatSplitKFor(Math.ceil(rows / 64) * Math.ceil(N / 128), K, op));
        }
      }
    }
  });
});
