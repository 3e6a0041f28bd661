// The small dispatches of a prefill forward beside its GEMMs (session 28's per-kernel profile: ~0.2 ms of them at
// T = 512): the router linear on each of its kernels (linear.ts: gemv / tiled / skinny with 1, 2, 4 tokens a workgroup, forced) and the combine with
// one output per thread or four (combine.ts's v4), each repeated R times in one compute pass, divided by R (device
// time, timestamp queries), the grouping in one workgroup or four passes (grouping.ts) and the down GEMM's f16 act
// rows read once or twice (halfRowsKernel), for the routers and sizes of five models at T = 128, 512 and 4096. Every variant's
// output is compared with the default's (max relative difference printed; the tests hold the references).
//   node scripts/gpu/build-one.mjs scripts/gpu/prefill-small-probe.ts .gpu-kit/prefill-small-probe.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/prefill-small-probe.mjs [--reps R] [--iters N] [--tokens 128,512] [--models mixtral-8x7b,..] [--linear-only]
// (--linear-only: the router linear's kernels alone)
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, LINEAR_KERNELS, Recorder, createGpuContext, foldWorkgroups, groupGpu, groupRef, linearGpu, uploadGrouping } from '@webmoe/kernels-wgsl';
import { combineKernel } from '../../packages/kernels-wgsl/src/kernels/combine.js';
import { halfRowsKernel, halfRowsRegs } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast-wgsl.js';
import { HALF_ROWS_PAD, halfRowStride } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast-shapes.js';
import { burnGpu } from '../../apps/bench/src/peak.js';
import { DEFAULT_MODELS, MODELS } from '../../apps/bench/src/models.js';
import { chainedPassMs } from './device-time.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
function list(name: string): string[] | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1].split(',') : undefined;
}
const REPS = flag('reps', 16);
const TOKENS = (list('tokens') ?? ['128', '512', '4096']).map(Number);
const ONLY = list('models');
const ITERS = flag('iters', 11);
const LINEAR_ONLY = process.argv.includes('--linear-only');
const ctx = await createGpuContext();
console.log('adapter', ctx.adapterName, 'reps', REPS, 'iters', ITERS);

let seed = 7;
const rand = (n: number, lo = -1, hi = 1) =>
  new Float32Array(n).map(() => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return lo + ((seed >>> 8) / 2 ** 24) * (hi - lo);
  });
const up = (shape: number[], dtype: 'float32' | 'bfloat16' = 'float32', lo = -1, hi = 1) => GpuTensor.upload(ctx, HostTensor.fromFloat32(shape, rand(shape.reduce((a, b) => a * b, 1), lo, hi), dtype));

async function perDispatch(one: (rec: Recorder, out: { destroy(): void }[]) => void): Promise<number> {
  return chainedPassMs(ctx, { iters: ITERS, warmup: 3 }, REPS, (rec) => {
    const outs: { destroy(): void }[] = [];
    one(rec, outs);
    return () => outs.forEach((o) => o.destroy());
  });
}

/** Max |a - b| / max |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m > 0 ? d / m : d;
}

async function once(one: (rec: Recorder) => GpuTensor): Promise<Float32Array> {
  const rec = new Recorder(ctx);
  const y = one(rec);
  rec.submit();
  const h = (await y.download()).data as Float32Array;
  y.destroy();
  return h;
}

/** `one`'s output tensor (kept) downloaded as words. */
async function onceKeep(one: (rec: Recorder) => GpuTensor): Promise<Uint32Array> {
  const rec = new Recorder(ctx);
  const y = one(rec);
  rec.submit();
  return (await y.download()).data as Uint32Array;
}

const results: { model: string; T: number; what: string; us: number; relDiff: number }[] = [];
function report(model: string, T: number, what: string, ms: number, d: number) {
  results.push({ model, T, what, us: ms * 1000, relDiff: d });
  console.log(`${model.padEnd(18)} T=${String(T).padStart(4)} ${what.padEnd(26)} ${(ms * 1000).toFixed(2).padStart(8)} us  (rel diff to default ${d.toExponential(1)})`);
}

