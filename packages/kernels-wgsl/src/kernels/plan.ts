/**
 * Every choice between the MoE forward's kernels, in one place: the decode
 * GEMVs (moe-gemv.ts), the tiled grouped GEMMs (grouped-gemm.ts, 4-row decode
 * tile or 32x32 prefill tile), the fast prefill GEMMs (grouped-gemm-fast.ts:
 * register-blocked FMA or subgroup-matrix), and graph replay. Pure functions
 * of the shapes; the adapter enters through the fast kernel's kind
 * (fastGemmKind: features, weight dtype). Callers (MoE, MoEStack, nn's MLP,
 * the GEMM ops) ask here; no threshold lives anywhere else.
 *
 * Crossovers (NVIDIA H200, Dawn 0.6.2 / Vulkan, docs/PERF-NOTES.md):
 * - GEMV while T <= 16 or T*k <= 8E: the GEMVs stream each hit expert's
 *   weights once for up to 8 rows per pass (Qwen3-30B T = 16: 0.67 -> 0.37 ms
 *   over the tiled GEMMs, 2026-11-28).
 * - Graph replay for T <= 64: recording costs more host time than the GPU
 *   work at decode sizes.
 * - Fast GEMMs from 8 rows per expert on the subgroup-matrix kernel (one pass
 *   over the weights per 64-row tile; the tiled path took 15.3 ms for
 *   Mixtral T = 128 where that pass is ~0.9 ms), from 64 on the FMA kernels
 *   (measured 2026-11-28).
 * - Tiled GEMMs: the 4-row decode tile below 24 rows per expert.
 */

import type { SgmatShapeName } from './grouped-gemm-fast-wgsl.js';

/** Which fast prefill kernel (grouped-gemm-fast.ts). @example `groupedDownGpu(ctx, rec, h, g, w, undefined, { tile: 'fast', fast: 'f32' })` */
export type FastGemmKind = 'f32' | 'f16' | 'subgroup-matrix';

/** The thresholds behind the choices (read-only; documented above). */
export const KERNEL_CROSSOVERS = {
  /** Decode GEMVs for at most this many tokens... */
  gemvMaxTokens: 16,
  /** ...or at most this many grouped rows per expert on average (T*k <= 8E). */
  gemvMaxRowsPerExpert: 8,
  /** Captured graphs replayed for at most this many tokens. */
  graphMaxTokens: 64,
  /** Tiled GEMMs: the 4-row decode tile below this many rows per (non-empty) expert. */
  decodeTileRowsPerExpert: 24,
  /** Fast prefill GEMMs from this many grouped rows per expert on average, by kernel. */
  fastMinRowsPerExpert: { 'subgroup-matrix': 8, f16: 64, f32: 64 } as Readonly<Record<FastGemmKind, number>>,
  /**
   * Packed decode GEMVs read 16 bytes per load (arithmetic decoding) by default. Off: on the H200
   * (2026-12-03, bench A/B in one call) the wide path took Mixtral int4 T=1 from 0.203 to 0.302 ms and
   * T=16 from 1.62 to 4.72 ms against the 8-column table loads; it stays selectable (GemvOptions.wideLoads).
   */
  gemvWideLoads: false,
} as const;

/** Whether the routed experts of a forward of T tokens (k per token, E experts) take the decode GEMVs. */
export function useExpertGemv(T: number, k: number, E: number): boolean {
  return T <= KERNEL_CROSSOVERS.gemvMaxTokens || T * k <= KERNEL_CROSSOVERS.gemvMaxRowsPerExpert * E;
}

/** Whether a single expert (shared experts, nn's MLP) over T tokens takes the decode GEMVs. */
export function useSingleExpertGemv(T: number): boolean {
  return T <= KERNEL_CROSSOVERS.gemvMaxTokens;
}

/** Whether a forward of T tokens replays a captured graph. */
export function useGraphReplay(T: number): boolean {
  return T <= KERNEL_CROSSOVERS.graphMaxTokens;
}

/** The tile of the tiled grouped GEMMs for `rows` grouped rows over E experts. */
export function tiledGemmTile(rows: number, E: number): 'decode' | 'prefill' {
  const perExpert = rows / Math.max(1, Math.min(E, rows));
  return perExpert < KERNEL_CROSSOVERS.decodeTileRowsPerExpert ? 'decode' : 'prefill';
}

/** Whether `rows` grouped rows over E experts take the fast prefill kernel `kind` by default. */
export function useFastGemm(kind: FastGemmKind, rows: number, E: number): boolean {
  return rows >= KERNEL_CROSSOVERS.fastMinRowsPerExpert[kind] * E;
}

/**
 * The tile shape of the subgroup-matrix grouped GEMM (SGMAT_SHAPES) for `rows` grouped rows over E experts,
 * N outputs. Today the shape measured on the H200 (64 x 128 tiles, K slices of 32: Mixtral T=4096 26.7 ms,
 * 108 TFLOP/s; 2026-12-03) everywhere; the candidates of scripts/gpu/prefill-bench.ts are ranked on the
 * H200 before another one becomes a default.
 */
export function sgmatShapeFor(_rows: number, _E: number, _N: number, _op: 'gate_up' | 'down'): SgmatShapeName {
  return SGMAT_CHOICES.shapes[0];
}

/**
 * Every tile shape, x-row mode and split that sgmatShapeFor, sgmatXRowsFor and sgmatSplitKFor can return
 * (warmGroupedGemmFast compiles each combination; plan.test.ts checks the functions stay inside these lists).
 */
export const SGMAT_CHOICES: { readonly shapes: readonly SgmatShapeName[]; readonly xRows: readonly SgmatXRows[]; readonly splitK: readonly number[] } = {
  shapes: ['m64n128k32'],
  xRows: ['gather'],
  splitK: [1],
};

/**
 * Workgroups per tile along K of the subgroup-matrix down GEMM (split-K; 1 = none) for a call of `nWork`
 * tiles over K input channels. Today 1 everywhere (split-K is a bench candidate: it spreads few tiles with
 * long K, e.g. Mixtral's down at T = 128 with 256 tiles of K = 14336, over more of the H200's 132 SMs).
 */
export function sgmatSplitKFor(_nWork: number, _K: number, _op: 'gate_up' | 'down'): number {
  return SGMAT_CHOICES.splitK[0];
}

/**
 * How the subgroup-matrix GEMMs of `rows` grouped rows with K input channels read their x rows: 'gather' (f32 rows
 * gathered and converted to f16 at staging), 'half' (converted to f16 in grouped order by a pass of their own
 * first, halfRowsKernel: one extra pass and a temp of rows * K halves; the GEMM reads 8 halves per load and
 * neither gathers nor converts) or 'direct' (as 'half', and the GEMM loads its A matrices straight from those
 * rows: no x staging). Today 'gather' everywhere (the others are bench candidates, scripts/gpu/prefill-bench.ts).
 */
export type SgmatXRows = 'gather' | 'half' | 'direct';

/** The x-row mode (SgmatXRows) of a subgroup-matrix GEMM call of `rows` grouped rows and K input channels. */
export function sgmatXRowsFor(_rows: number, _K: number): SgmatXRows {
  return SGMAT_CHOICES.xRows[0];
}
