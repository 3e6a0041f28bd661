/**
 * The check every bench row runs once: the output of the forward the row
 * times, on a sample of its tokens, against the float64 reference
 * (reference.ts) reading the weights the timed layer holds.
 */
import type { ChunkedExpertWeightsGpu, ExpertRowLayout, ExpertStackGpu, GpuContext, GpuTensor } from '@webmoe/kernels-wgsl';
import { ValueError } from '@webmoe/tensor';
import { checkRunner } from './check-pool.js';
import { referenceForward, type ReferenceSpec } from './reference.js';
import type { StoredDtype, StoredExperts, StoredLayer, StoredTensor } from './stored.js';

/**
 * Relative L2 error a row may have against the float64 reference (f32 accumulation over K <= 16k inputs stays
 * near 1e-6). A row whose forward ran an f16-staged expert GEMM (the subgroup-matrix kernel: x and w rounded to
 * f16) is checked at 2e-3 instead (kernels-wgsl/testing `stagedTol`; the row's `check.tol` says which).
 */
export const CHECK_TOL = 1e-4;
/** Routing scores closer than this to the selection boundary count as a tie (either choice is right). */
export const TIE_EPS = 1e-5;
/** Rows of T <= this are checked in full; larger T: a sample that reaches every routed expert. */
export const FULL_CHECK_MAX_T = 16;
/** Extra tokens of a sample beyond those needed to cover the routed experts. */
export const SAMPLE_EXTRA = 4;

/** The `check` field of a row (JSON). */
export interface RowCheck {
  /** Relative L2 error of the sampled output rows against the reference. */
  relErr: number;
  tol: number;
  pass: boolean;
  /** Tokens compared. */
  tokens: number;
  /** Distinct experts the sample reached (== the experts the whole batch routes to). */
  experts: number;
  /** Experts the batch routes to. */
  expertsRouted: number;
  /** Sampled tokens whose routing was a rounding tie (the checked forward's choice was taken). */
  ties?: number;
  /** Why it failed, when it did. */
  reason?: string;
}

const BYTES: Record<StoredDtype, number> = { float32: 4, bfloat16: 2, float16: 2, float8_e4m3fn: 1, uint8: 1 };

/** Copies bytes [offset, offset + length) of a GPU buffer to the host (4-byte aligned copy, then sliced). */
export async function readGpuRange(ctx: GpuContext, buffer: GPUBuffer, offset: number, length: number): Promise<Uint8Array> {
  if (length === 0) return new Uint8Array(0);
  const start = offset & ~3;
  const end = Math.min(buffer.size, (offset + length + 3) & ~3);
  const staging = ctx.device.createBuffer({ label: 'bench.check.read', size: end - start, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const enc = ctx.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, start, staging, 0, end - start);
    ctx.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const all = new Uint8Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return all.subarray(offset - start, offset - start + length);
  } finally {
    staging.destroy();
  }
}

/** A GPU tensor as the reference reads it: its own dtype, shape and buffer. */
export function storedGpu(t: GpuTensor): StoredTensor {
  if (!(t.dtype in BYTES)) throw new Error(`check: cannot read a ${t.dtype} tensor [${t.shape.join(', ')}]`);
  const total = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype as StoredDtype];
  return {
    dtype: t.dtype as StoredDtype,
    shape: t.shape,
    read: (offset, length) => {
      if (offset < 0 || offset + length > total) throw new Error(`check: read [${offset}, ${offset + length}) outside a ${total}-byte tensor`);
      return readGpuRange(t.ctx, t.buffer, offset, length);
    },
  };
}

/**
 * Row ranges [a, b) of one expert's rows that hold its outputs [o0, o0 + n)
 * in `layout`, in the order a chunk stores them (kernels-wgsl
 * `ExpertRowLayout`: 'rows' row o is output o; 'concat' gate rows then up
 * rows, N = rows / 2; 'interleaved' rows 2o and 2o + 1).
 */
export function chunkRowRanges(layout: ExpertRowLayout, rows: number, o0: number, n: number): [number, number][] {
  const N = layout === 'rows' ? rows : rows / 2;
  if (o0 === 0 && n === N) return [[0, rows]];
  if (layout === 'rows') return [[o0, o0 + n]];
  if (layout === 'interleaved') return [[2 * o0, 2 * (o0 + n)]];
  return [[o0, o0 + n], [N + o0, N + o0 + n]];
}

