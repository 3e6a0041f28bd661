// The ceiling of Dawn's subgroup-matrix builtins on this adapter: f16 x f16 -> f32 16x16x16
// multiply-accumulates from registers in a loop, no memory traffic in the loop, with 1-8
// independent accumulators per subgroup (instruction-level parallelism), timed with timestamp
// queries over a grid that fills the GPU. Prints TFLOP/s per configuration and checks every
// accumulator against the exact value (small integer inputs: the sums are exact in f32).
// The prefill GEMM (grouped_gemm_sgmat) cannot run faster than this: it is the measured
// reason, or not, for its gap to cuBLAS (issue #12).
//   cp scripts/gpu/sgmat-*.mjs .gpu-kit/ && bash .gpu-kit/enter.sh node .gpu-kit/sgmat-peak.mjs [iters=4096]
import { f16Bits, log, runProbePass, sgmatProbeDevice } from './sgmat-probe-device.mjs';

const ITERS = Number(process.argv[2] ?? 4096);
const d = await sgmatProbeDevice();

// A: 23 rows of 16 (row-major; accumulator c multiplies rows c..c+15, so that no two accumulators compute the
// same thing and a compiler cannot merge them), B: 16x16 column-major (B[n*16 + k]); small integers
const AROWS = 23;
const A = Array.from({ length: AROWS * 16 }, (_, i) => ((i * 7) % 5) - 2);
const B = Array.from({ length: 256 }, (_, i) => ((i * 3) % 7) - 3);
/** The sum over accumulators c < accs of (rows c..c+15 of A) . B, 16x16 row-major. */
const sumAB = (accs) =>
  Array.from({ length: 256 }, (_, i) => {
    const m = i >> 4, n = i & 15;
    let s = 0;
    for (let c = 0; c < accs; c++) for (let k = 0; k < 16; k++) s += A[(c + m) * 16 + k] * B[n * 16 + k];
    return s;
  });
const inBuf = d.createBuffer({ size: (AROWS * 16 + 256) * 2, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
d.queue.writeBuffer(inBuf, 0, new Uint16Array([...A, ...B].map(f16Bits)));

const WG = 256; // 8 subgroups of 32
const GROUPS = 132 * 16; // workgroups: many per SM
async function run(accs) {
  const accNames = Array.from({ length: accs }, (_, i) => `c${i}`);
  const src = `diagnostic(off, chromium.subgroup_matrix_uniformity);
enable f16; enable subgroups; enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> IN: array<f16>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
var<workgroup> AS: array<f16, ${AROWS * 16 + 256}>;
var<workgroup> OS: array<f32, ${8 * 256}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32) {
  for (var i = lid; i < ${AROWS * 16 + 256}u; i += ${WG}u) { AS[i] = IN[i]; }
  workgroupBarrier();
  let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&AS, ${AROWS * 16}u, true, 16u);
${accNames.map((c, i) => `  let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&AS, ${i * 16}u, false, 16u);\n  var ${c} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  for (var it = 0u; it < ${ITERS}u; it++) {
${accNames.map((c, i) => `    ${c} = subgroupMatrixMultiplyAccumulate(a${i}, b, ${c});`).join('\n')}
  }
  // the accumulators' sum (ITERS times sumAB(accs)) through workgroup memory, 8 values per lane; workgroup 0 writes it out
  let lane = lid % 32u;
  var tot: array<f32, 8>;
${accNames.map((c) => `  subgroupMatrixStore(&OS, sg * 256u, ${c}, false, 16u);
  workgroupBarrier();
  for (var j = 0u; j < 8u; j++) { tot[j] = tot[j] + OS[sg * 256u + lane * 8u + j]; }
  workgroupBarrier();`).join('\n')}
  for (var j = 0u; j < 8u; j++) { OS[sg * 256u + lane * 8u + j] = tot[j]; }
  workgroupBarrier();
  if (wid.x == 0u) { for (var i = lid; i < ${8 * 256}u; i += ${WG}u) { OUT[i] = OS[i]; } }
}`;
  d.pushErrorScope('validation');
  const m = d.createShaderModule({ code: src });
  const p = d.createComputePipeline({ layout: 'auto', compute: { module: m, entryPoint: 'main' } });
  const out = d.createBuffer({ size: 8 * 256 * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const times = [];
  for (let rep = 0; rep < 6; rep++) {
    const { ms, out: o } = await runProbePass(d, p, inBuf, out, 8 * 256 * 4, GROUPS);
    if (rep > 0) times.push(ms);
    if (rep === 5) {
      const want = sumAB(accs);
      let bad = 0;
      for (let g = 0; g < 8; g++) for (let i = 0; i < 256; i++) if (o[g * 256 + i] !== ITERS * want[i]) bad++;
      if (bad) log(`accumulators ${accs}: WRONG ${bad} of ${8 * 256} (e.g. got ${o[0]}, want ${ITERS * want[0]})`);
    }
  }
  const err = await d.popErrorScope();
  if (err) return log(`accumulators ${accs}: error ${err.message.replace(/\s+/g, ' ').slice(0, 300)}`);
  const ms = [...times].sort((x, y) => x - y)[times.length >> 1];
  const flops = GROUPS * 8 * ITERS * accs * 2 * 16 * 16 * 16;
  log(`accumulators ${accs}: ${ms.toFixed(3)} ms, ${(flops / ms / 1e9).toFixed(1)} TFLOP/s (${GROUPS} workgroups x 8 subgroups x ${ITERS} iterations)`);
}
for (const accs of [1, 2, 4, 8]) await run(accs);
