/** Test helper: independent per-element decoders of the expert weight formats. */
import { e4m3ToF32, e5m2ToF32, f16ToF32, toFloat32 } from '@webmoe/tensor';
import { HostTensor } from '@webmoe/tensor';
import type { ExpertWeightsHost } from '@webmoe/kernels-wgsl';

/**
 * int_block weights with zero points: the zeros replaced by random codes over the whole range
 * (0..2^bits-1), so that every block has its own zero point and a kernel that reads the wrong
 * block's (or the fixed 8 / 128) fails. Other containers are returned as they are.
 */
export function randomZeros(r: () => number, w: ExpertWeightsHost): ExpertWeightsHost {
  if (w.kind !== 'int_block' || !w.zeros) return w;
  const n = 2 ** w.bits;
  const z = Uint8Array.from({ length: w.zeros.size }, () => Math.min(n - 1, Math.floor(r() * n)));
  return { ...w, zeros: new HostTensor('uint8', [...w.zeros.shape], z) };
}

/** Independent per-element decoders written from docs/moe-semantics.md (no code shared with quant-ref.ts). */
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
export function elementOf(w: ExpertWeightsHost, e: number, r: number, c: number): number {
  switch (w.kind) {
    case 'dense':
    {
      const i = (e * w.w.shape[1] + r) * w.w.shape[2] + c;
      return toFloat32(w.w.dtype, w.w.data.subarray(i, i + 1) as typeof w.w.data)[0];
    }
    case 'fp8_block': {
      const [, rows, cols] = w.q.shape;
      const q = (w.q.data as Uint8Array)[(e * rows + r) * cols + c];
      const v = w.q.dtype === 'float8_e4m3fn' ? e4m3ToF32(q) : e5m2ToF32(q);
      const [, nbr, nbc] = w.scaleInv.shape;
      return Math.fround(v * (w.scaleInv.data as Float32Array)[(e * nbr + Math.floor(r / w.block[0])) * nbc + Math.floor(c / w.block[1])]);
    }
    case 'mxfp4': {
      const [, rows, nb] = w.blocks.shape;
      const byte = (w.blocks.data as Uint8Array)[((e * rows + r) * nb + Math.floor(c / 32)) * 16 + Math.floor((c % 32) / 2)];
      const nib = c % 2 === 0 ? byte & 0xf : byte >> 4;
      const mag = FP4[nib & 7] * Math.pow(2, (w.scales.data as Uint8Array)[(e * rows + r) * nb + Math.floor(c / 32)] - 127);
      return nib & 8 ? -mag : mag;
    }
    case 'int_block': {
      const [, rows, bytes] = w.q.shape;
      const b = (w.q.data as Uint8Array)[(e * rows + r) * bytes + (w.bits === 8 ? c : Math.floor(c / 2))];
      const code = w.bits === 8 ? b : c % 2 === 0 ? b % 16 : Math.floor(b / 16);
      const nb = w.scales.shape[2];
      const si = (e * rows + r) * nb + Math.floor(c / w.blockSize);
      const s = w.scales.dtype === 'float16' ? f16ToF32(w.scales.data[si]) : (w.scales.data as Float32Array)[si];
      const zero = w.zeros ? (w.zeros.data as Uint8Array)[si] : 2 ** (w.bits - 1);
      return Math.fround((code - zero) * s);
    }
  }
}

