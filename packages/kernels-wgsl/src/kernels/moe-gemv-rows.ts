/**
 * The row-blocked decode GEMV (packed weights, and 16-bit dense weights without scales) (GemvVariant.ro outputs per 32-lane group, optionally ks groups per
 * output block splitting the columns): 16-byte code loads per lane, or (GemvVariant.il) code words interleaved
 * over the lanes, exact bit decoding (ROWS_CODECS), every x load serving all the group's weight rows, a
 * fixed-order workgroup reduction.
 */
import { ValueError } from '@webmoe/tensor';
import { E8M0_WGSL, FP8_DECODE_WGSL } from '../wgsl.js';
import {
  GEMV_GROUPS as GROUPS,
  GEMV_LANES as LANES,
  NAN_FLAG_BITS,
  ROWS_CODECS,
  V8_WGSL,
  storeWgsl,
  wideChunkCols,
  type GemvVariant,
} from './moe-gemv-snippets.js';
import { ownFn, wgslDecls, type GemvModule, type GemvNames, type GemvPiece } from './moe-gemv-names.js';

/** Values per lane reduced in one pass of the row-blocked GEMV's workgroup reduction (bounds its workgroup memory). */
const ROWS_PASS = 8;

/** Lanes one thread of the x-in-registers variant's first reduction level sums (GemvVariant.xr). */
const XR_SEGMENT = 8;

/** Chunks of x one slice of the staged-x variant holds (GemvVariant.xs): one pass of the chunk loop, two per lane. */
export const XS_SLICE_CHUNKS = 2 * LANES;

/**
 * vec4s per chunk in the staged x slice: the chunk's x and one more, so that the 16-byte reads of eight lanes (one
 * phase of a 128-bit shared-memory load) fall in distinct banks (int4: 36 words apart, not 32).
 */
function xsChunkStride(wdtype: GemvVariant['wdtype']): number {
  return wideChunkCols(wdtype) / 4 + 1;
}

/**
 * Workgroup memory of the row-blocked GEMV in bytes: its reduction (with `xr` its second level too), and with `xs`
 * the x slice of its `mr` token rows (the device's maxComputeWorkgroupStorageSize bounds which variants it can run:
 * moe-gemv.ts checks).
 * @example `rowsWorkgroupBytes({ ...v, wdtype: 'int4', mr: 1, xs: true }) // 8192 + 64 * 9 * 16`
 */
export function rowsWorkgroupBytes(v: Pick<GemvVariant, 'wdtype' | 'mr' | 'xs' | 'xr'>): number {
  return GROUPS * LANES * ROWS_PASS * 4 + (v.xs ? v.mr * XS_SLICE_CHUNKS * xsChunkStride(v.wdtype) * 16 : 0) + (v.xr ? ((GROUPS * LANES) / XR_SEGMENT) * ROWS_PASS * 4 : 0);
}

/**
 * The row-blocked GEMV's scale (and zero point) of scale index i, and the
 * scale row of weight row r: int blocks [E, rows, cols/bs], fp8 blocks
 * [E, rows/bh, cols/bw], mxfp4 e8m0 bytes [E, rows, cols/32].
 */
