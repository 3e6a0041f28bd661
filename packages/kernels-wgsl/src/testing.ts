/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
// The references above are kept in the emitted .d.ts so that consumers get the
// GPU* types and Symbol.dispose without configuring anything (see README "Install").
/**
 * Test support for GPU tests (exported as `@webmoe/kernels-wgsl/testing`).
 * With CI=true a missing adapter fails the test run; elsewhere GPU tests
 * are skipped visibly with the reason printed.
 */
import { checkMaxBindingBytes, createGpuContext, type GpuContext } from './runtime/context.js';
import { Recorder } from './runtime/kernel.js';
import { gemvKernelOfVariant } from './kernels/moe-gemv.js';
import { KERNEL_CROSSOVERS, type SgmatSplitKRule, type SgmatTileBand } from './kernels/plan.js';
import { SGMAT_SHAPES } from './kernels/grouped-gemm-fast-shapes.js';
import { ValueError } from '@webmoe/tensor';

export { rng } from '@webmoe/tensor/testing';
export type { SgmatSplitKRule, SgmatTileBand } from './kernels/plan.js';
export { ONNX_DT, initializer, model, node, valueInfo, type AttrValue, type Msg, type OnnxDtype } from './onnx-writer.js';

let shared: Promise<GpuContext | null> | undefined;
let reason = '';
let printed = false;

/**
 * The one place that decides whether a test run may skip for lack of a
 * WebGPU adapter or of a peer: true when the environment demands every
 * check (CI=true, CI=1 or WEBMOE_REQUIRE_GPU=1). GPU tests then fail
 * without an adapter; peer tests, see {@link peerRequired}.
 */
export function gpuRequired(): boolean {
  const env = typeof process !== 'undefined' ? process.env : {};
  return env.CI === 'true' || env.CI === '1' || env.WEBMOE_REQUIRE_GPU === '1';
}

/**
 * Whether a test of the optional peer package `name` (onnxruntime-node,
 * ...) must run rather than skip: when the run demands every check
 * ({@link gpuRequired}) and the package is installed where `from` (a file
 * URL or path, e.g. `import.meta.url`) resolves packages. Installed but
 * unloadable then fails; not installed is a visible skip.
 * @example `if (!ort && (await peerRequired('onnxruntime-node', import.meta.url))) throw new Error('...')`
 */
export async function peerRequired(name: string, from: string | URL): Promise<boolean> {
  return gpuRequired() && (await peerInstalled(name, from));
}

/**
 * Whether the package `name` is installed where `from` resolves packages: a
 * `node_modules/<name>/package.json` in the directory of `from` or one above
 * (what an ESM import finds; NODE_PATH, which `pnpm exec` sets, does not count).
 * Does not load the package.
 */
export async function peerInstalled(name: string, from: string | URL): Promise<boolean> {
  // Node's modules without an import statement, so that browser bundles of this file (relErr on the demo page) see no Node built-in
  const { existsSync } = process.getBuiltinModule('node:fs');
  const { dirname, join } = process.getBuiltinModule('node:path');
  const { fileURLToPath } = process.getBuiltinModule('node:url');
  const start = typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from);
  for (let dir = dirname(start); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules', name, 'package.json'))) return true;
    if (dirname(dir) === dir) return false;
  }
}

/**
 * The shared test GPU context, or null when no adapter exists and none is
 * required. Throws (fails the suite) when CI requires one. Prints the adapter
 * name once per test file.
 */
export async function testGpu(): Promise<GpuContext | null> {
  shared ??= (async () => {
    try {
      const ctx = await createGpuContext({ label: 'webmoe-test' });
      return ctx;
    } catch (e) {
      reason = (e as Error).message;
      if (gpuRequired()) throw new Error(`GPU tests need a WebGPU adapter (CI=true): ${reason}`);
      return null;
    }
  })();
  const ctx = await shared;
  if (!printed) {
    printed = true;
    console.log(ctx ? `[webmoe] GPU tests on adapter: ${ctx.adapterName} (f16=${ctx.features.shaderF16}, subgroups=${ctx.features.subgroups})` : `[webmoe] GPU tests SKIPPED: no WebGPU adapter (${reason})`);
  }
  return ctx;
}

