import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, type DType, toFloat32 } from '@webmoe/tensor';
import { GpuTensor, castGpu, castRef, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const SRC: DType[] = ['float32', 'bfloat16', 'float16', 'float8_e4m3fn', 'float8_e5m2', 'int8', 'uint8', 'int32', 'uint32'];
const DST: DType[] = ['float32', 'bfloat16', 'float16'];

function same(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) return false;
  return true;
}

describe('cast kernel vs TypeScript reference', () => {
  for (const src of SRC) {
    for (const dst of DST) {
      it(`${src} -> ${dst} on random sizes`, async (c) => {
        if (!ctx) return c.skip('no WebGPU adapter');
        const r = rng(src.length * 31 + dst.length);
        for (const n of [1, 2, 3, 7, 1000, 4099]) {
          const vals = randomArray(r, n, -300, 300);
          const x = src.startsWith('int') || src.startsWith('uint') ? HostTensor.fromFloat32([n], vals.map((v) => (src.startsWith('u') ? Math.abs(v) % 250 : Math.max(-127, Math.min(127, v)))), src) : HostTensor.fromFloat32([n], vals, src);
          const want = castRef(x, dst);
          const got = await gpuChecked(ctx, async () => {
            const g = GpuTensor.upload(ctx!, x);
            const y = castGpu(ctx!, g, dst);
            const h = await y.download();
            g.destroy();
            y.destroy();
            return h;
          });
          expect(got.dtype).toBe(dst);
          expect(same(toFloat32(dst, got.data), toFloat32(dst, want.data)), `${src}->${dst} n=${n}`).toBe(true);
        }
      });
    }
  }
});
