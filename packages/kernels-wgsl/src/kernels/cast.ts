import type { DType } from '@webmoe/tensor';
import { DTYPES, toFloat32, fromFloat32, HostTensor } from '@webmoe/tensor';
import { defineKernel, foldWorkgroups, Recorder, uniformFields } from '../runtime/kernel.js';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { loadFn, storageType, FP8_DECODE_WGSL, F32_TO_BF16_WGSL, checkOutFloat, type OutFloat } from '../wgsl.js';

/** Variant of the cast kernel: source and destination dtypes. */
export type CastVariant = { src: DType; dst: OutFloat };

const WG = 256;

/**
 * Casts any dtype of the table to float32, bfloat16 or float16. Each thread
 * writes one output u32 word (one f32, or two packed 16-bit values), so no
 * two threads touch the same word.
 */
export const castKernel = defineKernel<CastVariant>('cast', ({ src, dst }) => {
  const per = dst === 'float32' ? 1 : 2;
  const store =
    dst === 'float32'
      ? `Y[w] = ld(w);`
      : dst === 'bfloat16'
        ? `let i0 = w * 2u; var lo = f32_to_bf16(ld(i0)); var hi = 0u; if (i0 + 1u < u.n) { hi = f32_to_bf16(ld(i0 + 1u)); } Y[w] = lo | (hi << 16u);`
        : `let i0 = w * 2u; var b = 0.0; if (i0 + 1u < u.n) { b = ld(i0 + 1u); } Y[w] = pack2x16float(vec2<f32>(ld(i0), b));`;
  return /* wgsl */ `
${FP8_DECODE_WGSL}
${F32_TO_BF16_WGSL}
${loadFn('ld', 'X', src)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * ${WG}u;
  if (w >= u.words) { return; }
  ${store}
}
// words per output: ${per}
`;
}, {
  signature: ({ src, dst }) => ({
    bindings: [
      { name: 'X', type: storageType(src), access: 'read' },
      { name: 'Y', type: dst === 'float32' ? 'array<f32>' : 'array<u32>', access: 'read_write' },
    ],
    uniforms: uniformFields('u32', 'n', 'words'),
  }),
});

/**
 * Casts a GPU tensor to `dst` on the GPU (round to nearest even).
 *
 * @example
 * ```ts
 * const y = castGpu(ctx, x, 'float32'); // x is bfloat16
 * ```
 */
export function castGpu(ctx: GpuContext, x: GpuTensor, dst: DType, opts: { pool?: BufferPool; recorder?: Recorder } = {}): GpuTensor {
  checkOutFloat('cast destination', dst);
  const n = x.size;
  const y = opts.pool ? opts.pool.tensor(dst, x.shape, 'cast.out') : GpuTensor.empty(ctx, dst, x.shape, 'cast.out');
  const words = dst === 'float32' ? n : Math.ceil(n / 2);
  const groups = Math.ceil(words / WG);
  const rec = opts.recorder ?? new Recorder(ctx);
  rec.dispatch({
    kernel: castKernel,
    variant: { src: x.dtype, dst },
    bind: { X: x.buffer, Y: y.buffer },
    params: { n, words },
    workgroups: foldWorkgroups(ctx, groups),
  });
  if (!opts.recorder) rec.submit();
  return y;
}

/** The TypeScript reference of `castGpu`. @example `castRef(x, 'float32')` */
export function castRef(x: HostTensor, dst: DType): HostTensor {
  checkOutFloat('cast destination', dst);
  return new HostTensor(dst, x.shape, fromFloat32(dst, toFloat32(x.dtype, x.data)));
}
