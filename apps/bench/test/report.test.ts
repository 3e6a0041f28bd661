import { describe, expect, it } from 'vitest';
import { reportToHtml } from '../src/html.js';
import { parseReport, reportToJson, SCHEMA, type BenchReport, type ResultRow } from '../src/schema.js';
import { formatTable, rowNotes } from '../src/table.js';

function row(model: string, tokens: number, medianMs: number, extra: Partial<ResultRow> = {}): ResultRow {
  return {
    model, tokens, dtype: 'bf16', device: 'test-gpu', impl: 'kernels', medianMs, p10Ms: medianMs * 0.9, p90Ms: medianMs * 1.2,
    gbps: 100 / medianMs, tflops: tokens / medianMs, intensity: tokens * 2, copyRatio: 0.5, floorMs: medianMs / 2, expertsHit: 2, expertsHitSource: 'routing',
    kernels: [{ name: 'moe_gemv', medianMs: medianMs * 0.8, calls: 2, share: 0.8 }, { name: 'router', medianMs: medianMs * 0.2, calls: 1, share: 0.2 }],
    ...extra,
  };
}

const report: BenchReport = {
  device: 'Test <GPU> & co', deviceKind: 'gpu', copyGBps: 1000, peakTflops: 50, peakSource: 'test', date: '2026-11-28T00:00:00Z',
  results: [row('mixtral-8x7b', 1, 0.5), row('mixtral-8x7b', 16, 1.5), row('qwen3-30b-a3b', 1, 0.3), { ...row('qwen3-30b-a3b', 16, NaN), error: 'LimitError: too big <x>', kernels: [] }],
};
const torch: BenchReport = {
  device: 'NVIDIA H200', copyGBps: 4192, label: 'torch',
  results: [
    { model: 'mixtral-8x7b', tokens: 1, dtype: 'bf16', device: 'NVIDIA H200', impl: 'eager', medianMs: 1.0, p10Ms: 0.9, p90Ms: 1.1, gbps: 1, tflops: 1, kernels: [] },
    { model: 'mixtral-8x7b', tokens: 1, dtype: 'bf16', device: 'NVIDIA H200', impl: 'batched_mm', medianMs: 0.7, p10Ms: 0.6, p90Ms: 0.8, gbps: 1, tflops: 1, kernels: [] },
  ],
};

describe('JSON writer', () => {
  it('writes the schema fields, NaN as null, and parses back', () => {
    const text = reportToJson(report);
    const j = JSON.parse(text);
    expect(j.schema).toBe(SCHEMA);
    expect(j.device).toBe('Test <GPU> & co');
    expect(j.copyGBps).toBe(1000);
    expect(j.results).toHaveLength(4);
    for (const k of ['model', 'tokens', 'dtype', 'device', 'medianMs', 'gbps', 'tflops', 'p10Ms', 'p90Ms', 'kernels']) expect(j.results[0]).toHaveProperty(k);
    expect(j.results[0].kernels[0]).toEqual({ name: 'moe_gemv', medianMs: 0.4, calls: 2, share: 0.8 });
    expect(j.results[3].medianMs).toBeNull();
    expect(j.results[3].error).toMatch(/LimitError/);
    const back = parseReport(text);
    expect(back.results[1].medianMs).toBe(1.5);
    expect(Number.isNaN(back.results[3].medianMs)).toBe(true);
  });
  it('parseReport says what is missing', () => {
    expect(() => parseReport('{"results": []}')).toThrow(/device/);
    expect(() => parseReport('{"device": "x", "results": [{"model": "m", "dtype": "bf16"}]}')).toThrow(/tokens/);
    expect(() => parseReport('{"device": "x"}')).toThrow(/results/);
  });
});

/** Checks that tags balance (the SVG parts are XML), ignoring void HTML elements. */
function balanced(xml: string): boolean {
  const stack: string[] = [];
  const voids = new Set(['meta', 'br', '!doctype']);
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z!][\w-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    const n = name.toLowerCase();
    if (self || voids.has(n)) continue;
    if (close) {
      if (stack.pop() !== n) return false;
    } else stack.push(n);
  }
  return stack.length === 0;
}

