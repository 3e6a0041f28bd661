// safetensors reader (validating, range reads only) and writer (byte-exact
// with the Python/Rust `safetensors` library). Browser-safe.
import type { DType } from './dtype.js';
import { DTYPES, viewHost } from './dtype.js';
import { HostTensor } from './host-tensor.js';
import { SafetensorsError } from './errors.js';
import type { ByteSource } from './byte-source.js';

/**
 * Every safetensors dtype string this package parses, with its element size,
 * in the order of the Rust library's `Dtype` enum (which fixes the writer's
 * tensor order). `dtype` is the table dtype for those that read as a
 * {@link HostTensor}; the others (BOOL, I16, U16, I64, U64, F64, F8_E8M0) are
 * read raw with {@link SafetensorsFile.readRaw}.
 *
 * @example
 * ```ts
 * ST_DTYPES.BF16.bytes // 2
 * ```
 */
export const ST_DTYPES: Readonly<Record<string, { readonly rank: number; readonly bytes: number; readonly dtype?: DType }>> = Object.freeze({
  BOOL: { rank: 0, bytes: 1 },
  U8: { rank: 4, bytes: 1, dtype: 'uint8' },
  I8: { rank: 5, bytes: 1, dtype: 'int8' },
  F8_E5M2: { rank: 6, bytes: 1, dtype: 'float8_e5m2' },
  F8_E4M3: { rank: 7, bytes: 1, dtype: 'float8_e4m3fn' },
  F8_E8M0: { rank: 8, bytes: 1 },
  I16: { rank: 9, bytes: 2 },
  U16: { rank: 10, bytes: 2 },
  F16: { rank: 11, bytes: 2, dtype: 'float16' },
  BF16: { rank: 12, bytes: 2, dtype: 'bfloat16' },
  I32: { rank: 13, bytes: 4, dtype: 'int32' },
  U32: { rank: 14, bytes: 4, dtype: 'uint32' },
  F32: { rank: 15, bytes: 4, dtype: 'float32' },
  F64: { rank: 16, bytes: 8 },
  I64: { rank: 17, bytes: 8 },
  U64: { rank: 18, bytes: 8 },
});

/**
 * Where a tensor lies in a safetensors file and what it is.
 * @example `const { shape, dtype, byteRange } = st.info('lm_head.weight');`
 */
export interface TensorInfo {
  readonly name: string;
  /** The safetensors dtype string, e.g. `BF16`. */
  readonly stDtype: string;
  /** The table dtype, or undefined for dtypes read only raw (BOOL, I64, ...). */
  readonly dtype: DType | undefined;
  readonly shape: readonly number[];
  /** `[begin, end)` relative to the start of the data section (as in the header). */
  readonly dataOffsets: readonly [number, number];
  /** `[begin, end)` absolute in the file. */
  readonly byteRange: readonly [number, number];
}

/**
 * A tensor as raw little-endian bytes plus its safetensors dtype string.
 * @example `const r: RawTensor = { stDtype: 'I64', shape: [1], bytes: new Uint8Array(8) };`
 */
