// Micro-benchmark of the decode GEMVs (gate_up + down, device time) on real MoE shapes, for every weight
// format and every packed GEMV kernel (GEMV_PACKED_KERNELS: 'table', 'wide', 'rows1' | 'rows2' | 'rows4' and
// the split-K candidates 'rows2k2' | 'rows2k4' | 'rows1k8' | 'rows4k2'), with a copy kernel measuring the device
// bandwidth in the same process. Prints one line per row, a ranking per (model, format, T) with the planner's
// default marked, the full DeepSeek-V3 layer's GEMVs (routed + shared expert) per kernel and fp8 against bf16,
// and at the end one JSON object.
// Caution: its rankings have not matched the layer's. Session 22: its lone passes timed packed GEMVs 2-3.6x slower
// than the layer's own per-kernel profile; session 23: even chained (--chain 8) its winners for full DeepSeek-V3
// (bf16 'rows4k2', fp8 'rows4') were level or 16% slower in the layer (docs/PERF-NOTES.md). Decide kernel rules on
// the layer (bench builds A/B in one call, build-kit.sh KEEP_OLD=1), not on this.
//   node scripts/gpu/build-one.mjs scripts/gpu/gemv-bench.ts .gpu-kit/gemv-bench.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/gemv-bench.mjs [--iters N] [--warmup N] [--burn MS] [--small]
// --small: small shapes (for lavapipe), --iters: timed iterations per row (median; default 20),
// --burn: ms of FMA burn before the measurements (raises the clocks; default 300), --burn-each: before each timed row
// (default 40); --formats, --kernels,
// --tokens, --models: comma-separated subsets (--models matches name substrings; e.g. a quick lavapipe run:
// --small --iters 2 --warmup 1 --burn 50 --formats int4,fp8 --tokens 1); --max-binding BYTES: a lower binding
// limit (stacks above it split into whole-expert chunks); --chunks-per-dispatch N: chunks of a chunked stack bound
// by one GEMV dispatch (GemvOptions.chunksPerDispatch; 1: one dispatch per chunk, the kernel before multi-chunk
// dispatches; default: the planner's gemvChunksPerDispatch, 4 on a GPU; up to 16, within the device's storage bindings). A/B: 1, 4 and 8.
// Models: Mixtral-8x7B (H 4096, I 14336, E 8, k 2), Qwen3-30B-A3B (H 2048, I 768, E 128, k 8), GPT-OSS-20B (H 2880,
// I 2880, E 32, k 4; its rows are no multiple of a lane step: the last step partly empty), DeepSeek-V3 in
// full (H 7168, I 2048, E 256, k 8; stacks over the binding limit are split into whole-expert chunks as the
// layer does) and its shared expert (E 1, k 1).
// Bytes moved per row: the packed codes and scales (bf16: the weights) of the routed experts, both GEMVs.
// relErr: each kernel's h (gate_up output) and y (down output) against the 'table' kernel's.
// --combined: also the end of the forward, the down GEMV + combine (the planner's kernel) against the combined down
// GEMV (gemvDownCombineGpu) with each row-blocked kernel, device time of each, relErr against the two dispatches
// (rows `down+combine` and `combined:<kernel>`; the ranking shows them under '<model> <format> T=<T> end').
// --xs-first: each staged-x kernel ('rowsNs') twice: with each lane's code and scale loads after the slice's x copy and
// ('rowsNs^') before it (GemvOptions.stagedXLoadsFirst), whatever the planner's rule.
// --prefetch: each row-blocked kernel with 16-byte chunks per lane ('rowsN', 'rowsNkS', 'rowsNs') twice: as the planner
// orders its loads and ('rowsN+') loading each lane's next step before the current one decodes (GemvOptions.prefetchCodes).
// --split: also each GEMV alone, gate_up on x and down on its output (device ms of each, in the line and the JSON).
// --chain R: each timed pass records the row's work R times back to back (time / R), as the layer's forwards run one
// after another; default 1 (one copy per pass; since session 24 the passes of all iterations are submitted back to
// back and drained once, device-time.ts: before, each was submitted and awaited alone, and session 22 found packed
// rows 2-3.6x the layer's own GEMV time that way, bf16 level).
// --ablate decode+x+scale+nan (any of them, joined by +): diagnostics, not results: the moe_gemv modules compile with
// those parts of their work removed (gemv-ablate.ts), so that each row's time without them says what they cost; the
// outputs are wrong by design and not checked. Each row names the ablations applied to the modules it compiled
// ('cached': its pipelines were compiled by an earlier row). Compare with a run without --ablate in the same call.
import { createGpuContext, GpuTensor, Recorder, defineKernel, uniformFields, gemvGateUpGpu, gemvDownGpu, gemvDownCombineGpu, gemvCombineSupports, combineGpu, activeExpertsGpu, foldWorkgroups, destroyExpertWeights, type GroupingGpu, type ExpertWeightsGpu, type ExpertStackGpu, type GemvPackedKernel } from '@webmoe/kernels-wgsl';
import { gemvPackedPath, kernelBlocking } from '../../packages/kernels-wgsl/src/kernels/moe-gemv.js';
import { GEMV_PACKED_KERNELS, gemvDenseKernelFor, gemvPackedKernelFor, gemvRowsPerPass } from '../../packages/kernels-wgsl/src/kernels/plan.js';
import { HostTensor } from '@webmoe/tensor';
import { relErr } from '@webmoe/kernels-wgsl/testing';
import { burnGpu } from '../../apps/bench/src/peak.js';
import { chainedPassMs } from './device-time.js';
import { installAblations, parseAblations, type Ablation } from './gemv-ablate.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const ITERS = flag('iters', 20);
/** Copies of a row's work recorded back to back in each timed pass (--chain). */
const CHAIN = flag('chain', 1);
const WARMUP = flag('warmup', 5);
const BURN_MS = flag('burn', 300);
// ms of FMA burn before each timed row: the packed kernels' times follow the clocks, which drop while the host generates weights
const BURN_EACH_MS = flag('burn-each', 40);
const SMALL = process.argv.includes('--small');
const COMBINED = process.argv.includes('--combined');
// --split: also each GEMV alone (gate_up on x; down on the gate_up output), device time of each (Row.msGateUp / msDown)
const SPLIT = process.argv.includes('--split');
/** --xs-first: each staged-x kernel ('rowsNs') twice, its code loads after the slice's x copy and ('rowsNs^') before it. */
const XS_FIRST = process.argv.includes('--xs-first');
/** --prefetch: each row-blocked kernel with 16-byte chunks per lane twice, without and ('rowsN+') with GemvOptions.prefetchCodes. */
const PREFETCH = process.argv.includes('--prefetch');
/** Comma-separated lists restricting the rows (--formats int4,fp8 --kernels table,rows2 --tokens 1). */
function list(name: string): string[] | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1].split(',') : undefined;
}

