/**
 * The HTML report: one self-contained file (inline CSS and SVG, no scripts,
 * no external assets): time against tokens per model (log axes), a roofline
 * (arithmetic intensity against achieved TFLOP/s under the bandwidth and
 * compute roofs), and the table with the per-kernel breakdown.
 */
import type { BenchReport, ResultRow } from './schema.js';
import { bestByKey, checkCell, normDtype, rowKey, rowNotes } from './table.js';

/** Escapes text for HTML. @example `esc('<a>') // '&lt;a&gt;'` */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const W = 520;
const H = 320;
const M = { l: 64, r: 16, t: 28, b: 44 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

interface Series {
  label: string;
  points: { x: number; y: number; tip: string }[];
  dashed?: boolean;
  color: string;
  marker?: 'circle' | 'square';
  line?: boolean;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const e = Math.floor(Math.log10(Math.abs(v)));
  return e >= -2 && e <= 4 ? String(Number(v.toPrecision(3))) : `1e${e}`;
}

/** A log-log chart as an SVG string. Non-finite and non-positive points are dropped. */
export function logChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; extra?: (sx: (x: number) => number, sy: (y: number) => number, d: { x0: number; x1: number; y0: number; y1: number }) => string; xDomain?: [number, number]; yDomain?: [number, number]; legendLeft?: boolean }): string {
  const pts = opts.series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  let [x0, x1] = opts.xDomain ?? [Math.min(...xs, Infinity), Math.max(...xs, -Infinity)];
  let [y0, y1] = opts.yDomain ?? [Math.min(...ys, Infinity), Math.max(...ys, -Infinity)];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [1, 10];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [1, 10];
  x0 = 10 ** Math.floor(Math.log10(x0));
  x1 = 10 ** Math.ceil(Math.log10(x1) + (x1 === x0 ? 1 : 0));
  y0 = 10 ** Math.floor(Math.log10(y0));
  y1 = 10 ** Math.ceil(Math.log10(y1) + (y1 === y0 ? 1 : 0));
  if (x1 <= x0) x1 = x0 * 10;
  if (y1 <= y0) y1 = y0 * 10;
  const sx = (x: number) => M.l + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - M.l - M.r);
  const sy = (y: number) => H - M.b - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (H - M.t - M.b);
  const g: string[] = [];
  g.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">`);
  g.push(`<title>${esc(opts.title)}</title>`);
  g.push(`<text x="${W / 2}" y="16" text-anchor="middle" class="t">${esc(opts.title)}</text>`);
  for (let e = Math.round(Math.log10(x0)); e <= Math.round(Math.log10(x1)); e++) {
    const x = sx(10 ** e);
    g.push(`<line x1="${x.toFixed(1)}" y1="${M.t}" x2="${x.toFixed(1)}" y2="${H - M.b}" class="grid"/><text x="${x.toFixed(1)}" y="${H - M.b + 14}" text-anchor="middle">${fmt(10 ** e)}</text>`);
  }
  for (let e = Math.round(Math.log10(y0)); e <= Math.round(Math.log10(y1)); e++) {
    const y = sy(10 ** e);
    g.push(`<line x1="${M.l}" y1="${y.toFixed(1)}" x2="${W - M.r}" y2="${y.toFixed(1)}" class="grid"/><text x="${M.l - 4}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  g.push(`<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" class="frame"/>`);
  g.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  g.push(`<text transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  if (opts.extra) g.push(opts.extra(sx, sy, { x0, x1, y0, y1 }));
  opts.series.forEach((s, i) => {
    const p = s.points.filter((q) => q.x > 0 && q.y > 0 && Number.isFinite(q.x) && Number.isFinite(q.y)).sort((a, b) => a.x - b.x);
    if (s.line !== false && p.length > 1) {
      g.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${p.map((q) => `${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const q of p) {
      const cx = sx(q.x).toFixed(1);
      const cy = sy(q.y).toFixed(1);
      g.push(
        s.marker === 'square'
          ? `<rect x="${(+cx - 3.5).toFixed(1)}" y="${(+cy - 3.5).toFixed(1)}" width="7" height="7" fill="${s.color}"><title>${esc(q.tip)}</title></rect>`
          : `<circle cx="${cx}" cy="${cy}" r="3.5" fill="${s.color}"><title>${esc(q.tip)}</title></circle>`,
      );
    }
    const ly = M.t + 12 + i * 14;
    const lx = opts.legendLeft ? M.l + 8 : W - M.r - 150;
    g.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 16}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 2"' : ''}/><text x="${lx + 20}" y="${ly}" class="lg">${esc(s.label)}</text>`);
  });
  g.push('</svg>');
  return g.join('\n');
}

