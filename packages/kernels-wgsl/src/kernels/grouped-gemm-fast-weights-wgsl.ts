/**
 * The weight access of the fast grouped GEMMs' staging step, one snippet per
 * storage format: the weight bindings (codes WQ, packed formats' scales WSC,
 * int zero points WZ), `wload(e, row, col)` (one vector load of V consecutive
 * values of a row and, packed, their scale) and `wdec(raw) -> array<f32, V>`
 * (the decoded f32 values: packed ones code x scale, the reference's order of
 * operations). The decoders are the shared ones of wgsl.ts (bf16 / f16 pairs,
 * fp8 bit arithmetic, fp4 / int codes).
 *
 * Two load widths for packed formats (FastGemmVariant.wide): 8 values per load
 * (the codes in one u32 or vec2<u32>, the register-blocked kernels and the
 * subgroup-matrix kernel by default when the format does not allow wide loads)
 * or 16 bytes of codes per load (16 fp8 / int8 or 32 int4 / fp4 values, one
 * scale: fewer loads, scale lookups and index divisions per staged value).
 * Both decode every value to the same f32 (bit-identical staged tiles).
 */
import type { BindingDecl } from '../runtime/kernel.js';
import { BF16_TO_F16_WGSL, BF16_UNPACK_WGSL, FP8_DECODE_BITS_WGSL, PACKED_CODE_WGSL, loadFn } from '../wgsl.js';
import { intZeroWgsl } from './grouped-gemm-wgsl.js';
import { NAN_FLAG_BITS, ROWS_CODECS, V8_WGSL } from './moe-gemv-snippets.js';
import type { FastGemmVariant } from './grouped-gemm-fast-shapes.js';

type Wf = FastGemmVariant['wf'];

/** Whether a format is packed (codes plus scales). */
export function isPackedFormat(wf: Wf): boolean {
  return wf !== 'float32' && wf !== 'bfloat16' && wf !== 'float16';
}

/** Bits per code of a packed format. */
function codeBits(wf: Wf): 4 | 8 {
  return wf === 'int4' || wf === 'mxfp4' ? 4 : 8;
}

/**
 * Values per weight load of a variant: 4 (f32 in vec4<f32>), 8 (bf16/f16 in vec4<u32>; packed: the codes of 8
 * values and their scale), or with `wide` packed weights 16 bytes of codes (16 8-bit or 32 4-bit values).
 */
export function fastVpl(v: Pick<FastGemmVariant, 'wf' | 'wide'>): number {
  if (v.wf === 'float32') return 4;
  if (v.wide && isPackedFormat(v.wf)) return 128 / codeBits(v.wf);
  return 8;
}

/** WGSL type of the raw weight registers (what wload returns and wdec takes). */
export function rawType(v: Pick<FastGemmVariant, 'wf' | 'wide'>): string {
  if (v.wf === 'float32') return 'vec4<f32>';
  return v.wide && isPackedFormat(v.wf) ? 'WRaw' : 'vec4<u32>';
}

/** Weight storage bindings of a variant: the codes (WQ), for packed formats their scales (WSC), and int zero points (WZ). */
export function weightBindings(v: FastGemmVariant): BindingDecl[] {
  const read = (name: string, type: string): BindingDecl => ({ name, type, access: 'read' });
  const wide = !!v.wide && isPackedFormat(v.wf);
  const codes = (narrow: string) => read('WQ', wide ? 'array<vec4<u32>>' : narrow);
  const intScales = read('WSC', v.sd === 'float16' ? 'array<u32>' : 'array<f32>');
  const b: BindingDecl[] = [];
  switch (v.wf) {
    case 'float32':
      b.push(read('WQ', 'array<vec4<f32>>'));
      break;
    case 'bfloat16':
    case 'float16':
      b.push(read('WQ', 'array<vec4<u32>>'));
      break;
    case 'fp8_e4m3':
    case 'fp8_e5m2':
      b.push(codes('array<vec2<u32>>'), read('WSC', 'array<f32>'));
      break;
    case 'int8':
      b.push(codes('array<vec2<u32>>'), intScales);
      break;
    case 'int4':
      b.push(codes('array<u32>'), intScales);
      break;
    case 'mxfp4':
      b.push(codes('array<u32>'), read('WSC', 'array<u32>'));
      break;
  }
  if (v.zp) b.push(read('WZ', 'array<u32>'));
  return b;
}

/**
 * The dispatch's weight buffers by binding name: weightLayout's buffers (codes, then scales, then zero points) under the
 * names weightBindings declares, in the same order.
 */
