// The kernel planner (src/kernels/plan.ts): the crossovers as documented, at and around each boundary.
import { describe, it, expect } from 'vitest';
import { KERNEL_CROSSOVERS, tiledGemmTile, useExpertGemv, useFastGemm, useGraphReplay, useSingleExpertGemv } from '../src/kernels/plan.js';

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
});
