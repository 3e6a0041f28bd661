// Where a checkpoint comes from in the page: a folder on an HTTP server
// (the fixtures the dev/preview server serves, or any URL), or files the
// user picked or dropped.

/** A checkpoint folder: read a file by its name (null when it is not there). */
export interface PageSource {
  /** What to call it in the table (folder name). */
  readonly label: string;
  /** Where it came from (URL or 'local files'). */
  readonly origin: string;
  get(name: string): Promise<Uint8Array | null>;
  /** The underlying files when they were picked or dropped (for blob sources). */
  readonly files?: ReadonlyMap<string, File>;
  /** The base URL when it is served over HTTP. */
  readonly baseUrl?: string;
}

/**
 * A folder served over HTTP. When the server listed its files (`known`), a
 * file not among them is absent without a request (no 404 noise).
 */
export function urlSource(base: string, label?: string, known?: readonly string[]): PageSource {
  const b = base.endsWith('/') ? base : base + '/';
  const name = label ?? (b.replace(/\/+$/, '').split('/').pop() || b);
  return {
    label: name,
    origin: new URL(b, location.href).href,
    baseUrl: b,
    async get(file) {
      if (known && !known.includes(file)) return null;
      const r = await fetch(new URL(file, new URL(b, location.href)).href);
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${b}${file}: HTTP ${r.status} ${r.statusText}`);
      return new Uint8Array(await r.arrayBuffer());
    },
  };
}

/** Files picked or dropped: one source per folder that holds a config.json. */
export function fileSources(files: Iterable<{ path: string; file: File }>): PageSource[] {
  const dirs = new Map<string, Map<string, File>>();
  for (const { path, file } of files) {
    const i = path.lastIndexOf('/');
    const dir = i < 0 ? '' : path.slice(0, i);
    const name = i < 0 ? path : path.slice(i + 1);
    if (!dirs.has(dir)) dirs.set(dir, new Map());
    dirs.get(dir)!.set(name, file);
  }
  const out: PageSource[] = [];
  for (const [dir, m] of dirs) {
    if (!m.has('config.json') && !m.has('model.safetensors') && !m.has('model.safetensors.index.json')) continue;
    out.push({
      label: dir.split('/').pop() || 'local checkpoint',
      origin: `local files${dir ? ` (${dir})` : ''}`,
      files: m,
      async get(name) {
        const f = m.get(name);
        return f ? new Uint8Array(await f.arrayBuffer()) : null;
      },
    });
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
