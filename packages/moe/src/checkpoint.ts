import { DTYPES, HostTensor, viewHost, type DType, type HostArray } from '@webmoe/tensor';
import { CheckpointError } from './errors.js';

/** The dtype and shape of a checkpoint tensor (from the safetensors header, before reading it). */
export interface TensorInfo {
  dtype: DType;
  shape: readonly number[];
}

/**
 * What the HF MoE loader reads: `config.json` and named tensors, with their
 * dtype and shape known before any data is read (so that bad checkpoints
 * fail before anything is allocated).
 *
 * @example
 * ```ts
 * const ck = await openHFCheckpoint(filesFromMap(new Map([['config.json', cfgBytes], ['model.safetensors', stBytes]])));
 * ck.info('model.layers.0.mlp.gate.weight') // { dtype: 'float32', shape: [8, 64] }
 * ```
 */
export interface MoECheckpoint {
  /** Every tensor name of the checkpoint. */
  readonly tensorNames: readonly string[];
  /** The parsed config.json. */
  readonly config: unknown;
  info(name: string): TensorInfo | undefined;
  /** Reads one tensor in its storage dtype. */
  read(name: string): Promise<HostTensor>;
}

/** Where checkpoint files come from: a function returning a file's bytes, or null when absent. */
export interface CheckpointFiles {
  /** A description for error messages (a directory, a URL). */
  readonly where: string;
  readFile(path: string): Promise<Uint8Array | null>;
}

/**
 * Checkpoint files from an in-memory map (browser uploads, tests).
 *
 * @example
 * ```ts
 * const files = filesFromMap(new Map([['config.json', bytes1], ['model.safetensors', bytes2]]));
 * ```
 */
export function filesFromMap(m: ReadonlyMap<string, Uint8Array>, where = 'memory'): CheckpointFiles {
  return { where, readFile: async (p) => m.get(p) ?? null };
}

/**
 * Checkpoint files from a base URL (`fetch`); 404 means absent.
 *
 * @example
 * ```ts
 * const files = filesFromUrl('https://example.com/mixtral-tiny/');
 * ```
 */
export function filesFromUrl(base: string, init?: RequestInit): CheckpointFiles {
  const b = base.endsWith('/') ? base : base + '/';
  return {
    where: b,
    readFile: async (p) => {
      const r = await fetch(b + p, init);
      if (r.status === 404) return null;
      if (!r.ok) throw new CheckpointError(b + p, 'an HTTP 200 response', `HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
  };
}

const ST_TO_DTYPE = new Map<string, DType>(Object.values(DTYPES).map((d) => [d.safetensors, d.name]));

interface Entry extends TensorInfo {
  file: string;
  start: number;
  end: number;
}

function parseHeader(file: string, bytes: Uint8Array, into: Map<string, Entry>): number {
  if (bytes.byteLength < 8) throw new CheckpointError(file, 'a safetensors file (8-byte header length)', `${bytes.byteLength} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new CheckpointError(file, `a header of at most ${bytes.byteLength - 8} bytes`, `${n} bytes`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CheckpointError(file, 'a JSON safetensors header', (e as Error).message);
  }
  const dataLen = bytes.byteLength - 8 - n;
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = ST_TO_DTYPE.get(v.dtype);
    if (!dtype) throw new CheckpointError(name, `a dtype of ${[...ST_TO_DTYPE.keys()].join(', ')}`, String(v.dtype));
    const [s, e] = v.data_offsets;
    const count = v.shape.reduce((a, b) => a * b, 1);
    if (e - s !== count * DTYPES[dtype].bytes || e > dataLen || s < 0) throw new CheckpointError(name, `${count * DTYPES[dtype].bytes} bytes inside ${file}`, `offsets [${s}, ${e}]`);
    into.set(name, { dtype, shape: v.shape, file, start: 8 + n + s, end: 8 + n + e });
  }
  return n;
}

/**
 * Opens a HuggingFace checkpoint: `config.json` plus `model.safetensors`, or
 * the shards listed in `model.safetensors.index.json`.
 *
 * @example
 * ```ts
 * const ck = await openHFCheckpoint(filesFromUrl('/models/olmoe-tiny/'));
 * ```
 */
export async function openHFCheckpoint(files: CheckpointFiles): Promise<MoECheckpoint> {
  const cfgBytes = await files.readFile('config.json');
  if (!cfgBytes) throw new CheckpointError(`${files.where}config.json`, 'a config.json file', 'none');
  let config: unknown;
  try {
    config = JSON.parse(new TextDecoder().decode(cfgBytes));
  } catch (e) {
    throw new CheckpointError('config.json', 'valid JSON', (e as Error).message);
  }
  const entries = new Map<string, Entry>();
  const data = new Map<string, Uint8Array>();
  const index = await files.readFile('model.safetensors.index.json');
  let shards: string[];
  if (index) {
    let wm: Record<string, string>;
    try {
      wm = JSON.parse(new TextDecoder().decode(index)).weight_map;
    } catch (e) {
      throw new CheckpointError('model.safetensors.index.json', 'valid JSON', (e as Error).message);
    }
    if (typeof wm !== 'object' || wm === null) throw new CheckpointError('model.safetensors.index.json', 'a weight_map object', typeof wm);
    shards = [...new Set(Object.values(wm))];
  } else shards = ['model.safetensors'];
  for (const s of shards) {
    const b = await files.readFile(s);
    if (!b) throw new CheckpointError(`${files.where}${s}`, 'a safetensors file', 'none');
    parseHeader(s, b, entries);
    data.set(s, b);
  }
  return {
    tensorNames: [...entries.keys()],
    config,
    info: (name) => {
      const e = entries.get(name);
      return e && { dtype: e.dtype, shape: e.shape };
    },
    read: async (name) => {
      const e = entries.get(name);
      if (!e) throw new CheckpointError(name, 'present in the checkpoint', 'missing');
      const bytes = data.get(e.file)!.slice(e.start, e.end);
      return new HostTensor(e.dtype, e.shape, viewHost(e.dtype, bytes) as HostArray);
    },
  };
}

/**
 * Reads every tensor of a safetensors file held in memory (storage dtypes kept).
 *
 * @example
 * ```ts
 * const t = parseSafetensors(bytes).get('input'); // HostTensor
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, file = 'safetensors buffer'): Map<string, HostTensor> {
  const entries = new Map<string, Entry>();
  parseHeader(file, bytes, entries);
  const out = new Map<string, HostTensor>();
  for (const [name, e] of entries) out.set(name, new HostTensor(e.dtype, e.shape, viewHost(e.dtype, bytes.slice(e.start, e.end)) as HostArray));
  return out;
}

/**
 * Encodes tensors as a safetensors file (header padded to 8 bytes, data in
 * insertion order, storage dtypes kept).
 *
 * @example
 * ```ts
 * const bytes = encodeSafetensors(new Map([['output', y]]));
 * ```
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: DTYPES[t.dtype].safetensors, shape: t.shape, data_offsets: [off, off + t.byteLength] };
    off += t.byteLength;
  }
  const json = JSON.stringify(header);
  const raw = new TextEncoder().encode(json);
  const hb = new TextEncoder().encode(json + ' '.repeat((8 - (raw.byteLength % 8)) % 8));
  const out = new Uint8Array(8 + hb.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  out.set(hb, 8);
  let p = 8 + hb.byteLength;
  for (const t of tensors.values()) {
    out.set(t.bytes(), p);
    p += t.byteLength;
  }
  return out;
}
