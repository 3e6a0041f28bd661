/**
 * The WebMoE benchmark as a library (the CLI is `cli.ts`): model shapes,
 * the runner, formulas, statistics and the report writers.
 * @example
 * ```ts
 * import { runBench, parseArgs, openDevice } from '@webmoe/bench';
 * const report = await runBench(parseArgs(['--quick']), await openDevice('auto'));
 * ```
 */
export { VERSION } from './version.js';
export * from './models.js';
export * from './stats.js';
export * from './metrics.js';
export * from './args.js';
export * from './device.js';
export * from './schema.js';
export * from './bench.js';
export * from './moe-run.js';
export * from './cpu-moe.js';
export * from './copybw.js';
export * from './peak.js';
export * from './fill.js';
export * from './table.js';
export * from './html.js';
export * from './progress.js';
export { runOrtPeer, loadOrt, PeerMissingError, qmoeWeightBytes } from './peer-ort.js';
export { main } from './cli.js';
