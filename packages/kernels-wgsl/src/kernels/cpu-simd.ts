/**
 * The CPU kernels' dot product in WebAssembly SIMD (cpu-kernels.ts): a tiny
 * module assembled here, byte by byte (no build step, no binary file), with
 * two functions over its own memory:
 *   dot(x, w, n) -> f64 = sum over i < n of f32(x[i] * w[i]), summed in f64,
 * x and w f32 arrays at byte offsets x and w, and dot_bf16, the same with w
 * bf16 bit patterns (each widened into the high half of an f32: the exact
 * value, as decodeExpertRow gives it). Eight products per loop step
 * (two f32x4 multiplies), each widened to f64x2 and added into one of four
 * f64x2 partial sums; the products are f32 (rounded once), the sums f64.
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
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Const: 0x41, i32Add: 0x6a, i32Shl: 0x74, i32GtS: 0x4a, i32GeS: 0x4e, f32Load: 0x2a, i32Load16U: 0x2f, f32Mul: 0x94, f64Add: 0xa0,
  f64PromoteF32: 0xbb, f32ReinterpretI32: 0xbe,
} as const;
const simd = (code: number, ...imm: number[]) => [0xfd, ...uleb(code), ...imm];
const v128Load = (offset: number) => simd(0x00, 0, ...uleb(offset)); // align hint 2^0, byte offset
const v128Zero = simd(0x0c, ...new Array<number>(16).fill(0));
const f32x4Mul = simd(0xe6);
const f64x2Add = simd(0xf0);
const f64x2PromoteLow = simd(0x5f);
const f64x2Lane = (lane: number) => simd(0x21, lane);
/** The high two f32 lanes moved to the low two (bytes 8..15, then 0..7). */
const highToLow = simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);

const i32x4ExtendLowU16 = simd(0xa9);
const i32x4ExtendHighU16 = simd(0xaa);
const i32x4Shl = simd(0xab);

/** How a dot function reads its weights: f32 values, or bf16 bit patterns (the high halves of f32s). */
type WeightKind = 'f32' | 'bf16';

/**
 * The body of `dot` over weights of `kind`. Locals: 0 x, 1 w, 2 n (params); 3 i; 4 s (f64); 5..8 acc0..3, 9 p, 10 wv
 * (v128).
 */
function dotBody(kind: WeightKind): number[] {
  const [X, W, N, I, S, A0, A1, A2, A3, P, WV] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const get = (l: number) => [op.localGet, l];
  const set = (l: number) => [op.localSet, l];
  // base + i * 2^shift, then a v128 load at byte offset `extra`
  const load = (base: number, shift: number, extra: number) => [...get(base), ...get(I), op.i32Const, shift, op.i32Shl, op.i32Add, ...v128Load(extra)];
  // acc_a += widen(low two of p); acc_b += widen(high two of p)
  const accumulate = (a: number, b: number) => [
    ...get(a), ...get(P), ...f64x2PromoteLow, ...f64x2Add, ...set(a),
    ...get(b), ...get(P), ...get(P), ...highToLow, ...f64x2PromoteLow, ...f64x2Add, ...set(b),
  ];
  // f32 weights: p = x[i + 4j..] * w[i + 4j..]; bf16: eight weights in one load, widened four at a time (<< 16)
  const eight =
    kind === 'f32'
      ? [...load(X, 2, 0), ...load(W, 2, 0), ...f32x4Mul, ...set(P), ...accumulate(A0, A1), ...load(X, 2, 16), ...load(W, 2, 16), ...f32x4Mul, ...set(P), ...accumulate(A2, A3)]
      : [
          ...load(W, 1, 0), ...set(WV),
          ...load(X, 2, 0), ...get(WV), ...i32x4ExtendLowU16, op.i32Const, 16, ...i32x4Shl, ...f32x4Mul, ...set(P), ...accumulate(A0, A1),
          ...load(X, 2, 16), ...get(WV), ...i32x4ExtendHighU16, op.i32Const, 16, ...i32x4Shl, ...f32x4Mul, ...set(P), ...accumulate(A2, A3),
        ];
  // one weight as f32: a load, or a bf16 load shifted into the high half
  const oneWeight =
    kind === 'f32'
      ? [...get(W), ...get(I), op.i32Const, 2, op.i32Shl, op.i32Add, op.f32Load, 2, 0]
      : [...get(W), ...get(I), op.i32Const, 1, op.i32Shl, op.i32Add, op.i32Load16U, 1, 0, op.i32Const, 16, op.i32Shl, op.f32ReinterpretI32];
  const code = [
    ...v128Zero, ...set(A0), ...v128Zero, ...set(A1), ...v128Zero, ...set(A2), ...v128Zero, ...set(A3),
    // while (i + 8 <= n) { eight products; i += 8 }
    op.block, 0x40, op.loop, 0x40,
    ...get(I), op.i32Const, 8, op.i32Add, ...get(N), op.i32GtS, op.brIf, 1,
    ...eight,
    ...get(I), op.i32Const, 8, op.i32Add, ...set(I), op.br, 0,
    op.end, op.end,
    // s = the eight partial sums
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
  const locals = [3, 1, I32, 1, F64, 6, V128]; // 3 groups: 1 i32, 1 f64, 6 v128
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

const name = (n: string) => [n.length, ...n.split('').map((c) => c.charCodeAt(0))];

/** The module's bytes: `dot` (f32 weights, function 0), `dot_bf16` (function 1), `memory`. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, I32, I32, I32, 1, F64]), // type 0: (i32, i32, i32) -> f64
    ...section(3, [2, 0, 0]), // functions 0 and 1, of type 0
    ...section(5, [1, 0x00, 1]), // memory 0: min 1 page, no max
    ...section(7, [3, ...name('dot'), 0x00, 0, ...name('dot_bf16'), 0x00, 1, ...name('memory'), 0x02, 0]),
    ...section(10, [2, ...dotBody('f32'), ...dotBody('bf16')]),
  ];
  return new Uint8Array(bytes);
}

/** The SIMD dot product and the memory it reads. */
export interface CpuSimd {
  /** sum over i < n of f32(x[i] * w[i]) in f64; x, w: byte offsets of f32 arrays in `memory`. */
  dot(x: number, w: number, n: number): number;
  /** The same with w the byte offset of bf16 weights (u16 bit patterns, each the high half of its f32). */
  dotBf16(x: number, w: number, n: number): number;
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
        const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
        const ex = inst.exports;
        instance = { dot: ex.dot as CpuSimd['dot'], dotBf16: ex.dot_bf16 as CpuSimd['dotBf16'], memory: ex.memory as WebAssembly.Memory };
      }
    } catch {
      instance = null;
    }
  }
  return instance ?? undefined;
}
