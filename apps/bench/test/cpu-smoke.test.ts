import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { createCpuLayer, cpuForward, expertDecoder, routeToken } from '../src/cpu-moe.js';
import { TINY, type BenchDtype } from '../src/models.js';
import { randomWords } from '../src/fill.js';
import { decodeExpertRow, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { HostTensor } from '@webmoe/tensor';
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
      // the CPU row checked the forward it times against the float64 reference
      expect(x.check).toMatchObject({ pass: true, tokens: x.tokens, experts: x.expertsHit });
      expect(x.check!.relErr).toBeLessThan(x.check!.tol);
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

describe('packed experts on the CPU path', () => {
  // the bench's decoder of the fill words against the library's reference decoder of the same bytes
  // (ORT QMoE zero points 8/128 and nibble order; GPT-OSS e2m1 + e8m0)
  const E = 2, rows = 3, cols = 96;
  const bytes = (w: Uint32Array, n: number) => new Uint8Array(w.buffer, 0, n).slice();
  for (const d of ['int4', 'int8', 'mxfp4'] as BenchDtype[]) {
    it(`the bench's ${d} decoder matches decodeExpertRow`, () => {
      const n = E * rows * cols;
      const nCodes = d === 'int8' ? n : n / 2;
      const codes = randomWords('u8', nCodes, 3);
      const scales = randomWords(d === 'int4' ? 'i4scale' : d === 'int8' ? 'i8scale' : 'e8m0', n / 32, 4);
      const w: ExpertWeightsHost =
        d === 'mxfp4'
          ? { kind: 'mxfp4', blocks: new HostTensor('uint8', [E, rows, cols / 32, 16], bytes(codes, nCodes)), scales: new HostTensor('uint8', [E, rows, cols / 32], bytes(scales, n / 32)) }
          : { kind: 'int_block', bits: d === 'int4' ? 4 : 8, blockSize: 32, q: new HostTensor('uint8', [E, rows, nCodes / (E * rows)], bytes(codes, nCodes)), scales: new HostTensor('float16', [E, rows, cols / 32], new Uint16Array(scales.buffer, 0, n / 32).slice()) };
      const dec = expertDecoder(d, codes, scales, cols);
      const row = new Float32Array(cols);
      let nonzero = 0;
      for (let e = 0; e < E; e++)
        for (let r = 0; r < rows; r++) {
          decodeExpertRow(w, e, r, row);
          for (let c = 0; c < cols; c++) {
            const v = dec((e * rows + r) * cols + c);
            expect(Math.fround(v), `${d} [${e}, ${r}, ${c}]`).toBe(row[c]);
            if (v !== 0) nonzero++;
            expect(Math.abs(v)).toBeLessThan(2 ** -4); // int: < 8 * 2^-8 or 128 * 2^-12; mxfp4: <= 6 * 2^-7
          }
        }
      expect(nonzero).toBeGreaterThan(n / 2);
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
      const out = cpuForward(createCpuLayer(TINY, d), new Float32Array(2 * TINY.H).map((_, i) => Math.sin(i)), 2).out;
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
    const { checkForward, storedCpu } = await import('../src/check.js');
    const l = createCpuLayer(TINY, 'fp8');
    const x = new Float32Array(3 * TINY.H).map((_, i) => Math.sin(i));
    const f = cpuForward(l, x, 3);
    expect((await checkForward(TINY, storedCpu(l), x, f.out, f.idx)).pass).toBe(true);
    const bad = f.out.map((v, i) => (i === 5 ? v + 0.1 : v));
    expect((await checkForward(TINY, storedCpu(l), x, bad, f.idx)).pass).toBe(false);
    // the layer's fp8 block scales are what the forward uses: scaling them scales the routed experts' output
    l.gateUpScales!.fill(0x3c800000); // 2^-6 instead of 2^-7
    const g = cpuForward(l, x, 3);
    expect(g.out).not.toEqual(f.out);
    expect((await checkForward(TINY, storedCpu(l), x, g.out, g.idx)).pass).toBe(true);
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
