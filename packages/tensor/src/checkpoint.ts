// Checkpoint directories (memory, URL base; Node directories in node.ts) and
// sharded safetensors checkpoints. Browser-safe.
import type { ByteSource, UrlSourceOptions } from './byte-source.js';
import { blobSource, bytesSource, urlSource } from './byte-source.js';
import { ByteSourceError, SafetensorsError } from './errors.js';
import type { HostTensor } from './host-tensor.js';
import type { RawTensor, TensorInfo } from './safetensors.js';
import { SafetensorsFile } from './safetensors.js';

/**
 * The files of a checkpoint directory, wherever they live: memory (browser
 * drops), a URL base, a local directory (`dirSource` in `@webmoe/tensor/node`).
 *
 * @example
 * ```ts
 * const dir = memorySource({ 'config.json': cfgBytes, 'model.safetensors': file });
 * await dir.exists('model.safetensors'); // true
 * ```
 */
export interface CheckpointSource {
  /** A name for messages (directory path or base URL). */
  readonly name?: string;
  /** File names, when the source can list them. */
  list?(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /** A byte source over file `name`; {@link ByteSourceError} `NOT_FOUND` if absent. */
  open(name: string): Promise<ByteSource>;
  /** File `name` as UTF-8 text; {@link ByteSourceError} `NOT_FOUND` if absent. */
  readText(name: string): Promise<string>;
}

/**
 * A checkpoint directory held in memory: file name -> bytes or Blob/File
 * (e.g. built from a browser `FileList`).
 *
 * @example
 * ```ts
 * const files = Object.fromEntries([...input.files!].map((f) => [f.name, f]));
 * const ck = await Checkpoint.open(memorySource(files));
 * ```
 */
export function memorySource(files: Readonly<Record<string, Uint8Array | ArrayBuffer | Blob>>, name = 'memory'): CheckpointSource {
  const get = (f: string) => {
    if (!Object.prototype.hasOwnProperty.call(files, f)) {
      throw new ByteSourceError('NOT_FOUND', `${name}/${f}`, `expected a file named ${JSON.stringify(f)}, got none among ${Object.keys(files).length} files`);
    }
    return files[f];
  };
  const src = (f: string): ByteSource => {
    const v = get(f);
    return v instanceof Uint8Array || v instanceof ArrayBuffer ? bytesSource(v, f) : blobSource(v, f);
  };
  return {
    name,
    async list() {
      return Object.keys(files);
    },
    async exists(f) {
      return Object.prototype.hasOwnProperty.call(files, f);
    },
    async open(f) {
      return src(f);
    },
    async readText(f) {
      const s = src(f);
      return new TextDecoder().decode(await s.read(0, s.size));
    },
  };
}

/**
 * A checkpoint directory behind a base URL (e.g.
 * `https://huggingface.co/org/model/resolve/main/`). Files are read with HTTP
 * range requests ({@link urlSource}); `exists` uses HEAD (404 = absent).
 *
 * @example
 * ```ts
 * const ck = await Checkpoint.open(urlDirSource('/models/olmoe-tiny/'));
 * ```
 */
export function urlDirSource(baseUrl: string, opts: Omit<UrlSourceOptions, 'name'> = {}): CheckpointSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const f = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a));
  const url = (n: string) => base + n.split('/').map(encodeURIComponent).join('/');
  return {
    name: base,
    async exists(n) {
      const r = await f(url(n), { ...opts.init, method: 'HEAD' });
      if (r.status === 404) return false;
      if (r.ok) return true;
      throw new ByteSourceError('HTTP_ERROR', url(n), `expected HTTP 200 or 404 to HEAD, got HTTP ${r.status}`);
    },
    open(n) {
      return urlSource(url(n), { ...opts, fetch: f, name: url(n) });
    },
    async readText(n) {
      const r = await f(url(n), opts.init);
      if (r.status === 404) throw new ByteSourceError('NOT_FOUND', url(n), 'expected the file to exist, got HTTP 404');
      if (!r.ok) throw new ByteSourceError('HTTP_ERROR', url(n), `expected HTTP 200, got HTTP ${r.status}`);
      return r.text();
    },
  };
}

/** The shard index file name of HF sharded checkpoints. @example `await dir.exists(INDEX_FILE)` */
export const INDEX_FILE = 'model.safetensors.index.json';
/** The single-file checkpoint name. @example `await dir.open(SINGLE_FILE)` */
export const SINGLE_FILE = 'model.safetensors';

async function readJson(src: CheckpointSource, file: string): Promise<unknown> {
  const where = `${src.name ?? 'checkpoint'}/${file}`;
  if (!(await src.exists(file))) throw new SafetensorsError('MISSING_FILE', where, `expected the file ${file}, got none`);
  const text = await src.readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError('BAD_JSON', where, `expected JSON, got unparsable text (${(e as Error).message})`);
  }
}

