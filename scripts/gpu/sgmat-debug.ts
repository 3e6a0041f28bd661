// Finds what breaks the subgroup-matrix grouped GEMM on a real GPU: runs the
// kernel's down op on structured inputs (one-hot x rows, integer-coded f16
// weights, so each output names the weight it read) under a list of WGSL
// mutations, each on a fresh device, and prints error and pattern per case.
//   node scripts/gpu/build-one.mjs scripts/gpu/sgmat-debug.ts .gpu-kit/sgmat-debug.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/sgmat-debug.mjs
import { HostTensor } from '@webmoe/tensor';
import { createGpuContext, GpuTensor, Recorder, groupedDownGpu, groupedDownRef, type GpuContext } from '@webmoe/kernels-wgsl';
import { fastGemmKind } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-fast.js';
import { groupedGemmSgmatKernel } from '../../packages/kernels-wgsl/src/kernels/grouped-gemm-sgmat-wgsl.js';
import { hostGrouping, uploadGrouping } from '../../packages/kernels-wgsl/test/grouped-helpers.js';

const orig = groupedGemmSgmatKernel.source;
type Mut = { name: string; f: (s: string) => string; emu?: boolean };
const R16 = 'subgroup_matrix_right<f16, 16, 16>';
const L16 = 'subgroup_matrix_left<f16, 16, 16>';
/** Replaces the epilogue (from its first block on) with `body`, and declares `decl` before the entry point. */
function dump(s: string, decl: string, body: string): string {
  const at = s.indexOf('  if (r0 + 0u < r1) {');
  return s.slice(0, at).replace('@compute', decl + '\n@compute') + body + '\n}\n';
}
const DUMPS: Mut[] = [
  { name: 'dumpBS', f: (s) => dump(s, '', 'workgroupBarrier(); for (var i = lid; i < 5120u; i += 256u) { Y[i] = f32(BS[i]); }') },
  { name: 'dumpAS', f: (s) => dump(s, '', 'workgroupBarrier(); for (var i = lid; i < 2560u; i += 256u) { Y[i] = f32(AS[i]); }') },
  { name: 'dumpB0', f: (s) => dump(s, 'var<workgroup> DBG: array<f16, 2048>;', `workgroupBarrier(); if (sg < 8u) { let b = subgroupMatrixLoad<${R16}>(&BS, (sn * 32u) * 40u, true, 40u); subgroupMatrixStore(&DBG, sg * 256u, b, true, 16u); } workgroupBarrier(); for (var i = lid; i < 2048u; i += 256u) { Y[i] = f32(DBG[i]); }`) },
  { name: 'dumpB0const', f: (s) => dump(s, 'var<workgroup> DBG: array<f16, 2048>;', `workgroupBarrier(); if (sg == 0u) { let b = subgroupMatrixLoad<${R16}>(&BS, 0u, true, 40u); subgroupMatrixStore(&DBG, 0u, b, true, 16u); } workgroupBarrier(); for (var i = lid; i < 2048u; i += 256u) { Y[i] = f32(DBG[i]); }`) },
  { name: 'dumpA0', f: (s) => dump(s, 'var<workgroup> DBG: array<f16, 2048>;', `workgroupBarrier(); if (sg < 8u) { let a = subgroupMatrixLoad<${L16}>(&AS, (sm * 32u) * 40u, false, 40u); subgroupMatrixStore(&DBG, sg * 256u, a, false, 16u); } workgroupBarrier(); for (var i = lid; i < 2048u; i += 256u) { Y[i] = f32(DBG[i]); }`) },
];
async function runDump(ctx: GpuContext, name: string): Promise<void> {
  const T = 64, K = 32, N = 128;
  const h = new Float32Array(T * K);
  for (let r = 0; r < T; r++) h[r * K + (r % K)] = 1 + Math.floor(r / 32);
  const wv = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let kk = 0; kk < K; kk++) wv[n * K + kk] = n * 32 + kk; // < 4096: exact in f16 up to 2048, then even
  const w = HostTensor.fromFloat32([1, N, K], wv, 'float16');
  const g = hostGrouping(new Uint32Array(T), T, 1, 1);
  const gh = GpuTensor.upload(ctx, HostTensor.fromFloat32([T, K], h));
  const gw = GpuTensor.upload(ctx, w);
  const gg = uploadGrouping(ctx, g);
  const rec = new Recorder(ctx);
  const y = groupedDownGpu(ctx, rec, gh, gg, { kind: 'dense', w: gw }, undefined, { tile: 'fast', fast: 'subgroup-matrix', sgmatShape: 'm64n128k32' });
  rec.submit();
  const got = (await y.download()).data as Float32Array;
  for (const t of [gh, gw, y]) t.destroy();
  gg.destroy();
  const line = (a: number, n: number) => Array.from(got.subarray(a, a + n)).join(' ');
  if (name === 'dumpBS') for (const row of [0, 1, 2, 31, 32, 127]) console.log(`[dumpBS] BS row ${row}: ${line(row * 40, 40)}`);
  if (name === 'dumpAS') for (const row of [0, 1, 2, 33, 63]) console.log(`[dumpAS] AS row ${row}: ${line(row * 40, 40)}`);
  if (name.startsWith('dumpB0')) for (const sg of name === 'dumpB0' ? [0, 1, 2, 7] : [0]) for (const n of [0, 1, 15]) console.log(`[${name}] sg ${sg} B col n=${n} (k 0..15): ${line(sg * 256 + n * 16, 16)}`);
  if (name === 'dumpA0') for (const sg of [0, 1]) for (const m of [0, 1, 15]) console.log(`[dumpA0] sg ${sg} A row m=${m} (k 0..15): ${line(sg * 256 + m * 16, 16)}`);
}
const MUTS: Mut[] = [
  { name: 'base', f: (s) => s },
  { name: 'sg=lid/32', f: (s) => s.replace(', @builtin(subgroup_id) sg: u32) {', ') {\n  let sg = lid / 32u;') },
  { name: 'emu', f: (s) => s, emu: true },
  { name: 'mma-sg0-only', f: (s) => s.replace('if (sg < 8u) {', 'if (sg == 0u) {') },
  { name: 'no-sg-guard', f: (s) => s.replace('if (sg < 8u) {', 'if (true) {') },
  { name: 'no-diag', f: (s) => s.replace('diagnostic(off, chromium.subgroup_matrix_uniformity);', '') },
  { name: 'OS-first', f: (s) => { const m = s.match(/var<workgroup> OS: [^\n]*\n/)![0]; return s.replace(m, '').replace('var<workgroup> AS', m + 'var<workgroup> AS'); } },
];

