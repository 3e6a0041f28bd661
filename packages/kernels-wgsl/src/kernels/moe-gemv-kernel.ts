/**
 * The decode GEMV kernel (dense weights, and packed weights on the table, wide and row-blocked paths):
 * its declaration (bindings and uniforms by name, moe-gemv-snippets.ts) and the dense / table / wide main;
 * the row-blocked main is moe-gemv-rows.ts.
 */
import { ValueError } from '@webmoe/tensor';
import { defineKernel } from '../runtime/kernel.js';
import { E8M0_WGSL, FP8_DECODE_WGSL, PACKED_CODE_WGSL } from '../wgsl.js';
import { rowsWgsl } from './moe-gemv-rows.js';
import { chunkedGemvBindings, chunkedGemvSource, chunkedGemvUniforms } from './moe-gemv-chunks.js';
import { expertActWgsl } from './activation-wgsl.js';
import {
  biasLoader,
  GEMV_GROUPS as GROUPS,
  GEMV_LANES as LANES,
  GEMV_UNIFORMS,
  gemvBindings,
  EXPERT_SLOT_WGSL,
  storeWgsl,
  tableLoadersWgsl,
  wideChunkCols,
  wideDecodeWgsl,
  type GemvVariant,
} from './moe-gemv-snippets.js';
import { GEMV_NAMES, ownFn, wgslDecls, type GemvModule, type GemvNames } from './moe-gemv-names.js';

/**
 * The decode GEMV. Workgroup (bx, by): output block bx (GROUPS outputs), active
 * expert slot by (a direct grid of min(E, T*k) slots; slots past the active
 * experts exit without work). With `chunks` (NC >= 2), one dispatch over NC
 * chunks of a chunked stack (moe-gemv-chunks.ts: the same code per chunk). Lanes of a group split the reduction dimension in 8-wide
 * chunks; partial sums are reduced in workgroup memory in a fixed order.
 * The WGSL is generated fully unrolled over the MR token rows (no
 * dynamically indexed register arrays, which drivers spill to memory).
 */
export const gemvKernel = defineKernel<GemvVariant>(
  'moe_gemv',
  (v) => {
    // the combined down GEMV: one weight container, the row-blocked down path, one token row per pass
    if (v.combine && !(v.mode === 'down' && v.ro !== undefined && v.mr === 1 && v.chunks === undefined)) {
      throw new ValueError('combined GEMV variant', "mode 'down', row-blocked (ro), mr 1, one weight container", JSON.stringify(v));
    }
    return v.chunks === undefined ? gemvModuleText(gemvModule(v), !v.combine) : chunkedGemvSource((n) => gemvModule(oneChunk(v), n), v.chunks);
  },
  { signature: (v) => (v.chunks === undefined ? { bindings: gemvBindings(v), uniforms: GEMV_UNIFORMS } : { bindings: chunkedGemvBindings(oneChunk(v), v.chunks), uniforms: chunkedGemvUniforms(v.chunks) }) },
);

/** The WGSL of a one-chunk GEMV module: its parts and (`slot`; not the combined down GEMV's tokens) the expert-slot prologue. */
function gemvModuleText(m: GemvModule, slot: boolean): string {
  return `${m.decls.map((p) => p.text).join('')}${m.head}${slot ? EXPERT_SLOT_WGSL : ''}${m.body}${m.tail}`;
}

/** The variant without its chunk count (the one-chunk kernel the multi-chunk one is made from). */
function oneChunk(v: GemvVariant): GemvVariant {
  const { chunks: _chunks, ...one } = v;
  return one;
}

/**
 * The one-chunk decode GEMV's WGSL (one weight container per dispatch) in its parts, emitting the names n for
 * what each chunk of a multi-chunk dispatch has its own of (GEMV_NAMES: the one-chunk kernel's own declarations).
 */
