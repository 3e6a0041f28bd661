// The demo page: pick a checkpoint, run the MoE layer on WebGPU (or the CPU
// reference), show the error against the golden output, the kernel times
// and a chart. Results go to window.__results for the browser test.
//
// URL parameters: ?run=mixtral,gpt_oss (fixture names or paths; name@bfloat16
// picks a weight dtype, name@cpu (or name@bfloat16@cpu) runs on the CPU path even with a GPU) or ?run=all runs on load; ?url=<folder URL> runs that
// folder; ?layer=N, ?dtype=bfloat16|float16|float32 set the inputs.
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { stackedBars, type BarRow } from './chart.js';
import { moeAvailable } from './moe-runner.js';
import { detectEnv, errText, runCase, smokeCheck, type WeightDType } from './run.js';
import { filePageSources, filesFromDrop, urlPageSource, type PageSource } from './sources.js';
import type { CaseResult, PageResults } from './types.js';

declare global {
  interface Window {
    __results: PageResults;
  }
}

const results: PageResults = { ready: false, done: false, running: false, env: null, moeAvailable, smoke: null, fixtures: [], cases: [] };
window.__results = results;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

let ctx: GpuContext | null = null;
let seq = 0;
let fixtureList: { path: string; name: string; files?: { name: string }[] }[] = [];

function renderEnv(): void {
  const e = results.env!;
  const rows: string[] = [];
  if (!e.webgpu || !e.adapterFound) {
    rows.push(`<div class="banner bad">WebGPU is not available: ${esc(e.reason ?? 'unknown reason')}.<br>${moeAvailable ? 'The layer runs on the CPU path instead (WebAssembly SIMD kernels).' : 'Nothing can run on the GPU.'}</div>`);
  } else {
    rows.push(`<div class="banner ok">Path: GPU (WebGPU) on <span id="adapter-name">${esc(e.adapter ?? '')}</span></div>`);
    if (!e.shaderF16) rows.push(`<div class="banner warn">shader-f16 is missing on this adapter: the kernels run their variants without f16 arithmetic (f16/bf16 weights are unpacked from u32 words and computed in f32).</div>`);
  }
  rows.push(
    `<div class="small">shader-f16: <b class="${e.shaderF16 ? 'ok' : 'warn'}">${e.shaderF16 ? 'yes' : 'no'}</b> · timestamp-query: <b>${e.timestampQuery ? 'yes (per-kernel GPU times)' : 'no (total wall time only)'}</b> · subgroups: <b>${e.subgroups ? 'yes' : 'no'}</b> · MoE layer: <b class="${moeAvailable ? 'ok' : 'bad'}">${moeAvailable ? 'present' : 'not available in @webmoe/moe yet'}</b></div>`,
  );
  rows.push(`<div class="small">${esc(e.userAgent)}</div>`);
  $('env').innerHTML = rows.join('');
}

function fmt(x: number | null, digits = 3): string {
  return x === null ? '—' : x === 0 ? '0' : Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(digits);
}

