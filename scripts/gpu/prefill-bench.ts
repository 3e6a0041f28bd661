// Prefill benchmark of the grouped GEMMs (gate_up + silu, then down) on real
// MoE shapes with bf16, fp8 (e4m3 blocks of 128x128) or int4 (blocks of 128,
// f16 scales) weights: the tiled path (tile 'prefill', 32x32, f32), the fast
// register-blocked path ('f32' and 'f16' staging), the subgroup-matrix path
// in every tile shape of SGMAT_SHAPES (sgmat-<shape>; 'sgmat-default' is what
// plan.ts picks; packed weights: '-narrow' = 8 values per staging load instead
// of the default 16-byte loads; '-vdec' / '-words' = staged one value at a time through f32 / a word of codes at a
// time (plan.ts's sgmatValueDecodeFor picks per format); '=<path>+narrow+words' etc. apply these to any path (modifiers:
// narrow, wide, vdec, words, rowskip); '-vdec' is the staging before the
// word-at-a-time decode; 'sgmat-dequant': packed (or bf16) experts decoded to f16 first, then the f16 GEMM) and the decode GEMVs ('gemv', T <= 512).
// Prints per-path GPU time (one pass, medians after warm-up), TFLOP/s, and
// each path's error against the tiled path's output (relErr, L2-relative,
// over each output's first 32 MiB) so a wrong kernel shows up here too
// (flagged WRONG above 1e-2), then a ranking per model, format and T, and the
// best correct path of each format side by side (packed vs bf16).
//   node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs [iters] [path substring,...] [model substring,...] [T,...] [format,...]
// ('-' for a filter = all; paths: substrings of their names, or '=name' for one path; models: substrings of mixtral-8x7b, qwen3-30b-a3b, deepseek-v3-e32, gpt-oss-20b, and only when
// named deepseek-v3-full (256 experts) and smoke (a small shape for any adapter);
// formats: bf16 (default), f16, fp8, int4 (blocks of 128), int4g32 (blocks of 32: the bench layer's), mxfp4; PREFILL_BENCH_MAX_S: the time budget after which no new model / format / T
// group starts, default 210; PREFILL_BENCH_BURN_MS: ms of FMA burn before each timed path, default 40; PREFILL_BENCH_ROUNDS: the path
// list timed that many times in turn (medians over the rounds; default 1); PREFILL_BENCH_ROUTING=random: uneven
// rows per expert, each token's experts drawn at random; =shift:N: even rows but N moved from the last expert to the first). Weights are generated one expert at a time and streamed to the GPU (stacks larger than
// one binding are chunked), so the full DeepSeek-V3 (22.5 GB of bf16 experts) fits.
import { HostTensor } from '@webmoe/tensor';
import {
  createGpuContext,
  destroyExpertWeights,
  gemvDownGpu,
  gemvGateUpGpu,
  gemvSupports,
  GpuTensor,
  Recorder,
  readBuffer,
  groupedGateUpGpu,
  groupedDownGpu,
  uploadExpertStackStreamed,
  type ExpertStackGpu,
  type ExpertWeightsHost,
  type ExpertWeightsShape,
  type GroupingGpu,
  type GroupedGemmOptions,
} from '@webmoe/kernels-wgsl';
import { sgmatSupported } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast.js';
import { SGMAT_SHAPES, sgmatLayout, type SgmatShapeName } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast-shapes.js';
import { relErr } from '@webmoe/kernels-wgsl/testing';
import { median, passTimesMs } from './device-time.js';
import { burnGpu } from '../../apps/bench/src/peak.js';

const iters = Number(process.argv[2] ?? 10);
const list = (i: number) => (process.argv[i] && process.argv[i] !== '-' ? process.argv[i].split(',') : undefined);
const pathFilter = list(3);
const modelFilter = list(4);
const tFilter = list(5)?.map(Number);
const FORMATS = (list(6) ?? ['bf16']) as Format[];
for (const f of FORMATS) if (!['bf16', 'f16', 'fp8', 'int4', 'int4g32', 'mxfp4'].includes(f)) throw new Error(`format ${f}: bf16 | f16 | fp8 | int4 | int4g32 | mxfp4`);
const ctx = await createGpuContext();
const info = (ctx.adapter as GPUAdapter & { info?: Record<string, unknown> }).info;
console.log('adapter', ctx.adapterName, JSON.stringify(ctx.features));
console.log('subgroupMatrixConfigs', JSON.stringify(info?.subgroupMatrixConfigs), 'subgroupMinSize', info?.subgroupMinSize, 'subgroupMaxSize', info?.subgroupMaxSize, 'wgMem', ctx.limits.maxComputeWorkgroupStorageSize, 'sgmatSupported', sgmatSupported(ctx));

