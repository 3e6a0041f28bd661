/**
 * Variants, tile sizes and subgroup-matrix tile shapes of the fast grouped
 * GEMMs for prefill (kernels: grouped-gemm-fast-wgsl.ts, register-blocked FMA,
 * and grouped-gemm-sgmat-wgsl.ts, subgroup matrices; their shared staging
 * code: grouped-gemm-fast-staging-wgsl.ts; the weight decoders:
 * grouped-gemm-fast-weights-wgsl.ts; dispatch: grouped-gemm-fast.ts).
 */
import type { GroupedGemmVariant } from './grouped-gemm-wgsl.js';

/** Rows (grouped rows) per workgroup tile of the register-blocked kernel (the subgroup-matrix kernel's come from its SgmatShape). */
export const FAST_TM = 64;
/** Weight rows per workgroup tile (down: outputs; gate_up: 64 gate + 64 up rows). */
export const FAST_TNW = 128;
/** K slice staged per step. */
export const FAST_TK = 32;
/** Threads per workgroup. */
export const FAST_THREADS = 256;

/**
 * Variant of the fast grouped GEMMs (selects the WGSL; shapes go in uniforms): the tiled GEMM's fields of the
 * operation, weight format (packed ones decoded at staging, grouped-gemm-fast-weights-wgsl.ts), bias and x rows, and
 * the fast kernels' own.
 * @example `{ op: 'down', act: 'none', interleaved: false, wf: 'bfloat16', sd: 'none', bias: 'none', xmode: 'grouped', rowScale: false, h: false }`
 */
export type FastGemmVariant = Pick<GroupedGemmVariant, 'op' | 'act' | 'interleaved' | 'wf' | 'sd' | 'zp' | 'bias' | 'xmode' | 'rowScale'> & {
  /** Register-blocked kernel only: stage operands as f16 (needs shader-f16). */
  h: boolean;
  /**
   * f16-staged kernels ('f16' and subgroup-matrix): each x row is multiplied by a power of two that brings
   * its largest |value| (times |rowScale|) to at most 2^14 before the f16 rounding, and the row's results are
   * divided by it before bias and activation, so inputs beyond f16's range (65504) stay finite and correct.
   * Needs the XAMAX binding (per x row max |x|, from rowAbsMaxKernel). Rows already inside the range are
   * untouched (scale 1).
   */
  xScale?: boolean;
  /**
   * Subgroup-matrix kernel only, tests: emulate the subgroup-matrix builtins per invocation in plain WGSL
   * (every invocation computes whole 16x16 matrices; slow) so the staging, layouts and epilogue run on
   * adapters without the feature. Never selected by the ops.
   */
  emu?: boolean;
  /** Subgroup-matrix kernel only: the tile shape, a key of SGMAT_SHAPES (absent: SGMAT_DEFAULT_SHAPE). */
  sg?: SgmatShapeName;
  /**
   * Subgroup-matrix kernel, down only: split K over this many workgroups per tile (2..8; absent: 1). Workgroup
   * w0 computes split w0 % splitK of tile w0 / splitK over K range [ks * kc, (ks + 1) * kc) (kc: K / splitK
   * rounded up to the K slice) and writes its partial sums to Y viewed as [splitK][nRows][ys] (bias in split
   * 0 only; recordFastGemm passes ys = N, yo = 0); splitKReduceKernel adds the splits into the output.
   */
  splitK?: number;
  /**
   * Subgroup-matrix kernel only: x arrives as f16 rows in grouped order (halfRowsKernel: gathered, times rowScale,
   * times the row's power-of-two staging scale, rounded to f16 once per call; rows of halfRowStride(K) halves, zero
   * padded, plus HALF_ROWS_PAD zero rows), XRU the per-grouped-row 1 / scale; the GEMM neither gathers nor converts x.
   * 'staged': X is array<vec4<u32>> (8 halves per load) staged into workgroup memory like before; 'direct': X is
   * array<f16> and the A matrices are loaded from it directly (no x staging at all; rows past the tile's end
   * belong to the next expert or the padding and only feed discarded output rows). Set with rowScale false and
   * xScale true (the variant of the ops).
   */
  xh?: 'staged' | 'direct';
  /**
   * Subgroup-matrix kernel, packed formats: each staging load reads 16 bytes of codes (16 fp8 / int8 or 32 int4 / fp4
   * values) and one scale, instead of the codes of 8 values and their scale (grouped-gemm-fast-weights-wgsl.ts); the
   * decoded values are the same. Needs K and the scale blocks' width to be multiples of those values (or one block per
   * row): fastWeightFormat's `wide`.
   */
  wide?: boolean;
  /**
   * Packed formats whose scale blocks are powers of two (blockShiftUniforms in grouped-gemm-weights.ts): the staging
   * indexes scales with shifts by the log2 the weight uniforms then hold (fp8: wc, wd; int: wb) instead of integer
   * divisions by the block sizes, two per load for fp8 blocks. Same values.
   */
  blockShifts?: boolean;
  /**
   * Subgroup-matrix kernel, packed formats, bench comparisons only: stage the weights through wdec's f32 values, one
   * code at a time (the staging before packedHalfPairsWgsl). Same tiles, more instructions.
   */
  vdec?: boolean;
  /**
   * Work order (expertTileWgsl): within each expert, row tiles in bands of this many, the band's row tiles of one
   * column tile consecutive (workgroups that read the same weights run together); absent: the column tiles of one
   * row tile consecutive.
   */
  band?: number;
  /**
   * Subgroup-matrix kernel: skip the multiply-accumulates of 16-row fragments past the tile's last row (and a
   * subgroup's B loads where all its fragments are past it), so the partial last row tile of an expert costs its
   * staging but not a full tile's matrix work. Same results (those rows are never stored).
   */
  rowSkip?: boolean;
  /**
   * Subgroup-matrix kernel: the tail dispatch of a call (FastGemmPlan.tail): META from tileOffsetsKernel with `of`, whose
   * row ranges end at its end rows (expertTileWgsl's `ends`).
   */
  ends?: boolean;
};

