import { describe, expect, it } from 'vitest';
import { median, quantile, summarize, warmUp } from '../src/stats.js';

describe('stats', () => {
  it('median of odd and even counts (hand computed)', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });
  it('quantiles interpolate linearly between order statistics', () => {
    // sorted 10,20,30,40,50; p10 at position 0.4 -> 10 + 0.4*10 = 14; p90 at 3.6 -> 40 + 0.6*10 = 46
    const xs = [50, 10, 40, 20, 30];
    expect(quantile(xs, 0.1)).toBeCloseTo(14, 12);
    expect(quantile(xs, 0.9)).toBeCloseTo(46, 12);
    expect(quantile(xs, 0)).toBe(10);
    expect(quantile(xs, 1)).toBe(50);
    // 11 samples 0..10: p10 = 1 exactly
    expect(quantile([...Array(11).keys()], 0.1)).toBe(1);
  });
  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
  it('summary', () => {
    expect(summarize([2, 8, 4, 6])).toEqual({ median: 5, p10: 2.6, p90: 7.4, min: 2, max: 8, n: 4 });
  });
  it('rejects empty input and bad q', () => {
    expect(() => median([])).toThrow(/no samples/);
    expect(() => quantile([1], 1.5)).toThrow(/q must be/);
  });
});

import { kernelBreakdown } from '../src/bench.js';

describe('kernelBreakdown', () => {
  it('sums repeated kernels per forward, takes medians over forwards, shares of their sum', () => {
    const it1 = [{ name: 'a', ns: 1e6 }, { name: 'b', ns: 2e6 }, { name: 'b', ns: 1e6 }];
    const it2 = [{ name: 'a', ns: 3e6 }, { name: 'b', ns: 2e6 }, { name: 'b', ns: 2e6 }];
    const it3 = [{ name: 'a', ns: 2e6 }, { name: 'b', ns: 5e6 }, { name: 'b', ns: 5e6 }];
    const k = kernelBreakdown([it1, it2, it3]);
    // a: 1, 3, 2 ms -> median 2; b: 3, 4, 10 ms -> median 4; total 6
    expect(k).toEqual([
      { name: 'a', medianMs: 2, calls: 1, share: 2 / 6 },
      { name: 'b', medianMs: 4, calls: 2, share: 4 / 6 },
    ]);
  });
});

describe('warmUp', () => {
  it('runs at least the iterations and at least the wall time', async () => {
    let calls = 0;
    const t0 = performance.now();
    const n = await warmUp(2, 40, async () => { calls++; await new Promise((r) => setTimeout(r, 5)); });
    expect(n).toBe(calls);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(39);
    expect(calls).toBeGreaterThan(2);
    // iterations dominate when the time floor is 0
    expect(await warmUp(3, 0, async () => {})).toBe(3);
    expect(await warmUp(0, 0, async () => {})).toBe(0);
  });
});