/** int4: blocks of 128 inputs per f16 scale; int4g32: of 32 (the bench layer's int4, onnxruntime QMoE's block). */
type Format = 'bf16' | 'f16' | 'fp8' | 'int4' | 'int4g32' | 'mxfp4';
/** Inputs per scale of an int4 format. */
const int4Block = (fmt: Format) => (fmt === 'int4g32' ? 32 : 128);

/** Random bits from a linear congruential generator (the same stream for the same seed). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1103515245 + 12345) >>> 0) >>> 16;
}

/** One expert's weights [1, rows, cols] in `fmt`, values of magnitude ~2^-7..2^-5 with random signs. */
function expertWeights(fmt: Format, rows: number, cols: number, seed: number): ExpertWeightsHost {
  const r = lcg(seed);
  const n = rows * cols;
  switch (fmt) {
    case 'bf16': {
      const u = new Uint16Array(n);
      // |w| ~ 2^-7..2^-6, random sign; one in 128 an f16 subnormal (2^-22..2^-21: the f16 staging's slow conversion)
      for (let i = 0; i < n; i++) {
        const b = r();
        u[i] = (b & 127) === 0 ? 0x3580 | (b & 0x8000) | ((b >> 7) & 0x7f) : 0x3c00 | (b & 0x83ff);
      }
      return { kind: 'dense', w: new HostTensor('bfloat16', [1, rows, cols], u) };
    }
    case 'f16': {
      const u = new Uint16Array(n);
      for (let i = 0; i < n; i++) u[i] = 0x2000 | (r() & 0x83ff); // |w| ~ 2^-7..2^-6, random sign
      return { kind: 'dense', w: new HostTensor('float16', [1, rows, cols], u) };
    }
    case 'fp8': {
      // e4m3 codes with exponents 5..8 (2^-2..2^1) times block scales 2^-8
      const q = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const b = r();
        q[i] = (b & 0x80) | ((5 + ((b >> 3) & 3)) << 3) | (b & 7);
      }
      const br = Math.ceil(rows / 128);
      const bc = Math.ceil(cols / 128);
      return { kind: 'fp8_block', q: new HostTensor('float8_e4m3fn', [1, rows, cols], q), scaleInv: new HostTensor('float32', [1, br, bc], new Float32Array(br * bc).fill(2 ** -8)), block: [128, 128] };
    }
    case 'int4':
    case 'int4g32': {
      const q = new Uint8Array(n / 2);
      for (let i = 0; i < q.length; i++) q[i] = r() & 0xff;
      // f16 scales 2^-9 (bits 0x1800): codes -8..7 give |w| <= 2^-6
      const b = int4Block(fmt);
      return { kind: 'int_block', bits: 4, q: new HostTensor('uint8', [1, rows, cols / 2], q), scales: new HostTensor('float16', [1, rows, Math.ceil(cols / b)], new Uint16Array(rows * Math.ceil(cols / b)).fill(0x1800)), blockSize: b };
    }
    case 'mxfp4': {
      // e2m1 codes (|v| <= 6) in 32-value blocks with e8m0 scales 2^-9 (code 118): |w| <= 2^-6.4
      const blocks = new Uint8Array(n / 2);
      for (let i = 0; i < blocks.length; i++) blocks[i] = r() & 0xff;
      return { kind: 'mxfp4', blocks: new HostTensor('uint8', [1, rows, cols / 32, 16], blocks), scales: new HostTensor('uint8', [1, rows, cols / 32], new Uint8Array((rows * cols) / 32).fill(118)) };
    }
  }
}

