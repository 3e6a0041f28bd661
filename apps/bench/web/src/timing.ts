import type { KernelTime } from './types.js';

/** Sums Recorder timings per kernel name, in ms, in first-dispatch order. */
export function sumTimings(t: readonly { name: string; ns: number }[]): KernelTime[] {
  const m = new Map<string, KernelTime>();
  for (const { name, ns } of t) {
    const k = m.get(name) ?? { name, ms: 0, count: 0 };
    k.ms += ns / 1e6;
    k.count++;
    m.set(name, k);
  }
  return [...m.values()];
}
