/**
 * Random weights generated directly in their storage type: on the GPU by a
 * hash kernel writing the bit patterns word by word (no host memory, no f32
 * staging), chunked so that each dispatch stays within the workgroup limits;
 * on the host the same bit patterns into typed arrays.
 */
import { defineKernel, foldWorkgroups, GpuTensor, Recorder, Uniforms, type GpuContext } from '@webmoe/kernels-wgsl';
import type { DType } from '@webmoe/tensor';

/**
 * Value kinds the fill kernel writes; all finite and small. Weights (both
 * signs): f32, bf16, f16, e4m3. Codes and scales of packed experts: `scale`
 * (f32 2^-7, fp8 blocks), `u8` (random bytes: int4/int8/mxfp4 codes, every
 * byte valid), `i4scale` / `i8scale` (positive f16 in [2^-10, 2^-8) /
 * [2^-14, 2^-12), so that |(code - zero point) * scale| < 2^-5), `e8m0`
 * (mxfp4 scale bytes 117..120, 2^-10..2^-7, so |w| <= 6 * 2^-7).
 */
export type FillKind = 'f32' | 'bf16' | 'f16' | 'e4m3' | 'scale' | 'u8' | 'i4scale' | 'i8scale' | 'e8m0';

const WG = 256;

/** WGSL/TS-shared hash (lowbias32). */
const HASH_WGSL = /* wgsl */ `
fn hash(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}`;

/** The host twin of the WGSL hash. @example `hash32(1)` */
export function hash32(x0: number): number {
  let x = x0 >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

// 16-bit halves: bf16 with exponent 119..122 (|v| in [2^-8, 2^-4)) but one in 128 (7 more hash bits zero) with
// exponent 105 (|v| in [2^-22, 2^-21): f16 subnormals, as trained weights have ~0.2-1% below f16's normal range, which
// the f16 staging of the prefill GEMMs converts the slow way); f16 with exponent 7..10 (|v| in [2^-8, 2^-4));
// e4m3 bytes with bit 6 clear (exponent <= 7, |v| < 2, never NaN); f32 uniform in [-1, 1); scale: 2^-7 f32.
const WORD_WGSL: Record<FillKind, string> = {
  f32: `return bitcast<u32>(f32(h >> 8u) * (2.0 / 16777216.0) - 1.0);`,
  bf16: `return half_bf16(h) | (half_bf16(hash(h)) << 16u);`,
  f16: `return half_f16(h) | (half_f16(hash(h)) << 16u);`,
  e4m3: `return h & 0xbfbfbfbfu;`,
  scale: `return 0x3c000000u;`,
  u8: `return h;`,
  i4scale: `return half_sc(h, 5u) | (half_sc(hash(h), 5u) << 16u);`,
  i8scale: `return half_sc(h, 1u) | (half_sc(hash(h), 1u) << 16u);`,
  e8m0: `return (h & 0x03030303u) + 0x75757575u;`,
};

const fillKernel = defineKernel<{ kind: FillKind }>('bench_fill', ({ kind }) => /* wgsl */ `
struct U { words: u32, base: u32, seed: u32, _p: u32, }
@group(0) @binding(0) var<storage, read_write> Y: array<u32>;
@group(0) @binding(1) var<uniform> u: U;
${HASH_WGSL}
fn half_bf16(h: u32) -> u32 { return ((h & 0x8000u) | (select(119u + ((h >> 7u) & 3u), 105u, ((h >> 9u) & 127u) == 0u) << 7u) | (h & 0x7fu)) & 0xffffu; }
fn half_f16(h: u32) -> u32 { return ((h & 0x8000u) | ((7u + ((h >> 10u) & 3u)) << 10u) | (h & 0x3ffu)) & 0xffffu; }
fn half_sc(h: u32, e0: u32) -> u32 { return (((e0 + ((h >> 10u) & 1u)) << 10u) | (h & 0x3ffu)) & 0xffffu; }
fn word(i: u32) -> u32 { let h = hash(i ^ u.seed); ${WORD_WGSL[kind]} }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let w = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (w >= u.words) { return; }
  Y[u.base + w] = word(u.base + w);
}
`);

/** The fill kind of a storage dtype. @example `fillKindOf('bfloat16') // 'bf16'` */
export function fillKindOf(d: DType): FillKind {
  switch (d) {
    case 'float32': return 'f32';
    case 'bfloat16': return 'bf16';
    case 'float16': return 'f16';
    case 'float8_e4m3fn': return 'e4m3';
    case 'uint8': return 'u8';
    default: throw new Error(`fill: no random generator for dtype ${d}`);
  }
}

/**
 * Allocates a GPU tensor and fills it with random values generated on the
 * GPU in its storage type. `kind` overrides the values (e.g. 'scale' for
 * fp8 block scales). Submits; does not wait.
 * @example `const w = randomGpuTensor(ctx, 'bfloat16', [E, 2 * I, H], 1)`
 */
export function randomGpuTensor(ctx: GpuContext, dtype: DType, shape: readonly number[], seed: number, kind: FillKind = fillKindOf(dtype), label = 'bench.weight'): GpuTensor {
  const t = GpuTensor.empty(ctx, dtype, shape, label);
  fillGpuTensor(ctx, t, seed, kind);
  return t;
}

/**
 * Fills an allocated GPU tensor with the random words of `randomGpuTensor`
 * (word i: hash of i and `seed`). Submits; does not wait.
 * @example `fillGpuTensor(ctx, chunk.q, seed, 'e4m3')`
 */
export function fillGpuTensor(ctx: GpuContext, t: GpuTensor, seed: number, kind: FillKind = fillKindOf(t.dtype)): void {
  const words = t.byteLength / 4;
  const chunk = 1 << 24; // 16M words (64 MiB) per dispatch
  const rec = new Recorder(ctx, { label: 'bench.fill' });
  for (let base = 0; base < words; base += chunk) {
    const n = Math.min(chunk, words - base);
    rec.dispatch({
      kernel: fillKernel,
      variant: { kind },
      buffers: [t.buffer],
      uniforms: new Uniforms().u32(n, base, Math.imul(seed, 0x9e3779b9) >>> 0, 0).finish(),
      workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)),
    });
  }
  rec.submit();
}