/** Why the GPU is missing ('' when present). */
export function gpuMissingReason(): string {
  return reason;
}

/**
 * Runs `fn` inside validation/OOM error scopes, failing on any GPU error,
 * and checks that no uncaptured error was reported.
 */
export async function gpuChecked<T>(ctx: GpuContext, fn: () => T | Promise<T>): Promise<T> {
  const r = await ctx.checked('test', fn);
  await ctx.sync();
  const errs = ctx.takeUncapturedErrors();
  if (errs.length) throw new Error(`uncaptured GPU errors: ${errs.join('; ')}`);
  return r;
}

/** A device method a test watches (what a path creates per call). */
export type SpiedDeviceMethod = 'createBuffer' | 'createBindGroup';

/**
 * Counts the calls of `device[method]` (those made while `opts.when()` holds, when given) and hands each result to
 * `opts.onResult`, until `restore()` puts the method back: for tests that check what a path creates (buffers, bind
 * groups) or keep track of it.
 * @example
 * ```ts
 * const spy = spyDevice(ctx.device, 'createBuffer');
 * try { forward(); expect(spy.calls).toBe(0); } finally { spy.restore(); }
 * ```
 */
export function spyDevice<M extends SpiedDeviceMethod>(device: GPUDevice, method: M, opts: { when?: () => boolean; onResult?: (r: ReturnType<GPUDevice[M]>) => void } = {}): { readonly calls: number; restore(): void } {
  const original = device[method] as (d: unknown) => ReturnType<GPUDevice[M]>;
  const own = Object.prototype.hasOwnProperty.call(device, method);
  let calls = 0;
  (device as unknown as Record<M, (d: unknown) => unknown>)[method] = (d: unknown) => {
    if (!opts.when || opts.when()) calls++;
    const r = original.call(device, d);
    opts.onResult?.(r);
    return r;
  };
  return {
    get calls() {
      return calls;
    },
    restore() {
      if (own) (device as unknown as Record<M, unknown>)[method] = original;
      else delete (device as unknown as Record<M, unknown>)[method];
    },
  };
}

/** n uniform values in [lo, hi). */
export function randomArray(r: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** ||a - b|| / ||b|| (relative L2 error), 0 when both are zero. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

/** max |a - b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** One recorded dispatch: the kernel's name and its variant. */
export interface Dispatched {
  kernel: string;
  variant: Record<string, unknown>;
}

/**
 * Runs `fn` and returns what it dispatched, in order: Recorder.prototype.dispatch is
 * wrapped for the duration of the call (every Recorder, a layer's own included)
 * and restored afterwards. Read-only: each dispatch still goes through unchanged.
 * Tests run one at a time within a file, so no other dispatch lands in the log.
 * A forward replaying a captured graph records nothing: log the first call.
 */
export async function withDispatchLog<R>(fn: () => Promise<R>): Promise<{ result: R; dispatched: Dispatched[] }> {
  const dispatched: Dispatched[] = [];
  const dispatch = Recorder.prototype.dispatch;
  Recorder.prototype.dispatch = function (this: Recorder, d) {
    dispatched.push({ kernel: d.kernel.name, variant: { ...d.variant } });
    return dispatch.call(this, d);
  };
  try {
    return { result: await fn(), dispatched };
  } finally {
    Recorder.prototype.dispatch = dispatch;
  }
}

/**
 * The packed kernel a logged decode GEMV dispatch ran ('rows4x', 'rows2i', 'table', ...: the GemvOptions.packedKernel
 * name of its variant); undefined for any other kernel.
 * @example `dispatched.map(gemvKernelOf).filter((k) => k) // ['rows4x', 'rows8k4x']`
 */
export function gemvKernelOf(d: Dispatched): string | undefined {
  return d.kernel === 'moe_gemv' ? gemvKernelOfVariant(d.variant as Parameters<typeof gemvKernelOfVariant>[0]) : undefined;
}

/**
 * Tolerance of a GPU result against an f32 path (CPU, reference): `f32Tol` unless
 * its dispatch log shows an f16-staged expert GEMM (the subgroup-matrix kernel, the
 * default for 16-bit and packed weights on adapters that have it, or the 'f16' FMA
 * kernel), whose rounding of x and w to f16 (relative 4.9e-4 each) allows 2e-3.
 */
export function stagedTol(log: readonly Dispatched[], f32Tol: number): number {
  const staged = log.some((d) => d.kernel === 'grouped_gemm_sgmat' || (d.kernel === 'grouped_gemm_fast' && d.variant.h === true));
  return staged ? Math.max(f32Tol, 2e-3) : f32Tol;
}

/** The adapter description of the subgroup-matrix kernel that the NVIDIA H200 (Dawn 0.6.2 / Vulkan) reports: f16 x f16 -> f32 16x16x16 matrices, subgroups of 32. */
const H200_SUBGROUP_MATRIX = {
  subgroupMatrixConfigs: [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }],
  subgroupMinSize: 32,
  subgroupMaxSize: 32,
} as const;

