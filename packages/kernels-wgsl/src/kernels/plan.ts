/**
 * Every choice between the MoE forward's kernels, in one place: the router
 * linear (GEMV or tiled), the expert GEMMs (decode GEMVs, moe-gemv.ts, or
 * the grouped GEMMs), the GEMVs' rows per weight pass, the tiled grouped
 * GEMMs' tile (grouped-gemm.ts, 4-row decode tile or 32x32 prefill tile),
 * the fast prefill GEMMs (grouped-gemm-fast.ts: register-blocked FMA or
 * subgroup-matrix, by the adapter's features) and graph replay. Pure
 * functions of the shapes, dtypes and adapter features (the callers pass
 * what they read from the context or the weights). Callers (MoE, MoEStack,
 * ShardedMoE through the forward stages, nn's MLP, the GEMM ops) ask here; no threshold
 * lives anywhere else.
 * Over 400 lines on purpose: each threshold carries the measurements it was set
 * from beside it, so a decision and its evidence are read in one place.
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
 * - Router linear: the GEMV kernel (one workgroup per token and output) up to
 *   32 tokens, the 64x64 tiled kernel above.
 * - Decode GEMVs: rows per weight pass about the rows per active expert, a
 *   power of two, at most 8 (dense) or 4 (packed: the decode registers).
 * Software adapters (lavapipe: the kernels run on the CPU) have rules of their
 * own where measured there: GEMVs below 24 rows per expert (never the 4-row
 * decode tile), 'rows4' GEMV kernels for every format, one chunk per GEMV
 * dispatch, the combine in the down GEMV at T = 1.
 */

import { ValueError } from '@webmoe/tensor';
import { SGMAT_DEFAULT_SHAPE, SGMAT_MAX_WORKGROUP_BYTES, sgmatScalarTwin, type SgmatShapeName } from './grouped-gemm-fast-shapes.js';

/** Which fast prefill kernel (grouped-gemm-fast.ts). @example `groupedDownGpu(ctx, rec, h, g, w, undefined, { tile: 'fast', fast: 'f32' })` */
export type FastGemmKind = 'f32' | 'f16' | 'subgroup-matrix';

/** Workgroup memory (bytes) of the devices the wide subgroup-matrix tiles and the bands are for (the H200 / H100 offer 48 KiB). */
const WIDE_WORKGROUP_BYTES = 49152;