function halfBf16(h: number): number {
  return ((h & 0x8000) | (((h >>> 9) & 127) === 0 ? 105 : 119 + ((h >>> 7) & 3)) << 7 | (h & 0x7f)) & 0xffff;
}
function halfF16(h: number): number {
  return ((h & 0x8000) | ((7 + ((h >>> 10) & 3)) << 10) | (h & 0x3ff)) & 0xffff;
}
function halfScale(h: number, e0: number): number {
  return (((e0 + ((h >>> 10) & 1)) << 10) | (h & 0x3ff)) & 0xffff;
}

/**
 * The same values on the host: `n` elements of `kind` as raw u32 words
 * (bit-identical to `randomGpuTensor` with the same seed).
 * @example `new Uint16Array(randomWords('bf16', 8, 1).buffer) // 8 bf16 bit patterns`
 */
export function randomWords(kind: FillKind, nElems: number, seed: number): Uint32Array {
  const per = kind === 'f32' || kind === 'scale' ? 1 : kind === 'e4m3' || kind === 'u8' || kind === 'e8m0' ? 4 : 2;
  const words = Math.max(1, Math.ceil(nElems / per));
  const out = new Uint32Array(words);
  const s = Math.imul(seed, 0x9e3779b9) >>> 0;
  const f = new Float32Array(1);
  const fu = new Uint32Array(f.buffer);
  for (let i = 0; i < words; i++) {
    const h = hash32((i ^ s) >>> 0);
    switch (kind) {
      case 'f32': f[0] = (h >>> 8) * (2 / 16777216) - 1; out[i] = fu[0]; break;
      case 'bf16': out[i] = (halfBf16(h) | (halfBf16(hash32(h)) << 16)) >>> 0; break;
      case 'f16': out[i] = (halfF16(h) | (halfF16(hash32(h)) << 16)) >>> 0; break;
      case 'e4m3': out[i] = (h & 0xbfbfbfbf) >>> 0; break;
      case 'scale': out[i] = 0x3c000000; break;
      case 'u8': out[i] = h; break;
      case 'i4scale': out[i] = (halfScale(h, 5) | (halfScale(hash32(h), 5) << 16)) >>> 0; break;
      case 'i8scale': out[i] = (halfScale(h, 1) | (halfScale(hash32(h), 1) << 16)) >>> 0; break;
      case 'e8m0': out[i] = ((h & 0x03030303) + 0x75757575) >>> 0; break;
    }
  }
  return out;
}