// --max-binding BYTES: a lower binding limit (stacks above it are chunked; e.g. to try the chunked stacks on lavapipe)
const ctx = await createGpuContext(process.argv.includes('--max-binding') ? { maxBindingBytes: flag('max-binding', 0) } : {});
const CHUNKS_PER_DISPATCH = process.argv.includes('--chunks-per-dispatch') ? flag('chunks-per-dispatch', 0) : undefined;
const ABLATE = list('ablate') ? parseAblations(list('ablate')!.join('+')) : undefined;
/** The moe_gemv modules compiled since the last clear, with the ablations that matched each (--ablate). */
const ablationLog: { label: string; applied: Ablation[] }[] = [];
if (ABLATE) installAblations(ctx.device, ABLATE, ablationLog);
console.log('adapter', ctx.adapterName, 'maxBinding', ctx.limits.maxStorageBufferBindingSize, 'storage buffers per stage', ctx.limits.maxStorageBuffersPerShaderStage, 'chunks per dispatch', CHUNKS_PER_DISPATCH ?? 'default', 'chain', CHAIN);

/**
 * Median device time (ms) of what `record` records (its outputs freed by the function it returns), after WARMUP untimed
 * runs; with --chain R, recorded R times in each pass and the pass's time divided by R.
 */
async function deviceMs(record: (rec: Recorder) => () => void): Promise<number> {
  return chainedPassMs(ctx, { iters: ITERS, warmup: WARMUP }, CHAIN, record);
}