/** The thresholds behind the choices (read-only; documented above). */
export const KERNEL_CROSSOVERS = {
  /** Decode GEMVs for at most this many tokens... */
  gemvMaxTokens: 16,
  /**
   * ...or fewer than this many grouped rows per expert on average (T*k < 8E); from 8 on, the subgroup-matrix
   * GEMMs (fastMinRowsPerExpert). H200 2026-12-04, bf16, GEMV at exactly 8 rows per expert vs the matrix
   * GEMMs one token later (docs/perf-h200/2026-12-04-s7/crossover/): Mixtral T=32 / 33 3.33 / 1.76 ms,
   * Qwen3-30B T=128 / 129 1.93 / 0.869, GPT-OSS-20B T=64 / 65 2.07 / 1.11, DeepSeek-V2-Lite T=85 / 86 1.80 / 1.01.
   */
  gemvMaxRowsPerExpert: 8,
  /**
   * Software adapters (kernels on the CPU): the decode GEMVs below this many grouped rows per expert on average
   * (T*k < 24E; a single expert below 24 tokens), where the tiled GEMMs would take their 4-row decode tile
   * (decodeTileRowsPerExpert), which llvmpipe runs slower than the GEMVs; from 24 on the 32 x 32 tile, then the FMA
   * tiles, win. Lavapipe 2026-12-05 (`pnpm bench --tokens ...` with WEBMOE_EXPERT_KERNELS=gemv | grouped, device ms,
   * GEMVs / grouped): Qwen3-30B/s8 (E 16, k 8) bf16 T = 24 (12 rows per expert) 42.4 / 49.7, T = 32 (16) 60.9 / 77.2,
   * T = 40 (20) 67.2 / 74.9, T = 48 (24) 68.3 / 34.8, T = 64 (32) 89.3 / 50.0, int4 T = 40 60.0 / 71.4, T = 48 65.3 /
   * 32.0; Mixtral/s16 (E 4, k 2) bf16 T = 24 60.9 / 105, T = 40 92.2 / 146, T = 48 97.2 / 66.8, T = 64 136 / 92.0,
   * int4 T = 40 79.9 / 147, T = 48 83.5 / 68.2; DeepSeek-V2-Lite/s8 bf16 T = 32 83.4 / 93.8, T = 64 121 / 68.4.
   */
  gemvSoftwareMaxRowsPerExpert: 24,
  /**
   * A stack of layers (MoEStack) replays one captured graph of the whole stack for at most this many tokens; past it,
   * each layer replays its own graph (a whole-stack capture takes every layer's scratch at once, where the layers'
   * own graphs share one forward's scratch between them: GraphScratch).
   */
  stackGraphMaxTokens: 64,
  /** Tiled GEMMs: the 4-row decode tile below this many rows per (non-empty) expert. */
  decodeTileRowsPerExpert: 24,
  /** Fast prefill GEMMs from this many grouped rows per expert on average, by kernel. */
  fastMinRowsPerExpert: { 'subgroup-matrix': 8, f16: 64, f32: 64 } as Readonly<Record<FastGemmKind, number>>,
  /**
   * Software adapters: the f32 FMA tiles from this many grouped rows per expert on average (the 32 x 32 tile below).
   * Lavapipe 2026-12-06 (bench bf16, device ms with the f32 kernel from 64 / from 24 rows per expert, two runs each,
   * alternating): Qwen3-30B/s8 (E 16, k 8) T = 48 (24 rows) 30.8, 42.0 / 45.3, 48.7; T = 64 (32) 64.3, 47.2 / 48.9,
   * 37.5; T = 80 (40) 82.7, 66.6 / 50.2, 39.3; Mixtral/s16 (E 4, k 2) T = 64 (32) 115, 84.9 / 88.7, 66.3; T = 80 (40)
   * 158, 120 / 90.6, 73.6; DeepSeek-V2-Lite/s8 (E 8, k 6) T = 64 (48) 93.1, 69.5 / 67.6, 57.3; T = 80 (60) 131, 95.2 /
   * 81.4, 61.1; DeepSeek-V2/s16 (E 16, k 6) T = 48 (18) 58.6, 100 / 94.6, 90.5; T = 64 (24) 70.3, 65.9 / 69.4, 57.3;
   * T = 80 (30) 80.7, 82.0 / 81.8, 62.6.
   */
  fastMinRowsPerExpertSoftware: 32,
  /**
   * Decode routing (router top-k, grouping, active-expert list) in one single-workgroup dispatch
   * (route_decode) for at most this many tokens; beyond, the router's one workgroup per token
   * followed by group_decode.
   */
  fusedRoutingMaxTokens: 4,
  /**
   * One token's router linear inside route_decode (its one workgroup reads the whole router weight: one dispatch
   * fewer, the weights at one SM's rate) for routers of at most `maxWeights` values (E x H) and at most
   * ROUTE_LINEAR_MAX_EXPERTS experts, by adapter kind; larger ones run linearGpu first.
   * GPUs: H100 2026-12-07 (session 39 call 1, `scripts/gpu/h200-s39.sh r`: bench --tokens 1 --stack 4, layer device
   * ms, two alternating rounds, the linear its own dispatch / inside route_decode for routers to 2^18 weights):
   * Mixtral (E 8 x H 4096, 32 K weights) bf16 0.270, 0.270 / 0.265, 0.265, int4 0.153 (0.222 in the first round) /
   * 0.149, 0.149; GPT-OSS-20B (92 K) bf16 0.110-0.111 / 0.111, int4 0.0882-0.0886 / 0.0885 (level); DeepSeek-V2-Lite
   * (131 K) bf16 0.0995 / 0.143, int4 0.0966-0.0968 / 0.139; Qwen3-30B (262 K) bf16 0.0640 / 0.159, int4 0.0568-0.0571 /
   * 0.106-0.107: one SM reads the weights at ~5 GB/s (route_decode 0.119 ms for Qwen3's 0.5 MB). Hence 2^16.
   * Software adapters (lavapipe 2026-12-07, bench --quick --tokens 1, the stage profile's ms, two alternating rounds,
   * linear + route_decode / route_decode with it): Qwen3-30B bf16 1.19 + 0.13, 0.74 + 0.07 / 0.37, 0.28; int4 2.03 +
   * 0.11, 0.94 + 0.13 / 0.79, 0.39; DeepSeek-V2-Lite bf16 0.55 + 0.11, 0.44 + 0.09 / 0.32, 0.31; GPT-OSS-20B bf16 0.34
   * + 0.07, 0.33 + 0.07 / 0.25, 0.26: faster to Qwen3's 262 K weights (larger ones not measured). Hence 2^19.
   */
  routerLinearInRouting: { gpu: { maxWeights: 1 << 16 }, software: { maxWeights: 1 << 19 } } as Readonly<Record<'gpu' | 'software', Readonly<{ maxWeights: number }>>>,
  /**
   * groupGpu in one single-workgroup dispatch (group_one) for at most this many (token, slot) pairs, four passes
   * (zero, count, scan, scatter) above. H100 2026-12-06 (session 29 call 1, prefill-small-probe, us per grouping in a
   * chain, four passes / one): T = 128 (256-1024 pairs) 23.0-23.8 / 7.8-9.4; T = 512 (1024-4096 pairs) 19.7-23.2 /
   * 9.1-15.8, Qwen3 and DeepSeek-V3 (4096 pairs) 20.4-20.9 / 15.6-15.8; in the layer's profile (call 1) Qwen3 T = 1024
   * (8192 pairs) 25.4 us against session 28's 38.9 for the four passes.
   */
  groupOneWorkgroupMaxPairs: 8192,
  /**
   * The subgroup-matrix GEMMs' f16 x rows (halfRowsKernel): a row read once into registers (256 threads) from this
   * many inputs, read twice (64 threads: its max, then its halves) below. H100 2026-12-06 (session 29 call 1,
   * prefill-small-probe, the down GEMM's act rows, us, two reads / once): Mixtral (I 14336) T = 128 24.6 / 8.3, T = 512
   * 78.9 / 35.9; DeepSeek-V3 (2048) T = 512 28.2 / 19.7; GPT-OSS-20B (2880) 13.6 / 10.8; DeepSeek-V2-Lite (1408) 9.0
   * / 9.7; Qwen3 (768) 7.6 / 10.5.
   */
  halfRowsRegsMinInputs: 2048,
  /**
   * Router linear, past the skinny kernel's rule (linearSkinny, below): the GEMV kernel for at most this many tokens,
   * the tiled kernel above. (Before session 31 the GEMV also took GPUs' routers up to T * N = 4096, H100 2026-12-06,
   * session 29 call 1, us, gemv / tiled: Mixtral T = 512 17.9 / 27.0, GPT-OSS-20B T = 128 19.3 / 27.2; the skinny
   * kernel took those: 6.8 and 6.3.)
   */
  linearGemvMaxTokens: 32,
  /**
   * Router linear: the skinny kernel (a workgroup per 1, 2 or 4 tokens x 8 outputs, 256 lanes over K) for N outputs
   * up to `maxOutputs`, at every T where N <= `narrowOutputs`, else while T * N <= `maxTokenOutputs`; taken before
   * the GEMV and tile rules above (by adapter kind). Its tokens per workgroup (linearSkinnyTokens): 4 where the
   * weights hold at least `wideWeights` values (each workgroup reads all of its 8 rows from L2: 4 tokens a read halve
   * that traffic), else 2; fewer where that leaves fewer than `minWorkgroups` workgroups.
   * GPUs: H100 2026-12-07 (session 31 call 1, `scripts/gpu/h200-s30.sh r`: prefill-small-probe --linear-only, us per
   * dispatch, gemv / tiled / skinny with 1, 2, 4 tokens): Mixtral (N 8, K 4096) T = 1 8.72 / 29.1 / 8.67, 9.72,
   * 11.6; T = 512 18.0 / 27.3 / 6.82, 7.14, 8.35; T = 1024 - / 40.8 / 10.2, 9.16, 10.5; T = 4096 - / 207 / 34.5, 34.6,
   * 37.9. GPT-OSS-20B (N 32, K 2880) T = 512 53.6 / 27.7 / 14.4, 12.2, 13.9; T = 4096 - / 107 / 88.1, 66.6, 72.5.
   * DeepSeek-V2-Lite (N 64, K 2048) T = 128 24.6 / 26.5 / 8.25, 7.37, 7.66; T = 512 86.8 / 27.2 / 20.7, 17.6, 19.6;
   * T = 1024 - / 28.8 / 36.9, 30.1, 32.8 (T * N = 65536: the tiles). Qwen3-30B (N 128, K 2048) T = 16 8.93 / 25.0 /
   * 4.93, 5.33, 6.43; T = 128 45.4 / 26.8 / 13.2, 11.9, 13.2; T = 512 170 / 28.6 / 38.8, 31.2, 33.5 (the tiles).
   * DeepSeek-V3 (N 256, K 7168: 1.8 M weights) T = 16 24.3 / 29.5 / 11.2, 9.59, 10.3; T = 128 160 / 48.5 / 61.8,
   * 41.9, 38.8; T = 512 623 / 127 / 247, 151, 128 (the tiles, level); T = 4096 - / 955 / 1995, 1179, 901 (the tiles,
   * 6% behind: the rule keeps T * N). At T = 1 the skinny kernel is level with the GEMV (8.09-10.1 against 8.21-10.4).
   * Software adapters: 4 tokens at every T measured (lavapipe 2026-12-06, session 30, the same probe, us, gemv / tiled
   * / skinny): Mixtral T = 1 214 / 24608 / 156, T = 512 66893 / 146753 / 11307; GPT-OSS-20B T = 4 2576 / 17440 / 206,
   * T = 128 70971 / 24576 / 7584; Qwen3-30B T = 1 2764 / 25288 / 576, T = 512 963285 / 182824 / 96342; DeepSeek-V3
   * T = 1 6592 / 129205 / 1855, T = 40 227726 / 129148 / 28187 (wider linears than 256 outputs were not measured and
   * keep the tiles).
   */
  linearSkinny: {
    gpu: { maxOutputs: 256, narrowOutputs: 32, maxTokenOutputs: 32768, wideWeights: 1 << 20, minWorkgroups: 256 },
    software: { maxOutputs: 256, narrowOutputs: 256, maxTokenOutputs: Infinity, wideWeights: 0, minWorkgroups: 0 },
  } as Readonly<Record<'gpu' | 'software', Readonly<{ maxOutputs: number; narrowOutputs: number; maxTokenOutputs: number; wideWeights: number; minWorkgroups: number }>>>,
  /**
   * The decode down GEMV with the combine in it (moe-gemv-combine.ts: one dispatch fewer, a workgroup row per token
   * reading its k experts' rows in turn) for at most this many tokens where 'auto' chooses, by adapter kind and down
   * weights (16-bit dense, or packed with scales; 0: never). Oldest measurements first.
   * Software adapters (lavapipe, 2026-12-05, `pnpm bench --quick --tokens 1,16`, two runs of each path alternating,
   * device ms separate -> fused at T = 1): Qwen3-30B/s8 bf16 4.17, 4.21 -> 2.62, 2.86; GPT-OSS-20B/s8 bf16 6.24, 6.02
   * -> 3.99, 8.59 (noisy), mxfp4 7.18, 7.21 -> 5.59, 5.85; DeepSeek-V2-Lite/s8 6.49, 6.65 -> 4.62, 4.65; Mixtral/s16
   * 5.44, 5.61 -> 4.61, 4.72; DeepSeek-V3/s16 bf16 8.30, 8.00 -> 5.49, 7.42, fp8 10.3, 10.4 -> 7.13, 9.79; at T = 16
   * bf16 mostly faster, packed slower (mxfp4 42, 43 -> 53, 59; fp8 60, 61 -> 71): T = 1 only. GPUs: off, measured
   * (H100, 2026-12-05, session 17 call 3, bench --stack 8 at T = 1, WEBMOE_DOWN_COMBINE=fused then the default in one
   * call, device ms fused / separate): Qwen3-30B bf16 0.0706 / 0.0711, int4 0.0579 / 0.0568; DeepSeek-V2-Lite 0.107 /
   * 0.106, 0.103 / 0.0965; GPT-OSS-20B 0.119 / 0.120, 0.108 / 0.101; Mixtral 0.397 / 0.379, 0.190 / 0.177: the
   * combine's dispatch saved (~4 us on Qwen3, H200 2026-12-04 decode-probe) is lost to the combined GEMV's k times
   * fewer workgroups, each reading k experts' rows in turn.
   * GPUs, 16-bit dense weights: at T = 1 since session 35, on KERNEL_CROSSOVERS.combinedDownDenseKernel's split-K
   * 'rows2k2' (two 32-lane groups per output block: twice the workgroups of 'rows2'). H100 2026-12-07 (session 35 call
   * 1, docs/perf-h200/2026-12-07-s35/call1, bench --tokens 1 --iters 20 --stack 4, WEBMOE_DOWN_COMBINE=auto then fused,
   * two alternating rounds, device ms separate -> fused): bf16 Mixtral 0.279, 0.279 -> 0.271, 0.271; Qwen3-30B 0.0718,
   * 0.0722 -> 0.0668, 0.0665; GPT-OSS-20B 0.119, 0.119 -> 0.110, 0.111; DeepSeek-V2-Lite 0.106, 0.107 -> 0.100, 0.101.
   * Packed weights stay off: fp8 (the format's own one-row kernel) Mixtral 0.176, 0.177 -> 0.180, 0.180, GPT-OSS 0.0922,
   * 0.0920 -> 0.0928, 0.0932, DeepSeek-V2-Lite 0.0915, 0.0913 -> 0.0948, 0.0944, only Qwen3 0.0587, 0.0589 -> 0.0575,
   * 0.0572; int4 slower fused in session 17 (above).
   * Up to 4 tokens for 16-bit weights on GPUs (session 35 call 7, docs/perf-h200/2026-12-07-s35/call7, bench --tokens
   * 2,4,8 --stack 4, bf16, auto then fused, two alternating rounds, device ms): T = 2 Mixtral 0.506, 0.507 -> 0.496,
   * 0.500; Qwen3 0.108, 0.107 -> 0.0990, 0.100; GPT-OSS 0.183, 0.183 -> 0.184, 0.184; DeepSeek-V2-Lite 0.156, 0.157 ->
   * 0.147, 0.148. T = 4: 0.975, 0.976 -> 0.939, 0.937; 0.166, 0.167 -> 0.160, 0.161; 0.332, 0.333 -> 0.323, 0.323;
   * 0.235, 0.236 -> 0.227, 0.227. T = 8: Mixtral 1.30, 1.31 -> 1.47, 1.45 (slower), the others level (Qwen3 0.256,
   * 0.257 -> 0.257, 0.256). T = 3 not measured (between two that gain).
   * Software adapters, 16-bit weights up to 4 tokens too (lavapipe, 2026-12-07 session 35, `bench --quick --dtypes bf16
   * --tokens 2,4 --iters 20`, three alternating runs of each, medians of the runs' device ms, auto -> fused): T = 2
   * Qwen3-30B/s8 9.42 -> 7.97, GPT-OSS-20B/s8 16.5 -> 14.3, DeepSeek-V2-Lite/s8 14.7 -> 11.9, DeepSeek-V3/s16 18.8 ->
   * 11.8, Mixtral/s16 14.0 -> 15.1 (its runs 13.4-16.5 against 13.8-16.5); T = 4 15.9 -> 12.4, 27.2 -> 24.3, 24.1 ->
   * 19.4, 28.1 -> 20.4, 25.2 -> 22.7. Packed weights there stay at T = 1 (T = 2-4 not measured).
   */
  combinedDownMaxTokens: { gpu: { dense: 4, packed: 0 }, software: { dense: 4, packed: 1 } } as Readonly<Record<'gpu' | 'software', Readonly<Record<'dense' | 'packed', number>>>>,
  /**
   * The combined down GEMV's kernel for 16-bit dense weights, by adapter kind (packed weights take the expert-major
   * GEMV's kernel at one row per pass). GPUs: 'rows2k2' (two 32-lane groups share each output block's columns: twice
   * the workgroups of 'rows2', where the combined GEMV has k times fewer than the two dispatches it replaces). H100
   * 2026-12-07 (session 34 call 6, docs/perf-h200/2026-12-07-s34/call6, gemv-bench --combined --chain 8, T = 1, ms,
   * down GEMV + combine / combined 'rows2' / combined 'rows2k2'): bf16 Qwen3-30B 0.0161 / 0.0122 / 0.0105, GPT-OSS-20B
   * 0.0364 / 0.0349 / 0.0278, Mixtral 0.0861 / 0.0886 / 0.0817. Packed: fp8 mixed on split-K (Qwen3 'rows2' 0.0148,
   * 'rows2k2' 0.0159; GPT-OSS 0.0236 / 0.0220), int4 slower combined than as two dispatches on Mixtral and GPT-OSS on
   * every kernel. In the layer (session 35, combinedDownMaxTokens) the 16-bit gain held. Software adapters: 'rows2',
   * as measured there (combinedDownMaxTokens).
   */
  combinedDownDenseKernel: { gpu: 'rows2k2', software: 'rows2' } as Readonly<Record<'gpu' | 'software', GemvPackedKernel>>,
  /**
   * Whether 'auto' runs a layer's shared expert in the routed experts' decode GEMVs (useSharedExpertSlots), by adapter
   * kind. Software adapters: no (a GEMV dispatch binds one chunk there, so the joined stack costs a dispatch per GEMV
   * more: the DeepSeek-V3 fixture at T = 1 on lavapipe records 7 dispatches joined against 6). GPUs: no, measured on
   * the H200 (2026-12-05, session 16, full DeepSeek-V3 at T = 1): joined bf16 0.313 ms against 0.299 separate, fp8
   * 0.214 against 0.218 (docs/PERFORMANCE.md).
   */
  sharedExpertSlots: { gpu: false, software: false } as Readonly<Record<'gpu' | 'software', boolean>>,
  /**
   * The tiled linear splits K over workgroups (each a K slice of at least `minSliceK`, a second dispatch
   * summing the slices in order) until about `targetWorkgroups` workgroups run: a router linear has few
   * 64 x 64 output tiles (DeepSeek-V3 at T = 128: 2 x 4), each looping over all of K = 7168 in slices of
   * 16 (0.64 ms at every T from 128 to 4096 on the H200, 2026-12-04).
   */
  linearSplitK: { targetWorkgroups: 256, minSliceK: 256 },
  /**
   * The subgroup-matrix down GEMM splits K over workgroups (sgmatSplitKFor; splitKReduceKernel sums the partials) where
   * a call has fewer than `targetWorkgroups` tiles and at most `maxRowsPerExpert` rows per expert on average (few
   * whole-K workgroups per wave of the GPU, a second wave where an expert passes its row tile): up to `maxSplit`
   * slices of at least `minSliceK` each (targetWorkgroups 0 = off). H100 2026-12-06 (session 23 call 1, prefill-bench,
   * the router's uneven rows, medians of three rounds, docs/perf-h200/2026-12-06-s23/call1/splitk-512.txt), GEMMs ms
   * unsplit / 2 / 3 / 4 ways: Mixtral T = 128 (32 rows per expert; down 176 tiles of K = 14336 on the 128 x 192 tile)
   * bf16 1.93 / 1.76 / 1.71 / 1.78; at 128 rows per expert with no expert past its tile it costs a little (Mixtral
   * T = 512, 144 x 256, 128 tiles: 2.32 / 2.33 / 2.36 / 2.38; int4 2.65 / 2.70 / 2.70 / 2.72) and loses outright
   * where a call has enough tiles (DeepSeek-V3-e32 T = 512, 896 tiles of K = 2048: 2.37 / 2.69 / 2.83; T = 128, 1216
   * tiles: 1.79 / 1.86 / 1.91; Qwen3-30B 0.78 / 0.84 / 0.88) or short K (GPT-OSS-20B T = 128, K 2880, 480 tiles: 1.00 /
   * 1.02 / 1.02).
   * Up to 144 rows per expert (the 144-row tile's) since session 24: one expert past its row tile gives a call of few
   * tiles a second wave of whole-K workgroups, which the split shortens. H100 2026-12-06 (session 24 calls 3-6,
   * prefill-bench, medians of three rounds, docs/perf-h200/2026-12-06-s24), Mixtral T = 512 bf16 on the 144 x 256 tile,
   * unsplit / 2 ways ms: one expert of 145 rows (as the bench router's) 2.97 / 2.68, 168 rows 2.99 / 2.69, the router's
   * 115-133 rows 2.32 / 2.33, even 128 rows 2.31 / 2.32; int4 3.59 / 3.28, 2.67 / 2.71; T = 256 and 384 (47-74 and
   * 88-109 rows) on the 128 x 192 tile bf16 2.02 / 1.84 (3 ways 1.79) and 2.07 / 1.90 (1.86); on the 144 x 256 tile
   * int4 2.52 / 2.55 and 2.58 / 2.62, fp8 3.62 / 3.58 and 3.70 / 3.69.
   * `tileSplits`: the 32 x 128 pf2 tile's down GEMMs (8-48 rows per expert, sgmatTiles.bands) split 3 ways wherever K
   * allows, whatever the call's workgroups: the count above bounds an expert's row tiles by one partial tile each
   * (Mixtral T = 128: (256 / 32 + 8) x 32 column tiles = 512, not below the target, though 26-41 rows per expert give
   * ~13 row tiles). H100 2026-12-06 (session 26 calls 1-2, prefill-bench, the router's uneven rows, medians of three
   * rounds), Mixtral T = 128 GEMMs unsplit / 3 ways ms: bf16 1.53 / 1.39, int4 1.58 / 1.43, fp8 1.81 / 1.72, MXFP4
   * 1.39 / 1.27. Where K / 3 < minSliceK no split (DeepSeek-V3-e32 K 2048: 1.37 / 1.48; GPT-OSS-20B K 2880, T = 128
   * 0.70 / 0.72; Qwen3-30B K 768 0.53 / 0.57).
   */
  sgmatSplitK: { targetWorkgroups: 512, maxSplit: 3, minSliceK: 2048, maxRowsPerExpert: 144, tileSplits: { m32n128k64vap2: 3 } } as Readonly<SgmatSplitKRule>,
  /**
   * The tail dispatch (grouped-gemm-fast.ts FastGemmPlan.tail: the rows past each expert's last full row tile, where they
   * fit this smaller tile, on a dispatch of their own instead of a last, nearly empty row tile) that sgmatTailFor gives
   * a subgroup-matrix down GEMM split along K (sgmatSplitK), split as the main dispatch; other calls none. H100
   * 2026-12-07 (session 35 call 3, docs/perf-h200/2026-12-07-s35/call3, prefill-bench, medians of three rounds, GEMMs
   * ms without / with the tail, down GEMM in brackets), one expert 17 rows past the even spread: Mixtral T = 512 (down
   * split 2 ways) bf16 2.64 -> 2.43 (1.04 -> 0.88), int4 3.01 -> 2.73 (1.20 -> 0.99); unsplit downs lose or gain
   * nothing: Mixtral T = 1024 bf16 3.52 -> 3.73 (1.16 -> 1.36), GPT-OSS-20B T = 1024 1.44 -> 1.54, Qwen3-30B 0.90 ->
   * 0.91. Under the bench router's random rows (no expert past its row tile at T = 512) level: Mixtral T = 512 2.25 ->
   * 2.27, int4 2.52 -> 2.54. As the planner's rule (call 4, docs/perf-h200/2026-12-07-s35/call4, the same bench, +notail
   * against the default): Mixtral T = 512 shifted bf16 2.66 -> 2.54, int4 2.99 -> 2.80, random 2.31 -> 2.30, 2.55 ->
   * 2.57; T = 256 and 384 (the 128 x 192 tile, split) within 0.02 ms either way (an empty tail dispatch costs ~10 us).
   */
  sgmatTail: { splitDown: 'm32n128k64vap2' } as Readonly<{ splitDown: SgmatShapeName | undefined }>,
  /** Decode GEMVs: most token rows accumulated per weight pass (the WGSL is unrolled over them), dense and packed weights. */
  gemvMaxRowsPerPass: { dense: 8, packed: 4 } as Readonly<Record<'dense' | 'packed', number>>,
  /**
   * The packed decode GEMV kernel (GemvOptions.packedKernel overrides it): 'table' (8 columns per load
   * through a byte -> value table), 'wide' (16-byte loads, arithmetic decoding, one output per 32-lane
   * group), or 'rows1' | 'rows2' | 'rows4' (16-byte loads, exact bit decoding, 1, 2 or 4 outputs per group
   * sharing each x load), by token rows per weight pass (gemvRowsPerPass): one row (a token per
   * expert, T = 1 decode) and more. H200 2026-12-03 (scripts/gpu/gemv-bench.ts, Mixtral / DeepSeek-V3-e32 /
   * Qwen3 shapes, gate_up + down, docs/perf-h200/2026-12-03-mid): at one row 'rows2' against 'table'
   * fp8 0.72 vs 0.79 ms summed over the three shapes (DeepSeek-V3-e32 0.149 vs 0.297), int8 0.64 vs 1.07,
   * int4 and mxfp4 level (0.63 vs 0.61, 0.99 vs 0.97); at 16 rows 'rows4' against 'table' int4 4.29 vs
   * 6.22, int8 4.06 vs 9.68, mxfp4 4.89 vs 9.75, fp8 4.93 vs 10.98 ms.
   * `byFormat`: the 4-bit formats' own kernels, code words interleaved over the lanes ('rows2i': a 16-byte chunk of
   * 32 columns per lane strides the warp's x loads by 128 bytes). H200 2026-12-05 (session 17,
   * docs/perf-h200/2026-12-05-s17): gemv-bench, rows2i / planner's rows2 (T = 1) or rows4 (T = 16): Qwen3 int4
   * T = 1 0.90x, T = 16 0.80x (MXFP4 0.88x, 0.75x), DeepSeek-V3 int4 0.83x, 0.81x (MXFP4 0.81x, 0.78x), Mixtral
   * int4 T = 16 0.64x; the layer (bench, rows2i / rows4i as defaults, two runs each): Mixtral int4 T = 1 0.180 ->
   * 0.167 ms, T = 16 1.74 -> 1.42, Qwen3 int4 0.058 -> 0.054, 0.453 -> 0.375. H100 (call 3, the layer with rows2i
   * against the old planner, same call): int4 T = 1 Qwen3 0.0598 -> 0.0556, Mixtral 0.187 -> 0.173, GPT-OSS 0.102 ->
   * 0.100; T = 16 0.454 -> 0.376, 1.75 -> 1.34, 0.847 -> 0.638; MXFP4 T = 16 0.453 -> 0.374, 1.75 -> 1.32, 0.832 ->
   * 0.629, but MXFP4 T = 1 mixed (Qwen3 0.0601 -> 0.0556, Mixtral 0.186 -> 0.168, GPT-OSS 0.102 -> 0.147: an e8m0
   * scale per code word instead of per chunk), so MXFP4 kept 16-byte chunks at one row until its e8m0 scales were
   * decoded by exponent placement instead of exp2 (session 17, `ef98098`): H100 2026-12-05 (session 18 call 1,
   * docs/perf-h200/2026-12-05-s18/call1/gemv-mxfp4.txt, gemv-bench --split, T = 1, rows2 / rows2i ms) MXFP4 Mixtral
   * 0.503 / 0.466, Qwen3 0.187 / 0.157, GPT-OSS-20B 0.365 / 0.311 (int4 0.165 / 0.154, 0.180 / 0.158, 0.365 / 0.314):
   * MXFP4 takes 'rows2i' at one row too. 8- and 16-bit weights keep
   * them everywhere: interleaved, fp8 1.3-1.6x slower (DeepSeek-V3 fp8 T = 1 0.97 vs 0.59 ms), bf16 level at T = 1
   * and up to 1.34x slower at T = 16 (Mixtral 1.37 vs 1.02 ms in the layer).
   * `longRows`: int4 and MXFP4 at one row, rows of at least 2880 columns: first (session 34) the staged-x 'rows2s' for
   * both GEMVs, then (session 37) the x-in-registers kernels, 'rows8k4x' for the down GEMV and 'rows4x' for gate_up.
   * 'rows2s': H100 2026-12-07
   * (session 34 call 1, docs/perf-h200/2026-12-07-s34): the layer at T = 1 (bench --iters 20 --stack 4, device ms, same
   * call) with every one-row GEMV on 'rows2s' against this rule's 'rows2i': int4 / MXFP4 Mixtral (K 4096 and 14336)
   * 0.178 -> 0.162 / 0.171 -> 0.155, GPT-OSS-20B (K 2880) 0.103 -> 0.0958 / 0.0983 -> 0.0930, but Qwen3-30B (K 2048 and
   * 768) 0.0562 -> 0.0591 / 0.0564 -> 0.0579 and DeepSeek-V2-Lite (K 2048 and 1408) 0.0956 -> 0.101 / 0.0942 -> 0.0991:
   * staged from the shortest row measured to gain (untested between 2048 and 2880); fp8 slower on three of four
   * (Mixtral 0.177 -> 0.191), bf16 level: kept.
   * `longRows.down`: the down GEMVs the rule takes run on the x-in-registers 'rows8k4x' instead (its x chunk loaded
   * once into registers and streamed past 8 output rows, 4 lane groups splitting K). H100 2026-12-07 (session 37,
   * docs/perf-h200/2026-12-07-s37): gemv-bench --chain 8 --split (call 1, down GEMV ms, 'rows2s' / 'rows8k4x'): int4
   * Mixtral (K 14336) 0.0453 / 0.0410, GPT-OSS-20B (K 2880) 0.0207 / 0.0178; MXFP4 0.0453 / 0.0407, 0.0223 / 0.0187;
   * their gate_up GEMVs slower on it (int4 Mixtral 0.0740 / 0.0802). The layer (call 3, bench --tokens 1 --iters 20
   * --stack 4, device ms, this rule without / with `down`, two alternating rounds): int4 Mixtral 0.160, 0.160 -> 0.156,
   * 0.155; GPT-OSS-20B 0.0966, 0.0960 -> 0.0946, 0.0944; MXFP4 Mixtral 0.157, 0.158 -> 0.151, 0.152; GPT-OSS-20B 0.0938,
   * 0.0942 -> 0.0928, 0.0925. Below 2880 columns the same kernel on the down GEMV (in place of 'rows2i') was level on
   * Qwen3-30B (K 768: int4 0.0564, 0.0560 -> 0.0557, 0.0557) and slower on DeepSeek-V2-Lite (K 1408: 0.0966, 0.0962 ->
   * 0.100, 0.100; MXFP4 0.0947 -> 0.0983, 0.0987): not taken there. Every gate_up and down on it (call 1): int4 Mixtral
   * 0.160 -> 0.167, DeepSeek-V2-Lite 0.0966 -> 0.117.
   * `longRows.oneRow` (the gate_up GEMVs) on 'rows4x' (x in registers, one 32-lane group per block of 4 outputs, 8
   * rows with gate and up) instead of 'rows2s': H100 2026-12-07 (session 37, calls 7-8, docs/perf-h200/2026-12-07-s37,
   * bench --tokens 1 --iters 20 --stack 4, three alternating rounds, device ms, 'rows2s' -> 'rows4x', the downs on
   * 'rows8k4x' in both): int4 GPT-OSS-20B (K 2880) 0.0940, 0.0932, 0.0933 -> 0.0877, 0.0861, 0.0862, MXFP4 (0.136: a
   * slow clock), 0.0926, 0.0929 -> 0.0858, 0.0856, 0.0853; Mixtral (K 4096) level: int4 0.155, 0.158, 0.157 -> 0.155,
   * 0.156, 0.158, MXFP4 0.151, 0.153, 0.153 -> 0.152, 0.151. The other shapes lost or tied (round 1: 'rows4k2x' Mixtral
   * int4 0.155 / GPT-OSS 0.0958, 'rows2k4x' 0.176 / 0.0943, 'rows8k2x' 0.175 / 0.0930). gemv-bench (call 7, --chain 8
   * --split): in line, GPT-OSS MXFP4 'rows4x' 0.0592 against 'rows2s' 0.0724 for both GEMVs.
   * A long-row kernel runs where it fits the device's workgroup memory (plannedKernel), else `oneRow`.
   */
  gemvPackedKernel: {
    oneRow: 'rows2',
    moreRows: 'rows4',
    byFormat: {
      int4: { oneRow: 'rows2i', moreRows: 'rows2i', longRows: { minCols: 2880, oneRow: 'rows4x', down: 'rows8k4x' } },
      mxfp4: { oneRow: 'rows2i', moreRows: 'rows2i', longRows: { minCols: 2880, oneRow: 'rows4x', down: 'rows8k4x' } },
    },
  } as GemvPackedKernelRule,
  /**
   * Whether the staged-x decode GEMVs ('rowsNs') issue each lane's code and scale loads of a slice before the
   * workgroup's copy of the slice's x (GemvVariant.xsFirst: the two memory latencies overlap, the loads' registers live
   * across the copy's barriers), by adapter kind. Software adapters: no (lavapipe 2026-12-07, session 36, bench --quick
   * --dtypes fp8,mxfp4 --tokens 1 --iters 20, three alternating runs each, medians of device ms, after / before:
   * slower in 9 of 10 rows, fp8 Qwen3-30B/s8 5.08 / 3.13, DeepSeek-V2-Lite/s8 8.32 / 4.79, GPT-OSS-20B/s8 8.18 / 6.03,
   * MXFP4 Mixtral/s16 8.92 / 5.08; DeepSeek-V3/s16 MXFP4 17.0 / 18.0: llvmpipe runs a barrier as a coroutine switch,
   * saving what lives across it). GPUs: no (H100 2026-12-07, session 36 call 1, docs/perf-h200/2026-12-07-s36, bench
   * --tokens 1 --iters 20 --stack 4, device ms, this rule off / on, same machine): int4 Mixtral 0.163 / 0.167, GPT-OSS-20B
   * 0.0964 / 0.0970; MXFP4 0.157 / 0.164, 0.0931 / 0.0945 (the rows the staged kernel runs; the others level).
   */
  stagedXLoadsFirst: { gpu: false, software: false } as Readonly<Record<'gpu' | 'software', boolean>>,
  /**
   * Whether the row-blocked decode GEMVs with 16-byte chunks per lane load each lane's next step of codes and scales
   * before the current step decodes (GemvVariant.pf; it takes the place of stagedXLoadsFirst), by adapter kind. GPUs:
   * no (H100 2026-12-07, session 36 call 1, docs/perf-h200/2026-12-07-s36, bench --tokens 1 --iters 20 --stack 4,
   * device ms, off / on, same machine): slower or level on every row it changes, int4 Mixtral 0.163 / 0.174, GPT-OSS-20B
   * 0.0964 / 0.0994; MXFP4 0.157 / 0.168; fp8 Mixtral 0.180 / 0.193, Qwen3-30B 0.0598 / 0.0643, DeepSeek-V2-Lite 0.0915 /
   * 0.0957, full DeepSeek-V3 0.246 / 0.268; bf16 level (0.277 / 0.278, 0.0675 / 0.0669): the packed GEMVs are not bound by
   * each warp's load latency (the session's ablations, gemv-bench --ablate: their arithmetic does not overlap the weight
   * traffic). Software adapters: not measured (off).
   */
  gemvPrefetchCodes: { gpu: false, software: false } as Readonly<Record<'gpu' | 'software', boolean>>,
  /**
   * Split-K packed decode GEMV for calls that launch few workgroups over long rows: where the default
   * kernel's grid (expert slots x output blocks) is below `maxWorkgroups` and the weight rows have at least
   * `minCols` columns, the 'rowsNkS' kernel of the same rows per pass instead (more workgroups per expert,
   * fewer chunks per lane). Candidates for Mixtral's down GEMV at T = 1 (2 slots x 256 blocks of K = 14336)
   * and DeepSeek-V3's shared expert (1 slot x 128 / 448 blocks); off (maxWorkgroups 0) until the H200 ranks
   * them (scripts/gpu/gemv-bench.ts).
   */
  /**
   * The decode GEMV of 16-bit dense weights: the row-blocked kernels ('rowsN': N outputs per 32-lane group
   * sharing each x load, 16-byte loads) with 'rows2' for at most `rows2MaxPairs` (token, expert) pairs (T = 1
   * decode) and 'rows4' above, except where the dense kernel (one output per group, up to 8 token rows per
   * pass) accumulates `denseMinRowsPerPass` or more rows per pass (a single expert over T >= 8 tokens).
   * H200 2026-12-04 (gemv-bench, gate_up + down, docs/perf-h200/2026-12-04-s7/gemv-bf16.txt), dense vs
   * rows2 vs rows4 ms: DeepSeek-V3 T = 1 0.751 / 0.619 / 0.630, T = 16 9.88 / 3.30 / 2.62; Qwen3-30B T = 1
   * 0.116 / 0.111 / 0.116, T = 16 0.942 / 0.849 / 0.835; Mixtral T = 1 0.218 / 0.204 / 0.210, T = 16 1.42 /
   * 1.39 / 1.39; DeepSeek-V3's shared expert (one expert) T = 1 0.058 / 0.056 / 0.072, T = 16 0.223 / 0.230 / 0.279.
   */
  gemvDenseKernel: { rows2MaxPairs: 8, denseMinRowsPerPass: 8 } as Readonly<{ rows2MaxPairs: number; denseMinRowsPerPass: number }>,
  /**
   * The subgroup-matrix GEMM's tiles by average grouped rows per expert (sgmatTileFor; the 16-bit ones vector-staged):
   * for the formats of `wideShapes` from `wideMinRowsPerExpert` (16-bit / packed) their wide tile (16-bit: 128 x 192
   * with 64-wide K slices, or a band's tile in its range of rows per expert (`bands`: the 32 x 128 pf2 tile for 8-48
   * rows (16-bit, MXFP4) or 8-32 (int4, fp8), 16-bit 144 x 256 around 128 rows, fp8 128 x 256 from 64 to 511 rows); int4,
   * MXFP4 and fp8: 144 x 256) over
   * f16 x rows where the device offers its `wideWorkgroupBytes` of workgroup memory; else for 16-bit weights 32-row
   * tiles up to `smallMaxRowsPerExpert`, 128-row tiles over f16 x rows from `largeMinRowsPerExpert` where the call has
   * at least `largeMinOutputs` outputs, and 64-row tiles otherwise.
   */
  sgmatTiles: {
    smallMaxRowsPerExpert: 16,
    largeMinRowsPerExpert: 128,
    largeMinOutputs: 2560,
    // 16-bit weights from 64 rows per expert until session 23: H200 2026-12-05 (prefill-bench bf16, random routing: rows per expert
    // uneven as the layer's, docs/perf-h200/2026-12-05-s13/call1/prefill-uneven.txt), GPT-OSS-20B T = 512 (64 rows per
    // expert on average, 52-81): 128 x 256 over f16 x 1.22 ms against the 64 x 128 tile's 1.54 (an expert past 64 rows
    // takes a second 64-row tile); Mixtral T = 512 (115-133 rows): 3.28 vs 4.52 (128 x 128) and 4.62 (64 x 128)
    // From 8 rows per expert (the matrix GEMMs' start) since session 23: the 128 x 192 k64 tile over f16 x rows beat
    // the 32- and 64-row gathered tiles below 64 rows per expert too. H100 2026-12-06 (session 23 call 1, prefill-bench
    // bf16, the router's uneven rows, medians of three rounds, docs/perf-h200/2026-12-06-s23/call1/splitk-512.txt),
    // 128 x 192 k64 / the rule before ms: Qwen3-30B T = 128 (8 rows per expert, 3-15) 0.78 / 0.82 (32 x 128), T = 512
    // (32) 0.84 / 0.95 (64 x 128); GPT-OSS-20B T = 128 (16) 1.00 / 1.12; Mixtral T = 128 (32) 1.93 / 1.99;
    // DeepSeek-V3-e32 T = 128 (32) 1.79 / 2.03.
    wideMinRowsPerExpert: { half16: 8, packed: 64 },
    wideWorkgroupBytes: WIDE_WORKGROUP_BYTES,
    // Before session 18, the 128 x 256 tile of each weight format measured on it: vector-staged, except int4 (2-byte
    // staging stores: the vector-staged tile was 60% slower for Mixtral's int4 at T = 512, 4% faster at 4096); int8 is
    // not measured on it and keeps the 64 x 128 tile
    // 16-bit weights: 64-wide K slices of a 128 x 192 tile (half the barriers per K of the 128 x 256 tile's 32-wide
    // slices; the epilogue in the staging memory to fit 48 KiB). H100 2026-12-05 (session 18 call 1, prefill-bench
    // bf16, docs/perf-h200/2026-12-05-s18/call1/prefill-oa.txt), 128 x 192 k64 / 128 x 256 ms, evenly spread rows:
    // Mixtral T = 512 2.12 / 2.23, T = 4096 13.00 / 14.88; Qwen3-30B 0.83 / 0.95, 2.12 / 2.30; GPT-OSS-20B 1.07 / 1.29,
    // 4.15 / 4.69; Mixtral T = 512 with the router's uneven rows 2.92 / 3.41. The 16-subgroup and 32-wide 128 x 192
    // tiles were slower than both.
    // MXFP4 (was the 64 x 128 tile) from 128 rows per expert on the 128 x 192 k64 tile too: H100 2026-12-05 (session 18
    // call 4, prefill-bench, the router's uneven rows, output tail in docs/perf-h200/2026-12-05-s18/call4) Mixtral
    // T = 512 4.42 vs 5.14 ms, DeepSeek-V3-e32 3.64 vs 4.65 (fp8 stays: Mixtral 6.71 vs 6.37, DeepSeek-V3-e32 5.48 vs
    // 5.30; from 512 rows per expert packed weights are decoded first and take the 16-bit tile).
    // Packed weights (int4, MXFP4, fp8) from 64 rows per expert on the 144-row tile (until they are decoded first,
    // sgmatDequant). H100 2026-12-05 (session 19 call 5, prefill-bench, the router's uneven rows, medians of three
    // rounds timed in turn, docs/perf-h200/2026-12-05-s19/call5), 144 x 256 / the rule before (128 x 256 for fp8 and int4,
    // 128 x 192 k64 for MXFP4 from 128 rows, the 64 x 128 tile below) ms: T = 512 Mixtral (115-133 rows per expert)
    // fp8 3.78 / 6.36, MXFP4 2.57 / 4.39 (16-byte loads, below), DeepSeek-V3-e32 (107-143) fp8 3.83 / 5.27, MXFP4 2.63 /
    // 3.63; GPT-OSS-20B (52-81) int4 1.56 / 1.78, fp8 2.21 / 2.28, MXFP4 1.41 / 1.75; T = 1024 Mixtral (232-286) int4
    // 5.10 / 7.12, fp8 7.26 / 9.10, MXFP4 4.98 / 6.36; GPT-OSS-20B (109-149) fp8 2.32 / 3.30, MXFP4 1.64 / 2.74, int4
    // level (1.69 / 1.70; the 16-bit band below took it there). bf16 in the same runs: Mixtral 2.32, DeepSeek-V3-e32
    // 2.38, GPT-OSS-20B 1.09 ms. int8 is not measured on these tiles and keeps the 64 x 128 tile.
    wideShapes: { bfloat16: 'm128n192k64va', float16: 'm128n192k64va', fp8_e4m3: 'm144n256k32v', fp8_e5m2: 'm144n256k32v', int4: 'm144n256k32v', mxfp4: 'm144n256k32v' },
    // Bands of rows per expert (`minRowsPerExpert`..`maxRowsPerExpert` on average, ends included) with a tile of their
    // own, taken before wideShapes. 16-bit weights around 128 rows per expert: the 144-row tile, one row
    // tile for an expert of up to 144 rows where the router's split around 128 rows gives every expert past 128 a second
    // 128-row tile. H100 2026-12-05 (session 18 call 2, prefill-bench bf16, the router's uneven rows,
    // docs/perf-h200/2026-12-05-s18/call2/prefill-144-uneven.txt), 144 x 256 / 128 x 256 ms: Mixtral T = 512 (115-133
    // rows per expert) 2.32 / 3.42 (128 x 192 k64 2.92 in call 1), DeepSeek-V3-e32 T = 512 (107-143) 2.39 / 2.83; away
    // from that band it loses (GPT-OSS-20B T = 512, 52-81 rows: 1.35 / 1.31; Mixtral T = 4096 15.34 / 15.77 against
    // 128 x 192 k64's 13.00 with even rows; Qwen3 T = 4096 2.74 / 2.54).
    // int4 too (vector-staged there, unlike its 128 x 256 tile; call 4, same runs): Mixtral T = 512 2.70 vs 4.87 ms
    // (128 x 192 k64 4.40), DeepSeek-V3-e32 2.69 vs 4.09. Not fp8 (Mixtral 7.25 vs 6.37, DeepSeek-V3-e32 3.83 vs 5.30)
    // nor MXFP4 (Mixtral 7.30 vs 128 x 192 k64's 4.42, DeepSeek-V3-e32 2.99 vs 3.64): mixed. Those were single timings
    // of each path; session 19 timed the paths in rounds (a path's first timing is sometimes 1.5-2.5x slow) and found
    // the 144-row tile faster for fp8 and MXFP4 too: packed weights take it through wideShapes since then.
    // fp8 blocks with 64..511 rows per expert on average (64..96 until session 28): the 128 x 256 tile with the epilogue in the staging memory (32
    // KiB: the 144 x 256 tile's 48 KiB and 12 subgroups for an expert's 52-81 rows stage a 144-row tile's x slices and
    // keep fewer workgroups per multiprocessor). H100 2026-12-06 (session 25 call 7, prefill-bench, the router's uneven
    // rows, medians of three rounds, docs/perf-h200/2026-12-06-s25/call7), 128 x 256 oa / 144 x 256 ms: GPT-OSS-20B
    // T = 512 (64 rows per expert, 52-81) fp8 1.48 / 1.81 (MXFP4 1.38 / 1.42, int4 1.56 / 1.45: not taken); at 128 rows
    // it loses (GPT-OSS-20B T = 1024 fp8 2.27 / 1.93, Mixtral T = 512 4.15 / 3.11): the band ended at 96, between the two.
    // With e4m3 staged a word of codes at a time on this tile (sgmatE4m3WordShapes, session 28) the band runs to 511 rows
    // (packed weights are decoded first from 512, sgmatDequant). H100 2026-12-06 (session 28 call 6, prefill-bench, the
    // router's uneven rows, docs/perf-h200/2026-12-06-s28/call6), fp8 GEMMs, 128 x 256 oa with words / 144 x 256 with
    // values ms: around 128 rows per expert Mixtral T = 512 3.39 / 3.10 (the one loss: an expert of up to 133 rows in one
    // 144-row tile), Qwen3-30B T = 2048 1.57 / 1.83, GPT-OSS-20B T = 1024 1.85 / 1.92, DeepSeek-V3-e32 T = 512 2.88 /
    // 3.11; past it Mixtral T = 640 (160) 3.76 / 5.54, T = 1024 (256) 4.97 / 6.01, T = 1536 (384) 6.65 / 8.87; Qwen3
    // T = 4096 (256) 2.67 / 3.63; GPT-OSS T = 1536 (192) 2.41 / 3.65, T = 2048 (256) 2.98 / 3.77; DeepSeek-V3-e32 T = 640
    // (160) 3.84 / 5.87. At 512 rows the decoded experts' 16-bit tile stays ahead (Mixtral T = 2048 9.56 / 11.09).
    // Few rows per expert (8, the matrix GEMMs' start, up to 48 for 16-bit and MXFP4 weights, 32 for int4 and fp8): the 32 x 128 tile with 64-wide K
    // slices, two slices in flight in registers (pf2: the next two slices' loads issued before this pair's multiplies),
    // over f16 x rows. There the tiles ranked by the weight bytes staged per K slice (session 25 call 6): a loop waiting
    // on its loads, which pf2 hides; the wide tiles stage one row tile of few rows for 128-192 weight rows. H100
    // 2026-12-06 (session 26 calls 1, 2 and 4, prefill-bench, the router's uneven rows, medians of three rounds, the
    // planner's split-K; docs/perf-h200/2026-12-06-s26), pf2 / the rule before ms, bf16: Qwen3-30B T = 128 (8 rows per
    // expert) 0.53 / 0.77, T = 512 (32) 0.65 / 0.83, T = 1024 (64) 0.96 / 0.92; GPT-OSS-20B T = 128 (16) 0.70 / 1.01,
    // T = 256 (32) 0.85 / 1.03, T = 384 (48) 0.96 / 1.03, T = 512 (64) 1.13 / 1.09; Mixtral T = 128 (32) 1.53 / 1.71
    // (1.39 with the down GEMM split 3 ways), T = 256 (64) 2.50 / 1.86; DeepSeek-V3-e32 T = 128 (32) 1.37 / 1.78.
    // MXFP4: Qwen3 T = 256-768 (16-48) 0.48-0.91 / 1.00-1.27; GPT-OSS T = 256-512 (32-64) 0.93 / 1.37, 1.13 / 1.42,
    // 1.35 / 1.41 (T = 768, 96: 1.85 / 1.57); Mixtral T = 128 (32) 1.39, T = 256 (64) 2.45 / 2.38. int4: Qwen3 T = 256 /
    // 512 / 768 (16 / 32 / 48) 0.56 / 0.82, 0.78 / 0.90, 1.04 / 1.05; GPT-OSS T = 256 (32) 1.09 / 1.14, T = 384 (48)
    // 1.32 / 1.18; Mixtral T = 128 (32) 1.58 / 1.94, T = 256 (64) 2.89 / 2.36. fp8: Qwen3 T = 256 / 384 / 512 / 768
    // 0.68 / 0.89, 0.74 / 0.93, 0.93 / 0.96, 1.23 / 1.09; Mixtral T = 128 1.81 / 2.03; GPT-OSS T = 256 (32) 1.25 / 1.20
    // (the one loss inside its band). int8 is not measured on it. Measured on 48 KiB devices only (it needs 23 KiB).
    bands: [
      { shapes: { bfloat16: 'm32n128k64vap2', float16: 'm32n128k64vap2', mxfp4: 'm32n128k64vap2' }, minRowsPerExpert: 8, maxRowsPerExpert: 48, minWorkgroupBytes: WIDE_WORKGROUP_BYTES },
      { shapes: { int4: 'm32n128k64vap2', fp8_e4m3: 'm32n128k64vap2', fp8_e5m2: 'm32n128k64vap2' }, minRowsPerExpert: 8, maxRowsPerExpert: 32, minWorkgroupBytes: WIDE_WORKGROUP_BYTES },
      { shapes: { bfloat16: 'm144n256k32v', float16: 'm144n256k32v' }, minRowsPerExpert: 112, maxRowsPerExpert: 144, minWorkgroupBytes: WIDE_WORKGROUP_BYTES },
      { shapes: { fp8_e4m3: 'm128n256k32va', fp8_e5m2: 'm128n256k32va' }, minRowsPerExpert: 64, maxRowsPerExpert: 511, minWorkgroupBytes: WIDE_WORKGROUP_BYTES },
    ],
    // where Dawn refuses vector staging (vec4<u32> staging arrays), the vector-only shapes above run this scalar-staged
    // tile instead (the 128 x 256 tile the wide rule chose before them)
    // (and the 32-row tile with 32-wide K slices for the pf2 tile)
    scalarFallbacks: { m128n192k64va: 'm128n256k32', m144n256k32v: 'm128n256k32', m128n256k32va: 'm128n256k32', m32n128k64vap2: 'm32n128k32' },
  } as Readonly<{
    smallMaxRowsPerExpert: number;
    largeMinRowsPerExpert: number;
    largeMinOutputs: number;
    wideMinRowsPerExpert: Readonly<Record<'half16' | 'packed', number>>;
    wideWorkgroupBytes: number;
    wideShapes: Readonly<Record<string, SgmatShapeName>>;
    bands: readonly Readonly<SgmatTileBand>[];
    scalarFallbacks: Readonly<Partial<Record<SgmatShapeName, SgmatShapeName>>>;
  }>,
  /**
   * The subgroup-matrix tiles on which fp8 e4m3 weights are staged a load of code words at a time (packedHalfPairsWgsl:
   * NaN codes looked for once per load) instead of one value at a time through f32 (wdec), elsewhere e4m3's default
   * (sgmatValueDecodeFor); the same f16 tiles either way. H100 2026-12-06 (session 28 call 4, the bench's layer, fp8,
   * `--iters 8 --stack 2`, value / words in one call, docs/perf-h200/2026-12-06-s28/call4), ms: on the 32 x 128 pf2
   * tile Mixtral T = 128 1.83 / 1.33, Qwen3-30B T = 128 0.701 / 0.526, T = 512 0.962 / 0.730, GPT-OSS-20B T = 128
   * 0.863 / 0.645; on the 128 x 256 fp8 band tile GPT-OSS T = 512 1.50 / 1.26, Qwen3 T = 1024 1.30 / 1.10; on the
   * 144 x 256 tile words lose (Mixtral T = 512 3.76 / 5.44, T = 1024 5.93 / 8.61, GPT-OSS T = 1024 2.40 / 3.37).
   * Other tiles keep value staging (not measured since session 12, when words lost by 5-6% on the 64 x 128 tile).
   */
  sgmatE4m3WordShapes: ['m32n128k64vap2', 'm128n256k32va'] as readonly SgmatShapeName[],
  gemvPackedSplitK: { maxWorkgroups: 0, minCols: 4096, oneRow: 'rows2k4', moreRows: 'rows4k2' } as Readonly<{ maxWorkgroups: number; minCols: number; oneRow: GemvPackedKernel; moreRows: GemvPackedKernel }>,
  /**
   * The packed decode GEMV on software adapters (kernels on the CPU), at every row count: 4 outputs per 32-lane
   * group, half the workgroups (and workgroup barriers) of 'rows2'. Lavapipe 2026-12-05, gemv-bench --small
   * --tokens 1 (gate_up + down ms, rows2 -> rows4): H 256 / I 128 / E 8 / k 2: int4 2.42 -> 1.63, int8 1.36 -> 1.14,
   * mxfp4 1.58 -> 0.97, fp8 1.62 -> 1.31; H 512 / I 256 / E 32 / k 8: int4 16.2 -> 8.87. The layer (bench --quick
   * --tokens 1, three runs each, alternating, median device ms): GPT-OSS-20B/s8 mxfp4 8.03 -> 5.08, DeepSeek-V3/s16
   * fp8 9.14 -> 9.66 (runs 7.0-11.0: noise). 16-bit dense weights keep the GPU rule: bf16 rows2 -> rows4 was
   * 1.25 -> 0.94 and 9.73 -> 10.2 ms in gemv-bench, and level or mixed in the layer (Qwen3-30B/s8 3.94 -> 5.41,
   * GPT-OSS-20B/s8 5.09 -> 4.33, DeepSeek-V2-Lite/s8 7.35 -> 6.46, Mixtral/s16 6.95 -> 6.67).
   * `byFormat`: fp8 e4m3 and MXFP4 at one row per pass on the staged-x 'rows4s' (x copied into workgroup memory,
   * GemvVariant.xs; every row length), where the device's workgroup memory holds its slice (else 'rows4').
   * Lavapipe 2026-12-07, gemv-bench --small --tokens 1 --iters 10, two runs (rows4 / rows4s gate_up + down ms, run 1;
   * run 2): H 256 I 128 E 8 k 2 int4 1.03 / 0.87; 1.03 / 0.73, MXFP4 1.02 / 0.85; 1.45 / 0.76, fp8 1.22 / 0.97; 1.78 /
   * 1.21; I 896 int4 3.90 / 3.22; 4.15 / 3.36, fp8 4.92 / 3.62; 5.81 / 3.63; E 32 k 8 int4 9.34 / 5.74; 9.22 / 8.72,
   * fp8 11.7 / 9.04; 16.6 / 13.2 (faster in 23 of 24 packed cells; bf16 mixed). The layer (bench --quick --tokens 1
   * --iters 20, three runs each alternating, median device ms rows4 -> rows4s; llvmpipe's runs vary by up to 30%):
   * fp8 Qwen3/s8 4.39 -> 2.54, GPT-OSS/s8 7.66 -> 4.74, DeepSeek-V2-Lite/s8 5.44 -> 6.10, Mixtral/s16 7.34 -> 5.35,
   * DeepSeek-V3/s16 7.73 -> 5.82; MXFP4 7.67 -> 5.18, 10.9 -> 7.35, 10.4 -> 8.53, 5.86 -> 5.80, 14.8 -> 10.5; int4
   * mixed, not taken: 5.60 -> 5.87, 10.3 -> 9.48, 7.43 -> 9.11, 6.68 -> 4.67, 11.0 -> 13.7; int8 (session 34, five runs
   * each alternating, medians) mixed too, not taken: 2.55 -> 2.23, 4.88 -> 5.92, 5.02 -> 4.01, 6.44 -> 5.06, 5.92 -> 7.02.
   */
  gemvSoftwarePackedKernel: {
    oneRow: 'rows4',
    moreRows: 'rows4',
    byFormat: {
      fp8_e4m3: { oneRow: 'rows4', moreRows: 'rows4', longRows: { minCols: 0, oneRow: 'rows4s' } },
      mxfp4: { oneRow: 'rows4', moreRows: 'rows4', longRows: { minCols: 0, oneRow: 'rows4s' } },
    },
  } as GemvPackedKernelRule,
  /**
   * The decode GEMV of 16-bit dense weights on software adapters, at every row count: 'rows4', never the dense kernel
   * (one output per 32-lane group, up to 8 token rows per pass), which the GPU rule takes from 8 rows per pass and which
   * llvmpipe runs 2.7-5x slower. Lavapipe 2026-12-05 (gemv-bench --small, bf16, gate_up + down ms, dense / rows1 /
   * rows2 / rows4): T = 16 H 256 I 128 E 8 k 2: 33.8 / 16.0 / 10.8 / 6.17; H 256 I 896 E 8 k 2: 129 / 69.3 / 45.2 /
   * 39.2; H 512 I 256 E 32 k 8: 359 / 174 / 129 / 92.1; one expert (E 1, k 1, 16 rows, where the GPU rule takes the
   * dense kernel): 31.7 / 15.0 / 10.9 / 6.80; T = 1 (the GPU rule's rows2): 4.04 / 1.84 / 2.46 / 1.05, 15.3 / 7.36 /
   * 5.96 / 4.94, 37.0 / 15.5 / 11.1 / 10.5, 4.90 / 2.22 / 1.67 / 1.60. Float32 weights have only the dense kernel.
   */
  gemvSoftwareDenseKernel: 'rows4' as GemvPackedKernel,
  /**
   * Packed weights on the subgroup-matrix GEMMs decoded to f16 once per call (grouped-gemm-dequant.ts: a range of
   * experts into a scratch of at most `maxScratchBytes`, then the f16 GEMM on it, range after range) from
   * `minRowsPerExpert` average grouped rows per expert, instead of decoding every weight tile again in the staging
   * step of each of its expert's row tiles. The decoding pass reads the packed bytes and writes 2 bytes per weight
   * once; the staging decode costs ALU work per weight and row tile. H200 2026-12-05 (prefill-bench, GEMMs alone, ms,
   * staging decode -> decoded first, docs/perf-h200/2026-12-05-s13/call1/prefill-dequant.txt; bf16 in the same call):
   * Mixtral T = 4096 (1024 rows per expert; bf16 14.32) int4 21.61 -> 16.78, fp8 28.69 -> 16.04, MXFP4 31.40 -> 16.69;
   * GPT-OSS-20B T = 4096 (512; bf16 4.63) int4 6.77 -> 6.06, fp8 8.34 -> 5.63, MXFP4 8.97 -> 5.99; at T = 512 (128 / 64
   * rows per expert) slower everywhere (Mixtral int4 2.88 -> 5.09, fp8 3.75 -> 4.35; GPT-OSS int4 1.33 -> 2.56): the
   * pass costs ~2.5-3 ms for Mixtral's 2.8 GB of f16 (predicted ~1.2). bf16 converted first: 14.32 -> 16.08 (f16 and
   * bf16 stage equally fast, 14.31 vs 14.32), so bf16 never takes it unasked. GroupedGemmOptions.sgmatDequant and
   * MoE.prefillDequant force it either way.
   */
  sgmatDequant: { minRowsPerExpert: 512, maxScratchBytes: 512 * 1024 * 1024 },
} as const;

