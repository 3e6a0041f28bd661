/**
 * Random weights generated directly in their storage type: on the GPU by a
 * hash kernel writing the bit patterns word by word (no host memory, no f32
 * staging), chunked so that each dispatch stays within the workgroup limits;
 * on the host the same bit patterns into typed arrays.
 */
import { defineKernel, foldWorkgroups, GpuTensor, Recorder, Uniforms, type GpuContext } from '@webmoe/kernels-wgsl';
import type { DType } from '@webmoe/tensor';

/** Value kinds the fill kernel writes; all finite, small, both signs. */
export type FillKind = 'f32' | 'bf16' | 'f16' | 'e4m3' | 'scale';

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

// 16-bit halves: bf16 with exponent 119..122 (|v| in [2^-8, 2^-4)), f16 with exponent 7..10 (same range);
// e4m3 bytes with bit 6 clear (exponent <= 7, |v| < 2, never NaN); f32 uniform in [-1, 1); scale: 2^-7 f32.
const WORD_WGSL: Record<FillKind, string> = {
  f32: `return bitcast<u32>(f32(h >> 8u) * (2.0 / 16777216.0) - 1.0);`,
  bf16: `return half_bf16(h) | (half_bf16(hash(h)) << 16u);`,
  f16: `return half_f16(h) | (half_f16(hash(h)) << 16u);`,
  e4m3: `return h & 0xbfbfbfbfu;`,
  scale: `return 0x3c000000u;`,
};

const fillKernel = defineKernel<{ kind: FillKind }>('bench_fill', ({ kind }) => /* wgsl */ `
struct U { words: u32, base: u32, seed: u32, _p: u32, }
@group(0) @binding(0) var<storage, read_write> Y: array<u32>;
@group(0) @binding(1) var<uniform> u: U;
${HASH_WGSL}
fn half_bf16(h: u32) -> u32 { return ((h & 0x8000u) | ((119u + ((h >> 7u) & 3u)) << 7u) | (h & 0x7fu)) & 0xffffu; }
fn half_f16(h: u32) -> u32 { return ((h & 0x8000u) | ((7u + ((h >> 10u) & 3u)) << 10u) | (h & 0x3ffu)) & 0xffffu; }
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
  return t;
}

function halfBf16(h: number): number {
  return ((h & 0x8000) | ((119 + ((h >>> 7) & 3)) << 7) | (h & 0x7f)) & 0xffff;
}
function halfF16(h: number): number {
  return ((h & 0x8000) | ((7 + ((h >>> 10) & 3)) << 10) | (h & 0x3ff)) & 0xffff;
}

/**
 * The same values on the host: `n` elements of `kind` as raw u32 words
 * (bit-identical to `randomGpuTensor` with the same seed).
 * @example `new Uint16Array(randomWords('bf16', 8, 1).buffer) // 8 bf16 bit patterns`
 */
export function randomWords(kind: FillKind, nElems: number, seed: number): Uint32Array {
  const per = kind === 'f32' || kind === 'scale' ? 1 : kind === 'e4m3' ? 4 : 2;
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
    }
  }
  return out;
}