export interface RawTensor {
  readonly stDtype: string;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** Largest header accepted (the Rust library's limit). @example `MAX_HEADER_BYTES // 100_000_000` */
export const MAX_HEADER_BYTES = 100_000_000;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/**
 * Parses and validates a safetensors header (the JSON text) against a data
 * section of `dataLen` bytes. Returns the tensors in file order and the
 * `__metadata__` map.
 */
function parseHeader(file: string, text: string, headerStart: number, dataLen: number): { tensors: TensorInfo[]; metadata: Record<string, string> | undefined } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError('BAD_HEADER', file, `expected a JSON header, got unparsable text (${(e as Error).message}): ${show(text.slice(0, 60))}`);
  }
  if (!isObj(json)) throw new SafetensorsError('BAD_HEADER', file, `expected a JSON object as header, got ${Array.isArray(json) ? 'an array' : typeof json}`);
  let metadata: Record<string, string> | undefined;
  const tensors: TensorInfo[] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObj(v)) throw new SafetensorsError('BAD_HEADER', file, `expected __metadata__ to be a map of strings, got ${show(v)}`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw new SafetensorsError('BAD_HEADER', file, `expected __metadata__.${k} to be a string, got ${show(s)}`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    if (!isObj(v)) throw new SafetensorsError('BAD_HEADER', file, `tensor ${name}: expected {dtype, shape, data_offsets}, got ${show(v)}`);
    const { dtype, shape, data_offsets: offs } = v;
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(ST_DTYPES, dtype)) {
      throw new SafetensorsError('UNKNOWN_DTYPE', file, `tensor ${name}: expected a dtype of ${Object.keys(ST_DTYPES).join(', ')}, got ${show(dtype)}`);
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
      throw new SafetensorsError('BAD_SHAPE', file, `tensor ${name}: expected a shape of non-negative integers, got ${show(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || (d as number) < 0) || offs[0] > offs[1]) {
      throw new SafetensorsError('BAD_OFFSETS', file, `tensor ${name}: expected data_offsets [begin, end] of integers with 0 <= begin <= end, got ${show(offs)}`);
    }
    const st = ST_DTYPES[dtype];
    let n = st.bytes;
    for (const d of shape as number[]) n *= d;
    const [b, e] = offs as [number, number];
    if (!Number.isSafeInteger(n) || e - b !== n) {
      throw new SafetensorsError(
        'BYTE_LENGTH_MISMATCH',
        file,
        `tensor ${name}: expected ${n} bytes (${dtype} [${(shape as number[]).join(', ')}]), got data_offsets [${b}, ${e}] = ${e - b} bytes`,
      );
    }
    tensors.push(
      Object.freeze({
        name,
        stDtype: dtype,
        dtype: st.dtype,
        shape: Object.freeze([...(shape as number[])]),
        dataOffsets: Object.freeze([b, e] as [number, number]),
        byteRange: Object.freeze([headerStart + b, headerStart + e] as [number, number]),
      }),
    );
  }
  const sorted = [...tensors].sort((x, y) => x.dataOffsets[0] - y.dataOffsets[0] || x.dataOffsets[1] - y.dataOffsets[1]);
  // A file cut short: the tensors tile [0, end) without gaps (as every writer
  // lays them out) but the data section is shorter than `end`.
  let tiled = true;
  let pos = 0;
  for (const t of sorted) {
    if (t.dataOffsets[0] !== pos) tiled = false;
    pos = Math.max(pos, t.dataOffsets[1]);
  }
  if (tiled && pos > dataLen) {
    const first = sorted.find((t) => t.dataOffsets[1] > dataLen)!;
    throw new SafetensorsError(
      'TRUNCATED',
      file,
      `expected a data section of ${pos} bytes (the header's tensors end there), got ${dataLen}; tensor ${first.name} [${first.dataOffsets.join(', ')}] lies past the end: the file is truncated`,
    );
  }
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.dataOffsets[1] > dataLen) {
      throw new SafetensorsError(
        'OFFSET_OUT_OF_RANGE',
        file,
        `tensor ${t.name}: expected data_offsets inside the data section [0, ${dataLen}], got [${t.dataOffsets.join(', ')}]`,
      );
    }
    if (t.dataOffsets[0] === t.dataOffsets[1]) continue;
    if (prev && t.dataOffsets[0] < prev.dataOffsets[1]) {
      throw new SafetensorsError(
        'OVERLAP',
        file,
        `tensor ${t.name} [${t.dataOffsets.join(', ')}] overlaps tensor ${prev.name} [${prev.dataOffsets.join(', ')}]; expected disjoint byte ranges`,
      );
    }
    prev = t;
  }
  return { tensors: sorted, metadata };
}

/**
 * One safetensors file opened over a {@link ByteSource}. `open` reads only the
 * 8-byte length and the JSON header and validates them (known dtypes,
 * shapes, offsets inside the data section, no overlaps, byte lengths equal
 * to shape x dtype size); `read` then fetches one tensor's bytes only.
 *
 * @example
 * ```ts
 * const st = await SafetensorsFile.open(bytesSource(bytes, 'model.safetensors'));
 * st.keys();                               // ['lm_head.weight', ...]
 * st.info('lm_head.weight').shape;         // [256, 64]
 * const w = await st.read('lm_head.weight'); // HostTensor float32
 * ```
 */
