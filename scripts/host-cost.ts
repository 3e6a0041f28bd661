// Host cost of a forward: a chain of N `forwardGpu` calls with
// GPU-resident activations on an HF fixture layer (default qwen3_moe) or a
// bench model's full-size layer (qwen3-30b-a3b, random weights), the
// chain drained once at the end; prints host us per call (time to issue) and
// the WebGPU calls one forward makes (device/queue/encoder/pass methods,
// counted by wrapping them in counting proxies), and for the synchronous chains the garbage collections that ran
// while they were issued (part of the host time a caller pays). Any adapter (lavapipe here).
//   node scripts/gpu/build-one.mjs scripts/host-cost.ts /tmp/host-cost.mjs
//   node /tmp/host-cost.mjs [arch=qwen3_moe | bench model] [N=2000] [T=1] [stack=0]
// stack > 0 also times MoEStack over `stack` copies of the layer (one submit per step).
// WEBMOE_NOOP_CALLS=1: the timed chains without Dawn's encoding and submits (the library's own host code; see NOOP_CALLS).
// WEBMOE_MAX_BINDING=16384: qwen3_moe's gate_up in 8 chunks and down in 4 (a chunked layer on any adapter).
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { threadCpuMs } from '../apps/bench/src/host-cpu.js';
import { createLayer } from '../apps/bench/src/moe-run.js';
import { findModel, type BenchDtype } from '../apps/bench/src/models.js';
import { createGpuContext, GpuTensor } from '@webmoe/kernels-wgsl';
import * as moeLib from '@webmoe/moe';
import { PerformanceObserver } from 'node:perf_hooks';
const { MoE } = moeLib;
// MoEStack: looked up by name so that the script also runs on commits before it existed (the baseline)
const MoEStack = (moeLib as Record<string, unknown>).MoEStack as (new (layers: unknown[], opts?: { ownsLayers?: boolean }) => { forwardGpuSync(x: GpuTensor): GpuTensor; destroy(): void }) | undefined;

const [arch = 'qwen3_moe', nArg = '2000', tArg = '1', stackArg = '0'] = process.argv.slice(2);
const N = Number(nArg);
const T = Number(tArg);
const S = Number(stackArg);
// WEBMOE_FIXTURES as in the tests (default: the shared fixtures)
const fixtures = (process.env.WEBMOE_FIXTURES ?? '/work/shared/fixtures') + '/hf-moe';
// WEBMOE_MAX_BINDING=BYTES: a lower binding limit (the expert stacks above it are chunked, as full-size layers are)
const ctx = await createGpuContext(process.env.WEBMOE_MAX_BINDING ? { maxBindingBytes: Number(process.env.WEBMOE_MAX_BINDING) } : {});
// arch: an HF fixture folder (qwen3_moe), or a bench model (qwen3-30b-a3b: the bench's layer at full size, random
// weights in WEBMOE_BENCH_DTYPE, default bf16: the kernels a GPU host runs at that size)
const benchLayer = arch.includes('-') ? await createLayer(ctx, findModel(arch), (process.env.WEBMOE_BENCH_DTYPE ?? 'bf16') as BenchDtype) : undefined;
const moe = benchLayer?.moe ?? (await MoE.fromHuggingFace({ source: `${fixtures}/${arch}`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx }));
// WEBMOE_DOWN_COMBINE=fused|separate: how the decode forward ends (MoE.downCombine; set only where given, so the script runs on older commits)
if (process.env.WEBMOE_DOWN_COMBINE) (moe as unknown as { downCombine: string }).downCombine = process.env.WEBMOE_DOWN_COMBINE;
// WEBMOE_DECODE_SHARED=routed|separate: how the decode forward runs the shared experts (MoE.decodeShared; set only where given)
if (process.env.WEBMOE_DECODE_SHARED) (moe as unknown as { decodeShared: string }).decodeShared = process.env.WEBMOE_DECODE_SHARED;
// WEBMOE_GRAPHS=0: every forward recorded afresh (MoE.useGraphs false)
if (process.env.WEBMOE_GRAPHS === '0') moe.useGraphs = false;
// WEBMOE_VARY_T=n: also time N forwards of T, T + 1, ..., T + n - 1 tokens in turn (each output destroyed): past the 4
// graphs a layer caches, every forward is of a token count the layer has no graph of, as prompts of many lengths are
const varyT = Number(process.env.WEBMOE_VARY_T ?? 0);
const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T + Math.max(varyT - 1, 0), moe.hiddenDim], Float32Array.from({ length: (T + Math.max(varyT - 1, 0)) * moe.hiddenDim }, (_, i) => Math.sin(i) * 0.5)));