/** How a caller asks for the expert GEMMs: 'auto' (the crossovers), or a forced 'gemv' / 'grouped'. */
export type ExpertGemmChoice = 'auto' | 'gemv' | 'grouped';

/** What {@link planExpertGemms} decides from. @example `{ T: 4, k: 2, E: 8, actQuant: 'none', gemvSupported: true }` */
export interface ExpertGemmShape {
  /** Tokens. */
  T: number;
  /** Experts per token (1 for a single expert: shared experts, nn's MLP). */
  k: number;
  /** Experts (1 for a single expert). */
  E: number;
  /** The caller's request (default 'auto'). */
  choice?: ExpertGemmChoice;
  /** The activation quantisation of the expert matmuls ('fp8_dynamic': only the grouped GEMMs quantize activations). */
  actQuant: 'none' | 'fp8_dynamic';
  /** Whether the GEMVs take both weight containers (`gemvSupports(gateUp) && gemvSupports(down)`). */
  gemvSupported: boolean;
  /** Whether the adapter runs kernels on the CPU (the context's adapterInfo.software; default false). */
  softwareAdapter?: boolean;
}

/**
 * The expert GEMMs of a forward: 'gemv' (decode GEMVs) or 'grouped' (tiled,
 * or fast, grouped GEMMs). The GEMVs take weight-only activations and the
 * containers they support; within that, a forced choice is honoured, and
 * 'auto' takes them for decode sizes ({@link useExpertGemv}).
 * @example `planExpertGemms({ T: 1, k: 2, E: 8, actQuant: 'none', gemvSupported: true }) // 'gemv'`
 */