/** The stack shape [E, rows, cols] of a format. */
function stackShape(fmt: Format, E: number, rows: number, cols: number): ExpertWeightsShape {
  switch (fmt) {
    case 'bf16':
      return { kind: 'dense', w: { dtype: 'bfloat16', shape: [E, rows, cols] } };
    case 'f16':
      return { kind: 'dense', w: { dtype: 'float16', shape: [E, rows, cols] } };
    case 'fp8':
      return { kind: 'fp8_block', q: { dtype: 'float8_e4m3fn', shape: [E, rows, cols] }, scaleInv: { dtype: 'float32', shape: [E, Math.ceil(rows / 128), Math.ceil(cols / 128)] }, block: [128, 128] };
    case 'int4':
    case 'int4g32':
      return { kind: 'int_block', bits: 4, q: { dtype: 'uint8', shape: [E, rows, cols / 2] }, scales: { dtype: 'float16', shape: [E, rows, Math.ceil(cols / int4Block(fmt))] }, blockSize: int4Block(fmt) };
    case 'mxfp4':
      return { kind: 'mxfp4', blocks: { dtype: 'uint8', shape: [E, rows, cols / 32, 16] }, scales: { dtype: 'uint8', shape: [E, rows, cols / 32] } };
  }
}

/** A stack of E experts streamed to the GPU; experts repeat a few generated ones (weight values do not change the timing). */
async function uploadStack(fmt: Format, E: number, rows: number, cols: number, layout: 'concat' | 'rows', seed: number): Promise<ExpertStackGpu> {
  const distinct = new Map<number, ExpertWeightsHost>();
  const { weights } = await uploadExpertStackStreamed(ctx, stackShape(fmt, E, rows, cols), { layout, label: `bench.${fmt}` }, (e) => {
    const key = e % 3;
    if (!distinct.has(key)) distinct.set(key, expertWeights(fmt, rows, cols, seed * 7 + key));
    return { w: distinct.get(key)! };
  });
  return weights;
}