/** Calls of each WebGPU method (device, queue, encoder, pass) while `counting`. */
const counts = new Map<string, number>();
/** Host ms spent inside each counted method (over the timed chain when WEBMOE_TIME_CALLS=1). */
const spent = new Map<string, number>();
let counting = false;
/** The kernels (pipeline labels up to their variant) the counted forward dispatches, in order. */
const kernelsSeen: string[] = [];
let timing = false;
/**
 * WEBMOE_NOOP_CALLS=1: over the timed chains, the methods that encode or submit work (the pass's setPipeline,
 * setBindGroup, dispatches; queue.submit) return at once without reaching Dawn: what is left of the host time is the
 * library's own JavaScript plus the encoder and pass objects' creation, with no GPU work competing for this host's
 * cores (on lavapipe the kernels run on the CPU); an A/B of the library's host code, not a forward.
 */
const NOOP_CALLS = process.env.WEBMOE_NOOP_CALLS === '1';
const NOOP_METHODS = new Set(['pass.setPipeline', 'pass.setBindGroup', 'pass.dispatchWorkgroups', 'pass.dispatchWorkgroupsIndirect', 'queue.submit']);
let nooping = false;
/**
 * Wraps every method of the prototype of `obj` (the binding's GPUDevice, GPUQueue, GPUCommandEncoder,
 * GPUComputePassEncoder classes) to count and time its calls. The prototypes, not a proxy of the device: the
 * library's caches (pipelines, bind groups, uniform arenas) are keyed by the device object, and a proxy in its
 * place made every forward that saw it a cold one (a new pipeline, bind group and arena per dispatch).
 */
function countMethods(obj: object, what: string): void {
  const proto = Object.getPrototypeOf(obj) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name);
    if (!d || typeof d.value !== 'function' || name === 'constructor') continue;
    const f = d.value as (...a: unknown[]) => unknown;
    const key = `${what}.${name}`;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      if (nooping && NOOP_METHODS.has(key)) return undefined;
      if (!counting && !timing) return f.apply(this, args);
      if (counting) counts.set(key, (counts.get(key) ?? 0) + 1);
      if (counting && name === 'setPipeline') kernelsSeen.push(String((args[0] as { label?: string }).label ?? '?').slice(0, 40));
      const t0 = performance.now();
      const r = f.apply(this, args);
      if (timing) spent.set(key, (spent.get(key) ?? 0) + performance.now() - t0);
      return r;
    };
  }
}
{
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  countMethods(ctx.device, 'device');
  countMethods(ctx.device.queue, 'queue');
  countMethods(enc, 'encoder');
  countMethods(pass, 'pass');
  pass.end();
  enc.finish();
}

/** The garbage collections of this process (start and duration, ms on performance.now's clock), as they are reported. */
const gcs: { start: number; ms: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration });
}).observe({ entryTypes: ['gc'] });

/** Issues a chain of n steps (each output the next input, destroyed once consumed); returns [wall ms, main-thread CPU ms] of the issuing and its window. */
function chain(n: number, step: (x: GpuTensor) => GpuTensor): [number, number, [number, number]] {
  let cur = x;
  const c0 = threadCpuMs() ?? NaN;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const y = step(cur);
    if (cur !== x) cur.destroy();
    cur = y;
  }
  const t1 = performance.now();
  const cpu = (threadCpuMs() ?? NaN) - c0;
  if (cur !== x) cur.destroy();
  return [t1 - t0, cpu, [t0, t1]];
}

/** The collections that started inside `window` (their entries arrive after it: call once the loop has yielded). */
function gcsIn([t0, t1]: [number, number]): { count: number; ms: number } {
  const inside = gcs.filter((g) => g.start >= t0 && g.start <= t1);
  return { count: inside.length, ms: inside.reduce((s, g) => s + g.ms, 0) };
}