export function planExpertGemms(s: ExpertGemmShape): 'gemv' | 'grouped' {
  const choice = s.choice ?? 'auto';
  if (choice !== 'auto' && choice !== 'gemv' && choice !== 'grouped') throw new ValueError('planExpertGemms choice', "'auto' | 'gemv' | 'grouped'", choice);
  if (s.actQuant !== 'none' || !s.gemvSupported) return 'grouped';
  if (choice !== 'auto') return choice;
  return useExpertGemv(s.T, s.k, s.E, s.softwareAdapter) ? 'gemv' : 'grouped';
}

/**
 * A packed decode GEMV rule of KERNEL_CROSSOVERS (gemvPackedKernel, gemvSoftwarePackedKernel): the kernel at one token
 * row per pass and at more, and the formats with kernels of their own.
 */
export type GemvPackedKernelRule = Readonly<{ oneRow: GemvPackedKernel; moreRows: GemvPackedKernel; byFormat: Readonly<Partial<Record<PackedCodeFormat, GemvFormatKernels>>> }>;

/**
 * A format's own packed decode GEMV kernels (GemvPackedKernelRule.byFormat): at one token row per pass and at more;
 * `longRows`: at one row instead, for weights of at least `minCols` columns (the call's K), `oneRow`, and for the down
 * GEMVs among those calls `down` where given (GemvPackedKernelContext.down), where the device's workgroup memory holds
 * them (GemvPackedKernelContext.longRowsFit). The only place a rule names a staged-x ('rowsNs') or x-in-registers
 * ('rowsNx', 'rowsNkSx') kernel.
 */
