/**
 * How the grouped GEMMs (tiled, grouped-gemm-wgsl.ts; fast, grouped-gemm-fast*.ts)
 * read expert weights: the storage formats, the bindings and uniforms of a
 * weight container, and the WGSL that decodes its values (element by element
 * or a u32 word at a time) inside the tile loads.
 */
import { uniformFields, type BindingDecl, type UniformField } from '../runtime/kernel.js';
import { FP8_DECODE_WGSL, PACKED_CODE_WGSL } from '../wgsl.js';
import type { ExpertWeightsGpu } from './moe-types.js';
import type { ExpertDims } from './expert-weights.js';

/** Weight storage formats the GEMM decodes in its tile loads. @example `const wf: WeightFormat = 'mxfp4'` */
export type WeightFormat = 'float32' | 'bfloat16' | 'float16' | 'fp8_e4m3' | 'fp8_e5m2' | 'mxfp4' | 'int4' | 'int8';

/** What the weight WGSL depends on: the storage format, the int scale dtype and zero points. */
export interface WeightVariant {
  wf: WeightFormat;
  sd: 'float32' | 'float16' | 'none';
  zp?: boolean;
}

/** Values per u32 word of each storage format. */
export const WORD_VALUES: Readonly<Record<WeightFormat, number>> = Object.freeze({ float32: 1, bfloat16: 2, float16: 2, fp8_e4m3: 4, fp8_e5m2: 4, mxfp4: 8, int4: 8, int8: 4 });

/** How a weight container is bound and addressed: see {@link weightLayout}. */
export interface WeightLayout {
  wf: WeightFormat;
  /** Dtype of int_block scales ('none' otherwise). */
  sd: 'float32' | 'float16' | 'none';
  /** int_block zero points present (a WZ binding). */
  zp: boolean;
  /** The weight bindings by name (those of {@link weightBindings}): codes WQ, then scales WS and zero points WZ where the format has them. */
  bind: { WQ: GPUBuffer; WS?: GPUBuffer; WZ?: GPUBuffer };
  /** The weight uniforms by name ({@link WEIGHT_UNIFORMS}). */
  params: { wa: number; wb: number; wc: number; wd: number };
  /** `bind` in binding order and `params` in field order, for the fast kernels' positional lists (grouped-gemm-fast.ts). */
  buffers: GPUBuffer[];
  wu: [number, number, number, number];
}

/**
 * How the weight WGSL of the grouped GEMMs (tiled and fast) reads a weight
 * container: its storage format, the dtype of int_block scales, whether it
 * has int_block zero points, its bindings (codes WQ, scales WS, zero points
 * WZ) and the four weight uniforms wa..wd (fp8: scale blocks along rows,
 * along cols, block rows, block cols; mxfp4: scale bytes per row; int: scale
 * blocks per row, block size).
 * @example `const { wf, bind, params } = weightLayout(w, { rows: 2 * I, cols: H })`
 */
export function weightLayout(w: ExpertWeightsGpu, d: Pick<ExpertDims, 'rows' | 'cols'>): WeightLayout {
  const layout = (wf: WeightFormat, sd: WeightLayout['sd'], bind: WeightLayout['bind'], wu: WeightLayout['wu']): WeightLayout => {
    const buffers = [bind.WQ, ...(bind.WS ? [bind.WS] : []), ...(bind.WZ ? [bind.WZ] : [])];
    return { wf, sd, zp: !!bind.WZ, bind, params: { wa: wu[0], wb: wu[1], wc: wu[2], wd: wu[3] }, buffers, wu };
  };
  switch (w.kind) {
    case 'dense':
      return layout(w.w.dtype as WeightFormat, 'none', { WQ: w.w.buffer }, [0, 0, 0, 0]);
    case 'fp8_block': {
      const [br, bc] = w.block;
      return layout(w.q.dtype === 'float8_e4m3fn' ? 'fp8_e4m3' : 'fp8_e5m2', 'none', { WQ: w.q.buffer, WS: w.scaleInv.buffer }, [Math.ceil(d.rows / br), Math.ceil(d.cols / bc), br, bc]);
    }
    case 'mxfp4':
      return layout('mxfp4', 'none', { WQ: w.blocks.buffer, WS: w.scales.buffer }, [d.cols / 32, 0, 0, 0]);
    case 'int_block': {
      const bind: WeightLayout['bind'] = { WQ: w.q.buffer, WS: w.scales.buffer };
      if (w.zeros) bind.WZ = w.zeros.buffer;
      return layout(w.bits === 4 ? 'int4' : 'int8', w.scales.dtype as 'float32' | 'float16', bind, [Math.ceil(d.cols / w.blockSize), w.blockSize, 0, 0]);
    }
  }
}

