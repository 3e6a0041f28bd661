/**
 * Decode-path expert GEMMs: few rows per expert (token generation). The
 * weights of each expert that got tokens are read exactly once, at full
 * width (16-byte loads of 8 bf16/f16 values), by a grid of min(E, T*k)
 * expert slots over the active-expert list built on the GPU (no host round
 * trip); slots past the active experts do no work. A chunked stack takes
 * one dispatch per chunk, or, with `chunksPerDispatch`, several chunks per
 * dispatch (moe-gemv-chunks.ts) as the device's storage bindings allow.
 * Same contract as groupedGateUpGpu / groupedDownGpu (grouped row order), so
 * the layer picks either by rows per expert.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, uniformFields, type Recorder } from '../runtime/kernel.js';
import { LimitError } from '../runtime/errors.js';
import type { ExpertActivation, ExpertStackGpu, ExpertWeightsGpu, GroupingGpu } from './moe-types.js';
import { expertChunkList, expertDims } from './expert-weights.js';
import { GEMV_PACKED_KERNELS, KERNEL_CROSSOVERS, gemvChunksPerDispatch, gemvDenseKernelFor, gemvPackedKernelFor, gemvRowsPerPass, type GemvPackedKernel, type PackedCodeFormat } from './plan.js';
import { gemvKernel } from './moe-gemv-kernel.js';
import { rowsWorkgroupBytes } from './moe-gemv-rows.js';
import { chunkBinding, chunkField, planGemvChunkGroups } from './moe-gemv-chunks.js';
import { GEMV_GROUPS as GROUPS, NO_EXPERT, ROWS_CODECS, wideChunkCols, type DenseDtype, type GemvVariant } from './moe-gemv-snippets.js';

export { GEMV_GROUPS, NO_EXPERT, type GemvVariant } from './moe-gemv-snippets.js';
export { gemvKernel } from './moe-gemv-kernel.js';

/**
 * Builds the active-expert list (experts with rows, in increasing order, then
 * NO_EXPERT up to E) with a workgroup prefix scan, and indirect dispatch args
 * over the active experts: Args[0..2] = (gate_up blocks, nActive, 1),
 * Args[3..5] = (down blocks, nActive, 1). The GEMVs dispatch a direct grid
 * of min(E, T*k) slots instead: Dawn validates every indirect dispatch with
 * an extra pass and buffers of its own (~90 us of host time each on lavapipe).
 */
export const activeExpertsKernel = defineKernel<{ wg: number }>(
  'moe_active_experts',
  ({ wg }) => /* wgsl */ `
var<workgroup> sc: array<u32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  var base = 0u;
  for (var e0 = 0u; e0 < u.E; e0 += ${wg}u) {
    let e = e0 + t;
    var flag = 0u;
    if (e < u.E) { flag = select(0u, 1u, Counts[e] > 0u); }
    sc[t] = flag;
    workgroupBarrier();
    for (var s = 1u; s < ${wg}u; s <<= 1u) {
      var v = 0u;
      if (t >= s) { v = sc[t - s]; }
      workgroupBarrier();
      sc[t] = sc[t] + v;
      workgroupBarrier();
    }
    if (flag == 1u) { Active[base + sc[t] - 1u] = e; }
    base += sc[${wg - 1}u];
    workgroupBarrier();
  }
  for (var i = base + t; i < u.E; i += ${wg}u) { Active[i] = ${NO_EXPERT}u; }
  if (t == 0u) { Args[0] = u.nbx0; Args[1] = base; Args[2] = 1u; Args[3] = u.nbx1; Args[4] = base; Args[5] = 1u; }
}
`,
  {
    signature: () => ({
      bindings: [
        { name: 'Counts', type: 'array<u32>', access: 'read' },
        { name: 'Active', type: 'array<u32>', access: 'read_write' },
        { name: 'Args', type: 'array<u32>', access: 'read_write' },
      ],
      uniforms: uniformFields('u32', 'E', 'nbx0', 'nbx1'),
    }),
  },
);

/**
 * The active experts of a grouping and the indirect args of the two decode
 * GEMVs, computed once per forward on the GPU.
 */
export interface ActiveExperts {
  active: GPUBuffer;
  args: GPUBuffer;
}

