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
   * The kernel of the packed decode GEMVs (GemvOptions.packedKernel overrides it): 'table' (8 columns
   * per load through a byte -> value table), 'wide' (16-byte loads, arithmetic decoding, one output per
   * 32-lane group: on the H200, 2026-12-03, Mixtral int4 T=1 0.302 vs 0.203 ms and T=16 4.72 vs 1.62 ms
   * against 'table'), or 'rows1' | 'rows2' | 'rows4' (16-byte loads, exact bit decoding, 1, 2 or 4
   * outputs per group sharing each x load; not yet measured on the H200: scripts/gpu/gemv-bench.ts).
   */
  gemvPackedKernel: 'table' as GemvPackedKernel,
} as const;

/** Which decode GEMV reads packed weights: 8-column table loads, the 16-byte 'wide' loads, or the row-blocked kernel with 1, 2 or 4 outputs per 32-lane group. */
export type GemvPackedKernel = 'table' | 'wide' | 'rows1' | 'rows2' | 'rows4';

/** Every packed decode GEMV kernel, for A/B runs. */
export const GEMV_PACKED_KERNELS: readonly GemvPackedKernel[] = ['table', 'wide', 'rows1', 'rows2', 'rows4'];

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
