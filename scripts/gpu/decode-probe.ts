// Where a decode forward's fixed time goes: the device time of each small decode dispatch (router linear,
// router, group_decode, route_decode, combine) and of a dispatch that does nothing but touch one word,
// each repeated R times in one compute pass (the dependent chain a forward has: Dawn puts a barrier between
// dispatches that write what the next one reads), divided by R; and R = 1 in a pass of its own (the cost the
// bench's per-stage profile sees). T = 1 (and T = 16 for the router and grouping), real routers of five models.
//   node scripts/gpu/build-one.mjs scripts/gpu/decode-probe.ts .gpu-kit/decode-probe.mjs
// --cuts: only the one-token route_decode, cut short at five points (its WGSL with early returns: where its time goes).
// --launch: also an empty dispatch with 1-12 written buffers (storage only, or the library pool's usages with INDIRECT)
// and 0-32 KB of workgroup memory (launchKernel).
//   bash .gpu-kit/enter.sh node .gpu-kit/decode-probe.mjs [--reps R] [--iters N] [--cuts] [--launch] [--models a,b]
import { HostTensor } from '@webmoe/tensor';
import {
  combineGpu,
  createGpuContext,
  defineKernel,
  GpuTensor,
  groupDecodeGpu,
  linearGpu,
  routeDecodeGpu,
  routerGpu,
  uniformFields,
  Recorder,
  type RouterParams,
} from '@webmoe/kernels-wgsl';
import { routeDecodeKernel } from '../../packages/kernels-wgsl/src/kernels/route-decode.js';
import { burnGpu } from '../../apps/bench/src/peak.js';
import { chainedPassMs } from './device-time.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const REPS = flag('reps', 32);
const ITERS = flag('iters', 15);
const ctx = await createGpuContext();
console.log('adapter', ctx.adapterName, 'reps', REPS);

/** One workgroup adds 1 to one word: a dispatch with (almost) no work, dependent on the previous one. */
const touchKernel = defineKernel<{ wg: number }>(
  'probe_touch',
  (v) => `@compute @workgroup_size(${v.wg}) fn main(@builtin(local_invocation_index) li: u32) { if (li == 0u) { B[0] = B[0] + u.one; } }`,
  { signature: () => ({ bindings: [{ name: 'B', type: 'array<f32>', access: 'read_write' }], uniforms: uniformFields('f32', 'one') }) },
);

/**
 * `--launch`: what a dependent dispatch's shape costs before any work: one workgroup of 256 whose lane 0 adds 1 to one
 * word of each of `nb` storage buffers (the routing dispatches bind 4-11), with `wgWords` words of workgroup memory
 * that lane 0 touches (route_decode declares ~11 KB, the skinny router linear 9 KB).
 */
const launchKernel = defineKernel<{ nb: number; wgWords: number }>(
  'probe_launch',
  (v) => `${v.wgWords ? `var<workgroup> pad: array<u32, ${v.wgWords}>;` : ''}
@compute @workgroup_size(256) fn main(@builtin(local_invocation_index) li: u32) {
  if (li == 0u) {${Array.from({ length: v.nb }, (_, i) => ` B${i}[0] = B${i}[0] + u.one;`).join('')}${v.wgWords ? ` pad[u32(u.one) % ${v.wgWords}u] = 1u; B0[1] = f32(pad[0]);` : ''} }
}`,
  {
    signature: (v) => ({
      bindings: Array.from({ length: v.nb }, (_, i) => ({ name: `B${i}`, type: 'array<f32>', access: 'read_write' as const })),
      uniforms: uniformFields('f32', 'one'),
    }),
  },
);

let seed = 1;
const rand = (n: number, lo = -1, hi = 1) =>
  new Float32Array(n).map(() => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return lo + ((seed >>> 8) / 2 ** 24) * (hi - lo);
  });
const up = (shape: number[], lo = -1, hi = 1) => GpuTensor.upload(ctx, HostTensor.fromFloat32(shape, rand(shape.reduce((a, b) => a * b, 1), lo, hi)));

