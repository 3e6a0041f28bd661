import { HostTensor, DTYPES, allocHost, DTypeError, ShapeError } from '@webmoe/tensor';
import { GpuTensor, type BufferPool } from '@webmoe/kernels-wgsl';
import { ShardingError } from './errors.js';
import { concatAxis, normalizeAxis } from './host-ops.js';
import { shardRange } from './range.js';
import { writeTensorBytes } from './collectives.js';

/**
 * The per-rank interface a multi-process transport provides (one rank per
 * GPU / process): two collectives on host bytes. An MPI binding maps them
 * to `MPI_Alltoallv` and `MPI_Allgatherv`; see docs/DISTRIBUTED.md. Every
 * rank must call the same collectives in the same order.
 *
 * @example
 * ```ts
 * const { recv, recvCounts } = await tr.allToAllv(bytes, [16, 0, 32]); // bytes per destination, in order
 * ```
 */
export interface HostTransport {
  readonly rank: number;
  readonly size: number;
  /** `send` holds the bytes for each destination in rank order, `sendCounts[dst]` each; returns the bytes from each source in rank order. */
  allToAllv(send: Uint8Array, sendCounts: readonly number[]): Promise<{ recv: Uint8Array; recvCounts: number[] }>;
  /** Every rank's bytes, in rank order. */
  allGatherv(send: Uint8Array): Promise<Uint8Array[]>;
}

class Rendezvous {
  private rounds = new Map<number, { parts: unknown[]; arrived: number; waiters: ((v: unknown[]) => void)[] }>();
  constructor(readonly size: number) {}
  arrive(seq: number, rank: number, part: unknown): Promise<unknown[]> {
    let r = this.rounds.get(seq);
    if (!r) {
      r = { parts: new Array(this.size), arrived: 0, waiters: [] };
      this.rounds.set(seq, r);
    }
    r.parts[rank] = part;
    r.arrived++;
    const round = r;
    const p = new Promise<unknown[]>((res) => round.waiters.push(res));
    if (round.arrived === this.size) {
      this.rounds.delete(seq);
      for (const w of round.waiters) w(round.parts);
    }
    return p;
  }
}

class LocalTransport implements HostTransport {
  private seq = 0;
  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly rv: Rendezvous,
  ) {}
  async allToAllv(send: Uint8Array, sendCounts: readonly number[]): Promise<{ recv: Uint8Array; recvCounts: number[] }> {
    if (sendCounts.length !== this.size) throw new ShardingError('allToAllv sendCounts', `${this.size} counts`, sendCounts.length);
    const total = sendCounts.reduce((a, b) => a + b, 0);
    if (total !== send.byteLength) throw new ShardingError('allToAllv sendCounts', `a sum of ${send.byteLength} bytes`, total);
    const offs = [0];
    for (const c of sendCounts) offs.push(offs[offs.length - 1] + c);
    const parts = (await this.rv.arrive(this.seq++, this.rank, { send: send.slice(), offs })) as { send: Uint8Array; offs: number[] }[];
    const blocks = parts.map((p) => p.send.subarray(p.offs[this.rank], p.offs[this.rank + 1]));
    const recv = new Uint8Array(blocks.reduce((a, b) => a + b.byteLength, 0));
    let w = 0;
    for (const b of blocks) {
      recv.set(b, w);
      w += b.byteLength;
    }
    return { recv, recvCounts: blocks.map((b) => b.byteLength) };
  }
  async allGatherv(send: Uint8Array): Promise<Uint8Array[]> {
    const parts = (await this.rv.arrive(this.seq++, this.rank, send.slice())) as Uint8Array[];
    return parts.map((p) => p.slice());
  }
}

/**
 * n in-process ranks connected by a rendezvous: the reference semantics of
 * {@link HostTransport} and what the tests run the rank collectives on.
 *
 * @example
 * ```ts
 * const trs = createLocalTransports(3);
 * const outs = await Promise.all(trs.map((tr, r) => rankAllReduce(tr, partial[r])));
 * ```
 */
export function createLocalTransports(n: number): HostTransport[] {
  if (!Number.isInteger(n) || n < 1) throw new ShardingError('createLocalTransports n', 'a positive integer', n);
  const rv = new Rendezvous(n);
  return Array.from({ length: n }, (_, r) => new LocalTransport(r, n, rv));
}

async function download(t: GpuTensor): Promise<HostTensor> {
  return t.download();
}

function upload(t: GpuTensor, h: HostTensor, pool: BufferPool | undefined, label: string): GpuTensor {
  const out = pool ? pool.tensor(h.dtype, h.shape, label) : GpuTensor.empty(t.ctx, h.dtype, h.shape, label);
  writeTensorBytes(out, h.bytes());
  return out;
}

/**
 * All-reduce of this rank's f32 tensor over a transport, deterministic:
 * {@link rankAllReduceHost} on the downloaded values, uploaded to this
 * rank's device. The result is bit-identical to {@link allReduce} /
 * {@link cpuAllReduce} and on every rank.
 *
 * @example
 * ```ts
 * const sum = await rankAllReduce(transport, partial); // [T, H] f32 on this rank's device
 * ```
 */
export async function rankAllReduce(tr: HostTransport, t: GpuTensor, opts: { pool?: BufferPool } = {}): Promise<GpuTensor> {
  if (t.dtype !== 'float32') throw new DTypeError('rankAllReduce input', ['float32'], t.dtype);
  const out = await rankAllReduceHost(tr, (await download(t)).data as Float32Array);
  return upload(t, new HostTensor('float32', t.shape, out), opts.pool, 'rankAllReduce.out');
}