/** Context views made by {@link withEmulatedSubgroupMatrix}: their subgroup-matrix dispatches run the emulated builtins. */
const emulatedSgmat = new WeakSet<GpuContext>();

/**
 * The same device seen through a context whose planner finds the subgroup-matrix
 * kernel (the feature, shader-f16 and subgroups, and the adapter's matrix
 * configuration and subgroup size as the H200 reports them), so that every
 * choice the planner makes on the H200 is made here too (the f16-staged
 * subgroup-matrix GEMMs for 16-bit and packed weights from 8 rows per expert);
 * its subgroup-matrix dispatches run the builtins emulated in plain WGSL
 * (`variant.emu`, grouped-gemm-fast-wgsl.ts: the same f16 staging and f32
 * accumulation, slow), so it runs on adapters without the feature (lavapipe).
 * Needs shader-f16 and subgroups on the real device; meant for adapters
 * without the feature (NVIDIA refuses the emulation's private memory for the
 * large tile shapes: there, use the context itself). Shares the device and
 * its pipelines, like {@link withMaxBindingBytes}; destroy the original.
 * Wraps `Recorder.prototype.dispatch` once (for views only; every other
 * context dispatches unchanged): make views outside {@link withDispatchLog}.
 * @example `const h200 = withEmulatedSubgroupMatrix(ctx); const moe = new MoE({ ...opts, ctx: h200 })`
 */
export function withEmulatedSubgroupMatrix(ctx: GpuContext): GpuContext {
  if (!ctx.features.shaderF16 || !ctx.features.subgroups) throw new Error(`withEmulatedSubgroupMatrix: the adapter needs shader-f16 and subgroups (has f16=${ctx.features.shaderF16}, subgroups=${ctx.features.subgroups})`);
  const info = { ...(ctx.adapter as GPUAdapter & { info?: object }).info, ...H200_SUBGROUP_MATRIX };
  const adapter = Object.create(ctx.adapter, { info: { value: info, enumerable: true } }) as GPUAdapter;
  const view = Object.create(ctx, { features: { value: { ...ctx.features, subgroupMatrix: true }, enumerable: true }, adapter: { value: adapter, enumerable: true } }) as GpuContext;
  emulatedSgmat.add(view);
  installSgmatEmulation();
  return view;
}

let sgmatEmulationInstalled = false;
function installSgmatEmulation(): void {
  if (sgmatEmulationInstalled) return;
  sgmatEmulationInstalled = true;
  const dispatch = Recorder.prototype.dispatch;
  Recorder.prototype.dispatch = function (this: Recorder, d) {
    if (emulatedSgmat.has(this.ctx) && d.kernel.name === 'grouped_gemm_sgmat') d = { ...d, variant: { ...d.variant, emu: true } };
    return dispatch.call(this, d);
  };
}