export type GemvFormatKernels = Readonly<{
  oneRow: GemvPackedKernel;
  moreRows: GemvPackedKernel;
  longRows?: Readonly<{ minCols: number; oneRow: GemvPackedKernel; down?: GemvPackedKernel }>;
}>;

/**
 * Which decode GEMV reads packed weights: 8-column table loads, the 16-byte 'wide' loads, or the row-blocked
 * kernel with 1, 2 or 4 outputs per 32-lane group ('rowsN'), optionally split over K ('rowsNkS': S groups of
 * 32 lanes per output block share its columns, S times the workgroups per expert; bench candidates for long K
 * and few output blocks, e.g. Mixtral's down GEMV at T = 1: 512 workgroups of 14 steps per lane); a trailing 'i'
 * interleaves code words (units) over the lanes instead of a 16-byte chunk per lane, so the warp's x loads are
 * contiguous ('rows2i', 'rows4k2i'); a trailing 's' keeps the 16-byte chunks and stages x in workgroup memory
 * ('rows2s': GemvVariant.xs); a trailing 'x' gives each of the S * 32 lanes of an output block one 16-byte column
 * chunk per step, its x held in registers while the block's N output rows stream past, and sums the lanes in a tree
 * ('rows8k4x': GemvVariant.xr; one token row per pass only; bench candidates, session 36's ablations: the 4-bit GEMVs
 * pay for x per row pair; since session 37 the planner's for long-row int4 / MXFP4 GEMVs on GPUs, 'rows8k4x' for the
 * down GEMV and 'rows4x' (S = 1) for gate_up, whose rows of Mixtral's 4096 columns give 'rows8k4x's 128 lanes one step
 * each before a 16-value reduction; the others are A/B candidates).
 */
export type GemvPackedKernel = 'table' | 'wide' | 'rows1' | 'rows2' | 'rows4' | 'rows2k2' | 'rows2k4' | 'rows1k8' | 'rows4k2' | 'rows1i' | 'rows2i' | 'rows4i' | 'rows2k4i' | 'rows4k2i' | 'rows1s' | 'rows2s' | 'rows4s' | 'rows4x' | 'rows2k4x' | 'rows4k2x' | 'rows8k2x' | 'rows4k4x' | 'rows8k4x' | 'rows8k8x';