// copy bandwidth in this process
const copyK = defineKernel<{ v: number }>(
  'copy4',
  () => `
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u; if (i < u.n) { B[i] = A[i]; } }`,
  {
    signature: () => ({
      bindings: [
        { name: 'A', type: 'array<vec4<u32>>', access: 'read' },
        { name: 'B', type: 'array<vec4<u32>>', access: 'read_write' },
      ],
      uniforms: uniformFields('u32', 'n'),
    }),
  },
);
if (BURN_MS > 0) await burnGpu(ctx, BURN_MS);
const copyBytes = Math.min(SMALL ? 16 << 20 : 1024 << 20, ctx.limits.maxStorageBufferBindingSize);
const words = copyBytes / 16;
const A = ctx.device.createBuffer({ size: copyBytes, usage: GPUBufferUsage.STORAGE });
const B = ctx.device.createBuffer({ size: copyBytes, usage: GPUBufferUsage.STORAGE });
const copyMs = await deviceMs((rec) => {
  rec.dispatch({ kernel: copyK, variant: { v: 1 }, bind: { A, B }, params: { n: words }, workgroups: foldWorkgroups(ctx, Math.ceil(words / 256)) });
  return () => {};
});
const copyGBps = (2 * copyBytes) / (copyMs * 1e6);
console.log(`copy ${copyBytes >> 20} MiB: ${copyMs.toFixed(4)} ms, ${copyGBps.toFixed(0)} GB/s`);
A.destroy();
B.destroy();

/** A GPU tensor of `bytes` pseudo-random bytes (a 16 MiB pattern repeated; `fix` maps each byte, e.g. to keep fp8 codes finite). */
const PATTERN = 16 << 20;
function randomTensor(dtype: 'uint8' | 'bfloat16' | 'float16' | 'float32' | 'float8_e4m3fn', shape: number[], fix: (b: Uint8Array) => void): GpuTensor {
  const t = GpuTensor.empty(ctx, dtype, shape, 'bench.w');
  const bytes = t.buffer.size; // a multiple of 4
  const pat = new Uint8Array(Math.min(PATTERN, Math.ceil(bytes / 4) * 4));
  let s = (bytes * 2654435761) >>> 0;
  for (let i = 0; i < pat.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    pat[i] = s >>> 24;
  }
  fix(pat);
  for (let o = 0; o < bytes; o += pat.length) ctx.writeBuffer(t.buffer, o, pat, 0, Math.min(pat.length, bytes - o));
  return t;
}
/** bf16 / f16 words of magnitude about 2^-7..2^-6 (random sign): byte pairs with a fixed exponent. */
const halfWeights = (hiMask: number, hiSet: number) => (b: Uint8Array) => {
  for (let i = 1; i < b.length; i += 2) b[i] = (b[i] & hiMask) | hiSet;
};
const f16Scales = (b: Uint8Array) => {
  for (let i = 1; i < b.length; i += 2) b[i] = 0x20 | (b[i] & 0x03); // f16 0x20xx..0x23xx: about 0.008..0.015
};

type Format = 'bf16' | 'int4' | 'int8' | 'mxfp4' | 'fp8';
/** The planner's name of each packed format (gemvPackedKernelFor's `format`). */
const PACKED_FORMAT = { bf16: undefined, int4: 'int4', int8: 'int8', mxfp4: 'mxfp4', fp8: 'fp8_e4m3' } as const;
const FORMATS = (['bf16', 'int4', 'int8', 'mxfp4', 'fp8'] as Format[]).filter((f) => list('formats')?.includes(f) ?? true);

/** Expert weights [E, rows, cols] in a format, with random codes and sane scales. */
function makeWeights(fmt: Format, E: number, rows: number, cols: number): ExpertWeightsGpu {
  switch (fmt) {
    case 'bf16':
      return { kind: 'dense', w: randomTensor('bfloat16', [E, rows, cols], halfWeights(0x80, 0x3c)) };
    case 'int4':
    case 'int8': {
      const bits = fmt === 'int4' ? 4 : 8;
      return { kind: 'int_block', bits, blockSize: 128, q: randomTensor('uint8', [E, rows, (cols * bits) / 8], () => {}), scales: randomTensor('float16', [E, rows, Math.ceil(cols / 128)], f16Scales) };
    }
    case 'mxfp4':
      return {
        kind: 'mxfp4',
        blocks: randomTensor('uint8', [E, rows, cols / 32, 16], () => {}),
        scales: randomTensor('uint8', [E, rows, cols / 32], (b) => b.forEach((v, i) => (b[i] = 118 + (v & 7)))),
      };
    case 'fp8':
      return {
        kind: 'fp8_block',
        block: [128, 128],
        // exponents up to 14: no NaN codes
        q: randomTensor('float8_e4m3fn', [E, rows, cols], (b) => b.forEach((v, i) => (b[i] = v & 0xf7))),
        scaleInv: randomTensor('float32', [E, Math.ceil(rows / 128), Math.ceil(cols / 128)], (b) => {
          const f = new Float32Array(b.buffer, b.byteOffset, b.length >> 2);
          f.forEach((_, i) => (f[i] = 1e-3 * (1 + (i % 7) / 7)));
        }),
      };
  }
}

