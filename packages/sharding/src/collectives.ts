import { HostTensor, DTYPES, allocHost, shapeEquals, ShapeError, DTypeError, type DType } from '@webmoe/tensor';
import { GpuTensor, checkBufferSize, type GpuContext, type BufferPool } from '@webmoe/kernels-wgsl';
import { ShardingError } from './errors.js';
import { concatAxis, normalizeAxis, takeRanges } from './host-ops.js';

/** Options of the GPU collectives. */
export interface CollectiveOptions {
  /** Output buffers of device i come from pools[i] when given. */
  pools?: readonly (BufferPool | undefined)[];
}

/**
 * Starts a device -> host copy now (copy into a MAP_READ staging buffer,
 * submit, mapAsync) and returns the promise of the bytes. Because the copy is
 * submitted before anything is awaited, callers start every transfer first
 * and await afterwards: the copies overlap each other and any compute already
 * queued (a queue runs its submissions in order, so the copy sees the
 * results of earlier dispatches).
 */
function startRead(ctx: GpuContext, buffer: GPUBuffer, size: number): Promise<Uint8Array> {
  if (size === 0) return Promise.resolve(new Uint8Array(0));
  ctx.assertAlive();
  const padded = Math.ceil(size / 4) * 4;
  const staging = ctx.device.createBuffer({ label: 'collective.staging', size: padded, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = ctx.device.createCommandEncoder({ label: 'collective.download' });
  enc.copyBufferToBuffer(buffer, 0, staging, 0, padded);
  ctx.submit([enc.finish()]);
  return staging.mapAsync(GPUMapMode.READ).then(
    () => {
      const out = new Uint8Array(staging.getMappedRange(0, padded).slice(0, size));
      staging.unmap();
      staging.destroy();
      return out;
    },
    (e: unknown) => {
      staging.destroy();
      throw e;
    },
  );
}

/** Host bytes of a GpuTensor's logical content, as a HostTensor (started now, see startRead). */
function startDownload(t: GpuTensor): Promise<HostTensor> {
  const bytes = t.size * DTYPES[t.dtype].bytes;
  return startRead(t.ctx, t.buffer, bytes).then((b) => {
    const out = allocHost(t.dtype, t.size);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(b);
    return new HostTensor(t.dtype, t.shape, out);
  });
}

/**
 * Writes `bytes` to the start of `t`'s buffer, zero-padded to a multiple of 4 bytes (writes are whole words); nothing
 * for no bytes. Per call: past 2 MiB through the context's kept staging (writeBufferStaged). The collectives' and the
 * rank transports' uploads.
 * @example `writeTensorBytes(t, h.bytes())`
 */
export function writeTensorBytes(t: GpuTensor, bytes: Uint8Array): void {
  if (bytes.byteLength === 0) return;
  const padded = Math.ceil(bytes.byteLength / 4) * 4;
  let data = bytes;
  if (padded !== bytes.byteLength) {
    data = new Uint8Array(padded);
    data.set(bytes);
  }
  t.ctx.writeBufferStaged(t.buffer, 0, data);
}

/** A new tensor on ctx holding `bytes` (a zero-element tensor gets the 4-byte minimum buffer; its shape carries the logical size). */
function uploadBytes(ctx: GpuContext, dtype: DType, shape: readonly number[], bytes: Uint8Array, pool: BufferPool | undefined, label: string): GpuTensor {
  ctx.assertAlive();
  const t = pool ? pool.tensor(dtype, shape, label) : GpuTensor.empty(ctx, dtype, shape, label);
  writeTensorBytes(t, bytes);
  return t;
}

function hostBytes(t: HostTensor): Uint8Array {
  return t.bytes();
}

function checkList(what: string, ts: readonly GpuTensor[]): void {
  if (!Array.isArray(ts) || ts.length < 1) throw new ShardingError(what, 'one tensor per device (at least one)', Array.isArray(ts) ? ts.length : typeof ts);
  for (const t of ts) if (t.destroyed) throw new ShardingError(what, 'live tensors', 'a destroyed GpuTensor');
}

/**
 * Sums one f32 tensor per device and gives every device the sum. The sum is
 * taken on the host in a fixed order, `((t0 + t1) + t2) + ...` with f32
 * rounding after each add, so the result is bit-identical on every device
 * and from run to run. Device -> host copies all start before any is
 * awaited.
 *
 * @example
 * ```ts
 * const [s0, s1] = await allReduce([partial0, partial1]); // on group.context(0), group.context(1)
 * ```
 */
export async function allReduce(tensors: readonly GpuTensor[], opts: CollectiveOptions = {}): Promise<GpuTensor[]> {
  checkList('allReduce', tensors);
  const shape = tensors[0].shape;
  for (const t of tensors) {
    if (t.dtype !== 'float32') throw new DTypeError('allReduce input', ['float32'], t.dtype);
    if (!shapeEquals(t.shape, shape)) throw new ShapeError('allReduce input (every device the same shape)', shape, t.shape);
  }
  const pending = tensors.map(startDownload);
  const acc = (await pending[0]).data.slice() as Float32Array;
  for (let d = 1; d < pending.length; d++) {
    const x = (await pending[d]).data as Float32Array;
    for (let j = 0; j < acc.length; j++) acc[j] += x[j]; // stored as f32: one f32 rounding per add
  }
  const bytes = new Uint8Array(acc.buffer, acc.byteOffset, acc.byteLength);
  return tensors.map((t, i) => uploadBytes(t.ctx, 'float32', shape, bytes, opts.pools?.[i], 'allReduce.out'));
}

function gatherShape(what: string, ts: readonly { dtype: DType; shape: readonly number[] }[], axis: number): { axis: number; shape: number[] } {
  const first = ts[0];
  const rank = first.shape.length;
  if (rank === 0) throw new ShardingError(what, 'tensors of rank >= 1', 'a scalar');
  const a = normalizeAxis(axis, rank, `${what} axis`);
  let total = 0;
  for (const t of ts) {
    if (t.dtype !== first.dtype) throw new DTypeError(`${what} input (every device the same dtype)`, [first.dtype], t.dtype);
    if (t.shape.length !== rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(`${what} input (equal except axis ${a})`, first.shape.map((d, i) => (i === a ? '*' : d)), t.shape);
    }
    total += t.shape[a];
  }
  const shape = [...first.shape];
  shape[a] = total;
  return { axis: a, shape };
}

/**
 * Concatenates one tensor per device along `axis` (sizes along the axis may
 * differ, e.g. uneven shards) and gives every device the whole. Any dtype.
 *
 * @example
 * ```ts
 * const full = await allGather([y0, y1, y2], 1); // [T, I0+I1+I2] on each device
 * ```
 */
export async function allGather(tensors: readonly GpuTensor[], axis: number, opts: CollectiveOptions = {}): Promise<GpuTensor[]> {
  checkList('allGather', tensors);
  const { axis: a, shape } = gatherShape('allGather', tensors, axis);
  const pending = tensors.map(startDownload);
  const hosts = await Promise.all(pending);
  const whole = concatAxis(hosts, a);
  const bytes = hostBytes(whole);
  return tensors.map((t, i) => uploadBytes(t.ctx, t.dtype, shape, bytes, opts.pools?.[i], 'allGather.out'));
}

function checkAllToAll(sends: readonly (readonly GpuTensor[])[]): { n: number; dtype: DType; C: number; ctxs: GpuContext[] } {
  const n = sends.length;
  if (n < 1) throw new ShardingError('allToAll sends', 'sends[src][dst] for at least one device', 0);
  const first = sends[0][0];
  if (!first) throw new ShardingError('allToAll sends[0]', `${n} blocks`, 0);
  if (first.shape.length !== 2) throw new ShapeError('allToAll block', '[rows, C]', first.shape);
  const C = first.shape[1];
  const ctxs: GpuContext[] = [];
  for (let s = 0; s < n; s++) {
    const row = sends[s];
    if (!Array.isArray(row) || row.length !== n) throw new ShardingError(`allToAll sends[${s}]`, `${n} blocks (one per destination)`, Array.isArray(row) ? row.length : typeof row);
    ctxs.push(row[0].ctx);
    for (let d = 0; d < n; d++) {
      const b = row[d];
      if (b.destroyed) throw new ShardingError(`allToAll sends[${s}][${d}]`, 'a live tensor', 'a destroyed GpuTensor');
      if (b.dtype !== first.dtype) throw new DTypeError(`allToAll sends[${s}][${d}]`, [first.dtype], b.dtype);
      if (b.shape.length !== 2 || b.shape[1] !== C) throw new ShapeError(`allToAll sends[${s}][${d}]`, ['rows', C], b.shape);
      if (b.ctx.device !== row[0].ctx.device) throw new ShardingError(`allToAll sends[${s}][${d}]`, `a tensor on device ${s} (every block of a source on the source's device)`, 'a tensor on another device');
    }
  }
  return { n, dtype: first.dtype, C, ctxs };
}

/**
 * Personalised all-to-all with variable-sized row blocks: `sends[src][dst]`
 * is a `[rows, C]` tensor on device `src` (rows may be 0); the result
 * `recv[dst][src]` is the same block on device `dst`. A block of zero rows
 * arrives as a `[0, C]` tensor (4-byte minimum buffer: WebGPU cannot bind an
 * empty one; the shape carries the logical row count). A device's block to
 * itself is copied on the device; every other block goes GPU -> staging ->
 * host -> writeBuffer, all downloads started before any is awaited.
 *
 * @example
 * ```ts
 * const recv = await allToAll([[a00, a01], [a10, a11]]); // recv[1][0] is a01's rows on device 1
 * ```
 */
export async function allToAll(sends: readonly (readonly GpuTensor[])[], opts: CollectiveOptions = {}): Promise<GpuTensor[][]> {
  const { n, dtype, C, ctxs } = checkAllToAll(sends);
  const elt = DTYPES[dtype].bytes;
  const recv: GpuTensor[][] = Array.from({ length: n }, () => new Array<GpuTensor>(n));
  const pending: { s: number; d: number; p: Promise<Uint8Array> }[] = [];
  for (let s = 0; s < n; s++) {
    for (let d = 0; d < n; d++) {
      if (s === d) continue;
      const b = sends[s][d];
      pending.push({ s, d, p: startRead(b.ctx, b.buffer, b.size * elt) });
    }
  }
  // Self blocks: a copy on the device (ordered after the work already queued there).
  for (let s = 0; s < n; s++) {
    const b = sends[s][s];
    const out = opts.pools?.[s] ? opts.pools[s]!.tensor(dtype, b.shape, 'allToAll.out') : GpuTensor.empty(ctxs[s], dtype, b.shape, 'allToAll.out');
    if (b.size > 0) {
      const enc = ctxs[s].device.createCommandEncoder({ label: 'allToAll.self' });
      enc.copyBufferToBuffer(b.buffer, 0, out.buffer, 0, b.byteLength);
      ctxs[s].submit([enc.finish()]);
    }
    recv[s][s] = out;
  }
  try {
    for (const { s, d, p } of pending) {
      const bytes = await p;
      recv[d][s] = uploadBytes(ctxs[d], dtype, [sends[s][d].shape[0], C], bytes, opts.pools?.[d], 'allToAll.out');
    }
  } catch (e) {
    for (const r of recv) for (const t of r) t?.destroy();
    throw e;
  }
  return recv;
}

/**
 * Exchanges the row counts of an all-to-all first (EP dispatch needs them to
 * size the receive buffers): `counts[src][dst]` in, `recv[dst][src]` out.
 * In one process this is a transpose of host arrays; over a transport it is
 * an all-to-all of one u32 per pair.
 *
 * @example
 * ```ts
 * allToAllCounts([Uint32Array.of(1, 2), Uint32Array.of(3, 0)]) // [[1, 3], [2, 0]]
 * ```
 */
export function allToAllCounts(counts: readonly Uint32Array[]): Uint32Array[] {
  const n = counts.length;
  if (n < 1) throw new ShardingError('allToAllCounts', 'counts[src][dst] for at least one device', 0);
  for (let s = 0; s < n; s++) {
    if (!(counts[s] instanceof Uint32Array) || counts[s].length !== n) throw new ShardingError(`allToAllCounts counts[${s}]`, `a Uint32Array of ${n} counts`, counts[s]?.length ?? typeof counts[s]);
  }
  return Array.from({ length: n }, (_, d) => Uint32Array.from({ length: n }, (_, s) => counts[s][d]));
}

/** Result of {@link allToAllv}. */
export interface AllToAllvResult<T> {
  /** Per destination: the rows from every source, concatenated in source order. */
  recv: T[];
  /** recvCounts[dst][src]: rows from src inside recv[dst]. */
  recvCounts: Uint32Array[];
  /** recvOffsets[dst][src]: first row of src's block inside recv[dst] (length n+1). */
  recvOffsets: Uint32Array[];
}

function offsetsOf(c: Uint32Array): Uint32Array {
  const o = new Uint32Array(c.length + 1);
  for (let i = 0; i < c.length; i++) o[i + 1] = o[i] + c[i];
  return o;
}

function checkV(what: string, send: readonly { shape: readonly number[]; dtype: DType }[], counts: readonly Uint32Array[]): { n: number; C: number; dtype: DType } {
  const n = send.length;
  if (n < 1) throw new ShardingError(what, 'one send tensor per device', 0);
  if (counts.length !== n) throw new ShardingError(`${what} counts`, `${n} rows of counts (one per source)`, counts.length);
  const first = send[0];
  if (first.shape.length !== 2) throw new ShapeError(`${what} send[0]`, '[rows, C]', first.shape);
  const C = first.shape[1];
  for (let s = 0; s < n; s++) {
    const t = send[s];
    if (t.dtype !== first.dtype) throw new DTypeError(`${what} send[${s}]`, [first.dtype], t.dtype);
    if (t.shape.length !== 2 || t.shape[1] !== C) throw new ShapeError(`${what} send[${s}]`, ['rows', C], t.shape);
    if (!(counts[s] instanceof Uint32Array) || counts[s].length !== n) throw new ShardingError(`${what} counts[${s}]`, `a Uint32Array of ${n} counts`, counts[s]?.length ?? typeof counts[s]);
    const sum = counts[s].reduce((a, b) => a + b, 0);
    if (sum !== t.shape[0]) throw new ShardingError(`${what} counts[${s}] (rows of send[${s}] per destination, in order)`, `a sum of ${t.shape[0]} (send[${s}] rows)`, sum);
  }
  return { n, C, dtype: first.dtype };
}

/**
 * All-to-all of contiguous row blocks (MPI_Alltoallv / NCCL style, the form
 * EP dispatch and combine use): `send[src]` is `[R_src, C]` on device src,
 * its rows grouped by destination in order, `counts[src][dst]` rows each.
 * Device dst receives one `[sum_src counts[src][dst], C]` tensor, blocks in
 * source order. One download per source and one upload per destination.
 *
 * @example
 * ```ts
 * const { recv, recvCounts } = await allToAllv([x0, x1], [Uint32Array.of(2, 1), Uint32Array.of(0, 4)]);
 * ```
 */
export async function allToAllv(send: readonly GpuTensor[], counts: readonly Uint32Array[], opts: CollectiveOptions = {}): Promise<AllToAllvResult<GpuTensor>> {
  checkList('allToAllv', send);
  const { C, dtype } = checkV('allToAllv', send, counts);
  const pending = send.map(startDownload);
  const hosts = await Promise.all(pending);
  const r = cpuAllToAllv(hosts, counts);
  const recv = r.recv.map((h, d) => {
    checkBufferSize(send[d].ctx, h.byteLength, 'allToAllv recv');
    return uploadBytes(send[d].ctx, dtype, [h.shape[0], C], h.bytes(), opts.pools?.[d], 'allToAllv.out');
  });
  return { recv, recvCounts: r.recvCounts, recvOffsets: r.recvOffsets };
}

// ---------------------------------------------------------------- CPU (host arrays)

/**
 * The CPU all-reduce: f32 sum in the fixed order device 0 + 1 + ..., one
 * copy per device (identical bits).
 *
 * @example
 * ```ts
 * cpuAllReduce([Float32Array.of(1, 2), Float32Array.of(3, 4)]) // [[4, 6], [4, 6]]
 * ```
 */
export function cpuAllReduce(arrays: readonly Float32Array[]): Float32Array[] {
  if (arrays.length < 1) throw new ShardingError('cpuAllReduce', 'one array per device', 0);
  const len = arrays[0].length;
  for (const a of arrays) {
    if (!(a instanceof Float32Array)) throw new DTypeError('cpuAllReduce input', ['Float32Array'], (a as object)?.constructor?.name ?? typeof a);
    if (a.length !== len) throw new ShapeError('cpuAllReduce input (every device the same length)', [len], [a.length]);
  }
  const acc = arrays[0].slice();
  for (let d = 1; d < arrays.length; d++) {
    const x = arrays[d];
    for (let j = 0; j < len; j++) acc[j] += x[j];
  }
  return arrays.map(() => acc.slice());
}

/** The CPU all-gather (see {@link allGather}). @example `cpuAllGather([a, b], 0)` */
export function cpuAllGather(ts: readonly HostTensor[], axis: number): HostTensor[] {
  if (ts.length < 1) throw new ShardingError('cpuAllGather', 'one tensor per device', 0);
  const { axis: a } = gatherShape('cpuAllGather', ts, axis);
  const whole = concatAxis(ts, a);
  return ts.map(() => new HostTensor(whole.dtype, whole.shape, whole.data.slice()));
}

/** The CPU all-to-all of row blocks (see {@link allToAll}): `recv[dst][src] = sends[src][dst]` (copied). @example `cpuAllToAll([[a00, a01], [a10, a11]])[1][0] // a01` */
export function cpuAllToAll(sends: readonly (readonly HostTensor[])[]): HostTensor[][] {
  const n = sends.length;
  if (n < 1) throw new ShardingError('cpuAllToAll', 'sends[src][dst] for at least one device', 0);
  for (let s = 0; s < n; s++) if (sends[s].length !== n) throw new ShardingError(`cpuAllToAll sends[${s}]`, `${n} blocks`, sends[s].length);
  return Array.from({ length: n }, (_, d) => Array.from({ length: n }, (_, s) => new HostTensor(sends[s][d].dtype, sends[s][d].shape, sends[s][d].data.slice())));
}

/** The CPU all-to-all of contiguous blocks (see {@link allToAllv}). @example `cpuAllToAllv([x0, x1], counts).recv[1]` */
export function cpuAllToAllv(send: readonly HostTensor[], counts: readonly Uint32Array[]): AllToAllvResult<HostTensor> {
  const { n } = checkV('cpuAllToAllv', send, counts);
  const recvCounts = allToAllCounts(counts);
  const sendOffsets = counts.map(offsetsOf);
  const recv = Array.from({ length: n }, (_, d) =>
    concatAxis(
      Array.from({ length: n }, (_, s) => takeRanges(send[s], 0, [[sendOffsets[s][d], sendOffsets[s][d + 1]]])),
      0,
    ),
  );
  return { recv, recvCounts, recvOffsets: recvCounts.map(offsetsOf) };
}