/**
 * The same device seen through a context whose `maxBindingBytes` is `bytes`
 * (what `createGpuContext({ maxBindingBytes })` gives a new device), sharing
 * the device and its compiled pipelines: tests load layers whose expert
 * stacks split into chunks without compiling every kernel again. Destroying
 * the view destroys the device; destroy the original instead.
 * @example `const small = withMaxBindingBytes(ctx, 4096); uploadExpertStack(small, w, { layout: 'rows' })`
 */
export function withMaxBindingBytes(ctx: GpuContext, bytes: number): GpuContext {
  const b = checkMaxBindingBytes('withMaxBindingBytes bytes', bytes) ?? ctx.maxBindingBytes;
  return Object.create(ctx, { maxBindingBytes: { value: Math.min(b, ctx.maxBindingBytes), enumerable: true } }) as GpuContext;
}

/**
 * Runs `fn` with the subgroup-matrix split-K rule (plan.ts `KERNEL_CROSSOVERS.sgmatSplitK`) replaced by `rule` and
 * puts the rule back when `fn` settles, also on a throw: a layer whose K is shorter than the planner's `minSliceK`
 * (every HF fixture) then takes the split-K down GEMM and its summing pass, so a golden reaches that path. The rule
 * is module state: layers planned inside `fn` must not run beside other tests' layers (vitest runs a file's tests
 * one after another). ValueError for a rule the kernel cannot run (`maxSplit` outside 1..8, a non-integer field).
 * @example `await withSgmatSplitKRule({ targetWorkgroups: 1 << 20, maxSplit: 2, minSliceK: 64, maxRowsPerExpert: 1 << 20 }, () => moe.forward(x))`
 */
export async function withSgmatSplitKRule<R>(rule: Readonly<SgmatSplitKRule>, fn: () => Promise<R>): Promise<R> {
  for (const key of ['targetWorkgroups', 'maxSplit', 'minSliceK', 'maxRowsPerExpert'] as const) {
    if (!Number.isInteger(rule[key]) || rule[key] < 0) throw new ValueError(`withSgmatSplitKRule rule.${key}`, 'an integer >= 0', rule[key]);
  }
  if (rule.maxSplit < 1 || rule.maxSplit > 8) throw new ValueError('withSgmatSplitKRule rule.maxSplit', 'an integer 1..8 (the kernel splits K at most 8 ways)', rule.maxSplit);
  for (const [shape, ways] of Object.entries(rule.tileSplits ?? {})) {
    if (!Object.hasOwn(SGMAT_SHAPES, shape)) throw new ValueError(`withSgmatSplitKRule rule.tileSplits.${shape}`, 'a tile shape of SGMAT_SHAPES', shape);
    if (!Number.isInteger(ways) || ways! < 1 || ways! > rule.maxSplit) throw new ValueError(`withSgmatSplitKRule rule.tileSplits.${shape}`, `an integer 1..maxSplit (${rule.maxSplit})`, ways);
  }
  return withCrossover(KERNEL_CROSSOVERS, 'sgmatSplitK', { ...rule, ...(rule.tileSplits ? { tileSplits: { ...rule.tileSplits } } : {}) }, fn);
}

/**
 * The planner's subgroup-matrix tile bands as they stand (plan.ts `KERNEL_CROSSOVERS.sgmatTiles.bands`, copies): for a
 * test that runs withSgmatTileBands with some of them left out, e.g. the planner's tiles without a format's bands.
 * @example `await withSgmatTileBands(sgmatTileBands().filter((b) => !Object.hasOwn(b.shapes, 'fp8_e4m3')), run)`
 */
export function sgmatTileBands(): Readonly<SgmatTileBand>[] {
  return KERNEL_CROSSOVERS.sgmatTiles.bands.map((b) => ({ ...b, shapes: { ...b.shapes } }));
}