/**
 * Tile shape of the subgroup-matrix kernel: a workgroup computes `tm` grouped rows x `tn` weight rows
 * (down: tn outputs; gate_up: tn / 2 outputs, their gate and up rows in alternating blocks of 16 columns),
 * staging K slices of `tk` (32, 64 or 128) as f16 in workgroup memory; `wm` x `wn` subgroups of 32 invocations
 * (threads = 32 * wm * wn) each own a (tm / wm) x (tn / wn) block of 16x16 f32 accumulators, so one A and
 * one B fragment load feed tn / wn / 16 and tm / wm / 16 multiply-accumulates. `db`: two staging buffers
 * (one barrier per K slice instead of two: the next slice is stored into the other buffer while this one
 * is multiplied).
 */
export interface SgmatShape {
  /** Grouped rows per workgroup tile (a multiple of 16 * wm, at most SGMAT_MAX_TILE_ROWS). */
  tm: number;
  /** Weight rows per workgroup tile (a multiple of 32 and of 16 * wn, at most 256). */
  tn: number;
  /** K slice staged per step: 32, 64 or 128. */
  tk: number;
  /** Subgroups along the rows. */
  wm: number;
  /** Subgroups along the weight rows (wm * wn <= 16; threads 32 * wm * wn, within the device's maxComputeInvocationsPerWorkgroup). */
  wn: number;
  /** Double-buffered staging. */
  db?: boolean;
  /**
   * Conflict-free weight staging (bf16 / f16 weights): thread j stores its 8 values starting at value 2 (j % (tk / 8))
   * (its raw words rotated by j % (tk / 8)), so the 32 lanes of one store instruction hit 32 different banks (without:
   * 4 lanes per bank, the rows being 16-byte aligned); and x held as f16 between load and staging (fewer registers).
   */
  swz?: boolean;
  /**
   * The A matrices always come from the f16 x rows directly (FastGemmVariant.xh 'direct'): the layout has no A
   * staging tile, which leaves room for wider tiles.
   */
  xd?: boolean;
  /**
   * Workgroup memory budget of the shape in bytes (absent: SGMAT_MAX_WORKGROUP_BYTES, 32 KiB, what every adapter with
   * the feature offers). Shapes with a larger budget (49152: the H200 offers 48 KiB) run only where
   * the device's maxComputeWorkgroupStorageSize allows it (sgmatSupported); elsewhere plan.ts keeps the 32 KiB shapes.
   */
  wgBytes?: number;
  /**
   * Vector staging: the staging tiles are arrays of vec4<u32> (8 halves; x gathered 4 values at a time: vec2<u32>) and
   * every thread stores its 8 staged values with one 16-byte store instead of eight 2-byte ones; the subgroup matrices
   * load from those arrays with offsets and strides in their elements. No rotated stores (`swz` keeps only its f16 x
   * registers).
   */
  vs?: boolean;
  /**
   * Vector-staged shapes only: the epilogue's f32 result tile lives in the weight staging tile BS (free once the K loop
   * is done) instead of a workgroup array of its own, so a shape needs only its staging and row tables: the 128 x 256
   * tile fits 32 KiB, and 64-wide K slices fit 48 KiB with 192 weight rows.
   */
  oa?: boolean;
  /**
   * Two K slices in flight in registers (not with `db`): the loads of slice k + 2 are issued while slice k is
   * multiplied, into a second set of registers, so each slice's loads have a whole loop step (staging, multiplies,
   * barriers) to land instead of one slice's multiplies. For few rows per expert, where the loop waits on its loads.
   * Twice the prefetch registers.
   */
  pf2?: boolean;
  /**
   * No row tables in workgroup memory (the x row offsets, row scales and 1 / staging scales of the tile's rows, 12 bytes
   * a row): the shape runs only over f16 x rows (FastGemmVariant.xh), whose offsets follow from the row and whose
   * 1 / scale the epilogue reads from XRU. Frees room for 64-wide K slices of a 144 x 192 tile in 48 KiB.
   */
  xo?: boolean;
}