/**
 * One tensor of a chunked stack (`pick` chooses it in each chunk; `g` weight
 * rows per tensor row: the fp8 scale block rows, else 1) as the logical
 * tensor [E, ceil(rows / g), ...] of the unsplit stack: a read of whole
 * tensor rows reads each row from the chunk buffer that holds it.
 */
function storedChunked(w: ChunkedExpertWeightsGpu, pick: (c: ChunkedExpertWeightsGpu['chunks'][number]) => GpuTensor, g: number): StoredTensor {
  const t0 = pick(w.chunks[0]);
  if (!(t0.dtype in BYTES)) throw new Error(`check: cannot read a ${t0.dtype} tensor [${t0.shape.join(', ')}]`);
  const dtype = t0.dtype as StoredDtype;
  const rest = t0.shape.slice(2);
  const tRows = Math.ceil(w.rows / g);
  const rowBytes = rest.reduce((a, b) => a * b, 1) * BYTES[dtype];
  // per expert: its tensor rows [a, b) and where they sit (tensor, byte offset of row a)
  const segs: { a: number; b: number; t: GpuTensor; off: number }[][] = Array.from({ length: w.E }, () => []);
  for (const c of w.chunks) {
    const t = pick(c);
    const ranges = chunkRowRanges(w.layout, w.rows, c.o0, c.outputs).map(([a, b]) => [a / g, Math.ceil(b / g)] as const);
    const local = ranges.reduce((n, [a, b]) => n + b - a, 0);
    for (let e = c.e0; e < c.e0 + c.experts; e++) {
      let at = (e - c.e0) * local;
      for (const [a, b] of ranges) {
        segs[e].push({ a, b, t, off: at * rowBytes });
        at += b - a;
      }
    }
  }
  const total = w.E * tRows * rowBytes;
  return {
    dtype,
    shape: [w.E, tRows, ...rest],
    read: async (offset, length) => {
      if (offset < 0 || offset + length > total || offset % rowBytes || length % rowBytes) throw new Error(`check: read [${offset}, ${offset + length}) of a chunked ${total}-byte tensor: whole rows of ${rowBytes} bytes expected`);
      const out = new Uint8Array(length);
      const first = offset / rowBytes;
      const end = first + length / rowBytes;
      for (let r = first; r < end; ) {
        const e = Math.floor(r / tRows);
        const re = r - e * tRows;
        const s = segs[e].find((x) => re >= x.a && re < x.b);
        if (!s) throw new Error(`check: row ${re} of expert ${e} is in no chunk`);
        const n = Math.min(s.b - re, end - r);
        out.set(await readGpuRange(s.t.ctx, s.t.buffer, s.off + (re - s.a) * rowBytes, n * rowBytes), (r - first) * rowBytes);
        r += n;
      }
      return out;
    },
  };
}

/** The bias [E, rows] of a stack as the reference reads it: the chunks' biases of a chunked stack, else the plain bias tensor. */
export function storedExpertBias(w: ExpertStackGpu, plain: GpuTensor | undefined): StoredTensor | undefined {
  if (w.kind !== 'chunked') return plain ? storedGpu(plain) : undefined;
  return w.chunks[0].bias ? storedChunked(w, (c) => c.bias!, 1) : undefined;
}

/** GPU expert weights (the kernels' containers, one buffer per tensor or split in chunks) as the reference reads them. */
export function storedGpuExperts(w: ExpertStackGpu): StoredExperts {
  switch (w.kind) {
    case 'chunked': {
      const c0 = w.chunks[0].w;
      const field = <K extends string>(k: K) => (c: ChunkedExpertWeightsGpu['chunks'][number]) => (c.w as unknown as Record<K, GpuTensor>)[k];
      switch (c0.kind) {
        case 'dense': return { kind: 'dense', w: storedChunked(w, field('w'), 1) };
        case 'fp8_block': return { kind: 'fp8_block', q: storedChunked(w, field('q'), 1), scaleInv: storedChunked(w, field('scaleInv'), c0.block[0]), block: c0.block };
        case 'int_block':
          if (c0.zeros) throw new ValueError('bench check experts', 'int blocks with the fixed zero point (the bench generates no zero points)', 'zero-point tensors');
          return { kind: 'int_block', bits: c0.bits, q: storedChunked(w, field('q'), 1), scales: storedChunked(w, field('scales'), 1), blockSize: c0.blockSize };
        case 'mxfp4': return { kind: 'mxfp4', blocks: storedChunked(w, field('blocks'), 1), scales: storedChunked(w, field('scales'), 1) };
      }
      throw new ValueError('bench check experts', "'dense' | 'fp8_block' | 'int_block' | 'mxfp4' chunks", (c0 as { kind: string }).kind);
    }
    case 'dense': return { kind: 'dense', w: storedGpu(w.w) };
    case 'fp8_block': return { kind: 'fp8_block', q: storedGpu(w.q), scaleInv: storedGpu(w.scaleInv), block: w.block };
    case 'int_block': return { kind: 'int_block', bits: w.bits, q: storedGpu(w.q), scales: storedGpu(w.scales), blockSize: w.blockSize };
    case 'mxfp4': return { kind: 'mxfp4', blocks: storedGpu(w.blocks), scales: storedGpu(w.scales) };
  }
}

