// What the prefill GEMM's inner loop costs without its staging: subgroup-matrix fragment loads from workgroup
// memory feeding 16x16x16 f16 multiply-accumulates, the GEMM's layout (staging rows of 40 halves; subgroup block of
// MI x NJ accumulators; A row-major, B column-major; K steps of 16 alternating over a 32-wide slice), with Dawn's
// deprecated builtin (subgroupMatrixLoad<T>(p, offset, colMajor, stride), what grouped_gemm_sgmat uses) and the
// newer form (subgroupMatrixLoad<T, row_major | col_major>(p, offset, stride)), without or with a workgroup barrier
// per slice (two K steps). Timed with timestamp queries over a grid that fills the GPU; every accumulator of
// workgroup 0 is checked against the exact sum (small integers). Against sgmat-peak.mjs (the same MMAs from
// registers): how much of the gap to the builtins' ceiling the fragment loads and barriers explain (issue #12).
//   cp scripts/gpu/sgmat-*.mjs .gpu-kit/ && bash .gpu-kit/enter.sh node .gpu-kit/sgmat-load-probe.mjs [iters=2048] [modes=none,cond2] [forms=old,new]
// (modes: see run())
import { compileProbe, f16Bits, log, runProbePass, sgmatProbeDevice } from './sgmat-probe-device.mjs';

const ITERS = Number(process.argv[2] ?? 2048);
const d = await sgmatProbeDevice();

const STR = 40; // staging row stride (halves), as the GEMM's tk + 8
const WG = 256; // 8 subgroups of 32: wm = 2 x wn = 4
const GROUPS = 132 * 16;