/**
 * The named tile shapes (bench candidates, docs/PERF-NOTES.md; which one runs is plan.ts's choice).
 * Subgroup block per shape: m64n128k32 32x32 (the kernel measured on the H200 on 2026-12-03; every other shape
 * has `swz`, m64n128k32s is it with `swz` only), m128n128k32 64x32, w4: 4 subgroups with 32x64 blocks, w4x2:
 * 8 subgroups with 32x64 blocks, w2x2: 4 subgroups with 64x64 blocks (half the fragment loads per multiply of
 * 32x32 blocks); k64: 64-wide K slices; db: double-buffered staging; m32 / m16: tiles for few rows per expert
 * (m16n256*: 16 grouped rows x 256 weight rows, 8 subgroups with 16x32 blocks or w4: 4 subgroups with 16x64 blocks,
 * for ~4 rows per expert, e.g. DeepSeek-V3 at T = 128: each weight row is read once per 16-row tile);
 * xd: A matrices loaded from the f16 x rows directly (no A tile: room for 64-wide K slices with 128 rows, or 256
 * weight rows); m128n256k32, m128n128k64, m128n128k32db: 48 KiB of workgroup memory (wgBytes); v: vector staging
 * (16-byte staging stores, `vs`), the tiles plan.ts chooses; v16: 16 subgroups (512 threads) with 32x64 / 32x32 blocks;
 * m32n256k32v / m64n256k32v: 256 weight rows over 32 / 64 grouped rows (vector staging only).
 */
