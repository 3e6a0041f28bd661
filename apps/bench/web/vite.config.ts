// Vite config of the browser demo (apps/bench/web).
//
// - Workspace packages resolve to their TypeScript sources (like
//   vitest.shared.ts), so Vite bundles them for the browser and no package
//   needs to be built first.
// - The reference fixtures (<repo>/../shared/fixtures, or $WEBMOE_FIXTURES)
//   are served under /fixtures/ by the dev and the preview server;
//   /fixtures/index.json lists the checkpoint folders (those with a
//   config.json) with their files.
// - Any import of a Node built-in (node:fs, fs, path, ...) from the page or
//   from packages/* fails the build: the browser path must be free of them.
import { builtinModules } from 'node:module';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Connect, Plugin } from 'vite';
import { defineConfig } from 'vite';

const webDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(webDir, '../../..');
const pkgs = readdirSync(join(repoRoot, 'packages')).filter((p) => existsSync(join(repoRoot, 'packages', p, 'src', 'index.ts')));

/** Where the fixtures live: $WEBMOE_FIXTURES, else <repo>/../shared/fixtures. */
export function fixturesDir(): string {
  return process.env.WEBMOE_FIXTURES ? resolve(process.env.WEBMOE_FIXTURES) : resolve(repoRoot, '../shared/fixtures');
}

/** One checkpoint folder under the fixtures dir. */
export interface FixtureEntry {
  /** Path relative to the fixtures dir, with '/' (e.g. 'hf-moe/mixtral'). */
  path: string;
  /** Folder name (e.g. 'mixtral'). */
  name: string;
  files: { name: string; size: number }[];
}

/** Lists the folders (two levels deep) that contain a config.json. */
export function listFixtures(dir = fixturesDir()): FixtureEntry[] {
  const out: FixtureEntry[] = [];
  const visit = (abs: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    if (names.includes('config.json')) {
      const files = names.filter((n) => statSync(join(abs, n)).isFile()).map((n) => ({ name: n, size: statSync(join(abs, n)).size }));
      const rel = relative(dir, abs).split(sep).join('/');
      out.push({ path: rel, name: rel.split('/').pop() ?? rel, files });
      return;
    }
    if (depth >= 2) return;
    for (const n of names) if (statSync(join(abs, n)).isDirectory()) visit(join(abs, n), depth + 1);
  };
  visit(dir, 0);
  return out;
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.safetensors': 'application/octet-stream', '.py': 'text/plain', '.md': 'text/plain' };

function fixturesMiddleware(): Connect.NextHandleFunction {
  return (req, res, next) => {
    const url = req.url ?? '';
    if (!url.startsWith('/fixtures/')) return next();
    const dir = fixturesDir();
    const path = decodeURIComponent(url.slice('/fixtures/'.length).split('?')[0]);
    if (path === 'index.json') {
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'no-store');
      res.end(JSON.stringify({ root: '/fixtures/', fixtures: listFixtures(dir) }));
      return;
    }
    const abs = resolve(dir, path);
    if (!abs.startsWith(dir + sep) || !existsSync(abs) || !statSync(abs).isFile()) {
      res.statusCode = 404;
      res.end(`not found: /fixtures/${path}`);
      return;
    }
    const ext = abs.slice(abs.lastIndexOf('.'));
    const size = statSync(abs).size;
    res.setHeader('content-type', TYPES[ext] ?? 'application/octet-stream');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('cache-control', 'no-store');
    // Single byte ranges (what @webmoe/tensor's urlSource asks for): 206 with Content-Range.
    const m = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (m && (m[1] || m[2])) {
      const start = m[1] ? Number(m[1]) : Math.max(0, size - Number(m[2]));
      const end = m[1] ? (m[2] ? Math.min(Number(m[2]), size - 1) : size - 1) : size - 1;
      if (start >= size || start > end) {
        res.statusCode = 416;
        res.setHeader('content-range', `bytes */${size}`);
        res.end();
        return;
      }
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${end}/${size}`);
      res.setHeader('content-length', String(end - start + 1));
      if (req.method === 'HEAD') return void res.end();
      createReadStream(abs, { start, end }).pipe(res);
      return;
    }
    res.setHeader('content-length', String(size));
    if (req.method === 'HEAD') return void res.end();
    createReadStream(abs).pipe(res);
  };
}

/** Serves the fixtures under /fixtures/ in `vite` (dev) and `vite preview`. */
export function fixturesPlugin(): Plugin {
  return {
    name: 'webmoe-fixtures',
    configureServer(server) {
      server.middlewares.use(fixturesMiddleware());
    },
    configurePreviewServer(server) {
      server.middlewares.use(fixturesMiddleware());
    },
  };
}

const NODE_BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Fails the build on any static import of a Node built-in from the page or from packages/*. */
export function noNodeBuiltinsPlugin(): Plugin {
  return {
    name: 'webmoe-no-node-builtins',
    enforce: 'pre',
    apply: 'build',
    resolveId(source, importer) {
      if (NODE_BUILTINS.has(source) || source.startsWith('node:')) {
        const who = importer ? relative(repoRoot, importer) : '(entry)';
        this.error(`Node-only module '${source}' imported by ${who}: the browser bundle must not use Node built-ins`);
      }
      return null;
    },
  };
}

export default defineConfig({
  root: webDir,
  base: './',
  clearScreen: false,
  plugins: [fixturesPlugin(), noNodeBuiltinsPlugin()],
  // Keep class names through minification: typed errors print their names (UnsupportedError, not 'z').
  esbuild: { keepNames: true },
  resolve: {
    alias: [
      { find: /^@webmoe\/kernels-wgsl\/testing$/, replacement: join(repoRoot, 'packages/kernels-wgsl/src/testing.ts') },
      ...pkgs.map((p) => ({ find: new RegExp(`^@webmoe/${p}$`), replacement: join(repoRoot, 'packages', p, 'src', 'index.ts') })),
    ],
  },
  // Scan only the page for dependencies (not the built copy in dist/).
  optimizeDeps: { entries: ['index.html'] },
  server: { host: '127.0.0.1', fs: { allow: [repoRoot, fixturesDir()] } },
  preview: { host: '127.0.0.1' },
  build: {
    outDir: join(webDir, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: false,
  },
});
