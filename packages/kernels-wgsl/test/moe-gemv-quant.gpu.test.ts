// The decode GEMVs on packed quantized experts (fp8 blocks, int4/int8 blocks,
// MXFP4) against the grouped-GEMM references, which decode every element
// independently (see quant-gemm tests).
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import {
  GpuTensor, Recorder, gemvGateUpGpu, gemvDownGpu, gemvSupports, groupRef, uploadGrouping, quantizeExperts, uploadExpertWeights, destroyExpertWeights,
  groupedGateUpRef, groupedDownRef, type GpuContext, type ExpertQuantFormat,
} from '@webmoe/kernels-wgsl';
import { gemvWideLoads } from '../src/kernels/moe-gemv.js';
import { testGpu, gpuChecked, rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { randomZeros } from './quant-helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** `wide`: whether gate_up (H columns) and down (I columns) take the 16-byte-load path (cols and scale blocks multiples of 32 int4/mxfp4 or 16 int8/fp8-e4m3 columns), else 8-column table loads. */
interface Case { name: string; fmt: ExpertQuantFormat; T: number; k: number; E: number; H: number; I: number; wide: [boolean, boolean] }
const CASES: Case[] = [
  { name: 'fp8 e4m3 128x128 blocks (partial), 8-column loads', fmt: { kind: 'fp8_block' }, T: 1, k: 2, E: 5, H: 136, I: 40, wide: [false, false] },
  { name: 'fp8 e4m3 128x128 blocks (partial), 16-byte loads', fmt: { kind: 'fp8_block' }, T: 2, k: 2, E: 5, H: 144, I: 48, wide: [true, true] },
  { name: 'fp8 e5m2 16x32 blocks', fmt: { kind: 'fp8_block', dtype: 'float8_e5m2', block: [16, 32] }, T: 3, k: 2, E: 4, H: 64, I: 48, wide: [false, false] },
  { name: 'int4 blocks of 32, f16 scales', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 2, k: 3, E: 6, H: 96, I: 40, wide: [true, false] },
  { name: 'int4 blocks of 32, f16 scales, decode', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16' }, T: 1, k: 4, E: 7, H: 160, I: 64, wide: [true, true] },
  { name: 'int8 blocks of 16, f32 scales', fmt: { kind: 'int_block', bits: 8, blockSize: 16 }, T: 5, k: 2, E: 3, H: 48, I: 24, wide: [true, false] },
  { name: 'int8 blocks of 8 (narrower than a 16-byte chunk)', fmt: { kind: 'int_block', bits: 8, blockSize: 8 }, T: 1, k: 2, E: 3, H: 48, I: 32, wide: [false, false] },
  { name: 'int4 + zero points, blocks of 32 and 8', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true }, T: 3, k: 2, E: 5, H: 96, I: 40, wide: [true, false] },
  { name: 'int4 + zero points, blocks of 8 (table loads), decode', fmt: { kind: 'int_block', bits: 4, blockSize: 8, zeroPoint: true }, T: 1, k: 3, E: 6, H: 56, I: 24, wide: [false, false] },
  { name: 'int8 + zero points, blocks of 16', fmt: { kind: 'int_block', bits: 8, blockSize: 16, zeroPoint: true }, T: 2, k: 2, E: 3, H: 48, I: 32, wide: [true, true] },
  { name: 'mxfp4', fmt: { kind: 'mxfp4' }, T: 4, k: 2, E: 4, H: 64, I: 32, wide: [true, true] },
  { name: 'mxfp4, decode', fmt: { kind: 'mxfp4' }, T: 1, k: 3, E: 5, H: 96, I: 64, wide: [true, true] },
];

describe('decode GEMV on quantized experts', () => {
  for (const c of CASES) {
    it(`${c.name}: T=${c.T} k=${c.k} E=${c.E} H=${c.H} I=${c.I}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const cx = ctx;
      const r = rng(c.H * 31 + c.I);
      const { T, k, E, H, I } = c;
      const idx = new Uint32Array(T * k);
      for (let tt = 0; tt < T; tt++) for (let j = 0; j < k; j++) idx[tt * k + j] = (tt * 3 + j * 2) % E;
      const g = groupRef(idx, T, k, E);
      const x = randomArray(r, T * H);
      const guH = randomZeros(r, quantizeExperts(randomArray(r, E * 2 * I * H, -0.3, 0.3), E, 2 * I, H, c.fmt));
      const dnH = randomZeros(r, quantizeExperts(randomArray(r, E * H * I, -0.3, 0.3), E, H, I, c.fmt));
      const act = { kind: 'swiglu_limit' as const, layout: 'interleaved' as const, limit: 2 };
      const hRef = groupedGateUpRef(x, g, guH, undefined, act);
      const yRef = groupedDownRef(hRef, g, dnH, undefined);
      const out = await gpuChecked(cx, async () => {
        const gg = uploadGrouping(cx, g);
        const gu = uploadExpertWeights(cx, guH);
        const dn = uploadExpertWeights(cx, dnH);
        expect(gemvSupports(gu) && gemvSupports(dn)).toBe(true);
        expect([gemvWideLoads(gu, true), gemvWideLoads(dn, true)], 'which load path').toEqual(c.wide);
        expect([gemvWideLoads(gu, false), gemvWideLoads(dn, false)], 'table loads when wide is off').toEqual([false, false]);
        const xg = GpuTensor.upload(cx, new HostTensor('float32', [T, H], x));
        // both load paths: 16-byte loads where the shapes allow (wideLoads), and the 8-column table loads
        const out: { wide: boolean; h: Float32Array; y: Float32Array }[] = [];
        for (const wideLoads of [true, false]) {
          const rec = new Recorder(cx);
          const hg = gemvGateUpGpu(cx, rec, xg, gg, gu, act, { wideLoads });
          const yg = gemvDownGpu(cx, rec, hg, gg, dn, { wideLoads });
          rec.submit();
          out.push({ wide: wideLoads, h: (await hg.download()).toFloat32(), y: (await yg.download()).toFloat32() });
          for (const b of [hg, yg]) b.destroy();
        }
        xg.destroy();
        destroyExpertWeights(gu);
        destroyExpertWeights(dn);
        gg.destroy();
        return out;
      });
      for (const o of out) {
        expect(relErr(o.h, hRef), `${c.name} h (wide ${o.wide})`).toBeLessThan(2e-5);
        expect(relErr(o.y, yRef), `${c.name} y (wide ${o.wide})`).toBeLessThan(2e-5);
      }
    });
  }
  it('reports packed weights whose columns are not a multiple of 8 as unsupported (the layer then uses the grouped GEMMs)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const w = uploadExpertWeights(ctx, quantizeExperts(new Float32Array(2 * 4 * 12), 2, 4, 12, { kind: 'fp8_block' }));
    expect(gemvSupports(w)).toBe(false);
    destroyExpertWeights(w);
  });
});