export type SgmatShapeName =
  | 'm64n128k32'
  | 'm64n128k32s'
  | 'm128n128k32'
  | 'm128n128k32w4x2'
  | 'm64n128k32w4'
  | 'm64n128k64'
  | 'm64n128k64w4'
  | 'm64n64k32db'
  | 'm32n128k32db'
  | 'm32n128k32'
  | 'm32n128k64'
  | 'm16n128k64'
  | 'm16n128k32'
  | 'm16n256k32'
  | 'm16n256k32w4'
  | 'm16n256k32xd'
  | 'm16n128k64xd'
  | 'm128n128k32w2x2'
  | 'm128n128k64xd'
  | 'm64n256k32xd'
  | 'm128n256k32xd'
  | 'm128n256k32'
  | 'm128n128k64'
  | 'm128n128k32db'
  | 'm128n256k32v'
  | 'm128n128k32v'
  | 'm64n128k32v'
  | 'm32n128k32v'
  | 'm128n256k32va'
  | 'm128n192k64va'
  | 'm128n192k32va'
  | 'm128n256k32v16'
  | 'm128n128k32v16'
  | 'm32n256k32v'
  | 'm64n256k32v'
  | 'm144n256k32v'
  | 'm144n192k32v'
  | 'm144n192k32va'
  | 'm144n128k32v'
  | 'm144n192k64vax'
  | 'm160n256k32v'
  | 'm128n128k32vax'
  | 'm32n128k128va'
  | 'm64n128k128vaxd'
  | 'm128n128k128vaxd'
  | 'm32n64k128va'
  | 'm128n192k64vap2'
  | 'm32n128k64vap2'
  | 'm32n64k64vap2';

