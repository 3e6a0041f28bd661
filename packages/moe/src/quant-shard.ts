/**
 * Tensor-parallel slices of quantized experts (docs/DISTRIBUTED.md, "Quantised
 * experts"): the expert width I is cut only where no quantisation block (nor
 * dynamic activation group) is cut, and every packed tensor is sliced in its
 * own index units (codes, blocks, scales) without decoding anything. The block
 * of each tensor along each axis comes from {@link quantParamSpecs}, so the
 * rules of every format live there and here only.
 */
import { ACT_QUANT_GROUP } from '@webmoe/kernels-wgsl';
import { ShardingError, takeRanges, type GateUpLayout, type IndexRange } from '@webmoe/sharding';
import type { HostTensor } from '@webmoe/tensor';
import { quantParamSpecs, type QuantParamSpec, type ResolvedQuantConfig } from './quant-experts.js';

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/** The I-axis unit of a tensor-parallel split of quantized experts, and what sets it. @example `quantTPUnit(q, 'concat', 2048, 7168) // { unit: 128, reasons: [...] }` */
export interface QuantTPUnit {
  /** Cut I only at multiples of this (the lcm of every block along I). */
  unit: number;
  /** One phrase per constraint, e.g. `down_proj_scale_inv: 128 input channels per index`. */
  reasons: string[];
}

/** The specs of gate_up [E, 2I, H] and down [E, H, I] of quantized experts of width I. */
function specs(q: ResolvedQuantConfig, E: number, I: number, H: number): { gateUp: QuantParamSpec[]; down: QuantParamSpec[] } {
  return { gateUp: quantParamSpecs(q, 'gate_up_proj', E, 2 * I, H), down: quantParamSpecs(q, 'down_proj', E, H, I) };
}

/**
 * The unit along I in which quantized experts of width I may be split
 * (tensor parallel): gate_up rows may not cut a row block (concat layout:
 * gate rows `[s, e)` and up rows `[I+s, I+e)`, so `s` on a block; interleaved:
 * rows `[2s, 2e)`, so `2s` on a block), down's input channels may not cut a
 * column block (fp8 scale blocks, MXFP4's 32, int4's two codes per byte,
 * int scale blocks), and with dynamic fp8 activations the down input's
 * groups of {@link ACT_QUANT_GROUP} channels may not be cut either.
 *
 * @example
 * ```ts
 * quantTPUnit(normalizeQuantConfig({ format: 'int4', blockSize: 6 }), 'concat', 22, 16).unit // 6
 * ```
 */
export function quantTPUnit(q: ResolvedQuantConfig, layout: GateUpLayout, I: number, H: number): QuantTPUnit {
  const { gateUp, down } = specs(q, 1, I, H);
  let unit = 1;
  const reasons: string[] = [];
  for (const s of gateUp) {
    if (s.rowsPerIndex === 1) continue;
    const u = layout === 'interleaved' ? s.rowsPerIndex / gcd(s.rowsPerIndex, 2) : s.rowsPerIndex;
    unit = lcm(unit, u);
    reasons.push(`${s.name}: ${s.rowsPerIndex}-row blocks (${layout} gate/up rows)`);
  }
  for (const s of down) {
    if (s.colsPerIndex === 1) continue;
    unit = lcm(unit, s.colsPerIndex);
    reasons.push(`${s.name}: ${s.colsPerIndex} input channels per ${s.role === 'scale' ? 'scale' : 'packed index'}`);
  }
  if (q.activationQuant === 'dynamic') {
    unit = lcm(unit, ACT_QUANT_GROUP);
    reasons.push(`dynamic fp8 activations: ${ACT_QUANT_GROUP} channels per scale`);
  }
  return { unit, reasons };
}

/**
 * The slice of one parameter of quantized experts (`name` as in
 * {@link quantParamSpecs}, e.g. `gate_up_proj_scale_inv`, `down_proj_blocks`)
 * holding I range `[s, e)` of experts of width I: gate_up params along axis 1
 * (gate rows and the matching up rows, or interleaved pairs), down params
 * along axis 2, each in its own index units. The tensor stays packed (bytes
 * copied). A boundary that is not on one of the tensor's blocks is a
 * ShardingError naming the tensor, its block and the rows or channels.
 *
 * @example
 * ```ts
 * quantTPSlice(q, 'down_proj_scale_inv', scales, 256, 7168, [128, 256], 'concat', 'MoE.shard') // [E, 56, 1]
 * ```
 */
export function quantTPSlice(q: ResolvedQuantConfig, name: string, t: HostTensor, I: number, H: number, [s, e]: IndexRange, layout: GateUpLayout, what: string): HostTensor {
  const { gateUp, down } = specs(q, t.shape[0], I, H);
  const gu = gateUp.find((p) => p.name === name);
  const dn = down.find((p) => p.name === name);
  const spec = gu ?? dn;
  if (!spec) throw new ShardingError(`${what} parameter ${name}`, `one of ${[...gateUp, ...down].map((p) => p.name).join(', ')}`, name);
  // element ranges along the weight's rows (gate_up) or input channels (down), then in the tensor's index units
  const [per, total, elems, word] = gu
    ? [gu.rowsPerIndex, 2 * I, layout === 'interleaved' ? [[2 * s, 2 * e]] : [[s, e], [I + s, I + e]], 'rows']
    : [spec.colsPerIndex, I, [[s, e]], 'input channels'];
  const ranges = (elems as [number, number][]).map(([a, b]): [number, number] => {
    if (a % per !== 0 || (b % per !== 0 && b !== total)) {
      throw new ShardingError(`${what}: ${name} [${spec.shape.join(', ')}] (${q.format}, blocks of ${per} ${word})`, `shard boundaries on multiples of ${per} ${word}`, `${word} [${a}, ${b}) of ${total} (I range [${s}, ${e}) of ${I}): the split would cut a block`);
    }
    return [a / per, Math.ceil(b / per)];
  });
  return takeRanges(t, gu ? 1 : 2, ranges);
}
