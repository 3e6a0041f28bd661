// Prefill benchmark of the grouped GEMMs (gate_up + silu, then down) on real
// MoE shapes with bf16 weights: the tiled path (tile 'prefill', 32x32, f32),
// the fast register-blocked path ('f32' and 'f16' staging) and the
// subgroup-matrix path in every tile shape of SGMAT_SHAPES (sgmat-<shape>;
// 'sgmat-default' is what plan.ts picks). Prints per-path GPU time (one pass,
// medians after warm-up), TFLOP/s, and each fast path's error against the
// tiled path's output (relErr, L2-relative, over each output's first 32 MiB) so a wrong kernel shows up here
// too (flagged WRONG above 1e-2), then a ranking per model and T.
//   node scripts/gpu/build-one.mjs scripts/gpu/prefill-bench.ts .gpu-kit/prefill-bench.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/prefill-bench.mjs [iters] [path substring,...] [model substring,...] [T,...]
// ('-' for a filter = all; PREFILL_BENCH_MAX_S: the time budget after which no new model / T group starts, default 210)
import { HostTensor } from '@webmoe/tensor';
import { createGpuContext, GpuTensor, Recorder, readBuffer, groupedGateUpGpu, groupedDownGpu, type GroupingGpu, type GroupedGemmOptions } from '@webmoe/kernels-wgsl';
import { sgmatSupported } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast.js';
import { SGMAT_SHAPES, sgmatLayout, type SgmatShapeName } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast-wgsl.js';
import { relErr } from '@webmoe/kernels-wgsl/testing';
import { passTimesMs } from './device-time.js';

const iters = Number(process.argv[2] ?? 10);
const list = (i: number) => (process.argv[i] && process.argv[i] !== '-' ? process.argv[i].split(',') : undefined);
const pathFilter = list(3);
const modelFilter = list(4);
const tFilter = list(5)?.map(Number);
const ctx = await createGpuContext();
const info = (ctx.adapter as GPUAdapter & { info?: Record<string, unknown> }).info;
console.log('adapter', ctx.adapterName, JSON.stringify(ctx.features));
console.log('subgroupMatrixConfigs', JSON.stringify(info?.subgroupMatrixConfigs), 'subgroupMinSize', info?.subgroupMinSize, 'subgroupMaxSize', info?.subgroupMaxSize, 'wgMem', ctx.limits.maxComputeWorkgroupStorageSize, 'sgmatSupported', sgmatSupported(ctx));

function randBf16(n: number, seed: number): Uint16Array {
  const u = new Uint16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    u[i] = 0x3c00 | ((s >>> 16) & 0x83ff); // |w| ~ 2^-7..2^-6, random sign
  }
  return u;
}


// The first path is the reference of relErr (always run).
// sgmat-<shape>-sk<S>: the down GEMM split along K into S (only for T <= maxT: it is for few tiles with long K);
// -xh: x rows converted to f16 in grouped order by a pass of their own first (its time included), then staged;
// -xd: the same rows, A matrices loaded from them directly (no x staging).
const sgmat = (shape: SgmatShapeName, splitK?: number, x?: 'half' | 'direct') => ({
  name: `sgmat-${shape}${splitK ? `-sk${splitK}` : ''}${x === 'half' ? '-xh' : x === 'direct' ? '-xd' : ''}`,
  opts: { tile: 'fast' as const, fast: 'subgroup-matrix' as const, sgmatShape: shape, sgmatSplitK: splitK, sgmatXRows: x },
  shape,
  maxT: splitK ? 512 : undefined,
});
const PATHS: { name: string; opts: GroupedGemmOptions; shape?: SgmatShapeName; maxT?: number }[] = [
  { name: 'tiled32', opts: { tile: 'prefill' } },
  { name: 'fast-f32', opts: { tile: 'fast', fast: 'f32' } },
  { name: 'fast-f16', opts: { tile: 'fast', fast: 'f16' } },
  { name: 'sgmat-default', opts: { tile: 'fast', fast: 'subgroup-matrix' } },
  ...(Object.keys(SGMAT_SHAPES) as SgmatShapeName[]).map((shape) => sgmat(shape)),
  ...(['m64n128k32s', 'm32n128k64', 'm64n128k64'] as SgmatShapeName[]).flatMap((shape) => [sgmat(shape, 2), sgmat(shape, 4)]),
  ...(['m64n128k32s', 'm64n128k64', 'm128n128k32', 'm128n128k32w2x2', 'm32n128k64', 'm16n128k64'] as SgmatShapeName[]).flatMap((shape) => [sgmat(shape, undefined, 'half'), sgmat(shape, undefined, 'direct')]),
  sgmat('m32n128k64', 4, 'half'),
  sgmat('m32n128k64', 4, 'direct'),
].filter((p, i) => i === 0 || !pathFilter || pathFilter.some((f) => p.name.includes(f)));
for (const p of PATHS) if (p.shape) console.log(`shape ${p.shape}`, JSON.stringify(SGMAT_SHAPES[p.shape]), JSON.stringify(sgmatLayout(SGMAT_SHAPES[p.shape])));