// the bench's default models (apps/bench/src/models.ts): H the router's K, E its N, k, I the down GEMM's K
const PROBED = DEFAULT_MODELS.map((name) => MODELS.find((m) => m.name === name)!);
await burnGpu(ctx, 300);
for (const { name, H, E, k, I } of PROBED) {
  if (ONLY && !ONLY.includes(name)) continue;
  const wr = up([E, H], 'bfloat16', -0.05, 0.05);
  for (const T of TOKENS) {
    const x = up([T, H]);
    const ref = await once((rec) => linearGpu(ctx, rec, x, wr));
    // the skinny kernel with each of its tokens per workgroup
    for (const { path, skinnyTokens } of LINEAR_KERNELS) {
      if (path === 'gemv' && T > 512) continue; // T * N workgroups of all of K: seconds at T = 4096
      const y = await once((rec) => linearGpu(ctx, rec, x, wr, { path, skinnyTokens }));
      await burnGpu(ctx, 20);
      report(name, T, `router linear ${path}${skinnyTokens ?? ''}`, await perDispatch((rec, out) => out.push(linearGpu(ctx, rec, x, wr, { path, skinnyTokens }))), relDiff(y, ref));
    }
    x.destroy();
    if (LINEAR_ONLY) continue;
    // the combine of T tokens' k rows of H outputs, weighted (a random grouping)
    const idx = new Uint32Array(T * k).map(() => Math.floor((rand(1)[0] * 0.5 + 0.5) * E) % E);
    // the grouping of those pairs: one workgroup (group_one) or four passes; the offsets compared
    const gidx = GpuTensor.upload(ctx, new HostTensor('uint32', [T, k], idx));
    const offsets = async (oneWorkgroup: boolean) => {
      const rec = new Recorder(ctx);
      const gg = groupGpu(ctx, rec, gidx, E, { oneWorkgroup });
      rec.submit();
      const o = (await gg.offsets.download()).data as Uint32Array;
      gg.destroy();
      return Float32Array.from(o);
    };
    const o4 = await offsets(false);
    for (const oneWorkgroup of [false, true]) {
      const o = await offsets(oneWorkgroup);
      await burnGpu(ctx, 20);
      report(name, T, `grouping ${oneWorkgroup ? 'one workgroup' : 'four passes'}`, await perDispatch((rec, out) => out.push(groupGpu(ctx, rec, gidx, E, { oneWorkgroup }))), relDiff(o, o4));
    }
    gidx.destroy();
    const g = uploadGrouping(ctx, groupRef(idx, T, k, E));
    const y = up([T * k, H]);
    const w = up([T, k], 'float32', 0, 1);
    const combine = (v4: boolean) => (rec: Recorder) => {
      const out = GpuTensor.empty(ctx, 'float32', [T, H]);
      const n = (T * H) / (v4 ? 4 : 1);
      rec.dispatch({ kernel: combineKernel, variant: { weighted: true, shared: false, gate: false, ...(v4 ? { v4 } : {}) }, bind: { Y: y.buffer, POS: g.position.buffer, WT: w.buffer, OUT: out.buffer }, params: { n, H: H / (v4 ? 4 : 1), k }, workgroups: foldWorkgroups(ctx, Math.ceil(n / 256)) });
      return out;
    };
    const c1 = await once(combine(false));
    for (const v4 of [false, true]) {
      const c = await once(combine(v4));
      await burnGpu(ctx, 20);
      report(name, T, `combine ${v4 ? 'v4' : 'scalar'}`, await perDispatch((rec, out) => out.push(combine(v4)(rec))), relDiff(c, c1));
    }
    // the down GEMM's f16 act rows (halfRowsKernel, grouped rows): read once into registers, or twice
    {
      const rows = T * k;
      const kp = halfRowStride(I);
      const act = up([rows, I], 'float32', -4, 4);
      const xh = GpuTensor.empty(ctx, 'uint32', [((rows + HALF_ROWS_PAD) * kp) / 2]);
      const xru = GpuTensor.empty(ctx, 'float32', [rows]);
      const half = (regs: boolean) => (rec: Recorder) => {
        rec.dispatch({ kernel: halfRowsKernel, variant: regs ? { xmode: 'grouped', rowScale: false, regs: halfRowsRegs(I) } : { xmode: 'grouped', rowScale: false }, bind: { X: act.buffer, ORDER: g.order.buffer, XH: xh.buffer, XRU: xru.buffer }, params: { rows, kv: I / 4, k, kvp: kp / 4 }, workgroups: foldWorkgroups(ctx, rows + HALF_ROWS_PAD) });
        return xh;
      };
      const h2 = Float32Array.from((await onceKeep(half(false))).subarray(0, 4096));
      for (const regs of [false, true]) {
        const h = Float32Array.from((await onceKeep(half(regs))).subarray(0, 4096));
        await burnGpu(ctx, 20);
        report(name, T, `act half rows ${regs ? `regs ${halfRowsRegs(I)}` : 'two reads'}`, await perDispatch((rec) => void half(regs)(rec)), relDiff(h, h2));
      }
      for (const t of [act, xh, xru]) t.destroy();
    }
    for (const t of [g, y, w]) t.destroy();
  }
  wr.destroy();
}
console.log(JSON.stringify({ adapter: ctx.adapterName, reps: REPS, iters: ITERS, results }));
process.exit(0);