/** A short label for a rate. */
function nice(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

function ok(r: ResultRow): boolean {
  return !r.error && Number.isFinite(r.medianMs);
}

/** Time against tokens for one model: our dtypes, and the compared run's rows dashed. */
export function timeChart(model: string, ours: BenchReport, other?: BenchReport): string {
  const series: Series[] = [];
  // one series per (impl, dtype): our layer's dtypes, and peers run in the same bench (ort-qmoe int4)
  const keys = [...new Set(ours.results.filter((r) => r.model === model).map((r) => `${r.impl ?? 'ours'} ${r.dtype}`))];
  keys.forEach((key, i) => {
    series.push({
      label: key,
      color: COLORS[i % COLORS.length],
      points: ours.results.filter((r) => r.model === model && `${r.impl ?? 'ours'} ${r.dtype}` === key && ok(r)).map((r) => ({ x: r.tokens, y: r.medianMs, tip: `${model} ${key} T=${r.tokens}: ${r.medianMs.toPrecision(3)} ms` })),
    });
  });
  if (other) {
    const best = bestByKey(other);
    const rows = [...best.values()].filter((r) => r.model === model);
    const od = [...new Set(rows.map((r) => normDtype(r.dtype)))];
    od.forEach((d, i) => {
      series.push({
        label: `${other.label ?? 'other'} ${d}`,
        color: COLORS[(i + 4) % COLORS.length],
        dashed: true,
        marker: 'square',
        points: rows.filter((r) => normDtype(r.dtype) === d).map((r) => ({ x: r.tokens, y: r.medianMs, tip: `${other.label ?? 'other'} ${r.impl ?? ''} ${model} ${d} T=${r.tokens}: ${r.medianMs.toPrecision(3)} ms` })),
      });
    });
  }
  return logChart({ title: `${model}: forward time`, xLabel: 'tokens T', yLabel: 'median ms', series });
}

/** The roofline: intensity (flop/byte) against achieved TFLOP/s, under min(bandwidth * intensity, peak). */
export function rooflineChart(ours: BenchReport, other?: BenchReport): string {
  const models = [...new Set(ours.results.map((r) => r.model))];
  const series: Series[] = models.map((m, i) => ({
    label: m,
    color: COLORS[i % COLORS.length],
    line: false,
    points: ours.results.filter((r) => r.model === m && ok(r) && r.intensity).map((r) => ({ x: r.intensity!, y: r.tflops, tip: `${m} ${r.dtype} T=${r.tokens}: ${r.tflops.toPrecision(3)} TFLOP/s at ${r.intensity!.toPrecision(3)} flop/B` })),
  }));
  if (other) {
    const pts = [...bestByKey(other).values()]
      .map((r) => {
        const mine = ours.results.find((x) => rowKey(x) === rowKey(r));
        const ai = r.intensity ?? mine?.intensity;
        return ai ? { x: ai, y: r.tflops, tip: `${other.label ?? 'other'} ${r.impl ?? ''} ${r.model} T=${r.tokens}: ${r.tflops.toPrecision(3)} TFLOP/s` } : undefined;
      })
      .filter((p): p is { x: number; y: number; tip: string } => !!p);
    series.push({ label: other.label ?? 'other', color: '#555', marker: 'square', line: false, points: pts });
  }
  const bw = ours.copyGBps;
  const peak = ours.peakTflops ?? NaN;
  const ais = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).concat(Number.isFinite(peak) ? [peak] : []);
  const knee = Number.isFinite(peak) && bw > 0 ? (peak * 1000) / bw : 10;
  const xDomain: [number, number] = [Math.min(...ais, 1), Math.max(...ais, 10, knee * 3)];
  const yDomain: [number, number] = [Math.min(...ys.filter((y) => y > 0), (bw * xDomain[0]) / 1000), Math.max(...ys, 1e-6)];
  return logChart({
    title: 'roofline',
    xLabel: 'arithmetic intensity (flop / byte moved)',
    yLabel: 'TFLOP/s',
    series,
    xDomain,
    yDomain,
    legendLeft: true,
    extra: (sx, sy, d) => {
      const parts: string[] = [];
      if (Number.isFinite(bw) && bw > 0) {
        // bandwidth roof: TFLOP/s = GB/s * flop/B / 1000, clipped at the compute roof
        const knee = Number.isFinite(peak) ? (peak * 1000) / bw : d.x1;
        const xa = d.x0;
        const xb = Math.min(d.x1, Math.max(knee, d.x0));
        const ya = (bw * xa) / 1000;
        const yb = (bw * xb) / 1000;
        parts.push(`<line x1="${sx(xa).toFixed(1)}" y1="${sy(Math.max(ya, d.y0)).toFixed(1)}" x2="${sx(xb).toFixed(1)}" y2="${sy(Math.min(yb, d.y1)).toFixed(1)}" class="roof"><title>copy bandwidth ${bw.toPrecision(4)} GB/s</title></line>`);
        parts.push(`<text x="${(sx(xa) + 6).toFixed(1)}" y="${(sy(Math.max(ya, d.y0)) - 6).toFixed(1)}" class="rl">${esc(`${nice(bw)} GB/s`)}</text>`);
      }
      if (Number.isFinite(peak) && peak > 0) {
        const knee = Number.isFinite(bw) && bw > 0 ? (peak * 1000) / bw : d.x0;
        parts.push(`<line x1="${sx(Math.max(knee, d.x0)).toFixed(1)}" y1="${sy(peak).toFixed(1)}" x2="${sx(d.x1).toFixed(1)}" y2="${sy(peak).toFixed(1)}" class="roof"><title>compute roof ${peak.toPrecision(4)} TFLOP/s</title></line>`);
        parts.push(`<text x="${(sx(d.x1) - 4).toFixed(1)}" y="${(sy(peak) - 6).toFixed(1)}" text-anchor="end" class="rl">${esc(`${nice(peak)} TFLOP/s`)}</text>`);
      }
      return parts.join('\n');
    },
  });
}