export function weightBind(v: FastGemmVariant, buffers: readonly GPUBuffer[]): Record<string, GPUBuffer> {
  const names = weightBindings(v).map((b) => b.name);
  if (names.length !== buffers.length) throw new Error(`grouped_gemm_fast: ${v.wf} weights take ${names.length} buffers (${names.join(', ')}), got ${buffers.length}`);
  return Object.fromEntries(names.map((n, i) => [n, buffers[i]]));
}

/**
 * The per-format weight access of the staging step (see the file comment). Element index
 * (e * wRows + row) * K + col: with K % V == 0 (checked by the planner) the values start on a boundary of their load's
 * size, so each load is one aligned vector. The V values never straddle a scale block (planFastGemm checks), so one
 * scale serves them.
 */
export function weightAccessWgsl(v: FastGemmVariant): string {
  const V = fastVpl(v);
  const raw = rawType(v);
  const wide = raw === 'WRaw';
  const idx = `(e * u.wRows + row) * u.K + col`;
  // a row or column index over a scale block's size (the uniform u.<by>): a shift by its log2 with blockShifts
  const per = (i: string, by: string) => (v.blockShifts ? `(${i} >> u.${by})` : `${i} / u.${by}`);
  // Codes: element index >> log2(values per vector of WQ).
  const codeIndex = (valuesPerVector: number) => `(${idx}) >> ${Math.log2(valuesPerVector)}u`;
  const load = (body: string) => `fn wload(e: u32, row: u32, col: u32) -> ${raw} { ${body} }`;
  // Packed: codes q (a u32, vec2<u32>, or 16 bytes), scale s (f32 bits; MXFP4: the e8m0 byte), zero-point shift z (f32 bits).
  const packed = (q: string, s: string, z = '0u') =>
    wide ? load(`return WRaw(${q}, vec2<u32>(${s}, ${z}));`) : load(codeBits(v.wf) === 4 ? `return vec4<u32>(${q}, 0u, ${s}, ${z});` : `let q = ${q}; return vec4<u32>(q, ${s}, ${z});`);
  // Code i of the raw registers: byte or nibble i of the codes (w.q or w.xy / w.x).
  const words = wide ? 'w.q' : 'w';
  const code = (i: number) =>
    codeBits(v.wf) === 8 ? `((${words}[${i >> 2}] >> ${(i % 4) * 8}u) & 0xffu)` : `((${words}[${i >> 3}] >> ${(i % 8) * 4}u) & 15u)`;
  const scale = wide ? 'w.s.x' : 'w.z';
  const zshift = wide ? 'w.s.y' : 'w.w';
  const unrolled = (value: (i: number) => string) => `array<f32, ${V}>(${Array.from({ length: V }, (_, i) => value(i)).join(', ')})`;
  const dec = (prelude: string, value: (i: number) => string) => `fn wdec(w: ${raw}) -> array<f32, ${V}> { ${prelude} return ${unrolled(value)}; }`;
  const wideDecl = wide ? 'struct WRaw { q: vec4<u32>, s: vec2<u32>, }\n' : '';
  switch (v.wf) {
    case 'float32':
      return `${load(`return WQ[${codeIndex(4)}];`)}
fn wdec(w: vec4<f32>) -> array<f32, 4> { return array<f32, 4>(w.x, w.y, w.z, w.w); }`;
    case 'bfloat16':
    case 'float16': {
      const pair = v.wf === 'bfloat16' ? 'unpack2x16bf16' : 'unpack2x16float';
      return `${v.wf === 'bfloat16' ? BF16_UNPACK_WGSL : ''}
${load(`return WQ[${codeIndex(8)}];`)}
fn wdec(w: vec4<u32>) -> array<f32, 8> { let a = ${pair}(w.x); let b = ${pair}(w.y); let c = ${pair}(w.z); let d = ${pair}(w.w); return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y); }`;
    }
    case 'fp8_e4m3':
    case 'fp8_e5m2': {
      // wa = scale blocks along rows, wb = along cols, wc = block rows, wd = block cols.
      const fp8 = v.wf === 'fp8_e4m3' ? 'decode_e4m3_bits' : 'decode_e5m2_bits';
      return `${FP8_DECODE_BITS_WGSL}
${wideDecl}${packed(`WQ[${codeIndex(wide ? 16 : 8)}]`, `bitcast<u32>(WSC[(e * u.wa + ${per('row', 'wc')}) * u.wb + ${per('col', 'wd')}])`)}
${dec(`let s = bitcast<f32>(${scale});`, (i) => `${fp8}${code(i)} * s`)}`;
    }
    case 'int8':
    case 'int4': {
      // wa = scale blocks per row, wb = block size. With zp: the zero point's shift from 8 / 128 (f32 bits, wzshift).
      const four = v.wf === 'int4';
      const codes = `WQ[${codeIndex(wide ? (four ? 32 : 16) : 8)}]`;
      const value = (i: number) => `(${four ? 'decode_int4' : 'decode_int8'}${code(i)}${v.zp ? ' - z' : ''}) * s`;
      return `${PACKED_CODE_WGSL}
${loadFn('wscale', 'WSC', v.sd === 'float16' ? 'float16' : 'float32')}
${intZeroWgsl(v)}
${wideDecl}${load(`let si = (e * u.wRows + row) * u.wa + ${per('col', 'wb')}; ${wide ? `return WRaw(${codes}, vec2<u32>(bitcast<u32>(wscale(si)), ${v.zp ? 'bitcast<u32>(wzshift(si))' : '0u'}));` : `return vec4<u32>(${four ? `vec2<u32>(${codes}, 0u)` : codes}, bitcast<u32>(wscale(si)), ${v.zp ? 'bitcast<u32>(wzshift(si))' : '0u'});`}`)}
${dec(`let s = bitcast<f32>(${scale});${v.zp ? ` let z = bitcast<f32>(${zshift});` : ''}`, value)}`;
    }
    case 'mxfp4':
      // wa = scale bytes per row (K / 32).
      return `${PACKED_CODE_WGSL}
${loadFn('wexp', 'WSC', 'uint8')}
${wideDecl}${packed(`WQ[${codeIndex(wide ? 32 : 8)}]`, `u32(wexp((e * u.wRows + row) * u.wa + (col >> 5u)))`)}
${dec(`let x = i32(${scale}) - 127;`, (i) => `ldexp(decode_fp4${code(i)}, x)`)}`;
  }
}

