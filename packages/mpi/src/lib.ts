import { createRequire } from 'node:module';
import { MpiError } from './errors.js';

/** Which MPI library was loaded; decides how predefined handles are resolved. */
export type MpiImplementation = 'mpich' | 'openmpi' | 'mpi-abi';

/** The search order after `WEBMOE_LIBMPI`: MPICH (and its ABI-compatible Intel MPI / Cray MPICH), Open MPI, the MPI 5 standard ABI. */
export const LIBMPI_CANDIDATES: readonly string[] = ['libmpich.so.12', 'libmpi.so.40', 'libmpi_abi.so.0', 'libmpi_abi.so'];

/**
 * The candidates in the order to try them: the launcher's own library first
 * when the environment names it (Open MPI's `mpirun` exports `OMPI_*`; a rank
 * must use the library of the launcher that started it when several MPIs are
 * installed), then {@link LIBMPI_CANDIDATES}.
 * @example `libmpiCandidates({ OMPI_COMM_WORLD_SIZE: '2' })[0] // 'libmpi.so.40'`
 */
export function libmpiCandidates(env: Record<string, string | undefined> = process.env): string[] {
  const first = env.OMPI_COMM_WORLD_SIZE !== undefined ? ['libmpi.so.40'] : env.PMI_SIZE !== undefined || env.PMI_RANK !== undefined ? ['libmpich.so.12'] : [];
  return [...first, ...LIBMPI_CANDIDATES.filter((c) => !first.includes(c))];
}

/** What to install when no library loads (one place: the error message and the README say the same). */
export const INSTALL_HINT = 'install an MPI implementation: `apt install mpich` (Debian/Ubuntu) or `apt install openmpi-bin`, or set WEBMOE_LIBMPI to the path of libmpi';

/**
 * The bound MPI functions and predefined handles of one loaded library. A
 * handle is a number (MPICH: a 32-bit int) or a bigint (Open MPI: the
 * address of an exported symbol; MPI 5 ABI: a small pointer-sized constant).
 */
export interface MpiLib {
  readonly impl: MpiImplementation;
  readonly path: string;
  readonly COMM_WORLD: number | bigint;
  readonly BYTE: number | bigint;
  readonly INT: number | bigint;
  readonly THREAD_FUNNELED: number;
  Initialized(flag: Int32Array): number;
  Finalized(flag: Int32Array): number;
  Init_thread(argc: null, argv: null, required: number, provided: Int32Array): number;
  Comm_rank(comm: number | bigint, out: Int32Array): number;
  Comm_size(comm: number | bigint, out: Int32Array): number;
  Alltoall(send: Uint8Array, sc: number, st: number | bigint, recv: Uint8Array, rc: number, rt: number | bigint, comm: number | bigint): number;
  Alltoallv(send: Uint8Array, sc: Int32Array, sd: Int32Array, st: number | bigint, recv: Uint8Array, rc: Int32Array, rd: Int32Array, rt: number | bigint, comm: number | bigint): number;
  Allgather(send: Uint8Array, sc: number, st: number | bigint, recv: Uint8Array, rc: number, rt: number | bigint, comm: number | bigint): number;
  Allgatherv(send: Uint8Array, sc: number, st: number | bigint, recv: Uint8Array, rc: Int32Array, rd: Int32Array, rt: number | bigint, comm: number | bigint): number;
  /** `out`: 8 bytes that receive the new communicator's handle (read it with {@link MpiLib.handleAt}). */
  Comm_dup(comm: number | bigint, out: Uint8Array): number;
  /** A handle written by MPI into `buf` (an int in MPICH, a pointer in Open MPI and the MPI 5 ABI). */
  handleAt(buf: Uint8Array): number | bigint;
  /** `req`: 8 bytes that receive the request handle (an int in MPICH, a pointer in Open MPI). */
  Ibarrier(comm: number | bigint, req: Uint8Array): number;
  /** `req` as Ibarrier filled it; `status`: a buffer of at least 64 bytes (larger than any MPI_Status). */
  Test(req: Uint8Array, flag: Int32Array, status: Uint8Array): number;
  Abort(comm: number | bigint, code: number): number;
  Finalize(): number;
}

type Koffi = typeof import('koffi');

