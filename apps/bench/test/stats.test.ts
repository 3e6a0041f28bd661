import { describe, expect, it } from 'vitest';
import { median, quantile, STEADY, summarize, timedTwiceIfAboveWall, warmUntilSteady, warmUp } from '../src/stats.js';

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

describe('warmUntilSteady', () => {
  /** Work whose repetitions take the scripted times (ms, per repetition of step i; then the last forever) on a fake clock. */
  const scripted = (ms: number[]) => {
    let t = 0;
    let i = 0;
    const reps: number[] = [];
    return { now: () => t, reps, run: async (n: number) => { reps.push(n); t += n * ms[Math.min(i++, ms.length - 1)]; } };
  };
  const rule = { ...STEADY, minStepMs: 1, maxMs: 1e9 };
  it('keeps stepping while the steps get faster, stops two steps after they level off', async () => {
    // clocks ramping: 1000, 800, 600, 400 us, then steady around 300 (integers: exact on the fake clock)
    const s = scripted([1000, 800, 600, 400, 300, 305, 300, 300]);
    expect(await warmUntilSteady(s.run, rule, s.now)).toEqual({ reps: 1, times: [1000, 800, 600, 400, 300, 305, 300] });
  });
  it('runs minSteps when already steady, and noise within the tolerance does not prolong it', async () => {
    const steady = scripted([5]);
    expect((await warmUntilSteady(steady.run, rule, steady.now)).times).toEqual([5, 5, 5, 5]);
    const s = scripted([500, 510, 495, 505]);
    expect((await warmUntilSteady(s.run, rule, s.now)).times).toEqual([500, 510, 495, 505]);
  });
  it('doubles the repetitions per step until a step takes minStepMs (those steps warm too)', async () => {
    const s = scripted([1]);
    const r = await warmUntilSteady(s.run, { ...STEADY, minStepMs: 10, maxMs: 1e9 }, s.now);
    expect(r.reps).toBe(16);
    expect(s.reps).toEqual([1, 2, 4, 8, 16, 16, 16, 16]);
    expect(r.times).toEqual([1, 2, 4, 8, 16, 16, 16, 16]);
  });
  it('stops at maxMs even while still getting faster', async () => {
    const s = scripted(Array.from({ length: 100 }, (_, i) => 1000 / (i + 1)));
    expect((await warmUntilSteady(s.run, { ...rule, maxMs: 1500 }, s.now)).times).toEqual([1000, 500]);
  });
});

describe('timedTwiceIfAboveWall', () => {
  const tries = (...ms: { dev: number[]; wallMs: number }[]) => {
    let i = 0;
    return { measure: async () => ms[i++], calls: () => i };
  };
  it('keeps a measurement whose device median is within 1.15x its wall time (one try, no note)', async () => {
    const t = tries({ dev: [1.0, 1.1, 1.2], wallMs: 1.0 });
    expect(await timedTwiceIfAboveWall(t.measure)).toEqual({ m: { dev: [1.0, 1.1, 1.2], wallMs: 1.0 } });
    expect(t.calls()).toBe(1);
    // no timestamps (empty dev): nothing to compare
    expect((await timedTwiceIfAboveWall(tries({ dev: [], wallMs: 1 }).measure)).note).toBeUndefined();
  });
  it('times again when the device median passes 1.15x the wall time, reports the second try and says so', async () => {
    const t = tries({ dev: [5.3, 5.4, 5.2], wallMs: 2.1 }, { dev: [1.8, 1.9, 1.85], wallMs: 2.0 });
    const r = await timedTwiceIfAboveWall(t.measure);
    expect(t.calls()).toBe(2);
    expect(r.m.dev).toEqual([1.8, 1.9, 1.85]);
    expect(r.note).toBe('re-timed: on the first try the device median 5.30 ms above the back-to-back wall time 2.10 ms per forward');
  });
  it('a second try above its wall time too: the note says the timing is not steady (no third try)', async () => {
    const t = tries({ dev: [3], wallMs: 1 }, { dev: [2.5], wallMs: 1 }, { dev: [1], wallMs: 1 });
    const r = await timedTwiceIfAboveWall(t.measure);
    expect(t.calls()).toBe(2);
    expect(r.m.dev).toEqual([2.5]);
    expect(r.note).toMatch(/^timing not steady: device median 3.00 ms .* again on a second try \(device 2.50, wall 1.00 ms\)$/);
  });
});
