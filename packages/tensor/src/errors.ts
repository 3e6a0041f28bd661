/**
 * Base class of every error the WebMoE packages throw on bad input. The
 * message always says what was expected and what came.
 *
 * @example
 * ```ts
 * try { reshape(t, [3, 5]); } catch (e) { if (e instanceof WebMoEError) console.log(e.code); }
 * ```
 */
export class WebMoEError extends Error {
  /** A stable machine-readable code, e.g. `SHAPE_MISMATCH`. */
  readonly code: string;
  /** `options.cause`: the error this one explains (kept as `error.cause`). */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A shape that disagrees with what an operation needs. @example `throw new ShapeError('x', [4, 8], [4, 9])` */
export class ShapeError extends WebMoEError {
  constructor(what: string, expected: readonly (number | string)[] | string, got: readonly number[] | string) {
    const fmt = (s: readonly (number | string)[] | string) => (typeof s === 'string' ? s : `[${s.join(', ')}]`);
    super('SHAPE_MISMATCH', `${what}: expected shape ${fmt(expected)}, got ${fmt(got)}`);
  }
}

/** A dtype that an operation does not take. @example `throw new DTypeError('weight', ['float32'], 'int8')` */
export class DTypeError extends WebMoEError {
  constructor(what: string, expected: readonly string[] | string, got: string) {
    super('DTYPE_MISMATCH', `${what}: expected dtype ${typeof expected === 'string' ? expected : expected.join(' | ')}, got ${got}`);
  }
}

/** An argument outside its allowed range or set. @example `throw new ValueError('k', 'between 1 and 8', 9)` */
export class ValueError extends WebMoEError {
  constructor(what: string, expected: string, got: unknown) {
    super('BAD_VALUE', `${what}: expected ${expected}, got ${typeof got === 'string' ? got : JSON.stringify(got)}`);
  }
}

/** The codes a {@link SafetensorsError} carries. @example `if (e.code === ('OVERLAP' satisfies SafetensorsErrorCode)) ...` */
export type SafetensorsErrorCode =
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'BAD_HEADER'
  | 'UNKNOWN_DTYPE'
  | 'BAD_SHAPE'
  | 'BAD_OFFSETS'
  | 'OFFSET_OUT_OF_RANGE'
  | 'OVERLAP'
  | 'BYTE_LENGTH_MISMATCH'
  | 'MISSING_TENSOR'
  | 'MISSING_FILE'
  | 'BAD_INDEX'
  | 'BAD_JSON'
  | 'UNSUPPORTED_DTYPE';

/**
 * A safetensors file, shard index or checkpoint directory that is malformed
 * or lacks what was asked for. `code` says which rule broke; the message names
 * the file, the tensor and what was expected versus what came.
 *
 * @example
 * ```ts
 * try { await SafetensorsFile.open(src); } catch (e) {
 *   if (e instanceof SafetensorsError && e.code === 'TRUNCATED') console.log(e.message);
 * }
 * ```
 */
export class SafetensorsError extends WebMoEError {
  declare readonly code: SafetensorsErrorCode;
  /** The file (source name) the problem is in. */
  readonly file: string;
  constructor(code: SafetensorsErrorCode, file: string, message: string) {
    super(code, `${file}: ${message}`);
    this.file = file;
  }
}

/** The codes a {@link ByteSourceError} carries. @example `if (e.code === ('NOT_FOUND' satisfies ByteSourceErrorCode)) ...` */
export type ByteSourceErrorCode = 'OUT_OF_RANGE' | 'NOT_FOUND' | 'HTTP_ERROR' | 'SHORT_READ' | 'CLOSED';

/**
 * A byte source that cannot give the bytes asked for: a read outside the
 * source, a missing file or URL, an HTTP failure, a short read.
 *
 * @example
 * ```ts
 * await bytesSource(new Uint8Array(4)).read(2, 8); // throws ByteSourceError OUT_OF_RANGE
 * ```
 */
export class ByteSourceError extends WebMoEError {
  declare readonly code: ByteSourceErrorCode;
  constructor(code: ByteSourceErrorCode, source: string, message: string) {
    super(code, `${source}: ${message}`);
  }
}
