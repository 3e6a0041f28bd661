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
 * The shortest interval (ms) timed with the thread's CPU time: the kernel
 * updates it at scheduler ticks (1-10 ms), so shorter intervals use the wall clock.
 */
export const THREAD_CPU_MIN_MS = 50;

/**
 * Host time of `fn` in ms: the thread's CPU time where it can be read and
 * `fn` ran at least THREAD_CPU_MIN_MS ('thread-cpu': time the OS gave to
 * other threads is not counted), else the wall clock ('wall').
 * @example `const { ms, clock } = hostTime(() => issueChain())`
 */
export function hostTime(fn: () => void): { ms: number; clock: 'thread-cpu' | 'wall' } {
  const c0 = threadCpuMs();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  const c1 = threadCpuMs();
  return c0 !== undefined && c1 !== undefined && t1 - t0 >= THREAD_CPU_MIN_MS ? { ms: c1 - c0, clock: 'thread-cpu' } : { ms: t1 - t0, clock: 'wall' };
}