function gemvModule(v: GemvVariant, n: GemvNames = GEMV_NAMES): GemvModule {
  const { W, rows: urows, nout, fn, block } = n;
  const gu = v.mode === 'gate_up';
  const MRv = v.mr;
  const NA = gu ? 2 : 1;
  const R = Array.from({ length: MRv }, (_, m) => m);
  const quant = v.sdtype !== 'none';
  const rows = v.ro !== undefined;
  const { load8, load1, scaleFns, lutInit } = tableLoadersWgsl(v, n);
  // packed formats decode through a table: fewer chunks in flight keep the unrolled code (and its compile time on CPU drivers) small
  const U = v.vec8 ? (quant ? 2 : 4) : 1;
  // wide packed chunks: one 16-byte load per weight row, decoded word by word (4 words; a 4-bit word is 8 columns, an 8-bit word 4)
  const CW = wideChunkCols(v.wdtype);
  const four = CW === 32;
  const words = [0, 1, 2, 3];
  const halves = four ? [0, 1] : [0];
  const shifts = (h: number) => (four ? `vec4<u32>(${[0, 4, 8, 12].map((b) => b + 16 * h + 'u').join(', ')})` : 'vec4<u32>(0u, 8u, 16u, 24u)');
  const mask = four ? 'vec4<u32>(15u)' : 'vec4<u32>(255u)';
  const zsub = (z: string) => (v.zp ? ` - ${z}` : '');
  const wideInner = `
        let col = c * ${CW}u;
        let qg = ${W}[(gbase + col) / ${CW}u];${gu ? ` let qu = ${W}[(ubase + col) / ${CW}u];` : ''}
        let sg = wscale${fn}(e, rg, col);${gu ? ` let su = wscale${fn}(e, ru, col);` : ''}${v.zp ? ` let zg = wzshift${fn}(e, rg, col);${gu ? ` let zu = wzshift${fn}(e, ru, col);` : ''}` : ''}
${R.map((m) => `        var pg${m} = 0.0;${gu ? ` var pu${m} = 0.0;` : ''} let xq${m} = (xrow${m} + col) >> 2u;`).join('\n')}
${words
  .map((j) =>
    halves
      .map((h) => {
        const xo = four ? 2 * j + h : j;
        return `        { let wg = dec((vec4<u32>(qg[${j}]) >> ${shifts(h)}) & ${mask})${zsub('zg')};${gu ? ` let wu = dec((vec4<u32>(qu[${j}]) >> ${shifts(h)}) & ${mask})${zsub('zu')};` : ''}
${R.map((m) => `          { let xv = X4[xq${m} + ${xo}u]; pg${m} += dot(wg, xv);${gu ? ' pu' + m + ' += dot(wu, xv);' : ''} }`).join('\n')} }`;
      })
      .join('\n'),
  )
  .join('\n')}
${R.map((m) => `        ag${m} += sg * pg${m};${gu ? ` au${m} += su * pu${m};` : ''}`).join('\n')}`;
  const Us = Array.from({ length: U }, (_, u) => u);
  // zero points: the 8 table values minus the chunk's zero-point shift
  const wz = (w8: string, z: string) => (v.zp ? `wzsub(${w8}, ${z})` : w8);
  const inner = v.vec8
    ? `
${Us.map((u) => `        let c${u} = c + ${u * LANES}u; let ok${u} = c${u} < nchunks; let col${u} = min(c${u}, nchunks - 1u) * 8u;
        let wg${u} = ${wz(`wload8${fn}(gbase + col${u})`, `wzshift${fn}(e, rg, col${u})`)};${gu ? ` let wu${u} = ${wz(`wload8${fn}(ubase + col${u})`, `wzshift${fn}(e, ru, col${u})`)};` : ''}${quant ? ` let sg${u} = wscale${fn}(e, rg, col${u});${gu ? ` let su${u} = wscale${fn}(e, ru, col${u});` : ''}` : ''}`).join('\n')}
${Us.map((u) => R.map((m) => `        { let q = (xrow${m} + col${u}) >> 2u; let xa = X4[q]; let xb = X4[q + 1u];
          let xe = vec4<f32>(xa.xz, xb.xz); let xo = vec4<f32>(xa.yw, xb.yw);
          ag${m} += select(0.0, ${quant ? `sg${u} * ` : ''}(dot(wg${u}.e, xe) + dot(wg${u}.o, xo)), ok${u});${gu ? ` au${m} += select(0.0, ${quant ? `su${u} * ` : ''}(dot(wu${u}.e, xe) + dot(wu${u}.o, xo)), ok${u});` : ''} }`).join('\n')).join('\n')}`
    : `
        let col = c * 8u;
        let lim = min(8u, u.cols - col);
        for (var j = 0u; j < lim; j++) {
          let wgv = wload1${fn}(gbase + col + j);${gu ? `\n          let wuv = wload1${fn}(ubase + col + j);` : ''}
${R.map((m) => `          { let xv = X[xrow${m} + col + j]; ag${m} = fma(xv, wgv, ag${m});${gu ? ` au${m} = fma(xv, wuv, au${m});` : ''} }`).join('\n')}
        }`;
  const decls = wgslDecls`
struct W8 { e: vec4<f32>, o: vec4<f32>, }
${ownFn(v.bias ? biasLoader(v.bdtype, n) : '')}
${expertActWgsl(v.act)}
var<workgroup> wcnt: u32;
`;
  if (rows) {
    const r = rowsWgsl(v, n);
    return { decls: [...decls, ...r.decls], head: r.head, body: r.body, tail: `${r.tail}\n` };
  }
  decls.push(...wgslDecls`${v.zp && !v.wide ? 'fn wzsub(w: W8, z: f32) -> W8 { return W8(w.e - z, w.o - z); }' : ''}
${v.wdtype === 'mxfp4' ? `${E8M0_WGSL}\n` : ''}${v.wide ? wgslDecls`${wideDecodeWgsl(v.wdtype)}\n${scaleFns}` : quant ? wgslDecls`${FP8_DECODE_WGSL}${PACKED_CODE_WGSL}\nvar<workgroup> lut: array<f32, 256>;\n${scaleFns}` : ''}
${ownFn(v.wide ? '' : v.vec8 ? load8 : load1)}
var<workgroup> red: array<f32, ${GROUPS * LANES * MRv * NA}>;
`);
  const head = `@compute @workgroup_size(${LANES}, ${GROUPS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${quant && !v.wide ? `{ let li = lid.y * ${LANES}u + lid.x; ${lutInit} }` : ''}
`;
  const body = /* wgsl */ `
  let lane = lid.x;
  let g = lid.y;
  let o = ${block} * ${GROUPS}u + g;
  let valid = o < u.${nout};
  let oc = min(o, u.${nout} - 1u);
  let ebase = e * u.${urows} * u.cols;
  ${gu ? `let rg = select(oc, 2u * oc, ${v.interleaved});
  let ru = select(oc + u.${nout}, 2u * oc + 1u, ${v.interleaved});
  let ubase = ebase + ru * u.cols;` : `let rg = oc;`}
  let gbase = ebase + rg * u.cols;
  let nchunks = ${v.wide ? `u.cols / ${CW}u` : '(u.cols + 7u) / 8u'};
  for (var m0 = 0u; m0 < cnt; m0 += ${MRv}u) {
${R.map((m) => `    let xrow${m} = ${gu ? `(Order[off + min(m0 + ${m}u, cnt - 1u)] / u.k) * u.cols` : `(off + min(m0 + ${m}u, cnt - 1u)) * u.cols`};
    var ag${m} = 0.0;${gu ? ` var au${m} = 0.0;` : ''}`).join('\n')}
    if (valid) {
      for (var c = lane; c < nchunks; c += ${v.wide ? LANES : LANES * U}u) {${v.wide ? wideInner : inner}
      }
    }
${R.map((m) => `    red[(g * ${MRv * NA}u + ${m * NA}u) * ${LANES}u + lane] = ag${m};${gu ? `\n    red[(g * ${MRv * NA}u + ${m * NA + 1}u) * ${LANES}u + lane] = au${m};` : ''}`).join('\n')}
    workgroupBarrier();
    for (var s = ${LANES / 2}u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var q = 0u; q < ${MRv * NA}u; q++) {
          let b = (g * ${MRv * NA}u + q) * ${LANES}u;
          red[b + lane] = red[b + lane] + red[b + lane + s];
        }
      }
      workgroupBarrier();
    }
    if (valid && lane < ${MRv}u && m0 + lane < cnt) {
      let row = off + m0 + lane;
      var sg = red[(g * ${MRv * NA}u + lane * ${NA}u) * ${LANES}u];
      ${gu ? `var su = red[(g * ${MRv * NA}u + lane * ${NA}u + 1u) * ${LANES}u];` : ''}
      ${storeWgsl(v, n)}
    }
    workgroupBarrier();
  }
`;
  return { decls, head, body, tail: '}\n' };
}