function pattern(got: Float32Array, want: Float32Array, rows: number, N: number): string {
  let bad = 0;
  let zeros = 0;
  const badBlocks = new Set<string>();
  let first = '';
  for (let r = 0; r < rows; r++)
    for (let n = 0; n < N; n++) {
      const g = got[r * N + n];
      const w = want[r * N + n];
      if (Math.abs(g - w) > 1e-2 * Math.max(1, Math.abs(w))) {
        bad++;
        if (g === 0) zeros++;
        badBlocks.add(`r${Math.floor(r / 16)}c${Math.floor(n / 16)}`);
        if (first.length < 150) first += ` (${r},${n}) got ${g}${Number.isInteger(g) && g >= 0 ? `=w[n${Math.floor(g / 64)}][k${g % 64}]` : ''} want ${w};`;
      }
    }
  return `bad ${bad}/${rows * N} zeros ${zeros} blocks[${[...badBlocks].slice(0, 12).join(' ')}] first ${first}`;
}

async function runCase(ctx: GpuContext, T: number, k: number, E: number, K: number, N: number, mode: 'onehot' | 'random', tm: 64 | 128): Promise<string> {
  const rows = T * k;
  const h = new Float32Array(rows * K);
  const wv = new Float32Array(E * N * K);
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  if (mode === 'onehot') {
    for (let r = 0; r < rows; r++) h[r * K + (r % K)] = 1;
    for (let e = 0; e < E; e++) for (let n = 0; n < N; n++) for (let kk = 0; kk < K; kk++) wv[(e * N + n) * K + kk] = ((n % 32) * 64 + (kk % 64)) / 1; // exact in f16 (< 2048)
  } else {
    for (let i = 0; i < h.length; i++) h[i] = rnd();
    for (let i = 0; i < wv.length; i++) wv[i] = Math.round(rnd() * 0.3 * 1024) / 1024;
  }
  const w = HostTensor.fromFloat32([E, N, K], wv, 'float16');
  const idx = new Uint32Array(rows);
  for (let p = 0; p < rows; p++) idx[p] = (Math.floor(p / k) + (p % k)) % E;
  const g = hostGrouping(idx, T, k, E);
  const want = groupedDownRef(h, g, { kind: 'dense', w }, undefined);
  const gh = GpuTensor.upload(ctx, HostTensor.fromFloat32([rows, K], h));
  const gw = GpuTensor.upload(ctx, w);
  const gg = uploadGrouping(ctx, g);
  const rec = new Recorder(ctx);
  const y = groupedDownGpu(ctx, rec, gh, gg, { kind: 'dense', w: gw }, undefined, { tile: 'fast', fast: 'subgroup-matrix', sgmatShape: tm === 64 ? 'm64n128k32' : 'm128n128k32' });
  rec.submit();
  const got = (await y.download()).data as Float32Array;
  for (const t of [gh, gw, y]) t.destroy();
  gg.destroy();
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return `relErr ${Math.sqrt(num / den).toExponential(2)} ${pattern(got, want, rows, N)}`;
}

const only = process.argv[2];
for (const m of DUMPS) {
  if (only && !only.split(',').includes(m.name)) continue;
  (groupedGemmSgmatKernel as { source: typeof orig }).source = (v, c) => m.f(orig(v, c));
  const ctx = await createGpuContext();
  try {
    await runDump(ctx, m.name);
  } catch (e) {
    console.log(`[${m.name}] ERROR ${(e as Error).message.slice(0, 400)}`);
  }
  ctx.destroy();
}
for (const m of MUTS) {
  if (only && !only.split(',').includes(m.name)) continue;
  (groupedGemmSgmatKernel as { source: typeof orig }).source = (v, c) => m.f(orig(m.emu ? { ...v, emu: true } : v, c));
  const ctx = await createGpuContext();
  console.log(`[${m.name}] adapter ${ctx.adapterName} kind ${fastGemmKind(ctx, 'subgroup-matrix')}`);
  for (const [T, k, E, K, N, mode, tm] of [
    [1, 4, 5, 32, 115, 'onehot', 64],
    [1, 4, 5, 32, 115, 'random', 64],
    [40, 2, 3, 64, 130, 'random', 64],
    [200, 2, 2, 96, 128, 'random', 128],
  ] as [number, number, number, number, number, 'onehot' | 'random', 64 | 128][]) {
    try {
      const r = await runCase(ctx, T, k, E, K, N, mode, tm);
      console.log(`[${m.name}] T=${T} k=${k} E=${E} K=${K} N=${N} ${mode} tm=${tm}: ${r}`);
    } catch (e) {
      console.log(`[${m.name}] T=${T} ${mode}: ERROR ${(e as Error).message.slice(0, 300)}`);
    }
  }
  ctx.destroy();
}
setTimeout(() => process.exit(0), 200);
