// Can subgroup matrices be loaded from workgroup arrays of wider element types (u32, vec2<f16>, vec4<u32>) on this
// Dawn? (Newer Tint accepts a pointer to an array of any host-shareable scalar or vector type; if ours does, the GEMM's
// staging could store 4 or 16 bytes per instruction instead of 2.) For each element type: compile, then one subgroup
// loads a 16x16 f16 A (row-major) and B (column-major) at an offset and stride from the typed array, multiplies and
// stores C; the result is compared with the products for offsets and strides counted in halves and in array elements.
//   cp scripts/gpu/sgmat-*.mjs .gpu-kit/ && bash .gpu-kit/enter.sh node .gpu-kit/sgmat-vec-probe.mjs
import { compileProbe, f16Bits, log, runProbePass, sgmatProbeDevice } from './sgmat-probe-device.mjs';

const d = await sgmatProbeDevice();
const HALVES = 4096; // halves in the workgroup array
const vals = Array.from({ length: HALVES }, (_, i) => ((i * 7) % 9) - 4); // small integers: exact in f16 and in the sums
const words = new Uint32Array(HALVES / 2);
for (let i = 0; i < HALVES / 2; i++) words[i] = f16Bits(vals[2 * i]) | (f16Bits(vals[2 * i + 1]) << 16);
const inBuf = d.createBuffer({ size: words.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
d.queue.writeBuffer(inBuf, 0, words);

// [type of the workgroup array, halves per element, WGSL filling it from IN (array<u32>) with thread lid of 32]
const TYPES = [
  ['f16', 1, `for (var i = lid; i < ${HALVES / 2}u; i += 32u) { let h = bitcast<vec2<f16>>(IN[i]); S[2u * i] = h.x; S[2u * i + 1u] = h.y; }`],
  ['u32', 2, `for (var i = lid; i < ${HALVES / 2}u; i += 32u) { S[i] = IN[i]; }`],
  ['vec2<f16>', 2, `for (var i = lid; i < ${HALVES / 2}u; i += 32u) { S[i] = bitcast<vec2<f16>>(IN[i]); }`],
  ['vec4<u32>', 8, `for (var i = lid; i < ${HALVES / 8}u; i += 32u) { S[i] = vec4<u32>(IN[4u * i], IN[4u * i + 1u], IN[4u * i + 2u], IN[4u * i + 3u]); }`],
  ['vec4<f16>', 4, `for (var i = lid; i < ${HALVES / 4}u; i += 32u) { S[i] = vec4<f16>(bitcast<vec2<f16>>(IN[2u * i]), bitcast<vec2<f16>>(IN[2u * i + 1u])); }`],
];
// A at offset offA, B at offB, both with stride str (the kernel's: rows of 40 halves; offsets multiples of 8 halves)
const offA = 8 * 40, offB = 48 * 40 + 8, str = 40;

function expected(oa, ob, s) {
  // C = A B with A at half oa, B at half ob, stride s halves
  const C = new Float32Array(256);
  for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
    let v = 0;
    for (let k = 0; k < 16; k++) {
      const a = vals[oa + r * s + k], b = vals[ob + c * s + k];
      if (a === undefined || b === undefined) return undefined;
      v += a * b;
    }
    C[r * 16 + c] = v;
  }
  return C;
}

/** One workgroup of shader `src` over [inBuf, OUT]: OUT's 256 f32, or undefined after logging why it did not run (`what`). */
async function runOnce(src, what) {
  d.pushErrorScope('validation');
  const c = await compileProbe(d, src);
  if (c.error) {
    await d.popErrorScope();
    return log(`${what}: compile error: ${c.error.slice(0, 160)}`);
  }
  let p;
  try {
    p = await d.createComputePipelineAsync({ layout: 'auto', compute: { module: c.module, entryPoint: 'main' } });
  } catch (e) {
    await d.popErrorScope();
    return log(`${what}: pipeline error: ${String(e.message ?? e).replace(/\s+/g, ' ').slice(0, 200)}`);
  }
  const out = d.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const { out: got } = await runProbePass(d, p, inBuf, out, 1024, 1);
  out.destroy();
  const err = await d.popErrorScope();
  if (err) return log(`${what}: error ${err.message.replace(/\s+/g, ' ').slice(0, 200)}`);
  return got;
}

for (const [ty, per, fill] of TYPES) {
  for (const units of ['halves', 'elements']) {
    const div = units === 'elements' ? per : 1;
    if (offA % div || offB % div || str % div) continue;
    const src = `diagnostic(off, chromium.subgroup_matrix_uniformity);
enable f16; enable subgroups; enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> IN: array<u32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
var<workgroup> S: array<${ty}, ${HALVES / per}>;
var<workgroup> OS: array<f32, 256>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
  ${fill}
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&S, ${offA / div}u, ${str / div}u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&S, ${offB / div}u, ${str / div}u);
  let c = subgroupMatrixMultiplyAccumulate(a, b, subgroup_matrix_result<f32, 16, 16>());
  subgroupMatrixStore<row_major>(&OS, 0u, c, 16u);
  workgroupBarrier();
  for (var i = lid; i < 256u; i += 32u) { OUT[i] = OS[i]; }
}`;
    const got = await runOnce(src, `array<${ty}> (offsets in ${units})`);
    if (!got) continue;
    // the numbers written (offA / div ...) read as halves (scale 1) or as array elements (scale per)
    const match = [[1, 1, 'offsets and stride in halves'], [per, per, 'offsets and stride in elements'], [per, 1, 'offsets in elements, stride in halves'], [1, per, 'offsets in halves, stride in elements']]
      .filter(([so, ss]) => { const w = expected((offA / div) * so, (offB / div) * so, (str / div) * ss); return w && w.every((v, i) => v === got[i]); })
      .map(([, , what]) => what);
    log(`array<${ty}> (WGSL offsets written in ${units}): compiled; result ${match.length ? `matches ${match.join(' | ')}` : `matches no reading (first values ${Array.from(got.slice(0, 4)).join(', ')})`}`);
  }
}
// f32 result matrices stored into a vec4<u32> workgroup array (the epilogue in the staging memory, SgmatShape.oa): offset
// and stride in elements of 4 f32; read back as bitcast<f32> of the words.
{
  const src = `diagnostic(off, chromium.subgroup_matrix_uniformity);
enable f16; enable subgroups; enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> IN: array<u32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<f32>;
var<workgroup> S: array<f16, ${HALVES}>;
var<workgroup> W: array<vec4<u32>, 192>;
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) lid: u32) {
  ${TYPES[0][2]}
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&S, ${offA}u, ${str}u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&S, ${offB}u, ${str}u);
  let c = subgroupMatrixMultiplyAccumulate(a, b, subgroup_matrix_result<f32, 16, 16>());
  // rows of 12 elements (48 f32), the matrix at element 2 (f32 column 8)
  subgroupMatrixStore<row_major>(&W, 2u, c, 12u);
  workgroupBarrier();
  for (var i = lid; i < 256u; i += 32u) { let j = (i / 16u) * 48u + 8u + i % 16u; OUT[i] = bitcast<f32>(W[j / 4u][j % 4u]); }
}`;
  const what = 'f32 result into array<vec4<u32>> (offset and stride in elements)';
  const got = await runOnce(src, what);
  const want = expected(offA, offB, str);
  if (got) log(`${what}: ${want.every((v, i) => v === got[i]) ? 'correct' : `WRONG (first values ${Array.from(got.slice(0, 4)).join(', ')})`}`);
}
process.exit(0);
