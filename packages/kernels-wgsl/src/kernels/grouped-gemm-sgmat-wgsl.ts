/**
 * The subgroup-matrix grouped GEMM for prefill (chromium_experimental_subgroup_matrix, f16 x f16 -> f32, 16x16x16),
 * in the tile shapes of SGMAT_SHAPES (grouped-gemm-fast-shapes.ts): x rows and weights staged as f16 in workgroup
 * memory (arrays of f16, or with vector staging `vs` arrays of vec4<u32> / vec2<u32> written 16 / 8 bytes per store;
 * x optionally converted to f16 in grouped order by halfRowsKernel first, `xh`, and then staged or loaded
 * as A matrices straight from those rows), the f32 results go through workgroup memory one 16-row block and column
 * chunk at a time for bias + activation; the down GEMM optionally split along K (`splitK`, partials summed by
 * splitKReduceKernel). Staging, prologue and epilogue are shared with the register-blocked kernel
 * (grouped-gemm-fast-staging-wgsl.ts); `emu` (tests) replaces the builtins by a plain-WGSL emulation.
 */
import { defineKernel } from '../runtime/kernel.js';
import { sgmatLayout, sgmatShape, tileOutputs, type FastGemmVariant } from './grouped-gemm-fast-shapes.js';
import { SLICE_REGS, fastGemmSignature, helpersWgsl, loadSlice, prologue, rounds, sgmatGeo, sharedRows, sliceRegs, store, type SliceRegs } from './grouped-gemm-fast-staging-wgsl.js';
import { fastVpl, halfPairsWgsl, isPackedFormat, packedHalfPairsWgsl } from './grouped-gemm-fast-weights-wgsl.js';

/** The global directives of the kernel: the builtins' extension, or (`emu`) only subgroups (f16 comes with the signature). */
function sgmatDirectives(emu: boolean): string[] {
  return emu ? ['enable subgroups;'] : ['diagnostic(off, chromium.subgroup_matrix_uniformity);', 'enable subgroups;', 'enable chromium_experimental_subgroup_matrix;'];
}

/**
 * The subgroup-matrix operations of the kernel as WGSL statements: the builtins, or (`emu`, tests) a
 * per-invocation emulation in plain WGSL where every matrix is a slot of 256 f32 in a private array
 * (loops over slots, no by-value matrices: cheap to compile on lavapipe). Matrices are named; each name
 * gets its own slot.
 */
