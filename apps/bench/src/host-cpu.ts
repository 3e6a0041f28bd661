/** Host CPU time of the calling thread, to measure what issuing GPU work costs the host. */
import { readFileSync } from 'node:fs';

/**
 * CPU time (ms) the calling thread has run so far: Linux's
 * /proc/thread-self/schedstat (ns on the CPU), so that time the OS gives to
 * other threads (a software adapter's workers, other processes) is not
 * counted; undefined where that file does not exist (then time with the wall
 * clock and say so).
 * @example `const c0 = threadCpuMs(); issue(); const us = ((threadCpuMs() ?? NaN) - (c0 ?? NaN)) * 1000`
 */
export function threadCpuMs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}

/**
 * Host time of `fn` in ms: the thread's CPU time where it can be read
 * ('thread-cpu'), else the wall clock ('wall').
 * @example `const { ms, clock } = hostTime(() => issueChain())`
 */
export function hostTime(fn: () => void): { ms: number; clock: 'thread-cpu' | 'wall' } {
  const c0 = threadCpuMs();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  const c1 = threadCpuMs();
  return c0 !== undefined && c1 !== undefined ? { ms: c1 - c0, clock: 'thread-cpu' } : { ms: t1 - t0, clock: 'wall' };
}