/**
 * f16 staging of 16-bit dense weights (the subgroup-matrix kernel): `wdech(raw: vec4<u32>) -> vec4<u32>`, the 8 values
 * of wload as 4 words of f16 pairs, the same bits as f16() of wdec's values: f16 weights are their raw words (no
 * round trip through f32), bf16 pairs are rebiased by bf16x2_to_f16x2 (BF16_TO_F16_WGSL). Empty for other formats.
 */
export function halfPairsWgsl(v: Pick<FastGemmVariant, 'wf'>): string {
  if (v.wf === 'float16') return 'fn wdech(w: vec4<u32>) -> vec4<u32> { return w; }';
  if (v.wf !== 'bfloat16') return '';
  return `${BF16_TO_F16_WGSL}
fn wdech(w: vec4<u32>) -> vec4<u32> { return vec4<u32>(bf16x2_to_f16x2(w.x), bf16x2_to_f16x2(w.y), bf16x2_to_f16x2(w.z), bf16x2_to_f16x2(w.w)); }`;
}

/**
 * f16 staging of packed weights (the subgroup-matrix kernel, unless `vdec`): `wdecq(raw) -> array<vec4<u32>, V / 8>`,
 * the V values of wload as f16 pairs (element e: values 8e..8e+7, two per word, the lower value in the low half),
 * the same bits as f16() of wdec's values. A word of codes is decoded by the decode GEMV's exact bit arithmetic
 * (ROWS_CODECS: no integer -> float conversion, no per-value selects), four or eight values at a time, then scaled
 * in f32 and rounded to f16 two at a time:
 * - fp8 e4m3: the codes as f16 bit patterns at 2^-8 of their value (subnormals as f16 subnormals), scaled by
 *   256 x the block scale; a load holding a NaN code (S.1111.111, found by two integer operations a word) is decoded
 *   again with NaN's exponent or-ed into those codes' halves (a branch weights without NaN never take);
 * - fp8 e5m2: the high byte of an f16 (inf and NaN included), times the scale;
 * - int8 / int4: code minus zero point (8 / 128, or the stored one), exactly, by one fma each, times the scale;
 * - MXFP4: e2m1 codes as f16 patterns at 2^-14, times 2^(exponent + 14) (at most 2^127: products past f16's
 *   range stay out of it, zero codes stay zero).
 * Every product is the reference's code x scale in f32 (the factors are exact powers of two), so the staged
 * tiles equal wdec's rounded to f16 (packed-staging.gpu.test.ts checks every code). Empty for other formats.
 */