/**
 * Every packed decode GEMV kernel, for A/B runs (the split-K 'rowsNkS' candidates, the interleaved 'rows...i', then
 * the staged-x 'rowsNs': GemvVariant.xs, then the x-in-registers 'rowsNx' / 'rowsNkSx': GemvVariant.xr; both chosen by GemvFormatKernels.longRows).
 */
export const GEMV_PACKED_KERNELS: readonly GemvPackedKernel[] = ['table', 'wide', 'rows1', 'rows2', 'rows4', 'rows2k2', 'rows2k4', 'rows1k8', 'rows4k2', 'rows1i', 'rows2i', 'rows4i', 'rows2k4i', 'rows4k2i', 'rows1s', 'rows2s', 'rows4s', 'rows4x', 'rows2k4x', 'rows4k2x', 'rows8k2x', 'rows4k4x', 'rows8k4x', 'rows8k8x'];

/**
 * Whether the routed experts of a forward of T tokens (k per token, E experts) take the decode GEMVs, on a GPU or
 * (`softwareAdapter`) a software adapter.
 * @example `useExpertGemv(32, 2, 4, true) // true (16 rows per expert)`
 */
export function useExpertGemv(T: number, k: number, E: number, softwareAdapter = false): boolean {
  const perExpert = softwareAdapter ? KERNEL_CROSSOVERS.gemvSoftwareMaxRowsPerExpert : KERNEL_CROSSOVERS.gemvMaxRowsPerExpert;
  return T <= KERNEL_CROSSOVERS.gemvMaxTokens || T * k < perExpert * E;
}

/** The most experts route_decode's router linear takes (8 groups of lanes, 16 experts each: routeLinearGroups). */
export const ROUTE_LINEAR_MAX_EXPERTS = 128;

/**
 * Whether route_decode also runs the router linear (E x H weights) of a forward of T tokens
 * (KERNEL_CROSSOVERS.routerLinearInRouting: one token, a small router).
 * @example `useRouterLinearInRouting(1, 8, 4096, false) // true`
 */
export function useRouterLinearInRouting(T: number, E: number, H: number, softwareAdapter = false): boolean {
  const c = KERNEL_CROSSOVERS.routerLinearInRouting[softwareAdapter ? 'software' : 'gpu'];
  return T === 1 && E <= ROUTE_LINEAR_MAX_EXPERTS && E * H <= c.maxWeights;
}

/**
 * route_decode's router linear over E experts: G groups of 256 / G lanes (the fewest, for the most lanes over each
 * row's columns), each summing J <= 16 experts' logits (one register each).
 * @example `routeLinearGroups(64) // { G: 4, J: 16 }`
 */
export function routeLinearGroups(E: number): { G: number; J: number } {
  if (!(Number.isInteger(E) && E >= 1 && E <= ROUTE_LINEAR_MAX_EXPERTS)) throw new ValueError('route_decode router linear experts', `an integer in [1, ${ROUTE_LINEAR_MAX_EXPERTS}]`, E);
  const G = [1, 2, 4, 8].find((g) => Math.ceil(E / g) <= 16)!;
  return { G, J: Math.ceil(E / G) };
}

/** Whether the decode path of a forward of T tokens routes and groups in one dispatch (route_decode). */
export function useFusedDecodeRouting(T: number): boolean {
  return T <= KERNEL_CROSSOVERS.fusedRoutingMaxTokens;
}

/** How a decode forward ends: the down GEMV with the combine in it ('fused'), the down GEMV then the combine ('separate'), or the planner's choice ('auto'). */
export type DownCombineChoice = 'auto' | 'fused' | 'separate';

/** What useCombinedDownGemv's 'auto' looks at besides T: the adapter's kind and the down weights' kind. */
export interface CombinedDownOn {
  /** The context's adapterInfo.software. */
  software: boolean;
  /** Down weights with codes and scales (fp8 blocks, int4 / int8 blocks, MXFP4), not dense 16-bit values. */
  packed: boolean;
}

/**
 * Whether a decode forward of T tokens (on the decode GEMVs, with weights the combined GEMV takes) records the down
 * GEMV with the combine in it: 'fused' yes, 'separate' no, 'auto' for at most KERNEL_CROSSOVERS.combinedDownMaxTokens
 * tokens of the adapter's kind and the weights' kind.
 * @example `useCombinedDownGemv(1, 'auto', { software: false, packed: false }) // true`
 */
export function useCombinedDownGemv(T: number, choice: DownCombineChoice, on: CombinedDownOn): boolean {
  if (choice !== 'auto' && choice !== 'fused' && choice !== 'separate') throw new ValueError('down-combine choice', "'auto' | 'fused' | 'separate'", choice);
  if (typeof on?.software !== 'boolean' || typeof on.packed !== 'boolean') throw new ValueError('useCombinedDownGemv on', '{ software: boolean, packed: boolean }', on);
  return choice === 'auto' ? T <= KERNEL_CROSSOVERS.combinedDownMaxTokens[on.software ? 'software' : 'gpu'][on.packed ? 'packed' : 'dense'] : choice === 'fused';
}

/**
 * How a decode forward runs a layer's shared experts: as always-selected experts in the routed experts' GEMVs
 * ('routed': routeDecodeGpu's `sharedExperts`, the stacks joined by appendExpertStacks), in GEMVs of their own
 * ('separate'), or the planner's choice ('auto').
 */
export type DecodeSharedChoice = 'auto' | 'routed' | 'separate';

/**
 * Whether a forward of T tokens on the decode GEMVs, k routed experts per token of E (where its layer allows it:
 * ns shared experts in the routed experts' format and width, ungated, and the joined experts planned on the GEMVs),
 * runs the shared experts in the routed GEMVs: 'routed' yes, 'separate' no; 'auto' where
 * KERNEL_CROSSOVERS.sharedExpertSlots takes it for the adapter's kind (off on both, as measured) and a shared
 * expert's T rows fit one weight pass of the joined GEMVs (gemvRowsPerPass over k + ns slots of E + ns experts; else
 * the GEMVs would stream its weights once per pass of rows, T times for DeepSeek-V3 at T > 1, where its own GEMVs
 * take all T rows per pass). On a GPU the shared experts' two GEMVs are then no longer dispatches of their own: their
 * weights stream in the routed GEMVs' dispatches, both stacks in one dispatch (gemvChunksPerDispatch).
 * @example `useSharedExpertSlots(1, 8, 256, 1, 'routed', false) // true`
 */
export function useSharedExpertSlots(T: number, k: number, E: number, ns: number, choice: DecodeSharedChoice, softwareAdapter: boolean): boolean {
  if (choice !== 'auto' && choice !== 'routed' && choice !== 'separate') throw new ValueError('decode shared-experts choice', "'auto' | 'routed' | 'separate'", choice);
  if (choice !== 'auto') return choice === 'routed';
  return KERNEL_CROSSOVERS.sharedExpertSlots[softwareAdapter ? 'software' : 'gpu'] && sharedRowsFitOnePass(T, k, E, ns);
}

/**
 * The rule 'auto' of useSharedExpertSlots applies where KERNEL_CROSSOVERS.sharedExpertSlots takes it: a shared
 * expert's T rows in one weight pass of the joined GEMVs (k + ns slots of E + ns experts).
 * @example `sharedRowsFitOnePass(2, 8, 256, 1) // false`
 */
export function sharedRowsFitOnePass(T: number, k: number, E: number, ns: number): boolean {
  return T <= gemvRowsPerPass(T, k + ns, E + ns, true);
}

/** Whether a single expert (shared experts, nn's MLP) over T tokens takes the decode GEMVs, on a GPU or (`softwareAdapter`) a software adapter. */
export function useSingleExpertGemv(T: number, softwareAdapter = false): boolean {
  return useExpertGemv(T, 1, 1, softwareAdapter);
}

/**
 * Whether a stack's forward of T tokens replays one captured graph of the whole stack (else each layer replays its
 * own: a layer replays captured graphs at every T).
 */
export function useStackGraph(T: number): boolean {
  return T <= KERNEL_CROSSOVERS.stackGraphMaxTokens;
}

/**
 * How a long replayed graph (a stack of layers) is submitted: in pieces of 8
 * dispatches, then 16, 32 and 64 (a one-layer graph of up to 8 dispatches
 * stays one submit). One submit for a whole 48-layer decode step left the
 * H200 idle while the host issued it (MoEStack, Qwen3-30B T = 1: 52.7 us of
 * host per layer before the GPU started on 74 us of work per layer,
 * 2026-12-04); each extra submit costs ~35 us of host time there.
 */
export const STACK_SUBMIT_PIECES = { first: 8, max: 64 } as const;

/**
 * The call of a token count at which a layer (or a stack) captures its forward graph: the second. The first is
 * recorded afresh: a capture costs more host time than a recording (the graph's buffers get bind groups of their own;
 * lavapipe, `scripts/host-cost.ts` with WEBMOE_VARY_T=8, the qwen3_moe fixture at T = 128..135, every forward a
 * capture: 994 us of main-thread CPU per forward against 572-652 recorded, 2026-12-06), so a token count called once
 * (a prompt's length) is recorded, and one called again (decode steps, prefill chunks) replays from its third call.
 */
export const GRAPH_CAPTURE_AT = 2;

/**
 * Chunks of a split expert stack that one decode GEMV dispatch binds by
 * default (GemvOptions.chunksPerDispatch overrides; the device's storage
 * bindings cap it). A GPU: 4. On the H200 (gemv-bench, full DeepSeek-V3
 * T = 1, one call, 2026-12-04) 1 / 4 / 8 per dispatch took 0.927 / 0.745 /
 * 0.733 ms (bf16, 8+4 chunks) and 0.840 / 0.695 / 0.696 ms (fp8, rows2).
 * A software adapter: 1 (one dispatch per chunk). Its compile time grows
 * faster than the code's copies (lavapipe: a qwen3_moe layer in pieces,
 * T = 16, over 600 s at 9 per dispatch, 104 s at 4; olmoe's golden cases
 * ~460 s each at 4), and it has no launch cost to save.
 */
export function gemvChunksPerDispatch(softwareAdapter: boolean): number {
  return softwareAdapter ? 1 : 4;
}

/** The tile of the tiled grouped GEMMs for `rows` grouped rows over E experts. */
export function tiledGemmTile(rows: number, E: number): 'decode' | 'prefill' {
  const perExpert = rows / Math.max(1, Math.min(E, rows));
  return perExpert < KERNEL_CROSSOVERS.decodeTileRowsPerExpert ? 'decode' : 'prefill';
}

/**
 * Grouped rows per expert on average from which the fast prefill kernel `kind` is the default (`softwareAdapter`:
 * the context's adapterInfo.software, whose f32 kernel has a crossover of its own).
 * @example `fastGemmMinRowsPerExpert('f32', true) // 32`
 */
export function fastGemmMinRowsPerExpert(kind: FastGemmKind, softwareAdapter = false): number {
  return softwareAdapter && kind === 'f32' ? KERNEL_CROSSOVERS.fastMinRowsPerExpertSoftware : KERNEL_CROSSOVERS.fastMinRowsPerExpert[kind];
}

/**
 * Whether `rows` grouped rows over E experts take the fast prefill kernel `kind` by default.
 * @example `useFastGemm('f32', 256, 8, true) // true`
 */
export function useFastGemm(kind: FastGemmKind, rows: number, E: number, softwareAdapter = false): boolean {
  return rows >= fastGemmMinRowsPerExpert(kind, softwareAdapter) * E;
}

/**
 * K slices of the tiled linear over `tiles` output tiles and K (1: no split; KERNEL_CROSSOVERS.linearSplitK).
 * @example `linearSplitK(8, 7168) // 28`
 */
export function linearSplitK(tiles: number, K: number): number {
  const c = KERNEL_CROSSOVERS.linearSplitK;
  return Math.max(1, Math.min(Math.floor(K / c.minSliceK), Math.ceil(c.targetWorkgroups / tiles)));
}

/**
 * The skinny router linear's tokens per workgroup for T tokens, N outputs and K inputs: 4 where the N x K weights
 * hold KERNEL_CROSSOVERS.linearSkinny's wideWeights (by adapter kind), else 2; fewer (2, then 1) where that leaves
 * fewer than its minWorkgroups workgroups of SKINNY_OUTPUTS outputs.
 * @example `linearSkinnyTokens(512, 8, 4096) // 2`
 */
export function linearSkinnyTokens(T: number, N: number, K: number, softwareAdapter = false): SkinnyTokens {
  const c = KERNEL_CROSSOVERS.linearSkinny[softwareAdapter ? 'software' : 'gpu'];
  const most = N * K >= c.wideWeights ? 4 : 2;
  const blocks = Math.ceil(N / SKINNY_OUTPUTS);
  // the most tokens per workgroup, up to `most`, that still gives minWorkgroups workgroups, else one
  return [...SKINNY_TOKENS].reverse().find((tw) => tw <= most && Math.ceil(T / tw) * blocks >= c.minWorkgroups) ?? SKINNY_TOKENS[0];
}

/**
 * Whether groupGpu groups n pairs in one single-workgroup dispatch (group_one; where its experts fit the kernel's
 * workgroup memory) rather than four passes (KERNEL_CROSSOVERS.groupOneWorkgroupMaxPairs).
 * @example `useOneWorkgroupGrouping(4096) // true`
 */
export function useOneWorkgroupGrouping(n: number): boolean {
  return n <= KERNEL_CROSSOVERS.groupOneWorkgroupMaxPairs;
}

/** The router linear's kernels (linear.ts): one workgroup per token and output, per 64 x 64 output tile, or per 1-4 tokens x 8 outputs. */
export type LinearPath = 'gemv' | 'tiled' | 'skinny';

/** The skinny router linear's tokens per workgroup, fewest first (each of its 256 lanes sums all tw x 8 of the block). */
export const SKINNY_TOKENS = [1, 2, 4] as const;
export type SkinnyTokens = (typeof SKINNY_TOKENS)[number];
/** The skinny router linear's outputs per workgroup. */
export const SKINNY_OUTPUTS = 8;