/** Bytes of one expert's weights (codes + scales). */
function expertBytes(stack: ExpertStackGpu): number {
  const w = stack.kind === 'chunked' ? stack.chunks[0].w : stack;
  const ts = w.kind === 'dense' ? [w.w] : w.kind === 'fp8_block' ? [w.q, w.scaleInv] : w.kind === 'mxfp4' ? [w.blocks, w.scales] : [w.q, w.scales, ...(w.zeros ? [w.zeros] : [])];
  return ts.reduce((s, t) => s + t.byteLength / t.shape[0], 0);
}

/** Bytes per weight of a format's codes (the largest tensor of a stack). */
const CODE_BYTES: Record<Format, number> = { bf16: 2, int4: 0.5, int8: 1, mxfp4: 0.5, fp8: 1 };

/**
 * Expert weights [E, rows, cols]: one container where the codes fit one binding, else whole-expert chunks
 * (as the layer splits DeepSeek-V3's stacks), each filled and flushed before the next.
 */
async function makeStack(fmt: Format, E: number, rows: number, cols: number, layout: 'concat' | 'rows'): Promise<ExpertStackGpu> {
  const perChunk = Math.max(1, Math.floor(ctx.maxBindingBytes / (rows * cols * CODE_BYTES[fmt])));
  if (perChunk >= E) return makeWeights(fmt, E, rows, cols);
  const chunks = [];
  for (let e0 = 0; e0 < E; e0 += perChunk) {
    const experts = Math.min(perChunk, E - e0);
    chunks.push({ e0, experts, o0: 0, outputs: layout === 'concat' ? rows / 2 : rows, w: makeWeights(fmt, experts, rows, cols) });
    await ctx.device.queue.onSubmittedWorkDone();
  }
  return { kind: 'chunked', E, rows, cols, layout, chunks };
}

/** [name, H, I, E, k] */
type Model = [string, number, number, number, number];
const ALL_MODELS: Model[] = SMALL
  ? [['small', 256, 128, 8, 2], ['small-i896', 256, 896, 8, 2], ['small-e32', 512, 256, 32, 8], ['small-shared', 512, 256, 1, 1]]
  : [['mixtral-8x7b', 4096, 14336, 8, 2], ['qwen3-30b-a3b', 2048, 768, 128, 8], ['gpt-oss-20b', 2880, 2880, 32, 4], ['deepseek-v3', 7168, 2048, 256, 8], ['deepseek-v3/shared', 7168, 2048, 1, 1]];
const MODELS = ALL_MODELS.filter((m) => list('models')?.some((f) => m[0].includes(f)) ?? true);
const TS = [1, 16].filter((t) => list('tokens')?.includes(String(t)) ?? true);
const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));

/** A timed kernel: a packed kernel, bf16's dense kernel, or a row-blocked one with its loads first (--xs-first, '^') or prefetched (--prefetch, '+'). */
type BenchKernel = GemvPackedKernel | 'dense' | `${GemvPackedKernel}^` | `${GemvPackedKernel}+`;
interface Row { model: string; format: Format; T: number; kernel: BenchKernel | `combined:${GemvPackedKernel}` | 'down+combine'; default: boolean; path: string; ms: number; bytes: number; gbps: number; ofCopy: number; relErrH: number; relErrY: number; msGateUp?: number; msDown?: number; ablated?: string }
const rows: Row[] = [];

/**
 * --combined: the forward's end (down projection and combine) on h = gate_up(x), as two dispatches (the planner's down
 * kernel, then combineGpu) and as the combined down GEMV with each row-blocked kernel; `bytes`: the down weights moved.
 */
