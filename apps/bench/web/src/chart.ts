// Inline SVG charts: per-kernel times as horizontal stacked bars, one row per checkpoint.
import type { KernelTime } from './types.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

/** One bar: a label and its segments (kernel times in ms). */
export interface BarRow {
  label: string;
  segments: KernelTime[];
  note?: string;
}

/**
 * Draws rows of stacked horizontal bars with a shared ms axis and a legend
 * of the kernel names. Returns an SVG string.
 */
export function stackedBars(rows: BarRow[], opts: { width?: number; title?: string } = {}): string {
  const width = opts.width ?? 760;
  const labelW = 130;
  const valueW = 110;
  const rowH = 26;
  const top = opts.title ? 28 : 8;
  const names = [...new Set(rows.flatMap((r) => r.segments.map((s) => s.name)))];
  const color = (n: string) => PALETTE[names.indexOf(n) % PALETTE.length];
  const totals = rows.map((r) => r.segments.reduce((a, s) => a + s.ms, 0));
  const max = Math.max(1e-6, ...totals);
  const plotW = width - labelW - valueW;
  const legendCols = Math.max(1, Math.floor(width / 190));
  const legendRows = Math.ceil(names.length / legendCols);
  const height = top + rows.length * rowH + 24 + legendRows * 18 + 8;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12" role="img">`);
  if (opts.title) parts.push(`<text x="0" y="16" font-weight="600" font-size="13">${esc(opts.title)}</text>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    let x = labelW;
    for (const s of r.segments) {
      const w = (s.ms / max) * plotW;
      parts.push(
        `<rect x="${x.toFixed(2)}" y="${y + 4}" width="${Math.max(0.5, w).toFixed(2)}" height="${rowH - 8}" fill="${color(s.name)}"><title>${esc(`${r.label}: ${s.name} ${fmtMs(s.ms)} ms (${s.count} dispatch${s.count === 1 ? '' : 'es'})`)}</title></rect>`,
      );
      x += w;
    }
    parts.push(`<text x="${x + 6}" y="${y + rowH / 2 + 4}" fill="#333">${esc(`${fmtMs(totals[i])} ms${r.note ? ` ${r.note}` : ''}`)}</text>`);
  });
  const axisY = top + rows.length * rowH + 2;
  parts.push(`<line x1="${labelW}" y1="${axisY}" x2="${labelW + plotW}" y2="${axisY}" stroke="#999"/>`);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const x = labelW + f * plotW;
    parts.push(`<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}" stroke="#999"/><text x="${x}" y="${axisY + 16}" text-anchor="middle" fill="#666" font-size="10">${fmtMs(f * max)} ms</text>`);
  }
  names.forEach((n, i) => {
    const lx = (i % legendCols) * 190;
    const ly = axisY + 30 + Math.floor(i / legendCols) * 18;
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color(n)}"/><text x="${lx + 16}" y="${ly}">${esc(n)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