/** Median device ms per dispatch: `one` recorded R times in one pass (per dispatch: / R), or once (R = 1). */
async function perDispatch(one: (rec: Recorder, out: { destroy(): void }[]) => void, reps: number): Promise<number> {
  return chainedPassMs(ctx, { iters: ITERS, warmup: 3 }, reps, (rec) => {
    const outs: { destroy(): void }[] = [];
    one(rec, outs);
    return () => outs.forEach((o) => o.destroy());
  });
}

const fmt = (ms: number) => `${(ms * 1000).toFixed(2).padStart(7)} us`;
async function row(name: string, one: (rec: Recorder, out: { destroy(): void }[]) => void) {
  await burnGpu(ctx, 30);
  const chain = await perDispatch(one, REPS);
  const single = await perDispatch(one, 1);
  console.log(`${name.padEnd(44)} in a chain of ${REPS}: ${fmt(chain)} each | alone in its pass: ${fmt(single)}`);
  return { name, chainUs: chain * 1000, aloneUs: single * 1000 };
}

const results: { name: string; chainUs: number; aloneUs: number }[] = [];
await burnGpu(ctx, 300);
const CUTS = process.argv.includes('--cuts');
const B = ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
for (const wg of [64, 256]) {
  results.push(await row(`touch (1 workgroup of ${wg})`, (rec) => rec.dispatch({ kernel: touchKernel, variant: { wg }, bind: { B }, params: { one: 1 }, workgroups: [1] })));
}
results.push(await row('touch (1024 workgroups of 256)', (rec) => rec.dispatch({ kernel: touchKernel, variant: { wg: 256 }, bind: { B }, params: { one: 1 }, workgroups: [1024] })));
if (process.argv.includes('--launch')) {
  // storage-only buffers, and buffers with the usages of the library's pool and scratch (STORAGE | COPY_SRC | COPY_DST |
  // INDIRECT), which every routing dispatch writes
  const Bs = Array.from({ length: 12 }, () => ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }));
  const Ps = Array.from({ length: 12 }, () => ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.INDIRECT }));
  for (const [nb, wgWords, pool] of [[1, 0, false], [4, 0, false], [8, 0, false], [12, 0, false], [1, 2048, false], [1, 4096, false], [1, 8192, false], [12, 2816, false], [1, 0, true], [12, 0, true], [12, 2816, true]] as const) {
    const bind = Object.fromEntries((pool ? Ps : Bs).slice(0, nb).map((b, i) => [`B${i}`, b]));
    results.push(await row(`launch: ${nb} written ${pool ? 'pool-usage' : 'storage'} buffers, ${wgWords * 4} B workgroup memory`, (rec) => rec.dispatch({ kernel: launchKernel, variant: { nb, wgWords }, bind, params: { one: 1 }, workgroups: [1] })));
  }
}

// The one-token route_decode's WGSL returning early (a uniform condition the compiler cannot fold): at the start of
// main (its workgroup memory and launch only), after route_token's logit loads, before its top-k (softmax / group
// scores done), before its k weights, after route_token (no grouping), and whole.
const whole = { name: routeDecodeKernel.name, source: routeDecodeKernel.source };
const RET = 'if (u.E != 0xffffffffu) { return; }';
function cutAt(src: string, marker: string, inMain: boolean): string {
  if (!src.includes(marker)) throw new Error(`decode-probe --cuts: route_decode no longer holds ${JSON.stringify(marker)}`);
  const s = src.replace(marker, `${RET}\n${marker}`);
  return inMain ? s.replace('  group_one_token(li);', `  ${RET}\n  group_one_token(li);`) : s;
}
const ROUTE_CUTS: [string, (src: string) => string][] = [
  ['launch', (src) => cutAt(src, '  route_token(0u, li);', false)],
  ['loads', (src) => cutAt(src, '  workgroupBarrier();\n  \n', true)],
  ['topk', (src) => cutAt(src, '  let nq = (u.E + 3u) / 4u;', true)],
  ['weights', (src) => cutAt(src, '  // lane j: slot', true)],
  ['route', (src) => cutAt(src, '  group_one_token(li);', false)],
  ['none', (src) => src],
];
const modelsArg = process.argv.indexOf('--models');
// --models a,b: only those routers (default all; with --cuts Qwen3, Mixtral and DeepSeek-V3)
const MODEL_FILTER = modelsArg >= 0 ? process.argv[modelsArg + 1].split(',') : CUTS ? ['qwen3-30b-a3b', 'mixtral-8x7b', 'deepseek-v3'] : undefined;

