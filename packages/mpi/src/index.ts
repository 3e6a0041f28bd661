// The public API of @webmoe/mpi (api/mpi.api.md is its report); test support
// (launching ranks with mpiexec) is in '@webmoe/mpi/testing'.
export { VERSION } from './version.js';
export { MpiError, type MpiErrorCode } from './errors.js';
export { loadLibMpi, libmpiCandidates, type MpiLib, type MpiImplementation } from './lib.js';
export { createMpiTransport, localRankFromEnv, type MpiTransport, type MpiTransportOptions } from './transport.js';
