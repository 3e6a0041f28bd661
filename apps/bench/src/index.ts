/**
 * The WebMoE benchmark as a library (the CLI is `cli.ts`): model shapes,
 * the runner, formulas, statistics and the report writers.
 * @example
 * ```ts
 * import { runBench, parseArgs, openDevice } from '@webmoe/bench';
 * const report = await runBench(parseArgs(['--quick']), await openDevice('auto'));
 * ```
 */
// The public API of the bench as a library (api/bench.api.md is its
// report); the layers it builds, its fills and its own kernels stay inside.
export { VERSION } from './version.js';
export { main } from './cli.js';
export { parseArgs, USAGE, type BenchOptions, type DeviceChoice } from './args.js';
export { openDevice, type BenchDevice } from './device.js';
export { runBench } from './bench.js';
export { Progress, type ProgressSink } from './progress.js';
export { MODELS, QUICK, TINY, findModel, type ModelSpec, type BenchDtype } from './models.js';
export { work, gbps, tflops, type Work, type RowsPerExpert } from './metrics.js';
export { summarize, median, quantile, type Summary } from './stats.js';
export { SCHEMA, reportToJson, parseReport, type BenchReport, type ResultRow, type KernelTime } from './schema.js';
export { reportToHtml } from './html.js';
export { formatTable } from './table.js';
export type { StageProfile, StageTime } from './stage-profile.js';