function renderResults(): void {
  const cs = results.cases;
  if (!cs.length) return;
  const head = '<tr><th>checkpoint</th><th>arch</th><th>weights</th><th>path</th><th>T×H</th><th>rel error</th><th>tolerance</th><th>result</th><th>forward ms</th><th>1st forward ms</th><th>load ms</th><th>timing</th></tr>';
  const body = cs
    .map((c) => {
      const cls = c.status === 'pass' ? 'ok' : c.status === 'unchecked' ? 'warn' : 'bad';
      const row = `<tr data-case="${esc(c.name)}"><td title="${esc(c.origin)}">${esc(c.name)}${c.origin.startsWith('local files') ? ' <span class="small">(files)</span>' : ''}</td><td>${esc(c.arch ?? '—')}</td><td>${c.dtype === 'checkpoint' ? 'as stored' : esc(c.dtype)}</td><td>${c.path === 'gpu' ? 'GPU' : c.path === 'cpu' ? 'CPU' : '—'}</td><td>${c.tokens ?? '—'}×${c.hidden ?? '—'}</td><td class="num">${fmt(c.relErr)}</td><td class="num">${fmt(c.tol)}</td><td class="${cls}"><b>${c.status.toUpperCase()}</b></td><td class="num">${fmt(c.forwardMs, 2)}</td><td class="num">${fmt(c.firstForwardMs, 1)}</td><td class="num">${fmt(c.loadMs, 1)}</td><td>${c.timing === 'gpu-timestamps' ? 'GPU timestamps' : 'wall'}</td></tr>`;
      const msg = c.message ? `<tr><td></td><td colspan="11" class="small ${cls}">${esc(c.message)}</td></tr>` : '';
      return row + msg;
    })
    .join('');
  const pass = cs.filter((c) => c.status === 'pass').length;
  $('results').innerHTML = `<table>${head}${body}</table><div class="small">${pass} of ${cs.length} within tolerance</div>`;
  const rows: BarRow[] = cs
    .filter((c) => c.status !== 'error')
    .map((c) => ({
      label: c.dtype === 'checkpoint' ? c.name : `${c.name} (${c.dtype})`,
      segments: c.timing === 'gpu-timestamps' && c.kernels.length ? c.kernels : [{ name: 'forward (wall)', ms: c.forwardMs, count: 1 }],
      note: c.timing === 'wall' ? '(wall)' : '',
    }));
  const detail = cs
    .filter((c) => c.kernels.length)
    .map((c) => `<div class="small"><b>${esc(c.name)}${c.dtype === 'checkpoint' ? '' : ` (${esc(c.dtype)})`}</b>: ${c.kernels.map((k) => `${esc(k.name)} ${k.ms.toFixed(3)} ms${k.count > 1 ? ` ×${k.count}` : ''}`).join(' · ')}</div>`)
    .join('');
  $('chart').innerHTML = rows.length
    ? stackedBars(rows, { title: !ctx ? 'Forward wall time (CPU path)' : results.env?.timestampQuery ? 'GPU time per kernel (timestamp queries, second forward)' : 'Forward wall time (the adapter has no timestamp-query)' }) + detail
    : '<span class="small">No successful run to chart.</span>';
}

function renderSmoke(): void {
  const s = results.smoke;
  if (!s) {
    $('smoke').textContent = ctx ? 'not run' : 'skipped: no GPU device';
    return;
  }
  const t = s.kernels.map((k) => `${k.name} ${k.ms.toFixed(3)} ms ×${k.count}`).join(', ');
  $('smoke').innerHTML = `<span class="${s.ok ? 'ok' : 'bad'}"><b>${s.ok ? 'OK' : 'FAILED'}</b></span> ${esc(s.detail)}${t ? ` · GPU time: ${esc(t)}` : ''}`;
}

/** One run: a checkpoint and the weight dtype to build it in (undefined: as stored). */
interface Job {
  src: PageSource;
  dtype?: WeightDType;
  /** On the CPU path even where a GPU device is open. */
  cpu?: boolean;
}

const DTYPE_NAMES: readonly string[] = ['float32', 'bfloat16', 'float16'];

function selectedDType(): WeightDType | undefined {
  const v = $<HTMLSelectElement>('dtype').value;
  return DTYPE_NAMES.includes(v) ? (v as WeightDType) : undefined;
}

function jobs(srcs: PageSource[], dtype = selectedDType()): Job[] {
  return srcs.map((src) => ({ src, dtype }));
}

async function runSources(list: Job[]): Promise<void> {
  if (results.running) return;
  results.running = true;
  results.done = false;
  try {
    for (const [i, { src: s, dtype, cpu }] of list.entries()) {
      const device = cpu ? null : ctx;
      $('status').textContent = `Running ${s.label}${dtype ? ` (${dtype})` : ''} (${i + 1}/${list.length}) on ${device ? 'the GPU' : 'the CPU path'}…`;
      const layer = Number($<HTMLInputElement>('layer').value || '0');
      const r: CaseResult = await runCase(s, device, { layer: Number.isInteger(layer) && layer >= 0 ? layer : 0, dtype });
      r.seq = ++seq;
      results.cases = results.cases.filter((c) => !(c.name === r.name && c.origin === r.origin && c.dtype === r.dtype && c.path === r.path)).concat(r);
      renderResults();
      const errs = ctx?.takeUncapturedErrors() ?? [];
      if (errs.length) {
        r.status = 'error';
        r.message = `${r.message ? r.message + '; ' : ''}uncaptured GPU errors: ${errs.join(' | ')}`;
        renderResults();
      }
    }
    $('status').textContent = `Done: ${list.length} run(s).`;
  } catch (e) {
    results.error = errText(e);
    $('status').textContent = `Error: ${results.error}`;
  } finally {
    results.running = false;
    results.done = true;
  }
}

