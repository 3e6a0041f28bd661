/**
 * Validation of the grouped GEMMs' arguments, shared by the GPU ops
 * (grouped-gemm.ts), their references (grouped-gemm-ref.ts) and the warm-up:
 * the activation, the activation quantisation, the groupings and the bias.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { ExpertActivation, GroupingGpu, GroupingRef } from './moe-types.js';
import type { ExpertActQuantOptions } from './quant-ref.js';
import type { GroupedGemmVariant } from './grouped-gemm-wgsl.js';
import type { GatedActivationParams } from './activation-ref.js';

/** A checked activation: its kind and parameters, and whether gate and up rows interleave. */
export interface ActParams extends GatedActivationParams {
  interleaved: boolean;
}

export function checkAct(act: ExpertActivation): ActParams {
  if (!act || typeof act !== 'object') throw new ValueError('activation', 'an ExpertActivation object', act);
  if (act.layout !== 'concat' && act.layout !== 'interleaved') throw new ValueError('activation layout', "'concat' | 'interleaved'", act.layout);
  const interleaved = act.layout === 'interleaved';
  switch (act.kind) {
    case 'silu':
      return { kind: 'silu', limit: 0, alpha: 0, interleaved };
    case 'swiglu_limit':
      if (!(typeof act.limit === 'number' && act.limit > 0 && Number.isFinite(act.limit))) throw new ValueError('swiglu_limit activation limit', 'a finite number > 0', act.limit);
      return { kind: 'swiglu_limit', limit: act.limit, alpha: 0, interleaved };
    case 'swigluoai': {
      const limit = act.limit ?? 7;
      const alpha = act.alpha ?? 1.702;
      if (!(limit > 0 && Number.isFinite(limit))) throw new ValueError('swigluoai activation limit', 'a finite number > 0 (GPT-OSS: 7)', limit);
      if (!Number.isFinite(alpha)) throw new ValueError('swigluoai activation alpha', 'a finite number (GPT-OSS: 1.702)', alpha);
      return { kind: 'swigluoai', limit, alpha, interleaved };
    }
    default:
      throw new ValueError('activation kind', "'silu' | 'swiglu_limit' | 'swigluoai'", (act as { kind: unknown }).kind);
  }
}

export function checkActQuant(o: ExpertActQuantOptions): { on: boolean; clamp: number | undefined } {
  const q = o.actQuant ?? 'none';
  if (q !== 'none' && q !== 'fp8_dynamic') throw new ValueError('actQuant', "'none' | 'fp8_dynamic'", q);
  if (o.actAmaxClamp !== undefined && !(o.actAmaxClamp > 0 && Number.isFinite(o.actAmaxClamp)))
    throw new ValueError('actAmaxClamp', 'a finite number > 0 (MAX: 1200) or undefined', o.actAmaxClamp);
  return { on: q === 'fp8_dynamic', clamp: o.actAmaxClamp };
}

export function checkGroupingGpu(g: GroupingGpu): { T: number; k: number; E: number } {
  const { T, k, E } = g;
  if (!(Number.isInteger(T) && T >= 0)) throw new ValueError('grouping T', 'a non-negative integer', T);
  if (!(Number.isInteger(k) && k >= 1)) throw new ValueError('grouping k', 'a positive integer', k);
  if (!(Number.isInteger(E) && E >= 1)) throw new ValueError('grouping E', 'a positive integer', E);
  for (const [name, t, n] of [['offsets', g.offsets, E + 1], ['order', g.order, T * k]] as const) {
    if (t.dtype !== 'uint32') throw new DTypeError(`grouping ${name}`, ['uint32'], t.dtype);
    if (t.size !== n) throw new ShapeError(`grouping ${name}`, `${n} elements`, t.shape);
  }
  return { T, k, E };
}

export function checkGroupingRef(g: GroupingRef): void {
  const { T, k, E } = g;
  if (!(Number.isInteger(T) && T >= 0 && Number.isInteger(k) && k >= 1 && Number.isInteger(E) && E >= 1))
    throw new ValueError('grouping (T, k, E)', 'T >= 0, k >= 1, E >= 1 integers', [T, k, E]);
  if (g.offsets.length !== E + 1) throw new ShapeError('grouping offsets', [E + 1], [g.offsets.length]);
  if (g.order.length !== T * k) throw new ShapeError('grouping order', [T * k], [g.order.length]);
}

export function checkBias(what: string, bias: { dtype: string; shape: readonly number[] } | undefined, E: number, rows: number): GroupedGemmVariant['bias'] {
  if (!bias) return 'none';
  if (bias.dtype !== 'float32' && bias.dtype !== 'bfloat16' && bias.dtype !== 'float16') throw new DTypeError(what, ['float32', 'bfloat16', 'float16'], bias.dtype);
  if (bias.shape.length !== 2 || bias.shape[0] !== E || bias.shape[1] !== rows) throw new ShapeError(what, [E, rows], bias.shape);
  return bias.dtype;
}
