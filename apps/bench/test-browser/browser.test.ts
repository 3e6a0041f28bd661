// The demo page in headless Chromium (Debian's /usr/bin/chromium, WebGPU
// through SwiftShader): builds the page with Vite, serves it with Vite's
// preview server on 127.0.0.1 (fixtures under /fixtures/), runs the MoE
// layer on the fixtures and checks the page's results.
//
// With CI=true a missing WebGPU adapter fails the test; otherwise the GPU
// test is skipped with a visible reason and the CPU path is still checked.
//
// Environment: CHROMIUM (default /usr/bin/chromium), WEBMOE_CHROMIUM_FLAGS
// (replaces the flags; e.g. '--headless --no-sandbox --disable-webgpu' checks
// the no-adapter path), WEBMOE_BROWSER_CASES
// (comma list of fixture names, name@bfloat16 for bf16 weights; default: the
// seven float32 architectures and mixtral@bfloat16),
// WEBMOE_FIXTURES (default <repo>/../shared/fixtures), WEBMOE_BROWSER_SERVER
// (preview, the default: build then `vite preview`; dev: the dev server).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build, createServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuRequired } from '@webmoe/kernels-wgsl/testing';
import type { PageResults } from '../web/src/types.js';
import { fixturesDir } from '../web/vite.config.js';

const here = dirname(fileURLToPath(import.meta.url));
const appDir = resolve(here, '..');
const configFile = join(appDir, 'web', 'vite.config.ts');
const shot = join(appDir, 'test-results', 'browser.png');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** With CI=true (or WEBMOE_REQUIRE_GPU=1) a missing adapter fails (the project's one decision, gpuRequired). */
const CI = gpuRequired();
/** 'preview' (default): vite build, then vite preview; 'dev': the dev server (sources transformed on demand). */
const SERVER = process.env.WEBMOE_BROWSER_SERVER === 'dev' ? 'dev' : 'preview';
/**
 * Fixture runs: 'name' (weights as stored, float32 golden) or 'name@bfloat16' (bf16 weights vs output_bf16); '@cpu'
 * last: the same on the page's CPU path (kernels-wgsl's CPU kernels in the browser) beside the GPU run.
 */
const DEFAULT_CASES = 'mixtral,gpt_oss,deepseek_v3,qwen2_moe,qwen3_moe,olmoe,llama4_text,mixtral@bfloat16,olmoe@cpu,mixtral@bfloat16@cpu';

/** A case spec's parts: fixture name, weight dtype ('checkpoint': as stored) and whether it runs on the CPU path. */
function parseCase(spec: string): { name: string; dtype: string; cpu: boolean } {
  const [name, ...opts] = spec.split('@');
  return { name, dtype: opts.find((o) => o !== 'cpu') ?? 'checkpoint', cpu: opts.includes('cpu') };
}
const CASES = (process.env.WEBMOE_BROWSER_CASES ?? DEFAULT_CASES).split(',').map((s) => s.trim()).filter(Boolean);
const DEFAULT_FLAGS = ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const FLAGS = process.env.WEBMOE_CHROMIUM_FLAGS ? process.env.WEBMOE_CHROMIUM_FLAGS.split(/\s+/).filter(Boolean) : DEFAULT_FLAGS;

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** The tolerance of a run, read here from golden.json (not from the page): f32_rel_tol, or bf16_rel_tol for bf16/f16 weights. */
function tolOf(spec: string): number {
  const { name, dtype } = parseCase(spec);
  const j = JSON.parse(readFileSync(join(fixturesDir(), 'hf-moe', name, 'golden.json'), 'utf8')) as { f32_rel_tol: number; bf16_rel_tol: number };
  return dtype === 'bfloat16' || dtype === 'float16' ? j.bf16_rel_tol : j.f32_rel_tol;
}

/** A float tensor of a fixture's golden.safetensors, read here with a few lines of our own (F32 and BF16 only). */
function goldenTensor(name: string, tensor: string): Float32Array {
  const b = readFileSync(join(fixturesDir(), 'hf-moe', name, 'golden.safetensors'));
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const e = h[tensor];
  if (!e) throw new Error(`${name}/golden.safetensors has no ${tensor}`);
  const raw = b.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
  if (e.dtype === 'F32') return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (e.dtype === 'BF16') {
    const out = new Float32Array(raw.byteLength / 2);
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) u[i] = raw.readUInt16LE(2 * i) << 16;
    return out;
  }
  throw new Error(`${name}/${tensor}: dtype ${e.dtype} not handled by the test`);
}

