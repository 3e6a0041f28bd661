/**
 * The f16 staging of bf16 weights in the subgroup-matrix GEMM (BF16_TO_F16_WGSL, two values per conversion) on every
 * bf16 bit pattern, in both halves of a word, against the host's rounding f32ToF16(bf16ToF32(h)): f16's normal range
 * exactly, f16 subnormals rounded to nearest even (not flushed), values below half the smallest subnormal to signed
 * zero. Halves whose value f16 cannot hold (|v| > 65504, inf, NaN) are not compared: WGSL leaves that conversion's
 * result indeterminate, and the GEMM never stages them (its x rows are scaled into range; weights beyond 65504 are
 * not a checkpoint's). The GEMM's staging itself (pairs, rotated stores) is covered by grouped-gemm-fast.gpu.test.ts.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { bf16ToF32, f32ToF16 } from '@webmoe/tensor';
import { defineKernel, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { runWordKernel } from './word-kernel.js';
import { BF16_TO_F16_WGSL, BF16_UNPACK_WGSL } from '../src/wgsl.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const pairs = defineKernel<{ n: number }>(
  'test_bf16x2_to_f16x2',
  () => /* wgsl */ `
${BF16_UNPACK_WGSL}
${BF16_TO_F16_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = g.x + g.y * nwg.x * 64u;
  if (i >= arrayLength(&IN)) { return; }
  OUT[i] = bf16x2_to_f16x2(IN[i]);
}
`,
  {
    signature: () => ({
      bindings: [
        { name: 'IN', type: 'array<u32>', access: 'read' },
        { name: 'OUT', type: 'array<u32>', access: 'read_write' },
      ],
      f16: true,
    }),
  },
);

describe('bf16 -> f16 pairs of the subgroup-matrix staging', () => {
  it('give the host rounding on all 65536 bf16 patterns in each half (where f16 holds the value)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    if (!ctx.features.shaderF16) return t.skip('no shader-f16 on this adapter');
    const c = ctx;
    // word i: low half i, high half a permutation of 0..65535 (40503 is odd): every pattern in both halves.
    const n = 65536;
    const words = new Uint32Array(n);
    for (let i = 0; i < n; i++) words[i] = (((i * 40503 + 12345) & 0xffff) << 16) | i;
    const got = await runWordKernel(c, pairs, { n }, words, n, [n / 64 / 16, 16]);
    let compared = 0;
    let subnormals = 0;
    const bad: string[] = [];
    for (let i = 0; i < n; i++) {
      for (const shift of [0, 16]) {
        const h = (words[i] >>> shift) & 0xffff;
        const v = bf16ToF32(h);
        if (!Number.isFinite(v) || Math.abs(v) > 65504) continue;
        const want = f32ToF16(v);
        const have = (got[i] >>> shift) & 0xffff;
        compared++;
        if ((want & 0x7c00) === 0 && (want & 0x3ff) !== 0) subnormals++;
        if (have !== want && bad.length < 8) bad.push(`word 0x${words[i].toString(16)} half ${shift / 16}: bf16 0x${h.toString(16)} (${v}) -> 0x${have.toString(16)}, want 0x${want.toString(16)}`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
    // not vacuous: in each half every pattern with an exponent field <= 142 (|v| <= 65280; both signs, 128 mantissas),
    // f16 subnormals among them
    expect(compared).toBe(2 * 143 * 2 * 128);
    expect(subnormals).toBeGreaterThan(1000);
  });
});