async function endOfForward(name: string, fmt: Format, T: number, g: GroupingGpu, idx: Uint32Array, x: GpuTensor, wgu: ExpertStackGpu, wdn: ExpertStackGpu, active: ReturnType<typeof activeExpertsGpu>, bytes: number): Promise<void> {
  if (!gemvCombineSupports(wdn, T, g.k)) {
    console.log(`${name} ${fmt} T=${T}: the combined down GEMV does not take these weights (chunked or not row-blocked)`);
    return;
  }
  const rec0 = new Recorder(ctx);
  const h = gemvGateUpGpu(ctx, rec0, x, g, wgu, { kind: 'silu', layout: 'concat' }, { active });
  rec0.submit();
  const ig = GpuTensor.upload(ctx, new HostTensor('uint32', [T, g.k], idx));
  const wt = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, g.k], new Float32Array(T * g.k).map((_, i) => 0.1 + ((i * 7) % 10) / 20)));
  const ways: [Row['kernel'], (rec: Recorder) => GpuTensor[]][] = [
    ['down+combine', (rec) => {
      const y = gemvDownGpu(ctx, rec, h, g, wdn, { active });
      return [y, combineGpu(ctx, rec, y, g, wt)];
    }],
    ...GEMV_PACKED_KERNELS.filter((kn) => kn.startsWith('rows') && (list('kernels')?.includes(kn) ?? true)).map(
      (kn): [Row['kernel'], (rec: Recorder) => GpuTensor[]] => [`combined:${kn}`, (rec) => [gemvDownCombineGpu(ctx, rec, h, g, ig, wt, wdn, { packedKernel: kn })]],
    ),
  ];
  let ref: Float32Array | undefined;
  for (const [kernel, run] of ways) {
    const rec = new Recorder(ctx);
    const outs = run(rec);
    rec.submit();
    const out = (await outs[outs.length - 1].download()).toFloat32();
    for (const o of outs) o.destroy();
    ref ??= out;
    if (BURN_EACH_MS > 0) await burnGpu(ctx, BURN_EACH_MS);
    const ms = await deviceMs((r) => {
      const oo = run(r);
      return () => oo.forEach((o) => o.destroy());
    });
    const gbps = bytes / (ms * 1e6);
    const row: Row = { model: name, format: fmt, T, kernel, default: kernel === 'down+combine', path: 'end', ms, bytes, gbps, ofCopy: gbps / copyGBps, relErrH: 0, relErrY: relErr(out, ref) };
    rows.push(row);
    console.log(`${name.padEnd(18)} ${fmt.padEnd(5)} T=${String(T).padEnd(2)} end ${kernel.padEnd(16)} ${ms.toFixed(4)} ms  ${gbps.toFixed(0).padStart(5)} GB/s  ${(100 * row.ofCopy).toFixed(1).padStart(5)}% of copy  relErr ${row.relErrY.toExponential(1)}`);
  }
  for (const t of [h, ig, wt]) t.destroy();
}