/** ||got - want|| / ||want|| over all T rows (the goldens hold every row, llama4_text's included). */
function relErrAgainstGolden(spec: string, got: readonly number[]): number {
  const { name, dtype } = parseCase(spec);
  const want = goldenTensor(name, dtype === 'bfloat16' ? 'output_bf16' : 'output');
  if (got.length !== want.length) throw new Error(`${spec}: the page's output has ${got.length} values, the golden ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

let server: { close(): Promise<void> } | undefined;
let browser: BrowserContext | undefined;
let page: Page | undefined;
let userDataDir: string | undefined;
let results: PageResults;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (scripts/setup-machine.sh installs Debian's chromium; or set CHROMIUM)`);
  for (const c of CASES) if (!existsSync(join(fixturesDir(), 'hf-moe', parseCase(c).name, 'golden.json'))) throw new Error(`fixture ${c} not found under ${fixturesDir()}/hf-moe`);
  const port = await freePort();
  if (SERVER === 'dev') {
    const dev = await createServer({ configFile, logLevel: 'warn', server: { host: '127.0.0.1', port, strictPort: true, open: false, hmr: false } });
    await dev.listen();
    server = dev;
  } else {
    await build({ configFile, logLevel: 'warn' });
    server = await preview({ configFile, logLevel: 'warn', preview: { host: '127.0.0.1', port, strictPort: true, open: false } });
  }
  const url = `http://127.0.0.1:${port}/?run=${CASES.join(',')}`;
  userDataDir = mkdtempSync(join(tmpdir(), 'webmoe-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 900 } });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  console.log(`[browser] ${url} (vite ${SERVER} server)`);
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => (window as unknown as { __results?: PageResults }).__results?.done === true, undefined, { timeout: 540_000, polling: 250 });
  results = await page.evaluate(() => (window as unknown as { __results: PageResults }).__results);
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  const e = results.env;
  console.log(`[browser] adapter: ${e?.adapter ?? `none (${e?.reason})`}; shader-f16: ${e?.shaderF16}; timestamp-query: ${e?.timestampQuery}; MoE layer: ${results.moeAvailable}`);
  for (const c of results.cases) console.log(`[browser] ${c.name} (${c.dtype}): ${c.status} path=${c.path} relErr=${c.relErr} tol=${c.tol} forward=${c.forwardMs.toFixed(2)}ms${c.message ? ` (${c.message})` : ''}`);
  console.log(`[browser] screenshot: ${shot}`);
}, 600_000);

