// Random-access byte sources: in-memory bytes, Blobs/Files and HTTP(S) URLs.
// Browser-safe: nothing here imports a Node module (see node.ts for files).
import { ByteSourceError } from './errors.js';

/**
 * Random access to the bytes of one file, wherever it lives (memory, a Blob,
 * a URL, a local file). Readers ask only for the ranges they need, so a large
 * checkpoint never has to be held in memory whole.
 *
 * @example
 * ```ts
 * const src = bytesSource(new Uint8Array([1, 2, 3, 4]), 'demo');
 * await src.read(1, 2); // Uint8Array [2, 3]
 * ```
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for messages (file name or URL). */
  readonly name?: string;
  /**
   * Exactly `length` bytes starting at `offset`, in a fresh array the caller
   * owns. Throws {@link ByteSourceError} `OUT_OF_RANGE` outside `[0, size]`.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the resource (file handle). Optional; idempotent. */
  close?(): Promise<void>;
}

/**
 * Throws {@link ByteSourceError} `OUT_OF_RANGE` unless `[offset, offset + length)`
 * lies inside a source of `size` bytes (for ByteSource implementations).
 * @example `checkRange('my.bin', src.size, offset, length)`
 */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new ByteSourceError('OUT_OF_RANGE', name, `expected a read inside [0, ${size}), got offset ${offset} length ${length}`);
  }
}

/**
 * A byte source over bytes already in memory (a `Uint8Array` view or an
 * `ArrayBuffer`). Reads return copies.
 *
 * @example
 * ```ts
 * const file = await SafetensorsFile.open(bytesSource(await (await fetch(url)).arrayBuffer(), 'model.safetensors'));
 * ```
 */
export function bytesSource(data: Uint8Array | ArrayBuffer, name = 'memory'): ByteSource {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return {
    size: bytes.byteLength,
    name,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(name, bytes.byteLength, offset, length);
      return bytes.slice(offset, offset + length);
    },
  };
}

/**
 * A byte source over a `Blob` or `File` (browser file drops, `<input
 * type=file>`): reads go through `blob.slice(...).arrayBuffer()`, so only the
 * requested range is loaded.
 *
 * @example
 * ```ts
 * input.onchange = async () => {
 *   const st = await SafetensorsFile.open(blobSource(input.files![0]));
 * };
 * ```
 */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const n = name ?? ((blob as { name?: unknown }).name as string | undefined) ?? 'blob';
  return {
    size: blob.size,
    name: n,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(n, blob.size, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/**
 * Options of {@link urlSource} and {@link urlDirSource}.
 * @example `await urlSource(url, { init: { headers: { Authorization: `Bearer ${token}` } } })`
 */
export interface UrlSourceOptions {
  /** The fetch to use (default `globalThis.fetch`); tests pass a fake. */
  fetch?: typeof fetch;
  /** Extra request options (headers such as `Authorization`, `credentials`, ...). */
  init?: RequestInit;
  /** Name for messages (default: the URL). */
  name?: string;
}

function withRange(init: RequestInit | undefined, range: string): RequestInit {
  const headers = new Headers(init?.headers);
  headers.set('Range', range);
  return { ...init, headers };
}

/** Parses `bytes a-b/total` and returns `total`, or undefined. */
function totalFromContentRange(v: string | null): number | undefined {
  const m = v ? /^bytes\s+\d+-\d+\/(\d+)\s*$/i.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * A byte source over an HTTP(S) URL using `Range` requests, so only the
 * requested bytes are downloaded. It probes with `Range: bytes=0-0`; a
 * server that ignores ranges (answers 200 rather than 206) or hides
 * `Content-Range` makes it fall back to one full GET held in memory. A 404
 * gives {@link ByteSourceError} `NOT_FOUND`, any other failure `HTTP_ERROR`.
 *
 * @example
 * ```ts
 * const src = await urlSource('https://huggingface.co/org/model/resolve/main/model.safetensors');
 * const st = await SafetensorsFile.open(src);
 * ```
 */
export async function urlSource(url: string, opts: UrlSourceOptions = {}): Promise<ByteSource> {
  const f = opts.fetch ?? globalThis.fetch;
  const name = opts.name ?? url;
  const probe = await f(url, withRange(opts.init, 'bytes=0-0'));
  if (probe.status === 404) throw new ByteSourceError('NOT_FOUND', name, 'expected the URL to exist, got HTTP 404');
  if (probe.status === 416) {
    // Range not satisfiable for a range starting at 0: the resource is empty.
    await probe.body?.cancel();
    return bytesSource(new Uint8Array(0), name);
  }
  if (!probe.ok) throw new ByteSourceError('HTTP_ERROR', name, `expected HTTP 200 or 206, got HTTP ${probe.status}`);
  const total = probe.status === 206 ? totalFromContentRange(probe.headers.get('Content-Range')) : undefined;
  if (total === undefined) {
    // Ranges ignored (200 with the whole body) or size unknown: keep the whole body.
    const body = probe.status === 200 ? probe : await f(url, opts.init);
    if (probe !== body) await probe.body?.cancel();
    if (!body.ok) throw new ByteSourceError('HTTP_ERROR', name, `expected HTTP 200, got HTTP ${body.status}`);
    return bytesSource(new Uint8Array(await body.arrayBuffer()), name);
  }
  await probe.arrayBuffer();
  let whole: Promise<Uint8Array> | undefined;
  return {
    size: total,
    name,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(name, total, offset, length);
      if (length === 0) return new Uint8Array(0);
      if (whole) return (await whole).slice(offset, offset + length);
      const r = await f(url, withRange(opts.init, `bytes=${offset}-${offset + length - 1}`));
      if (r.status === 206) {
        const b = new Uint8Array(await r.arrayBuffer());
        if (b.byteLength !== length) throw new ByteSourceError('SHORT_READ', name, `expected ${length} bytes at offset ${offset}, got ${b.byteLength}`);
        return b;
      }
      if (r.status === 200) {
        // The server stopped honouring ranges: keep the full body from now on.
        whole = r.arrayBuffer().then((ab) => new Uint8Array(ab));
        const all = await whole;
        if (all.byteLength !== total) throw new ByteSourceError('SHORT_READ', name, `expected ${total} bytes, got ${all.byteLength}`);
        return all.slice(offset, offset + length);
      }
      if (r.status === 404) throw new ByteSourceError('NOT_FOUND', name, 'expected the URL to exist, got HTTP 404');
      throw new ByteSourceError('HTTP_ERROR', name, `expected HTTP 206 for bytes ${offset}-${offset + length - 1}, got HTTP ${r.status}`);
    },
  };
}