// Models (bf16 experts): [name, H, I, E, k]; Ts per model.
const MODELS: [string, number, number, number, number][] = [
  ['mixtral-8x7b', 4096, 14336, 8, 2],
  ['qwen3-30b-a3b', 2048, 768, 128, 8],
  ['deepseek-v3-e32', 7168, 2048, 32, 8],
  ['gpt-oss-20b', 2880, 2880, 32, 4],
  // Only when named in the model filter: a small shape to check this script on any adapter (lavapipe).
  ['smoke', 256, 200, 4, 2],
];
const TS = tFilter ?? [128, 512, 4096];
// Bytes of each output compared against the reference path.
const CHECK_BYTES = 32 << 20;
// The slow reference paths at T = 4096 cost seconds per model; they run with fewer timed iterations there.
const SLOW = new Set(['tiled32', 'fast-f32', 'fast-f16']);

const results: Record<string, unknown>[] = [];
const t0 = performance.now();
// Time budget (seconds; env PREFILL_BENCH_MAX_S, default 210): no new model / T group starts after it, the ranking still prints.
const maxS = Number(process.env.PREFILL_BENCH_MAX_S ?? 210);
let outOfTime = false;
for (const [model, H, I, E, k] of MODELS.filter((m) => (modelFilter ? modelFilter.some((f) => m[0].includes(f)) : m[0] !== 'smoke'))) {
  if ((performance.now() - t0) / 1000 > maxS) {
    console.log(`time budget of ${maxS} s spent: ${model} skipped`);
    continue;
  }
  const wgu = GpuTensor.upload(ctx, new HostTensor('bfloat16', [E, 2 * I, H], randBf16(E * 2 * I * H, 1)));
  const wdn = GpuTensor.upload(ctx, new HostTensor('bfloat16', [E, H, I], randBf16(E * H * I, 2)));
  for (const T of TS) {
    if ((performance.now() - t0) / 1000 > maxS) {
      if (!outOfTime) console.log(`time budget of ${maxS} s spent: ${model} T=${T} and later groups skipped`);
      outOfTime = true;
      continue;
    }
    // Host-built grouping: k distinct experts per token, spread evenly.
    const idx = new Uint32Array(T * k);
    for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) idx[t * k + j] = (t * 7 + j * 13) % E;
    const counts = new Uint32Array(E);
    for (const e of idx) counts[e]++;
    const offsets = new Uint32Array(E + 1);
    for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
    const cur = offsets.slice(0, E);
    const order = new Uint32Array(T * k);
    const position = new Uint32Array(T * k);
    for (let p = 0; p < T * k; p++) {
      order[cur[idx[p]]] = p;
      position[p] = cur[idx[p]]++;
    }
    const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));
    const g: GroupingGpu = { T, k, E, counts: up(counts), offsets: up(offsets), order: up(order), position: up(position), destroy() {} };
    const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H).map((_, i) => Math.sin(i * 0.37))));
    const flopsGU = 2 * T * k * 2 * I * H;
    const flopsDn = 2 * T * k * H * I;
    let refH: Float32Array | undefined;
    let refY: Float32Array | undefined;
    for (const path of PATHS) {
      if (path.name.startsWith('sgmat') && !sgmatSupported(ctx, path.shape)) {
        console.log(`${model} T=${T} ${path.name}: not supported here (falls back); skipped`);
        continue;
      }
      if (path.name === 'fast-f16' && !ctx.features.shaderF16) continue;
      if (path.maxT !== undefined && T > path.maxT) continue;
      try {
        // One checked run: compile errors / validation errors show here; outputs for the error check.
        const { hh, yy } = await ctx.checked(path.name, async () => {
          const rec = new Recorder(ctx);
          const h = groupedGateUpGpu(ctx, rec, x, g, { kind: 'dense', w: wgu }, undefined, { kind: 'silu', layout: 'concat' }, path.opts);
          const y = groupedDownGpu(ctx, rec, h, g, { kind: 'dense', w: wdn }, undefined, path.opts);
          rec.submit();
          // The first CHECK_BYTES of each output (grouped rows of the first experts; whole outputs cost seconds per path at T = 4096).
          const head = async (t: GpuTensor) => new Float32Array((await readBuffer(ctx, t.buffer, Math.min(t.byteLength, CHECK_BYTES))).buffer);
          const hh = await head(h);
          const yy = await head(y);
          h.destroy();
          y.destroy();
          return { hh, yy };
        });
        const errH = refH ? relErr(hh, refH) : 0;
        const errY = refY ? relErr(yy, refY) : 0;
        if (!refH) {
          refH = hh;
          refY = yy;
        }
        // T = 4096: fewer timed iterations (each is tens of ms; the run stays within a few minutes with ~40 paths).
        const n = T >= 4096 ? Math.min(iters, SLOW.has(path.name) ? 3 : 6) : iters;
        let h!: GpuTensor;
        let y!: GpuTensor;
        const [mg, md] = await passTimesMs(
          ctx,
          { iters: n, warmup: 2 },
          [
            (r) => (h = groupedGateUpGpu(ctx, r, x, g, { kind: 'dense', w: wgu }, undefined, { kind: 'silu', layout: 'concat' }, path.opts)),
            (r) => (y = groupedDownGpu(ctx, r, h, g, { kind: 'dense', w: wdn }, undefined, path.opts)),
          ],
          () => {
            h.destroy();
            y.destroy();
          },
        );
        const wrong = errH > 1e-2 || errY > 1e-2 || !Number.isFinite(errH) || !Number.isFinite(errY);
        const r = {
          model, T, path: path.name,
          gateUpMs: mg, downMs: md, totalMs: mg + md,
          gateUpTflops: flopsGU / (mg * 1e9), downTflops: flopsDn / (md * 1e9), tflops: (flopsGU + flopsDn) / ((mg + md) * 1e9),
          relErrVsTiled: { h: errH, y: errY },
          wrong,
        };
        results.push(r);
        console.log(`${model} T=${T} ${path.name.padEnd(24)} gate_up ${mg.toFixed(3)} ms (${r.gateUpTflops.toFixed(1)} TF/s)  down ${md.toFixed(3)} ms (${r.downTflops.toFixed(1)} TF/s)  total ${(mg + md).toFixed(3)} ms = ${r.tflops.toFixed(1)} TFLOP/s  relErr vs tiled h ${errH.toExponential(2)} y ${errY.toExponential(2)}${wrong ? '  WRONG' : ''}`);
      } catch (e) {
        console.log(`${model} T=${T} ${path.name}: FAILED ${(e as Error).message}`);
        results.push({ model, T, path: path.name, error: (e as Error).message });
      }
    }
    x.destroy();
    for (const t of [g.counts, g.offsets, g.order, g.position]) t.destroy();
  }
  wgu.destroy();
  wdn.destroy();
}
// Ranking per model and T (fastest first; WRONG = relErr > 1e-2 against the tiled path).
console.log(`\n== ranking (${((performance.now() - t0) / 1000).toFixed(0)} s) ==`);
const groups = new Map<string, Record<string, unknown>[]>();
for (const r of results) {
  if (r.error) continue;
  const key = `${r.model} T=${r.T}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
for (const [key, rs] of groups) {
  const sorted = [...rs].sort((a, b) => (a.totalMs as number) - (b.totalMs as number));
  // Per op too (plan.ts may pick a shape per op): the three fastest correct paths of gate_up and of down.
  const ok = rs.filter((r) => !r.wrong);
  for (const op of ['gateUpMs', 'downMs'] as const) {
    const best = [...ok].sort((a, b) => (a[op] as number) - (b[op] as number)).slice(0, 3);
    console.log(`${key} best ${op === 'gateUpMs' ? 'gate_up' : 'down'}: ${best.map((r) => `${r.path} ${(r[op] as number).toFixed(3)}ms`).join(' | ')}`);
  }
  console.log(`${key}: ${sorted.map((r) => `${r.path} ${(r.totalMs as number).toFixed(2)}ms/${(r.tflops as number).toFixed(0)}TF (gu ${(r.gateUpMs as number).toFixed(2)} dn ${(r.downMs as number).toFixed(2)})${r.wrong ? ' WRONG' : ''}`).join(' | ')}`);
}
console.log(JSON.stringify({ adapter: ctx.adapterName, results }));
process.exit(0);
