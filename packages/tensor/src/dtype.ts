/** The storage dtypes of the WebMoE stack (MAX / PyTorch names). */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float8_e4m3fn'
  | 'float8_e5m2'
  | 'int8'
  | 'uint8'
  | 'int32'
  | 'uint32';

/** The host array a dtype is viewed through (raw bit patterns for bf16 / f16 / fp8). */
export type HostArray = Float32Array | Uint16Array | Uint8Array | Int8Array | Int32Array | Uint32Array;

/** One row of the dtype table. */
export interface DTypeInfo {
  readonly name: DType;
  /** Bytes per element. */
  readonly bytes: number;
  /** WGSL type the GPU buffer is declared with. Packed types are stored in `u32`. */
  readonly wgslStorage: 'f32' | 'u32' | 'i32' | 'f16';
  /** Type the kernels compute in. */
  readonly compute: 'f32' | 'i32' | 'u32';
  /** Values per 32-bit word in GPU storage. */
  readonly perU32: number;
  /** Host typed-array view (bit patterns for float16, bfloat16 and fp8). */
  readonly host: 'Float32Array' | 'Uint16Array' | 'Uint8Array' | 'Int8Array' | 'Int32Array' | 'Uint32Array';
  /** Whether the dtype is a floating-point format. */
  readonly isFloat: boolean;
  /** safetensors dtype string. */
  readonly safetensors: string;
}

/**
 * The dtype table: each dtype is one row (bytes, WGSL storage, compute type,
 * values per u32, host view). bfloat16 and fp8 live packed in `u32` on the GPU.
 *
 * @example
 * ```ts
 * DTYPES.bfloat16.perU32 // 2
 * ```
 */
export const DTYPES: Readonly<Record<DType, DTypeInfo>> = Object.freeze({
  float32: { name: 'float32', bytes: 4, wgslStorage: 'f32', compute: 'f32', perU32: 1, host: 'Float32Array', isFloat: true, safetensors: 'F32' },
  float16: { name: 'float16', bytes: 2, wgslStorage: 'u32', compute: 'f32', perU32: 2, host: 'Uint16Array', isFloat: true, safetensors: 'F16' },
  bfloat16: { name: 'bfloat16', bytes: 2, wgslStorage: 'u32', compute: 'f32', perU32: 2, host: 'Uint16Array', isFloat: true, safetensors: 'BF16' },
  float8_e4m3fn: { name: 'float8_e4m3fn', bytes: 1, wgslStorage: 'u32', compute: 'f32', perU32: 4, host: 'Uint8Array', isFloat: true, safetensors: 'F8_E4M3' },
  float8_e5m2: { name: 'float8_e5m2', bytes: 1, wgslStorage: 'u32', compute: 'f32', perU32: 4, host: 'Uint8Array', isFloat: true, safetensors: 'F8_E5M2' },
  int8: { name: 'int8', bytes: 1, wgslStorage: 'u32', compute: 'i32', perU32: 4, host: 'Int8Array', isFloat: false, safetensors: 'I8' },
  uint8: { name: 'uint8', bytes: 1, wgslStorage: 'u32', compute: 'u32', perU32: 4, host: 'Uint8Array', isFloat: false, safetensors: 'U8' },
  int32: { name: 'int32', bytes: 4, wgslStorage: 'i32', compute: 'i32', perU32: 1, host: 'Int32Array', isFloat: false, safetensors: 'I32' },
  uint32: { name: 'uint32', bytes: 4, wgslStorage: 'u32', compute: 'u32', perU32: 1, host: 'Uint32Array', isFloat: false, safetensors: 'U32' },
});

/** All dtype names. */
export const ALL_DTYPES: readonly DType[] = Object.keys(DTYPES) as DType[];

/** True if `s` names a dtype of the table. @example `isDType('bfloat16') // true` */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

/** Allocates a zeroed host array of `n` elements of `dtype`. @example `allocHost('bfloat16', 4) // Uint16Array(4)` */
export function allocHost(dtype: DType, n: number): HostArray {
  switch (DTYPES[dtype].host) {
    case 'Float32Array': return new Float32Array(n);
    case 'Uint16Array': return new Uint16Array(n);
    case 'Uint8Array': return new Uint8Array(n);
    case 'Int8Array': return new Int8Array(n);
    case 'Int32Array': return new Int32Array(n);
    case 'Uint32Array': return new Uint32Array(n);
  }
}

/** Views raw bytes as the host array of `dtype` (no copy when aligned). @example `viewHost('float32', bytes)` */
export function viewHost(dtype: DType, bytes: Uint8Array): HostArray {
  const info = DTYPES[dtype];
  let b = bytes;
  if (b.byteOffset % info.bytes !== 0) b = b.slice();
  const n = b.byteLength / info.bytes;
  switch (info.host) {
    case 'Float32Array': return new Float32Array(b.buffer, b.byteOffset, n);
    case 'Uint16Array': return new Uint16Array(b.buffer, b.byteOffset, n);
    case 'Uint8Array': return new Uint8Array(b.buffer, b.byteOffset, n);
    case 'Int8Array': return new Int8Array(b.buffer, b.byteOffset, n);
    case 'Int32Array': return new Int32Array(b.buffer, b.byteOffset, n);
    case 'Uint32Array': return new Uint32Array(b.buffer, b.byteOffset, n);
  }
}