function n(x: number | undefined, d = 3): string {
  return x === undefined || x === null || !Number.isFinite(x) ? '–' : x >= 1000 ? x.toFixed(0) : x.toPrecision(d);
}

/**
 * The whole report as one HTML document.
 * @example `writeFileSync('bench.html', reportToHtml(report, torchReport))`
 */
export function reportToHtml(r: BenchReport, other?: BenchReport): string {
  const models = [...new Set(r.results.map((x) => x.model))];
  const best = bestByKey(other);
  const rows = r.results
    .map((x) => {
      const o = best.get(rowKey(x));
      const kern = x.kernels.map((k) => `${esc(k.name)}${k.calls > 1 ? `×${k.calls}` : ''} ${n(k.medianMs)} (${(k.share * 100).toFixed(0)}%)`).join('<br>');
      const cells = x.error
        ? `<td colspan="${other ? 18 : 17}" class="err">${esc(x.error)}</td>`
        : `<td>${n(x.medianMs)}</td><td>${n(x.p10Ms)} – ${n(x.p90Ms)}</td><td>${n(x.wallMs)}</td><td>${n(x.wallGpuMs)}</td><td>${n(x.hostUs)}</td><td>${n(x.wallStackMs)}</td><td>${x.stack ? `${x.stackLayers}/${x.stack}` : '–'}</td><td>${n(x.wallHostMs)}</td><td>${n(x.wallHostOutMs)}</td><td>${n(x.gbps)}</td><td>${n(x.copyRatio, 2)}</td><td>${n(x.tflops)}</td><td>${n(x.floorMs)} / ${n(x.computeFloorMs)}</td><td>${n(x.expertsHit)}${x.expertsHitSource === 'routing' ? '' : '*'}</td><td>${esc(x.timing ?? '')}</td><td>${esc(checkCell(x.check))}</td>` +
          (other ? `<td>${o ? `${n(o.medianMs)}${o.wallGpuMs ? ` / ${n(o.wallGpuMs)}` : ''} <small>${esc(o.impl ?? '')}</small>` : '–'}</td>` : '') +
          `<td class="k">${kern}</td>`;
      return `<tr><td>${esc(x.model)}</td><td>${esc(x.dtype)}</td><td>${x.tokens}</td><td>${esc(x.impl ?? '')}</td>${cells}</tr>`;
    })
    .join('\n');
  const notes = rowNotes(r.results);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WebMoE bench: ${esc(r.device)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
td:nth-child(-n+4),th{text-align:left}.k{text-align:left;font-size:11px}.err{color:#b00;text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #ddd;background:#fff}
.chart text{font-size:10px;fill:#333}.chart .t{font-size:12px;font-weight:600}.chart .lg{font-size:10px}
.grid{stroke:#eee}.frame{fill:none;stroke:#999}.roof{stroke:#000;stroke-width:1.5;stroke-dasharray:6 3}.rl{font-size:10px}
</style></head><body>
<h1>WebMoE MoE-layer bench</h1>
<p>device: <b>${esc(r.device)}</b> (${esc(r.deviceKind ?? '')}) · copy bandwidth ${n(r.copyGBps)} GB/s (read + write, measured) · compute roof ${n(r.peakTflops)} TFLOP/s (${esc(r.peakSource ?? '')}) · ${esc(r.date ?? '')}${other ? ` · compared with <b>${esc(other.label ?? other.device)}</b> (${esc(other.device)})` : ''}</p>
<h2>Forward time against tokens</h2>
<div class="charts">
${models.map((m) => timeChart(m, r, other)).join('\n')}
</div>
<h2>Roofline</h2>
<div class="charts">
${rooflineChart(r, other)}
</div>
<h2>Results</h2>
<table><thead><tr><th>model</th><th>dtype</th><th>T</th><th>impl</th><th>median ms</th><th>p10 – p90 ms</th><th>wall ms</th><th>wallGpu ms</th><th>host µs</th><th>stack ms</th><th>layers</th><th>wallHost ms</th><th>out ms</th><th>GB/s</th><th>× copy</th><th>TFLOP/s</th><th>floor ms (bytes / flops)</th><th>experts hit</th><th>timing</th><th>check (rel. err vs float64 reference)</th>${other ? '<th>other ms (device / wallGpu)</th>' : ''}<th>kernels (median ms, share)</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p>What a caller gets: wallGpu ms is the wall time per layer of a chain of <i>stack</i> <code>forwardGpuSync</code> calls with GPU-resident activations, drained once (host µs: the CPU time to issue one); stack ms is the same chain as one <code>MoEStack</code> step (one submit); layers: distinct layers / chain length (the chain cycles over the layers that fit the memory budget); wallHost ms: <code>forward(Float32Array)</code> per call, host input and output (out ms: into an output array the caller keeps, <code>forward(x, { out })</code>).</p>
<p>GB/s: bytes that must move (weights of the experts hit, shared experts, router, x and y) over the median time. × copy: that over the measured copy bandwidth. floor ms: those bytes over the copy bandwidth / the flops over the compute roof. check: the timed forward's output on a sample of tokens reaching every routed expert, against the bench's float64 reference reading the same weights (relative L2 error; FAIL above the tolerance). experts hit: distinct experts in this run's routing (* = expected count for uniform routing). TFLOP/s: 2·T·k·3·H·I + router 2·T·H·E + shared experts, over the median time.</p>
${notes.map(({ note, rows }) => `<p><small><b>${esc(rows)}</b>: ${esc(note)}</small></p>`).join('\n')}
</body></html>
`;
}