/**
 * The tokens to check: all of them for T <= FULL_CHECK_MAX_T; otherwise the
 * first SAMPLE_EXTRA tokens, the last one, and for every expert the batch
 * routes to (by `routing` [T, k], the checked forward's) the first token
 * that reaches it, so that every routed expert is compared.
 * @example `sampleTokens(idx, 128, 8) // e.g. [0, 1, 2, 3, 5, 9, ..., 127]`
 */
export function sampleTokens(routing: Uint32Array, T: number, k: number): number[] {
  if (T <= FULL_CHECK_MAX_T) return Array.from({ length: T }, (_, t) => t);
  const pick = new Set<number>();
  for (let t = 0; t < Math.min(SAMPLE_EXTRA, T); t++) pick.add(t);
  pick.add(T - 1);
  const covered = new Set<number>();
  for (const t of pick) for (let j = 0; j < k; j++) covered.add(routing[t * k + j]);
  for (let t = 0; t < T; t++) {
    let adds = false;
    for (let j = 0; j < k; j++) if (!covered.has(routing[t * k + j])) adds = true;
    if (!adds) continue;
    pick.add(t);
    for (let j = 0; j < k; j++) covered.add(routing[t * k + j]);
  }
  return [...pick].sort((a, b) => a - b);
}

/** Relative L2 error of `got` against `want` (float64 sums). */
export function relErr64(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`relErr: lengths differ (${got.length} vs ${want.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    const d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den);
}

/**
 * Checks one forward: `y` [T, H] (the checked output), `x` [T, H] its
 * input, `routing` [T, k] its routing (to choose the sample and to break
 * exact ties), `layer` the weights it read.
 * @example `const c = await checkForward(spec, stored, x, y, idx); if (!c.pass) ...`
 */
export async function checkForward(spec: ReferenceSpec, layer: StoredLayer, x: Float32Array, y: Float32Array, routing: Uint32Array, tol = CHECK_TOL): Promise<RowCheck> {
  const { H, k } = spec;
  const T = x.length / H;
  if (!Number.isInteger(T) || y.length !== x.length || routing.length !== T * k) throw new Error(`check: x ${x.length}, y ${y.length}, routing ${routing.length} values for H=${H}, k=${k}`);
  const tokens = sampleTokens(routing, T, k);
  const routed = new Set(routing);
  const ref = await referenceForward(spec, layer, x, tokens, routing, TIE_EPS, checkRunner());
  const got = new Float64Array(tokens.length * H);
  tokens.forEach((t, j) => got.set(y.subarray(t * H, (t + 1) * H), j * H));
  const err = relErr64(got, ref.out);
  const missing = [...routed].filter((e) => !ref.experts.has(e));
  const reasons: string[] = [];
  if (!(err <= tol)) reasons.push(`relative error ${err.toExponential(2)} > ${tol}`);
  if (ref.routingMismatches) reasons.push(`${ref.routingMismatches} sampled token(s) routed differently from the reference`);
  if (missing.length) reasons.push(`experts ${missing.slice(0, 8).join(', ')} routed by the forward but not by the reference`);
  const c: RowCheck = { relErr: err, tol, pass: reasons.length === 0, tokens: tokens.length, experts: ref.experts.size, expertsRouted: routed.size };
  if (ref.ties) c.ties = ref.ties;
  if (reasons.length) c.reason = reasons.join('; ');
  return c;
}

/** The row's error text for a failed check. */
export function checkFailure(c: RowCheck): string {
  return `check failed: ${c.reason ?? `relative error ${c.relErr} > ${c.tol}`} (${c.tokens} tokens, ${c.experts} experts)`;
}
