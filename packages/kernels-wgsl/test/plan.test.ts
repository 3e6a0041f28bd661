// The kernel planner (src/kernels/plan.ts): the crossovers as documented, at and around each boundary.
import { describe, it, expect } from 'vitest';
import { ValueError } from '@webmoe/tensor';
import { GEMV_PACKED_KERNELS, KERNEL_CROSSOVERS, SGMAT_CHOICES, gemvDenseKernelFor, gemvPackedKernelFor, chooseFastGemmKind, useCombinedDownGemv, useSharedExpertSlots, sharedRowsFitOnePass, sgmatValueDecodeFor, sgmatWideLoadsFor, gemvRowsPerPass, linearPath, linearSkinnyTokens, planExpertGemms, sgmatScalarShapeFor, sgmatSplitKFor, sgmatTailFor, sgmatTileFor, sgmatTilesOf, tiledGemmTile, useExpertGemv, useFastGemm, useRouterLinearInRouting, useStackGraph, useSingleExpertGemv } from '../src/kernels/plan.js';
import { plannedKernel, type GemvWeights } from '../src/kernels/moe-gemv.js';
import { rowsWorkgroupBytes } from '../src/kernels/moe-gemv-rows.js';
import { withSgmatSplitKRule, withSgmatTileBands } from '../src/testing.js';
import { SGMAT_SHAPES, sgmatLayout, sgmatScalarTwin, type SgmatShapeName } from '../src/kernels/grouped-gemm-fast-shapes.js';