/** The tile shape of each name. @example `SGMAT_SHAPES.m64n128k64 // { tm: 64, tn: 128, tk: 64, wm: 2, wn: 4, swz: true }` */
export const SGMAT_SHAPES: Readonly<Record<SgmatShapeName, Readonly<SgmatShape>>> = {
  m64n128k32: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 4 },
  m64n128k32s: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m128n128k32: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m128n128k32w4x2: { tm: 128, tn: 128, tk: 32, wm: 4, wn: 2, swz: true },
  m64n128k32w4: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 2, swz: true },
  m64n128k64: { tm: 64, tn: 128, tk: 64, wm: 2, wn: 4, swz: true },
  m64n128k64w4: { tm: 64, tn: 128, tk: 64, wm: 2, wn: 2, swz: true },
  m64n64k32db: { tm: 64, tn: 64, tk: 32, wm: 2, wn: 2, db: true, swz: true },
  m32n128k32db: { tm: 32, tn: 128, tk: 32, wm: 1, wn: 4, db: true, swz: true },
  m32n128k32: { tm: 32, tn: 128, tk: 32, wm: 2, wn: 4, swz: true },
  m32n128k64: { tm: 32, tn: 128, tk: 64, wm: 1, wn: 4, swz: true },
  m16n128k64: { tm: 16, tn: 128, tk: 64, wm: 1, wn: 8, swz: true },
  m16n128k32: { tm: 16, tn: 128, tk: 32, wm: 1, wn: 8, swz: true },
  m16n256k32: { tm: 16, tn: 256, tk: 32, wm: 1, wn: 8, swz: true },
  m16n256k32w4: { tm: 16, tn: 256, tk: 32, wm: 1, wn: 4, swz: true },
  m16n256k32xd: { tm: 16, tn: 256, tk: 32, wm: 1, wn: 8, swz: true, xd: true },
  m16n128k64xd: { tm: 16, tn: 128, tk: 64, wm: 1, wn: 8, swz: true, xd: true },
  m128n128k32w2x2: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 2, swz: true },
  m128n128k64xd: { tm: 128, tn: 128, tk: 64, wm: 2, wn: 4, swz: true, xd: true },
  m64n256k32xd: { tm: 64, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, xd: true },
  m128n256k32xd: { tm: 128, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, xd: true },
  // 48 KiB shapes: 4x4 blocks (64 x 64 per subgroup: 8 fragment loads per 16 multiplies), 64-wide K slices of the
  // 128 x 128 tile (half the barriers per K), and the 128 x 128 tile double-buffered (one barrier per slice).
  m128n256k32: { tm: 128, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, wgBytes: 49152 },
  m128n128k64: { tm: 128, tn: 128, tk: 64, wm: 2, wn: 4, swz: true, wgBytes: 49152 },
  m128n128k32db: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 4, db: true, swz: true, wgBytes: 49152 },
  // vector staging (16-byte stores) of plan.ts's tiles
  m128n256k32v: { tm: 128, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, wgBytes: 49152, vs: true },
  m128n128k32v: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 4, swz: true, vs: true },
  m64n128k32v: { tm: 64, tn: 128, tk: 32, wm: 2, wn: 4, swz: true, vs: true },
  m32n128k32v: { tm: 32, tn: 128, tk: 32, wm: 2, wn: 4, swz: true, vs: true },
  // the epilogue in the staging memory (oa): 4x4 blocks in 32 KiB, 4x3 blocks with 64-wide K slices in 48 KiB
  m128n256k32va: { tm: 128, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, vs: true, oa: true },
  m128n192k64va: { tm: 128, tn: 192, tk: 64, wm: 2, wn: 4, swz: true, vs: true, oa: true, wgBytes: 49152 },
  // 16 subgroups (512 threads): twice the warps to hide latency with half the accumulators per subgroup (2x4 blocks of
  // the 128 x 256 tile, 2x2 of the 128 x 128 one), for devices where registers, not workgroup memory, limit the
  // 8-subgroup tiles to one workgroup per multiprocessor
  m128n256k32v16: { tm: 128, tn: 256, tk: 32, wm: 4, wn: 4, swz: true, wgBytes: 49152, vs: true },
  m128n128k32v16: { tm: 128, tn: 128, tk: 32, wm: 4, wn: 4, swz: true, vs: true },
  // 256 weight rows over few grouped rows (T = 128 .. 512 with few experts: memory-bound, twice the weight bytes in
  // flight per workgroup and K slice of the 128-wide tiles)
  m32n256k32v: { tm: 32, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, vs: true },
  m64n256k32v: { tm: 64, tn: 256, tk: 32, wm: 2, wn: 4, swz: true, vs: true, wgBytes: 49152 },
  m128n192k32va: { tm: 128, tn: 192, tk: 32, wm: 2, wn: 4, swz: true, vs: true, oa: true },
  // 144-row tiles (3 subgroups along the rows, 48 rows = 3 fragments each): one row tile for an expert of up to 144
  // rows, where a router's uneven split around 128 rows per expert (Mixtral at T = 512: 115-133) gives every expert past
  // 128 a second, nearly empty 128-row tile that costs a full tile's weight staging. Each subgroup a 3 x 4 block of
  // 16 x 16 accumulators (48 x 64); 12, 9 or 6 subgroups for 256, 192 or 128 weight rows
  m144n256k32v: { tm: 144, tn: 256, tk: 32, wm: 3, wn: 4, swz: true, vs: true, wgBytes: 49152 },
  m144n192k32v: { tm: 144, tn: 192, tk: 32, wm: 3, wn: 3, swz: true, vs: true, wgBytes: 49152 },
  m144n192k32va: { tm: 144, tn: 192, tk: 32, wm: 3, wn: 3, swz: true, vs: true, oa: true },
  m144n128k32v: { tm: 144, tn: 128, tk: 32, wm: 3, wn: 2, swz: true, vs: true },
  // without row tables (xo): 64-wide K slices of the 144-row tile in 48 KiB (the 144 x 256 tile's rows with the
  // 128 x 192 k64 tile's half the barriers per K), and a 32 KiB twin of the plain 128 x 128 tile (the emulated tests)
  m144n192k64vax: { tm: 144, tn: 192, tk: 64, wm: 3, wn: 3, swz: true, vs: true, oa: true, xo: true, wgBytes: 49152 },
  m128n128k32vax: { tm: 128, tn: 128, tk: 32, wm: 2, wn: 4, swz: true, vs: true, oa: true, xo: true },
  // 160 rows (5 subgroups along the rows, 32 rows = 2 fragments each; 2 along the weight rows, 128 = 8 fragments each:
  // a 2 x 8 block of accumulators, as many as the 128 x 256 tile's 4 x 4): one row tile for an expert of up to 160
  // rows, where the bench's router gives Mixtral at T = 512 113-145 rows per expert (the expert past 144 pays a second
  // tile's weight staging for one row). Bench candidate (session 19, unmeasured)
  m160n256k32v: { tm: 160, tn: 256, tk: 32, wm: 5, wn: 2, swz: true, vs: true, wgBytes: 49152 },
  // 128-wide K slices (session 25, bench candidates, unmeasured): at few rows per expert the GEMMs are bound by the weight
  // bytes each workgroup has in flight per K slice, not by the matrix units. H100 session 25 (Mixtral T = 128, 32 rows
  // per expert, prefill-bench): 16 KB of weights per slice (32 x 256, 64 x 256, 128 x 256 oa tiles) 2.05-2.51 ms against
  // the 128 x 192 k64 tile's 24 KB 1.71-1.76; these stage 32 KB (128 weight rows x 256 bytes: whole 128-byte lines, two
  // per row). 32 rows over a 128-wide A tile; 64 / 128 rows with the A matrices loaded from the f16 x rows directly (xd:
  // no A tile); and a 32 KiB one that runs on lavapipe (the emulated tests' coverage of 128-wide slices).
  m32n128k128va: { tm: 32, tn: 128, tk: 128, wm: 2, wn: 4, swz: true, vs: true, oa: true, wgBytes: 49152 },
  m64n128k128vaxd: { tm: 64, tn: 128, tk: 128, wm: 2, wn: 4, swz: true, vs: true, oa: true, xd: true, wgBytes: 49152 },
  m128n128k128vaxd: { tm: 128, tn: 128, tk: 128, wm: 2, wn: 4, swz: true, vs: true, oa: true, xd: true, wgBytes: 49152 },
  m32n64k128va: { tm: 32, tn: 64, tk: 128, wm: 2, wn: 4, swz: true, vs: true, oa: true },
  // two K slices in flight (pf2; session 25, bench candidates, unmeasured): the planner's 128 x 192 k64 tile, a 32-row
  // tile for 32 rows per expert, and a 32 KiB one that runs on lavapipe (the emulated tests' coverage)
  m128n192k64vap2: { tm: 128, tn: 192, tk: 64, wm: 2, wn: 4, swz: true, vs: true, oa: true, wgBytes: 49152, pf2: true },
  m32n128k64vap2: { tm: 32, tn: 128, tk: 64, wm: 2, wn: 4, swz: true, vs: true, oa: true, pf2: true },
  m32n64k64vap2: { tm: 32, tn: 64, tk: 64, wm: 2, wn: 4, swz: true, vs: true, oa: true, pf2: true },
};