function matrixOps(emu: boolean, names: string[], xDirect: boolean, st: StagingArrays, osAlias: boolean) {
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const C = 'subgroup_matrix_result<f32, 16, 16>';
  const slot = (n: string) => {
    const i = names.indexOf(n);
    if (i < 0) throw new Error(`grouped_gemm_sgmat: unknown matrix ${n}`);
    return `${i}u`;
  };
  if (!emu) {
    return {
      decls: '',
      args: '',
      entry: '',
      zero: (c: string) => `var ${c} = ${C}();`,
      /** A (left, row-major: rows of AS or of the f16 x rows X) or B (right, column-major: weight rows of BS are its columns). */
      // The layout as a template argument (Dawn's current form; the form with a bool argument is deprecated). Level with
      // it in this kernel's tiles on the H200; faster for 4x4 accumulator blocks in scripts/gpu/sgmat-load-probe.mjs.
      load: (m: string, arr: 'AS' | 'BS' | 'X', off: string, stride: string) =>
        `let ${m} = subgroupMatrixLoad<${arr === 'BS' ? `${R}, col_major` : `${L}, row_major`}>(&${arr}, ${off}, ${stride});`,
      mma: (c: string, a: string, b: string) => `${c} = subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c});`,
      // Row-major, in the template form as the loads (the bool-argument form is deprecated: Dawn warns at every compile).
      // osAlias: into the vec4<u32> weight tile BS, offsets and stride in its elements (4 f32 each; columns are multiples of 16).
      store: (c: string, off: string, stride: number) =>
        osAlias ? `subgroupMatrixStore<row_major>(&BS, (${off}) / 4u, ${c}, ${stride / 4}u);` : `subgroupMatrixStore<row_major>(&OS, ${off}, ${c}, ${stride}u);`,
    };
  }
  // Emulation following the Dawn spec's layouts: element (r, c) of a matrix at offset o with stride s is
  // o + r * s + c (row-major) or o + c * s + r (column-major). Only the first invocation of each subgroup works
  // (the whole subgroup's matrices; the others' would be copies), so the emulation costs one invocation per subgroup.
  const decls = /* wgsl */ `
var<private> EM: array<f32, ${names.length * 256}>;
var<private> EMU_LEAD: bool;
// 16, from a uniform so that the compiler cannot unroll the loops below (unrolled, each inlined call is thousands of instructions).
var<private> EMN: u32;
fn emuZero(m: u32) { if (!EMU_LEAD) { return; } for (var i = 0u; i < EMN * EMN; i++) { EM[m * 256u + i] = 0.0; } }
${xDirect ? '' : `${halfAtWgsl('AS', st.ae)}\nfn emuLoadA(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = AS_h((off + r * s) * ${st.ae}u + c); } } }\n`}${xDirect ? 'fn emuLoadX(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = f32(X[off + r * s + c]); } } }\n' : ''}${halfAtWgsl('BS', st.be)}
fn emuLoadB(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { EM[m * 256u + r * 16u + c] = BS_h((off + c * s) * ${st.be}u + r); } } }
fn emuMma(c: u32, a: u32, b: u32) { if (!EMU_LEAD) { return; } for (var i = 0u; i < EMN; i++) { for (var j = 0u; j < EMN; j++) { var t = 0.0; for (var k = 0u; k < EMN; k++) { t = fma(EM[a * 256u + i * 16u + k], EM[b * 256u + k * 16u + j], t); } EM[c * 256u + i * 16u + j] += t; } } }
fn emuStore(m: u32, off: u32, s: u32) { if (!EMU_LEAD) { return; } for (var r = 0u; r < EMN; r++) { for (var c = 0u; c < EMN; c++) { ${osAlias ? 'let i = off + r * s + c; BS[i / 4u][i % 4u] = bitcast<u32>(EM[m * 256u + r * 16u + c]);' : 'OS[off + r * s + c] = EM[m * 256u + r * 16u + c];'} } } }`;
  return {
    decls,
    args: ', @builtin(subgroup_invocation_id) sgi: u32',
    entry: '\n  EMU_LEAD = sgi == 0u;\n  EMN = 16u + (u.E >> 31u);',
    zero: (c: string) => `emuZero(${slot(c)});`,
    load: (m: string, arr: 'AS' | 'BS' | 'X', off: string, stride: string) => `emuLoad${arr === 'AS' ? 'A' : arr === 'BS' ? 'B' : 'X'}(${slot(m)}, ${off}, ${stride});`,
    mma: (c: string, a: string, b: string) => `emuMma(${slot(c)}, ${slot(a)}, ${slot(b)});`,
    store: (c: string, off: string, stride: number) => `emuStore(${slot(c)}, ${off}, ${stride}u);`,
  };
}

/**
 * The element types of the staging tiles AS (x rows) and BS (weight rows): f16, or with vector staging
 * (SgmatShape.vs) 4 halves per vec2<u32> (x gathered and converted 4 values per item) or 8 halves per vec4<u32>
 * (f16 x rows; weights, V values per item in V / 8 elements); `ae` / `be`: halves per element. Matrix offsets and
 * strides count elements of the array they load from (Dawn: subgroup matrices load from arrays of any 4-byte-based
 * scalar or vector type; scripts/gpu/sgmat-vec-probe.mjs), so every row stride and K offset is a multiple of them.
 */
interface StagingArrays {
  aType: string;
  bType: string;
  ae: number;
  be: number;
}

function stagingArrays(vs: boolean, xh: boolean): StagingArrays {
  if (!vs) return { aType: 'f16', bType: 'f16', ae: 1, be: 1 };
  return { aType: xh ? 'vec4<u32>' : 'vec2<u32>', bType: 'vec4<u32>', ae: xh ? 8 : 4, be: 8 };
}

/** WGSL `fn <arr>_h(i: u32) -> f32`: half i of staging tile `arr` of `per` halves per element (the emulation's reads). */
function halfAtWgsl(arr: 'AS' | 'BS', per: number): string {
  return per === 1
    ? `fn ${arr}_h(i: u32) -> f32 { return f32(${arr}[i]); }`
    : `fn ${arr}_h(i: u32) -> f32 { let w = ${arr}[i / ${per}u][(i % ${per}u) / 2u]; return f32(bitcast<vec2<f16>>(w)[i % 2u]); }`;
}