describe('HTML writer', () => {
  const html = reportToHtml(report, torch);
  it('is a self-contained, well-formed document', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(balanced(html)).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|url\(/);
    expect(html).not.toMatch(/href="http/);
    expect(html).toContain('Test &lt;GPU&gt; &amp; co');
    expect(html).toContain('LimitError: too big &lt;x&gt;');
  });
  it('contains the time charts per model and the roofline with both roofs', () => {
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).toHaveLength(3); // mixtral, qwen3, roofline
    for (const s of svgs) expect(balanced(s)).toBe(true);
    expect(svgs[0]).toContain('mixtral-8x7b: forward time');
    expect(svgs[0]).toContain('<polyline'); // our two points joined
    expect(svgs[0]).toContain('kernels bf16'); // our series, by impl and dtype
    expect(svgs[0]).toContain('torch bf16'); // the compared run, dashed
    expect(svgs[2]).toContain('roofline');
    expect(svgs[2]).toContain('1000 GB/s'); // bandwidth roof label
    expect(svgs[2]).toContain('50.0 TFLOP/s'); // compute roof label
    expect((svgs[2].match(/class="roof"/g) ?? []).length).toBe(2);
    // the compared run's fastest impl is in the table
    expect(html).toContain('0.700 <small>batched_mm</small>');
  });
  it('console table with the comparison column', () => {
    const t = formatTable(report, torch);
    expect(t).toMatch(/mixtral-8x7b\s+bf16\s+1\s+kernels\s+0\.500/);
    expect(t).toContain('batched_mm');
    expect(t).toContain('FAILED: LimitError');
    expect(t).toContain('moe_gemvx2 0.400 ms (80%)');
  });
});

describe('row notes', () => {
  const noted: BenchReport = {
    ...report,
    results: [
      row('mixtral-8x7b', 256, 1.9, { note: 're-timed: on the first try the device median 5.37 ms above the back-to-back wall time 2.10 ms per forward; scaled down: H, I, E of mixtral divided by 16' }),
      ...[1, 16, 128, 512, 4096].map((T) => row('qwen3-30b-a3b', T, 1, { note: 'scaled down: H, I, E of qwen3 divided by 8' })),
      row('qwen3-30b-a3b', 1, 9, { impl: 'cpu', note: 'scaled down: H, I, E of qwen3 divided by 8' }),
      row('gpt-oss-20b', 1, 0.5),
    ],
  };
  it('name the rows (and their path) that carry each part of a note, first seen first, at most 4 then a count', () => {
    expect(rowNotes(noted.results)).toEqual([
      { note: 're-timed: on the first try the device median 5.37 ms above the back-to-back wall time 2.10 ms per forward', rows: 'mixtral-8x7b bf16 T=256 kernels' },
      { note: 'scaled down: H, I, E of mixtral divided by 16', rows: 'mixtral-8x7b bf16 T=256 kernels' },
      { note: 'scaled down: H, I, E of qwen3 divided by 8', rows: 'qwen3-30b-a3b bf16 T=1 kernels, qwen3-30b-a3b bf16 T=16 kernels, qwen3-30b-a3b bf16 T=128 kernels, qwen3-30b-a3b bf16 T=512 kernels and 2 more' },
    ]);
    expect(rowNotes([row('a', 1, 1)])).toEqual([]);
    expect(rowNotes(noted.results, 10)[2].rows).toContain('qwen3-30b-a3b bf16 T=1 cpu');
  });
  it('appear in the text table and the HTML report with their rows', () => {
    expect(formatTable(noted)).toContain('note (mixtral-8x7b bf16 T=256 kernels): re-timed: on the first try the device median 5.37 ms');
    expect(reportToHtml(noted)).toContain('<b>mixtral-8x7b bf16 T=256 kernels</b>: re-timed: on the first try');
  });
});
