/**
 * Worker threads for the row check's float64 reference: the routed experts of
 * a checked forward are independent, so they run on up to `WEBMOE_CHECK_THREADS`
 * threads (default: the machine's cores less two, at most 8). Real shapes
 * need this: one Mixtral expert is 176M weights, seconds of scalar float64 per
 * expert on one thread. The workers run `check-worker.js` beside this module
 * (dist/, or the GPU bundle's folder); where it is absent (tests run from the
 * sources) or one thread is all there is, the experts run inline.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { runExpertsInline, type ExpertJob, type ExpertRunner } from './reference.js';

const WORKER_URL = new URL('./check-worker.js', import.meta.url);

/** Threads the check may use: `WEBMOE_CHECK_THREADS`, else cores - 2 clamped to [1, 8]. */
export function checkThreads(env: Record<string, string | undefined> = process.env): number {
  const v = env.WEBMOE_CHECK_THREADS;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`WEBMOE_CHECK_THREADS must be a positive integer, got '${v}'`);
    return n;
  }
  return Math.max(1, Math.min(8, availableParallelism() - 2));
}

/** A copy of every array of a job in its own ArrayBuffer (a view of a larger buffer would clone all of it) and their buffers, to transfer. */
function compact(job: ExpertJob): { job: ExpertJob; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const own = <A extends Uint8Array | Float64Array>(a: A): A => {
    const c = a.slice() as A;
    transfer.push(c.buffer as ArrayBuffer);
    return c;
  };
  const bytes = (b: ExpertJob['gu']): ExpertJob['gu'] => {
    switch (b.kind) {
      case 'dense': return { ...b, b: own(b.b) };
      case 'fp8_block': return { ...b, q: own(b.q), s: own(b.s) };
      case 'int_block': return { ...b, q: own(b.q), s: own(b.s) };
      case 'mxfp4': return { ...b, blocks: own(b.blocks), scales: own(b.scales) };
    }
  };
  return {
    job: { ...job, gu: bytes(job.gu), dn: bytes(job.dn), xs: job.xs.map(own), guBias: job.guBias && own(job.guBias), dnBias: job.dnBias && own(job.dnBias) },
    transfer,
  };
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

/** Runs expert jobs on worker threads, at most one job (one expert's bytes) per thread in flight. */
class ExpertPool {
  private readonly slots: Slot[] = [];
  constructor(private readonly threads: number) {}

  private slot(i: number): Slot {
    if (!this.slots[i]) {
      const worker = new Worker(WORKER_URL);
      worker.unref(); // idle workers never keep the process alive; a busy one is ref'd
      this.slots[i] = { worker, busy: false };
    }
    return this.slots[i];
  }

  private exec(s: Slot, job: ExpertJob): Promise<Float64Array[]> {
    const { job: j, transfer } = compact(job);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        s.worker.off('message', onMessage);
        s.worker.off('error', onError);
        s.worker.off('exit', onExit);
        s.worker.unref();
        s.busy = false;
      };
      const onMessage = (m: { ys?: Float64Array[]; error?: string }): void => {
        done();
        if (m.ys) resolve(m.ys);
        else reject(new Error(`check worker: ${m.error}`));
      };
      const onError = (e: Error): void => { done(); reject(e); };
      const onExit = (code: number): void => { done(); reject(new Error(`check worker exited with code ${code}`)); };
      s.worker.on('message', onMessage);
      s.worker.on('error', onError);
      s.worker.on('exit', onExit);
      s.busy = true;
      s.worker.ref();
      s.worker.postMessage(j, transfer);
    });
  }

  readonly run: ExpertRunner = async (jobs) => {
    const out: Float64Array[][] = new Array(jobs.length);
    let next = 0;
    const lane = async (i: number): Promise<void> => {
      while (next < jobs.length) {
        const n = next++;
        // read this expert's bytes only when a thread is free for it: at most `threads` experts in memory
        out[n] = await this.exec(this.slot(i), await jobs[n]());
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.threads, jobs.length) }, (_, i) => lane(i)));
    return out;
  };
}

let pool: ExpertPool | undefined;

/** The check's expert runner: the process-wide worker pool, or inline where workers are not available. */
export function checkRunner(): ExpertRunner {
  const threads = checkThreads();
  if (threads <= 1 || !existsSync(fileURLToPath(WORKER_URL))) return runExpertsInline;
  pool ??= new ExpertPool(threads);
  return pool.run;
}