/** Waits until the page is idle and has a result after number `after` matching `pred`; returns it. */
async function waitForCase(after: number, pred: (c: PageResults['cases'][number]) => boolean): Promise<PageResults['cases'][number]> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await page!.evaluate(() => (window as unknown as { __results: PageResults }).__results);
    const c = r.cases.find((x) => x.seq > after && pred(x));
    if (c && !r.running) return c;
    if (Date.now() > deadline) throw new Error(`no matching result within 120 s; results: ${JSON.stringify(r.cases.map((x) => [x.name, x.origin, x.status]))}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function lastSeq(): Promise<number> {
  return page!.evaluate(() => Math.max(0, ...(window as unknown as { __results: PageResults }).__results.cases.map((c) => c.seq)));
}

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

describe('demo page in headless Chromium', () => {
  it('initialised without page errors', () => {
    expect(results.ready).toBe(true);
    expect(results.error).toBeUndefined();
    expect(pageErrors).toEqual([]);
  });

  it("the CPU path's kernels run their WebAssembly SIMD dot products in the browser (the module compiles on the main thread)", () => {
    expect(results.env?.cpuKernels).toBe('wasm-simd');
  });

  it('ran on the GPU path (a WebGPU adapter is present)', (ctx) => {
    const e = results.env!;
    if (!e.adapterFound && !CI) {
      console.warn(`[browser] SKIPPED the GPU check: no WebGPU adapter (${e.reason}); with CI=true this fails`);
      ctx.skip();
    }
    expect(e.webgpu, `navigator.gpu missing: ${e.reason}`).toBe(true);
    expect(e.adapterFound, `no adapter: ${e.reason}`).toBe(true);
    expect(e.adapter).toBeTruthy();
    // every case on the GPU but those asked for on the CPU path
    for (const spec of CASES) {
      const { name, dtype, cpu } = parseCase(spec);
      expect(results.cases.filter((c) => c.name === name && c.dtype === dtype && c.path === (cpu ? 'cpu' : 'gpu')), spec).toHaveLength(1);
    }
  });

  it('GPU runtime smoke check (cast round trip) matches the reference', (ctx) => {
    if (!results.env!.adapterFound && !CI) ctx.skip();
    expect(results.smoke?.ok, results.smoke?.detail).toBe(true);
  });

  it('the MoE layer is present in @webmoe/moe', () => {
    expect(results.moeAvailable).toBe(true);
  });

  it.each(CASES)('%s: relative error below the golden.json tolerance', (spec) => {
    const { name, dtype, cpu } = parseCase(spec);
    const c = results.cases.find((x) => x.name === name && x.dtype === dtype && x.path === (cpu || !results.env?.adapterFound ? 'cpu' : 'gpu'));
    expect(c, `no result for ${name}`).toBeDefined();
    expect(c!.status, `${spec}: ${c!.status}${c!.message ? ` (${c!.message})` : ''}, rel error ${c!.relErr}`).toBe('pass');
    const tol = tolOf(spec);
    expect(c!.tol).toBe(tol);
    expect(c!.relErr).not.toBeNull();
    expect(Number.isFinite(c!.relErr)).toBe(true);
    expect(c!.relErr!).toBeLessThan(tol);
    // The same check on the page's output, against the golden read here.
    expect(c!.output, 'the page exposes the output').toBeDefined();
    expect(c!.output!.length).toBe(c!.tokens! * c!.hidden!);
    expect(c!.output!.every(Number.isFinite)).toBe(true);
    expect(relErrAgainstGolden(spec, c!.output!)).toBeLessThan(tol);
    expect(c!.forwardMs).toBeGreaterThan(0);
    expect(c!.repeatMatches, 'a second forward gives the same output bit for bit').toBe(true);
    if (c!.timing === 'gpu-timestamps') expect(c!.kernels.length).toBeGreaterThan(0);
  });

  it('runs a checkpoint folder picked with the file input (Blob path)', async (ctx) => {
    if (!results.env!.adapterFound && !CI) ctx.skip();
    const dir = join(fixturesDir(), 'hf-moe', 'deepseek_v3');
    const after = await lastSeq();
    await page!.setInputFiles('#pick', dir);
    const c = await waitForCase(after, (x) => x.origin.startsWith('local files') && x.name === 'deepseek_v3');
    expect(c.status, `${c.status} ${c.message ?? ''}`).toBe('pass');
    expect(c.path).toBe('gpu');
    expect(c.relErr!).toBeLessThan(tolOf('deepseek_v3'));
  });

  it('runs checkpoint files dropped on the drop zone', async (ctx) => {
    if (!results.env!.adapterFound && !CI) ctx.skip();
    const after = await lastSeq();
    // A synthetic drop of the olmoe files (fetched by the page from the fixture server).
    await page!.evaluate(async () => {
      const dt = new DataTransfer();
      for (const n of ['config.json', 'model.safetensors', 'golden.json', 'golden.safetensors']) {
        const b = await (await fetch(`./fixtures/hf-moe/olmoe/${n}`)).blob();
        dt.items.add(new File([b], n));
      }
      document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    const c = await waitForCase(after, (x) => x.origin.startsWith('local files') && x.arch === 'olmoe');
    expect(c.status, `${c.status} ${c.message ?? ''}`).toBe('pass');
    expect(c.path).toBe('gpu');
    expect(c.relErr!).toBeLessThan(tolOf('olmoe'));
  });

  it('runs a checkpoint given by URL', async (ctx) => {
    if (!results.env!.adapterFound && !CI) ctx.skip();
    const before = pageErrors.length;
    const after = await lastSeq();
    await page!.fill('#url', './fixtures/hf-moe/qwen3_moe/');
    await page!.click('#run-url');
    const c = await waitForCase(after, (x) => x.origin.endsWith('/fixtures/hf-moe/qwen3_moe/') && x.name === 'qwen3_moe');
    expect(c.status, `${c.status} ${c.message ?? ''}`).toBe('pass');
    expect(c.path).toBe('gpu');
    expect(c.relErr!).toBeLessThan(tolOf('qwen3_moe'));
    // An unlisted URL folder is probed for the optional shard index: its 404 is the only error allowed.
    const extra = pageErrors.slice(before).filter((e) => !/404.*model\.safetensors\.index\.json/.test(e));
    expect(extra).toEqual([]);
    await page!.screenshot({ path: shot, fullPage: true });
  });

  it('saved a screenshot', () => {
    expect(existsSync(shot)).toBe(true);
  });
});