/**
 * The weight uniforms of `layout` for a staging step that indexes scales by shifts (FastGemmVariant.blockShifts): where
 * a packed format's scale blocks are powers of two along the axes it divides by (fp8 blocks: block rows wc and block
 * cols wd; int blocks: the block size wb), those uniforms become their log2 and `shifts` is true; otherwise (dense,
 * MXFP4, which shifts by its fixed 32 already, and blocks of other sizes) the uniforms as they are and `shifts` false.
 * @example `blockShiftUniforms(weightLayout(fp8With128x128Blocks, d)).wu // [wa, wb, 7, 7]`
 */
export function blockShiftUniforms(layout: Pick<WeightLayout, 'wf' | 'wu'>): { shifts: boolean; wu: [number, number, number, number] } {
  const [wa, wb, wc, wd] = layout.wu;
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if ((layout.wf === 'fp8_e4m3' || layout.wf === 'fp8_e5m2') && pow2(wc) && pow2(wd)) return { shifts: true, wu: [wa, wb, Math.log2(wc), Math.log2(wd)] };
  if ((layout.wf === 'int4' || layout.wf === 'int8') && pow2(wb)) return { shifts: true, wu: [wa, Math.log2(wb), wc, wd] };
  return { shifts: false, wu: [wa, wb, wc, wd] };
}

/** The weight uniforms (u32) that {@link weightLayout} fills and the weight WGSL reads: wa, wb, wc, wd. */
export const WEIGHT_UNIFORMS: readonly UniformField[] = uniformFields('u32', 'wa', 'wb', 'wc', 'wd');

/**
 * The weight bindings of a format (read-only, in this order): WQ (codes: f32
 * for float32 weights, else u32 words), WS (scales: packed formats; u32 words
 * for mxfp4's e8m0 bytes and f16 int scales, else f32) and WZ (int zero points).
 */
export function weightBindings(v: WeightVariant): BindingDecl[] {
  const read = (name: string, type: string): BindingDecl => ({ name, type, access: 'read' });
  const b = [read('WQ', v.wf === 'float32' ? 'array<f32>' : 'array<u32>')];
  if (v.wf !== 'float32' && v.wf !== 'bfloat16' && v.wf !== 'float16') b.push(read('WS', v.wf === 'mxfp4' || v.sd === 'float16' ? 'array<u32>' : 'array<f32>'));
  if (v.zp) b.push(read('WZ', 'array<u32>'));
  return b;
}

/**
 * With `zp`: `fn wzshift(i: u32) -> f32`, how far the zero point of scale
 * block i (byte i of WZ) lies above the fixed one of decode_int4 / decode_int8
 * (8 / 128), so that decode_int*(c) - wzshift(i) = c - zero.
 */
export function intZeroWgsl(v: { wf: WeightFormat; zp?: boolean }): string {
  if (!v.zp) return '';
  if (v.wf !== 'int4' && v.wf !== 'int8') throw new Error(`grouped_gemm: zero points with ${v.wf} weights`);
  return `fn wzshift(i: u32) -> f32 { return f32((WZ[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu) - ${v.wf === 'int4' ? '8.0' : '128.0'}; }`;
}

/**
 * The tiled GEMM's element loads: `fn wld(e, row, col) -> f32` (weight `row`, input channel `col` of expert `e`,
 * decoded from its storage format and scaled), with the scale and zero-point helpers it needs.
 */
export function weightWgsl(v: WeightVariant): string {
  const byte = (buf: string, i: string) => `((${buf}[(${i}) >> 2u] >> (((${i}) & 3u) * 8u)) & 0xffu)`;
  const scale =
    v.sd === 'float16'
      ? `fn wscale(i: u32) -> f32 { let s = unpack2x16float(WS[i >> 1u]); return select(s.x, s.y, (i & 1u) == 1u); }`
      : `fn wscale(i: u32) -> f32 { return WS[i]; }`;
  switch (v.wf) {
    case 'float32':
      return `fn wld(e: u32, row: u32, col: u32) -> f32 { return WQ[(e * u.wRows + row) * u.K + col]; }`;
    case 'bfloat16':
      return `fn wld(e: u32, row: u32, col: u32) -> f32 { let i = (e * u.wRows + row) * u.K + col; let w = WQ[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`;
    case 'float16':
      return `fn wld(e: u32, row: u32, col: u32) -> f32 { let i = (e * u.wRows + row) * u.K + col; let h = unpack2x16float(WQ[i >> 1u]); return select(h.x, h.y, (i & 1u) == 1u); }`;
    case 'fp8_e4m3':
    case 'fp8_e5m2':
      // wa = blocks along rows, wb = blocks along cols, wc = block rows, wd = block cols.
      return `${FP8_DECODE_WGSL}
fn wld(e: u32, row: u32, col: u32) -> f32 {
  let i = (e * u.wRows + row) * u.K + col;
  let q = ${v.wf === 'fp8_e4m3' ? 'decode_e4m3' : 'decode_e5m2'}(${byte('WQ', 'i')});
  return q * WS[(e * u.wa + row / u.wc) * u.wb + col / u.wd];
}`;
    case 'mxfp4':
      // wa = cols / 32 (scale bytes per row).
      return `${PACKED_CODE_WGSL}
fn wld(e: u32, row: u32, col: u32) -> f32 {
  let er = e * u.wRows + row;
  let bi = er * (u.K >> 1u) + (col >> 1u);
  let code = (${byte('WQ', 'bi')} >> ((col & 1u) * 4u)) & 15u;
  let si = er * u.wa + (col >> 5u);
  return ldexp(decode_fp4(code), i32(${byte('WS', 'si')}) - 127);
}`;
    case 'int8':
    case 'int4': {
      // wa = scale blocks per row, wb = blockSize. q = code - zero point (decode_int*: the fixed one, plus wzshift with zp).
      const code =
        v.wf === 'int8'
          ? `let i = er * u.K + col; let q = decode_int8(${byte('WQ', 'i')})`
          : `let bi = er * (u.K >> 1u) + (col >> 1u); let q = decode_int4(${byte('WQ', 'bi')} >> ((col & 1u) * 4u))`;
      return `${PACKED_CODE_WGSL}
${scale}
${intZeroWgsl(v)}
fn wld(e: u32, row: u32, col: u32) -> f32 {
  let er = e * u.wRows + row;
  let si = er * u.wa + col / u.wb;
  ${code}${v.zp ? ' - wzshift(si)' : ''};
  return q * wscale(si);
}`;
    }
  }
}