const issueOf = (m: { forwardGpuSync?: (x: GpuTensor) => GpuTensor }) => m.forwardGpuSync;
async function run(label: string, layers: number, step: (x: GpuTensor) => GpuTensor | Promise<GpuTensor>): Promise<void> {
  // warm-up (captures the graph), then one counted forward, then the timed chain
  for (let i = 0; i < 3; i++) (await step(x)).destroy();
  await ctx.sync();
  counting = true;
  (await step(x)).destroy();
  counting = false;
  // WEBMOE_TIME_CALLS=1: report the host time inside each WebGPU method over the timed chain
  timing = process.env.WEBMOE_TIME_CALLS === '1';
  const total = [...counts.values()].reduce((s, v) => s + v, 0);
  console.log(`${label}: WebGPU calls per forward (${layers} layer(s)): ${total}  ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
  console.log(`${label}: kernels dispatched: ${kernelsSeen.splice(0).join(' ')}`);
  counts.clear();
  await ctx.sync();
  const isAsync = step(x) instanceof Promise;
  nooping = NOOP_CALLS;
  let issueMs: number;
  let cpuMs: number;
  let window: [number, number] | undefined;
  const t0 = performance.now();
  if (isAsync) {
    let cur = x;
    const c0 = threadCpuMs() ?? NaN;
    const s0 = performance.now();
    for (let i = 0; i < N; i++) {
      const y = await step(cur);
      if (cur !== x) cur.destroy();
      cur = y;
    }
    issueMs = performance.now() - s0;
    cpuMs = (threadCpuMs() ?? NaN) - c0;
    if (cur !== x) cur.destroy();
  } else [issueMs, cpuMs, window] = chain(N, step as (x: GpuTensor) => GpuTensor);
  nooping = false;
  await ctx.sync();
  const wall = performance.now() - t0;
  if (timing) {
    timing = false;
    console.log(`${label}: host us per forward inside WebGPU methods: ${JSON.stringify(Object.fromEntries([...spent].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +((v * 1000) / N).toFixed(1)])))}`);
    spent.clear();
  }
  console.log(`${label}: ${N} calls, host ${((issueMs * 1000) / N / layers).toFixed(1)} us wall / ${((cpuMs * 1000) / N / layers).toFixed(1)} us main-thread CPU per layer to issue, wall ${((wall * 1000) / N / layers).toFixed(1)} us per layer${NOOP_CALLS ? ' (encode and submit calls no-op: WEBMOE_NOOP_CALLS)' : ' (lavapipe: GPU-bound)'}`);
  if (window) {
    // garbage collections while the synchronous chain was issued: part of its host time a caller pays
    const g = gcsIn(window);
    console.log(`${label}: ${g.count} garbage collections while issuing, ${g.ms.toFixed(1)} ms = ${((g.ms * 1000) / N / layers).toFixed(1)} us per layer`);
  }
}

console.log(`${arch} T=${T} H=${moe.hiddenDim} E=${moe.numExperts} k=${moe.numExpertsPerToken} I=${moe.moeDim}, graphs ${moe.useGraphs}, ${ctx.adapterName}`);
if (varyT > 1) {
  // views of x's first rows (x's buffer; never destroyed)
  const views = Array.from({ length: varyT }, (_, i) => new GpuTensor(ctx, 'float32', [T + i, moe.hiddenDim], x.buffer));
  for (const v of views) moe.forwardGpuSync(v).destroy(); // warm: every pipeline compiled
  moe.clearGraphs(); // the timed forwards start with no graph and no token count seen
  await ctx.sync();
  const c0 = threadCpuMs() ?? NaN;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) moe.forwardGpuSync(views[i % varyT]).destroy();
  const issue = performance.now() - t0;
  const cpu = (threadCpuMs() ?? NaN) - c0;
  await ctx.sync();
  console.log(`MoE.forwardGpuSync, T ${T}..${T + varyT - 1} in turn: ${N} calls, host ${((issue * 1000) / N).toFixed(1)} us wall / ${((cpu * 1000) / N).toFixed(1)} us main-thread CPU per forward to issue`);
}
await run('MoE.forwardGpu (await)', 1, (v) => moe.forwardGpu(v));
const sync = issueOf(moe as never);
if (sync) await run('MoE.forwardGpuSync', 1, (v) => sync.call(moe, v));
if (S > 0 && MoEStack) {
  const stack = new MoEStack(Array.from({ length: S }, () => moe), { ownsLayers: false });
  await run(`MoEStack x${S}.forwardGpuSync`, S, (v) => stack.forwardGpuSync(v));
  stack.destroy();
}
x.destroy();
if (benchLayer) benchLayer.destroy();
else moe.destroy();
ctx.destroy();