const t0 = performance.now();
for (const [name, H, I, E, k] of MODELS) {
  for (const fmt of FORMATS) {
    const wgu = await makeStack(fmt, E, 2 * I, H, 'concat');
    const wdn = await makeStack(fmt, E, H, I, 'rows');
    // 'table' first: the others' relErr is against its outputs
    // bf16: the dense kernel first (the others' relErr is against it), then the row-blocked ones asked for
    const asked: (GemvPackedKernel | 'dense')[] =
      fmt === 'bf16'
        ? ['dense', ...GEMV_PACKED_KERNELS.filter((kn) => kn.startsWith('rows') && (list('kernels')?.includes(kn) ?? ['rows1', 'rows2', 'rows4'].includes(kn)))]
        : GEMV_PACKED_KERNELS.filter((kn) => kn === 'table' || (list('kernels')?.includes(kn) ?? true));
    // --xs-first: each staged-x kernel also with its code loads before the slice's x copy (`rowsNs^`); --prefetch: each
    // row-blocked kernel with 16-byte chunks per lane also loading its next step before the current decodes (`rowsN+`)
    const kernels: BenchKernel[] = asked.flatMap((kn): BenchKernel[] => [
      kn,
      ...(XS_FIRST && /^rows\ds$/.test(kn) ? [`${kn}^` as BenchKernel] : []),
      ...(PREFETCH && /^rows\d(k\d)?s?$/.test(kn) ? [`${kn}+` as BenchKernel] : []),
    ]);
    for (const T of TS) {
      const idx = new Uint32Array(T * k);
      for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) idx[t * k + j] = (t * 7 + j * 13) % E;
      const counts = new Uint32Array(E);
      for (const e of idx) counts[e]++;
      const offsets = new Uint32Array(E + 1);
      for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
      const cur = offsets.slice(0, E);
      const order = new Uint32Array(T * k), position = new Uint32Array(T * k);
      for (let p = 0; p < T * k; p++) {
        order[cur[idx[p]]] = p;
        position[p] = cur[idx[p]]++;
      }
      const g: GroupingGpu = { T, k, E, counts: up(counts), offsets: up(offsets), order: up(order), position: up(position), destroy() {} };
      const x = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, H], new Float32Array(T * H).map((_, i) => Math.sin(i))));
      const distinct = counts.filter((c) => c > 0).length;
      const bytes = distinct * (expertBytes(wgu) + expertBytes(wdn));
      let refOut: { h: Float32Array; y: Float32Array } | undefined;
      // the active-expert list once (the layer's route_decode makes it along with the routing): only the GEMVs are timed
      const activeRec = new Recorder(ctx, { capture: true });
      const active = activeExpertsGpu(ctx, activeRec, g, I, H);
      activeRec.submit();
      const activeOwner = activeRec.toGraph(); // owns the list's buffers until destroyed
      for (const kernel of kernels) {
        // 'dense' is bf16's only: 'table' on dense weights is the dense kernel; 'rowsNs^' / 'rowsN+': the kernel, its loads reordered
        const packedKernel = (kernel === 'dense' ? 'table' : kernel.replace(/[\^+]$/, '')) as GemvPackedKernel;
        // the x-in-registers kernels ('rowsNkSx') take one token row per pass only
        if (kernelBlocking(packedKernel).xr && gemvRowsPerPass(T, k, E, true) !== 1) continue;
        // the row's GEMV options, both GEMVs
        const opts = {
          active,
          packedKernel,
          chunksPerDispatch: CHUNKS_PER_DISPATCH,
          stagedXLoadsFirst: XS_FIRST ? kernel.endsWith('^') : undefined,
          prefetchCodes: PREFETCH ? kernel.endsWith('+') : undefined,
        };
        const run = (rec: Recorder) => {
          const h = gemvGateUpGpu(ctx, rec, x, g, wgu, { kind: 'silu', layout: 'concat' }, opts);
          const y = gemvDownGpu(ctx, rec, h, g, wdn, opts);
          return { h, y };
        };
        // outputs once, for the error against the table kernel
        ablationLog.length = 0;
        const rec = new Recorder(ctx);
        const o = run(rec);
        rec.submit();
        const ablated = ABLATE ? (ablationLog.length ? [...new Set(ablationLog.flatMap((l) => l.applied))].join('+') || 'none matched' : 'cached') : undefined;
        const out = { h: (await o.h.download()).toFloat32(), y: (await o.y.download()).toFloat32() };
        o.h.destroy();
        o.y.destroy();
        refOut ??= out;
        if (BURN_EACH_MS > 0) await burnGpu(ctx, BURN_EACH_MS);
        const ms = await deviceMs((r) => {
          const oo = run(r);
          return () => {
            oo.h.destroy();
            oo.y.destroy();
          };
        });
        let split: { msGateUp: number; msDown: number } | undefined;
        if (SPLIT) {
          const gateUp = (rec: Recorder) => gemvGateUpGpu(ctx, rec, x, g, wgu, { kind: 'silu', layout: 'concat' }, opts);
          const msGateUp = await deviceMs((r) => {
            const h = gateUp(r);
            return () => h.destroy();
          });
          const hRec = new Recorder(ctx);
          const h = gateUp(hRec);
          hRec.submit();
          const msDown = await deviceMs((r) => {
            const y = gemvDownGpu(ctx, r, h, g, wdn, opts);
            return () => y.destroy();
          });
          h.destroy();
          split = { msGateUp, msDown };
        }
        const gbps = bytes / (ms * 1e6);
        const row: Row = {
          ...split,
          model: name, format: fmt, T, kernel, default: kernel === (fmt === 'bf16' ? gemvDenseKernelFor(T, k, E, ctx.adapterInfo.software) : gemvPackedKernelFor(gemvRowsPerPass(T, k, E, true), { softwareAdapter: ctx.adapterInfo.software, format: PACKED_FORMAT[fmt] })), path: `${gemvPackedPath(wgu, packedKernel)}/${gemvPackedPath(wdn, packedKernel)}`, ms, bytes, gbps, ofCopy: gbps / copyGBps,
          relErrH: relErr(out.h, refOut.h), relErrY: relErr(out.y, refOut.y),
          ...(ablated !== undefined ? { ablated } : {}),
        };
        rows.push(row);
        console.log(
          `${name.padEnd(18)} ${fmt.padEnd(5)} T=${String(T).padEnd(2)} ${kernel.padEnd(7)}${row.default ? '*' : ' '} (${row.path.padEnd(11)}) ${ms.toFixed(4)} ms  ${gbps.toFixed(0).padStart(5)} GB/s  ${(100 * row.ofCopy).toFixed(1).padStart(5)}% of copy  ${ablated !== undefined ? `ablated: ${ablated} (outputs not checked)` : `relErr h ${row.relErrH.toExponential(1)} y ${row.relErrY.toExponential(1)}`}${split ? `  gate_up ${split.msGateUp.toFixed(4)} down ${split.msDown.toFixed(4)} ms` : ''}`,
        );
      }
      if (COMBINED) await endOfForward(name, fmt, T, g, idx, x, wgu, wdn, active, distinct * expertBytes(wdn));
      x.destroy();
      activeOwner.destroy();
      for (const t of [g.counts, g.offsets, g.order, g.position]) t.destroy();
    }
    destroyExpertWeights(wgu);
    destroyExpertWeights(wdn);
  }
}
console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// Ranking per (model, format, T), fastest first; * marks the planner's default (gemvPackedKernelFor), WRONG a relErr above 1e-4.
const wrong = (r: Row) => r.ablated === undefined && !(r.relErrH <= 1e-4 && r.relErrY <= 1e-4);
const key = (r: Row) => `${r.model} ${r.format} T=${r.T}${r.path === 'end' ? ' end' : ''}`;
console.log('\n== ranking (* = default) ==');
for (const group of new Set(rows.map(key))) {
  const rs = rows.filter((r) => key(r) === group).sort((a, b) => a.ms - b.ms);
  const def = rs.find((r) => r.default);
  console.log(`${group.padEnd(32)} ${rs.map((r) => `${r.kernel}${r.default ? '*' : ''} ${r.ms.toFixed(4)}${wrong(r) ? ' WRONG' : ''}`).join(' | ')}${def && rs[0] !== def ? `  (best ${(rs[0].ms / def.ms).toFixed(2)}x the default)` : ''}`);
}
// The full DeepSeek-V3 layer's expert GEMVs: routed (E 256, k 8) + shared expert, per format, T and kernel; fp8 against bf16 (target 0.6x).
const routed = rows.filter((r) => r.model === 'deepseek-v3');
const shared = (r: Row) => rows.find((s) => s.model === 'deepseek-v3/shared' && s.format === r.format && s.T === r.T && s.kernel === r.kernel);
if (routed.length) console.log('\n== DeepSeek-V3 layer GEMVs (routed + shared expert) ==');
for (const r of routed) {
  const s = shared(r);
  if (!s) continue;
  const bf16 = routed.find((b) => b.format === 'bf16' && b.T === r.T);
  const bf16Ms = bf16 && shared(bf16) ? bf16.ms + shared(bf16)!.ms : undefined;
  console.log(`deepseek-v3 ${r.format.padEnd(5)} T=${String(r.T).padEnd(2)} ${r.kernel.padEnd(7)}${r.default ? '*' : ' '} ${(r.ms + s.ms).toFixed(4)} ms${bf16Ms ? `  ${((r.ms + s.ms) / bf16Ms).toFixed(2)}x bf16` : ''}`);
}
console.log(JSON.stringify({ adapter: ctx.adapterName, copyGBps, iters: ITERS, ...(ABLATE ? { ablate: ABLATE } : {}), rows }));
process.exit(0);
