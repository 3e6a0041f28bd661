/** The console table of a report (stdout), with an optional comparison run beside it. */
import { formatStageProfile } from './stage-profile.js';
import type { BenchReport, ResultRow } from './schema.js';

function f(x: number | undefined, d = 3): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x >= 1000 ? x.toFixed(0) : x.toPrecision(Math.max(d, 1));
}

/** Key of a row for matching across runs. */
export function rowKey(r: Pick<ResultRow, 'model' | 'tokens' | 'dtype'>): string {
  return `${r.model}|${r.tokens}|${normDtype(r.dtype)}`;
}

/** 'bfloat16' and 'bf16' match. */
export function normDtype(d: string): string {
  return ({ bfloat16: 'bf16', float16: 'f16', float32: 'f32', float8_e4m3fn: 'fp8' } as Record<string, string>)[d] ?? d;
}

/**
 * The fastest row of `other` per key (several impls per shape in torch's file).
 * @example `bestByKey(torch).get('mixtral-8x7b|1|bf16')`
 */
export function bestByKey(other: BenchReport | undefined): Map<string, ResultRow> {
  const m = new Map<string, ResultRow>();
  for (const r of other?.results ?? []) {
    if (!Number.isFinite(r.medianMs)) continue;
    const k = rowKey(r);
    const b = m.get(k);
    if (!b || r.medianMs < b.medianMs) m.set(k, r);
  }
  return m;
}

/**
 * The check cell of a row: relative error against the float64 reference and ok/FAIL, '-' when unchecked.
 * @example `checkCell({ relErr: 2e-7, tol: 1e-4, pass: true }) // '2.0e-7 ok'`
 */
export function checkCell(c: ResultRow['check']): string {
  return c ? `${Number.isFinite(c.relErr) ? c.relErr.toExponential(1) : String(c.relErr)} ${c.pass ? 'ok' : 'FAIL'}` : '-';
}

/**
 * Each distinct row note (ResultRow.note, its parts joined by '; ': scaled-down shapes, stack sizes, a row timed
 * again, ...) with the rows that carry it (`model dtype T=n impl`), in the order first seen; at most `maxRows` rows
 * named, then how many more.
 * @example `rowNotes(report.results) // [{ note: 're-timed: ...', rows: 'mixtral-8x7b bf16 T=256 moe' }]`
 */
export function rowNotes(results: readonly ResultRow[], maxRows = 4): { note: string; rows: string }[] {
  const byNote = new Map<string, string[]>();
  for (const x of results) {
    // a row's notes are joined by '; '; rows of one model, dtype and T on other paths (GPU 'moe', 'cpu') name their impl
    const label = `${x.model} ${x.dtype} T=${x.tokens}${x.impl ? ` ${x.impl}` : ''}`;
    for (const note of (x.note ?? '').split('; ').filter(Boolean)) byNote.set(note, [...(byNote.get(note) ?? []), label]);
  }
  return [...byNote].map(([note, rows]) => ({ note, rows: rows.length > maxRows ? `${rows.slice(0, maxRows).join(', ')} and ${rows.length - maxRows} more` : rows.join(', ') }));
}

/**
 * Renders the table (one line per row, then the row notes and the per-kernel breakdown).
 * @example `console.log(formatTable(report))`
 */
export function formatTable(r: BenchReport, other?: BenchReport): string {
  const cmp = bestByKey(other);
  const head = ['model', 'dtype', 'T', 'impl', 'median ms', 'p10', 'p90', 'wall ms', 'wallGpu ms', 'host us', 'stack ms', 'stack us', 'layers', 'wallHost ms', 'out ms', 'GB/s', 'xcopy', 'TFLOP/s', 'floor ms', 'experts', 'check', 'GB', 'chunks'];
  if (other) head.push('other ms', 'other impl', 'ours/other', 'other wallGpu', 'wallGpu/other');
  const rows: string[][] = [head];
  for (const x of r.results) {
    if (x.error) {
      rows.push([x.model, x.dtype, String(x.tokens), x.impl ?? '', 'FAILED: ' + x.error.slice(0, x.check ? 200 : 100)]);
      continue;
    }
    const line = [x.model, x.dtype, String(x.tokens), x.impl ?? '', f(x.medianMs), f(x.p10Ms), f(x.p90Ms), f(x.wallMs), f(x.wallGpuMs), f(x.hostUs), f(x.wallStackMs), f(x.stackHostUs), x.stack ? `${x.stackLayers}/${x.stack}` : '-', f(x.wallHostMs), f(x.wallHostOutMs), f(x.gbps), f(x.copyRatio, 2), f(x.tflops), f(x.floorMs), `${f(x.expertsHit, 3)}${x.expertsHitSource === 'routing' ? '' : '*'}`, checkCell(x.check), x.gpuBytes ? (x.gpuBytes / 1e9).toFixed(2) : '-', x.chunks ? `${x.chunks.gateUp}+${x.chunks.down}` : '-'];
    if (other) {
      const o = cmp.get(rowKey(x));
      line.push(o ? f(o.medianMs) : '-', o?.impl ?? '-', o ? f(x.medianMs / o.medianMs, 3) : '-', f(o?.wallGpuMs), o?.wallGpuMs ? f((x.wallGpuMs ?? NaN) / o.wallGpuMs, 3) : '-');
    }
    rows.push(line);
  }
  const widths = head.map((_, c) => Math.max(...rows.filter((l) => l.length > 5).map((l) => (l[c] ?? '').length)));
  const out = [`device: ${r.device}  copy: ${f(r.copyGBps)} GB/s  fma roof: ${f(r.peakTflops)} TFLOP/s${other ? `  compared with: ${other.device}` : ''}`];
  for (const l of rows) out.push(l.length > 5 ? l.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') : l.join('  '));
  out.push('');
  out.push('wallGpu ms / host us: per layer of a chain of `stack` forwardGpuSync calls (GPU-resident activations, drained once; host = CPU time to issue). stack ms / us: the same chain as one MoEStack submit. layers: distinct/chained. wallHost ms: forward(Float32Array) per call (out ms: into a kept output array, forward(x, { out })).');
  for (const { note, rows } of rowNotes(r.results)) out.push(`note (${rows}): ${note}`);
  for (const x of r.results) if (x.stageProfile) out.push(`${x.model} ${x.dtype} T=${x.tokens} stages: ${formatStageProfile(x.stageProfile)}`);
  for (const x of r.results) {
    if (!x.kernels.length) continue;
    out.push(`${x.model} ${x.dtype} T=${x.tokens}: ` + x.kernels.map((k) => `${k.name}${k.calls > 1 ? `x${k.calls}` : ''} ${f(k.medianMs)} ms (${(k.share * 100).toFixed(0)}%)`).join(', '));
  }
  return out.join('\n');
}