/**
 * Runs `fn` with the subgroup-matrix tile bands (plan.ts `KERNEL_CROSSOVERS.sgmatTiles.bands`) replaced by `bands` and
 * puts them back when `fn` settles, also on a throw: a band over every row count and any device
 * (`minRowsPerExpert: 0, maxRowsPerExpert: 1 << 30, minWorkgroupBytes: 0`) takes every call of its formats onto its
 * tile, so a golden reaches a tile the planner keeps for other row counts or for 48 KiB devices (on lavapipe: with
 * the emulated builtins, withEmulatedSubgroupMatrix; the tile must fit the device's workgroup memory). Module state,
 * as withSgmatSplitKRule. ValueError for a shape not in SGMAT_SHAPES or a band whose fields are not integers >= 0
 * with min <= max.
 * @example `await withSgmatTileBands([{ shapes: { fp8_e4m3: 'm128n256k32va' }, minRowsPerExpert: 0, maxRowsPerExpert: 1 << 30, minWorkgroupBytes: 0 }], () => moe.forward(x))`
 */
export async function withSgmatTileBands<R>(bands: readonly Readonly<SgmatTileBand>[], fn: () => Promise<R>): Promise<R> {
  for (const [i, b] of bands.entries()) {
    for (const key of ['minRowsPerExpert', 'maxRowsPerExpert', 'minWorkgroupBytes'] as const) {
      if (!Number.isInteger(b[key]) || b[key] < 0) throw new ValueError(`withSgmatTileBands bands[${i}].${key}`, 'an integer >= 0', b[key]);
    }
    if (b.minRowsPerExpert > b.maxRowsPerExpert) throw new ValueError(`withSgmatTileBands bands[${i}].maxRowsPerExpert`, `at least minRowsPerExpert (${b.minRowsPerExpert})`, b.maxRowsPerExpert);
    for (const [wf, shape] of Object.entries(b.shapes)) {
      if (!shape || !Object.hasOwn(SGMAT_SHAPES, shape)) throw new ValueError(`withSgmatTileBands bands[${i}].shapes.${wf}`, 'a tile shape of SGMAT_SHAPES', shape);
    }
  }
  return withCrossover(KERNEL_CROSSOVERS.sgmatTiles, 'bands', bands.map((b) => ({ ...b, shapes: { ...b.shapes } })), fn);
}

/**
 * Runs `fn` with the GPU rule's long-row decode GEMVs (plan.ts `KERNEL_CROSSOVERS.gemvPackedKernel.byFormat`'s
 * `longRows`: int4 and MXFP4 at one token row per pass on the x-in-registers kernels) taking rows of at least `minCols`
 * columns instead of the planner's 2880, and puts the rule back when `fn` settles, also on a throw: with `minCols` 0
 * the short rows of every HF fixture reach those kernels (on a software adapter: through a context seen as a GPU,
 * `adapterInfo.software` false, as the software rule is another). Module state, as withSgmatSplitKRule. ValueError
 * for a `minCols` that is not an integer >= 0.
 * @example `await withGemvLongRowsFrom(0, () => moe.forward(x))`
 */
export async function withGemvLongRowsFrom<R>(minCols: number, fn: () => Promise<R>): Promise<R> {
  if (!Number.isInteger(minCols) || minCols < 0) throw new ValueError('withGemvLongRowsFrom minCols', 'an integer >= 0', minCols);
  const rule = KERNEL_CROSSOVERS.gemvPackedKernel;
  const byFormat = Object.fromEntries(Object.entries(rule.byFormat).map(([f, k]) => [f, k.longRows ? { ...k, longRows: { ...k.longRows, minCols } } : k]));
  return withCrossover(rule, 'byFormat', byFormat as typeof rule.byFormat, fn);
}

/** Runs `fn` with `owner[key]` (planner state) set to `value`, and the old value back when `fn` settles, also on a throw. */
async function withCrossover<O extends object, K extends keyof O, R>(owner: O, key: K, value: O[K], fn: () => Promise<R>): Promise<R> {
  const live = owner as { [P in K]: O[K] };
  const saved = live[key];
  live[key] = value;
  try {
    return await fn();
  } finally {
    live[key] = saved;
  }
}
