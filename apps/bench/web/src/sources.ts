// Where a checkpoint comes from in the page, as @webmoe/tensor's
// CheckpointSource: a folder on an HTTP server (urlDirSource: the fixtures the
// dev/preview server serves, or any URL) or files the user picked or dropped
// (memorySource over File blobs).
import { memorySource, urlDirSource, type CheckpointSource } from '@webmoe/tensor';

/** A checkpoint folder to run. */
export interface PageSource {
  /** What to call it in the table (folder name). */
  readonly label: string;
  /** Where it came from (absolute URL, or 'local files (dir)'). */
  readonly origin: string;
  readonly source: CheckpointSource;
}

/** The whole file `name`, or null when the folder does not have it. */
export async function readWhole(src: CheckpointSource, name: string): Promise<Uint8Array | null> {
  if (!(await src.exists(name))) return null;
  const b = await src.open(name);
  try {
    return await b.read(0, b.size);
  } finally {
    await b.close?.();
  }
}

/**
 * A folder served over HTTP. When the server listed its files (`known`),
 * `exists` answers from that list without a request (no 404 noise).
 */
export function urlPageSource(base: string, label?: string, known?: readonly string[]): PageSource {
  const abs = new URL(base.endsWith('/') ? base : base + '/', location.href).href;
  const inner = urlDirSource(abs);
  const source: CheckpointSource = known
    ? { ...inner, name: abs, list: async () => [...known], exists: async (n) => known.includes(n), open: (n) => inner.open(n), readText: (n) => inner.readText(n) }
    : inner;
  return { label: label ?? (abs.replace(/\/+$/, '').split('/').pop() || abs), origin: abs, source };
}

/** Files picked or dropped: one source per folder that holds a config.json or model weights. */
export function filePageSources(files: Iterable<{ path: string; file: File }>): PageSource[] {
  const dirs = new Map<string, Record<string, File>>();
  for (const { path, file } of files) {
    const i = path.lastIndexOf('/');
    const dir = i < 0 ? '' : path.slice(0, i);
    const name = i < 0 ? path : path.slice(i + 1);
    if (!dirs.has(dir)) dirs.set(dir, {});
    dirs.get(dir)![name] = file;
  }
  const out: PageSource[] = [];
  for (const [dir, m] of dirs) {
    if (!('config.json' in m) && !('model.safetensors' in m) && !('model.safetensors.index.json' in m)) continue;
    const origin = `local files${dir ? ` (${dir})` : ''}`;
    out.push({ label: dir.split('/').pop() || 'local checkpoint', origin, source: memorySource(m, origin) });
  }
  return out.sort((a, b) => a.label.localeCompare(b.label));
}

/** Reads a drop's items, descending into folders (webkitGetAsEntry). */
export async function filesFromDrop(dt: DataTransfer): Promise<{ path: string; file: File }[]> {
  const out: { path: string; file: File }[] = [];
  const entries = [...dt.items].map((it) => it.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) return [...dt.files].map((f) => ({ path: f.name, file: f }));
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    if (e.isFile) {
      const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
      out.push({ path: prefix + e.name, file });
    } else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const c of batch) await walk(c, prefix + e.name + '/');
      }
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}