export class SafetensorsFile {
  /** The `__metadata__` string map, if the file has one. */
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** The source's name (used in messages). */
  readonly name: string;
  /** Byte length of the JSON header (including padding). */
  readonly headerLength: number;
  private readonly byName: Map<string, TensorInfo>;
  private readonly ordered: readonly TensorInfo[];

  private constructor(readonly source: ByteSource, name: string, headerLength: number, tensors: TensorInfo[], metadata: Record<string, string> | undefined) {
    this.name = name;
    this.headerLength = headerLength;
    this.ordered = Object.freeze(tensors);
    this.byName = new Map(tensors.map((t) => [t.name, t]));
    this.metadata = metadata ? Object.freeze({ ...metadata }) : undefined;
  }

  /** Opens and validates a safetensors file; throws {@link SafetensorsError} on any malformation. */
  static async open(source: ByteSource, name?: string): Promise<SafetensorsFile> {
    const file = name ?? source.name ?? 'safetensors';
    if (source.size < 8) throw new SafetensorsError('TRUNCATED', file, `expected at least 8 bytes (the header length), got ${source.size}`);
    const pre = await source.read(0, 8);
    const dv = new DataView(pre.buffer, pre.byteOffset, 8);
    const lo = dv.getUint32(0, true);
    const hi = dv.getUint32(4, true);
    const n = hi * 2 ** 32 + lo;
    if (n > source.size - 8 || n > MAX_HEADER_BYTES) {
      throw new SafetensorsError(
        'HEADER_TOO_LARGE',
        file,
        `expected a header length of at most ${Math.min(source.size - 8, MAX_HEADER_BYTES)} bytes (file size ${source.size}), got ${n}: truncated or not a safetensors file`,
      );
    }
    const hb = await source.read(8, n);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
    } catch {
      throw new SafetensorsError('BAD_HEADER', file, `expected a UTF-8 JSON header of ${n} bytes, got invalid UTF-8`);
    }
    if (!text.startsWith('{')) throw new SafetensorsError('BAD_HEADER', file, `expected the header to start with '{', got ${show(text.slice(0, 20))}`);
    const { tensors, metadata } = parseHeader(file, text, 8 + n, source.size - 8 - n);
    return new SafetensorsFile(source, file, n, tensors, metadata);
  }

  /** Tensor names in file (offset) order. */
  keys(): string[] {
    return this.ordered.map((t) => t.name);
  }
  /** Whether the file holds `name`. */
  has(name: string): boolean {
    return this.byName.has(name);
  }
  /** dtype, shape and byte range of `name`; {@link SafetensorsError} `MISSING_TENSOR` if absent. */
  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) {
      const near = this.keys().filter((k) => k.endsWith(name.split('.').pop() ?? name)).slice(0, 3);
      throw new SafetensorsError('MISSING_TENSOR', this.name, `expected a tensor named ${show(name)}, got none among ${this.byName.size} tensors${near.length ? ` (similar: ${near.join(', ')})` : ''}`);
    }
    return t;
  }
  /** All tensor infos in file order. */
  infos(): readonly TensorInfo[] {
    return this.ordered;
  }
  /** The raw bytes and safetensors dtype of `name` (any dtype, including BOOL/I64/F64). Reads only that tensor's range. */
  async readRaw(name: string): Promise<RawTensor> {
    const t = this.info(name);
    const bytes = await this.source.read(t.byteRange[0], t.byteRange[1] - t.byteRange[0]);
    return { stDtype: t.stDtype, shape: t.shape, bytes };
  }
  /**
   * `name` as a {@link HostTensor} (dtypes of the table); reads only that
   * tensor's range. Other dtypes give `UNSUPPORTED_DTYPE` (use `readRaw`).
   */
  async read(name: string): Promise<HostTensor> {
    const t = this.info(name);
    if (!t.dtype) {
      throw new SafetensorsError('UNSUPPORTED_DTYPE', this.name, `tensor ${name}: expected a dtype of ${Object.values(DTYPES).map((d) => d.safetensors).join(', ')} to read as HostTensor, got ${t.stDtype} (use readRaw)`);
    }
    const { bytes } = await this.readRaw(name);
    return new HostTensor(t.dtype, t.shape, viewHost(t.dtype, bytes));
  }
  /** Closes the underlying source. */
  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/** A tensor the writer accepts: a {@link HostTensor} or a {@link RawTensor}. @example `const t: SerializableTensor = await st.readRaw('x');` */
