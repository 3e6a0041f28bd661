// The full-size layers on the H200 (2 GiB per storage binding), planned on the CPU: every routed stack of DeepSeek-V3,
// Kimi-K2 and Llama-4-Maverick in each checkpoint dtype splits into chunks of whole experts that each fit a binding,
// and their bytes (padded per chunk tensor) stay within 2% of the packed bytes plus scales the shape implies.
import { describe, expect, it } from 'vitest';
import { DTYPES, DeviceRef } from '@webmoe/tensor';
import { planExpertChunks, type ExpertWeightsShape } from '@webmoe/kernels-wgsl';
import { MoE } from '@webmoe/moe';
import { expertMatrixBytes, findModel, layerDtype, type BenchDtype } from '../src/models.js';

const H200_BINDING = 2 ** 31;

/** The routed stacks as the bench's MoE declares them (shapes only; nothing allocated on the CPU device). */
function stacks(model: string, dtype: BenchDtype): { gateUp: ExpertWeightsShape; down: ExpertWeightsShape; layout: 'concat' | 'interleaved' } {
  const s = findModel(model);
  const moe = new MoE({
    devices: [DeviceRef.CPU()], hiddenDim: s.H, numExperts: s.E, numExpertsPerToken: s.k, moeDim: s.I, dtype: layerDtype(dtype),
    quantConfig: dtype === 'fp8' ? { format: 'fp8_block', weightBlockSize: [128, 128] } : undefined,
  });
  return { ...moe.stacked.stackShapes(), layout: moe.stacked.gateUpLayout };
}

/** Bytes of the chunks of `ranges` of whole experts (each chunk tensor padded to whole words) and the largest chunk tensor. */
function chunkBytes(shape: ExpertWeightsShape, ranges: ReturnType<typeof planExpertChunks>): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  const tensors = Object.values(shape).filter((t): t is { dtype: keyof typeof DTYPES; shape: number[] } => typeof t === 'object' && t !== null && 'dtype' in t);
  for (const r of ranges) {
    for (const t of tensors) {
      const perExpert = t.shape.slice(1).reduce((a, b) => a * b, 1) * DTYPES[t.dtype].bytes;
      const b = Math.ceil((r.experts * perExpert) / 4) * 4;
      total += b;
      largest = Math.max(largest, b);
    }
  }
  return { total, largest };
}

describe('full-size layers on 2 GiB bindings', () => {
  const cases: [string, BenchDtype, { gateUp: number; down: number }][] = [
    ['deepseek-v3', 'bf16', { gateUp: 8, down: 4 }],
    ['deepseek-v3', 'fp8', { gateUp: 4, down: 2 }],
    ['kimi-k2', 'bf16', { gateUp: 11, down: 6 }],
    ['kimi-k2', 'fp8', { gateUp: 6, down: 3 }],
    ['llama4-maverick', 'bf16', { gateUp: 11, down: 6 }], // 168 MB per gate_up expert: 12 per binding
  ];
  for (const [model, dtype, want] of cases) {
    it(`${model} ${dtype}: chunks of whole experts within a binding, bytes within 2% of packed`, () => {
      const s = findModel(model);
      const st = stacks(model, dtype);
      const gu = planExpertChunks(st.gateUp, st.layout, H200_BINDING);
      const dn = planExpertChunks(st.down, 'rows', H200_BINDING);
      expect({ gateUp: gu.length, down: dn.length }).toEqual(want);
      for (const rs of [gu, dn]) expect(rs.every((r) => r.o0 === 0)).toBe(true); // whole experts
      const a = chunkBytes(st.gateUp, gu);
      const b = chunkBytes(st.down, dn);
      expect(Math.max(a.largest, b.largest)).toBeLessThanOrEqual(H200_BINDING);
      const mg = expertMatrixBytes(dtype, 2 * s.I, s.H);
      const md = expertMatrixBytes(dtype, s.H, s.I);
      const packed = s.E * (mg.weights + mg.scales + md.weights + md.scales);
      expect(a.total + b.total).toBeGreaterThanOrEqual(packed);
      expect(a.total + b.total).toBeLessThanOrEqual(1.02 * packed);
    });
  }
});
