// The check's worker pool against the one-thread runner: same jobs, bit-identical outputs, every stored format.
// The workers run the built module (dist/check-worker.js; `pnpm build` runs before the tests), so this imports dist.
import { describe, expect, it } from 'vitest';
import { checkRunner, checkThreads } from '../dist/check-pool.js';
import { runExpertsInline, type ExpertBytes, type ExpertJob } from '../dist/reference.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function bytes(kind: string, rows: number, cols: number, r: () => number): ExpertBytes {
  const u8 = (n: number, max = 256) => Uint8Array.from({ length: n }, () => Math.floor(r() * max));
  const f64 = (n: number) => Float64Array.from({ length: n }, () => 0.01 + r() * 0.1);
  switch (kind) {
    case 'float32': return { kind: 'dense', rows, cols, dtype: 'float32', b: new Uint8Array(Float32Array.from({ length: rows * cols }, () => r() - 0.5).buffer) };
    case 'bfloat16': return { kind: 'dense', rows, cols, dtype: 'bfloat16', b: new Uint8Array(Uint16Array.from({ length: rows * cols }, () => 0x3c00 + Math.floor(r() * 0x800) + (r() < 0.5 ? 0x8000 : 0)).buffer) };
    case 'float16': return { kind: 'dense', rows, cols, dtype: 'float16', b: new Uint8Array(Uint16Array.from({ length: rows * cols }, () => 0x2c00 + Math.floor(r() * 0x800) + (r() < 0.5 ? 0x8000 : 0)).buffer) };
    case 'fp8': return { kind: 'fp8_block', rows, cols, block: [4, 8], q: u8(rows * cols, 0x7e), s: f64(Math.ceil(rows / 4) * Math.ceil(cols / 8)) };
    case 'int4': return { kind: 'int_block', rows, cols, bits: 4, blockSize: 8, q: u8((rows * cols) / 2), s: f64(rows * Math.ceil(cols / 8)) };
    case 'int8': return { kind: 'int_block', rows, cols, bits: 8, blockSize: 8, q: u8(rows * cols), s: f64(rows * Math.ceil(cols / 8)) };
    default: return { kind: 'mxfp4', rows, cols, blocks: u8((rows * cols) / 2), scales: u8((rows * cols) / 32, 8).map((v) => 120 + v) };
  }
}

describe('check pool', () => {
  it('WEBMOE_CHECK_THREADS is validated', () => {
    expect(checkThreads({ WEBMOE_CHECK_THREADS: '3' })).toBe(3);
    expect(() => checkThreads({ WEBMOE_CHECK_THREADS: '0' })).toThrow(/positive integer, got '0'/);
    expect(checkThreads({})).toBeGreaterThanOrEqual(1);
  });

  it('worker threads give the one-thread outputs bit for bit, every stored format', async () => {
    process.env.WEBMOE_CHECK_THREADS = '3';
    const run = checkRunner();
    expect(run).not.toBe(runExpertsInline); // the pool, not the fallback
    const r = rng(5);
    const H = 64;
    const I = 32;
    const jobs: ExpertJob[] = ['float32', 'bfloat16', 'float16', 'fp8', 'int4', 'int8', 'mxfp4'].map((kind, n) => {
      const xs = Array.from({ length: 1 + (n % 3) }, () => Float64Array.from({ length: H }, () => r() * 2 - 1));
      // the tokens are views of one buffer (the pool must copy only the views)
      const big = new Float64Array(xs.length * H + 7);
      const views = xs.map((x, j) => { big.set(x, j * H + 7); return big.subarray(j * H + 7, (j + 1) * H + 7); });
      return {
        gu: bytes(kind, 2 * I, H, r), dn: bytes(kind, H, I, r), I, H, xs: views,
        act: n % 2 ? { kind: 'silu', layout: 'concat' } : { kind: 'swigluoai', layout: 'interleaved', limit: 7, alpha: 1.702 },
        guBias: n === 2 ? Float64Array.from({ length: 2 * I }, () => r()) : undefined,
      } as ExpertJob;
    });
    const want = await runExpertsInline(jobs.map((j) => async () => j));
    const got = await run(jobs.map((j) => async () => j));
    expect(got.length).toBe(jobs.length);
    got.forEach((ys, n) => ys.forEach((y, t) => expect(Array.from(y), `job ${n} token ${t}`).toEqual(Array.from(want[n][t]))));
    // a job the worker cannot run rejects (never hangs)
    const bad = { ...jobs[0], gu: { ...jobs[0].gu, kind: 'nope' } } as unknown as ExpertJob;
    await expect(run([async () => bad])).rejects.toThrow(/check worker/);
  }, 60_000);
});
