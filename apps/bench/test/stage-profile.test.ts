import { describe, expect, it } from 'vitest';
import { attributeSteps, formatStageProfile, summarizeStages, type StepMark } from '../src/stage-profile.js';

// A decode forward as the GPU stages record it: router linear + route_decode (the fused decode routing makes the
// grouping, so 'group' records nothing), no shared experts, two gate_up chunks, one down, combine.
const timings = [
  { name: 'linear', ns: 1000 },
  { name: 'route_decode', ns: 2000 },
  { name: 'moe_gemv_gate_up', ns: 30000 },
  { name: 'moe_gemv_gate_up', ns: 31000 },
  { name: 'moe_gemv_down', ns: 25000 },
  { name: 'combine', ns: 500 },
];
const marks: StepMark[] = [
  { step: 'route', at: 0 },
  { step: 'group', at: 2 },
  { step: 'shared', at: 2 },
  { step: 'gate_up', at: 2 },
  { step: 'down', at: 4 },
  { step: 'combine', at: 5 },
];

describe('stage profile attribution', () => {
  it('gives each dispatch to the step that recorded it', () => {
    const a = attributeSteps(timings, marks);
    expect(a.route).toEqual({ ns: 3000, kernels: ['linear', 'route_decode'] });
    expect(a.group).toEqual({ ns: 0, kernels: [] });
    expect(a.gate_up).toEqual({ ns: 61000, kernels: ['moe_gemv_gate_up', 'moe_gemv_gate_up'] });
    expect(a.down).toEqual({ ns: 25000, kernels: ['moe_gemv_down'] });
    expect(a.shared).toEqual({ ns: 0, kernels: [] });
    expect(a.combine).toEqual({ ns: 500, kernels: ['combine'] });
  });

  it('names every stage, in order; the stages of the median forward sum to the whole forward', () => {
    // three forwards: the same dispatches, the second 10% slower throughout, the third 5% faster: the median is the first
    const scaled = (f: number) => timings.map((t) => ({ ...t, ns: t.ns * f }));
    const p = summarizeStages([1, 1.1, 0.95].map((f) => ({ timings: scaled(f), marks })));
    if (!p.available) throw new Error(p.reason);
    expect(p.stages.map((s) => s.stage)).toEqual(['route', 'group', 'shared', 'gate_up', 'down', 'combine']);
    expect(p.iters).toBe(3);
    // whole forward: 89.5 us at scale 1
    expect(p.totalMs).toBeCloseTo(0.0895, 9);
    expect(p.stages.map((s) => s.ms)).toEqual([0.003, 0, 0, 0.061, 0.025, 0.0005]);
    const sum = p.stages.reduce((s, x) => s + x.ms, 0);
    expect(Math.abs(sum - p.totalMs) / p.totalMs).toBeLessThan(1e-9);
    // least over the forwards: the 0.95 one
    expect(p.stages.find((s) => s.stage === 'down')!.minMs).toBeCloseTo(0.02375, 9);
    expect(p.stages.map((s) => s.dispatches)).toEqual([2, 0, 0, 2, 1, 1]);
    expect(p.stages.find((s) => s.stage === 'gate_up')!.share).toBeCloseTo(61000 / 89500, 9);
    expect(formatStageProfile(p)).toMatch(/^route .* gate_up .* combine .* \| total 0\.0895 ms \(the median of 3 forwards\)$/);
    // an even count takes the lower middle forward
    const q = summarizeStages([1.1, 1].map((f) => ({ timings: scaled(f), marks })));
    expect(q.available && q.totalMs).toBeCloseTo(0.0895, 9);
  });

  it('refuses dispatches before the first step or steps out of order', () => {
    expect(() => attributeSteps(timings, marks.slice(1))).toThrow(/2 dispatch\(es\) before the first step/);
    expect(() => attributeSteps(timings, [{ step: 'route', at: 0 }, { step: 'group', at: 3 }, { step: 'gate_up', at: 2 }])).toThrow(/'gate_up' starts at dispatch 2, before 'group'/);
  });

  it('says why there is no profile', () => {
    const p = summarizeStages([]);
    expect(p.available).toBe(false);
    expect(formatStageProfile(p)).toBe('stage profile unavailable: no forward was profiled');
  });
});