// [name, H, E, k, I, router]
const MODELS: [string, number, number, number, number, RouterParams][] = [
  ['qwen3-30b-a3b', 2048, 128, 8, 768, { kind: 'softmax_topk', numExperts: 128, topK: 8, normTopkProb: true }],
  ['gpt-oss-20b', 2880, 32, 4, 2880, { kind: 'topk_softmax', numExperts: 32, topK: 4, normTopkProb: false }],
  ['deepseek-v2-lite', 2048, 64, 6, 1408, { kind: 'softmax_topk', numExperts: 64, topK: 6, normTopkProb: false }],
  ['deepseek-v3', 7168, 256, 8, 2048, { kind: 'sigmoid_grouped', numExperts: 256, topK: 8, normTopkProb: true, nGroup: 8, topkGroup: 4, routedScalingFactor: 2.5 }],
  ['mixtral-8x7b', 4096, 8, 2, 14336, { kind: 'topk_softmax', numExperts: 8, topK: 2, normTopkProb: false }],
];
for (const [name, H, E, k, I, params] of MODELS) {
  if (MODEL_FILTER && !MODEL_FILTER.includes(name)) continue;
  const correctionBias = params.kind === 'sigmoid_grouped' ? up([E], -0.1, 0.1) : undefined;
  const wr = up([E, H], -0.05, 0.05);
  for (const T of CUTS ? [1] : [1, 16]) {
    const x = up([T, H]);
    const logits = up([T, E], -3, 3);
    // a routing and its decode grouping, made once, for the grouping and combine rows
    const setup = new Recorder(ctx);
    const routing = routerGpu(ctx, setup, logits, params, { correctionBias });
    const dec = groupDecodeGpu(ctx, setup, routing.idx, E, I, H);
    setup.submit();
    await ctx.sync();
    const y = up([T * k, H]);
    const tag = `${name} T=${T}`;
    if (T === 1) results.push(await row(`${tag} router linear [${E}x${H}]`, (rec, out) => out.push(linearGpu(ctx, rec, x, wr))));
    results.push(await row(`${tag} router (${params.kind})`, (rec, out) => {
      const r = routerGpu(ctx, rec, logits, params, { correctionBias });
      out.push(r.idx, r.weights);
    }));
    results.push(await row(`${tag} group_decode`, (rec, out) => out.push(groupDecodeGpu(ctx, rec, routing.idx, E, I, H).grouping)));
    const routeDecodeRow = (label: string) =>
      row(`${tag} route_decode${label}`, (rec, out) => {
        const f = routeDecodeGpu(ctx, rec, logits, params, I, H, { correctionBias });
        out.push(f.routing.idx, f.routing.weights, f.grouping);
      });
    if (CUTS) {
      for (const [label, cut] of ROUTE_CUTS) {
        Object.assign(routeDecodeKernel, { name: `route_decode_cut_${label}`, source: (v: never, c: never) => cut(whole.source(v, c)) });
        results.push(await routeDecodeRow(` cut ${label}`));
      }
      Object.assign(routeDecodeKernel, whole);
    }
    if (!CUTS) results.push(await routeDecodeRow(''));
    results.push(await row(`${tag} combine [${T}x${H}]`, (rec, out) => out.push(combineGpu(ctx, rec, y, dec.grouping, routing.weights))));
    for (const t of [x, logits, y, routing.idx, routing.weights, dec.grouping]) t.destroy();
  }
  wr.destroy();
  correctionBias?.destroy();
}
console.log(JSON.stringify({ adapter: ctx.adapterName, reps: REPS, results }));
process.exit(0);
