#!/usr/bin/env node
/**
 * `pnpm bench`: the MoE-layer benchmark on the default device (GPU, else
 * lavapipe with the CPU path's rows beside its own, else the CPU path). Table on stdout, progress on
 * stderr, `--json` / `--html` reports. See apps/bench/README.md.
 */
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { parseArgs, USAGE, withQuickDefaults } from './args.js';
import { plannedRows, runBench } from './bench.js';
import { openDevice } from './device.js';
import { reportToHtml } from './html.js';
import { runOrtPeer } from './peer-ort.js';
import { Progress } from './progress.js';
import { parseReport, reportToJson, type BenchReport } from './schema.js';
import { formatTable } from './table.js';

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stderr.write(`wrote ${file}\n`);
}

/**
 * Runs the CLI with `argv` (without node and script); returns the exit code.
 * @example `process.exitCode = await main(process.argv.slice(2))`
 */
export async function main(argv: string[]): Promise<number> {
  let o;
  try {
    o = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let other: BenchReport | undefined;
  if (o.compare) {
    other = parseReport(readFileSync(o.compare, 'utf8'), o.compare);
    other.label ??= o.compare.replace(/^.*\//, '').replace(/\.json$/, '');
  }
  const device = await openDevice(o.device);
  const why = device.kind === 'cpu' ? ` (${device.reason})` : '';
  process.stderr.write(`device: ${device.kind}: ${device.name}${why}\n`);
  if (device.kind !== 'cpu') process.stderr.write(`forward: @webmoe/moe's MoE (fp8/int4/int8/mxfp4 rows: built with a quantConfig); caller columns: forwardGpuSync chains of --stack layers, MoEStack, forward(Float32Array)\n`);
  // a software adapter's rows come with the CPU path's rows beside them (unless --no-cpu-rows)
  o.cpuRows ??= device.kind === 'lavapipe';
  if (device.kind === 'lavapipe' && o.cpuRows) process.stderr.write(`lavapipe runs its kernels on the CPU: each row also runs on the CPU path (impl 'cpu', the same weights) beside it\n`);
  if (device.kind !== 'gpu' && !o.quick && !o.explicit) {
    o = withQuickDefaults(o);
    process.stderr.write(`${device.kind}: running the --quick set (real shapes exceed a software adapter's buffer limits, or take hours on the CPU path); give --models/--tokens to override\n`);
  }
  const progress = new Progress(plannedRows(o, device) + 2);
  // --json is rewritten after every row: a run cut short (a time limit) keeps the rows it finished
  const report = await runBench(o, device, progress, o.json ? (partial) => write(o.json!, reportToJson(partial)) : undefined);
  if (device.kind !== 'cpu') device.ctx.destroy();
  if (o.peer === 'onnxruntime') {
    try {
      const rows = await runOrtPeer(o.models, o.tokens, o.iters, o.warmup, o.warmupMs, report.copyGBps, (s) => process.stderr.write(s + '\n'));
      report.results.push(...rows);
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      if ((e as Error).name !== 'PeerMissingError') throw e;
    }
  }
  process.stdout.write(formatTable(report, other) + '\n');
  if (o.json) write(o.json, reportToJson(report));
  if (o.html) write(o.html, reportToHtml(report, other));
  const failed = report.results.filter((r) => r.error).length;
  if (failed) process.stderr.write(`${failed} of ${report.results.length} rows failed (see the table)\n`);
  // a row whose timed forward disagrees with the float64 reference makes the whole run fail
  const wrong = report.results.filter((r) => r.check && !r.check.pass);
  if (wrong.length) {
    process.stderr.write(`${wrong.length} row(s) FAILED their check against the float64 reference: ${wrong.map((r) => `${r.model} ${r.dtype} T=${r.tokens}`).join(', ')}\n`);
    return 1;
  }
  return 0;
}

/** True when this module is the program (dist/cli.js, or a bundle of it run as `node bundle.mjs`), not an import. */
function isMainModule(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(arg);
  } catch {
    return false;
  }
}
const isMain = isMainModule();
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
