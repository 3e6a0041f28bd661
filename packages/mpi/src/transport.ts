import { hostname } from 'node:os';
import type { HostTransport } from '@webmoe/sharding';
import { MpiError } from './errors.js';
import { loadLibMpi, type MpiImplementation, type MpiLib } from './lib.js';

/** Milliseconds abort() waits before MPI_Abort, for the launcher to forward the rank's last stderr. */
const ABORT_DRAIN_MS = 250;

/** Options of {@link createMpiTransport}. */
export interface MpiTransportOptions {
  /** An already loaded library (default: {@link loadLibMpi}). */
  lib?: MpiLib;
  /**
   * On an uncaught exception or unhandled rejection in this process, print it
   * and call `MPI_Abort(MPI_COMM_WORLD, 1)`, so that every rank ends instead
   * of the others waiting forever in a collective (default true).
   */
  abortOnUncaughtError?: boolean;
  /**
   * At a zero-status exit, how long to wait for every rank to reach its exit
   * before aborting the job (default: `WEBMOE_MPI_EXIT_TIMEOUT_S`, else 30 s).
   */
  exitTimeoutS?: number;
}

/**
 * A {@link HostTransport} over `MPI_COMM_WORLD` (one rank per process), plus
 * what a launcher tells a rank about itself. The collectives block the
 * event loop while MPI runs (koffi calls are synchronous) and resolve at once.
 */
export interface MpiTransport extends HostTransport {
  /** Which MPI library was loaded. */
  readonly implementation: MpiImplementation;
  /** The path or soname of the loaded library. */
  readonly libraryPath: string;
  /** This rank's index among the ranks of its host (picks the GPU; see docs/DISTRIBUTED.md). */
  readonly localRank: number;
  /** Ends every rank of the job (`MPI_Abort`); never returns. */
  abort(code?: number): never;
  /** `MPI_Finalize` (also run at a zero-status process exit when this transport initialised MPI; a non-zero exit aborts the job instead). */
  finalize(): void;
}