/**
 * The router linear's kernel for T tokens and N outputs: 'skinny' up to linearSkinny's maxOutputs where N is at most
 * its narrowOutputs or T * N at most its maxTokenOutputs (by adapter kind), else 'gemv' up to linearGemvMaxTokens
 * tokens, else 'tiled'.
 * @example `linearPath(512, 128) // 'tiled'`
 */
export function linearPath(T: number, N = Infinity, softwareAdapter = false): LinearPath {
  const c = KERNEL_CROSSOVERS;
  const kind = softwareAdapter ? 'software' : 'gpu';
  const skinny = c.linearSkinny[kind];
  if (N <= skinny.maxOutputs && (N <= skinny.narrowOutputs || T * N <= skinny.maxTokenOutputs)) return 'skinny';
  return T <= c.linearGemvMaxTokens ? 'gemv' : 'tiled';
}

/**
 * Token rows a decode GEMV accumulates per weight pass, for T tokens routed
 * k per token over E experts: about the rows per active expert (uniform
 * routing), a power of two, at most T and the kernel's cap for dense or
 * packed weights.
 */
export function gemvRowsPerPass(T: number, k: number, E: number, packed: boolean): number {
  const slots = Math.min(E, T * k);
  const cap = KERNEL_CROSSOVERS.gemvMaxRowsPerPass[packed ? 'packed' : 'dense'];
  return Math.min(cap, T, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil((T * k) / slots)))));
}

/** What the adapter offers the fast prefill GEMMs: the subgroup-matrix kernel (sgmatSupported) and f16 shaders. */
export interface FastGemmFeatures {
  subgroupMatrix: boolean;
  shaderF16: boolean;
}

/**
 * The fast kernel for a requested kind on an adapter. Default: the
 * subgroup-matrix kernel for 16-bit and packed weights (`wf`: a dtype or
 * WeightFormat; packed ones are decoded to f16 tiles) where the adapter
 * supports it, else 'f32'. An explicit kind is honoured where available, else 'f32'.
 * @example `chooseFastGemmKind({ subgroupMatrix: false, shaderF16: true }, 'f16') // 'f16'`
 */
export function chooseFastGemmKind(features: FastGemmFeatures, want?: FastGemmKind, wf?: string): FastGemmKind {
  if (want !== undefined && want !== 'f32' && want !== 'f16' && want !== 'subgroup-matrix') throw new ValueError('fast', "'f32' | 'f16' | 'subgroup-matrix' | undefined", want);
  if (want === undefined && wf !== undefined && wf !== 'float32' && features.subgroupMatrix) return 'subgroup-matrix';
  if (want === 'subgroup-matrix' && features.subgroupMatrix) return 'subgroup-matrix';
  if (want === 'f16' && features.shaderF16) return 'f16';
  return 'f32';
}

/** What the packed decode GEMV's choice depends on besides the rows per pass (gemvPackedKernelFor). */
export interface GemvPackedKernelContext {
  /** The call's grid (expert slots x output blocks of the default kernel) and weight columns (the split-K rule). */
  call?: { workgroups: number; cols: number };
  /** The context's adapterInfo.software. */
  softwareAdapter?: boolean;
  /** The weights' code format (gemvPackedKernel.byFormat); absent: the general rule. */
  format?: PackedCodeFormat;
  /** Whether the device's workgroup memory holds the format rule's long-row kernel (plannedKernel asks); default true. */
  longRowsFit?: boolean;
  /** Whether the call is a down GEMV (GemvFormatKernels.longRows.down); default false (gate_up). */
  down?: boolean;
}

/** The code formats of packed expert weights, as the decode GEMVs name them. */
export type PackedCodeFormat = 'int4' | 'int8' | 'mxfp4' | 'fp8_e4m3' | 'fp8_e5m2';

/**
 * The packed decode GEMV kernel for `rowsPerPass` token rows per weight pass ({@link gemvRowsPerPass}): on a
 * software adapter KERNEL_CROSSOVERS.gemvSoftwarePackedKernel; a format with its own kernels
 * (gemvPackedKernel.byFormat) those (at one row its long-row kernel where GemvFormatKernels.longRows takes the call);
 * else with the call's grid and weight columns the split-K kernel where KERNEL_CROSSOVERS.gemvPackedSplitK takes it,
 * or gemvPackedKernel's kernel for one row or more.
 * @example `gemvPackedKernelFor(1) // 'rows2'`, `gemvPackedKernelFor(4, { format: 'int4' }) // 'rows2i'`,
 * `gemvPackedKernelFor(1, { format: 'int4', call: { workgroups: 512, cols: 4096 } }) // 'rows4x'`
 */
export function gemvPackedKernelFor(rowsPerPass: number, opts: GemvPackedKernelContext = {}): GemvPackedKernel {
  const { call, softwareAdapter = false, format } = opts;
  const one = rowsPerPass <= 1;
  if (softwareAdapter) {
    const sw = KERNEL_CROSSOVERS.gemvSoftwarePackedKernel;
    const rule = format !== undefined && sw.byFormat[format];
    return rule ? formatKernel(rule, one, opts) : one ? sw.oneRow : sw.moreRows;
  }
  const own = format === undefined ? undefined : KERNEL_CROSSOVERS.gemvPackedKernel.byFormat[format];
  if (own) return formatKernel(own, one, opts);
  const sk = KERNEL_CROSSOVERS.gemvPackedSplitK;
  if (call && call.workgroups < sk.maxWorkgroups && call.cols >= sk.minCols) return one ? sk.oneRow : sk.moreRows;
  return one ? KERNEL_CROSSOVERS.gemvPackedKernel.oneRow : KERNEL_CROSSOVERS.gemvPackedKernel.moreRows;
}

/**
 * A format's own kernel (GemvFormatKernels): at one row its long-row kernel (a down GEMV: the rule's `down` where
 * given) where it fits the device and the call's K (0 without a call) reaches `minCols`.
 */
function formatKernel(rule: GemvFormatKernels, one: boolean, ctx: GemvPackedKernelContext): GemvPackedKernel {
  if (!one) return rule.moreRows;
  const { longRows } = rule;
  if (!longRows || ctx.longRowsFit === false || (ctx.call?.cols ?? 0) < longRows.minCols) return rule.oneRow;
  return ctx.down && longRows.down ? longRows.down : longRows.oneRow;
}

/**
 * The decode GEMV kernel of 16-bit dense weights for T tokens routed k per token over E experts
 * (KERNEL_CROSSOVERS.gemvDenseKernel; on a software adapter, `softwareAdapter`: KERNEL_CROSSOVERS.gemvSoftwareDenseKernel).
 * @example `gemvDenseKernelFor(1, 8, 128) // 'rows2'`
 */
export function gemvDenseKernelFor(T: number, k: number, E: number, softwareAdapter = false): GemvPackedKernel | 'dense' {
  if (softwareAdapter) return KERNEL_CROSSOVERS.gemvSoftwareDenseKernel;
  const c = KERNEL_CROSSOVERS.gemvDenseKernel;
  if (gemvRowsPerPass(T, k, E, false) >= c.denseMinRowsPerPass) return 'dense';
  return T * k <= c.rows2MaxPairs ? 'rows2' : 'rows4';
}

/**
 * The tile shape (SGMAT_SHAPES) and x-row mode (SgmatXRows) of the subgroup-matrix grouped GEMM for `rows` grouped
 * rows over E experts, N outputs (gate_up: gate/up pairs), weights of format `wf` (a dtype or WeightFormat), by the
 * average rows per expert r = rows / E (KERNEL_CROSSOVERS.sgmatTiles): on devices with 48 KiB of workgroup memory
 * the 32 x 128 tile with two 64-wide K slices in flight for r = 8..48 (16-bit, MXFP4) or 8..32 (int4, fp8; session 26),
 * 16-bit weights take the 144 x 256 tile for r = 112..144, else from r = 8 (session 23; from 64 before) the 128 x 192
 * tile with 64-wide K slices, and packed weights (int4, MXFP4, fp8) from r = 64 the 144 x 256 tile, all over x rows
 * converted to f16 first ('half'); elsewhere 16-bit weights take 32-row tiles up to r = 16 and 128-row 'half' tiles
 * where N >= 2560 (the conversion pass pays off over wide outputs); other 16-bit calls the 64-row tile, other packed
 * ones (and int8, unmeasured on the other shapes) the 64 x 128 tile with gathered x. Every 16-bit tile stages with
 * 16-byte stores (SgmatShape.vs), as do fp8 weights on the 128 x 256 tile (H200 call 5 below). The measurements behind
 * each step, oldest first:
 * H200 2026-12-04, the layer (bench, bf16, old = 64 x 128 everywhere vs a rule with 32-row tiles up to r = 32 and
 * 128-row 'half' tiles from r = 128 at any N, same call, docs/perf-h200/2026-12-04-s8/call7), device ms:
 * Mixtral T = 128 (r 32) 1.91 vs 2.57, T = 512 (r 128) 4.36 vs 4.05, T = 4096 27.6 vs 25.1; Qwen3-30B T = 128 (r 8)
 * 0.861 vs 0.838, T = 512 (r 32) 0.966 vs 1.18, T = 4096 (r 256, N 768 / 2048) 3.71 vs 3.92; GPT-OSS-20B T = 128 (r 16)
 * 1.14 vs 1.11, T = 4096 (r 512, N 2880) 8.03 vs 7.86; DeepSeek-V2-Lite level. The GEMMs alone on evenly spread rows
 * (scripts/gpu/prefill-bench.ts, calls 4-5) favoured 32-row tiles at r = 32 too: the layer's uneven routing does not.
 * From r = 128 on a device with 48 KiB of workgroup memory (`workgroupBytes`, the device's
 * maxComputeWorkgroupStorageSize): the 128 x 256 tile over f16 x rows. H200 2026-12-04 (prefill-bench, GEMMs alone,
 * docs/perf-h200/2026-12-04-s10/call1), 128 x 256 vs 128 x 128 (both f16 x) vs 64 x 128 gathered ms: Mixtral T = 512
 * (r 128) 2.50 / 3.24 / 3.24, T = 4096 17.75 / 23.55 / 23.55; DeepSeek-V3-e32 T = 512 (r 128) 2.49 / 3.30 / 3.48,
 * T = 4096 18.5 / 23.6 / 25.3; Qwen3-30B T = 4096 (r 256, N 768 / 2048) 2.59 / 3.22 / 3.27; GPT-OSS-20B T = 4096
 * (r 512, N 2880) 5.67 / 7.08 / 7.67; below r = 128 the 64 x 128 gathered tile stays faster (Qwen3 T = 512, r 32:
 * 0.91 vs 1.12; GPT-OSS T = 512, r 64: 1.23 vs 1.47). Packed weights on it (call 2, 128 x 256 vs the 64 x 128 tile with
 * gathered x): int4 Mixtral T = 512 2.92 vs 4.41, T = 4096 21.96 vs 33.40, DeepSeek-V3-e32 2.98 vs 4.35 and 22.8 vs 32.7,
 * Qwen3 T = 4096 3.00 vs 4.05 (T = 512, r 32: 1.29 vs 1.00); fp8 blocks Mixtral 4.07 vs 5.46 and 30.8 vs 40.2,
 * DeepSeek-V3-e32 4.08 vs 5.31 and 31.5 vs 39.1, Qwen3 T = 4096 3.97 vs 4.78 (T = 512: 1.76 vs 1.27).
 * Vector staging (call 5, same tile with 16-byte vs 2-byte staging stores, bf16): 128 x 256 Mixtral T = 4096 14.39 vs
 * 17.75 ms, T = 512 2.08 vs 2.50, DeepSeek-V3-e32 14.96 vs 18.51 and 2.09 vs 2.53, Qwen3 T = 4096 2.19 vs 2.57, GPT-OSS
 * T = 4096 4.65 vs 5.67; 32-row tiles Mixtral T = 128 1.72 vs 1.81, Qwen3 T = 512 0.82 vs 0.87; 64-row tiles Mixtral
 * T = 128 1.91 vs 1.93, Qwen3 T = 512 0.90 vs 0.91; int4 on 128 x 256 Mixtral T = 4096 21.0 vs 21.9, DeepSeek-V3-e32
 * T = 512 2.84 vs 2.96, but Mixtral T = 512 4.62 vs 2.88 (the layer with it: 4.87 ms, call 7), fp8 3.75-29.2 vs
 * 3.98-31.1 ms. 128 x 128 over f16 x rows vs 64 x 128 (both vector-staged, the 32 KiB rule): N = 2880 (GPT-OSS
 * T = 4096) 6.22 vs 7.30, N = 768 / 2048 (Qwen3) 3.77 vs 3.15: `largeMinOutputs` between them.
 * The 128 x 192 and 144 x 256 tiles: KERNEL_CROSSOVERS.sgmatTiles.wideShapes and .bands (sessions 18, 19; fp8's band
 * on the 128 x 256 tile with the epilogue in the staging memory: session 25).
 * @example `sgmatTileFor(8192, 8, 14336, 'bfloat16', 49152) // { shape: 'm128n192k64va', xRows: 'half' }`
 */
export function sgmatTileFor(rows: number, E: number, N: number, wf: string, workgroupBytes: number = SGMAT_MAX_WORKGROUP_BYTES): { shape: SgmatShapeName; xRows: SgmatXRows } {
  const t = KERNEL_CROSSOVERS.sgmatTiles;
  const perExpert = rows / Math.max(1, E);
  const half16 = wf === 'bfloat16' || wf === 'float16';
  const big = workgroupBytes >= t.wideWorkgroupBytes;
  const band = t.bands.find((b) => Object.hasOwn(b.shapes, wf) && workgroupBytes >= b.minWorkgroupBytes && perExpert >= b.minRowsPerExpert && perExpert <= b.maxRowsPerExpert);
  if (band) return { shape: band.shapes[wf]!, xRows: 'half' };
  const wide = Object.hasOwn(t.wideShapes, wf) ? t.wideShapes[wf] : undefined;
  if (wide && big && perExpert >= t.wideMinRowsPerExpert[half16 ? 'half16' : 'packed']) return { shape: wide, xRows: 'half' };
  if (half16 && perExpert <= t.smallMaxRowsPerExpert) return { shape: 'm32n128k32v', xRows: 'gather' };
  if (half16 && perExpert >= t.largeMinRowsPerExpert && N >= t.largeMinOutputs) return { shape: 'm128n128k32v', xRows: 'half' };
  if (half16) return { shape: 'm64n128k32v', xRows: 'gather' };
  return { shape: SGMAT_DEFAULT_SHAPE, xRows: 'gather' };
}

