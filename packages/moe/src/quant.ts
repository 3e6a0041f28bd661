/**
 * `quantize`: turns a layer (or stacked expert weights) whose checkpoint is
 * not quantized into fp8_block / mxfp4 / int4 / int8 experts. The result
 * holds packed codes and scales only; shared experts follow the checkpoint
 * (they stay as they are).
 */
import { HostTensor, ValueError } from '@webmoe/tensor';
import { expertDims, quantizeExperts, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { MoE, type ExpertWeightSet } from './moe.js';
import { expertQuantFormat, normalizeQuantConfig, type MoEQuantConfig, type MoEQuantFormat, type ResolvedQuantConfig } from './quant-experts.js';
import { UnsupportedError } from './errors.js';

function toConfig(format: MoEQuantConfig | MoEQuantFormat): MoEQuantConfig {
  return typeof format === 'string' ? { format } : format;
}

/** Quantizes one dense container [E, rows, cols] into the resolved format `q`. */
function quantizeOne(w: ExpertWeightsHost, what: string, q: ResolvedQuantConfig): ExpertWeightsHost {
  if (w.kind !== 'dense') throw new ValueError(`quantize ${what}`, 'dense (float32 / bfloat16 / float16) expert weights', w.kind);
  const { E, rows, cols } = expertDims(w, `quantize ${what}`);
  return quantizeExperts(w.w.toFloat32(), E, rows, cols, expertQuantFormat(q));
}

/** Quantizes both stacks into the resolved format `q`. */
function quantizeSet(w: ExpertWeightSet<ExpertWeightsHost>, q: ResolvedQuantConfig): ExpertWeightSet<ExpertWeightsHost> {
  return { gateUp: quantizeOne(w.gateUp, 'gateUp', q), down: quantizeOne(w.down, 'down', q) };
}

/**
 * Quantizes f32/bf16/f16 experts into `format` (`'fp8_block'`, `'mxfp4'`,
 * `'int4'`, `'int8'` or a full {@link MoEQuantConfig}):
 * - given an `MoE` with dense experts, returns a new `MoE` on the same
 *   device with `quantConfig` set, the routed experts quantized (codes and
 *   scales only: no dense copy is kept), and everything else (router, biases,
 *   shared experts, shared-expert gate) copied as it is. The input layer is
 *   left untouched (destroy it if no longer needed).
 * - given stacked dense weights `{ gateUp: { kind: 'dense', w }, down }`,
 *   returns the quantized host containers (for `MoE.record` or tests).
 *
 * fp8_block: per 128x128 block (or `weightBlockSize`) scale_inv = amax/448;
 * mxfp4: shared e8m0 exponent per 32 inputs; int4/int8: symmetric, zero point
 * 8/128, scale = amax/(2^(bits-1)-1) per `blockSize` (default 32) inputs, or
 * with `zeroPoint: true` asymmetric (min/max scale and a zero point per block).
 *
 * @example
 * ```ts
 * const bf16 = await MoE.fromHuggingFace({ source: dir, layer: 0, device: DeviceRef.GPU(), ctx });
 * const int4 = quantize(bf16, { format: 'int4', blockSize: 32 });
 * bf16.destroy();
 * const y = await int4.forward(x);
 * ```
 */
export function quantize(moe: MoE, format: MoEQuantConfig | MoEQuantFormat): MoE;
export function quantize(weights: ExpertWeightSet<ExpertWeightsHost>, format: MoEQuantConfig | MoEQuantFormat): ExpertWeightSet<ExpertWeightsHost>;
export function quantize(src: MoE | ExpertWeightSet<ExpertWeightsHost>, format: MoEQuantConfig | MoEQuantFormat): MoE | ExpertWeightSet<ExpertWeightsHost> {
  const cfg = toConfig(format);
  const resolved = normalizeQuantConfig(cfg); // typed errors before any work
  if (!(src instanceof MoE)) {
    if (typeof src !== 'object' || src === null || !('gateUp' in src) || !('down' in src)) throw new ValueError('quantize input', 'an MoE or { gateUp, down } expert weights', typeof src);
    return quantizeSet(src, resolved);
  }
  const moe = src;
  const dense = moe.stacked;
  if (dense.format !== 'dense') throw new UnsupportedError('quantize', `a layer whose experts are already ${dense.format}`, 'layers with dense experts');
  const q = { ...cfg, quantizeSharedExperts: false, biasDtype: (dense.gateUpBias?.dtype ?? 'float32') as 'float32' | 'bfloat16' | 'float16' };
  const gate = moe.gate;
  const rp = gate.routerParams();
  const out = new MoE({
    devices: moe.devices,
    ctx: moe.ctx,
    ...moe.layerOptions(),
    gateOptions: { hasBias: !!gate.bias, normTopkProb: rp.normTopkProb, nGroup: rp.nGroup, topkGroup: rp.topkGroup, routedScalingFactor: rp.routedScalingFactor },
    quantConfig: q,
    isSharding: moe.isSharding,
  });
  try {
    const sd = new Map<string, HostTensor>();
    for (const [n, t] of moe.stateDict()) if (!n.startsWith('experts.')) sd.set(n, t);
    const w = quantizeSet(dense.hostWeights(), out.quant!); // the format as the new layer's config resolved it
    const put = (base: string, c: ExpertWeightsHost) => {
      const names = out.stacked.namedParameters().map(([n]) => n);
      const [wn, sn] = names.filter((n) => n.startsWith(base) && !n.endsWith('_bias'));
      switch (c.kind) {
        case 'fp8_block':
          sd.set(`experts.${wn}`, c.q).set(`experts.${sn}`, c.scaleInv);
          return;
        case 'mxfp4':
          sd.set(`experts.${wn}`, c.blocks).set(`experts.${sn}`, c.scales);
          return;
        case 'int_block':
          sd.set(`experts.${wn}`, c.q).set(`experts.${sn}`, c.scales);
          if (c.zeros) sd.set(`experts.${base}_zeros`, c.zeros);
          return;
        default:
          throw new ValueError('quantize result', 'a quantized container', c.kind);
      }
    };
    put('gate_up_proj', w.gateUp);
    put('down_proj', w.down);
    if (dense.gateUpBias) {
      sd.set('experts.gate_up_proj_bias', dense.gateUpBias.value);
      sd.set('experts.down_proj_bias', dense.downBias!.value);
    }
    out.loadStateDict(sd);
    return out;
  } catch (e) {
    out.destroy();
    throw e;
  }
}