// The first path is the reference of relErr (always run).
// sgmat-<shape>-sk<S>: the down GEMM split along K into S (only for T <= maxT: it is for few tiles with long K);
// -xh: x rows converted to f16 in grouped order by a pass of their own first (its time included), then staged;
// -xd: the same rows, A matrices loaded from them directly (no x staging).
const sgmat = (shape: SgmatShapeName, splitK?: number, x?: 'half' | 'direct') => ({
  name: `sgmat-${shape}${splitK ? `-sk${splitK}` : ''}${x === 'half' ? '-xh' : x === 'direct' ? '-xd' : ''}`,
  opts: { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatShape: shape, sgmatSplitK: splitK, sgmatXRows: x },
  shape,
  maxT: splitK ? 512 : undefined,
});
/** A benchmarked path: grouped-GEMM options or the GEMVs; maxT: only up to this T; packedOnly: only with packed weights; notF16: not with f16 weights. */
interface PathSpec {
  name: string;
  opts: GroupedGemmOptions;
  shape?: SgmatShapeName;
  maxT?: number;
  gemv?: boolean;
  packedOnly?: boolean;
  notF16?: boolean;
}
const ALL_PATHS: PathSpec[] = [
  { name: 'tiled32', opts: { tile: 'prefill' } },
  { name: 'gemv', opts: {}, gemv: true, maxT: 512 },
  { name: 'fast-f32', opts: { tile: 'fast', fast: 'f32' } },
  { name: 'fast-f16', opts: { tile: 'fast', fast: 'f16' } },
  { name: 'sgmat-default', opts: { tile: 'fast', fast: 'subgroup-matrix' } },
  { name: 'sgmat-default-narrow', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatWideLoads: false }, packedOnly: true },
  // packed weights staged one value at a time through f32 (the staging before the word-at-a-time decode): A/B of the decode
  { name: 'sgmat-default-vdec', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatValueDecode: true }, packedOnly: true },
  { name: 'sgmat-default-words', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatValueDecode: false }, packedOnly: true },
  // packed weights decoded to f16 first (a range of experts at a time), then the f16 GEMM (plan.ts's sgmatDequantExperts)
  { name: 'sgmat-dequant', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatDequant: true }, notF16: true },
  // the work in bands of row tiles (the band's workgroups that read one weight tile consecutive: weights from memory once per band)
  ...[2, 4, 8, 16].map((band) => ({ name: `sgmat-default-band${band}`, opts: { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatBand: band } })),
  // row skipping (16-row fragments past a tile's last row skip their multiplies: the partial last row tile of an
  // expert under uneven routing), alone, with the row tiles of one weight tile consecutive, and before the decoding pass's GEMM
  { name: 'sgmat-rowskip', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatRowSkip: true } },
  ...[2, 4].map((band) => ({ name: `sgmat-rowskip-band${band}`, opts: { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatRowSkip: true, sgmatBand: band } })),
  { name: 'sgmat-dequant-rowskip', opts: { tile: 'fast', fast: 'subgroup-matrix', sgmatDequant: true, sgmatRowSkip: true }, notF16: true },
  ...(Object.keys(SGMAT_SHAPES) as SgmatShapeName[]).map((shape) => sgmat(shape)),
  ...(['m16n128k64', 'm16n256k32', 'm64n128k64'] as SgmatShapeName[]).map((shape) => ({ ...sgmat(shape), name: `sgmat-${shape}-narrow`, opts: { ...sgmat(shape).opts, sgmatWideLoads: false }, packedOnly: true })),
  ...(['m64n128k32s', 'm32n128k64', 'm64n128k64'] as SgmatShapeName[]).flatMap((shape) => [sgmat(shape, 2), sgmat(shape, 4)]),
  ...(['m64n128k32s', 'm64n128k64', 'm128n128k32', 'm128n128k32w2x2', 'm32n128k64', 'm16n128k64', 'm16n256k32', 'm128n256k32', 'm128n128k64', 'm128n128k32db', 'm128n256k32v', 'm128n128k32v', 'm128n256k32va', 'm128n192k64va', 'm128n192k32va', 'm128n256k32v16', 'm128n128k32v16', 'm144n256k32v', 'm144n192k32v', 'm144n192k32va', 'm144n128k32v', 'm144n192k64vax', 'm128n128k32vax', 'm160n256k32v'] as SgmatShapeName[]).flatMap((shape) => [sgmat(shape, undefined, 'half'), sgmat(shape, undefined, 'direct')]),
  sgmat('m32n128k64', 4, 'half'),
  sgmat('m32n128k64', 4, 'direct'),
  // session 22: the down GEMM split along K on the tiles plan.ts takes at 64-160 rows per expert (Mixtral T = 512: 128
  // tiles of K = 14336 on the 144-row tile for 132 SMs; T = 128: 256 on the 64-row tile), x rows as the planner gives them
  ...(['m144n256k32v', 'm128n192k64va', 'm128n256k32v'] as SgmatShapeName[]).flatMap((shape) => [2, 3, 4].map((sk) => sgmat(shape, sk, 'half'))),
  ...[2, 3, 4].map((sk) => sgmat('m64n128k32v', sk)),
  // session 25: 128-wide K slices (32 KB of weights per slice) at few rows per expert, with the down GEMM split as the
  // planner splits its tiles there (the xd shapes load x directly whatever the path asks)
  sgmat('m32n128k128va', undefined, 'half'),
  ...(['m32n128k128va', 'm64n128k128vaxd', 'm128n128k128vaxd'] as SgmatShapeName[]).flatMap((shape) => [2, 3].map((sk) => sgmat(shape, sk, shape === 'm32n128k128va' ? 'half' : undefined))),
  // and two K slices in flight in registers (pf2): the planner's 128 x 192 k64 tile and a 32-row one, over f16 x rows, split as the planner splits
  // (and the 32-row one unsplit, -sk1: the planner's tile for 8-48 rows per expert since session 26)
  ...(['m128n192k64vap2', 'm32n128k64vap2'] as SgmatShapeName[]).flatMap((shape) => [sgmat(shape, undefined, 'half'), ...[2, 3].map((sk) => sgmat(shape, sk, 'half'))]),
  sgmat('m32n128k64vap2', 1, 'half'),
];
// Modifiers of an exact path ('=name+words+narrow'): staging and dispatch choices on any path (A/B on one tile); a
// packed-only one chooses how packed weights are staged, so the path then skips 16-bit weights.
const MODIFIERS: Record<string, { opts: GroupedGemmOptions; packedOnly: boolean }> = {
  narrow: { opts: { sgmatWideLoads: false }, packedOnly: true },
  wide: { opts: { sgmatWideLoads: true }, packedOnly: true },
  vdec: { opts: { sgmatValueDecode: true }, packedOnly: true },
  words: { opts: { sgmatValueDecode: false }, packedOnly: true },
  rowskip: { opts: { sgmatRowSkip: true }, packedOnly: false },
  // the rows past each expert's last full row tile, where they fit, on a second dispatch of a smaller tile
  // (FastGemmPlan.tail: Mixtral T = 512's 145-row expert on the 144-row tile): the pf2 32-row tile, a plain 16-row one
  tail32: { opts: { sgmatTail: 'm32n128k64vap2' }, packedOnly: false },
  tail16: { opts: { sgmatTail: 'm16n128k64' }, packedOnly: false },
  // none (the planner gives split-K down GEMMs the 32-row tail since session 35: the A/B against it)
  notail: { opts: { sgmatTail: false }, packedOnly: false },
  // scale indexes by divisions where the blocks are powers of two (the staging before session 24's shifts)
  divide: { opts: { blockShifts: false }, packedOnly: true },
};
function modified(filter: string): PathSpec {
  const [base, ...mods] = filter.slice(1).split('+');
  const p = ALL_PATHS.find((q) => q.name === base);
  if (!p) throw new Error(`path ${base}: no such path`);
  for (const m of mods) if (!Object.hasOwn(MODIFIERS, m)) throw new Error(`path modifier ${m}: ${Object.keys(MODIFIERS).join(' | ')}`);
  return { ...p, name: filter.slice(1), opts: Object.assign({ ...p.opts }, ...mods.map((m) => MODIFIERS[m].opts)), packedOnly: p.packedOnly || mods.some((m) => MODIFIERS[m].packedOnly) };
}
// a filter '=name' takes that path only ('=name+mod...' with modifiers), any other filter every path whose name contains it
const PATHS = [
  ...ALL_PATHS.filter((p, i) => i === 0 || !pathFilter || pathFilter.some((f) => (f.startsWith('=') ? p.name === f.slice(1) : p.name.includes(f)))),
  ...(pathFilter ?? []).filter((f) => f.startsWith('=') && f.includes('+')).map(modified),
];
for (const p of PATHS) if (p.shape) console.log(`shape ${p.shape}`, JSON.stringify(SGMAT_SHAPES[p.shape]), JSON.stringify(sgmatLayout(SGMAT_SHAPES[p.shape])));

