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
  constructor(code: string, message: string) {
    super(message);
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