/**
 * The scalar-staged tile that runs a planned shape where Dawn refuses vector staging (vec4<u32> staging arrays): its
 * twin without `vs` (sgmatScalarTwin), or for the vector-only shapes the planner takes
 * KERNEL_CROSSOVERS.sgmatTiles.scalarFallbacks; undefined for other vector-only shapes (bench candidates).
 * @example `sgmatScalarShapeFor('m128n192k64va') // 'm128n256k32'`
 */
export function sgmatScalarShapeFor(shape: SgmatShapeName): SgmatShapeName | undefined {
  return sgmatScalarTwin(shape) ?? KERNEL_CROSSOVERS.sgmatTiles.scalarFallbacks[shape];
}

/**
 * Every tile (shape and x-row mode) sgmatTileFor can return for weight format `wf` on a device with `workgroupBytes` of
 * workgroup memory: its rule evaluated on both sides of each threshold of KERNEL_CROSSOVERS.sgmatTiles (what
 * warmGroupedGemmFast compiles for a call site).
 * @example `sgmatTilesOf('int4', 49152) // [{ shape: 'm64n128k32', xRows: 'gather' }, { shape: 'm128n256k32', xRows: 'half' }]`
 */
export function sgmatTilesOf(wf: string, workgroupBytes: number): { shape: SgmatShapeName; xRows: SgmatXRows }[] {
  const t = KERNEL_CROSSOVERS.sgmatTiles;
  const perExpert = [t.smallMaxRowsPerExpert, t.largeMinRowsPerExpert, t.wideMinRowsPerExpert.half16, t.wideMinRowsPerExpert.packed, ...t.bands.flatMap((b) => [b.minRowsPerExpert, b.maxRowsPerExpert])].flatMap((r) => [r - 1, r, r + 1]);
  const outputs = [t.largeMinOutputs - 1, t.largeMinOutputs];
  const tiles = new Map<string, { shape: SgmatShapeName; xRows: SgmatXRows }>();
  for (const r of perExpert) for (const N of outputs) {
    const tile = sgmatTileFor(r, 1, N, wf, workgroupBytes);
    tiles.set(`${tile.shape}/${tile.xRows}`, tile);
  }
  return [...tiles.values()];
}

/**
 * Every tile shape, x-row mode and split that sgmatTileFor and sgmatSplitKFor can return, over all formats and
 * devices (plan.test.ts checks the functions stay inside these lists; warmGroupedGemmFast compiles the splits, and the
 * tiles of its format and device: sgmatTilesOf).
 */
export const SGMAT_CHOICES: { readonly shapes: readonly SgmatShapeName[]; readonly xRows: readonly SgmatXRows[]; readonly splitK: readonly number[] } = {
  shapes: ['m64n128k32', 'm64n128k32v', 'm32n128k32v', 'm128n128k32v', 'm128n256k32v', 'm128n256k32', 'm128n192k64va', 'm144n256k32v', 'm128n256k32va', 'm32n128k64vap2'],
  xRows: ['gather', 'half'],
  // 1 .. maxSplit where the rule is on (warmGroupedGemmFast compiles each), else 1 alone
  splitK: Array.from({ length: KERNEL_CROSSOVERS.sgmatSplitK.targetWorkgroups > 0 ? KERNEL_CROSSOVERS.sgmatSplitK.maxSplit : 1 }, (_, i) => i + 1),
};

/**
 * A band of KERNEL_CROSSOVERS.sgmatTiles.bands: calls of a weight format in `shapes` with `minRowsPerExpert` to
 * `maxRowsPerExpert` grouped rows per expert on average (ends included), on a device with at least `minWorkgroupBytes`
 * of workgroup memory, take that format's tile shape over f16 x rows ('half'). The first band that matches decides.
 */
export interface SgmatTileBand {
  shapes: Readonly<Partial<Record<string, SgmatShapeName>>>;
  minRowsPerExpert: number;
  maxRowsPerExpert: number;
  minWorkgroupBytes: number;
}

/**
 * KERNEL_CROSSOVERS.sgmatSplitK's shape: split where a call has fewer tiles than targetWorkgroups (0: never) and at most
 * maxRowsPerExpert rows per expert; `tileSplits`: tile shapes whose down GEMMs split that many ways (at most maxSplit)
 * wherever K allows, whatever the call's tiles (still at most maxRowsPerExpert rows per expert; 0 targetWorkgroups
 * turns them off too).
 */
export interface SgmatSplitKRule {
  targetWorkgroups: number;
  maxSplit: number;
  minSliceK: number;
  maxRowsPerExpert: number;
  tileSplits?: Readonly<Partial<Record<SgmatShapeName, number>>>;
}

/**
 * Workgroups per tile along K of the subgroup-matrix down GEMM (split-K; 1 = none) for a call of `nWork` tiles over K
 * input channels with `rowsPerExpert` grouped rows per expert on average: enough to bring the call to
 * `rule.targetWorkgroups`, at most `rule.maxSplit` and K / `rule.minSliceK`, where the rows per expert are at most
 * `rule.maxRowsPerExpert`; gate_up GEMMs never split. A tile `shape` of `rule.tileSplits` splits its count of ways
 * (at most maxSplit and K / minSliceK) whatever `nWork`. The rule is KERNEL_CROSSOVERS.sgmatSplitK.
 * @example `sgmatSplitKFor(176, 14336, 'down', 32) // 3 (Mixtral T = 128 on the 128 x 192 tile)`
 * @example `sgmatSplitKFor(512, 14336, 'down', 32, undefined, 'm32n128k64vap2') // 3 (Mixtral T = 128 on the pf2 tile)`
 */
export function sgmatSplitKFor(nWork: number, K: number, op: 'gate_up' | 'down', rowsPerExpert: number, rule: Readonly<SgmatSplitKRule> = KERNEL_CROSSOVERS.sgmatSplitK, shape?: SgmatShapeName): number {
  if (op !== 'down' || rule.targetWorkgroups <= 0 || rowsPerExpert > rule.maxRowsPerExpert) return 1;
  const ways = shape !== undefined ? rule.tileSplits?.[shape] : undefined;
  if (ways === undefined && nWork >= rule.targetWorkgroups) return 1;
  return Math.max(1, Math.min(rule.maxSplit, ways ?? Math.ceil(rule.targetWorkgroups / Math.max(1, nWork)), Math.floor(K / rule.minSliceK)));
}

/**
 * The tail tile the planner gives a subgroup-matrix GEMM (KERNEL_CROSSOVERS.sgmatTail): a down GEMM split along K
 * (`splitK` > 1, sgmatSplitKFor) gets `splitDown`, any other call none. grouped-gemm-fast.ts drops it where the call's
 * own tile is not taller or reads its x rows in a way the tail's shape cannot.
 * @example `sgmatTailFor('down', 2) // 'm32n128k64vap2'`
 */
export function sgmatTailFor(op: 'gate_up' | 'down', splitK: number): SgmatShapeName | undefined {
  return op === 'down' && splitK > 1 ? KERNEL_CROSSOVERS.sgmatTail.splitDown : undefined;
}

/**
 * How the subgroup-matrix GEMMs of `rows` grouped rows with K input channels read their x rows: 'gather' (f32 rows
 * gathered and converted to f16 at staging), 'half' (converted to f16 in grouped order by a pass of their own
 * first, halfRowsKernel: one extra pass and a temp of rows * K halves; the GEMM reads 8 halves per load and
 * neither gathers nor converts) or 'direct' (as 'half', and the GEMM loads its A matrices straight from those
 * rows: no x staging). sgmatTileFor chooses 'half' for the 128-row tiles, else 'gather' ('direct' is a bench candidate).
 */
export type SgmatXRows = 'gather' | 'half' | 'direct';

/**
 * Whether the subgroup-matrix kernel stages packed weights (fp8 blocks, int4 / int8 blocks, MXFP4) with 16-byte loads
 * of codes (FastGemmVariant.wide; where fastWeightFormat allows it) rather than the codes of 8 values per load. Both
 * stage the same f16 values (bit-identical results); wide loads issue half (8-bit) or a quarter (4-bit) of the loads,
 * scale lookups and index divisions. GroupedGemmOptions.sgmatWideLoads overrides it (scripts/gpu/prefill-bench.ts
 * ranks both: paths -narrow / -wide). H200 2026-12-04 (docs/perf-h200/2026-12-04-mid, Mixtral and DeepSeek-V3-e32
 * shapes, T = 512 and 4096): wide is faster for fp8 (Mixtral T = 4096 40.0 vs 44.5 ms, T = 512 5.41 vs 5.83) and
 * slower for int4 (32.9 vs 35.7 ms narrow vs wide; 4.37 vs 4.70): wide for fp8 only (int8 and MXFP4 unmeasured:
 * the 8-value loads, as before). MXFP4 wide too since session 19: H100 2026-12-05 (call 5, prefill-bench, the router's
 * uneven rows, medians of three rounds, wide / 8-value loads ms) on the 144 x 256 tile Mixtral T = 512 2.57 / 2.86,
 * T = 1024 4.98 / 5.62, DeepSeek-V3-e32 T = 512 2.63 / 2.95, GPT-OSS-20B T = 512 1.41 / 1.77, T = 1024 1.64 / 1.94;
 * on the 128 x 192 k64 tile Mixtral T = 512 3.91 / 4.29. int4 stays on 8-value loads: wide was mixed there (Mixtral
 * T = 512 2.55 / 2.65, GPT-OSS-20B T = 1024 1.93 / 1.69). int4 in blocks of 32 inputs (`blockK`: one load's 32 values,
 * one scale) wide since session 26: H100 2026-12-06 (call 1, prefill-bench, the router's uneven rows, medians of three
 * rounds, docs/perf-h200/2026-12-06-s26/call1/int4-blocks.txt), wide / 8-value loads ms: GPT-OSS-20B T = 512 1.40 /
 * 1.74, T = 4096 6.19 / 6.19; Mixtral T = 512 2.58 / 2.70, T = 4096 16.80 / 16.81. In blocks of 128 still mixed
 * (GPT-OSS-20B T = 512 1.39 / 1.45, Mixtral T = 512 2.57 / 2.52): 8-value loads there.
 * @example `sgmatWideLoadsFor('int4', 32) // true`
 */
export function sgmatWideLoadsFor(wf: string, blockK = Infinity): boolean {
  return wf === 'fp8_e4m3' || wf === 'fp8_e5m2' || wf === 'mxfp4' || (wf === 'int4' && blockK <= 32);
}

/**
 * Whether the subgroup-matrix kernel stages packed weights of format `wf` one value at a time through f32 (wdec, then
 * f16) on tile `shape` rather than a word of codes at a time (packedHalfPairsWgsl); both stage the same f16 tiles.
 * GroupedGemmOptions.sgmatValueDecode overrides it. H200 2026-12-05 (prefill-bench, GEMMs alone, word vs value staging
 * ms, Mixtral / DeepSeek-V3-e32 at T = 512 and 4096; docs/perf-h200/2026-12-05-s12): fp8 e4m3 4.33 vs 4.08, 32.68 vs
 * 31.23, 4.40 vs 4.14, 33.95 vs 32.00 (value staging 5-6% faster); int4 3.31 vs 3.35, 25.03 vs 25.33 (level); MXFP4
 * 4.59 vs 12.91, 34.99 vs 98.64 (words 2.8x faster). Values for fp8 e4m3 except on the tiles of
 * KERNEL_CROSSOVERS.sgmatE4m3WordShapes (words since session 28); words for the rest (e5m2 and int8 unmeasured).
 * @example `sgmatValueDecodeFor('fp8_e4m3', 'm144n256k32v') // true`
 */
export function sgmatValueDecodeFor(wf: string, shape?: SgmatShapeName): boolean {
  return wf === 'fp8_e4m3' && !(shape !== undefined && KERNEL_CROSSOVERS.sgmatE4m3WordShapes.includes(shape));
}

/**
 * Whether the planner decodes weights of format `wf` (a dtype or WeightFormat) to f16 before the matrix GEMMs without
 * being asked, where a call reaches KERNEL_CROSSOVERS.sgmatDequant.minRowsPerExpert: the packed formats; not the 16-bit
 * ones (bf16 converted first was slower, f16 has nothing to decode) nor float32.
 * @example `sgmatDequantUnasked('int4') // true`
 */
export function sgmatDequantUnasked(wf: string): boolean {
  return Number.isFinite(KERNEL_CROSSOVERS.sgmatDequant.minRowsPerExpert) && wf !== 'bfloat16' && wf !== 'float16' && wf !== 'float32';
}

/**
 * Experts per decoding pass of the dequantize-then-GEMM path (KERNEL_CROSSOVERS.sgmatDequant) for a subgroup-matrix
 * GEMM of `rows` grouped rows over E experts of format `wf` whose f16 expert takes `expertHalfBytes`, or 0 where the
 * call decodes at staging: `want` false; unasked, a format sgmatDequantUnasked leaves out or a call below the
 * crossover; one f16 expert beyond the scratch budget or `maxBindingBytes` (one binding holds a range). A range is as
 * many experts as the budget holds, at most E.
 * @example `sgmatDequantExperts(8192, 8, 235e6, 2 ** 31, 'int4') // 2`
 */
export function sgmatDequantExperts(rows: number, E: number, expertHalfBytes: number, maxBindingBytes: number, wf: string, want?: boolean): number {
  const c = KERNEL_CROSSOVERS.sgmatDequant;
  if (want === false || E < 1 || rows < 1) return 0;
  if (want !== true && (!sgmatDequantUnasked(wf) || rows / E < c.minRowsPerExpert)) return 0;
  const budget = Math.min(c.maxScratchBytes, maxBindingBytes);
  return expertHalfBytes > budget ? 0 : Math.min(E, Math.floor(budget / expertHalfBytes));
}