/**
 * The scalar-staged twin of a vector-staged shape (the same tile without `vs`), for Dawn builds that refuse subgroup
 * matrices loaded from vec4<u32> arrays; other shapes map to themselves; undefined where SGMAT_SHAPES has no twin (the
 * `oa` shapes, which need vector staging).
 * @example `sgmatScalarTwin('m128n256k32v') // 'm128n256k32'`
 */
export function sgmatScalarTwin(name: SgmatShapeName): SgmatShapeName | undefined {
  const s = SGMAT_SHAPES[name];
  if (!s.vs) return name;
  const rest: Partial<SgmatShape> = { ...s };
  delete rest.vs;
  const keys = Object.keys(rest) as (keyof SgmatShape)[];
  const same = (t: Readonly<SgmatShape>) => !t.vs && Object.keys(t).length === keys.length && keys.every((k) => t[k] === rest[k]);
  return (Object.keys(SGMAT_SHAPES) as SgmatShapeName[]).find((n) => same(SGMAT_SHAPES[n]));
}

/** The shape of the subgroup-matrix kernel measured on the H200 (plan.ts may choose others). */
export const SGMAT_DEFAULT_SHAPE: SgmatShapeName = 'm64n128k32';

/** The most grouped rows of a subgroup-matrix tile shape (SgmatShape.tm; the f16 x rows' zero padding, HALF_ROWS_PAD). */
export const SGMAT_MAX_TILE_ROWS = 160;