/**
 * All-reduce of this rank's host f32 values over a transport, deterministic:
 * reduce-scatter (rank r owns the slice `shardRange(L, r, n)`, receives it
 * from every rank through one allToAllv and sums in rank order 0..n-1 with
 * f32 rounding per add), then allGatherv of the owned sums. Bit-identical to
 * {@link cpuAllReduce} and on every rank; each rank sends `2 (n-1)/n` of the
 * values. Every rank must pass the same length (ShapeError otherwise).
 *
 * @example
 * ```ts
 * const y = await rankAllReduceHost(transport, partial); // Float32Array, the sum over ranks
 * ```
 */
export async function rankAllReduceHost(tr: HostTransport, x: Float32Array): Promise<Float32Array> {
  if (!(x instanceof Float32Array)) throw new DTypeError('rankAllReduceHost input', ['Float32Array'], (x as object)?.constructor?.name ?? typeof x);
  const n = tr.size;
  const L = x.length;
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const counts = Array.from({ length: n }, (_, d) => {
    const [s, e] = shardRange(L, d, n);
    return (e - s) * 4;
  });
  const { recv, recvCounts } = await tr.allToAllv(bytes, counts);
  const [s0, e0] = shardRange(L, tr.rank, n);
  const len = e0 - s0;
  for (const c of recvCounts) if (c !== len * 4) throw new ShapeError(`rankAllReduce (every rank the same size) on rank ${tr.rank}`, [len], [c / 4]);
  const parts = new Float32Array(recv.buffer.slice(recv.byteOffset, recv.byteOffset + recv.byteLength));
  const acc = parts.slice(0, len);
  for (let src = 1; src < n; src++) for (let j = 0; j < len; j++) acc[j] += parts[src * len + j];
  const all = await tr.allGatherv(new Uint8Array(acc.buffer));
  const out = new Float32Array(L);
  let w = 0;
  for (const b of all) {
    out.set(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), w);
    w += b.byteLength / 4;
  }
  if (w !== L) throw new ShapeError(`rankAllReduce (every rank the same size) on rank ${tr.rank}`, [L], [w]);
  return out;
}

/**
 * All-gather of this rank's tensor along `axis` over a transport (shapes
 * travel first, so sizes along the axis may differ). Any dtype.
 *
 * @example
 * ```ts
 * const full = await rankAllGather(transport, y, -1);
 * ```
 */
export async function rankAllGather(tr: HostTransport, t: GpuTensor, axis: number, opts: { pool?: BufferPool } = {}): Promise<GpuTensor> {
  normalizeAxis(axis, t.shape.length, 'rankAllGather axis');
  const h = await download(t);
  const header = JSON.stringify({ dtype: t.dtype, shape: t.shape });
  const headers = (await tr.allGatherv(new TextEncoder().encode(header))).map((b) => JSON.parse(new TextDecoder().decode(b)) as { dtype: string; shape: number[] });
  const datas = await tr.allGatherv(h.bytes());
  const parts = headers.map((hd, r) => {
    if (hd.dtype !== t.dtype) throw new DTypeError(`rankAllGather input of rank ${r}`, [t.dtype], hd.dtype);
    const d = allocHost(t.dtype, hd.shape.reduce((a, b) => a * b, 1));
    new Uint8Array(d.buffer, d.byteOffset, d.byteLength).set(datas[r].subarray(0, d.byteLength));
    return new HostTensor(t.dtype, hd.shape, d);
  });
  return upload(t, concatAxis(parts, axis), opts.pool, 'rankAllGather.out');
}

/**
 * All-to-all of contiguous row blocks over a transport (see
 * {@link allToAllv}): `t` is `[R, C]` with `counts[dst]` rows per
 * destination in order; returns the rows from every source in rank order
 * and the per-source counts (exchanged first).
 *
 * @example
 * ```ts
 * const { recv, recvCounts } = await rankAllToAllv(transport, send, plan.sendCounts);
 * ```
 */
export async function rankAllToAllv(tr: HostTransport, t: GpuTensor, counts: Uint32Array, opts: { pool?: BufferPool } = {}): Promise<{ recv: GpuTensor; recvCounts: Uint32Array }> {
  if (t.shape.length !== 2) throw new ShapeError('rankAllToAllv send', ['rows', 'C'], t.shape);
  if (counts.length !== tr.size) throw new ShardingError('rankAllToAllv counts', `${tr.size} counts`, counts.length);
  const sum = counts.reduce((a, b) => a + b, 0);
  if (sum !== t.shape[0]) throw new ShardingError('rankAllToAllv counts', `a sum of ${t.shape[0]} (send rows)`, sum);
  const C = t.shape[1];
  const rowBytes = C * DTYPES[t.dtype].bytes;
  const cnt = await tr.allToAllv(new Uint8Array(counts.buffer.slice(counts.byteOffset, counts.byteOffset + counts.byteLength)), Array(tr.size).fill(4));
  const recvCounts = new Uint32Array(cnt.recv.buffer.slice(cnt.recv.byteOffset, cnt.recv.byteOffset + cnt.recv.byteLength));
  const h = await download(t);
  const data = await tr.allToAllv(h.bytes(), Array.from(counts, (c) => c * rowBytes));
  const rows = recvCounts.reduce((a, b) => a + b, 0);
  if (data.recv.byteLength !== rows * rowBytes) throw new ShardingError(`rankAllToAllv on rank ${tr.rank}`, `${rows * rowBytes} bytes (rows announced by the counts)`, data.recv.byteLength);
  const d = allocHost(t.dtype, rows * C);
  new Uint8Array(d.buffer, d.byteOffset, d.byteLength).set(data.recv);
  return { recv: upload(t, new HostTensor(t.dtype, [rows, C], d), opts.pool, 'rankAllToAllv.out'), recvCounts };
}
