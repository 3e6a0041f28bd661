import { WebMoEError } from '@webmoe/tensor';

/** The codes an {@link MpiError} carries. @example `if (e.code === ('NO_LIBMPI' satisfies MpiErrorCode)) ...` */
export type MpiErrorCode = 'NO_FFI' | 'NO_LIBMPI' | 'NO_SYMBOL' | 'MPI_CALL' | 'TOO_LARGE' | 'BAD_COUNTS' | 'FINALIZED';

/**
 * The MPI transport could not be set up or a call failed: no libmpi found
 * (the message says what to install), an MPI function returned an error
 * code, a message beyond MPI's 32-bit counts, counts that do not match the
 * buffer. The message says what was expected and what came.
 *
 * @example
 * ```ts
 * try { createMpiTransport(); } catch (e) { if (e instanceof MpiError && e.code === 'NO_LIBMPI') console.error(e.message); }
 * ```
 */
export class MpiError extends WebMoEError {
  declare readonly code: MpiErrorCode;
  constructor(code: MpiErrorCode, message: string) {
    super(code, message);
  }
}
