import { describe, it, expect } from 'vitest';
import { f32ToBf16, bf16ToF32, f16ToF32, f32ToF16, e4m3ToF32, f32ToE4m3, e5m2ToF32, f32ToE5m2, HostTensor, ShapeError } from '@webmoe/tensor';

describe('smoke', () => {
  it('bf16 round trip of 1', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToF32(0x3f80)).toBe(1);
  });
  it('known fp8 codes', () => {
    expect(e4m3ToF32(0x7e)).toBe(448);
    expect(Number.isNaN(e4m3ToF32(0x7f))).toBe(true);
    expect(f32ToE4m3(1000)).toBe(0x7e);
    expect(e5m2ToF32(0x7b)).toBe(57344);
    expect(f32ToE5m2(1e6)).toBe(0x7c);
    expect(f16ToF32(f32ToF16(65504))).toBe(65504);
  });
  it('HostTensor rejects a length that disagrees with the shape', () => {
    expect(() => new HostTensor('float32', [2, 3], new Float32Array(5))).toThrow(ShapeError);
  });
});