/** Fixture runs by name or path; 'name@bfloat16' picks the weight dtype of one run, '@cpu' the CPU path. */
function fixtureJobs(names: string[] | 'all'): Job[] {
  const specs = names === 'all' ? fixtureList.map((f) => f.path) : names;
  return specs.map((spec) => {
    const [n, ...opts] = spec.split('@');
    const dt = opts.find((o) => DTYPE_NAMES.includes(o));
    const f = fixtureList.find((x) => x.name === n || x.path === n) ?? { path: n, name: n, files: undefined };
    const dtype = dt ? (dt as WeightDType) : selectedDType();
    return { src: urlPageSource(`./fixtures/${f.path}/`, f.name, f.files?.map((x) => x.name)), dtype, cpu: opts.includes('cpu') };
  });
}

async function loadFixtures(): Promise<void> {
  try {
    const r = await fetch('./fixtures/index.json');
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const j = (await r.json()) as { fixtures: { path: string; name: string; files: { name: string }[] }[] };
    fixtureList = j.fixtures;
    results.fixtures = fixtureList.map((f) => f.path);
    $('fixtures-where').textContent = `(${fixtureList.length} under /fixtures/)`;
    $('fixtures').innerHTML = fixtureList.length
      ? fixtureList.map((f) => `<label><input type="checkbox" value="${esc(f.path)}" checked /> ${esc(f.path)}</label>`).join('')
      : '<span class="small">The server lists no fixtures.</span>';
  } catch (e) {
    $('fixtures').innerHTML = `<span class="small">No fixture list (${esc(errText(e))}): this server does not serve /fixtures/. Pick files or give a URL.</span>`;
  }
}

function wireInputs(): void {
  $('run-selected').onclick = () => {
    const sel = [...document.querySelectorAll<HTMLInputElement>('#fixtures input:checked')].map((i) => i.value);
    void runSources(fixtureJobs(sel));
  };
  $('run-all').onclick = () => void runSources(fixtureJobs('all'));
  $('run-url').onclick = () => {
    const u = $<HTMLInputElement>('url').value.trim();
    if (u) void runSources(jobs([urlPageSource(u)]));
  };
  const pick = $<HTMLInputElement>('pick');
  pick.onchange = () => {
    const files = [...(pick.files ?? [])].map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));
    const srcs = filePageSources(files);
    if (!srcs.length) $('status').textContent = 'No folder with a config.json or model.safetensors among the picked files.';
    else void runSources(jobs(srcs));
  };
  const drop = $('drop');
  drop.ondragover = (ev) => {
    ev.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = async (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    if (!ev.dataTransfer) return;
    const srcs = filePageSources(await filesFromDrop(ev.dataTransfer));
    if (!srcs.length) $('status').textContent = 'No folder with a config.json or model.safetensors in the drop.';
    else void runSources(jobs(srcs));
  };
}

async function main(): Promise<void> {
  wireInputs();
  const d = await detectEnv();
  results.env = d.env;
  ctx = d.ctx;
  renderEnv();
  if (ctx) {
    try {
      results.smoke = await smokeCheck(ctx);
    } catch (e) {
      results.smoke = { ok: false, detail: `threw ${errText(e)}`, kernels: [] };
    }
  }
  renderSmoke();
  await loadFixtures();
  results.ready = true;
  const q = new URLSearchParams(location.search);
  const run = q.get('run');
  const url = q.get('url');
  if (q.get('layer')) $<HTMLInputElement>('layer').value = q.get('layer')!;
  if (q.get('dtype')) $<HTMLSelectElement>('dtype').value = q.get('dtype')!;
  if (run) await runSources(fixtureJobs(run === 'all' ? 'all' : run.split(',').map((s) => s.trim()).filter(Boolean)));
  else if (url) await runSources(jobs([urlPageSource(url)]));
}

main().catch((e) => {
  results.error = errText(e);
  results.ready = true;
  results.done = true;
  $('status').textContent = `Error: ${results.error}`;
});
