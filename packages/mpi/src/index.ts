export { VERSION } from './version.js';
export { MpiError, type MpiErrorCode } from './errors.js';
export { loadLibMpi, libmpiCandidates, LIBMPI_CANDIDATES, INSTALL_HINT, type MpiLib, type MpiImplementation } from './lib.js';
export { createMpiTransport, localRankFromEnv, type MpiTransport, type MpiTransportOptions } from './transport.js';