function loadKoffi(): Koffi {
  try {
    return createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    throw new MpiError('NO_FFI', `koffi (the FFI package @webmoe/mpi calls libmpi through): expected it installed with @webmoe/mpi, got ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Which implementation a library is, from the symbols it exports. */
function detect(lib: ReturnType<Koffi['load']>): MpiImplementation {
  const has = (s: string) => {
    try {
      return !!lib.symbol(s);
    } catch {
      return false;
    }
  };
  if (has('ompi_mpi_comm_world')) return 'openmpi';
  if (has('MPI_Abi_get_version') || has('MPI_Abi_get_info')) return 'mpi-abi';
  return 'mpich';
}

/**
 * Finds and binds libmpi: `WEBMOE_LIBMPI` (a path or soname) first, then
 * {@link libmpiCandidates}. Throws an {@link MpiError} `NO_LIBMPI` naming
 * what was tried and what to install.
 *
 * @example
 * ```ts
 * const mpi = loadLibMpi(); // mpi.impl === 'mpich' with Debian's mpich package
 * ```
 */
export function loadLibMpi(env: Record<string, string | undefined> = process.env): MpiLib {
  const koffi = loadKoffi();
  const tried: string[] = [];
  const files = env.WEBMOE_LIBMPI ? [env.WEBMOE_LIBMPI] : libmpiCandidates(env);
  for (const file of files) {
    let lib: ReturnType<Koffi['load']>;
    try {
      lib = koffi.load(file);
    } catch (e) {
      tried.push(`${file} (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    return bind(lib, file, detect(lib));
  }
  const from = env.WEBMOE_LIBMPI ? `WEBMOE_LIBMPI=${env.WEBMOE_LIBMPI}` : LIBMPI_CANDIDATES.join(', ');
  throw new MpiError('NO_LIBMPI', `libmpi: expected one of ${from} to load, got none (${tried.join('; ')}); ${INSTALL_HINT}`);
}

function bind(lib: ReturnType<Koffi['load']>, path: string, impl: MpiImplementation): MpiLib {
  // MPICH: handles are C ints. Open MPI: pointers (the addresses of ompi_mpi_* objects). MPI 5 ABI: pointer-sized constants.
  const H = impl === 'mpich' ? 'int' : 'intptr_t';
  let COMM_WORLD: number | bigint;
  let BYTE: number | bigint;
  let INT: number | bigint;
  if (impl === 'mpich') {
    COMM_WORLD = 0x44000000;
    BYTE = 0x4c00010d;
    INT = 0x4c000405;
  } else if (impl === 'openmpi') {
    const addr = (s: string) => BigInt(lib.symbol(s) as bigint);
    COMM_WORLD = addr('ompi_mpi_comm_world');
    BYTE = addr('ompi_mpi_byte');
    INT = addr('ompi_mpi_int');
  } else {
    COMM_WORLD = 0x101n;
    BYTE = 0x247n;
    INT = 0x209n;
  }
  const f = (name: string, args: string[]) => {
    try {
      return lib.func(name, 'int', args);
    } catch (e) {
      throw new MpiError('NO_SYMBOL', `${path}: expected the MPI function ${name}, got ${(e as Error).message.split('\n')[0]}`);
    }
  };
  const Alltoall = f('MPI_Alltoall', ['void *', 'int', H, 'void *', 'int', H, H]);
  const Allgather = f('MPI_Allgather', ['void *', 'int', H, 'void *', 'int', H, H]);
  return {
    impl,
    path,
    COMM_WORLD,
    BYTE,
    INT,
    THREAD_FUNNELED: 1, // the same value in mpi.h of MPICH, Open MPI and the MPI 5 ABI
    Initialized: f('MPI_Initialized', ['int *']),
    Finalized: f('MPI_Finalized', ['int *']),
    Init_thread: f('MPI_Init_thread', ['void *', 'void *', 'int', 'int *']),
    Comm_rank: f('MPI_Comm_rank', [H, 'int *']),
    Comm_size: f('MPI_Comm_size', [H, 'int *']),
    Alltoall,
    Alltoallv: f('MPI_Alltoallv', ['void *', 'int *', 'int *', H, 'void *', 'int *', 'int *', H, H]),
    Allgather,
    Allgatherv: f('MPI_Allgatherv', ['void *', 'int', H, 'void *', 'int *', 'int *', H, H]),
    Comm_dup: f('MPI_Comm_dup', [H, 'void *']),
    handleAt: (buf: Uint8Array) => (impl === 'mpich' ? new DataView(buf.buffer, buf.byteOffset, 8).getInt32(0, true) : new DataView(buf.buffer, buf.byteOffset, 8).getBigInt64(0, true)),
    Ibarrier: f('MPI_Ibarrier', [H, 'void *']),
    Test: f('MPI_Test', ['void *', 'int *', 'void *']),
    Abort: f('MPI_Abort', [H, 'int']),
    Finalize: f('MPI_Finalize', []),
  } as MpiLib;
}