/** Records the active-expert compaction (buffers owned by `rec`). @example `const a = activeExpertsGpu(ctx, rec, g, I, H)` */
export function activeExpertsGpu(ctx: GpuContext, rec: Recorder, g: GroupingGpu, nGateUp: number, nDown: number): ActiveExperts {
  const active = rec.temp(4 * Math.max(g.E, 1), 'active');
  const args = rec.temp(32, 'indirect');
  rec.dispatch({
    kernel: activeExpertsKernel,
    variant: { wg: 256 },
    bind: { Counts: g.counts.buffer, Active: active, Args: args },
    params: { E: g.E, nbx0: Math.ceil(nGateUp / GROUPS), nbx1: Math.ceil(nDown / GROUPS) },
    workgroups: [1],
  });
  return { active, args };
}

const singleExpert = new WeakMap<GPUDevice, GPUBuffer>();

/** The active-expert list of a one-expert grouping ([0]), one small buffer per device, made on first use. */
function singleExpertList(ctx: GpuContext): GPUBuffer {
  let b = singleExpert.get(ctx.device);
  if (!b) {
    b = ctx.device.createBuffer({ label: 'active.single', size: 16, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Uint32Array(b.getMappedRange()).fill(0);
    b.unmap();
    singleExpert.set(ctx.device, b);
  }
  return b;
}

/** Options of the decode GEMVs. */
export interface GemvOptions {
  pool?: BufferPool;
  /**
   * Which kernel reads packed weights (default: the planner's gemvPackedKernelFor(rows per pass)); 'wide' and 'rowsN'
   * fall back to 'table' where the shapes do not allow 16-byte chunks (see {@link gemvPackedPath}). For 16-bit dense
   * weights a 'rowsN' kernel takes the row-blocked path (default: the planner's gemvDenseKernelFor), anything else the
   * dense kernel.
   */
  packedKernel?: GemvPackedKernel;
  /**
   * A chunked stack: most chunks bound by one dispatch (default: the planner's gemvChunksPerDispatch, 4 on a GPU and 1 on
   * a software adapter; at most 16, and as many as the device's maxStorageBuffersPerShaderStage allows); 1: one dispatch per chunk.
   */
  chunksPerDispatch?: number;
  /**
   * A staged-x kernel ('rowsNs'): whether each lane's code and scale loads of a slice come before the slice's x copy
   * (default: the planner's KERNEL_CROSSOVERS.stagedXLoadsFirst for the adapter's kind); ignored by other kernels.
   */
  stagedXLoadsFirst?: boolean;
  /**
   * A row-blocked kernel with 16-byte chunks per lane ('rowsN', 'rowsNkS', 'rowsNs'): whether each lane loads its next
   * step's codes and scales before the current step decodes (default: the planner's KERNEL_CROSSOVERS.gemvPrefetchCodes
   * for the adapter's kind); ignored by other kernels. Same sums either way.
   */
  prefetchCodes?: boolean;
  /** Reuse the active-expert list of this forward (else computed here). */
  active?: ActiveExperts;
  bias?: GpuTensor;
  rowScale?: GpuTensor;
}

/** What the GEMV binds for one weight container. */
export interface GemvWeights {
  E: number;
  rows: number;
  cols: number;
  codes: GpuTensor;
  scales?: GpuTensor;
  /** int_block zero points (uint8, indexed as the scales). */
  zeros?: GpuTensor;
  wfmt: GemvVariant['wdtype'];
  sdtype: GemvVariant['sdtype'];
  /** s0..s3 uniforms of the scale lookup. */
  su: [number, number, number, number];
}

/**
 * Whether the decode GEMV takes these weights: dense f32/bf16/f16 (any
 * shape), or packed fp8_block / int_block / mxfp4 with cols % 8 == 0 and
 * scale blocks that never split an aligned group of 8 columns.
 *
 * @example `if (gemvSupports(w.gateUp) && gemvSupports(w.down)) useGemv()`
 */
export function gemvSupports(w: ExpertStackGpu): boolean {
  try {
    for (const c of stackChunks(w)) gemvWeights('weights', c);
    return true;
  } catch {
    return false;
  }
}

/** The plain containers of a stack (itself, or its chunks' weights). */
function stackChunks(w: ExpertStackGpu): ExpertWeightsGpu[] {
  return w.kind === 'chunked' ? w.chunks.map((c) => c.w) : [w];
}

export function gemvWeights(what: string, w: ExpertWeightsGpu): GemvWeights {
  const { E, rows, cols } = expertDims(w, `${what} weights`);
  if (w.kind === 'dense') {
    return { E, rows, cols, codes: w.w, wfmt: w.w.dtype as DenseDtype, sdtype: 'none', su: [0, 0, 0, 0] };
  }
  if (cols % 8 !== 0) throw new ShapeError(`${what} weights (${w.kind}) cols`, 'a multiple of 8 for the decode GEMV', `${cols}`);
  if (w.kind === 'fp8_block') {
    const [bh, bw] = w.block;
    if (bw % 8 !== 0) throw new ValueError(`${what} fp8 block cols`, 'a multiple of 8 for the decode GEMV', bw);
    const wfmt = w.q.dtype === 'float8_e5m2' ? 'fp8_e5m2' : 'fp8_e4m3';
    return { E, rows, cols, codes: w.q, scales: w.scaleInv, wfmt, sdtype: 'float32', su: [Math.ceil(rows / bh), Math.ceil(cols / bw), bh, bw] };
  }
  if (w.kind === 'int_block') {
    if (w.blockSize % 8 !== 0) throw new ValueError(`${what} int block size`, 'a multiple of 8 for the decode GEMV', w.blockSize);
    const sd = w.scales.dtype;
    if (sd !== 'float32' && sd !== 'float16') throw new DTypeError(`${what} int scales`, ['float32', 'float16'], sd);
    return { E, rows, cols, codes: w.q, scales: w.scales, zeros: w.zeros, wfmt: w.bits === 4 ? 'int4' : 'int8', sdtype: sd, su: [Math.ceil(cols / w.blockSize), w.blockSize, 0, 0] };
  }
  return { E, rows, cols, codes: w.blocks, scales: w.scales, wfmt: 'mxfp4', sdtype: 'uint8', su: [cols / 32, 0, 0, 0] };
}

/**
 * The load path the decode GEMV takes for these weights under `kernel` (the
 * GemvOptions.packedKernel value): 'dense' for dense weights; 'wide' (int4,
 * int8, mxfp4, fp8 e4m3) and 'rows' (those and fp8 e5m2) where the columns and
 * the scale blocks are multiples of the 16-byte chunk (32 int4/mxfp4 or 16
 * int8/fp8 columns), else 'table'.
 * @example `gemvPackedPath(int4Weights, 'rows2') // 'rows' when cols and blocks are multiples of 32`
 */
export function gemvPackedPath(w: ExpertStackGpu, kernel: GemvPackedKernel = gemvPackedKernelFor(1)): 'dense' | 'table' | 'wide' | 'rows' {
  return packedPath(gemvWeights('weights', stackChunks(w)[0]), kernel);
}

/** The row blocking of a kernel name: outputs per group, groups per output block, units interleaved, x staged, x in registers. */
export interface GemvBlocking {
  ro: number;
  ks: number;
  il: boolean;
  xs: boolean;
  xr: boolean;
}

/**
 * The row blocking of a packed kernel name: outputs per 32-lane group, groups per output block, whether units
 * are interleaved over the lanes and whether x is staged in workgroup memory ('rows2k4' -> 2, 4, false, false;
 * 'rows4i' -> 4, 1, true, false; 'rows2s' -> 2, 1, false, true; 'rows8k4x' -> 8, 4, x in registers; 'table' and
 * 'wide': 1, 1, false, false).
 */
export function kernelBlocking(kernel: GemvPackedKernel | 'dense'): GemvBlocking {
  const m = /^rows(\d)(?:k(\d))?(i|s|x)?$/.exec(kernel);
  return m ? { ro: Number(m[1]), ks: Number(m[2] ?? 1), il: m[3] === 'i', xs: m[3] === 's', xr: m[3] === 'x' } : { ro: 1, ks: 1, il: false, xs: false, xr: false };
}

/**
 * The packed kernel name a GEMV variant was built from (kernelBlocking's inverse): 'rowsN[kS][i|s|x]' from its
 * row-blocked fields, else 'wide' or 'table' (on 16-bit weights the dense kernel, as GemvOptions.packedKernel names it).
 * @example `gemvKernelOfVariant({ ro: 8, ks: 4, xr: true }) // 'rows8k4x'`
 */
export function gemvKernelOfVariant(v: Partial<Pick<GemvVariant, 'ro' | 'ks' | 'il' | 'xs' | 'xr' | 'wide'>>): string {
  if (v.ro === undefined) return v.wide ? 'wide' : 'table';
  return `rows${v.ro}${v.ks ? `k${v.ks}` : ''}${v.il ? 'i' : v.xs ? 's' : v.xr ? 'x' : ''}`;
}

/** The row-blocked variant fields of a kernel's blocking (ks, il, xs and xr only where they differ from 1 and false, so older variant keys stay). */
export function rowsVariantFields(b: GemvBlocking): Pick<GemvVariant, 'ro' | 'ks' | 'il' | 'xs' | 'xr'> {
  return { ro: b.ro, ...(b.ks > 1 ? { ks: b.ks } : {}), ...(b.il ? { il: true } : {}), ...(b.xs ? { xs: true } : {}), ...(b.xr ? { xr: true } : {}) };
}

/**
 * The row-blocked path's 16-byte chunks per scale block of weights `gw` (dense weights, without scales: 1), whether
 * that is a power of two, and its log2 then (the cb, cbPow2 / cbs of the variant and uniforms).
 */
export function rowsScaleBlocks(gw: GemvWeights): { cb: number; cbPow2: boolean; cbs: number } {
  const cb = gw.sdtype === 'none' ? 1 : blockCols(gw) / wideChunkCols(gw.wfmt);
  const cbPow2 = (cb & (cb - 1)) === 0;
  return { cb, cbPow2, cbs: cbPow2 ? Math.log2(cb) : 0 };
}

/** Checks a GEMV's bias (`what` names it): `experts` x `rows` values of float32, bfloat16 or float16. */
export function checkGemvBias(what: string, bias: GpuTensor, experts: number, rows: number): void {
  if (bias.size !== experts * rows) throw new ShapeError(what, [experts, rows], bias.shape);
  if (bias.dtype !== 'float32' && bias.dtype !== 'bfloat16' && bias.dtype !== 'float16') throw new DTypeError(what, ['float32', 'bfloat16', 'float16'], bias.dtype);
}

/** Scale block width in columns (fp8: the block's columns; int: the block size; mxfp4: 32). */
export function blockCols(gw: GemvWeights): number {
  return gw.wfmt === 'fp8_e4m3' || gw.wfmt === 'fp8_e5m2' ? gw.su[3] : gw.wfmt === 'mxfp4' ? 32 : gw.su[1];
}

export function packedPath(gw: GemvWeights, kernel: GemvPackedKernel | 'dense'): 'dense' | 'table' | 'wide' | 'rows' {
  // dense weights: the dense kernel, or a row-blocked one ('rowsN') for 16-bit weights in whole 16-byte chunks
  if (gw.sdtype === 'none') return kernel.startsWith('rows') && ROWS_CODECS[gw.wfmt] && gw.cols % wideChunkCols(gw.wfmt) === 0 ? 'rows' : 'dense';
  if (kernel === 'dense') throw new ValueError('decode GEMV kernel of packed weights', GEMV_PACKED_KERNELS.join(' | '), kernel);
  if (kernel === 'table') return 'table';
  const rows = kernel !== 'wide';
  if (rows ? !ROWS_CODECS[gw.wfmt] : gw.wfmt === 'fp8_e5m2') return 'table';
  const cw = wideChunkCols(gw.wfmt);
  return gw.cols % cw === 0 && blockCols(gw) % cw === 0 ? (rows ? 'rows' : 'wide') : 'table';
}

/**
 * The planner's packed kernel for a call: by rows per pass, and by the default kernel's grid and the row length (split-K); `software`: the adapter's kind;
 * `mode`: which GEMV (a down GEMV may take a kernel of its own, GemvFormatKernels.longRows.down).
 * Asks gemvPackedKernelFor twice: first for the default kernel without the call (its blocking gives the grid the split-K
 * rule weighs), then with that grid; and once more, without the long-row kernels, where the one it chose needs more
 * workgroup memory than the device has (`workgroupBytes` 0: never one).
 */
export function plannedKernel(
  mr: number,
  slots: number,
  gw: GemvWeights,
  nout: number,
  device: { software: boolean; workgroupBytes: number },
  mode: 'gate_up' | 'down',
): GemvPackedKernel {
  const format = gw.sdtype === 'none' ? undefined : (gw.wfmt as PackedCodeFormat);
  const base = gemvPackedKernelFor(mr, { format });
  const { ro, ks } = packedPath(gw, base) === 'rows' ? kernelBlocking(base) : { ro: 1, ks: 1 };
  const ctx = { call: { workgroups: slots * Math.ceil(nout / ((GROUPS / ks) * ro)), cols: gw.cols }, softwareAdapter: device.software, format, down: mode === 'down' };
  const chosen = gemvPackedKernelFor(mr, ctx);
  // a staged-x or x-in-registers kernel only where the device's workgroup memory holds its x slice or second reduction level
  const b = kernelBlocking(chosen);
  if (!(b.xs || b.xr) || rowsWorkgroupBytes({ wdtype: gw.wfmt, mr, xs: b.xs, xr: b.xr }) <= device.workgroupBytes) return chosen;
  return gemvPackedKernelFor(mr, { ...ctx, longRowsFit: false });
}

/** One dispatch of a GEMV: a chunk of the stack (the whole stack when unchunked) with its bias. */
interface GemvChunk {
  place: { e0: number; experts: number; o0: number };
  gw: GemvWeights;
  nout: number;
  bias: GpuTensor | undefined;
}

function gemv(
  ctx: GpuContext,
  rec: Recorder,
  x: GpuTensor,
  g: GroupingGpu,
  w: ExpertStackGpu,
  mode: 'gate_up' | 'down',
  act: ExpertActivation | undefined,
  opts: GemvOptions,
): GpuTensor {
  const { E, rows, cols } = expertDims(w, `${mode} weights`);
  if (E !== g.E) throw new ShapeError(`${mode} weights experts`, [g.E, rows, cols], [E, rows, cols]);
  if (mode === 'gate_up' && rows % 2 !== 0) throw new ShapeError('gate_up weights', '[E, 2I, H] with an even row count', [E, rows, cols]);
  const nout = mode === 'gate_up' ? rows / 2 : rows;
  const xRows = mode === 'gate_up' ? g.T : g.T * g.k;
  if (x.dtype !== 'float32' || x.shape.length !== 2 || x.shape[0] !== xRows || x.shape[1] !== cols) {
    throw new ShapeError(`${mode} input`, [xRows, cols], x.shape);
  }
  const cpd = opts.chunksPerDispatch;
  if (cpd !== undefined && !(Number.isInteger(cpd) && cpd >= 1)) throw new ValueError(`${mode} GEMV chunksPerDispatch`, 'a positive integer', cpd);
  if (opts.rowScale && opts.rowScale.size !== g.T * g.k) throw new ShapeError('rowScale', [g.T, g.k], opts.rowScale.shape);
  const layout = mode === 'down' ? 'rows' : act!.layout;
  const chunks: GemvChunk[] = expertChunkList(w, opts.bias, `${mode} GEMV`, layout).map((c) => {
    const gw = gemvWeights(mode, c.w);
    if (c.bias) checkGemvBias(`${mode} bias`, c.bias, c.experts, gw.rows);
    return { place: { e0: c.e0, experts: c.experts, o0: c.o0 }, gw, nout: c.outputs, bias: c.bias as GpuTensor | undefined };
  });
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  const dense = chunks[0].gw.sdtype === 'none';
  // every slot that can hold an active expert: at most T*k experts have rows
  const slots = Math.min(g.E, g.T * g.k);
  // rows accumulated per weight pass: about the rows per active expert (uniform routing), a power of two <= 8
  // (the row-blocked kernel: <= 4, as for packed weights)
  const mrRows = gemvRowsPerPass(g.T, g.k, g.E, true);
  const kernel = opts.packedKernel ?? (dense ? gemvDenseKernelFor(g.T, g.k, g.E, ctx.adapterInfo.software) : plannedKernel(mrRows, slots, chunks[0].gw, nout, { software: ctx.adapterInfo.software, workgroupBytes: ctx.limits.maxComputeWorkgroupStorageSize }, mode));
  const path = packedPath(chunks[0].gw, kernel);
  const mr = dense && path === 'dense' ? gemvRowsPerPass(g.T, g.k, g.E, false) : mrRows;
  // outputs per 32-lane group, and per workgroup
  const blocking = path === 'rows' ? kernelBlocking(kernel) : kernelBlocking('table');
  const { ro, ks } = blocking;
  const perWg = (GROUPS / ks) * ro;
  for (const c of chunks) {
    const nbx = Math.ceil(c.nout / perWg);
    if (nbx > max) throw new LimitError('maxComputeWorkgroupsPerDimension', nbx, max, `${mode} output blocks`);
  }
  if (slots > max) throw new LimitError('maxComputeWorkgroupsPerDimension', slots, max, `${mode} expert slots`);
  if (path === 'rows' && blocking.xr && mr !== 1) throw new ValueError(`${mode} GEMV kernel ${kernel}`, 'one token row per weight pass (an x-in-registers kernel)', `${mr} rows per pass`);
  // the staged-x kernels hold their token rows' x slice in workgroup memory beside the reduction (x in registers: a
  // second reduction level)
  const wgBytes = path === 'rows' ? rowsWorkgroupBytes({ wdtype: chunks[0].gw.wfmt, mr, xs: blocking.xs, xr: blocking.xr }) : 0;
  const wgMax = ctx.limits.maxComputeWorkgroupStorageSize;
  if (wgBytes > wgMax) throw new LimitError('maxComputeWorkgroupStorageSize', wgBytes, wgMax, `${mode} GEMV ${kernel} over ${mr} token rows per pass`);
  const y = opts.pool ? opts.pool.tensor('float32', [g.T * g.k, nout], `${mode}.out`) : GpuTensor.empty(ctx, 'float32', [g.T * g.k, nout], `${mode}.out`);
  // one expert (a dense grouping: shared experts) is always active: a constant list, no dispatch
  const active = opts.active?.active ?? (g.E === 1 ? singleExpertList(ctx) : activeExpertsGpu(ctx, rec, g, nout, nout).active);
  const first = chunks[0];
  // row-blocked path: chunks of 16 bytes per scale block (rowsScaleBlocks; other paths: none)
  const { cb, cbPow2, cbs } = path === 'rows' ? rowsScaleBlocks(first.gw) : { cb: 0, cbPow2: false, cbs: 0 };
  const variant: GemvVariant = {
    wdtype: first.gw.wfmt,
    sdtype: first.gw.sdtype,
    vec8: cols % 8 === 0,
    mode,
    act: mode === 'gate_up' ? act!.kind : 'none',
    interleaved: mode === 'gate_up' && act!.layout === 'interleaved',
    bias: !!first.bias,
    rowScale: mode === 'gate_up' && !!opts.rowScale,
    bdtype: (first.bias?.dtype ?? 'float32') as DenseDtype,
    wide: path === 'wide',
    mr,
  };
  // zp only when set, so the pipelines of weights without zero points keep their variant keys.
  if (first.gw.zeros) variant.zp = true;
  if (path === 'rows') {
    Object.assign(variant, { cbPow2 }, rowsVariantFields(blocking));
    const kind = ctx.adapterInfo.software ? 'software' : 'gpu';
    if (!blocking.il && !blocking.xr && (opts.prefetchCodes ?? KERNEL_CROSSOVERS.gemvPrefetchCodes[kind])) variant.pf = true;
    else if (blocking.xs && (opts.stagedXLoadsFirst ?? KERNEL_CROSSOVERS.stagedXLoadsFirst[kind])) variant.xsFirst = true;
  }
  const shared = { [variant.vec8 ? 'X4' : 'X']: x.buffer, Counts: g.counts.buffer, Offsets: g.offsets.buffer, Order: g.order.buffer, Active: active, Y: y.buffer, ...(variant.rowScale ? { S: opts.rowScale!.buffer } : {}) };
  const common = { cols, k: g.k, limit: act?.limit ?? 0, alpha: act?.alpha ?? 1.702, s1: first.gw.su[1], s2: first.gw.su[2], s3: first.gw.su[3], ys: nout, cb, cbs };
  // several chunks per dispatch where the device binds them side by side (moe-gemv-chunks.ts), all dispatches of one NC
  const perChunk = 1 + (first.bias ? 1 : 0) + (first.gw.scales ? 1 : 0) + (first.gw.zeros ? 1 : 0);
  const fit = Math.floor((ctx.limits.maxStorageBuffersPerShaderStage - Object.keys(shared).length) / perChunk);
  const plan = planGemvChunkGroups(chunks.map((c) => ({ ...c.place, outputs: c.nout })), perWg, Math.min(fit, cpd ?? gemvChunksPerDispatch(ctx.adapterInfo.software)));
  if (plan) {
    const cv: GemvVariant = { ...variant, chunks: plan.nc };
    for (const grp of plan.groups) {
      if (grp.blocks > max) throw new LimitError('maxComputeWorkgroupsPerDimension', grp.blocks, max, `${mode} output blocks of ${plan.nc} chunks`);
      const bind: Record<string, GPUBuffer> = { ...shared };
      const params: Record<string, number> = { ...common };
      grp.chunks.forEach((i, j) => {
        const c = chunks[i];
        Object.assign(bind, chunkBuffers(c, j));
        const place = { eb: c.place.e0, ne: grp.pad[j] ? 0 : c.place.experts, xb: grp.xb[j], nx: grp.nx[j], rows: c.gw.rows, nout: c.nout, yo: c.place.o0, s0: c.gw.su[0] };
        for (const [n, v] of Object.entries(place)) params[chunkField(n, j)] = v;
      });
      rec.dispatch({ kernel: gemvKernel, variant: cv, bind, params, workgroups: [grp.blocks, slots, 1] });
    }
    return y;
  }
  // one dispatch per chunk (or the stack in one buffer): each computes the outputs of its experts' rows that it holds
  for (const c of chunks) {
    const nbx = Math.ceil(c.nout / perWg);
    const bind: Record<string, GPUBuffer> = { ...shared, W: c.gw.codes.buffer };
    if (c.bias) bind.B = c.bias.buffer;
    if (c.gw.scales) bind.QS = c.gw.scales.buffer;
    if (c.gw.zeros) bind.QZ = c.gw.zeros.buffer;
    rec.dispatch({
      kernel: gemvKernel,
      variant,
      bind,
      params: { ...common, rows: c.gw.rows, nout: c.nout, s0: c.gw.su[0], eb: c.place.e0, ne: c.place.experts, yo: c.place.o0 },
      workgroups: [nbx, slots, 1],
    });
  }
  return y;
}

/** The buffers of chunk c bound in slot j of a multi-chunk dispatch (W_j, and B_j, QS_j, QZ_j where it has them). */
function chunkBuffers(c: GemvChunk, j: number): Record<string, GPUBuffer> {
  const b: Record<string, GPUBuffer> = { [chunkBinding('W', j)]: c.gw.codes.buffer };
  if (c.bias) b[chunkBinding('B', j)] = c.bias.buffer;
  if (c.gw.scales) b[chunkBinding('QS', j)] = c.gw.scales.buffer;
  if (c.gw.zeros) b[chunkBinding('QZ', j)] = c.gw.zeros.buffer;
  return b;
}

/**
 * Decode-path gate_up + activation: h[p, :] for grouped rows p, same meaning
 * as groupedGateUpGpu. Best when each active expert has few rows.
 *
 * @example
 * ```ts
 * const h = gemvGateUpGpu(ctx, rec, x, grouping, { kind: 'dense', w: gateUp }, { kind: 'silu', layout: 'concat' });
 * ```
 */
export function gemvGateUpGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, g: GroupingGpu, w: ExpertStackGpu, act: ExpertActivation, opts: GemvOptions = {}): GpuTensor {
  if (!act || (act.layout !== 'concat' && act.layout !== 'interleaved')) throw new ValueError('activation layout', "'concat' | 'interleaved'", act?.layout);
  if ((act.kind === 'swiglu_limit' || act.kind === 'swigluoai') && !(typeof act.limit === 'number' && act.limit > 0)) {
    throw new ValueError('activation limit', 'a positive number', act.limit);
  }
  return gemv(ctx, rec, x, g, w, 'gate_up', act, opts);
}

/**
 * Decode-path down projection: y[p, :] = h[p, :] @ W[e]^T (+ bias[e]), same
 * meaning as groupedDownGpu.
 *
 * @example
 * ```ts
 * const y = gemvDownGpu(ctx, rec, h, grouping, { kind: 'dense', w: down });
 * ```
 */
export function gemvDownGpu(ctx: GpuContext, rec: Recorder, h: GpuTensor, g: GroupingGpu, w: ExpertStackGpu, opts: Omit<GemvOptions, 'rowScale'> = {}): GpuTensor {
  return gemv(ctx, rec, h, g, w, 'down', undefined, opts);
}

