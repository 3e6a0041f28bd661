/**
 * The CPU kernels' dot product in WebAssembly SIMD (cpu-kernels.ts): a tiny
 * module assembled here, byte by byte (no build step, no binary file), with
 * two functions over its own memory:
 *   dot(x, w, n) -> f64 = sum over i < n of f32(x[i] * w[i]), summed in f64,
 * x and w f32 arrays at byte offsets x and w, and dot_bf16, the same with w
 * bf16 bit patterns (each widened into the high half of an f32: the exact
 * value, as decodeExpertRow gives it). Eight products per loop step (two
 * f32x4 multiplies) added into eight f32 sums; every 128 values (16
 * products per sum) those are widened and added into eight f64 sums. The
 * products are f32 (rounded once); the sums carry f32 rounding over 16
 * terms only, then f64 (the references sum every product in f64).
 * The module also decodes packed rows (int4, int8, MXFP4, e4m3: decodeBody).
 * Where WebAssembly or its SIMD is missing (`WebAssembly.validate` refuses
 * the module), {@link cpuSimd} is undefined and the CPU kernels keep their
 * JavaScript dot product.
 */

/** Unsigned LEB128 of a non-negative integer. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** A section: id, size, contents. */
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

// opcodes used (core and SIMD, the 0xfd prefix)
const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, localGet: 0x20, localSet: 0x21,
  unreachable: 0x00, select: 0x1b, i32Const: 0x41, i32Add: 0x6a, i32Shl: 0x74, i32LtS: 0x48, i32GtS: 0x4a, i32GeS: 0x4e, i32ShrU: 0x76, f32Load: 0x2a, i32Load16U: 0x2f, f32Mul: 0x94, f64Add: 0xa0,
  f64PromoteF32: 0xbb, f32ReinterpretI32: 0xbe, call: 0x10, i32Mul: 0x6c, f64Store: 0x39,
} as const;
/** local.get / local.set of local l. */
const get = (l: number) => [op.localGet, l];
const set = (l: number) => [op.localSet, l];
const simd = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];
const v128Load = (offset: number) => simd(0x00, 0, ...uleb(offset)); // align hint 2^0, byte offset
const v128Zero = simd(0x0c, ...new Array<number>(16).fill(0));
const f32x4Mul = simd(0xe6);
const f32x4Add = simd(0xe4);
/** Values per chunk of a dot product's f32 partial sums (16 products per lane) before they are added into its f64 sums. */
const CHUNK = 128;
const f64x2Add = simd(0xf0);
const f64x2PromoteLow = simd(0x5f);
const f64x2Lane = (lane: number) => simd(0x21, lane);
/** The high two f32 lanes moved to the low two (bytes 8..15, then 0..7). */
const highToLow = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);

const i32x4ExtendLowU16 = simd(0xa9);
const i32x4ExtendHighU16 = simd(0xaa);
const i32x4Shl = simd(0xab);
const i32x4Add = simd(0xae);

/** How a dot function reads its weights: f32 values, bf16 bit patterns (the high halves of f32s) or f16 ones. */
type WeightKind = 'f32' | 'bf16' | 'f16';

const i32x4LtS = simd(0x39);
const i32x4GtS = simd(0x3b);

/**
 * The body of `dot` over weights of `kind`. Locals: 0 x, 1 w, 2 n (params); 3 i; 4 s (f64); 5..8 acc0..3, 9 p, 10 wv
 * (v128).
 */
