// Node-only entry (`@webmoe/tensor/node`): local files and directories.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ByteSource } from './byte-source.js';
import { checkRange } from './byte-source.js';
import type { CheckpointSource } from './checkpoint.js';
import { ByteSourceError } from './errors.js';
import type { SerializableTensor } from './safetensors.js';
import { planSafetensors } from './safetensors.js';

const isNotFound = (e: unknown) => (e as { code?: string }).code === 'ENOENT' || (e as { code?: string }).code === 'ENOTDIR';

/**
 * A byte source over a local file: `fs.promises.open` plus positional reads,
 * so memory stays constant whatever the file size (a 60 GB checkpoint opens
 * without reading it). Close it when done.
 *
 * @example
 * ```ts
 * import { fileSource } from '@webmoe/tensor/node';
 * const st = await SafetensorsFile.open(await fileSource('model.safetensors'));
 * await st.close();
 * ```
 */
export async function fileSource(file: string, name: string = file): Promise<ByteSource> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    if (isNotFound(e)) throw new ByteSourceError('NOT_FOUND', name, `expected a readable file, got ${(e as Error).message}`);
    throw e;
  }
  const { size } = await fh.stat();
  let closed = false;
  return {
    size,
    name,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (closed || !fh) throw new ByteSourceError('CLOSED', name, 'expected an open file, got a closed one');
      checkRange(name, size, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new ByteSourceError('SHORT_READ', name, `expected ${length} bytes at offset ${offset}, got ${done} (file shrank?)`);
        done += bytesRead;
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await fh!.close();
    },
  };
}

/**
 * A checkpoint directory on the local disk (`config.json`,
 * `model.safetensors[.index.json]`, shards). Files open as {@link fileSource}.
 *
 * @example
 * ```ts
 * import { dirSource } from '@webmoe/tensor/node';
 * const ck = await Checkpoint.open(dirSource('/models/mixtral-tiny'));
 * ```
 */
export function dirSource(dir: string): CheckpointSource {
  const full = (n: string) => path.join(dir, n);
  return {
    name: dir,
    async list() {
      return (await fsp.readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
    },
    async exists(n) {
      try {
        return (await fsp.stat(full(n))).isFile();
      } catch (e) {
        if (isNotFound(e)) return false;
        throw e;
      }
    },
    open(n) {
      return fileSource(full(n), full(n));
    },
    async readText(n) {
      try {
        return await fsp.readFile(full(n), 'utf8');
      } catch (e) {
        if (isNotFound(e)) throw new ByteSourceError('NOT_FOUND', full(n), `expected a readable file, got ${(e as Error).message}`);
        throw e;
      }
    },
  };
}

async function writeAll(fh: fsp.FileHandle, b: Uint8Array): Promise<void> {
  let done = 0;
  while (done < b.byteLength) done += (await fh.write(b, done, b.byteLength - done)).bytesWritten;
}

/**
 * Writes tensors to a safetensors file at `file` (same bytes as
 * `serializeSafetensors`), streaming each tensor to a temporary file in the
 * same directory and renaming it into place: on failure nothing
 * half-written is left at `file`.
 *
 * @example
 * ```ts
 * await writeSafetensorsFile('out.safetensors', { w: HostTensor.fromFloat32([2], [1, 2]) }, { format: 'pt' });
 * ```
 */
export async function writeSafetensorsFile(
  file: string,
  tensors: Readonly<Record<string, SerializableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const { header, order } = planSafetensors(tensors, metadata);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    await writeAll(fh, header);
    for (const { bytes } of order) await writeAll(fh, bytes);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, file);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}