describe('kernel planner', () => {
  it("the router linear inside route_decode: one token, at most 128 experts and the adapter kind's weights (session 39's measurement)", () => {
    const { gpu, software } = KERNEL_CROSSOVERS.routerLinearInRouting;
    // GPUs: Mixtral's 8 x 4096 in (faster on the H100), GPT-OSS-20B's 32 x 2880 out (level), DeepSeek-V2-Lite's and
    // Qwen3's out (slower)
    expect(useRouterLinearInRouting(1, 8, 4096)).toBe(true);
    expect(useRouterLinearInRouting(1, 32, 2880)).toBe(false);
    expect(useRouterLinearInRouting(1, 64, 2048)).toBe(false);
    expect(useRouterLinearInRouting(1, 128, 2048)).toBe(false);
    expect(useRouterLinearInRouting(1, 16, gpu.maxWeights / 16)).toBe(true); // at the bound
    expect(useRouterLinearInRouting(1, 16, gpu.maxWeights / 16 + 1)).toBe(false);
    // software adapters: to Qwen3's 128 x 2048 (faster on lavapipe)
    expect(useRouterLinearInRouting(1, 128, 2048, true)).toBe(true);
    expect(useRouterLinearInRouting(1, 128, software.maxWeights / 128 + 1, true)).toBe(false);
    // one token only; at most 128 experts whatever the weights
    expect(useRouterLinearInRouting(2, 8, 64)).toBe(false);
    expect(useRouterLinearInRouting(1, 129, 8, true)).toBe(false);
  });

  it('routed experts: GEMV while T <= 16 or T*k <= 8E', () => {
    expect(useExpertGemv(16, 8, 1)).toBe(true); // T <= 16 whatever the rows
    expect(useExpertGemv(17, 8, 18)).toBe(true); // 136 rows < 8 * 18
    expect(useExpertGemv(17, 8, 17)).toBe(false); // 136 rows = 8 per expert: the matrix GEMMs
    expect(useExpertGemv(17, 8, 16)).toBe(false); // 136 rows > 128
    expect(useExpertGemv(512, 2, 8)).toBe(false);
    expect(useExpertGemv(64, 8, 128)).toBe(true); // Qwen3-30B T=64: 4 rows per expert
  });
  it('single experts and graphs', () => {
    expect([16, 17].map((T) => useSingleExpertGemv(T))).toEqual([true, false]);
    expect([1, 64, 65].map(useStackGraph)).toEqual([true, true, false]);
  });
  it('tiled GEMM tile by rows per non-empty expert', () => {
    expect(tiledGemmTile(23, 1)).toBe('decode');
    expect(tiledGemmTile(24, 1)).toBe('prefill');
    expect(tiledGemmTile(5, 40)).toBe('decode'); // fewer rows than experts: 1 row each
    expect(tiledGemmTile(24 * 7, 7)).toBe('prefill');
  });
  it('packed decode GEMV kernel: rows2 at one row per pass, rows4 above, int4 and MXFP4 rows2i; the split-K candidates off until measured', () => {
    expect(gemvPackedKernelFor(1)).toBe('rows2');
    expect(gemvPackedKernelFor(4)).toBe('rows4');
    expect([gemvPackedKernelFor(1, { format: 'int4' }), gemvPackedKernelFor(4, { format: 'int4' })]).toEqual(['rows2i', 'rows2i']);
    expect([gemvPackedKernelFor(1, { format: 'mxfp4' }), gemvPackedKernelFor(4, { format: 'mxfp4' })]).toEqual(['rows2i', 'rows2i']);
    expect([gemvPackedKernelFor(1, { format: 'fp8_e4m3' }), gemvPackedKernelFor(4, { format: 'int8' })]).toEqual(['rows2', 'rows4']);
    // off: even a one-workgroup call over long rows keeps the default
    expect(KERNEL_CROSSOVERS.gemvPackedSplitK.maxWorkgroups).toBe(0);
    expect(gemvPackedKernelFor(1, { call: { workgroups: 1, cols: 1 << 20 } })).toBe('rows2');
    const own = Object.values(KERNEL_CROSSOVERS.gemvPackedKernel.byFormat).flatMap((k) => [k.oneRow, k.moreRows, ...(k.longRows ? [k.longRows.oneRow, ...(k.longRows.down ? [k.longRows.down] : [])] : [])]);
    const named = [KERNEL_CROSSOVERS.gemvPackedKernel.oneRow, KERNEL_CROSSOVERS.gemvPackedKernel.moreRows, ...own, KERNEL_CROSSOVERS.gemvPackedSplitK.oneRow, KERNEL_CROSSOVERS.gemvPackedSplitK.moreRows];
    for (const k of named) expect(GEMV_PACKED_KERNELS, k).toContain(k);
    expect(KERNEL_CROSSOVERS.gemvPackedSplitK.oneRow).toMatch(/^rows\dk\d$/);
  });
  it("plannedKernel: a long-row kernel (staged x, x in registers) only where the device's workgroup memory holds it", () => {
    // MXFP4 (blocks of 32), 4096 columns: the row-blocked path
    const gw = { E: 8, rows: 512, cols: 4096, wfmt: 'mxfp4', sdtype: 'uint8', su: [128, 0, 0, 0] } as unknown as GemvWeights;
    const slice = rowsWorkgroupBytes({ wdtype: 'mxfp4', mr: 1, xs: true });
    const inRegisters = rowsWorkgroupBytes({ wdtype: 'mxfp4', mr: 1, xr: true });
    expect([slice, inRegisters]).toEqual([8192 + 64 * 9 * 16, 8192 + 256 * 4]);
    for (const mode of ['gate_up', 'down'] as const) {
      // a software adapter: the staged 'rows4s' where its slice fits, else 'rows4'
      expect(plannedKernel(1, 2, gw, 256, { software: true, workgroupBytes: slice }, mode)).toBe('rows4s');
      expect(plannedKernel(1, 2, gw, 256, { software: true, workgroupBytes: slice - 1 }, mode)).toBe('rows4');
      // a GPU: MXFP4 rows of 4096 columns on the x-in-registers kernels (gate_up 'rows4x', down 'rows8k4x') where
      // their second reduction level fits, else the format's 'rows2i'; workgroupBytes 0 (the combined GEMV): never
      const long = mode === 'down' ? 'rows8k4x' : 'rows4x';
      expect(plannedKernel(1, 2, gw, 256, { software: false, workgroupBytes: inRegisters }, mode)).toBe(long);
      expect(plannedKernel(1, 2, gw, 256, { software: false, workgroupBytes: inRegisters - 1 }, mode)).toBe('rows2i');
      expect(plannedKernel(1, 2, gw, 256, { software: false, workgroupBytes: 0 }, mode)).toBe('rows2i');
      // more rows per pass: never a long-row kernel
      expect(plannedKernel(2, 2, gw, 256, { software: false, workgroupBytes: 1 << 16 }, mode)).toBe('rows2i');
      expect(plannedKernel(2, 2, gw, 256, { software: true, workgroupBytes: 1 << 16 }, mode)).toBe('rows4');
    }
  });
  it("the staged-x and x-in-registers kernels: named only by a format rule's `longRows`, at one row, from its minCols", () => {
    const rules = [KERNEL_CROSSOVERS.gemvPackedKernel, KERNEL_CROSSOVERS.gemvSoftwarePackedKernel];
    const short = rules.flatMap((r) => [r.oneRow, r.moreRows, ...Object.values(r.byFormat).flatMap((f) => [f.oneRow, f.moreRows])]);
    short.push(KERNEL_CROSSOVERS.gemvPackedSplitK.oneRow, KERNEL_CROSSOVERS.gemvPackedSplitK.moreRows);
    for (const k of short) expect(k, k).not.toMatch(/[sx]$/);
    const long = rules.flatMap((r) => Object.values(r.byFormat).flatMap((f) => (f.longRows ? [f.longRows.oneRow, ...(f.longRows.down ? [f.longRows.down] : [])] : [])));
    expect(long.length).toBeGreaterThan(0);
    for (const k of long) expect(k, k).toMatch(/^rows\d(k\d)?[sx]$/);
    // the GPU's int4 and MXFP4 rule: K 2879 / 2880 (GPT-OSS-20B's rows), where the kernel fits the device or not
    const call = (cols: number) => ({ workgroups: 64, cols });
    for (const format of ['int4', 'mxfp4'] as const) {
      expect([2048, 2879, 2880, 14336].map((cols) => gemvPackedKernelFor(1, { format, call: call(cols) }))).toEqual(['rows2i', 'rows2i', 'rows4x', 'rows4x']);
      // its down GEMVs on the same rows: 'rows8k4x'
      expect([2048, 2879, 2880, 14336].map((cols) => gemvPackedKernelFor(1, { format, call: call(cols), down: true }))).toEqual(['rows2i', 'rows2i', 'rows8k4x', 'rows8k4x']);
      expect(gemvPackedKernelFor(4, { format, call: call(14336), down: true })).toBe('rows2i');
      expect(gemvPackedKernelFor(1, { format, call: call(4096), longRowsFit: false })).toBe('rows2i');
      expect(gemvPackedKernelFor(1, { format, call: call(4096), longRowsFit: false, down: true })).toBe('rows2i');
      expect(gemvPackedKernelFor(1, { format })).toBe('rows2i');
    }
    // fp8 and int8 keep their kernels on long rows; software adapters stage fp8 e4m3 and MXFP4 at any length
    expect(gemvPackedKernelFor(1, { format: 'fp8_e4m3', call: call(7168) })).toBe('rows2');
    expect(gemvPackedKernelFor(1, { format: 'int8', call: call(7168) })).toBe('rows2');
    expect(gemvPackedKernelFor(1, { softwareAdapter: true, format: 'fp8_e4m3', call: call(64) })).toBe('rows4s');
    expect(gemvPackedKernelFor(1, { softwareAdapter: true, format: 'fp8_e4m3', call: call(64), longRowsFit: false })).toBe('rows4');
  });
  it('software adapters: the rows4 GEMV for packed and 16-bit dense weights at every row count (packed at one row: rows4s), never the dense kernel', () => {
    expect([KERNEL_CROSSOVERS.gemvSoftwarePackedKernel.oneRow, KERNEL_CROSSOVERS.gemvSoftwarePackedKernel.moreRows]).toEqual(['rows4', 'rows4']);
    expect(KERNEL_CROSSOVERS.gemvSoftwareDenseKernel).toBe('rows4');
    expect(gemvPackedKernelFor(1, { softwareAdapter: true })).toBe('rows4');
    expect([gemvPackedKernelFor(1, { softwareAdapter: true, format: 'int4' }), gemvPackedKernelFor(1, { softwareAdapter: true, format: 'int8' })]).toEqual(['rows4', 'rows4']);
    // fp8 e4m3 and MXFP4 at one row per pass: the staged-x kernel
    expect([gemvPackedKernelFor(1, { softwareAdapter: true, format: 'fp8_e4m3' }), gemvPackedKernelFor(1, { softwareAdapter: true, format: 'mxfp4' })]).toEqual(['rows4s', 'rows4s']);
    expect(gemvPackedKernelFor(2, { softwareAdapter: true, format: 'mxfp4' })).toBe('rows4');
    expect(gemvPackedKernelFor(4, { call: { workgroups: 1, cols: 1 << 20 }, softwareAdapter: true, format: 'int4' })).toBe('rows4');
    // the GPU rule: rows2 at T = 1, the dense kernel from 8 rows per pass (a single expert over 16 tokens)
    expect([gemvDenseKernelFor(1, 8, 128), gemvDenseKernelFor(16, 1, 1), gemvDenseKernelFor(16, 2, 4)]).toEqual(['rows2', 'dense', 'dense']);
    expect([gemvDenseKernelFor(1, 8, 128, true), gemvDenseKernelFor(16, 1, 1, true), gemvDenseKernelFor(16, 2, 4, true)]).toEqual(['rows4', 'rows4', 'rows4']);
  });
  it('software adapters: the decode GEMVs below 24 rows per expert (where the tiled GEMMs would take their decode tile), GPUs below 8', () => {
    expect(KERNEL_CROSSOVERS.gemvSoftwareMaxRowsPerExpert).toBe(KERNEL_CROSSOVERS.decodeTileRowsPerExpert);
    // Mixtral/s16 (E 4, k 2): T = 32 is 16 rows per expert, T = 47 23.5, T = 48 24
    expect([16, 17, 32, 47, 48].map((T) => useExpertGemv(T, 2, 4, true))).toEqual([true, true, true, true, false]);
    expect([16, 17, 32, 47, 48].map((T) => useExpertGemv(T, 2, 4, false))).toEqual([true, false, false, false, false]);
    // many experts: the GPU rule's 8 rows per expert, software's 24 (Qwen3-30B E 128, k 8: T 128 / 384)
    expect([127, 128, 383, 384].map((T) => useExpertGemv(T, 8, 128, true))).toEqual([true, true, true, false]);
    expect([127, 128].map((T) => useExpertGemv(T, 8, 128))).toEqual([true, false]);
    // a single expert: T <= 16 on a GPU, T < 24 on a software adapter
    expect([16, 17, 23, 24].map((T) => useSingleExpertGemv(T))).toEqual([true, false, false, false]);
    expect([16, 17, 23, 24].map((T) => useSingleExpertGemv(T, true))).toEqual([true, true, true, false]);
    const shape = { T: 32, k: 2, E: 4, actQuant: 'none', gemvSupported: true } as const;
    expect([planExpertGemms(shape), planExpertGemms({ ...shape, softwareAdapter: true })]).toEqual(['grouped', 'gemv']);
    expect(planExpertGemms({ ...shape, softwareAdapter: true, choice: 'grouped' })).toBe('grouped');
  });
  it('packed staging on the subgroup-matrix GEMM: fp8 e4m3 value by value but words on the pf2 and fp8-band tiles, the other formats a word at a time; wide loads for fp8, MXFP4 and int4 in blocks of 32', () => {
    expect(['fp8_e4m3', 'fp8_e5m2', 'int4', 'int8', 'mxfp4'].map((wf) => sgmatValueDecodeFor(wf))).toEqual([true, false, false, false, false]);
    expect((['m32n128k64vap2', 'm128n256k32va', 'm144n256k32v', 'm64n128k32'] as const).map((shape) => sgmatValueDecodeFor('fp8_e4m3', shape))).toEqual([false, false, true, true]);
    expect((['m32n128k64vap2', 'm144n256k32v'] as const).map((shape) => sgmatValueDecodeFor('int4', shape))).toEqual([false, false]);
    expect(['fp8_e4m3', 'fp8_e5m2', 'int4', 'int8', 'mxfp4', 'bfloat16'].map((wf) => sgmatWideLoadsFor(wf))).toEqual([true, true, false, false, true, false]);
    // int4 in blocks of 32 (one 16-byte load's values share one scale): wide; in blocks of 64 / 128: 8-value loads
    expect([32, 64, 128].map((b) => sgmatWideLoadsFor('int4', b))).toEqual([true, false, false]);
    expect(sgmatWideLoadsFor('int8', 32)).toBe(false);
  });
  it('the combined down GEMV: forced, refused, or by the adapter kind and the weights (16-bit up to 4 tokens, packed at T = 1 on software adapters only)', () => {
    expect(KERNEL_CROSSOVERS.combinedDownMaxTokens).toEqual({ gpu: { dense: 4, packed: 0 }, software: { dense: 4, packed: 1 } });
    const on = (software: boolean, packed: boolean) => ({ software, packed });
    // 16-bit weights up to 4 tokens on any adapter; packed ones at T = 1 on software adapters, never on GPUs
    expect([1, 2].map((T) => useCombinedDownGemv(T, 'auto', on(true, true)))).toEqual([true, false]);
    expect([1, 4, 5].map((T) => useCombinedDownGemv(T, 'auto', on(true, false)))).toEqual([true, true, false]);
    expect([1, 2, 4, 5].map((T) => useCombinedDownGemv(T, 'auto', on(false, false)))).toEqual([true, true, true, false]);
    expect(useCombinedDownGemv(1, 'auto', on(false, true))).toBe(false);
    expect(useCombinedDownGemv(64, 'fused', on(false, true))).toBe(true);
    expect(useCombinedDownGemv(1, 'separate', on(true, false))).toBe(false);
    expect(() => useCombinedDownGemv(1, 'both' as never, on(true, false))).toThrow(ValueError);
    expect(() => useCombinedDownGemv(1, 'auto', true as never)).toThrow(/software: boolean, packed: boolean/);
  });
  it('shared experts in the routed GEMVs: forced, refused, or by adapter kind (off on both until measured) where the shared rows fit one GEMV pass', () => {
    expect([true, false].map((sw) => useSharedExpertSlots(16, 8, 256, 1, 'routed', sw))).toEqual([true, true]);
    expect([true, false].map((sw) => useSharedExpertSlots(1, 8, 256, 1, 'separate', sw))).toEqual([false, false]);
    expect(KERNEL_CROSSOVERS.sharedExpertSlots).toEqual({ gpu: false, software: false });
    expect([true, false].map((sw) => useSharedExpertSlots(1, 8, 256, 1, 'auto', sw))).toEqual([false, false]);
    // the rows rule 'auto' applies once enabled: DeepSeek-V3 (k 8 of 256, one shared) T = 1 only (at T = 2 a pass
    // holds one row: the shared weights twice)
    expect([1, 2, 4, 16].map((T) => sharedRowsFitOnePass(T, 8, 256, 1))).toEqual([true, false, false, false]);
    // few experts, many per token (7 of 8, one shared): rows per pass up to the packed cap take T up to it
    const cap = KERNEL_CROSSOVERS.gemvMaxRowsPerPass.packed;
    expect([1, cap, cap + 1].map((T) => sharedRowsFitOnePass(T, 7, 8, 1))).toEqual([true, true, false]);
    expect(() => useSharedExpertSlots(1, 8, 256, 1, 'fused' as never, false)).toThrow(ValueError);
  });
  it('fast GEMMs: 8 rows per expert on the subgroup-matrix kernel, 64 on the FMA kernels', () => {
    expect(KERNEL_CROSSOVERS.fastMinRowsPerExpert).toEqual({ 'subgroup-matrix': 8, f16: 64, f32: 64 });
    expect(useFastGemm('subgroup-matrix', 64, 8)).toBe(true);
    expect(useFastGemm('subgroup-matrix', 63, 8)).toBe(false);
    expect(useFastGemm('f32', 511, 8)).toBe(false);
    expect(useFastGemm('f32', 512, 8)).toBe(true);
    // software adapters: the f32 FMA tiles from 32 rows per expert (the subgroup-matrix and f16 kinds as on GPUs)
    expect(useFastGemm('f32', 255, 8, true)).toBe(false);
    expect(useFastGemm('f32', 256, 8, true)).toBe(true);
    expect(useFastGemm('f16', 256, 8, true)).toBe(false);
    expect(useFastGemm('subgroup-matrix', 64, 8, true)).toBe(true);
  });
  it('expert GEMMs: weight-only activations and supported containers take the GEMVs, auto by the crossover, forced otherwise', () => {
    const base = { k: 2, E: 8, actQuant: 'none', gemvSupported: true } as const;
    expect(planExpertGemms({ ...base, T: 16 })).toBe('gemv');
    expect(planExpertGemms({ ...base, T: 512 })).toBe('grouped');
    expect(planExpertGemms({ ...base, T: 512, choice: 'gemv' })).toBe('gemv');
    expect(planExpertGemms({ ...base, T: 1, choice: 'grouped' })).toBe('grouped');
    // the GEMVs do not quantize activations, nor read containers they do not support: grouped whatever was asked
    expect(planExpertGemms({ ...base, T: 1, choice: 'gemv', actQuant: 'fp8_dynamic' })).toBe('grouped');
    expect(planExpertGemms({ ...base, T: 1, choice: 'gemv', gemvSupported: false })).toBe('grouped');
    // a single expert (k = E = 1) crosses over where useSingleExpertGemv does
    for (const T of [1, 8, 16, 17, 64]) expect(planExpertGemms({ T, k: 1, E: 1, actQuant: 'none', gemvSupported: true }) === 'gemv').toBe(useSingleExpertGemv(T));
    expect(() => planExpertGemms({ ...base, T: 1, choice: 'fast' as never })).toThrow(ValueError);
  });
  it('router linear: the skinny kernel up to 32 outputs at every T and up to 256 while T * N <= 32768 (GPUs), else GEMV up to 32 tokens, else tiled', () => {
    // the five routers of the H100 probe (session 31): Mixtral 8, GPT-OSS 32, DeepSeek-V2-Lite 64, Qwen3 128, DeepSeek-V3 256
    expect([1, 512, 4096].map((T) => linearPath(T, 8))).toEqual(['skinny', 'skinny', 'skinny']);
    expect([1, 512, 4096].map((T) => linearPath(T, 32))).toEqual(['skinny', 'skinny', 'skinny']);
    expect([512, 513, 1024].map((T) => linearPath(T, 64))).toEqual(['skinny', 'tiled', 'tiled']);
    expect([1, 16, 256, 257, 512].map((T) => linearPath(T, 128))).toEqual(['skinny', 'skinny', 'skinny', 'tiled', 'tiled']);
    expect([1, 128, 129].map((T) => linearPath(T, 256))).toEqual(['skinny', 'skinny', 'tiled']);
    // wider than 256 outputs: the GEMV up to 32 tokens, else the tiles
    expect([1, 32, 33].map((T) => linearPath(T, 257))).toEqual(['gemv', 'gemv', 'tiled']);
    expect([32, 33].map((T) => linearPath(T))).toEqual(['gemv', 'tiled']);
    // software adapters: the skinny kernel at every T up to 256 outputs
    expect([1, 32, 33, 512, 4096].map((T) => linearPath(T, 256, true))).toEqual(['skinny', 'skinny', 'skinny', 'skinny', 'skinny']);
    expect([1, 32, 33, 512].map((T) => linearPath(T, 257, true))).toEqual(['gemv', 'gemv', 'tiled', 'tiled']);
  });
  it('skinny router linear: 4 tokens a workgroup for 1 M weights or more, else 2, fewer where the workgroups would be under 256 (GPUs); software adapters 4', () => {
    const c = KERNEL_CROSSOVERS.linearSkinny.gpu;
    expect(c.minWorkgroups).toBe(256);
    // Mixtral's router (one block of 8 outputs): 2 tokens from T = 511 (256 workgroups), 1 below
    expect([1, 16, 510, 511, 512, 4096].map((T) => linearSkinnyTokens(T, 8, 4096))).toEqual([1, 1, 1, 2, 2, 2]);
    // Qwen3's (16 blocks): 1 at T = 16 (128 workgroups of 2), 2 from T = 31 (256 workgroups)
    expect([1, 16, 31, 128, 4096].map((T) => linearSkinnyTokens(T, 128, 2048))).toEqual([1, 1, 2, 2, 2]);
    // DeepSeek-V3's (32 blocks, 1.8 M weights): 4 where 256 workgroups remain (T >= 29), else 2 (T >= 15), else 1
    expect([1, 14, 15, 16, 28, 29, 128].map((T) => linearSkinnyTokens(T, 256, 7168))).toEqual([1, 1, 2, 2, 2, 4, 4]);
    expect(linearSkinnyTokens(4096, 256, c.wideWeights / 256)).toBe(4);
    expect(linearSkinnyTokens(4096, 256, c.wideWeights / 256 - 1)).toBe(2);
    expect([1, 16, 4096].map((T) => linearSkinnyTokens(T, 8, 4096, true))).toEqual([4, 4, 4]);
  });
  it('GEMV rows per pass: rows per active expert as a power of two, capped by T and 8 (dense) / 4 (packed)', () => {
    expect(gemvRowsPerPass(1, 8, 128, false)).toBe(1);
    expect(gemvRowsPerPass(3, 2, 8, false)).toBe(1); // 6 rows over 6 slots
    expect(gemvRowsPerPass(16, 2, 8, false)).toBe(4); // 32 rows over 8 experts
    expect(gemvRowsPerPass(20, 2, 8, false)).toBe(8); // 5 rows per expert -> the next power of two
    expect(gemvRowsPerPass(20, 2, 8, true)).toBe(4);
    expect(gemvRowsPerPass(2, 8, 1, false)).toBe(2); // capped by T
  });
  it('fast GEMM kind by adapter features and weight format', () => {
    const all = { subgroupMatrix: true, shaderF16: true };
    const none = { subgroupMatrix: false, shaderF16: false };
    expect(chooseFastGemmKind(all, undefined, 'bfloat16')).toBe('subgroup-matrix');
    expect(chooseFastGemmKind(all, undefined, 'float32')).toBe('f32');
    expect(chooseFastGemmKind(all)).toBe('f32');
    expect(chooseFastGemmKind(none, undefined, 'bfloat16')).toBe('f32');
    expect(chooseFastGemmKind(all, 'f16')).toBe('f16');
    expect(chooseFastGemmKind(none, 'f16')).toBe('f32');
    expect(chooseFastGemmKind(none, 'subgroup-matrix')).toBe('f32');
    expect(() => chooseFastGemmKind(all, 'tensor' as never)).toThrow(ValueError);
  });
  it('subgroup-matrix choices stay inside SGMAT_CHOICES (what warmGroupedGemmFast compiles): for 16-bit weights with 48 KiB of workgroup memory the 128 x 192 tile with 64-wide K slices over f16 x rows from 8 rows per expert (the 32 x 128 pf2 tile up to 48, 144 x 256 from 112 to 144 rows), else 32-row tiles up to 16 rows per expert and 128-row tiles from 128 rows and 2560 outputs; packed weights keep the 64 x 128 tile, int4, MXFP4 and fp8 take the 144 x 256 one from 64 rows per expert with 48 KiB and the 32 x 128 pf2 one from 8 to 32 (MXFP4 48), fp8 the 128 x 256 one from 64 to 96 (the scalar-staged 128 x 256 tile where vector staging is refused)', () => {
    expect(SGMAT_CHOICES).toEqual({ shapes: ['m64n128k32', 'm64n128k32v', 'm32n128k32v', 'm128n128k32v', 'm128n256k32v', 'm128n256k32', 'm128n192k64va', 'm144n256k32v', 'm128n256k32va', 'm32n128k64vap2'], xRows: ['gather', 'half'], splitK: [1, 2, 3] });
    for (const shape of SGMAT_CHOICES.shapes) expect(SGMAT_SHAPES[shape], shape).toBeDefined();
    // rows x experts x outputs of the benchmarked models (Mixtral, Qwen3-30B, DeepSeek-V3/e32, GPT-OSS-20B) at T = 8..4096
    for (const [H, I, E, k] of [[4096, 14336, 8, 2], [2048, 768, 128, 8], [7168, 2048, 32, 8], [2880, 2880, 32, 4]]) {
      for (const T of [8, 128, 512, 4096]) {
        const rows = T * k;
        for (const [op, N, K] of [['gate_up', I, H], ['down', H, I]] as const) {
          for (const wf of ['bfloat16', 'float16', 'fp8_e4m3', 'int4', 'mxfp4']) {
            for (const wgBytes of [16384, 32768, 49152, 65536]) {
              const tile = sgmatTileFor(rows, E, N, wf, wgBytes);
              expect(SGMAT_CHOICES.shapes).toContain(tile.shape);
              expect(SGMAT_CHOICES.xRows).toContain(tile.xRows);
              // never a shape that needs more workgroup memory than the device has (beyond the 32 KiB every such adapter offers)
              expect(sgmatLayout(SGMAT_SHAPES[tile.shape]).bytes).toBeLessThanOrEqual(Math.max(wgBytes, 32768));
            }
          }
          expect(SGMAT_CHOICES.splitK).toContain(sgmatSplitKFor(Math.ceil(rows / 64) * Math.ceil(N / 128), K, op, rows / E));
        }
      }
    }
    // the split-K rule: up to the target's workgroups, at most maxSplit and K / minSliceK slices, at most maxRowsPerExpert
    // rows per expert; never for gate_up or calls with enough tiles
    expect(KERNEL_CROSSOVERS.sgmatSplitK).toEqual({ targetWorkgroups: 512, maxSplit: 3, minSliceK: 2048, maxRowsPerExpert: 144, tileSplits: { m32n128k64vap2: 3 } });
    // the pf2 tile (session 26): 3 ways wherever K allows, whatever the call's tiles; other tiles by the count
    expect(sgmatSplitKFor(512, 14336, 'down', 32, undefined, 'm32n128k64vap2')).toBe(3); // Mixtral T = 128: (8 + 8) x 32 tiles
    expect(sgmatSplitKFor(512, 14336, 'down', 32, undefined, 'm128n192k64va')).toBe(1);
    expect(sgmatSplitKFor(5000, 14336, 'down', 48, undefined, 'm32n128k64vap2')).toBe(3);
    expect(sgmatSplitKFor(512, 4096, 'down', 32, undefined, 'm32n128k64vap2')).toBe(2); // K / minSliceK
    expect(sgmatSplitKFor(2560, 2880, 'down', 16, undefined, 'm32n128k64vap2')).toBe(1); // GPT-OSS-20B: K 2880
    expect(sgmatSplitKFor(512, 14336, 'gate_up', 32, undefined, 'm32n128k64vap2')).toBe(1);
    expect(sgmatSplitKFor(512, 14336, 'down', 145, undefined, 'm32n128k64vap2')).toBe(1); // past maxRowsPerExpert
    expect(sgmatSplitKFor(512, 14336, 'down', 32, { ...KERNEL_CROSSOVERS.sgmatSplitK, targetWorkgroups: 0 }, 'm32n128k64vap2')).toBe(1); // off
    expect(sgmatSplitKFor(176, 14336, 'down', 32)).toBe(3); // Mixtral T = 128 on the 128 x 192 tile: 8 experts x 22 column tiles
    expect(sgmatSplitKFor(256, 14336, 'down', 128)).toBe(2); // Mixtral T = 512 on the 144 x 256 tile: (8 + 8) row tiles x 16
    expect(sgmatSplitKFor(256, 14336, 'down', 144)).toBe(2);
    expect(sgmatSplitKFor(256, 14336, 'down', 145)).toBe(1);
    expect(sgmatSplitKFor(1216, 2048, 'down', 32)).toBe(1); // DeepSeek-V3-e32 T = 128: enough tiles
    expect(sgmatSplitKFor(480, 2880, 'down', 16)).toBe(1); // GPT-OSS-20B T = 128: K / minSliceK = 1
    // the tail the planner gives (session 35): a split-K down GEMM only
    expect(KERNEL_CROSSOVERS.sgmatTail).toEqual({ splitDown: 'm32n128k64vap2' });
    expect([sgmatTailFor('down', 2), sgmatTailFor('down', 3), sgmatTailFor('down', 1), sgmatTailFor('gate_up', 2)]).toEqual(['m32n128k64vap2', 'm32n128k64vap2', undefined, undefined]);
    expect(sgmatSplitKFor(176, 14336, 'gate_up', 32)).toBe(1);
    const on = { targetWorkgroups: 512, maxSplit: 4, minSliceK: 2048, maxRowsPerExpert: 64 };
    expect(sgmatSplitKFor(128, 14336, 'down', 64, on)).toBe(4);
    expect(sgmatSplitKFor(256, 14336, 'down', 64, on)).toBe(2);
    expect(sgmatSplitKFor(200, 14336, 'down', 64, on)).toBe(3);
    expect(sgmatSplitKFor(128, 4096, 'down', 64, on)).toBe(2); // K / minSliceK
    expect(sgmatSplitKFor(128, 1536, 'down', 64, on)).toBe(1);
    expect(sgmatSplitKFor(512, 14336, 'down', 64, on)).toBe(1);
    expect(sgmatSplitKFor(0, 14336, 'down', 0, on)).toBe(4);
    expect(sgmatSplitKFor(128, 14336, 'down', 65, on)).toBe(1);
    expect(sgmatSplitKFor(128, 14336, 'down', 64, { ...on, targetWorkgroups: 0 })).toBe(1); // off
    // the measured boundaries (average rows per expert, outputs), both 16-bit dtypes; every 16-bit tile vector-staged
    for (const wf of ['bfloat16', 'float16']) {
      expect(sgmatTileFor(1024, 128, 768, wf)).toEqual({ shape: 'm32n128k32v', xRows: 'gather' }); // Qwen3 T = 128: 8 per expert
      expect(sgmatTileFor(512, 32, 2880, wf)).toEqual({ shape: 'm32n128k32v', xRows: 'gather' }); // GPT-OSS T = 128: 16
      expect(sgmatTileFor(256, 8, 14336, wf)).toEqual({ shape: 'm64n128k32v', xRows: 'gather' }); // Mixtral T = 128: 32
      expect(sgmatTileFor(1024, 8, 14336, wf)).toEqual({ shape: 'm128n128k32v', xRows: 'half' }); // Mixtral T = 512: 128
      expect(sgmatTileFor(1023, 8, 14336, wf)).toEqual({ shape: 'm64n128k32v', xRows: 'gather' });
      expect(sgmatTileFor(8192, 8, 4096, wf)).toEqual({ shape: 'm128n128k32v', xRows: 'half' }); // Mixtral T = 4096, down
      expect(sgmatTileFor(32768, 128, 2048, wf)).toEqual({ shape: 'm64n128k32v', xRows: 'gather' }); // Qwen3 T = 4096: narrow outputs
      expect(sgmatTileFor(16384, 32, 2880, wf)).toEqual({ shape: 'm128n128k32v', xRows: 'half' }); // GPT-OSS T = 4096
      // with 48 KiB of workgroup memory (the H200): the 128 x 192 tile with 64-wide K slices over f16 x rows from 8 rows
      // per expert, any outputs; the 144 x 256 tile from 112 to 144 rows per expert
      expect(sgmatTileFor(1024, 8, 14336, wf, 49152)).toEqual({ shape: 'm144n256k32v', xRows: 'half' }); // Mixtral T = 512
      expect(sgmatTileFor(896, 8, 14336, wf, 49152)).toEqual({ shape: 'm144n256k32v', xRows: 'half' });
      expect(sgmatTileFor(1152, 8, 14336, wf, 49152)).toEqual({ shape: 'm144n256k32v', xRows: 'half' });
      expect(sgmatTileFor(895, 8, 14336, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' });
      expect(sgmatTileFor(1153, 8, 14336, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' });
      expect(sgmatTileFor(8192, 8, 14336, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' }); // Mixtral T = 4096
      expect(sgmatTileFor(32768, 128, 768, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' }); // Qwen3 T = 4096, gate_up
      expect(sgmatTileFor(16384, 32, 2880, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' }); // GPT-OSS T = 4096
      expect(sgmatTileFor(2048, 32, 2880, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' }); // GPT-OSS T = 512: 64
      // ... from 49 rows per expert; from 8 to 48 the 32 x 128 tile with two 64-wide K slices in flight (session 26)
      const pf2 = { shape: 'm32n128k64vap2', xRows: 'half' };
      expect(sgmatTileFor(2047, 32, 2880, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' });
      expect(sgmatTileFor(1569, 32, 2880, wf, 49152)).toEqual({ shape: 'm128n192k64va', xRows: 'half' }); // 49.03
      expect(sgmatTileFor(1536, 32, 2880, wf, 49152)).toEqual(pf2); // GPT-OSS T = 384: 48
      expect(sgmatTileFor(256, 8, 14336, wf, 49152)).toEqual(pf2); // Mixtral T = 128: 32
      expect(sgmatTileFor(1024, 128, 768, wf, 49152)).toEqual(pf2); // Qwen3 T = 128: 8
      expect(sgmatTileFor(256, 8, 14336, wf, 49151)).toEqual({ shape: 'm64n128k32v', xRows: 'gather' }); // the band needs 48 KiB
      expect(sgmatTileFor(1023, 128, 768, wf, 49152)).toEqual({ shape: 'm32n128k32v', xRows: 'gather' }); // below 8 (tile: 'fast')
      expect(sgmatTileFor(1024, 8, 14336, wf, 49151)).toEqual({ shape: 'm128n128k32v', xRows: 'half' });
    }
    for (const wf of ['fp8_e4m3', 'int4', 'int8', 'mxfp4', 'float32']) {
      expect(sgmatTileFor(512, 32, 2880, wf)).toEqual({ shape: 'm64n128k32', xRows: 'gather' });
      expect(sgmatTileFor(8192, 8, 14336, wf)).toEqual({ shape: 'm64n128k32', xRows: 'gather' });
      // with 48 KiB: int4, MXFP4 and fp8 on the 144 x 256 tile over f16 x rows from 64 rows per expert (session 19);
      // int8 (not measured on it) keeps the 64 x 128 tile
      const packed144 = wf === 'fp8_e4m3' || wf === 'int4' || wf === 'mxfp4';
      const from64 = packed144 ? { shape: 'm144n256k32v', xRows: 'half' } : { shape: 'm64n128k32', xRows: 'gather' };
      // fp8 from 64 to 511 rows per expert on the 128 x 256 tile with the epilogue in the staging memory (session 25 from
      // 64 to 96; to 511 since session 28's word staging there)
      const fp8Band = wf === 'fp8_e4m3' ? { shape: 'm128n256k32va', xRows: 'half' } : from64;
      for (const rows of [8192, 4096, 4089]) expect(sgmatTileFor(rows, 8, 14336, wf, 49152), `${wf} ${rows} rows`).toEqual(from64); // 1024, 512, 511.1 per expert
      for (const rows of [4088, 2048, 1024, 896, 1153]) expect(sgmatTileFor(rows, 8, 14336, wf, 49152), `${wf} ${rows} rows`).toEqual(fp8Band); // 511 .. 112 per expert
      expect(sgmatTileFor(2048, 32, 2880, wf, 49152)).toEqual(fp8Band); // GPT-OSS T = 512: 64 per expert
      expect(sgmatTileFor(3072, 32, 2880, wf, 49152)).toEqual(fp8Band); // 96 per expert
      expect(sgmatTileFor(4096, 32, 2880, wf, 49152)).toEqual(fp8Band); // GPT-OSS T = 1024: 128 per expert
      expect(sgmatTileFor(2048, 32, 2880, wf, 49151)).toEqual({ shape: 'm64n128k32', xRows: 'gather' }); // the band needs 48 KiB too
      expect(sgmatTileFor(2047, 32, 2880, wf, 49152)).toEqual({ shape: 'm64n128k32', xRows: 'gather' });
      expect(sgmatTileFor(2048, 8, 14336, wf, 49151)).toEqual({ shape: 'm64n128k32', xRows: 'gather' }); // below 48 KiB
      // int4, fp8 from 8 to 32 rows per expert, MXFP4 to 48: the 32 x 128 pf2 tile over f16 x rows (session 26)
      const gathered = { shape: 'm64n128k32', xRows: 'gather' };
      const pf2 = { shape: 'm32n128k64vap2', xRows: 'half' };
      const to32 = packed144 ? pf2 : gathered;
      const to48 = wf === 'mxfp4' ? pf2 : gathered;
      expect(sgmatTileFor(4096, 128, 768, wf, 49152)).toEqual(to32); // Qwen3 T = 512: 32 per expert
      expect(sgmatTileFor(1024, 128, 768, wf, 49152)).toEqual(to32); // Qwen3 T = 128: 8
      expect(sgmatTileFor(1023, 128, 768, wf, 49152)).toEqual(gathered);
      expect(sgmatTileFor(4097, 128, 768, wf, 49152)).toEqual(to48);
      expect(sgmatTileFor(1536, 32, 2880, wf, 49152)).toEqual(to48); // GPT-OSS T = 384: 48
      expect(sgmatTileFor(1537, 32, 2880, wf, 49152)).toEqual(gathered);
      expect(sgmatTileFor(4096, 128, 768, wf, 49151)).toEqual(gathered);
    }
  });

  it('withSgmatSplitKRule: the planner follows the rule inside, the rule is back after (also after a throw), bad rules refused', async () => {
    const planner = { ...KERNEL_CROSSOVERS.sgmatSplitK };
    const lowered = { targetWorkgroups: 1 << 30, maxSplit: 2, minSliceK: 64, maxRowsPerExpert: 1 << 30 };
    // the deepseek_v3_fp8 fixture's down GEMM (K = 128, 150 rows per expert): 2 ways inside, none with the planner's rule
    expect(sgmatSplitKFor(64, 128, 'down', 150)).toBe(1);
    expect(await withSgmatSplitKRule(lowered, async () => sgmatSplitKFor(64, 128, 'down', 150))).toBe(2);
    expect(KERNEL_CROSSOVERS.sgmatSplitK).toEqual(planner);
    await expect(withSgmatSplitKRule(lowered, async () => { throw new Error('inside'); })).rejects.toThrow('inside');
    expect(KERNEL_CROSSOVERS.sgmatSplitK).toEqual(planner);
    await expect(withSgmatSplitKRule({ ...lowered, maxSplit: 9 }, async () => 0)).rejects.toThrow(ValueError);
    await expect(withSgmatSplitKRule({ ...lowered, minSliceK: 1.5 }, async () => 0)).rejects.toThrow(/rule.minSliceK: expected an integer/);
    // tile splits: taken inside (the rule without them: the pf2 tile by the count), refused past maxSplit or for an unknown shape
    expect(await withSgmatSplitKRule({ ...planner, tileSplits: {} }, async () => sgmatSplitKFor(512, 14336, 'down', 32, undefined, 'm32n128k64vap2'))).toBe(1);
    expect(await withSgmatSplitKRule({ ...lowered, tileSplits: { m144n256k32v: 2 } }, async () => sgmatSplitKFor(1 << 30, 14336, 'down', 32, undefined, 'm144n256k32v'))).toBe(2);
    await expect(withSgmatSplitKRule({ ...lowered, tileSplits: { m144n256k32v: 3 } }, async () => 0)).rejects.toThrow(/tileSplits\.m144n256k32v: expected an integer 1\.\.maxSplit \(2\)/);
    await expect(withSgmatSplitKRule({ ...lowered, tileSplits: { m999: 2 } as never }, async () => 0)).rejects.toThrow(/a tile shape of SGMAT_SHAPES/);
    expect(KERNEL_CROSSOVERS.sgmatSplitK).toEqual(planner);
  });

  it('withSgmatTileBands: the planner takes the bands inside (any rows, any device where the band says so), the planner\'s bands are back after (also after a throw), bad bands refused', async () => {
    const planner = structuredClone(KERNEL_CROSSOVERS.sgmatTiles.bands);
    const everywhere = [{ shapes: { fp8_e4m3: 'm128n256k32va' as const }, minRowsPerExpert: 0, maxRowsPerExpert: 1 << 30, minWorkgroupBytes: 0 }];
    // the deepseek_v3_fp8 fixture at T = 600 on lavapipe (32 KiB, 150 rows per expert): the 64 x 128 tile, and inside
    // the band its tile; other formats keep the planner's choice
    expect(sgmatTileFor(1200, 8, 128, 'fp8_e4m3', 32768)).toEqual({ shape: 'm64n128k32', xRows: 'gather' });
    expect(await withSgmatTileBands(everywhere, async () => sgmatTileFor(1200, 8, 128, 'fp8_e4m3', 32768))).toEqual({ shape: 'm128n256k32va', xRows: 'half' });
    expect(await withSgmatTileBands(everywhere, async () => sgmatTileFor(1, 8, 128, 'fp8_e4m3', 16384))).toEqual({ shape: 'm128n256k32va', xRows: 'half' });
    expect(await withSgmatTileBands(everywhere, async () => sgmatTileFor(1200, 8, 128, 'int4', 32768))).toEqual({ shape: 'm64n128k32', xRows: 'gather' });
    // no bands: the 16-bit 144-row band's rows take the wide tile
    expect(await withSgmatTileBands([], async () => sgmatTileFor(1024, 8, 14336, 'bfloat16', 49152))).toEqual({ shape: 'm128n192k64va', xRows: 'half' });
    expect(KERNEL_CROSSOVERS.sgmatTiles.bands).toEqual(planner);
    await expect(withSgmatTileBands(everywhere, async () => { throw new Error('inside'); })).rejects.toThrow('inside');
    expect(KERNEL_CROSSOVERS.sgmatTiles.bands).toEqual(planner);
    const bad = (b: object) => withSgmatTileBands([{ ...everywhere[0], ...b }], async () => 0);
    await expect(bad({ minRowsPerExpert: -1 })).rejects.toThrow(ValueError);
    await expect(bad({ minWorkgroupBytes: 1.5 })).rejects.toThrow(/bands\[0\]\.minWorkgroupBytes/);
    await expect(bad({ minRowsPerExpert: 10, maxRowsPerExpert: 9 })).rejects.toThrow(/at least minRowsPerExpert \(10\)/);
    await expect(bad({ shapes: { fp8_e4m3: 'm999' } })).rejects.toThrow(/a tile shape of SGMAT_SHAPES/);
    expect(KERNEL_CROSSOVERS.sgmatTiles.bands).toEqual(planner);
  });
});

describe('the tiles warmGroupedGemmFast compiles (sgmatTilesOf)', () => {
  it('hold every tile sgmatTileFor gives a weight format on a device, and nothing else', () => {
    const r = (() => { let x = 12345; return () => (x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32; })();
    for (const wf of ['bfloat16', 'float16', 'fp8_e4m3', 'fp8_e5m2', 'int4', 'int8', 'mxfp4']) {
      for (const wg of [16384, 32768, 49152, 65536]) {
        const tiles = sgmatTilesOf(wf, wg);
        const key = (t: { shape: string; xRows: string }) => `${t.shape}/${t.xRows}`;
        const seen = new Set<string>();
        for (let i = 0; i < 600; i++) {
          const E = 1 + Math.floor(r() * 300);
          const rows = 1 + Math.floor(r() * 700 * E); // up to 700 rows per expert: past the fp8 band (511)
          const N = 1 + Math.floor(r() * 20000);
          const t = sgmatTileFor(rows, E, N, wf, wg);
          expect(tiles.map(key), `${wf} ${wg} rows ${rows} E ${E} N ${N}`).toContain(key(t));
          seen.add(key(t));
        }
        // every listed tile is reachable (the random shapes above reach each one)
        expect([...seen].sort(), `${wf} ${wg}`).toEqual(tiles.map(key).sort());
      }
    }
    const names = (wf: string, wg: number) => sgmatTilesOf(wf, wg).map((t) => `${t.shape}/${t.xRows}`).sort();
    expect(names('bfloat16', 49152)).toEqual(['m128n192k64va/half', 'm144n256k32v/half', 'm32n128k32v/gather', 'm32n128k64vap2/half']); // 32 rows below 8 per expert (tile: 'fast')
    expect(names('bfloat16', 32768)).toEqual(['m128n128k32v/half', 'm32n128k32v/gather', 'm64n128k32v/gather']);
    for (const wf of ['int4', 'mxfp4']) expect(names(wf, 49152)).toEqual(['m144n256k32v/half', 'm32n128k64vap2/half', 'm64n128k32/gather']);
    expect(names('fp8_e4m3', 49152)).toEqual(['m128n256k32va/half', 'm144n256k32v/half', 'm32n128k64vap2/half', 'm64n128k32/gather']);
    expect(names('int8', 49152)).toEqual(['m64n128k32/gather']);
    expect(names('fp8_e4m3', 32768)).toEqual(['m64n128k32/gather']);
  });
});

describe('scalar-staged twins of the vector-staged tiles (where Dawn refuses vec4<u32> staging arrays)', () => {
  it('every vector-staged shape plan.ts can choose has a twin equal but for `vs` or a scalar fallback in plan.ts; other shapes are their own twin; vector-only bench candidates (oa, 16 subgroups, 256 rows over few rows) without a fallback are never chosen', () => {
    expect(sgmatScalarTwin('m128n256k32v')).toBe('m128n256k32');
    expect(sgmatScalarTwin('m128n128k32v')).toBe('m128n128k32');
    expect(sgmatScalarTwin('m32n128k32v')).toBe('m32n128k32');
    expect(sgmatScalarTwin('m64n128k32v')).toBe('m64n128k32s');
    for (const name of Object.keys(SGMAT_SHAPES) as SgmatShapeName[]) {
      const twin = sgmatScalarTwin(name);
      const { vs, ...rest } = SGMAT_SHAPES[name];
      if (SGMAT_SHAPES[name].oa) expect(twin, name).toBeUndefined();
      if (twin === undefined) {
        // a vector-only shape: a plan choice only with a scalar-staged fallback (where Dawn refuses vector staging)
        expect(vs, name).toBe(true);
        const fallback = sgmatScalarShapeFor(name);
        if (fallback === undefined) expect(SGMAT_CHOICES.shapes, name).not.toContain(name);
        else expect(SGMAT_SHAPES[fallback].vs, `${name} -> ${fallback}`).toBeUndefined();
        continue;
      }
      expect(SGMAT_SHAPES[twin], name).toEqual(rest);
      if (!vs) expect(twin).toBe(name);
    }
    // the twins of plan.ts's choices fit the same workgroup memory; the fallbacks of its vector-only choices fit the 48 KiB
    // those choices are made on
    expect(sgmatScalarShapeFor('m128n192k64va')).toBe('m128n256k32');
    expect(sgmatScalarShapeFor('m144n256k32v')).toBe('m128n256k32');
    expect(sgmatScalarShapeFor('m32n128k64vap2')).toBe('m32n128k32');
    for (const name of SGMAT_CHOICES.shapes) {
      const twin = sgmatScalarTwin(name);
      if (twin) expect(sgmatLayout(SGMAT_SHAPES[twin]).bytes).toBe(sgmatLayout(SGMAT_SHAPES[name]).bytes);
      else expect(sgmatLayout(SGMAT_SHAPES[sgmatScalarShapeFor(name)!]).bytes).toBeLessThanOrEqual(KERNEL_CROSSOVERS.sgmatTiles.wideWorkgroupBytes);
    }
  });
});