function rowsScaleWgsl(v: GemvVariant, n: GemvNames): GemvPiece[] {
  const { QS, QZ, rows, s0, fn } = n;
  // dense 16-bit weights: no scales (every chunk's scale is 1)
  if (v.sdtype === 'none') return wgslDecls`${ownFn(`fn srow${fn}(e: u32, r: u32) -> u32 { return 0u; }`)}\n${ownFn(`fn sload${fn}(i: u32) -> f32 { return 1.0; }`)}\nfn cblk(c: u32) -> u32 { return 0u; }`;
  const fp8 = v.wdtype === 'fp8_e4m3' || v.wdtype === 'fp8_e5m2';
  const srow = fp8 ? `fn srow${fn}(e: u32, r: u32) -> u32 { return (e * u.${s0} + r / u.s2) * u.s1; }` : `fn srow${fn}(e: u32, r: u32) -> u32 { return (e * u.${rows} + r) * u.${s0}; }`;
  const sload =
    v.wdtype === 'mxfp4'
      ? `fn sload${fn}(i: u32) -> f32 { return e8m0((${QS}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }`
      : v.sdtype === 'float16'
        ? `fn sload${fn}(i: u32) -> f32 { let q = unpack2x16float(${QS}[i >> 1u]); return select(q.x, q.y, (i & 1u) == 1u); }`
        : `fn sload${fn}(i: u32) -> f32 { return ${QS}[i]; }`;
  const zload = v.zp ? `fn zload${fn}(i: u32) -> f32 { return f32((${QZ}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu); }` : '';
  const blk = `fn cblk(c: u32) -> u32 { return ${v.cbPow2 ? 'c >> u.cbs' : 'c / u.cb'}; }`;
  return wgslDecls`${ownFn(srow)}\n${ownFn(sload)}${zload ? '\n' : ''}${ownFn(zload)}\n${blk}`;
}

/** The row-blocked GEMV's module after the shared bindings: decoding, scale lookup, reduction memory, main; names n. */
export function rowsWgsl(v: GemvVariant, n: GemvNames): GemvModule {
  const codec = ROWS_CODECS[v.wdtype];
  if (!codec) throw new ValueError('row-blocked GEMV format', Object.keys(ROWS_CODECS).join(' | '), v.wdtype);
  return {
    decls: wgslDecls`${V8_WGSL}
${codec.nan ? `${FP8_DECODE_WGSL}\n${codec.nan}` : ''}${v.wdtype === 'mxfp4' ? `${E8M0_WGSL}\n` : ''}
${codec.wgsl}
${rowsScaleWgsl(v, n)}
var<workgroup> red: array<f32, ${GROUPS * LANES * ROWS_PASS}>;
${v.xr ? `var<workgroup> red2: array<f32, ${((GROUPS * LANES) / XR_SEGMENT) * ROWS_PASS}>;\n` : ''}${v.xs ? `var<workgroup> xsh: array<vec4<f32>, ${v.mr * XS_SLICE_CHUNKS * xsChunkStride(v.wdtype)}>;\n` : ''}

`,
    ...rowsMain(v, n),
  };
}

/**
 * The row-blocked decode GEMV (v.ro outputs per 32-lane group): lanes split
 * the columns in 16-byte chunks (two chunks in flight per lane), every x load
 * serves all the group's weight rows, partial sums are reduced in workgroup
 * memory in passes of ROWS_PASS values per lane, each output summed over the
 * 32 lanes in a fixed order. Emitted unrolled over rows, gate/up and tokens.
 * Split over K (v.ks = KS > 1, a bench candidate): the workgroup's GROUPS
 * groups form GROUPS / KS output blocks of KS groups each; the KS * 32 lanes
 * of a block split its columns (chunk c to lane c mod KS * 32), and each
 * output is summed over group 0's 32 lanes, then group 1's, ... (fixed order).
 * More workgroups per expert, fewer chunks per lane: for long K and few
 * output blocks (Mixtral's down at T = 1: 512 workgroups of 14 steps).
 */
