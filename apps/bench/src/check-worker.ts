/** A check-pool worker: runs one expert job (reference.ts `runExpertJob`) per message and posts its outputs back. */
import { parentPort } from 'node:worker_threads';
import { runExpertJob, type ExpertJob } from './reference.js';

if (!parentPort) throw new Error('check-worker.js runs as a worker thread (check-pool.ts)');
const port = parentPort;
port.on('message', (job: ExpertJob) => {
  try {
    const ys = runExpertJob(job);
    port.postMessage({ ys }, ys.map((y) => y.buffer as ArrayBuffer));
  } catch (e) {
    port.postMessage({ error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