/**
 * Reads and parses `config.json` of a checkpoint directory (the HF model
 * config). {@link SafetensorsError} `MISSING_FILE` or `BAD_JSON` otherwise.
 *
 * @example
 * ```ts
 * const cfg = await readConfig(dirSource('/models/mixtral-tiny'));
 * cfg.num_local_experts // 8
 * ```
 */
export async function readConfig(src: CheckpointSource, file = 'config.json'): Promise<Record<string, unknown>> {
  const v = await readJson(src, file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SafetensorsError('BAD_JSON', `${src.name ?? 'checkpoint'}/${file}`, `expected a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}`);
  }
  return v as Record<string, unknown>;
}

/**
 * A (possibly sharded) safetensors checkpoint: `model.safetensors.index.json`
 * (its `weight_map` name -> shard file) when present, else
 * `model.safetensors`. `open` reads and validates every shard's header (no
 * tensor data); `read` fetches one tensor's bytes from its shard.
 *
 * @example
 * ```ts
 * const ck = await Checkpoint.open(urlDirSource('https://host/model/'));
 * ck.keys().length;
 * const w = await ck.read('model.layers.0.mlp.gate.weight');
 * ```
 */
export class Checkpoint {
  private constructor(
    readonly source: CheckpointSource,
    private readonly shardOf: Map<string, SafetensorsFile>,
    /** The shard files in index order (one entry for a single-file checkpoint). */
    readonly shards: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** Opens a checkpoint directory; see the class docs. */
  static async open(src: CheckpointSource): Promise<Checkpoint> {
    const dir = src.name ?? 'checkpoint';
    const shardOf = new Map<string, SafetensorsFile>();
    const shards = new Map<string, SafetensorsFile>();
    const openShard = async (file: string, from: string) => {
      let s = shards.get(file);
      if (s) return s;
      if (!(await src.exists(file))) throw new SafetensorsError('MISSING_FILE', `${dir}/${file}`, `expected the shard file ${file} (${from}), got none`);
      s = await SafetensorsFile.open(await src.open(file), `${dir}/${file}`);
      shards.set(file, s);
      return s;
    };
    try {
      if (await src.exists(INDEX_FILE)) {
        const idx = await readJson(src, INDEX_FILE);
        const wm = (idx as { weight_map?: unknown } | null)?.weight_map;
        if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
          throw new SafetensorsError('BAD_INDEX', `${dir}/${INDEX_FILE}`, `expected a "weight_map" object (tensor name -> shard file), got ${JSON.stringify(wm) ?? 'none'}`);
        }
        for (const [name, file] of Object.entries(wm)) {
          if (typeof file !== 'string') throw new SafetensorsError('BAD_INDEX', `${dir}/${INDEX_FILE}`, `weight_map[${name}]: expected a file name, got ${JSON.stringify(file)}`);
          const s = await openShard(file, `listed for ${name} in ${INDEX_FILE}`);
          if (!s.has(name)) throw new SafetensorsError('MISSING_TENSOR', `${dir}/${file}`, `expected tensor ${name} (listed in ${INDEX_FILE}), got none in this shard`);
          shardOf.set(name, s);
        }
      } else {
        const s = await openShard(SINGLE_FILE, `no ${INDEX_FILE} either`);
        for (const k of s.keys()) shardOf.set(k, s);
      }
    } catch (e) {
      for (const s of shards.values()) await s.close();
      throw e;
    }
    return new Checkpoint(src, shardOf, shards);
  }

  /** Every tensor name (index order for sharded checkpoints, file order otherwise). */
  keys(): string[] {
    return [...this.shardOf.keys()];
  }
  /** Whether the checkpoint holds `name`. */
  has(name: string): boolean {
    return this.shardOf.has(name);
  }
  private shard(name: string): SafetensorsFile {
    const s = this.shardOf.get(name);
    if (!s) throw new SafetensorsError('MISSING_TENSOR', this.source.name ?? 'checkpoint', `expected a tensor named ${JSON.stringify(name)}, got none among ${this.shardOf.size} tensors`);
    return s;
  }
  /** dtype, shape and byte range of `name`, plus the shard file that holds it. */
  info(name: string): TensorInfo & { readonly file: string } {
    const s = this.shard(name);
    return { ...s.info(name), file: s.name };
  }
  /** `name` as a {@link HostTensor}, reading only its bytes. */
  async read(name: string): Promise<HostTensor> {
    return this.shard(name).read(name);
  }
  /** `name` as raw bytes plus its safetensors dtype. */
  async readRaw(name: string): Promise<RawTensor> {
    return this.shard(name).readRaw(name);
  }
  /** The parsed `config.json` of the checkpoint directory. */
  readConfig(): Promise<Record<string, unknown>> {
    return readConfig(this.source);
  }
  /** Closes every shard's byte source. */
  async close(): Promise<void> {
    for (const s of this.shards.values()) await s.close();
  }
}
