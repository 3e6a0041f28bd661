// The demo page: pick a checkpoint, run the MoE layer on WebGPU (or the CPU
// reference), show the error against the golden output, the kernel times
// and a chart. Results go to window.__results for the browser test.
//
// URL parameters: ?run=mixtral,gpt_oss (fixture names or paths) or ?run=all
// runs on load; ?url=<folder URL> runs that folder.
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { stackedBars, type BarRow } from './chart.js';
import { moeAvailable } from './moe-runner.js';
import { detectEnv, errText, runCase, smokeCheck } from './run.js';
import { fileSources, filesFromDrop, urlSource, type PageSource } from './sources.js';
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
let fixtureList: { path: string; name: string }[] = [];

function renderEnv(): void {
  const e = results.env!;
  const rows: string[] = [];
  if (!e.webgpu || !e.adapterFound) {
    rows.push(`<div class="banner bad">WebGPU is not available: ${esc(e.reason ?? 'unknown reason')}.<br>${moeAvailable ? 'The layer runs on the CPU reference path instead (slow).' : 'Nothing can run on the GPU.'}</div>`);
  } else {
    rows.push(`<div class="banner ok">Path: GPU (WebGPU) on <span id="adapter-name">${esc(e.adapter ?? '')}</span></div>`);
    if (!e.shaderF16) rows.push(`<div class="banner warn">shader-f16 is missing on this adapter: the kernels use their f32 paths (results are the same; f16 weights are unpacked in f32).</div>`);
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
  const head = '<tr><th>checkpoint</th><th>arch</th><th>path</th><th>T×H</th><th>rel error</th><th>tolerance</th><th>result</th><th>forward ms</th><th>load ms</th><th>timing</th></tr>';
  const body = cs
    .map((c) => {
      const cls = c.status === 'pass' ? 'ok' : c.status === 'unchecked' ? 'warn' : 'bad';
      const row = `<tr data-case="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.arch ?? '—')}</td><td>${c.path === 'gpu' ? 'GPU' : c.path === 'cpu' ? 'CPU reference' : '—'}</td><td>${c.tokens ?? '—'}×${c.hidden ?? '—'}</td><td class="num">${fmt(c.relErr)}</td><td class="num">${fmt(c.tol)}</td><td class="${cls}"><b>${c.status.toUpperCase()}</b></td><td class="num">${fmt(c.forwardMs, 2)}</td><td class="num">${fmt(c.loadMs, 1)}</td><td>${c.timing === 'gpu-timestamps' ? 'GPU timestamps' : 'wall'}</td></tr>`;
      const msg = c.message ? `<tr><td></td><td colspan="9" class="small ${cls}">${esc(c.message)}</td></tr>` : '';
      return row + msg;
    })
    .join('');
  const pass = cs.filter((c) => c.status === 'pass').length;
  $('results').innerHTML = `<table>${head}${body}</table><div class="small">${pass} of ${cs.length} within tolerance</div>`;
  const rows: BarRow[] = cs
    .filter((c) => c.status !== 'error')
    .map((c) => ({
      label: c.name,
      segments: c.timing === 'gpu-timestamps' && c.kernels.length ? c.kernels : [{ name: 'forward (wall)', ms: c.forwardMs, count: 1 }],
      note: c.timing === 'wall' ? '(wall)' : '',
    }));
  $('chart').innerHTML = rows.length
    ? stackedBars(rows, { title: results.env?.timestampQuery ? 'GPU time per kernel (timestamp queries)' : 'Forward wall time (no timestamp-query)' })
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

async function runSources(sources: PageSource[]): Promise<void> {
  if (results.running) return;
  results.running = true;
  results.done = false;
  try {
    for (const [i, s] of sources.entries()) {
      $('status').textContent = `Running ${s.label} (${i + 1}/${sources.length}) on ${ctx ? 'the GPU' : 'the CPU reference'}…`;
      const r: CaseResult = await runCase(s, ctx);
      results.cases = results.cases.filter((c) => !(c.name === r.name && c.origin === r.origin)).concat(r);
      renderResults();
      const errs = ctx?.takeUncapturedErrors() ?? [];
      if (errs.length) {
        r.status = 'error';
        r.message = `${r.message ? r.message + '; ' : ''}uncaptured GPU errors: ${errs.join(' | ')}`;
        renderResults();
      }
    }
    $('status').textContent = `Done: ${sources.length} checkpoint(s).`;
  } catch (e) {
    results.error = errText(e);
    $('status').textContent = `Error: ${results.error}`;
  } finally {
    results.running = false;
    results.done = true;
  }
}

function fixtureSources(names: string[] | 'all'): PageSource[] {
  const pick = names === 'all' ? fixtureList : names.map((n) => fixtureList.find((f) => f.name === n || f.path === n) ?? { path: n, name: n });
  return pick.map((f) => urlSource(`./fixtures/${f.path}/`, f.name));
}

async function loadFixtures(): Promise<void> {
  try {
    const r = await fetch('./fixtures/index.json');
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const j = (await r.json()) as { fixtures: { path: string; name: string }[] };
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
    void runSources(fixtureSources(sel));
  };
  $('run-all').onclick = () => void runSources(fixtureSources('all'));
  $('run-url').onclick = () => {
    const u = $<HTMLInputElement>('url').value.trim();
    if (u) void runSources([urlSource(u)]);
  };
  const pick = $<HTMLInputElement>('pick');
  pick.onchange = () => {
    const files = [...(pick.files ?? [])].map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));
    const srcs = fileSources(files);
    if (!srcs.length) $('status').textContent = 'No folder with a config.json or model.safetensors among the picked files.';
    else void runSources(srcs);
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
    const srcs = fileSources(await filesFromDrop(ev.dataTransfer));
    if (!srcs.length) $('status').textContent = 'No folder with a config.json or model.safetensors in the drop.';
    else void runSources(srcs);
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
  if (run) await runSources(fixtureSources(run === 'all' ? 'all' : run.split(',').map((s) => s.trim()).filter(Boolean)));
  else if (url) await runSources([urlSource(url)]);
}

main().catch((e) => {
  results.error = errText(e);
  results.ready = true;
  results.done = true;
  $('status').textContent = `Error: ${results.error}`;
});
