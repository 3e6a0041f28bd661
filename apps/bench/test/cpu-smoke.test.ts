import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { createCpuLayer, cpuForward, routeToken } from '../src/cpu-moe.js';
import { TINY } from '../src/models.js';
import { parseReport } from '../src/schema.js';

describe('CPU device', () => {
  it('--quick smoke run on the CPU with a tiny model writes JSON and HTML', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-'));
    const json = join(dir, 'r.json');
    const html = join(dir, 'r.html');
    const code = await main(['--quick', '--device', 'cpu', '--models', 'tiny', '--tokens', '1,4', '--iters', '3', '--warmup', '1', '--json', json, '--html', html]);
    expect(code).toBe(0);
    const r = parseReport(readFileSync(json, 'utf8'));
    expect(r.device).toMatch(/^cpu/);
    expect(r.copyGBps).toBeGreaterThan(0);
    expect(r.results.map((x) => [x.model, x.tokens, x.dtype, x.impl])).toEqual([
      ['tiny', 1, 'bf16', 'cpu-ref'],
      ['tiny', 4, 'bf16', 'cpu-ref'],
    ]);
    for (const x of r.results) {
      expect(x.error).toBeUndefined();
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.p10Ms).toBeLessThanOrEqual(x.medianMs);
      expect(x.p90Ms).toBeGreaterThanOrEqual(x.medianMs);
      expect(x.gbps).toBeGreaterThan(0);
      expect(x.expertsHitSource).toBe('routing');
    }
    expect(r.results[0].expertsHit).toBe(2); // one token, k = 2
    expect(readFileSync(html, 'utf8')).toContain('tiny: forward time');
  });
  it('routing: softmax top-k with renormalisation (hand computed)', () => {
    const r = routeToken(TINY, new Float32Array([0, Math.log(3), Math.log(2), 0]));
    // probs 1/7, 3/7, 2/7, 1/7 -> experts 1, 2 with weights 3/5, 2/5
    expect(r.idx).toEqual([1, 2]);
    expect(r.w[0]).toBeCloseTo(0.6, 6);
    expect(r.w[1]).toBeCloseTo(0.4, 6);
  });
  it('forward is deterministic and finite', () => {
    const l = createCpuLayer(TINY, 'bf16');
    const x = new Float32Array(3 * TINY.H).map((_, i) => Math.sin(i));
    const a = cpuForward(l, x, 3);
    const b = cpuForward(l, x, 3);
    expect(a.out).toEqual(b.out);
    expect(a.out.every(Number.isFinite)).toBe(true);
    expect(a.out.some((v) => v !== 0)).toBe(true);
  });
});

describe('CPU device budgets', () => {
  it('skips a real-size layer visibly instead of running it for hours', async () => {
    const { runBench } = await import('../src/bench.js');
    const { parseArgs } = await import('../src/args.js');
    const { Progress } = await import('../src/progress.js');
    const r = await runBench(parseArgs(['--models', 'mixtral-8x7b', '--tokens', '1', '--iters', '1', '--warmup', '0', '--copy-mib', '4']), { kind: 'cpu', name: 'cpu', reason: 'test' }, new Progress(3, { write: () => true }, false));
    expect(r.results).toHaveLength(1);
    expect(r.results[0].error).toMatch(/skipped on the CPU device: .*GiB of weights/);
    expect(Number.isNaN(r.results[0].medianMs)).toBe(true);
  });
});
