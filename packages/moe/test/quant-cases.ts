// Quantized random layers for the tests: independent decoders of the packed formats and a builder that quantizes a
// random case (test/random-cases.ts), routed and shared experts, and decodes the codes back for test/reference.ts.
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import type { ExpertWeightsHost, GpuContext } from '@webmoe/kernels-wgsl';
import { MoE, quantize, type ActivationQuant, type MoEQuantConfig } from '../src/index.js';
import type { RefWeights } from './reference.js';
import { CASES, buildCase, type RandomCase } from './random-cases.js';

// Independent decoders (docs/moe-semantics.md "Number formats"), not the package's.
function e4m3(b: number): number {
  const s = b & 0x80 ? -1 : 1, e = (b >> 3) & 15, m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return s * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}
function e5m2(b: number): number {
  const s = b & 0x80 ? -1 : 1, e = (b >> 2) & 31, m = b & 3;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (e === 0 ? (m / 4) * 2 ** -14 : (1 + m / 4) * 2 ** (e - 15));
}
function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** W[e, r, c] as f32 [E*rows*cols] (test side only). */
export function decodeAll(w: ExpertWeightsHost, E: number, rows: number, cols: number): Float32Array {
  const out = new Float32Array(E * rows * cols);
  for (let e = 0; e < E; e++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const er = e * rows + r;
        let v: number;
        switch (w.kind) {
          case 'fp8_block': {
            const [br, bc] = w.block;
            const code = (w.q.data as Uint8Array)[er * cols + c];
            const sc = (w.scaleInv.data as Float32Array)[(e * Math.ceil(rows / br) + Math.floor(r / br)) * Math.ceil(cols / bc) + Math.floor(c / bc)];
            v = (w.q.dtype === 'float8_e4m3fn' ? e4m3(code) : e5m2(code)) * sc;
            break;
          }
          case 'int_block': {
            const nb = Math.ceil(cols / w.blockSize);
            const si = er * nb + Math.floor(c / w.blockSize);
            const sc = w.scales.dtype === 'float16' ? f16((w.scales.data as Uint16Array)[si]) : (w.scales.data as Float32Array)[si];
            const q = w.q.data as Uint8Array;
            const code = w.bits === 8 ? q[er * cols + c] : (q[er * (cols / 2) + (c >> 1)] >> (4 * (c & 1))) & 15;
            const zero = w.zeros ? (w.zeros.data as Uint8Array)[si] : w.bits === 8 ? 128 : 8;
            v = (code - zero) * sc;
            break;
          }
          case 'mxfp4': {
            const byte = (w.blocks.data as Uint8Array)[er * (cols / 2) + (c >> 1)];
            const code = (byte >> (4 * (c & 1))) & 15;
            v = (code & 8 ? -1 : 1) * FP4[code & 7] * 2 ** ((w.scales.data as Uint8Array)[er * (cols / 32) + (c >> 5)] - 127);
            break;
          }
          default:
            throw new Error('test: dense');
        }
        out[(e * rows + r) * cols + c] = v;
      }
  return out;
}

/** State-dict entries of a quantized container under `prefix` (parameter names of QuantizedExperts). */
function entries(prefix: string, base: string, w: ExpertWeightsHost): [string, HostTensor][] {
  switch (w.kind) {
    case 'fp8_block':
      return [[`${prefix}${base}`, w.q], [`${prefix}${base}_scale_inv`, w.scaleInv]];
    case 'mxfp4':
      return [[`${prefix}${base}_blocks`, w.blocks], [`${prefix}${base}_scales`, w.scales]];
    case 'int_block':
      return [[`${prefix}${base}_qweight`, w.q], [`${prefix}${base}_scales`, w.scales], ...(w.zeros ? [[`${prefix}${base}_zeros`, w.zeros] as [string, HostTensor]] : [])];
    default:
      throw new Error('test: dense');
  }
}

export const FORMATS: MoEQuantConfig[] = [
  { format: 'fp8_block', weightBlockSize: [8, 16] },
  { format: 'fp8_block', fp8Dtype: 'float8_e5m2' },
  { format: 'int8', blockSize: 8, scaleDtype: 'float32' },
  { format: 'int4', blockSize: 16 },
  { format: 'int4', blockSize: 8, zeroPoint: true },
];

/** A quantized layer (routed and shared experts in `fmt`) from a random case (an index into CASES, or a case), and the reference weights decoded from its codes. */
export function quantizedCase(ci: number | RandomCase, fmt: MoEQuantConfig, seed: number, T: number, devices: DeviceRef[] = [DeviceRef.CPU()], ctx?: GpuContext, activationQuant?: ActivationQuant) {
  const c = typeof ci === 'number' ? CASES[ci] : ci;
  const { sd, w, x } = buildCase(c, seed, T);
  const { H, E, I } = c.cfg;
  const S = c.cfg.sharedDim ?? 0;
  const q = { ...fmt, quantizeSharedExperts: S > 0 };
  const moe = new MoE({ ...c.opts, dtype: c.dtype, devices, ctx, activationQuant, quantConfig: { ...q, biasDtype: c.dtype as 'float32' | 'bfloat16' } });
  const dense = (name: string, shape: number[]) => ({ kind: 'dense' as const, w: sd.get(name)!.reshape(shape) });
  const routed = quantize({ gateUp: dense('experts.gate_up_proj', [E, 2 * I, H]), down: dense('experts.down_proj', [E, H, I]) }, fmt);
  const qsd = new Map<string, HostTensor>();
  for (const [k, v] of sd) if (!k.startsWith('experts.gate_up_proj') && !k.startsWith('experts.down_proj') && !k.startsWith('shared_experts.')) qsd.set(k, v);
  for (const [k, v] of [...entries('experts.', 'gate_up_proj', routed.gateUp), ...entries('experts.', 'down_proj', routed.down)]) qsd.set(k, v);
  if (c.opts.hasExpertBias) {
    qsd.set('experts.gate_up_proj_bias', sd.get('experts.gate_up_proj_bias')!);
    qsd.set('experts.down_proj_bias', sd.get('experts.down_proj_bias')!);
  }
  const ref: RefWeights = { ...w, gateUp: decodeAll(routed.gateUp, E, 2 * I, H), down: decodeAll(routed.down, E, H, I) };
  if (S > 0) {
    const gu = new Float32Array(2 * S * H);
    gu.set(w.sGate!, 0);
    gu.set(w.sUp!, S * H);
    const shared = quantize({ gateUp: { kind: 'dense', w: HostTensor.fromFloat32([1, 2 * S, H], gu) }, down: { kind: 'dense', w: HostTensor.fromFloat32([1, H, S], w.sDown!) } }, fmt);
    for (const [k, v] of [...entries('shared_experts.', 'gate_up_proj', shared.gateUp), ...entries('shared_experts.', 'down_proj', shared.down)]) qsd.set(k, v);
    const sgu = decodeAll(shared.gateUp, 1, 2 * S, H);
    ref.sGate = sgu.slice(0, S * H);
    ref.sUp = sgu.slice(S * H);
    ref.sDown = decodeAll(shared.down, 1, H, S);
  }
  moe.loadStateDict(qsd);
  return { moe, ref, x, cfg: c.cfg, name: c.name };
}