/** `fn wvec(e, row, col0) -> array<f32, V>`: the V weights of one aligned u32 word (col0 % V == 0, cols % V == 0). */
export function wordWgsl(v: WeightVariant & { vec: number; s1: boolean }): string {
  const V = v.vec;
  const head = `fn wvec(e: u32, row: u32, col0: u32) -> array<f32, ${V}> {\n  let er = e * u.wRows + row;\n  var o: array<f32, ${V}>;`;
  switch (v.wf) {
    case 'bfloat16':
      return `${head}\n  let w = WQ[(er * u.K + col0) >> 1u];\n  o[0] = bitcast<f32>(w << 16u);\n  o[1] = bitcast<f32>(w & 0xffff0000u);\n  return o;\n}`;
    case 'float16':
      return `${head}\n  let h = unpack2x16float(WQ[(er * u.K + col0) >> 1u]);\n  o[0] = h.x;\n  o[1] = h.y;\n  return o;\n}`;
    case 'fp8_e4m3':
    case 'fp8_e5m2': {
      const dec = v.wf === 'fp8_e4m3' ? 'decode_e4m3' : 'decode_e5m2';
      const sbase = `(e * u.wa + row / u.wc) * u.wb`;
      const sc = v.s1 ? `let s = WS[${sbase} + col0 / u.wd];` : `let sb = ${sbase};`;
      const si = v.s1 ? 's' : `WS[sb + (col0 + i) / u.wd]`;
      return `${head}\n  let w = WQ[(er * u.K + col0) >> 2u];\n  ${sc}\n  for (var i = 0u; i < 4u; i++) { o[i] = ${dec}((w >> (i * 8u)) & 0xffu) * ${si}; }\n  return o;\n}`;
    }
    case 'mxfp4':
      return `${head}\n  let w = WQ[(er * (u.K >> 1u) + (col0 >> 1u)) >> 2u];\n  let sidx = er * u.wa + (col0 >> 5u);\n  let sx = i32((WS[sidx >> 2u] >> ((sidx & 3u) * 8u)) & 0xffu) - 127;\n  for (var i = 0u; i < 8u; i++) { o[i] = ldexp(decode_fp4((w >> (i * 4u)) & 15u), sx); }\n  return o;\n}`;
    case 'int4':
    case 'int8': {
      const four = v.wf === 'int4';
      const word = four ? `WQ[(er * (u.K >> 1u) + (col0 >> 1u)) >> 2u]` : `WQ[(er * u.K + col0) >> 2u]`;
      const sc = v.s1 ? `let s = wscale(er * u.wa + col0 / u.wb);${v.zp ? ` let z = wzshift(er * u.wa + col0 / u.wb);` : ''}` : `let sb = er * u.wa;`;
      const si = v.s1 ? 's' : `wscale(sb + (col0 + i) / u.wb)`;
      const zi = !v.zp ? '' : v.s1 ? ' - z' : ` - wzshift(sb + (col0 + i) / u.wb)`;
      const code = four ? `decode_int4(w >> (i * 4u))` : `decode_int8(w >> (i * 8u))`;
      return `${head}\n  let w = ${word};\n  ${sc}\n  for (var i = 0u; i < ${V}u; i++) { o[i] = (${code}${zi}) * ${si}; }\n  return o;\n}`;
    }
    case 'float32':
      throw new Error('grouped_gemm: float32 weights load element by element (vec 1)');
  }
}