/** The node-local rank a launcher exports: Open MPI `OMPI_COMM_WORLD_LOCAL_RANK`, MPICH/Intel `MPI_LOCALRANKID`, PMI `PMI_LOCAL_RANK`; undefined when none is set. @example `localRankFromEnv({ MPI_LOCALRANKID: '1' }) // 1` */
export function localRankFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): number | undefined {
  for (const k of ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'PMI_LOCAL_RANK']) {
    const v = env[k];
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

const INT_MAX = 0x7fffffff;

class Mpi implements MpiTransport {
  readonly rank: number;
  readonly size: number;
  readonly implementation: MpiImplementation;
  readonly libraryPath: string;
  readonly localRank: number;
  private finalized = false;
  /** A duplicate of MPI_COMM_WORLD for the exit barrier: it can never match a collective of the work itself. */
  private readonly exitComm: number | bigint;

  constructor(private readonly mpi: MpiLib, private readonly ownsInit: boolean) {
    this.implementation = mpi.impl;
    this.libraryPath = mpi.path;
    const out = new Int32Array(1);
    this.check('MPI_Comm_rank', mpi.Comm_rank(mpi.COMM_WORLD, out));
    this.rank = out[0];
    this.check('MPI_Comm_size', mpi.Comm_size(mpi.COMM_WORLD, out));
    this.size = out[0];
    const dup = new Uint8Array(8);
    this.check('MPI_Comm_dup', mpi.Comm_dup(mpi.COMM_WORLD, dup));
    this.exitComm = mpi.handleAt(dup);
    this.localRank = localRankFromEnv() ?? this.localRankFromHostnames();
  }

  private check(what: string, rc: number): void {
    if (rc !== 0) throw new MpiError('MPI_CALL', `${what} on rank ${this.rank ?? '?'}: expected MPI_SUCCESS (0), got error code ${rc}`);
  }

  private live(what: string): void {
    if (this.finalized) throw new MpiError('FINALIZED', `${what}: expected an initialised MPI, got one already finalized`);
  }

  /** Ranks before this one on the same host (an allgather of host names). */
  private localRankFromHostnames(): number {
    const names = this.gather(new TextEncoder().encode(hostname())).map((b) => new TextDecoder().decode(b));
    return names.slice(0, this.rank).filter((h) => h === names[this.rank]).length;
  }

  /** MPI_Alltoall of one int per rank. */
  private exchangeCounts(counts: Int32Array): Int32Array {
    const recv = new Int32Array(this.size);
    const u8 = (a: Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    this.check('MPI_Alltoall', this.mpi.Alltoall(u8(counts), 1, this.mpi.INT, u8(recv), 1, this.mpi.INT, this.mpi.COMM_WORLD));
    return recv;
  }

  private displs(counts: Int32Array, what: string): { displs: Int32Array; total: number } {
    const displs = new Int32Array(counts.length);
    let total = 0;
    for (let i = 0; i < counts.length; i++) {
      displs[i] = total;
      total += counts[i];
    }
    if (total > INT_MAX) throw new MpiError('TOO_LARGE', `${what} on rank ${this.rank}: expected at most ${INT_MAX} bytes in one call (MPI int counts), got ${total}`);
    return { displs, total };
  }

  allToAllv(send: Uint8Array, sendCounts: readonly number[]): Promise<{ recv: Uint8Array; recvCounts: number[] }> {
    this.live('allToAllv');
    if (sendCounts.length !== this.size) throw new MpiError('BAD_COUNTS', `allToAllv sendCounts on rank ${this.rank}: expected ${this.size} counts, got ${sendCounts.length}`);
    for (const c of sendCounts) if (!Number.isInteger(c) || c < 0 || c > INT_MAX) throw new MpiError('BAD_COUNTS', `allToAllv sendCounts on rank ${this.rank}: expected integers in [0, ${INT_MAX}], got ${c}`);
    const sc = Int32Array.from(sendCounts);
    const { displs: sd, total } = this.displs(sc, 'allToAllv send');
    if (total !== send.byteLength) throw new MpiError('BAD_COUNTS', `allToAllv sendCounts on rank ${this.rank}: expected a sum of ${send.byteLength} bytes, got ${total}`);
    const rc = this.exchangeCounts(sc);
    const { displs: rd, total: rtotal } = this.displs(rc, 'allToAllv receive');
    const recv = new Uint8Array(rtotal);
    const m = this.mpi;
    this.check('MPI_Alltoallv', m.Alltoallv(send, sc, sd, m.BYTE, recv, rc, rd, m.BYTE, m.COMM_WORLD));
    return Promise.resolve({ recv, recvCounts: Array.from(rc) });
  }

  private gather(send: Uint8Array): Uint8Array[] {
    this.live('allGatherv');
    if (send.byteLength > INT_MAX) throw new MpiError('TOO_LARGE', `allGatherv on rank ${this.rank}: expected at most ${INT_MAX} bytes, got ${send.byteLength}`);
    const m = this.mpi;
    const lens = new Int32Array(this.size);
    const mine = Int32Array.of(send.byteLength);
    this.check('MPI_Allgather', m.Allgather(new Uint8Array(mine.buffer), 1, m.INT, new Uint8Array(lens.buffer), 1, m.INT, m.COMM_WORLD));
    const { displs, total } = this.displs(lens, 'allGatherv receive');
    const recv = new Uint8Array(total);
    this.check('MPI_Allgatherv', m.Allgatherv(send, send.byteLength, m.BYTE, recv, lens, displs, m.BYTE, m.COMM_WORLD));
    return Array.from(lens, (len, r) => recv.subarray(displs[r], displs[r] + len));
  }

  allGatherv(send: Uint8Array): Promise<Uint8Array[]> {
    return Promise.resolve(this.gather(send));
  }

  abort(code = 1): never {
    this.drainedAbort(code);
    process.exit(code); // MPI_Abort does not return; in case an implementation does
  }

  /**
   * MPI_Abort after ABORT_DRAIN_MS: MPI_Abort ends every rank at once, and the launcher may then drop what this rank
   * wrote to stderr just before (the error that caused the abort; seen once in CI under load: an empty stderr from
   * `mpiexec -n 3` where every rank had written its ShardingError), so its output forwarding gets a moment first.
   */
  private drainedAbort(code: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ABORT_DRAIN_MS);
    this.mpi.Abort(this.mpi.COMM_WORLD, code);
  }

  finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    const flag = new Int32Array(1);
    this.mpi.Finalized(flag);
    if (!flag[0]) this.check('MPI_Finalize', this.mpi.Finalize());
  }

  /**
   * At exit: a non-zero exit code while MPI is up aborts the job (the other
   * ranks may be waiting in a collective for this one). A zero exit first
   * waits (non-blocking barrier on a duplicate of MPI_COMM_WORLD, so that it
   * cannot be matched with the others' pending collectives; polled) up to `exitTimeoutS` for every rank
   * to reach its exit too, then finalizes; a rank that exits while the others
   * still compute (a bug) aborts the job after that time instead of leaving
   * them, and itself in MPI_Finalize, waiting forever.
   */
  exitHook(code: number, exitTimeoutS: number): void {
    if (this.finalized) return;
    const m = this.mpi;
    if (code !== 0) {
      process.stderr.write(`rank ${this.rank}: exiting with code ${code} while MPI is running; MPI_Abort\n`);
      this.drainedAbort(code);
    }
    if (!this.ownsInit) return;
    const req = new Uint8Array(8);
    const flag = new Int32Array(1);
    const status = new Uint8Array(64);
    this.check('MPI_Ibarrier', m.Ibarrier(this.exitComm, req));
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + exitTimeoutS * 1000;
    for (;;) {
      this.check('MPI_Test', m.Test(req, flag, status));
      if (flag[0]) break;
      if (Date.now() > deadline) {
        process.stderr.write(`rank ${this.rank}: exiting, but the other ranks did not reach their exit within ${exitTimeoutS} s (still in a collective?); MPI_Abort\n`);
        m.Abort(m.COMM_WORLD, 1);
      }
      Atomics.wait(nap, 0, 0, 2); // 2 ms
    }
    this.finalize();
  }
}

