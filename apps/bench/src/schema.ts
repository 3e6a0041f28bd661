/** The JSON the bench writes (`--json`), read back by `--compare`. torch/torch_baseline.py writes the same schema. */
import type { StageProfile } from './stage-profile.js';
import type { RowsPerExpert } from './metrics.js';

/** Per-kernel time of one row (median over the timed iterations of the summed time of that kernel's dispatches). */
export interface KernelTime {
  name: string;
  medianMs: number;
  /** Dispatches of this kernel per forward. */
  calls: number;
  /** Share of the row's median device time. */
  share: number;
}

/** One (model, tokens, dtype) measurement. */
export interface ResultRow {
  model: string;
  tokens: number;
  dtype: string;
  /** Adapter / device name. */
  device: string;
  /** Which forward ran: 'moe' (@webmoe/moe's MoE), 'cpu' (its CPU path), 'ort-qmoe', torch's 'eager' / 'grouped_mm' / 'batched_mm'. */
  impl?: string;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  minMs?: number;
  maxMs?: number;
  /** 'timestamp' (sum of GPU timestamp-query times of the dispatches), 'wall' (host clock per forward, submit to queue drain), 'cuda-event'. */
  timing?: string;
  /** Wall time per forward of a batch of back-to-back forwards ending with one queue drain. */
  wallMs?: number;
  /**
   * What a caller gets with GPU-resident activations: wall time per layer of
   * a chain of `stack` `MoE.forwardGpuSync` calls (each layer's output the
   * next one's input, one submit per call, over `stackLayers` distinct
   * layers cycled), drained once at the end; median over chains after a warm-up chain.
   */
  wallGpuMs?: number;
  /** Host CPU time per `forwardGpuSync` call of that chain, issuing only (not draining), in us; `hostClock` says which clock. */
  hostUs?: number;
  /** Wall time per layer of the same chain issued as one `MoEStack` (one submit per step of `stack` layers). */
  wallStackMs?: number;
  /** Host CPU time per layer of the `MoEStack` step, issuing only, in us. */
  stackHostUs?: number;
  /** Layers per chain (`--stack`). */
  stack?: number;
  /** Distinct layers (weights) the chain cycles over: `stack`, or as many as the device memory budget (`--stack-gib`) allows. */
  stackLayers?: number;
  /** 'thread-cpu' (the issuing thread's CPU time, for chains issued in >= 50 ms) or 'wall' (shorter chains, or where that cannot be read). */
  hostClock?: string;
  /** `forward(Float32Array)` to a Float32Array (host in, host out), wall time per call, median. */
  wallHostMs?: number;
  /** The same into one output array the caller keeps (`forward(x, { out })`), wall time per call, median. */
  wallHostOutMs?: number;
  /** Achieved GB/s on `bytes`. */
  gbps: number;
  tflops: number;
  /** gbps / the run's copyGBps. */
  copyRatio?: number;
  /** Bytes that must move: weights of the experts hit + shared + router, plus x and y. */
  bytes?: number;
  weightBytes?: number;
  flops?: number;
  /** flops / bytes. */
  intensity?: number;
  /** Distinct experts the bytes count. */
  expertsHit?: number;
  /** 'routing' (counted from this run's routing indices) or 'expected-uniform' (E(1-(1-k/E)^T)). */
  expertsHitSource?: string;
  /** Grouped rows per routed expert in this run's routing (least, most, mean): the prefill GEMMs' partial row tiles. */
  rowsPerExpert?: RowsPerExpert;
  /** Bandwidth floor: bytes / copy bandwidth (ms). */
  floorMs?: number;
  /** Compute floor: flops / the run's peakTflops (ms). */
  computeFloorMs?: number;
  kernels: KernelTime[];
  /**
   * The row's check (GPU rows): the timed forward's output on a sample of tokens that reaches every
   * routed expert, against the bench's float64 reference reading the same weights (src/check.ts).
   * A row with `pass: false` also has `error`, and the bench exits non-zero.
   */
  check?: { relErr: number; tol: number; pass: boolean; tokens?: number; experts?: number; expertsRouted?: number; ties?: number; reason?: string };
  /** GPU rows: every GPU byte of the layer (MoE.gpuBytes().total). */
  gpuBytes?: number;
  /** GPU rows: the packed bytes (codes + scales) of routed and shared experts the shape implies; the layer's expert bytes are within 2% of it (checked). */
  packedBytes?: number;
  /** GPU rows: buffers per routed stack (1: one buffer per tensor; more: split at the binding limit). */
  chunks?: { gateUp: number; down: number };
  /** `--profile-stages`: device time per step of the forward (src/stage-profile.ts), or why there is none. */
  stageProfile?: StageProfile;
  /** Set when the row could not run; the numbers are then NaN -> null in JSON. */
  error?: string;
  note?: string;
}

/** A whole run. */
export interface BenchReport {
  schema?: string;
  /** Adapter / device name. */
  device: string;
  /** 'gpu', 'lavapipe', 'cpu', 'cuda' (torch). */
  deviceKind?: string;
  /** Copy bandwidth the run measured (read + write GB/s). */
  copyGBps: number;
  /** Compute roof for the roofline (TFLOP/s): measured FMA rate, or given with --peak-tflops. */
  peakTflops?: number;
  peakSource?: string;
  date?: string;
  label?: string;
  results: ResultRow[];
}

/** The schema id written in every report. */
export const SCHEMA = 'webmoe-bench/1';

/**
 * Serialises a report (NaN/Infinity become null, keys in a stable order).
 * @example `writeFileSync('out.json', reportToJson(report))`
 */
export function reportToJson(r: BenchReport): string {
  return JSON.stringify({ schema: SCHEMA, ...r }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

/**
 * Parses and checks a report (ours or torch_baseline.py's); throws with what is missing.
 * @example `const other = parseReport(readFileSync('torch.json', 'utf8'))`
 */
export function parseReport(text: string, what = 'report'): BenchReport {
  const j = JSON.parse(text) as Partial<BenchReport>;
  if (typeof j !== 'object' || j === null) throw new Error(`${what}: expected a JSON object`);
  if (typeof j.device !== 'string') throw new Error(`${what}: missing string field 'device'`);
  if (!Array.isArray(j.results)) throw new Error(`${what}: missing array field 'results'`);
  const num = (v: unknown) => (typeof v === 'number' ? v : NaN);
  j.results.forEach((r, i) => {
    for (const f of ['model', 'dtype'] as const) if (typeof r[f] !== 'string') throw new Error(`${what}: results[${i}].${f} must be a string`);
    if (typeof r.tokens !== 'number') throw new Error(`${what}: results[${i}].tokens must be a number`);
    r.medianMs = num(r.medianMs);
    r.p10Ms = num(r.p10Ms);
    r.p90Ms = num(r.p90Ms);
    r.gbps = num(r.gbps);
    r.tflops = num(r.tflops);
    r.kernels ??= [];
  });
  return { ...j, copyGBps: num(j.copyGBps) } as BenchReport;
}