function dotBody(kind: WeightKind): number[] {
  const [X, W, N, I, LIM, S, A0, A1, A2, A3, P, WV, F0, F1, H, EM, NRM] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  // base + i * 2^shift, then a v128 load at byte offset `extra`
  const load = (base: number, shift: number, extra: number) => [...get(base), ...get(I), op.i32Const, shift, op.i32Shl, op.i32Add, ...v128Load(extra)];
  // f += p (four f32 sums)
  const add = (f: number) => [...get(f), ...get(P), ...f32x4Add, ...set(f)];
  // acc_a += widen(low two of f); acc_b += widen(high two of f)
  const flush = (f: number, a: number, b: number) => [
    ...get(a), ...get(f), ...f64x2PromoteLow, ...f64x2Add, ...set(a),
    ...get(b), ...get(f), ...get(f), ...highToLow, ...f64x2PromoteLow, ...f64x2Add, ...set(b),
  ];
  // f16 bit patterns (u32 lanes in local H) to f32 values, exact: normal codes rebiased in integers (+112 on the
  // exponent), exponent 31 (inf, NaN) to 255, subnormals as mantissa * 2^-24, then the sign
  const f16 = [
    ...get(H), ...i32x4Const(0x7fff), ...v128And, ...set(EM),
    ...get(EM), op.i32Const, 13, ...i32x4Shl, ...i32x4Const(112 << 23), ...i32x4Add,
    ...get(EM), ...i32x4Const(0x7bff), ...i32x4GtS, ...i32x4Const(0x7f800000), ...v128And, ...v128Or, ...set(NRM),
    ...get(EM), ...f32x4ConvertS32, ...i32x4Const(0x33800000), ...f32x4Mul,
    ...get(NRM), ...get(EM), ...i32x4Const(0x400), ...i32x4LtS, ...v128Bitselect,
    ...get(H), ...i32x4Const(0x8000), ...v128And, op.i32Const, 16, ...i32x4Shl, ...v128Or,
  ];
  // four 16-bit weights of wv (low or high half) as f32 values
  const half = (high: boolean) => [...get(WV), ...(high ? i32x4ExtendHighU16 : i32x4ExtendLowU16), ...(kind === 'f16' ? [...set(H), ...f16] : [op.i32Const, 16, ...i32x4Shl])];
  // f32 weights: p = x[i + 4j..] * w[i + 4j..]; 16-bit: eight weights in one load, widened four at a time
  const eight =
    kind === 'f32'
      ? [...load(X, 2, 0), ...load(W, 2, 0), ...f32x4Mul, ...set(P), ...add(F0), ...load(X, 2, 16), ...load(W, 2, 16), ...f32x4Mul, ...set(P), ...add(F1)]
      : [
          ...load(W, 1, 0), ...set(WV),
          ...load(X, 2, 0), ...half(false), ...f32x4Mul, ...set(P), ...add(F0),
          ...load(X, 2, 16), ...half(true), ...f32x4Mul, ...set(P), ...add(F1),
        ];
  // one weight as f32: a load, or a bf16 load shifted into the high half; f16 rows are a multiple of 8 long (the
  // callers' rule) and have no tail
  const oneWeight =
    kind === 'f32'
      ? [...get(W), ...get(I), op.i32Const, 2, op.i32Shl, op.i32Add, op.f32Load, 2, 0]
      : kind === 'bf16'
        ? [...get(W), ...get(I), op.i32Const, 1, op.i32Shl, op.i32Add, op.i32Load16U, 1, 0, op.i32Const, 16, op.i32Shl, op.f32ReinterpretI32]
        : [op.unreachable];
  const code = [
    ...v128Zero, ...set(A0), ...v128Zero, ...set(A1), ...v128Zero, ...set(A2), ...v128Zero, ...set(A3),
    // chunks of at most 128 values while eight remain: f32 sums inside a chunk, flushed into the f64 sums after it
    op.block, 0x40, op.loop, 0x40,
    ...get(I), op.i32Const, 8, op.i32Add, ...get(N), op.i32GtS, op.brIf, 1,
    ...get(I), op.i32Const, ...uleb(CHUNK), op.i32Add, ...get(N), ...get(I), op.i32Const, ...uleb(CHUNK), op.i32Add, ...get(N), op.i32LtS, op.select, ...set(LIM),
    ...v128Zero, ...set(F0), ...v128Zero, ...set(F1),
    op.block, 0x40, op.loop, 0x40,
    ...get(I), op.i32Const, 8, op.i32Add, ...get(LIM), op.i32GtS, op.brIf, 1,
    ...eight,
    ...get(I), op.i32Const, 8, op.i32Add, ...set(I), op.br, 0,
    op.end, op.end,
    ...flush(F0, A0, A1), ...flush(F1, A2, A3),
    op.br, 0,
    op.end, op.end,
    // s = the eight f64 partial sums
    ...get(A0), ...get(A2), ...f64x2Add, ...set(A0), ...get(A1), ...get(A3), ...f64x2Add, ...set(A1),
    ...get(A0), ...get(A1), ...f64x2Add, ...set(A0),
    ...get(A0), ...f64x2Lane(0), ...get(A0), ...f64x2Lane(1), op.f64Add, ...set(S),
    // the tail, one product at a time
    op.block, 0x40, op.loop, 0x40,
    ...get(I), ...get(N), op.i32GeS, op.brIf, 1,
    ...get(S),
    ...get(X), ...get(I), op.i32Const, 2, op.i32Shl, op.i32Add, op.f32Load, 2, 0,
    ...oneWeight,
    op.f32Mul, op.f64PromoteF32, op.f64Add, ...set(S),
    ...get(I), op.i32Const, 1, op.i32Add, ...set(I), op.br, 0,
    op.end, op.end,
    ...get(S), op.end,
  ];
  const locals = [3, 2, I32, 1, F64, 11, V128]; // 3 groups: 2 i32, 1 f64, 11 v128
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

const name = (n: string) => [n.length, ...n.split('').map((c) => c.charCodeAt(0))];

const v128Load64Zero = (offset: number) => simd(0x5d, 0, ...uleb(offset));
const v128Store = (offset: number) => simd(0x0b, 0, ...uleb(offset));
const v128Const = (bytes: readonly number[]) => simd(0x0c, ...bytes);
const v128And = simd(0x4e);
const v128Or = simd(0x50);
const i8x16Shuffle = (lanes: readonly number[]) => simd(0x0d, ...lanes);
const i8x16Swizzle = simd(0x0e);
const i8x16ShrU = simd(0x6d);
const i16x8ExtendLowU8 = simd(0x89);
const i16x8ExtendHighU8 = simd(0x8a);
const f32x4Splat = simd(0x13);
const f32x4Sub = simd(0xe5);
// signed: every converted value is below 2^8 (x86 has no unsigned conversion; V8 emulates it in ~8 instructions)
const f32x4ConvertS32 = simd(0xfa);
const i32x4Eq = simd(0x37);
const i32x4ShrU = simd(0xad);
const v128Bitselect = simd(0x52);
/** v128.const of four equal 32-bit lanes (little-endian). */
const i32x4Const = (u: number) => v128Const(Array.from({ length: 16 }, (_, i) => (u >>> (8 * (i % 4))) & 0xff));
/** v128.const of eight equal 16-bit lanes (little-endian). */
const i16x8Const = (u: number) => v128Const(Array.from({ length: 16 }, (_, i) => (u >>> (8 * (i % 2))) & 0xff));
const i16x8Eq = simd(0x2d);
const i16x8Shl = simd(0x8b);
const i16x8ShrU = simd(0x8d);
const i16x8Add = simd(0x8e);
const i16x8Mul = simd(0x95);
/**
 * The bf16 patterns of the 16 e2m1 codes' values doubled (0, 1, 2, 3, 4, 6, 8, 12; codes 8..15 negative, code 8 -0):
 * times an MXFP4 block's halved scale, the references' values.
 */
const MXFP4_POS_BF16 = [0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40c0, 0x4100, 0x4140];
const MXFP4_BF16 = [...MXFP4_POS_BF16, ...MXFP4_POS_BF16.map((b) => b | 0x8000)];
/** The bf16 patterns of e4m3's subnormals m * 2^-9 (m = 0..7; 0 for m = 0), little-endian, for a swizzle. */
const E4M3_SUB_BF16 = [0x0000, 0x3b00, 0x3b80, 0x3bc0, 0x3c00, 0x3c20, 0x3c40, 0x3c60].flatMap((b) => [b & 0xff, b >> 8]);

/** Packed formats the SIMD module decodes (16 values per step). */
export type SimdCodes = 'int4' | 'int8' | 'mxfp4' | 'e4m3';

/**
 * The body of `dec_<kind>(codes, sc, z, n, out, gs)`: n values (n % 16 == 0; one row or several rows back to back)
 * decoded to f32 at byte offset out, 16 per group g, from the codes at byte offset codes (int4 / MXFP4: two per byte,
 * low nibble first; int8: one per byte) with one f32 scale and (int formats) one f32 zero point per 16 << gs values
 * (groups g >> gs) at sc + 4 (g >> gs) and z + 4 (g >> gs):
 * - int4 / int8: (code - z) * scale, the references' value (exact before one f32 rounding);
 * - MXFP4: the bf16 pattern of the e2m1 value doubled (two swizzle tables, the low and high bytes: 0, 1, 2, 3, 4, 6,
 *   8, 12, signed for codes 8..15, so code 8 is -0 as the references decode it), widened to f32, times scale
 *   (2^(e - 127) / 2);
 * - fp8 e4m3 (one per byte): eight codes at a time to the bf16 patterns of their values (every e4m3 value is a bf16
 *   one): exponent and mantissa shifted into a bf16's (the exponent rebiased by 120), subnormals (c & 7) * 2^-9 from
 *   a table, the sign or-ed in, S.1111.111 NaN (as decode_e4m3); then widened to f32 four at a time, times the
 *   group's scale (its block's scaleInv).
 * Locals: 0 codes, 1 sc, 2 z, 3 n, 4 out, 5 gs (params); 6 g; 7 v, 8 s, 9 zz, 10 sg, 11 lo, 12 hi, 13 slo, 14 shi,
 * 15 mag, 16 nrm (v128).
 */
function decodeBody(kind: SimdCodes): number[] {
  const [C, SC, Z, N, OUT, GS, G, V, S, ZZ, LB, LO, HI, MAG, NRM] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  // base + g * 2^shift
  const at = (base: number, shift: number) => [...get(base), ...get(G), op.i32Const, shift, op.i32Shl, op.i32Add];
  // base + 4 (g >> gs): the group's scale or zero point
  const perUnit = (base: number) => [...get(base), ...get(G), ...get(GS), op.i32ShrU, op.i32Const, 2, op.i32Shl, op.i32Add];
  const nibbles = [
    // eight bytes -> 16 codes in order (low nibble first): lo = b & 15, hi = b >> 4, interleaved
    ...at(C, 3), ...v128Load64Zero(0), ...set(V),
    ...get(V), ...v128Const(new Array<number>(16).fill(15)), ...v128And,
    ...get(V), op.i32Const, 4, ...i8x16ShrU,
    ...i8x16Shuffle([0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23]), ...set(V),
  ];
  const codes =
    kind === 'int8' || kind === 'e4m3'
      ? [...at(C, 4), ...v128Load(0), ...set(V)]
      : kind === 'int4'
        ? nibbles
        : [
            ...nibbles,
            // each code's bf16 pattern, low and high bytes from two tables, then interleaved into the 16-bit lanes
            ...v128Const(MXFP4_BF16.map((b) => b & 0xff)), ...get(V), ...i8x16Swizzle, ...set(LB),
            ...v128Const(MXFP4_BF16.map((b) => b >> 8)), ...get(V), ...i8x16Swizzle, ...set(V),
            ...get(LB), ...get(V), ...i8x16Shuffle([0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23]), ...set(LO),
            ...get(LB), ...get(V), ...i8x16Shuffle([8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31]), ...set(HI),
          ];
  const widen = (q: number) => [...get(q < 2 ? LO : HI), ...(q % 2 ? i32x4ExtendHighU16 : i32x4ExtendLowU16)];
  // e4m3 codes (u16 lanes of local l) to the bf16 patterns of their values, in place (every e4m3 value is a bf16 one):
  // normal codes move exponent and mantissa into a bf16's (the exponent rebiased by 120), exponent 0 takes its
  // subnormal m * 2^-9 (or 0) from a table (a swizzle of byte pairs 2m, 2m + 1), then the sign; S.1111.111 is NaN
  const e4m3 = (l: number) => [
    ...get(l), ...i16x8Const(0x7f), ...v128And, ...set(MAG),
    ...get(MAG), op.i32Const, 4, ...i16x8Shl, ...i16x8Const(120 << 7), ...i16x8Add, ...set(NRM),
    ...v128Const(E4M3_SUB_BF16), ...get(l), ...i16x8Const(7), ...v128And, ...i16x8Const(0x0202), ...i16x8Mul, ...i16x8Const(0x0100), ...i16x8Add, ...i8x16Swizzle,
    ...get(NRM), ...get(MAG), op.i32Const, 3, ...i16x8ShrU, ...i16x8Const(0), ...i16x8Eq, ...v128Bitselect,
    ...get(l), ...i16x8Const(0x80), ...v128And, op.i32Const, 8, ...i16x8Shl, ...v128Or,
    ...set(NRM), ...i16x8Const(0x7fc0), ...get(NRM), ...get(MAG), ...i16x8Const(0x7f), ...i16x8Eq, ...v128Bitselect, ...set(l),
  ];
  // four values of quarter q: widened, converted, scaled
  const quarter = (q: number) => [
    ...at(OUT, 6),
    ...(kind === 'mxfp4' || kind === 'e4m3'
      ? [...widen(q), op.i32Const, 16, ...i32x4Shl, ...get(S), ...f32x4Mul]
      : [...widen(q), ...f32x4ConvertS32, ...get(ZZ), ...f32x4Sub, ...get(S), ...f32x4Mul]),
    ...v128Store(16 * q),
  ];
  const code = [
    // for (g = 0; 16 g < n; g++)
    op.block, 0x40, op.loop, 0x40,
    ...get(G), op.i32Const, 4, op.i32Shl, ...get(N), op.i32GeS, op.brIf, 1,
    ...perUnit(SC), op.f32Load, 2, 0, ...f32x4Splat, ...set(S),
    ...(kind === 'int4' || kind === 'int8' ? [...perUnit(Z), op.f32Load, 2, 0, ...f32x4Splat, ...set(ZZ)] : []),
    ...codes,
    // the codes in 16-bit lanes (MXFP4: already as bf16 patterns)
    ...(kind === 'mxfp4' ? [] : [...get(V), ...i16x8ExtendLowU8, ...set(LO), ...get(V), ...i16x8ExtendHighU8, ...set(HI)]),
    ...(kind === 'e4m3' ? [...e4m3(LO), ...e4m3(HI)] : []),
    ...quarter(0), ...quarter(1), ...quarter(2), ...quarter(3),
    ...get(G), op.i32Const, 1, op.i32Add, ...set(G), op.br, 0,
    op.end, op.end, op.end,
  ];
  const locals = [2, 1, I32, 8, V128];
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/**
 * The body of `dots<kind>(x, w, n, count, out)`: for i < count, the f64 at byte offset out + 8 i = dot<kind>(x, w + i
 * n b, n) (b: 4 bytes a weight for f32, 2 for bf16 and f16), by a call of the dot function `fn` (0 dot, 1 dot_bf16, 2
 * dot_f16): count consecutive weight rows against one input row in one call from JavaScript. Locals: 0 x, 1 w, 2 n, 3
 * count, 4 out (params); 5 i.
 */
function rowDotsBody(fn: 0 | 1 | 2): number[] {
  const [X, W, N, COUNT, OUT, I] = [0, 1, 2, 3, 4, 5];
  const code = [
    op.block, 0x40, op.loop, 0x40,
    ...get(I), ...get(COUNT), op.i32GeS, op.brIf, 1,
    ...get(OUT), ...get(I), op.i32Const, 3, op.i32Shl, op.i32Add,
    ...get(X),
    ...get(W), ...get(I), ...get(N), op.i32Mul, op.i32Const, fn === 0 ? 2 : 1, op.i32Shl, op.i32Add,
    ...get(N),
    op.call, fn,
    op.f64Store, 3, 0,
    ...get(I), op.i32Const, 1, op.i32Add, ...set(I), op.br, 0,
    op.end, op.end, op.end,
  ];
  const body = [1, 1, I32, ...code];
  return [...uleb(body.length), ...body];
}

/**
 * The module's bytes: `dot` (f32 weights), `dot_bf16`, `dot_f16`, the `dec_*` decoders, the row dots `dots`,
 * `dots_bf16`, `dots_f16`, `memory`. Kept under 4 KiB: browsers
 * compile a larger module synchronously only off the main thread (Chromium refuses it there), and cpuSimd compiles
 * synchronously.
 */
export function moduleBytes(): Uint8Array<ArrayBuffer> {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    // type 0: (i32, i32, i32) -> f64 (the dots); type 1: (i32 x 6) -> () (the decoders); type 2: (i32 x 5) -> () (the
    // row dots)
    ...section(1, [3, 0x60, 3, I32, I32, I32, 1, F64, 0x60, 6, I32, I32, I32, I32, I32, I32, 0, 0x60, 5, I32, I32, I32, I32, I32, 0]),
    ...section(3, [10, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]),
    ...section(5, [1, 0x00, 1]), // memory 0: min 1 page, no max
    ...section(7, [
      11, ...name('dot'), 0x00, 0, ...name('dot_bf16'), 0x00, 1, ...name('dot_f16'), 0x00, 2, ...name('dec_int4'), 0x00, 3,
      ...name('dec_int8'), 0x00, 4, ...name('dec_mxfp4'), 0x00, 5, ...name('dec_e4m3'), 0x00, 6, ...name('dots'), 0x00, 7,
      ...name('dots_bf16'), 0x00, 8, ...name('dots_f16'), 0x00, 9, ...name('memory'), 0x02, 0,
    ]),
    ...section(10, [
      10,
      ...(['f32', 'bf16', 'f16'] as const).flatMap(dotBody),
      ...(['int4', 'int8', 'mxfp4', 'e4m3'] as const).flatMap(decodeBody),
      ...([0, 1, 2] as const).flatMap(rowDotsBody),
    ]),
  ];
  return new Uint8Array(bytes);
}

/** The SIMD dot product and the memory it reads. */
export interface CpuSimd {
  /** sum over i < n of f32(x[i] * w[i]) (f32 sums of 16 products, then f64); x, w: byte offsets of f32 arrays in `memory`. */
  dot(x: number, w: number, n: number): number;
  /** The same with w the byte offset of bf16 weights (u16 bit patterns, each the high half of its f32). */
  dotBf16(x: number, w: number, n: number): number;
  /** The same with w the byte offset of f16 weights; n a multiple of 8. */
  dotF16(x: number, w: number, n: number): number;
  /**
   * `count` rows of weights against one input row in one call: the f64 at byte offset out + 8 i is dot(x, w + 4 i n, n)
   * (dotsBf16, dotsF16: dotBf16, dotF16 over rows 2 n bytes apart) for i < count.
   */
  dots(x: number, w: number, n: number, count: number, out: number): void;
  dotsBf16(x: number, w: number, n: number, count: number, out: number): void;
  dotsF16(x: number, w: number, n: number, count: number, out: number): void;
  /**
   * Decoders of packed rows (`decodeBody`): n % 16 == 0 values (rows back to back) to f32 at out, one scale (and
   * zero point) per 16 << gs values; byte offsets.
   */
  decode: Record<SimdCodes, (codes: number, sc: number, z: number, n: number, out: number, gs: number) => void>;
  memory: WebAssembly.Memory;
}

let instance: CpuSimd | null | undefined;
let enabled = true;

/**
 * Turns the SIMD dot product off (false: the CPU kernels use their JavaScript one) or back on; returns the previous
 * setting. For tests of both paths; not part of the package's API.
 */
export function enableCpuSimd(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/**
 * The SIMD dot product, instantiated on first use (synchronously: the module
 * is under a kilobyte), or undefined where WebAssembly SIMD is missing (or
 * it is turned off).
 * @example `const s = cpuSimd(); if (s) sum = s.dot(0, 4096, 1024)`
 */
export function cpuSimd(): CpuSimd | undefined {
  if (!enabled) return undefined;
  if (instance === undefined) {
    instance = null;
    try {
      const bytes = moduleBytes();
      if (typeof WebAssembly !== 'undefined' && WebAssembly.validate(bytes)) {
        compiled = new WebAssembly.Module(bytes);
        instance = simdOf(new WebAssembly.Instance(compiled));
      }
    } catch {
      instance = null;
    }
  }
  return instance ?? undefined;
}

/** The CpuSimd face of an instance of the module (its exports). */
function simdOf(inst: WebAssembly.Instance): CpuSimd {
  const ex = inst.exports;
  type Dec = CpuSimd['decode']['int4'];
  return {
    dot: ex.dot as CpuSimd['dot'],
    dotBf16: ex.dot_bf16 as CpuSimd['dotBf16'],
    dotF16: ex.dot_f16 as CpuSimd['dotF16'],
    dots: ex.dots as CpuSimd['dots'],
    dotsBf16: ex.dots_bf16 as CpuSimd['dotsBf16'],
    dotsF16: ex.dots_f16 as CpuSimd['dotsF16'],
    decode: { int4: ex.dec_int4 as Dec, int8: ex.dec_int8 as Dec, mxfp4: ex.dec_mxfp4 as Dec, e4m3: ex.dec_e4m3 as Dec },
    memory: ex.memory as WebAssembly.Memory,
  };
}

/** The module, compiled on first use by cpuSimd (its instance is the shared one); null where it cannot be. */
let compiled: WebAssembly.Module | null | undefined;

/**
 * A new instance of the SIMD module with a memory of its own of `pages` 64 KiB pages (its memory grown once, here),
 * for data kept where the kernels read it (cpu-resident.ts); undefined where WebAssembly SIMD is missing or turned off
 * (enableCpuSimd), or where the memory cannot be had. The instance's own memory, not an imported one: a dot loop over
 * an imported memory ran ~20% slower in a micro-benchmark (this 2-core host, Node 20, 2026-12-08). Whoever holds it must
 * never grow it again (a grown memory has a new buffer; views of the old one are detached).
 * @example `const s = simdInstance(16); s?.dot(0, 4096, 1024)`
 */
export function simdInstance(pages: number): CpuSimd | undefined {
  if (!cpuSimd() || !compiled) return undefined;
  try {
    const simd = simdOf(new WebAssembly.Instance(compiled));
    const have = simd.memory.buffer.byteLength / 65536;
    if (pages > have) simd.memory.grow(pages - have);
    return simd;
  } catch {
    return undefined; // no memory of that size here
  }
}