export function packedHalfPairsWgsl(v: Pick<FastGemmVariant, 'wf' | 'wide' | 'zp' | 'vdec'>): string {
  if (!isPackedFormat(v.wf) || v.vdec) return '';
  const codec = ROWS_CODECS[v.wf];
  if (!codec) throw new Error(`grouped_gemm_fast: no f16 pair staging for ${v.wf}`);
  const V = fastVpl(v);
  const wide = rawType(v) === 'WRaw';
  const four = codeBits(v.wf) === 4;
  const words = wide ? ['w.q.x', 'w.q.y', 'w.q.z', 'w.q.w'] : four ? ['w.x'] : ['w.x', 'w.y'];
  if (words.length * (four ? 8 : 4) !== V) throw new Error(`grouped_gemm_fast: ${words.length} code words for ${V} values`);
  const sBits = wide ? 'w.s.x' : 'w.z';
  const zBits = wide ? 'w.s.y' : 'w.w';
  // hpw(c, s, z): the 4 (8-bit) or 8 (4-bit) values of code word c as f16 pairs. s: the scale times the decoder's unit
  // (the power of two its bit placement divides by; MXFP4: the block's 2^exponent, at most 2^127), z: the int formats'
  // zero-point shift, d: the decoded values times 1 / unit.
  const h2 = 'fn h2(a: vec2<f32>) -> u32 { return bitcast<u32>(vec2<f16>(a)); }';
  const zArg = v.wf === 'int8' ? codec.zoff!('128.0 + z') : v.wf === 'int4' ? codec.zoff!('8.0 + z') : 'vec4<f32>()';
  // e4m3: the bit placement turns NaN codes (S.1111.111) into finite halves. wdecq stages the load's words without
  // looking at them, then checks the whole load for NaN codes (two integer operations a word: ROWS_CODECS' nanw) and
  // only where one is found (never, for weights without NaN) decodes the load again through hpwn, which or-s NaN's
  // exponent into the halves of NaN codes (nanb flags each such byte at its bit 7, exactly).
  const e4m3 = v.wf === 'fp8_e4m3';
  const nanFns = e4m3
    ? `// bit 7 of each byte of the result: that code byte is NaN (its low 7 bits all ones); exact per byte (no borrows across bytes)
fn nanb(c: u32) -> u32 { let u = (c & 0x7f7f7f7fu) ^ 0x7f7f7f7fu; return ~((u + 0x7f7f7f7fu) | u) & 0x80808080u; }
${codec.nan}
// hpw with the halves of NaN codes made NaN (0x7e00: exponent all ones, a mantissa bit)
fn hpwn(c: u32, s: f32, z: f32) -> vec2<u32> {
  let m = nanb(c);
  let nh = vec2<u32>((((m >> 7u) & 1u) * 0x7e00u) | (((m >> 15u) & 1u) * 0x7e000000u), (((m >> 23u) & 1u) * 0x7e00u) | ((m >> 31u) * 0x7e000000u));
  return hpw(c, s, z) | nh;
}`
    : '';
  if (e4m3 && !codec.nan) throw new Error('grouped_gemm_fast: the e4m3 codec has no NaN flag function');
  const hpw = four
    ? `fn hpw(c: u32, s: f32, z: f32) -> vec4<u32> {
  let d = dw(c, ${zArg});
  let lo = d.lo * s; let hi = d.hi * s;
  return vec4<u32>(h2(lo.xy), h2(lo.zw), h2(hi.xy), h2(hi.zw));
}`
    : `fn hpw(c: u32, s: f32, z: f32) -> vec2<u32> {
  let d = dw(c, ${zArg}) * s;
  return vec2<u32>(h2(d.xy), h2(d.zw));
}`;
  const scaleBits = `bitcast<f32>(${sBits})`;
  const scale =
    v.wf === 'mxfp4' ? `ldexp(1.0, min(i32(${sBits}) - ${127 - Math.log2(codec.unit)}, 127))` : codec.unit === 1 ? scaleBits : `${scaleBits} * ${codec.unit}.0`;
  const z = v.zp ? `bitcast<f32>(${zBits})` : '0.0';
  const NQ = V / 8;
  // Element e of the result: one 4-bit word, or two 8-bit words (through hpw, or hpwn for the load with a NaN code).
  const elems = (f: string) => Array.from({ length: NQ }, (_, e) => (four ? `${f}(${words[e]}, s, z)` : `vec4<u32>(${f}(${words[2 * e]}, s, z), ${f}(${words[2 * e + 1]}, s, z))`));
  const body = e4m3
    ? `if ((${words.map((w) => `nanw(${w})`).join(' | ')}) & ${NAN_FLAG_BITS}) != 0u { return array<vec4<u32>, ${NQ}>(${elems('hpwn').join(', ')}); }
  return array<vec4<u32>, ${NQ}>(${elems('hpw').join(', ')});`
    : `return array<vec4<u32>, ${NQ}>(${elems('hpw').join(', ')});`;
  return `${four ? V8_WGSL : ''}
${codec.wgsl}
${h2}
${hpw}
${nanFns}
fn wdecq(w: ${rawType(v)}) -> array<vec4<u32>, ${NQ}> {
  let s = ${scale};
  let z = ${z};
  ${body}
}`;
}