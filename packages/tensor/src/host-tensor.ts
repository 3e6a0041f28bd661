import type { DType, HostArray } from './dtype.js';
import { DTYPES, allocHost, isDType } from './dtype.js';
import { toFloat32, fromFloat32 } from './convert.js';
import { DTypeError, ShapeError, ValueError } from './errors.js';

/** Number of elements of a shape. @example `numel([2, 3]) // 6` */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that a shape is a list of non-negative integers. @example `checkShape('x', [2, 3])` */
export function checkShape(what: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ValueError(`${what} shape`, 'a list of non-negative integers', shape);
  }
}

/** Whether two shapes are equal. @example `shapeEquals([2], [2]) // true` */
export function shapeEquals(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws a ShapeError unless `got` equals `expected`. @example `expectShape('x', [4, 8], t.shape)` */
export function expectShape(what: string, expected: readonly number[], got: readonly number[]): void {
  if (!shapeEquals(expected, got)) throw new ShapeError(what, expected, got);
}

/**
 * A tensor in host memory: a dtype, a shape and the host array that holds it
 * (bit patterns for float16, bfloat16 and fp8).
 *
 * @example
 * ```ts
 * const x = HostTensor.fromFloat32([2, 2], new Float32Array([1, 2, 3, 4]), 'bfloat16');
 * x.toFloat32() // Float32Array [1, 2, 3, 4]
 * ```
 */
export class HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: HostArray;

  constructor(dtype: DType, shape: readonly number[], data?: HostArray) {
    if (!isDType(dtype)) throw new DTypeError('HostTensor', 'a dtype of the table', String(dtype));
    checkShape('HostTensor', shape);
    const n = numel(shape);
    const d = data ?? allocHost(dtype, n);
    if (d.length !== n) throw new ShapeError(`HostTensor data length (${dtype})`, `${n} elements for [${shape.join(', ')}]`, `${d.length} elements`);
    const want = DTYPES[dtype].host;
    if (d.constructor.name !== want) throw new DTypeError('HostTensor data array', want, d.constructor.name);
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = d;
  }

  /** Builds a tensor of `dtype` from f32 values (rounded to nearest even). */
  static fromFloat32(shape: readonly number[], values: ArrayLike<number>, dtype: DType = 'float32'): HostTensor {
    return new HostTensor(dtype, shape, fromFloat32(dtype, values));
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }
  /** Bytes of the data in its storage type. */
  get byteLength(): number {
    return this.size * DTYPES[this.dtype].bytes;
  }
  /** The values as f32. */
  toFloat32(): Float32Array {
    return toFloat32(this.dtype, this.data);
  }
  /** The raw bytes in storage order (little-endian). */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }
  /** The same data under another shape with the same element count. */
  reshape(shape: readonly number[]): HostTensor {
    checkShape('reshape', shape);
    if (numel(shape) !== this.size) throw new ShapeError('reshape', `${this.size} elements`, shape);
    return new HostTensor(this.dtype, shape, this.data);
  }
  /** A copy converted to `dtype` through f32 (round to nearest even). */
  cast(dtype: DType): HostTensor {
    if (dtype === this.dtype) return new HostTensor(dtype, this.shape, this.data.slice() as HostArray);
    return HostTensor.fromFloat32(this.shape, this.toFloat32(), dtype);
  }
}