/** Workgroup memory budget of the subgroup-matrix kernel's shapes unless a shape names its own (SgmatShape.wgBytes; the epilogue tile shrinks to fit). */
export const SGMAT_MAX_WORKGROUP_BYTES = 32768;

/**
 * Derived layout of a shape: staging row stride (tk + 8 halves: 16-byte aligned rows, conflict-free
 * fragment loads), epilogue tile width `ow` (columns of f32 results staged per 16-row block; the widest
 * divisor of tn, a multiple of 32, that fits the budget), the workgroup bytes, or `error` for an invalid shape.
 */
export function sgmatLayout(s: SgmatShape): { str: number; ow: number; bytes: number; threads: number; error?: string } {
  const str = s.tk + 8;
  const threads = 32 * s.wm * s.wn;
  const staging = (s.db ? 2 : 1) * ((s.xd ? 0 : s.tm) + s.tn) * str * 2;
  // the row tables (12 bytes a row) unless xo, and the workgroup's expert and row range (16 bytes)
  const rows = (s.xo ? 0 : 12 * s.tm) + 16;
  const budget = s.wgBytes ?? SGMAT_MAX_WORKGROUP_BYTES;
  // oa: the epilogue tile (16 x ow f32) in the weight staging tile (tn rows of str halves per buffer) instead of its own.
  const bStaging = (s.db ? 2 : 1) * s.tn * str * 2;
  const fits = (ow: number) => (s.oa ? 64 * ow <= bStaging && staging + rows <= budget : staging + rows + 64 * ow <= budget);
  let ow = s.tn;
  while (ow > 32 && (s.tn % ow !== 0 || !fits(ow))) ow -= 32;
  const bytes = staging + rows + (s.oa ? 0 : 64 * ow);
  const bad = (what: string) => ({ str, ow, bytes, threads, error: `${what} (shape ${JSON.stringify(s)})` });
  if (s.tk !== 32 && s.tk !== 64 && s.tk !== 128) return bad('tk must be 32, 64 or 128');
  if (!(s.wm >= 1 && s.wn >= 1 && s.wm * s.wn <= 16)) return bad('wm * wn must be 1..16 subgroups');
  if (s.tm % (16 * s.wm) !== 0 || s.tm > SGMAT_MAX_TILE_ROWS) return bad(`tm must be a multiple of 16 * wm, at most ${SGMAT_MAX_TILE_ROWS}`);
  if (s.tn % 32 !== 0 || s.tn % (16 * s.wn) !== 0 || s.tn > 256) return bad('tn must be a multiple of 32 and of 16 * wn, at most 256');
  if (s.oa && !s.vs) return bad('oa (the epilogue in the staging memory) needs vector staging (vs)');
  if (s.pf2 && s.db) return bad('pf2 (two slices in registers) and db (two staging buffers) do not combine');
  if (s.tn % ow !== 0 || bytes > budget || !fits(ow)) return bad(`needs ${bytes} bytes of workgroup memory (budget ${budget})`);
  return { str, ow, bytes, threads };
}

/** The shape of a subgroup-matrix variant. */
export function sgmatShape(v: Pick<FastGemmVariant, 'sg'>): SgmatShape {
  return SGMAT_SHAPES[v.sg ?? SGMAT_DEFAULT_SHAPE];
}

/** Output columns (down: outputs; gate_up: gate/up pairs) per workgroup tile of a weight-row tile of tn. */
export function tileOutputs(op: FastGemmVariant['op'], tn: number): number {
  return op === 'gate_up' ? tn / 2 : tn;
}

/** Row stride (halves) of the f16 x rows of halfRowsKernel for K input channels: K rounded up to 64 (whole K slices). */
export function halfRowStride(K: number): number {
  return Math.ceil(K / 64) * 64;
}

/** Zero rows after the f16 x rows (the 'direct' A loads of a last tile read up to tm - 1 rows past the end). */
export const HALF_ROWS_PAD = SGMAT_MAX_TILE_ROWS;