async function run(MI, NJ, form, barrier) {
  // barrier: 'none' | 'cond2' (if (it & 1) == 1: one per 2 K steps) | 'every' (one per K step) | 'storage2' (storageBarrier, cond2) |
  // 'wul2' (workgroupUniformLoad, cond2) | 'accs' (cond2, accumulators in one array variable) | 'unroll2' (the loop body two K
  // steps and one unconditional barrier, as the GEMM's slices) | 'unroll2x2' (two barriers per body, as the GEMM) | 'unroll0' (no barrier)
  const TM = 2 * 16 * MI; // rows of A
  const TN = 4 * 16 * NJ; // rows of B (weight rows)
  const A = Array.from({ length: TM * STR }, (_, i) => ((i * 7) % 5) - 2);
  const B = Array.from({ length: TN * STR }, (_, i) => ((i * 3) % 7) - 3);
  const inBuf = d.createBuffer({ size: (A.length + B.length) * 2, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  d.queue.writeBuffer(inBuf, 0, new Uint16Array([...A, ...B].map(f16Bits)));
  const load = (kind, arr, off) =>
    form === 'old'
      ? `subgroupMatrixLoad<subgroup_matrix_${kind}<f16, 16, 16>>(&${arr}, ${off}, ${kind === 'right'}, ${STR}u)`
      : `subgroupMatrixLoad<subgroup_matrix_${kind}<f16, 16, 16>, ${kind === 'right' ? 'col_major' : 'row_major'}>(&${arr}, ${off}, ${STR}u)`;
  const unroll = barrier.startsWith('unroll');
  const barrierCode = { none: '', cond2: '    if ((it & 1u) == 1u) { workgroupBarrier(); }', every: '    workgroupBarrier();', storage2: '    if ((it & 1u) == 1u) { storageBarrier(); }', wul2: '    if ((it & 1u) == 1u) { let z = workgroupUniformLoad(&WU); if (z == 12345u) { OUT[0] = 1.0; } }', accs: '    if ((it & 1u) == 1u) { workgroupBarrier(); }' }[barrier] ?? '';
  // one K step at offset kk (a WGSL expression): NJ B loads, then per A load NJ multiply-accumulates
  const kstep = (kk) => `${Array.from({ length: NJ }, (_, j) => `    let b${j} = ${load('right', 'BS', `(sn * ${16 * NJ}u + ${16 * j}u) * ${STR}u + ${kk}`)};`).join('\n')}
${Array.from({ length: MI }, (_, i) => `    { let a = ${load('left', 'AS', `(sm * ${16 * MI}u + ${16 * i}u) * ${STR}u + ${kk}`)};\n${Array.from({ length: NJ }, (_, j) => `      ${cv(i, j)} = subgroupMatrixMultiplyAccumulate(a, b${j}, ${cv(i, j)});`).join('\n')} }`).join('\n')}`;
  const cv = (i, j) => (barrier === 'accs' ? `C[${i * NJ + j}]` : `c${i}_${j}`);
  const acc = [];
  for (let i = 0; i < MI; i++) for (let j = 0; j < NJ; j++) acc.push([i, j]);
  const src = `diagnostic(off, chromium.subgroup_matrix_uniformity);
enable f16; enable subgroups; enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> IN: array<f16>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
var<workgroup> AS: array<f16, ${TM * STR}>;
var<workgroup> BS: array<f16, ${TN * STR}>;
var<workgroup> OS: array<f32, ${8 * 256}>;
var<workgroup> WU: u32;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32) {
  for (var i = lid; i < ${TM * STR}u; i += ${WG}u) { AS[i] = IN[i]; }
  for (var i = lid; i < ${TN * STR}u; i += ${WG}u) { BS[i] = IN[${TM * STR}u + i]; }
  workgroupBarrier();
  let sm = sg % 2u;
  let sn = sg / 2u;
${barrier === 'accs' ? `  var C: array<subgroup_matrix_result<f32, 16, 16>, ${MI * NJ}>;` : acc.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  for (var it = 0u; it < ${ITERS}u; it += ${unroll ? 2 : 1}u) {
${unroll ? `    {\n${kstep('0u')}\n    }\n    {\n${kstep('16u')}\n    }\n    ${barrier === 'unroll2' ? 'workgroupBarrier();' : barrier === 'unroll2x2' ? 'workgroupBarrier();\n    workgroupBarrier();' : ''}` : `    let kk = (it & 1u) * 16u;\n${kstep('kk')}\n${barrierCode}`}
  }
  // workgroup 0: accumulator (i, j) of subgroup s to OUT[((s * ${MI * NJ} + i * ${NJ} + j) * 256 ..]
${acc.map(([i, j]) => `  subgroupMatrixStore(&OS, sg * 256u, ${cv(i, j)}, false, 16u);
  workgroupBarrier();
  if (wid.x == 0u) { for (var e = lid % 32u; e < 256u; e += 32u) { OUT[(sg * ${MI * NJ}u + ${i * NJ + j}u) * 256u + e] = OS[sg * 256u + e]; } }
  workgroupBarrier();`).join('\n')}
}`;
  d.pushErrorScope('validation');
  const c = await compileProbe(d, src);
  if (c.error) {
    await d.popErrorScope();
    return log(`MI ${MI} NJ ${NJ} ${form} barrier=${barrier}: compile error ${c.error.slice(0, 200)}`);
  }
  const p = d.createComputePipeline({ layout: 'auto', compute: { module: c.module, entryPoint: 'main' } });
  const outN = 8 * MI * NJ * 256;
  const out = d.createBuffer({ size: outN * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const times = [];
  let o;
  for (let rep = 0; rep < 6; rep++) {
    const r = await runProbePass(d, p, inBuf, out, outN * 4, GROUPS);
    o = r.out;
    if (rep > 0) times.push(r.ms);
  }
  const err = await d.popErrorScope();
  if (err) return log(`MI ${MI} NJ ${NJ} ${form} barrier=${barrier}: error ${err.message.replace(/\s+/g, ' ').slice(0, 300)}`);
  // exact: c_ij[r][c] = ITERS / 2 * sum over kk in {0, 16}, k < 16 of A[(sm*16MI + 16i + r) * STR + kk + k] * B[(sn*16NJ + 16j + c) * STR + kk + k]
  let bad = 0;
  for (let s = 0; s < 8; s++) {
    const sm = s % 2, sn = Math.floor(s / 2);
    for (const [i, j] of acc) {
      for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
        let v = 0;
        for (const kk of [0, 16]) for (let k = 0; k < 16; k++) v += A[(sm * 16 * MI + 16 * i + r) * STR + kk + k] * B[(sn * 16 * NJ + 16 * j + c) * STR + kk + k];
        if (o[(s * MI * NJ + i * NJ + j) * 256 + r * 16 + c] !== (ITERS / 2) * v) bad++;
      }
    }
  }
  const ms = [...times].sort((x, y) => x - y)[times.length >> 1];
  const flops = GROUPS * 8 * ITERS * MI * NJ * 2 * 16 * 16 * 16;
  const loads = GROUPS * 8 * ITERS * (MI + NJ);
  log(`${MI}x${NJ} accumulators, ${MI + NJ} loads per ${MI * NJ} MMAs, ${form} builtin, barrier ${barrier}: ${ms.toFixed(3)} ms, ${(flops / ms / 1e9).toFixed(1)} TFLOP/s, ${(loads / ms / 1e6).toFixed(0)} G fragment loads/s${bad ? `, WRONG ${bad}` : ', exact'}`);
  inBuf.destroy();
  out.destroy();
}
const MODES = (process.argv[3] ?? 'none,cond2').split(',');
const FORMS = (process.argv[4] ?? 'old,new').split(',');
for (const form of FORMS) for (const [MI, NJ] of [[2, 2], [2, 4], [4, 4]]) for (const barrier of MODES) await run(MI, NJ, form, barrier);
