import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { createHostLayer, hostForward, storedHostLayer } from '../src/host-layer.js';
import { TINY, type BenchDtype } from '../src/models.js';
import { randomWords } from '../src/fill.js';
import { PACKED_FILL, packedExpertSeeds } from '../src/moe-run.js';
import { QuantizedExperts } from '@webmoe/moe';
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
      ['tiny', 1, 'bf16', 'cpu'],
      ['tiny', 4, 'bf16', 'cpu'],
    ]);
    for (const x of r.results) {
      expect(x.error).toBeUndefined();
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.p10Ms).toBeLessThanOrEqual(x.medianMs);
      expect(x.p90Ms).toBeGreaterThanOrEqual(x.medianMs);
      expect(x.gbps).toBeGreaterThan(0);
      expect(x.expertsHitSource).toBe('routing');
      // the CPU row checked the forward it times against the float64 reference
      expect(x.check).toMatchObject({ pass: true, tokens: x.tokens, experts: x.expertsHit });
      expect(x.check!.relErr).toBeLessThan(x.check!.tol);
    }
    expect(r.results[0].expertsHit).toBe(2); // one token, k = 2
    expect(readFileSync(html, 'utf8')).toContain('tiny: forward time');
  });
  it('forward is deterministic and finite', () => {
    const l = createHostLayer(TINY, 'bf16');
    const x = new Float32Array(3 * TINY.H).map((_, i) => Math.sin(i));
    const a = hostForward(l, x, 3);
    const b = hostForward(l, x, 3);
    expect(a.out).toEqual(b.out);
    expect(a.out.every(Number.isFinite)).toBe(true);
    expect(a.out.some((v) => v !== 0)).toBe(true);
  });
});

describe('packed experts on the CPU path', () => {
  // the CPU layer's packed experts are the fill words of its seeds (packedExpertSeeds) and the GPU rows' value kinds (PACKED_FILL)
  for (const d of ['fp8', 'int4', 'int8', 'mxfp4'] as const) {
    it(`the host layer's ${d} experts are the fill words of packedExpertSeeds`, () => {
      const ex = createHostLayer(TINY, d).stacked;
      expect(ex).toBeInstanceOf(QuantizedExperts);
      const q = ex as QuantizedExperts;
      const seeds = packedExpertSeeds();
      const bytes = (t: { data: ArrayBufferView }) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (const [p, seed, kind] of [[q.gateUpProj, seeds.gateUp, PACKED_FILL[d].codes], [q.gateUpScale, seeds.gateUp + 1, PACKED_FILL[d].scales], [q.downProj, seeds.down, PACKED_FILL[d].codes], [q.downScale, seeds.down + 1, PACKED_FILL[d].scales]] as const) {
        const got = bytes(p.value);
        const want = new Uint8Array(randomWords(kind, p.value.data.length, seed).buffer, 0, got.length);
        expect(got, `${d} ${p.name}`).toEqual(want);
      }
    });
  }
  it('a tiny CPU run in int4, int8 and mxfp4 gives finite rows with packed bytes', async () => {
    const { runBench } = await import('../src/bench.js');
    const { parseArgs } = await import('../src/args.js');
    const { Progress } = await import('../src/progress.js');
    const r = await runBench(parseArgs(['--models', 'tiny', '--dtypes', 'int4,int8,mxfp4', '--tokens', '2', '--iters', '1', '--warmup', '0', '--copy-mib', '1']), { kind: 'cpu', name: 'cpu', reason: 'test' }, new Progress(5, { write: () => true }, false));
    expect(r.results.map((x) => [x.dtype, x.error])).toEqual([['int4', undefined], ['int8', undefined], ['mxfp4', undefined]]);
    for (const x of r.results) expect(x.check, x.dtype).toMatchObject({ pass: true, tokens: 2 });
    const [i4, i8, mx] = r.results;
    // same router (bf16, same seed) and x: the same experts hit; the rows differ only in the routed experts' bytes
    const hit = i4.expertsHit!;
    expect([i8.expertsHit, mx.expertsHit]).toEqual([hit, hit]);
    expect(i8.bytes! - i4.bytes!).toBe((hit * 3 * 64 * 32) / 2); // int8 codes are twice int4's; same f16 scales
    expect(i4.bytes! - mx.bytes!).toBe(hit * (64 * 2 + 64 * 1)); // (2I*H/32 + H*I/32) scales: f16 vs e8m0 bytes
    for (const d of ['int4', 'mxfp4'] as BenchDtype[]) {
      const out = hostForward(createHostLayer(TINY, d), new Float32Array(2 * TINY.H).map((_, i) => Math.sin(i)), 2).out;
      expect(out.every(Number.isFinite)).toBe(true);
      expect(out.some((v) => v !== 0)).toBe(true);
    }
  });
});

describe('CPU rows check what they time', () => {
  it('fp8 (block scales held by the layer), f16 and f32 rows pass their check; a wrong output fails it', async () => {
    const { runBench } = await import('../src/bench.js');
    const { parseArgs } = await import('../src/args.js');
    const { Progress } = await import('../src/progress.js');
    const r = await runBench(parseArgs(['--models', 'tiny', '--dtypes', 'fp8,f16,f32', '--tokens', '3', '--iters', '1', '--warmup', '0', '--copy-mib', '1']), { kind: 'cpu', name: 'cpu', reason: 'test' }, new Progress(5, { write: () => true }, false));
    expect(r.results.map((x) => [x.dtype, x.error, x.check?.pass])).toEqual([['fp8', undefined, true], ['f16', undefined, true], ['f32', undefined, true]]);
    const { checkForward } = await import('../src/check.js');
    const l = createHostLayer(TINY, 'fp8');
    const x = new Float32Array(3 * TINY.H).map((_, i) => Math.sin(i));
    const f = hostForward(l, x, 3);
    expect((await checkForward(TINY, storedHostLayer(l), x, f.out, f.idx)).pass).toBe(true);
    const bad = f.out.map((v, i) => (i === 5 ? v + 0.1 : v));
    expect((await checkForward(TINY, storedHostLayer(l), x, bad, f.idx)).pass).toBe(false);
    // the layer's fp8 block scales are what the forward uses: scaling them scales the routed experts' output
    ((l.stacked as QuantizedExperts).gateUpScale.value.data as Float32Array).fill(2 ** -6); // instead of 2^-7
    const g = hostForward(l, x, 3);
    expect(g.out).not.toEqual(f.out);
    expect((await checkForward(TINY, storedHostLayer(l), x, g.out, g.idx)).pass).toBe(true);
  });
});

describe('CPU device budgets', () => {
  it('skips a real-size layer visibly instead of running it for hours', async () => {
    const { runBench } = await import('../src/bench.js');
    const { parseArgs } = await import('../src/args.js');
    const { Progress } = await import('../src/progress.js');
    const r = await runBench(parseArgs(['--models', 'mixtral-8x7b', '--tokens', '1', '--iters', '1', '--warmup', '0', '--copy-mib', '4']), { kind: 'cpu', name: 'cpu', reason: 'test' }, new Progress(3, { write: () => true }, false));
    expect(r.results).toHaveLength(1);
    expect(r.results[0].error).toMatch(/skipped on the CPU path: .*GiB of weights/);
    expect(Number.isNaN(r.results[0].medianMs)).toBe(true);
  });
});