let current: Mpi | undefined;

/**
 * Initialises MPI (`MPI_Init_thread`, FUNNELED: only the main thread calls
 * MPI) unless it already is, and returns this process's rank of
 * `MPI_COMM_WORLD` as a {@link HostTransport}. One transport per process
 * (a second call returns the same one). Run the program under `mpiexec -n N`;
 * started alone it is a single rank (size 1).
 *
 * @example
 * ```ts
 * const tr = createMpiTransport();
 * const parts = await tr.allGatherv(new TextEncoder().encode(`rank ${tr.rank}`));
 * ```
 */
export function createMpiTransport(opts: MpiTransportOptions = {}): MpiTransport {
  if (current) return current;
  const mpi = opts.lib ?? loadLibMpi();
  const flag = new Int32Array(1);
  if (mpi.Initialized(flag) !== 0) throw new MpiError('MPI_CALL', 'MPI_Initialized: expected MPI_SUCCESS, got an error code');
  const ownsInit = !flag[0];
  if (ownsInit) {
    const provided = new Int32Array(1);
    const rc = mpi.Init_thread(null, null, mpi.THREAD_FUNNELED, provided);
    if (rc !== 0) throw new MpiError('MPI_CALL', `MPI_Init_thread (${mpi.path}): expected MPI_SUCCESS (0), got error code ${rc}`);
  }
  const t = new Mpi(mpi, ownsInit);
  current = t;
  const envTimeout = Number(process.env.WEBMOE_MPI_EXIT_TIMEOUT_S);
  const exitTimeoutS = opts.exitTimeoutS ?? (envTimeout > 0 ? envTimeout : 30);
  process.on('exit', (code) => t.exitHook(code, exitTimeoutS));
  if (opts.abortOnUncaughtError ?? true) {
    const die = (e: unknown) => {
      const err = e as Error;
      process.stderr.write(`rank ${t.rank}: uncaught ${err?.name ?? 'error'}: ${err?.message ?? String(e)}; MPI_Abort\n`);
      t.abort(1);
    };
    process.on('uncaughtException', die);
    process.on('unhandledRejection', die);
  }
  return t;
}