function rowsMain(v: GemvVariant, names: GemvNames): Omit<GemvModule, 'decls'> {
  const { W, rows: urows, nout, fn, block } = names;
  const codec = ROWS_CODECS[v.wdtype]!;
  const gu = v.mode === 'gate_up';
  const RO = v.ro!;
  const MRv = v.mr;
  const CW = wideChunkCols(v.wdtype);
  // a decode unit: one code word, or two for 16-bit weights (2 per word); its x vec4s, and units per 16-byte chunk
  const UW = codec.perWord === 2 ? 2 : 1;
  const X4W = (codec.perWord * UW) / 4;
  const UNITS = 4 / UW;
  const unitCode = (q: string) => (UW === 2 ? `vec2<u32>(${q}[2u * j], ${q}[2u * j + 1u])` : `${q}[j]`);
  const rows = Array.from({ length: RO }, (_, r) => r);
  const ms = Array.from({ length: MRv }, (_, m) => m);
  const parts = gu ? ['g', 'u'] : ['g'];
  const us = [0, 1];
  // every accumulator, gate/up of one (row, token) adjacent: the reduction pairs them
  const vals = rows.flatMap((r) => ms.flatMap((m) => parts.map((a) => `a${a}${r}_${m}`)));
  const perPass = ROWS_PASS / parts.length;
  const passes = Math.ceil(vals.length / ROWS_PASS);
  const KS = v.ks ?? 1;
  // lanes over one output block's columns, and the lane's index among them
  const LK = LANES * KS;
  if ((v.xs || v.xsFirst) && (KS !== 1 || v.il || v.combine || (v.xsFirst && !v.xs))) throw new ValueError('staged-x GEMV variant (xs, xsFirst)', 'ks 1, no il, no combine; xsFirst only with xs', JSON.stringify(v));
  if (v.xr && (MRv !== 1 || v.xs || v.xsFirst || v.il || v.pf || v.combine)) throw new ValueError('x-in-registers GEMV variant (xr)', 'mr 1, not with xs, xsFirst, il, pf or combine', JSON.stringify(v));
  if (v.pf && (v.il || v.xsFirst)) throw new ValueError('prefetching GEMV variant (pf)', '16-byte chunks per lane (no il), not with xsFirst', JSON.stringify(v));
  // staged x (v.xs): token row m's x of chunk c of the slice starting at chunk sb sits at xsh[m * XSM + (c - sb) * XP]
  const XP = xsChunkStride(v.wdtype);
  const XSM = XS_SLICE_CHUNKS * XP;
  const xload = (m: number, h: number) =>
    v.xs ? `xsh[${m * XSM}u + (cu - sb) * ${XP}u + j * ${X4W}u${h ? ` + ${h}u` : ''}]` : `X4[xq${m} + cu * ${CW / 4}u + j * ${X4W}u${h ? ` + ${h}u` : ''}]`;
  const zexpr = (a: string, r: number, ch: string) => codec.zoff!(v.zp ? `zload${fn}(s${a}${r} + cblk(${ch}))` : v.wdtype === 'int4' ? '8.0' : '128.0');
  const zdef = (a: string, r: number, u: number) => (codec.zoff ? `let z${a}${r}_${u} = ${zexpr(a, r, `c${u}`)};` : '');
  // one decoded word d of row (a, r) against every token's x
  const dotw = (a: string, r: number) =>
    ms.map((m) => (X4W === 2 ? `p${a}${r}_${m} += dot(d.lo, x${m}_0) + dot(d.hi, x${m}_1);` : `p${a}${r}_${m} += dot(d, x${m}_0);`)).join(' ');
  // the two chunks' codes and scales are loaded first (all rows), then consumed one chunk at a time and one
  // 4-byte word at a time in loops (constant trip counts: small code for CPU drivers, unrolled by GPU compilers)
  const rowsParts = rows.flatMap((r) => parts.map((a) => `${a}${r}`));
  const chunkLoop = `
      for (var ci = 0u; ci < 2u; ci++) {
        let cu = select(c0, c1, ci == 1u); let oku = select(ok0, ok1, ci == 1u);
${rowsParts.map((n) => `        let q${n} = select(q${n}_0, q${n}_1, ci == 1u); let s${n}u = select(s${n}_0, s${n}_1, ci == 1u);${codec.zoff ? ` let z${n} = select(z${n}_0, z${n}_1, ci == 1u);` : ''}`).join('\n')}
${rowsParts.map((n) => `        ${ms.map((m) => `var p${n}_${m} = 0.0;`).join(' ')}`).join('\n')}
        for (var j = 0u; j < ${UNITS}u; j++) {
${ms.map((m) => `          ${Array.from({ length: X4W }, (_, h) => `let x${m}_${h} = ${xload(m, h)};`).join(' ')}`).join('\n')}
${rows.flatMap((r) => parts.map((a) => `          { let d = dw(${unitCode(`q${a}${r}`)}, ${codec.zoff ? `z${a}${r}` : 'vec4<f32>(0.0)'}); ${dotw(a, r)} }`)).join('\n')}
        }
${rowsParts.flatMap((n) => ms.map((m) => `        a${n}_${m} += select(0.0, s${n}u * (p${n}_${m}${codec.unit !== 1 ? ` * ${codec.unit}.0` : ''}), oku);`)).join('\n')}
      }`;
  // sums of output j's values in group `grp` (its 32 lanes in order) into sg (su); `init` declares them
  const sumOver = (grp: string, init = true) => `        let b = (${grp === 'g' ? 'g' : `(${grp})`} * ${ROWS_PASS}u + lane * ${parts.length}u) * ${LANES}u;
${init ? `        var sg = 0.0;${gu ? ' var su = 0.0;' : ''}\n` : ''}        for (var i = 0u; i < ${LANES}u; i++) { sg += red[b + i];${gu ? ` su += red[b + ${LANES}u + i];` : ''} }`;
  const head = `@compute @workgroup_size(${LANES}, ${GROUPS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
`;
  const cmb = v.combine;
  const weighted = cmb === 'weighted';
  const sh = v.combineShared ?? 'none';
  // the combined down GEMV (v.combine): each chunk's scale carries the slot's router weight, so one accumulator per
  // output sums every slot of the token before the (single) reduction
  const wscale = weighted ? 'wt * ' : '';
  // the output indices of the group's rows; the weight-row bases where the expert is known (inside v.combine's slot loop)
  const rowIdx = rows
    .map(
      (r) => `  let oc${r} = min(ob + ${r}u, u.${nout} - 1u);
  let rg${r} = ${gu ? `select(oc${r}, 2u * oc${r}, ${v.interleaved})` : `oc${r}`};${gu ? ` let ru${r} = select(oc${r} + u.${nout}, 2u * oc${r} + 1u, ${v.interleaved});` : ''}`,
    )
    .join('\n');
  const rowBases = (ind: string) => rows.map((r) => parts.map((a) => `${ind}let w${a}${r} = (e * u.${urows} + r${a}${r}) * nch; let s${a}${r} = srow${fn}(e, r${a}${r});`).join('\n')).join('\n');
  const accDecls = (ind: string) => `${vals.map((n) => `${ind}var ${n} = 0.0;`).join('\n')}
${codec.nan ? rows.flatMap((r) => parts.map((a) => `${ind}var bad${a}${r} = 0u;`)).join('\n') : ''}`;
  // WGSL of row (a, r)'s 16-byte code chunk at chunk index `ch`, and of its scale (times the slot's router weight: v.combine)
  const codeAt = (a: string, r: number, ch: string) => `${W}[w${a}${r} + ${ch}]`;
  const scaleAt = (a: string, r: number, ch: string) => `${wscale}sload${fn}(s${a}${r} + cblk(${ch}))`;
  // the lane's chunks of one expert's rows: 16-byte code loads of two chunks, their scales, NaN words (`ok0`: whether
  // the first chunk is the lane's, a WGSL expression), then the chunk loop over them
  const chunkIdx = (ok0: string) => `
      let c0 = c; let ok0 = ${ok0};
      let ok1 = c + ${LK}u < nch; let c1 = select(c, c + ${LK}u, ok1);`;
  const nanWords = codec.nan
    ? `\n${us.map((u) => rows.flatMap((r) => parts.map((a) => `      bad${a}${r} |= select(0u, nanw(q${a}${r}_${u}.x) | nanw(q${a}${r}_${u}.y) | nanw(q${a}${r}_${u}.z) | nanw(q${a}${r}_${u}.w), ok${u});`)).join('\n')).join('\n')}`
    : '';
  const chunkLoads = (ok0: string) => `${chunkIdx(ok0)}
${us.map((u) => rows.flatMap((r) => parts.map((a) => `      let q${a}${r}_${u} = ${codeAt(a, r, `c${u}`)};`)).join('\n')).join('\n')}
${us.map((u) => rows.flatMap((r) => parts.map((a) => `      let s${a}${r}_${u} = ${scaleAt(a, r, `c${u}`)}; ${zdef(a, r, u)}`)).join('\n')).join('\n')}${nanWords}`;
  // v.pf: the codes, scales (and zero-point offsets) of the lane's next step are loaded into registers of their own
  // (nq.., ns.., nz..) before the current step decodes, so that a step's loads are in flight during the previous
  // step's arithmetic. `next`: the WGSL chunk index of the next step's first chunk (clamped into the row here: the
  // chunks past the row are loaded from its last one and not summed, as ok0 / ok1 mask them)
  const pfDecls = `
${us.map((u) => rows.flatMap((r) => parts.map((a) => `    var nq${a}${r}_${u}: vec4<u32>; var ns${a}${r}_${u}: f32;${codec.zoff ? ` var nz${a}${r}_${u}: vec4<f32>;` : ''}`)).join('\n')).join('\n')}`;
  const pfLoad = (next: string, ind: string) => `${ind}{
${ind}  let n0 = min(${next}, nch - 1u); let n1 = min(n0 + ${LK}u, nch - 1u);
${us.map((u) => rows.flatMap((r) => parts.map((a) => `${ind}  nq${a}${r}_${u} = ${codeAt(a, r, `n${u}`)}; ns${a}${r}_${u} = ${scaleAt(a, r, `n${u}`)};${codec.zoff ? ` nz${a}${r}_${u} = ${zexpr(a, r, `n${u}`)};` : ''}`)).join('\n')).join('\n')}
${ind}}`;
  const pfTake = `
${us.map((u) => rows.flatMap((r) => parts.map((a) => `      let q${a}${r}_${u} = nq${a}${r}_${u}; let s${a}${r}_${u} = ns${a}${r}_${u};${codec.zoff ? ` let z${a}${r}_${u} = nz${a}${r}_${u};` : ''}`)).join('\n')).join('\n')}${nanWords}`;
  // v.xs: the slices of XS_SLICE_CHUNKS chunks in turn (uniform control flow: the barriers): the whole workgroup copies
  // the slice's x (coalesced vec4 loads, zeros past the row), and the lane's two chunks run over it. v.xsFirst: the
  // lane's codes and scales of the slice are loaded before the copy (its chunk index clamped into the row: nothing of
  // them reads the slice), so that their memory latency overlaps the copy's; else after it, where the lane has a chunk
  const CV = CW / 4;
  const xsCopy = `
      workgroupBarrier(); // every lane is done with the previous slice
      for (var i = tid; i < ${XS_SLICE_CHUNKS * CV}u; i += ${GROUPS * LANES}u) {
        let ch = i / ${CV}u; let q = i % ${CV}u;
${ms.map((m) => `        var xv${m} = vec4<f32>(0.0); if (sb + ch < nch) { xv${m} = X4[xq${m} + (sb + ch) * ${CV}u + q]; } xsh[${m * XSM}u + ch * ${XP}u + q] = xv${m};`).join('\n')}
      }
      workgroupBarrier();`;
  const start = KS === 1 ? 'lane' : 'kl';
  const chunkPass = v.pf
    ? v.xs
      ? `
    let tid = g * ${LANES}u + lane;${pfDecls}
${pfLoad('lane', '    ')}
    for (var sb = 0u; sb < nch; sb += ${XS_SLICE_CHUNKS}u) {${xsCopy}
      let c = min(sb + lane, nch - 1u);${chunkIdx('sb + lane < nch')}${pfTake}
${pfLoad(`sb + ${XS_SLICE_CHUNKS}u + lane`, '      ')}
      if (ok0) {${chunkLoop}
      }
    }`
      : `${pfDecls}
${pfLoad(start, '    ')}
    for (var c = ${start}; c < nch; c += ${2 * LK}u) {${chunkIdx('true')}${pfTake}
${pfLoad(`c + ${2 * LK}u`, '      ')}
${chunkLoop}
    }`
    : v.xs
    ? `
    let tid = g * ${LANES}u + lane;
    for (var sb = 0u; sb < nch; sb += ${XS_SLICE_CHUNKS}u) {${
      v.xsFirst
        ? `
      let c = min(sb + lane, nch - 1u);${chunkLoads('sb + lane < nch')}${xsCopy}
      if (ok0) {${chunkLoop}
      }`
        : `${xsCopy}
      let c = sb + lane;
      if (c < nch) {${chunkLoads('true')}
${chunkLoop}
      }`
    }
    }`
    : `
    for (var c = ${start}; c < nch; c += ${2 * LK}u) {${chunkLoads('true')}
${chunkLoop}
    }`;
  // v.il: units (UW words) interleaved over the lanes, a lane's step taking NU units at kl + LK * j: every x load of
  // the warp is contiguous (lane stride one unit's x), where a 16-byte chunk per lane strides the x loads by the
  // chunk's columns (int4: 128 bytes, 32 cache lines per warp load). Each unit has its own scale (and zero point).
  const NU = 2 * UNITS;
  const LU = Math.log2(UNITS);
  const unitWord = (base: string, U: string, w: number) => `${W}[${base} + (${U} >> ${LU}u)][((${U} & ${UNITS - 1}u) * ${UW}u)${w ? ` + ${w}u` : ''}]`;
  const unitLoad = (base: string, U: string) => (UW === 2 ? `vec2<u32>(${unitWord(base, U, 0)}, ${unitWord(base, U, 1)})` : unitWord(base, U, 0));
  const unitType = UW === 2 ? 'vec2<u32>' : 'u32';
  const unitPass = `
    let nu = nch * ${UNITS}u;
    for (var ub = ${KS === 1 ? 'lane' : 'kl'}; ub < nu; ub += ${NU * LK}u) {
${rowsParts.map((n) => `      var uq${n}: array<${unitType}, ${NU}>; var us${n}: array<f32, ${NU}>;${codec.zoff && v.zp ? ` var uz${n}: array<f32, ${NU}>;` : ''}`).join('\n')}
      for (var j = 0u; j < ${NU}u; j++) {
        let uj = min(ub + j * ${LK}u, nu - 1u);
${rows.flatMap((r) => parts.map((a) => `        uq${a}${r}[j] = ${unitLoad(`w${a}${r}`, 'uj')}; us${a}${r}[j] = ${scaleAt(a, r, `uj >> ${LU}u`)};${codec.zoff && v.zp ? ` uz${a}${r}[j] = zload${fn}(s${a}${r} + cblk(uj >> ${LU}u));` : ''}`)).join('\n')}
      }
      for (var j = 0u; j < ${NU}u; j++) {
        let uj = ub + j * ${LK}u; let oku = uj < nu; let ux = min(uj, nu - 1u) * ${X4W}u;
${ms.map((m) => `        ${Array.from({ length: X4W }, (_, h) => `let x${m}_${h} = X4[xq${m} + ux${h ? ` + ${h}u` : ''}];`).join(' ')}`).join('\n')}
${rows.flatMap((r) => parts.map((a) => {
  const n = `${a}${r}`;
  const z = codec.zoff ? codec.zoff(v.zp ? `uz${n}[j]` : v.wdtype === 'int4' ? '8.0' : '128.0') : 'vec4<f32>(0.0)';
  return `        { ${codec.nan ? `bad${n} |= select(0u, nanw(uq${n}[j]), oku); ` : ''}${ms.map((m) => `var p${n}_${m} = 0.0;`).join(' ')} let d = dw(uq${n}[j], ${z}); ${dotw(a, r)}
          ${ms.map((m) => `a${n}_${m} += select(0.0, us${n}[j] * (p${n}_${m}${codec.unit !== 1 ? ` * ${codec.unit}.0` : ''}), oku);`).join(' ')} }`;
})).join('\n')}
      }
    }`;
  // v.xr: one 16-byte chunk per lane and step; its x (CV vec4s) loaded once into registers, then each of the block's
  // rows in turn: its code load, scale (zero point), decode against the registers, the scaled sum into its accumulator
  const xrRow = (a: string, r: number) => `
      { let q = ${codeAt(a, r, 'c')}; let sc = ${scaleAt(a, r, 'c')};${codec.zoff ? ` let z = ${zexpr(a, r, 'c')};` : ''}${codec.nan ? `\n        bad${a}${r} |= nanw(q.x) | nanw(q.y) | nanw(q.z) | nanw(q.w);` : ''}
        var p = 0.0;
${Array.from({ length: UNITS }, (_, j) => {
  const code = UW === 2 ? `vec2<u32>(q[${2 * j}], q[${2 * j + 1}])` : `q[${j}]`;
  const dot = X4W === 2 ? `dot(d.lo, xr${2 * j}) + dot(d.hi, xr${2 * j + 1})` : `dot(d, xr${j})`;
  return `        { let d = dw(${code}, ${codec.zoff ? 'z' : 'vec4<f32>(0.0)'}); p += ${dot}; }`;
}).join('\n')}
        a${a}${r}_0 += sc * ${codec.unit !== 1 ? `(p * ${codec.unit}.0)` : 'p'}; }`;
  const xrPass = `
    for (var c = ${start}; c < nch; c += ${LK}u) {
      let xb = xq0 + c * ${CV}u;
      ${Array.from({ length: CV }, (_, i) => `let xr${i} = X4[xb${i ? ` + ${i}u` : ''}];`).join(' ')}${rows.flatMap((r) => parts.map((a) => xrRow(a, r))).join('')}
    }`;
  const pass = v.il ? unitPass : v.xr ? xrPass : chunkPass;
  // a row whose codes held a NaN word outputs NaN (v.combine: after all the token's slots; `ind` the indent)
  const nanRows = (ind: string) =>
    codec.nan ? rows.flatMap((r) => parts.map((a) => `${ind}if ((bad${a}${r} & ${NAN_FLAG_BITS}) != 0u) { ${ms.map((m) => `a${a}${r}_${m} = special_f32(0x7fc00000u, bad${a}${r});`).join(' ')} }`)).join('\n') : '';
  // output o of token row m: the grouped row's store (rowScale, bias, activation), or the combined store (the slots'
  // router-weighted biases, the shared experts, the token's output row)
  const store = cmb
    ? `${v.bias ? `for (var js = 0u; js < u.k; js++) { let p = t * u.k + js; sg = sg + ${weighted ? 'WT[p] * ' : ''}bload${fn}(Idx[p] * u.${urows} + o); }` : ''}
        ${sh !== 'none' ? `sg = sg + SH[t * u.ys + o]${sh === 'gated' ? ' * (1.0 / (1.0 + exp(-GL[t])))' : ''};` : ''}
        Y[t * u.ys + o] = sg;`
    : `let row = off + m0 + m;
        ${gu ? `let rg = select(o, 2u * o, ${v.interleaved}); let ru = select(o + u.${nout}, 2u * o + 1u, ${v.interleaved});` : 'let rg = o;'}
        ${storeWgsl(v, names)}`;
  const reduction = Array.from({ length: passes }, (_, ps) => {
    const pv = vals.slice(ps * ROWS_PASS, (ps + 1) * ROWS_PASS);
    return `    // reduction pass ${ps}: outputs (row, token) ${ps * perPass}..${ps * perPass + pv.length / parts.length - 1}
${pv.map((n, q) => `    red[(g * ${ROWS_PASS}u + ${q}u) * ${LANES}u + lane] = ${n};`).join('\n')}
    workgroupBarrier();
    if (${KS === 1 ? '' : 'ks == 0u && '}lane < ${pv.length / parts.length}u) {
      let j = ${ps * perPass}u + lane;
      let r = j / ${MRv}u;
      let m = j % ${MRv}u;
      let o = ob + r;
      if (o < u.${nout}${cmb ? '' : ' && m0 + m < cnt'}) {
${KS === 1 ? sumOver('g') : `        var sg = 0.0;${gu ? ' var su = 0.0;' : ''}
        for (var s = 0u; s < ${KS}u; s++) {
  ${sumOver(`og * ${KS}u + s`, false)}
        }`}
        ${store}
      }
    }
    workgroupBarrier();`;
  }).join('\n');
  // v.xr: a fixed-order tree over each output block's KS * 32 lanes (thread tid = g * 32 + lane; block b's lanes are
  // threads b * LK ..): each pass writes up to ROWS_PASS values per thread; a first-level thread sums XR_SEGMENT
  // entries of one value, lanes LK / XR_SEGMENT apart in its block, a second-level thread one output's segments of its
  // block, in order
  const NB = GROUPS / KS;
  const SEGS = (GROUPS * LANES) / XR_SEGMENT;
  const segsPerBlock = LK / XR_SEGMENT;
  const xrReduction = Array.from({ length: passes }, (_, ps) => {
    const pv = vals.slice(ps * ROWS_PASS, (ps + 1) * ROWS_PASS);
    const PO = pv.length / parts.length;
    return `    // reduction pass ${ps}: outputs ${ps * perPass}..${ps * perPass + PO - 1} of each block
${pv.map((n, q) => `    red[${q * GROUPS * LANES}u + tid] = ${n};`).join('\n')}
    workgroupBarrier();
    if (tid < ${pv.length * SEGS}u) {
      let q = tid / ${SEGS}u; let sgm = tid % ${SEGS}u;
      // segment sgm of block b: its lanes sp, sp + W, ... (W = the block's segments: adjacent threads, adjacent words)
      let lb = q * ${GROUPS * LANES}u + (sgm / ${segsPerBlock}u) * ${LK}u + sgm % ${segsPerBlock}u;
      var t8 = 0.0;
      for (var i = 0u; i < ${XR_SEGMENT}u; i++) { t8 += red[lb + i * ${segsPerBlock}u]; }
      red2[q * ${SEGS}u + sgm] = t8;
    }
    workgroupBarrier();
    if (tid < ${NB * PO}u) {
      let b = tid / ${PO}u; let jo = tid % ${PO}u;
      let o = (${block} * ${NB}u + b) * ${RO}u + ${ps * perPass}u + jo;
      let m = 0u;
      if (o < u.${nout}) {
        var sg = 0.0;${gu ? ' var su = 0.0;' : ''}
        for (var i = 0u; i < ${segsPerBlock}u; i++) { sg += red2[jo * ${parts.length * SEGS}u + b * ${segsPerBlock}u + i];${gu ? ` su += red2[(jo * 2u + 1u) * ${SEGS}u + b * ${segsPerBlock}u + i];` : ''} }
        ${store}
      }
    }
    workgroupBarrier();`;
  }).join('\n');
  const lead = `
  let lane = lid.x;
  let g = lid.y;
${KS === 1 ? `  let ob = (${block} * ${GROUPS}u + g) * ${RO}u;` : `  let og = g / ${KS}u; let ks = g % ${KS}u; let kl = ks * ${LANES}u + lane;
  let ob = (${block} * ${GROUPS / KS}u + og) * ${RO}u;`}
  let nch = u.cols / ${CW}u;${v.xr ? `\n  let tid = g * ${LANES}u + lane;` : ''}
${rowIdx}`;
  const body = cmb
    ? /* wgsl */ `${lead}
  // token t = wid.y: its k slots (expert Idx[p], input row Pos[p] of the grouped rows) summed into one accumulator
  let t = wid.y;
${accDecls('  ')}
  for (var js = 0u; js < u.k; js++) {
    let p = t * u.k + js;
    let e = Idx[p];${weighted ? '\n    let wt = WT[p];' : ''}
    let xq0 = (Pos[p] * u.cols) >> 2u;
${rowBases('    ')}
${pass}
  }
${nanRows('  ')}
${reduction}
`
    : /* wgsl */ `${lead}
${rowBases('  ')}
  for (var m0 = 0u; m0 < cnt; m0 += ${MRv}u) {
${ms.map((m) => `    let xq${m} = (${gu ? `(Order[off + min(m0 + ${m}u, cnt - 1u)] / u.k)` : `(off + min(m0 + ${m}u, cnt - 1u))`} * u.cols) >> 2u;`).join('\n')}
${accDecls('    ')}
${pass}
${nanRows('    ')}
${v.xr ? xrReduction : reduction}
  }
`;
  return { head, body, tail: '}\n' };
}