export type SerializableTensor = HostTensor | RawTensor;

function asRaw(name: string, t: SerializableTensor): RawTensor {
  if (t instanceof HostTensor) return { stDtype: DTYPES[t.dtype].safetensors, shape: t.shape, bytes: t.bytes() };
  const st = ST_DTYPES[t.stDtype];
  if (!st) throw new SafetensorsError('UNKNOWN_DTYPE', 'serializeSafetensors', `tensor ${name}: expected a dtype of ${Object.keys(ST_DTYPES).join(', ')}, got ${show(t.stDtype)}`);
  const n = t.shape.reduce((a, d) => a * d, st.bytes);
  if (n !== t.bytes.byteLength) throw new SafetensorsError('BYTE_LENGTH_MISMATCH', 'serializeSafetensors', `tensor ${name}: expected ${n} bytes for ${t.stDtype} [${t.shape.join(', ')}], got ${t.bytes.byteLength}`);
  return t;
}

/**
 * The header and tensor order of a safetensors file, as the Rust/Python
 * `safetensors` library lays it out: tensors sorted by dtype (descending in
 * the library's `Dtype` enum order, i.e. widest first) then by name; header
 * JSON `{"__metadata__":{...}, name: {"dtype","shape","data_offsets"}, ...}`
 * in that order with no spaces, padded with spaces to a multiple of 8.
 *
 * @example
 * ```ts
 * const { header, order } = planSafetensors({ w: HostTensor.fromFloat32([2], [1, 2]) });
 * ```
 */
export function planSafetensors(
  tensors: Readonly<Record<string, SerializableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): { header: Uint8Array; order: { name: string; bytes: Uint8Array }[]; dataLength: number } {
  const entries = Object.entries(tensors).map(([name, t]) => [name, asRaw(name, t)] as const);
  if (Object.prototype.hasOwnProperty.call(tensors, '__metadata__')) throw new SafetensorsError('BAD_HEADER', 'serializeSafetensors', 'expected tensor names other than __metadata__, got __metadata__');
  entries.sort(([an, a], [bn, b]) => ST_DTYPES[b.stDtype].rank - ST_DTYPES[a.stDtype].rank || (an < bn ? -1 : an > bn ? 1 : 0));
  const head: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError('BAD_HEADER', 'serializeSafetensors', `expected metadata.${k} to be a string, got ${show(v)}`);
    }
    head.__metadata__ = metadata;
  }
  let off = 0;
  const order: { name: string; bytes: Uint8Array }[] = [];
  for (const [name, t] of entries) {
    head[name] = { dtype: t.stDtype, shape: [...t.shape], data_offsets: [off, off + t.bytes.byteLength] };
    off += t.bytes.byteLength;
    order.push({ name, bytes: t.bytes });
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setUint32(0, padded % 2 ** 32, true);
  new DataView(header.buffer).setUint32(4, Math.floor(padded / 2 ** 32), true);
  header.set(json, 8);
  return { header, order, dataLength: off };
}

/**
 * Serialises tensors (and an optional `__metadata__` string map) to
 * safetensors bytes, laid out exactly as the Python `safetensors` library
 * writes them, so a file read and re-serialised comes back byte for byte.
 * Metadata keys keep their insertion order.
 *
 * @example
 * ```ts
 * const bytes = serializeSafetensors({ w: HostTensor.fromFloat32([2, 2], [1, 2, 3, 4], 'bfloat16') }, { format: 'pt' });
 * const st = await SafetensorsFile.open(bytesSource(bytes));
 * ```
 */
export function serializeSafetensors(tensors: Readonly<Record<string, SerializableTensor>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const { header, order, dataLength } = planSafetensors(tensors, metadata);
  const out = new Uint8Array(header.byteLength + dataLength);
  out.set(header, 0);
  let p = header.byteLength;
  for (const { bytes } of order) {
    out.set(bytes, p);
    p += bytes.byteLength;
  }
  return out;
}