/**
 * Subgroup-matrix grouped GEMM (see the file comment). Needs
 * chromium-experimental-subgroup-matrix with an f16 x f16 -> f32 16x16x16
 * config, shader-f16, subgroups, a subgroup size <= 32 and the shape's
 * workgroup memory (sgmatLayout). Subgroup s < wm * wn owns rows
 * (s % wm) * tm / wm.. and tile columns (s / wm) * tn / wn..; extra subgroups
 * (subgroup size < 32) only stage and store.
 * @example `rec.dispatch({ kernel: groupedGemmSgmatKernel, variant, bind: { X, ORDER, META, ..., Y }, params: { nRows, ... }, workgroups })` (normally through recordFastGemm)
 */
export const groupedGemmSgmatKernel = defineKernel<FastGemmVariant>('grouped_gemm_sgmat', (v) => {
  const shape = sgmatShape(v);
  const lay = sgmatLayout(shape);
  if (lay.error) throw new Error(`grouped_gemm_sgmat: ${lay.error}`);
  if (shape.xd && v.xh !== 'direct') throw new Error(`grouped_gemm_sgmat: shape ${v.sg} loads x directly (xh 'direct'), got xh ${String(v.xh)}`);
  if (shape.xo && !v.xh) throw new Error(`grouped_gemm_sgmat: shape ${v.sg} has no row tables: it needs f16 x rows (xh 'staged' or 'direct'), got xh ${String(v.xh)}`);
  if (v.splitK !== undefined && (v.op !== 'down' || !Number.isInteger(v.splitK) || v.splitK < 1 || v.splitK > 8)) throw new Error(`grouped_gemm_sgmat: splitK ${v.splitK} (down only, 1..8)`);
  const g = sgmatGeo(v);
  const helpers = helpersWgsl(v, g);
  const { tm, tn, tk, wm, wn } = shape;
  const { str, ow, threads } = lay;
  const nb = shape.db ? 2 : 1;
  // Matrix pointers must be 16-byte aligned (see sharedRows): every workgroup variable's size is a multiple of 16 bytes, and so is every buffer's and row's offset.
  for (const [name, bytes] of [['AS', 2 * tm * str], ['BS', 2 * tn * str], ['row', 2 * str], ['OS', 4 * 16 * ow], ...(shape.xo ? [] : [['ROWX', 4 * tm] as const])] as const) {
    if (bytes % 16 !== 0) throw new Error(`grouped_gemm_sgmat: workgroup array ${name} is ${bytes} bytes, not a multiple of 16`);
  }
  const nsg = wm * wn;
  const RB = tm / wm; // rows per subgroup
  const CB = tn / wn; // tile columns per subgroup
  const MI = RB / 16;
  const NJ = CB / 16;
  const V = fastVpl(v);
  const perRow = tk / V;
  const xr = rounds((tm * tk) / (v.xh ? 8 : 4), threads);
  const wr = rounds(tn * perRow, threads);
  // Rotated weight stores: 16-bit dense weights only (8 values in 4 words); packed formats keep the plain order.
  const half = v.wf === 'bfloat16' || v.wf === 'float16';
  const vs = !!shape.vs;
  const st = stagingArrays(vs, !!v.xh);
  const swz = !!shape.swz && half && !vs;
  const xswz = !!shape.swz && !vs;
  const accNames: string[] = [];
  for (let i = 0; i < MI; i++) for (let j = 0; j < NJ; j++) accNames.push(`c${i}_${j}`);
  const bNames = Array.from({ length: NJ }, (_, j) => `b${j}`);
  const oa = !!shape.oa;
  const M = matrixOps(!!v.emu, [...accNames, ...bNames, 'a'], v.xh === 'direct', st, oa);
  // The epilogue's reads of result (r, column q) of the current block and chunk: OS, or the words of BS (oa).
  const os = (i: string) => (oa ? `bitcast<f32>(BS[(${i}) / 4u][(${i}) % 4u])` : `OS[${i}]`);
  // Staging of the registers `xg` into buffer `buf` (0 / 1; a WGSL expression): x rows as f16 into AS [tm][str]
  // (stage() adds the weight rows into BS [tn][str]).
  const bufAt = (buf: string, n: number) => `${buf} * ${n}u + `;
  // xh: 8 halves per item, stored rotated by j % 4 words like the weights (SgmatShape.swz) when swz.
  const stageX = (buf: string, xg: string) => v.xh === 'direct' ? '' : v.xh
    ? `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${threads}u;${xr.guard ? `\n      if (j < ${(tm * tk) / 8}u) {` : ' {'}
        let ai = ${nb > 1 ? `${bufAt(buf, (tm * str) / st.ae)}` : ''}(j / ${tk / 8}u) * ${str / st.ae}u + (j % ${tk / 8}u) * ${8 / st.ae}u;${
          vs
            ? `
        AS[ai] = ${xg}[i];`
            : xswz
            ? `
        let q = j & 3u;
        let x1 = select(${xg}[i], ${xg}[i].yzwx, (q & 1u) != 0u);
        let xw = select(x1, x1.zwxy, (q & 2u) != 0u);`
            : `
        let xw = ${xg}[i];`
        }
${vs ? '' : [0, 1, 2, 3].map((w) => `        { let h = bitcast<vec2<f16>>(xw.${'xyzw'[w]}); AS[ai + ${xswz ? `((${2 * w}u + 2u * q) & 7u)` : `${2 * w}u`}] = h.x; AS[ai + ${xswz ? `((${2 * w + 1}u + 2u * q) & 7u)` : `${2 * w + 1}u`}] = h.y; }`).join('\n')}
      }
    }`
    : `
    for (var i = 0u; i < ${xr.n}u; i++) {
      let j = lid + i * ${threads}u;${xr.guard ? `\n      if (j < ${(tm * tk) / 4}u) {` : ' {'}
        let xh = ${g.xHalf ? `${xg}[i]` : `vec4<f16>(${xg}[i])`};
        let ai = ${nb > 1 ? `${bufAt(buf, (tm * str) / st.ae)}` : ''}(j / ${tk / 4}u) * ${str / st.ae}u + (j % ${tk / 4}u) * ${4 / st.ae}u;${
          vs
            ? `
        AS[ai] = bitcast<vec2<u32>>(xh);`
            : `
        AS[ai] = xh.x;
        AS[ai + 1u] = xh.y;
        AS[ai + 2u] = xh.z;
        AS[ai + 3u] = xh.w;`
        }
      }
    }`;
  // Weight value t's position in its row of BS: rotated by 2q with swz.
  const wPos = (t: number) => (swz ? `((${t}u + 2u * q) & 7u)` : `${t}u`);
  // 16-bit weights: 4 words of f16 pairs (wdech: no f32 round trip); packed formats: V / 8 such elements from wdecq (their
  // codes decoded a word at a time, packedHalfPairsWgsl), or with `vdec` wdec's f32 values, each rounded to f16 (as
  // f32 weights always are).
  // Vector staging stores one element (8 values) at a time, scalar staging one half.
  const pair = (t: number) => `bitcast<u32>(vec2<f16>(vec2<f32>(wf[${t}], wf[${t + 1}])))`;
  // The 8 halves of element hv, value t (0..7) at BS[bi + at(t)].
  const halfWords = (hv: string, at: (t: number) => string) =>
    [0, 1, 2, 3].map((w) => `        { let h = bitcast<vec2<f16>>(${hv}.${'xyzw'[w]}); BS[bi + ${at(2 * w)}] = h.x; BS[bi + ${at(2 * w + 1)}] = h.y; }`).join('\n');
  const wStores = half
    ? vs
      ? `
        BS[bi] = wdech(wv);`
      : `
        let hv = wdech(wv);
${halfWords('hv', wPos)}`
    : isPackedFormat(v.wf) && !v.vdec
      ? `
        let hq = wdecq(wv);
${Array.from({ length: V / 8 }, (_, e) => (vs ? `        BS[bi + ${e}u] = hq[${e}];` : halfWords(`hq[${e}]`, (t) => `${8 * e + t}u`))).join('\n')}`
      : vs
        ? `
        let wf = wdec(wv);
${Array.from({ length: V / 8 }, (_, e) => `        BS[bi + ${e}u] = vec4<u32>(${[0, 2, 4, 6].map((t) => pair(8 * e + t)).join(', ')});`).join('\n')}`
        : `
        let wf = wdec(wv);
${Array.from({ length: V }, (_, t) => `        BS[bi + ${wPos(t)}] = f16(wf[${t}]);`).join('\n')}`;
  // The registers `regs` staged into buffer `buf`.
  const stage = (buf: string, regs: SliceRegs = SLICE_REGS) => `${stageX(buf, regs.x)}
    for (var i = 0u; i < ${wr.n}u; i++) {
      let j = lid + i * ${threads}u;${wr.guard ? `\n      if (j < ${tn * perRow}u) {` : ' {'}
        let bi = ${nb > 1 ? `${buf} * ${(tn * str) / st.be}u + ` : ''}(j / ${perRow}u) * ${str / st.be}u + (j % ${perRow}u) * ${V / st.be}u;${
          swz
            ? `
        // words rotated by q = j % 4: value t of wv is value (t + 2q) % 8 of the 8 (see SgmatShape.swz).
        let q = j & 3u;
        let w1 = select(${regs.w}[i], ${regs.w}[i].yzwx, (q & 1u) != 0u);
        let wv = select(w1, w1.zwxy, (q & 2u) != 0u);`
            : `
        let wv = ${regs.w}[i];`
        }${wStores}
      }
    }`;
  // The multiply-accumulates of one staged slice in buffer `buf`, the slice starting at K offset `k` (the direct x loads').
  // rowSkip: a 16-row fragment whose first row is past the tile's last (live<i> false) skips its A load and
  // multiplies, and a subgroup with no live fragment its B loads too (uniform in the subgroup: r0, r1 are
  // workgroup-uniform and sm is the subgroup's). Those fragments' results are never stored (the epilogue stops at r1).
  const rowSkip = !!v.rowSkip;
  const mma = (buf: string, k = 'k0') => {
    const aBase = nb > 1 ? `${buf} * ${(tm * str) / st.ae}u + ` : '';
    const bBase = nb > 1 ? `${buf} * ${(tn * str) / st.be}u + ` : '';
    let s = '';
    for (let kk = 0; kk < tk; kk += 16) {
      s += rowSkip ? `      if (live0) {\n` : `      {\n`;
      for (let j = 0; j < NJ; j++) s += `        ${M.load(`b${j}`, 'BS', `${bBase}(sn * ${CB}u + ${16 * j}u) * ${str / st.be}u + ${kk / st.be}u`, `${str / st.be}u`)}\n`;
      for (let i = 0; i < MI; i++) {
        const aLoad = v.xh === 'direct' ? M.load('a', 'X', `(r0 + sm * ${RB}u + ${16 * i}u) * kp + ${k} + ${kk}u`, 'kp') : M.load('a', 'AS', `${aBase}(sm * ${RB}u + ${16 * i}u) * ${str / st.ae}u + ${kk / st.ae}u`, `${str / st.ae}u`);
        s += `        ${rowSkip && i > 0 ? `if (live${i}) ` : ''}{ ${aLoad}\n`;
        for (let j = 0; j < NJ; j++) s += `          ${M.mma(`c${i}_${j}`, 'a', `b${j}`)}\n`;
        s += `        }\n`;
      }
      s += `      }\n`;
    }
    return s;
  };
  const liveDecls = rowSkip ? Array.from({ length: MI }, (_, i) => `let live${i} = r0 + sm * ${RB}u + ${16 * i}u < r1;`).join('\n  ') : '';
  // pf2: the second register set, loaded with the second slice up front
  const regs2: SliceRegs = { x: 'xg2', w: 'wg2' };
  const pf2Regs = shape.pf2 ? `${v.xh === 'direct' ? '' : `var ${regs2.x} = ${SLICE_REGS.x};\n  `}var ${regs2.w} = ${SLICE_REGS.w};
  { let kb = kBeg + ${tk}u; ${loadSlice(v, g, 'kb', regs2)}
  }` : '';
  const loop = shape.db
    ? `
  ${stage('0u')}
  workgroupBarrier();
  var buf = 0u;
  for (var k0 = kBeg; k0 < kEnd; k0 += ${tk}u) {
    let kb = k0 + ${tk}u;
    let more = kb < kEnd;
    if (more) { ${loadSlice(v, g, 'kb')}
    }
    if (sg < ${nsg}u) {
${mma('buf')}    }
    if (more) { ${stage('(1u - buf)')}
    }
    workgroupBarrier();
    buf = 1u - buf;
  }`
    : shape.pf2
    ? `
  ${pf2Regs}
  for (var k0 = kBeg; k0 < kEnd; k0 += ${2 * tk}u) {
    ${stage('0u')}
    workgroupBarrier();
    { let kb = k0 + ${2 * tk}u; if (kb < kEnd) { ${loadSlice(v, g, 'kb')}
    } }
    if (sg < ${nsg}u) {
${mma('0u')}    }
    workgroupBarrier();
    // the second slice of the step (k1), from the second register set; k1 < kEnd is workgroup-uniform
    let k1 = k0 + ${tk}u;
    if (k1 < kEnd) {
      ${stage('0u', regs2)}
      workgroupBarrier();
      { let kb = k0 + ${3 * tk}u; if (kb < kEnd) { ${loadSlice(v, g, 'kb', regs2)}
      } }
      if (sg < ${nsg}u) {
${mma('0u', 'k1')}      }
      workgroupBarrier();
    }
  }`
    : `
  for (var k0 = kBeg; k0 < kEnd; k0 += ${tk}u) {
    ${stage('0u')}
    workgroupBarrier();
    { let kb = k0 + ${tk}u; if (kb < kEnd) { ${loadSlice(v, g, 'kb')}
    } }
    if (sg < ${nsg}u) {
${mma('0u')}    }
    workgroupBarrier();
  }`;
  // Epilogue: per 16-row block and ow-wide column chunk, the owning subgroups store their results into OS, then every thread
  // applies bias / activation to its outputs (gate_up: gate column ((q / 16) * 32 + q % 16), up 16 further; Geo 'pairs16').
  const owOut = tileOutputs(v.op, ow);
  const epiStore =
    v.op === 'gate_up'
      ? `let cg = ((q >> 4u) << 5u) + (q & 15u); let g = ${os(`r * ${ow}u + cg`)}; let up = ${os(`r * ${ow}u + cg + 16u`)}; ${store(v, 'p', 'o', 'g', 'up', 'p - r0', !!shape.xo)}`
      : `let g = ${os(`r * ${ow}u + q`)}; ${store(v, 'p', 'o', 'g', '', 'p - r0', !!shape.xo)}`;
  let epi = '';
  for (let blk = 0; blk < tm / 16; blk++) {
    const sm0 = Math.floor((16 * blk) / RB);
    const i0 = (16 * blk - sm0 * RB) / 16;
    epi += `  if (r0 + ${16 * blk}u < r1) {\n`;
    for (let cc = 0; cc < tn / ow; cc++) {
      let stores = '';
      for (let j = 0; j < NJ; j++) {
        const col = `sn * ${CB}u + ${16 * j}u`;
        const inChunk = tn === ow ? 'true' : `${col} >= ${cc * ow}u && ${col} < ${(cc + 1) * ow}u`;
        stores += `      if (${inChunk}) { ${M.store(`c${i0}_${j}`, `${col} - ${cc * ow}u`, ow)} }\n`;
      }
      epi += `    if (sg < ${nsg}u && sm == ${sm0}u) {\n${stores}    }
    workgroupBarrier();
    for (var idx = lid; idx < ${16 * owOut}u; idx += ${threads}u) {
      let r = idx / ${owOut}u;
      let q = idx % ${owOut}u;
      let p = r0 + ${16 * blk}u + r;
      let o = o0 + ${cc * tileOutputs(v.op, ow)}u + q;
      if (p < r1 && o < u.N) { ${epiStore} }
    }
    workgroupBarrier();\n`;
    }
    epi += `  }\n`;
  }
  return /* wgsl */ `
${helpers}
${halfPairsWgsl(v)}
${packedHalfPairsWgsl(v)}
// A: x rows row-major [${nb}][${tm}][${str}] f16; B: weight rows [${nb}][${tn}][${str}] f16 (k contiguous, read as column-major K x N).
${v.xh === 'direct' ? '// A: loaded from the f16 x rows X directly.' : `var<workgroup> AS: array<${st.aType}, ${(nb * tm * str) / st.ae}>;`}
var<workgroup> BS: array<${st.bType}, ${(nb * tn * str) / st.be}>;
${oa ? `// f32 results of one 16-row block and ${ow} tile columns for the epilogue: in BS (oa).` : `// f32 results of one 16-row block and ${ow} tile columns for the epilogue.
var<workgroup> OS: array<f32, ${16 * ow}>;`}
${sharedRows(tm, v, !!shape.xo)}
${M.decls}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32${M.args}) {${M.entry}
${prologue(v, g)}
  let sm = sg % ${wm}u;
  let sn = (sg / ${wm}u) % ${wn}u;
  ${accNames.map((c) => M.zero(c)).join('\n  ')}
  ${liveDecls}
  ${sliceRegs(v, g)}
${loop}
${epi}}
`;
}, { signature: (v) => fastGemmSignature(v, sgmatDirectives(!!v.emu)) });