// Models (bf16 experts): [name, H, I, E, k]; Ts per model.
const MODELS: [string, number, number, number, number][] = [
  ['mixtral-8x7b', 4096, 14336, 8, 2],
  ['qwen3-30b-a3b', 2048, 768, 128, 8],
  ['deepseek-v3-e32', 7168, 2048, 32, 8],
  // Only when named in the model filter: the full model (256 experts; ~4 grouped rows per expert at T = 128; 22.5 GB in bf16).
  ['deepseek-v3-full', 7168, 2048, 256, 8],
  ['gpt-oss-20b', 2880, 2880, 32, 4],
  // Only when named in the model filter: a small shape to check this script on any adapter (lavapipe).
  ['smoke', 256, 384, 4, 2],
];
const TS = tFilter ?? [128, 512, 4096];
// Bytes of each output compared against the reference path.
const CHECK_BYTES = 32 << 20;
// The slow reference paths at T = 4096 cost seconds per model; they run with fewer timed iterations there.
const SLOW = new Set(['tiled32', 'fast-f32', 'fast-f16']);

const results: Record<string, unknown>[] = [];
const t0 = performance.now();
// Time budget (seconds; env PREFILL_BENCH_MAX_S, default 210): no new model / T group starts after it, the ranking still prints.
const maxS = Number(process.env.PREFILL_BENCH_MAX_S ?? 210);
// ms of FMA burn before each timed path (env PREFILL_BENCH_BURN_MS, default 40)
// PREFILL_BENCH_ROUTING=random: each token's k experts drawn uniformly at random (seeded), as a router over random weights does;
// PREFILL_BENCH_ROUTING=shift:N: the even spread, then N rows moved from the last expert to the first (where the token
// has not chosen the first already): one expert N rows past the mean, e.g. Mixtral T = 512 with shift:17 has one
// expert of 145 rows, one row past the 144-row tile, as session 23's bench layer had (its partial tile's cost)
const RANDOM_ROUTING = process.env.PREFILL_BENCH_ROUTING === 'random';
const SHIFT_ROWS = Number(/^shift:(\d+)$/.exec(process.env.PREFILL_BENCH_ROUTING ?? '')?.[1] ?? 0);
if (RANDOM_ROUTING) console.log('routing: random (uneven rows per expert)');
if (SHIFT_ROWS) console.log(`routing: even, ${SHIFT_ROWS} rows moved from the last expert to the first`);
const BURN_EACH_MS = Number(process.env.PREFILL_BENCH_BURN_MS ?? 40);
// PREFILL_BENCH_ROUNDS: times each path is timed, the path list run that many times in turn (default 1); the tables
// give the median over the rounds (median of each op's medians)
const ROUNDS = Math.max(1, Number(process.env.PREFILL_BENCH_ROUNDS ?? 1));
let outOfTime = false;
const ONLY_NAMED = new Set(['smoke', 'deepseek-v3-full']);
const groupsOf = MODELS.filter((m) => (modelFilter ? modelFilter.some((f) => m[0].includes(f)) : !ONLY_NAMED.has(m[0]))).flatMap((m) => FORMATS.map((fmt) => [...m, fmt] as const));
for (const [model, H, I, E, k, fmt] of groupsOf) {
  if ((performance.now() - t0) / 1000 > maxS) {
    console.log(`time budget of ${maxS} s spent: ${model} skipped`);
    continue;
  }
  const tUp = performance.now();
  const wgu = await uploadStack(fmt, E, 2 * I, H, 'concat', 1);
  const wdn = await uploadStack(fmt, E, H, I, 'rows', 2);
  console.log(`${model} ${fmt}: experts uploaded in ${((performance.now() - tUp) / 1000).toFixed(1)} s`);
  for (const T of TS) {
    if ((performance.now() - t0) / 1000 > maxS) {
      if (!outOfTime) console.log(`time budget of ${maxS} s spent: ${model} ${fmt} T=${T} and later groups skipped`);
      outOfTime = true;
      continue;
    }
    // Host-built grouping: k distinct experts per token, spread evenly, or (PREFILL_BENCH_ROUTING=random) drawn
    // uniformly like a router over random weights (uneven rows per expert: the layer's partial row tiles).
    const idx = new Uint32Array(T * k);
    const pick = lcg(T * 31 + E);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < k; j++) {
        if (!RANDOM_ROUTING) {
          idx[t * k + j] = (t * 7 + j * 13) % E;
          continue;
        }
        let e: number;
        do e = pick() % E;
        while (idx.subarray(t * k, t * k + j).includes(e));
        idx[t * k + j] = e;
      }
    }
    for (let t = 0, moved = 0; moved < SHIFT_ROWS && t < T; t++) {
      const row = idx.subarray(t * k, t * k + k);
      const j = row.indexOf(E - 1);
      if (j >= 0 && !row.includes(0)) { row[j] = 0; moved++; }
    }
    const counts = new Uint32Array(E);
    for (const e of idx) counts[e]++;
    if (RANDOM_ROUTING || SHIFT_ROWS) console.log(`${model} T=${T} rows per expert: min ${Math.min(...counts)} max ${Math.max(...counts)} (mean ${(T * k) / E})`);
    const offsets = new Uint32Array(E + 1);
    for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
    const cur = offsets.slice(0, E);
    const order = new Uint32Array(T * k);
    const position = new Uint32Array(T * k);
    for (let p = 0; p < T * k; p++) {
      order[cur[idx[p]]] = p;
      position[p] = cur[idx[p]]++;
    }
    const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));
    const g: GroupingGpu = { T, k, E, counts: up(counts), offsets: up(offsets), order: up(order), position: up(position), destroy() {} };
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H).map((_, i) => Math.sin(i * 0.37))));
    // The path's two ops: the grouped GEMMs (path.opts) or the decode GEMVs.
    const gateUp = (rec: Recorder, p: PathSpec) =>
      p.gemv ? gemvGateUpGpu(ctx, rec, x, g, wgu, { kind: 'silu', layout: 'concat' }) : groupedGateUpGpu(ctx, rec, x, g, wgu, undefined, { kind: 'silu', layout: 'concat' }, p.opts);
    const down = (rec: Recorder, h: GpuTensor, p: PathSpec) => (p.gemv ? gemvDownGpu(ctx, rec, h, g, wdn) : groupedDownGpu(ctx, rec, h, g, wdn, undefined, p.opts));
    const flopsGU = 2 * T * k * 2 * I * H;
    const flopsDn = 2 * T * k * H * I;
    let refH: Float32Array | undefined;
    let refY: Float32Array | undefined;
    // Each path's timings over the rounds (PREFILL_BENCH_ROUNDS: the path list timed that many times in turn, so a
    // clock or memory state that favours one stretch of the run shows as spread between rounds, not between paths).
    const timed = new Map<PathSpec, { mg: number[]; md: number[]; errH: number; errY: number }>();
    for (let round = 0; round < ROUNDS; round++)
    for (const path of PATHS) {
      if (round > 0 && !timed.has(path)) continue;
      if (path.name.startsWith('sgmat') && !sgmatSupported(ctx, path.shape)) {
        console.log(`${model} ${fmt} T=${T} ${path.name}: not supported here (falls back); skipped`);
        continue;
      }
      if (path.name === 'fast-f16' && !ctx.features.shaderF16) continue;
      if (path.maxT !== undefined && T > path.maxT) continue;
      if (path.packedOnly && (fmt === 'bf16' || fmt === 'f16')) continue;
      if (path.notF16 && fmt === 'f16') continue;
      if (path.gemv && !(gemvSupports(wgu) && gemvSupports(wdn))) continue;
      try {
        const prior = timed.get(path);
        // One checked run (first round): compile errors / validation errors show here; outputs for the error check.
        const { hh, yy } = prior ? { hh: undefined, yy: undefined } : await ctx.checked(path.name, async () => {
          const rec = new Recorder(ctx);
          const h = gateUp(rec, path);
          const y = down(rec, h, path);
          rec.submit();
          // The first CHECK_BYTES of each output (grouped rows of the first experts; whole outputs cost seconds per path at T = 4096).
          const head = async (t: GpuTensor) => new Float32Array((await readBuffer(ctx, t.buffer, Math.min(t.byteLength, CHECK_BYTES))).buffer);
          const hh = await head(h);
          const yy = await head(y);
          h.destroy();
          y.destroy();
          return { hh, yy };
        });
        const errH = prior ? prior.errH : refH ? relErr(hh!, refH) : 0;
        const errY = prior ? prior.errY : refY ? relErr(yy!, refY) : 0;
        if (!refH) {
          refH = hh;
          refY = yy;
        }
        // T = 4096: fewer timed iterations (each is tens of ms; the run stays within a few minutes with ~40 paths).
        const n = T >= 4096 ? Math.min(iters, SLOW.has(path.name) ? 3 : 6) : iters;
        // the clocks drop while the host uploads and checks: each path is timed after a burn (else later paths read slower)
        if (BURN_EACH_MS > 0) await burnGpu(ctx, BURN_EACH_MS);
        // each iteration's gate_up output feeds its down GEMM (recorded right after it)
        let h!: GpuTensor;
        const [mg, md] = await passTimesMs(ctx, { iters: n, warmup: 2 }, [
          (r) => {
            const mine = (h = gateUp(r, path));
            return () => mine.destroy();
          },
          (r) => {
            const y = down(r, h, path);
            return () => y.destroy();
          },
        ]);
        const wrong = errH > 1e-2 || errY > 1e-2 || !Number.isFinite(errH) || !Number.isFinite(errY);
        const t = prior ?? { mg: [], md: [], errH, errY };
        t.mg.push(mg);
        t.md.push(md);
        timed.set(path, t);
        if (round < ROUNDS - 1) {
          console.log(`${model} ${fmt} T=${T} ${path.name.padEnd(24)} round ${round + 1}: gate_up ${mg.toFixed(3)} ms  down ${md.toFixed(3)} ms  total ${(mg + md).toFixed(3)} ms`);
          continue;
        }
        if (ROUNDS > 1) console.log(`${model} ${fmt} T=${T} ${path.name.padEnd(24)} rounds (total ms): ${t.mg.map((g, i) => (g + t.md[i]).toFixed(3)).join(' ')}`);
        const r = {
          model, fmt, T, path: path.name,
          ...(ROUNDS > 1 ? { roundsMs: t.mg.map((g, i) => g + t.md[i]) } : {}),
          gateUpMs: median(t.mg), downMs: median(t.md), totalMs: median(t.mg) + median(t.md),
          gateUpTflops: flopsGU / (median(t.mg) * 1e9), downTflops: flopsDn / (median(t.md) * 1e9), tflops: (flopsGU + flopsDn) / ((median(t.mg) + median(t.md)) * 1e9),
          relErrVsTiled: { h: errH, y: errY },
          wrong,
        };
        results.push(r);
        console.log(`${model} ${fmt} T=${T} ${path.name.padEnd(24)} gate_up ${r.gateUpMs.toFixed(3)} ms (${r.gateUpTflops.toFixed(1)} TF/s)  down ${r.downMs.toFixed(3)} ms (${r.downTflops.toFixed(1)} TF/s)  total ${r.totalMs.toFixed(3)} ms = ${r.tflops.toFixed(1)} TFLOP/s  relErr vs tiled h ${errH.toExponential(2)} y ${errY.toExponential(2)}${wrong ? '  WRONG' : ''}`);
      } catch (e) {
        console.log(`${model} ${fmt} T=${T} ${path.name}: FAILED ${(e as Error).message}`);
        results.push({ model, fmt, T, path: path.name, error: (e as Error).message });
      }
    }
    x.destroy();
    for (const t of [g.counts, g.offsets, g.order, g.position]) t.destroy();
  }
  destroyExpertWeights(wgu);
  destroyExpertWeights(wdn);
}
// Ranking per model and T (fastest first; WRONG = relErr > 1e-2 against the tiled path).
console.log(`\n== ranking (${((performance.now() - t0) / 1000).toFixed(0)} s) ==`);
const groups = new Map<string, Record<string, unknown>[]>();
for (const r of results) {
  if (r.error) continue;
  const key = `${r.model} ${r.fmt} T=${r.T}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
for (const [key, rs] of groups) {
  const sorted = [...rs].sort((a, b) => (a.totalMs as number) - (b.totalMs as number));
  // Per op too (plan.ts may pick a shape per op): the three fastest correct paths of gate_up and of down.
  const ok = rs.filter((r) => !r.wrong);
  for (const op of ['gateUpMs', 'downMs'] as const) {
    const best = [...ok].sort((a, b) => (a[op] as number) - (b[op] as number)).slice(0, 3);
    console.log(`${key} best ${op === 'gateUpMs' ? 'gate_up' : 'down'}: ${best.map((r) => `${r.path} ${(r[op] as number).toFixed(3)}ms`).join(' | ')}`);
  }
  console.log(`${key}: ${sorted.map((r) => `${r.path} ${(r.totalMs as number).toFixed(2)}ms/${(r.tflops as number).toFixed(0)}TF (gu ${(r.gateUpMs as number).toFixed(2)} dn ${(r.downMs as number).toFixed(2)})${r.wrong ? ' WRONG' : ''}`).join(' | ')}`);
}
// Formats side by side: per model and T, the best correct path of each format and its time over bf16's; at T <= 512 the
// GEMVs against the best subgroup-matrix shape (the M = 16 tiles are for the GEMVs' few rows per expert).
const best = (rs: Record<string, unknown>[]) => [...rs].filter((r) => !r.error && !r.wrong).sort((a, b) => (a.totalMs as number) - (b.totalMs as number))[0];
const byModelT = new Map<string, Map<string, Record<string, unknown>[]>>();
for (const r of results) {
  const key = `${r.model} T=${r.T}`;
  const m = byModelT.get(key) ?? new Map<string, Record<string, unknown>[]>();
  m.set(r.fmt as string, [...(m.get(r.fmt as string) ?? []), r]);
  byModelT.set(key, m);
}
console.log('\n== formats (best correct path each; x = time over bf16) ==');
for (const [key, m] of byModelT) {
  const bf = m.get('bf16') ? best(m.get('bf16')!) : undefined;
  const cells = [...m].map(([f, rs]) => {
    const b = best(rs);
    if (!b) return `${f}: none correct`;
    const gemv = rs.find((r) => r.path === 'gemv' && !r.error && !r.wrong);
    const sg = best(rs.filter((r) => String(r.path).startsWith('sgmat')));
    const vs = gemv && sg ? ` [gemv ${(gemv.totalMs as number).toFixed(2)} vs ${sg.path} ${(sg.totalMs as number).toFixed(2)}]` : '';
    return `${f}: ${b.path} ${(b.totalMs as number).toFixed(2)} ms${bf && f !== 'bf16' ? ` (x${((b.totalMs as number) / (bf.totalMs as number)).toFixed(2)})` : ''}${vs}`;
  });
  console.log(`${key}: ${cells.join(' | ')}`);
}
console.log(JSON.stringify({ adapter: ctx.adapterName, results }));
process.exit(0);
