/**
 * How a loaded MoE layer is cut into shards ({@link ShardedMoE}'s
 * constructor): per shard, the constructor options that differ from the
 * source layer's and how each state-dict tensor is cut (expert parallel:
 * whole experts; tensor parallel: slices of the expert width, whole
 * quantisation blocks).
 */
import type { HostTensor } from '@webmoe/tensor';
import { ShardingError, ShardingStrategy, shardRange, takeRanges, type DeviceGroup, type GateUpLayout } from '@webmoe/sharding';
import type { MoELayer } from './layer.js';
import type { MoEOptions } from './moe-options.js';
import { GroupedGate, type GateClass } from './gates.js';
import { UnsupportedError } from './errors.js';
import type { QuantizedExperts, ResolvedQuantConfig } from './quant-experts.js';
import { configOptions, expertQuant } from './layer-config.js';
import { quantTPSlice, quantTPUnit } from './quant-shard.js';

/** Shard i's constructor options (beyond the source's) and how it takes each state-dict tensor. */
export type ShardPlan = (i: number) => { opts: Partial<MoEOptions>; take: (name: string, t: HostTensor) => HostTensor };

/** The state-dict names of the routed experts' parameters (dense or packed codes, scales, biases): what expert parallelism splits by expert. */
function expertKeys(moe: MoELayer): Set<string> {
  return new Set(moe.stacked.namedParameters().map(([n]) => `experts.${n}`));
}

/** The constructor options that rebuild `moe` from its config (one device, given width and experts). */
export function shardOptions(moe: MoELayer, group: DeviceGroup, i: number, extra: Partial<MoEOptions>): MoEOptions {
  const g = moe.gate;
  const gateOptions: MoEOptions['gateOptions'] = { hasBias: !!g.bias, normTopkProb: g.normTopkProb };
  if (g instanceof GroupedGate) Object.assign(gateOptions, { nGroup: g.nGroup, topkGroup: g.topkGroup, routedScalingFactor: g.routedScalingFactor });
  return {
    devices: [group.devices[i]],
    ctx: group.kind === 'gpu' ? group.context(i) : undefined,
    // the source's config (its quant config resolved: format, blocks and activation scheme as the layer runs them)
    ...configOptions(moe.config),
    gateCls: g.constructor as GateClass,
    mlpCls: moe.mlpCls,
    gateOptions,
    isSharding: true,
    ...extra,
  };
}

/** The unit of a tensor-parallel split of a width (moeDim, sharedExpertsDim) and, for quantized weights, the blocks that set it. */
interface TPUnit {
  unit: number;
  /** '' for dense weights; else e.g. ` = fp8_block blocks (down_proj_scale_inv: 128 input channels per scale; ...)`. */
  why: string;
}

/** The routed experts' dense weights and biases that tensor parallelism splits whole (packed codes and shared experts are sliced below). */
type RoutedRole = 'gate_up' | 'gate_up_bias' | 'down' | 'down_bias';

/**
 * Tensor parallelism's split of one routed-expert weight over n shards: gate_up rows (axis -2) and its bias
 * (axis -1) as gate/up pairs of `layout`, down columns (axis -1, I), the down bias on the leader (added once
 * after the all-reduce). `unit`: the rows of I a cut may not split (quantization blocks).
 * @example `tpStrategyFor('down', 2, 1, 'concat').shard(down, 1).tensor // [E, H, I/2]`
 */
function tpStrategyFor(role: RoutedRole, n: number, unit: number, layout: GateUpLayout): ShardingStrategy {
  switch (role) {
    case 'gate_up':
      return ShardingStrategy.gateUp(n, { unit, layout, axis: -2 });
    case 'gate_up_bias':
      return ShardingStrategy.gateUp(n, { unit, layout, axis: -1 });
    case 'down':
      return ShardingStrategy.axiswise(-1, n, { unit });
    case 'down_bias':
      return ShardingStrategy.leader(n);
  }
}

/**
 * The unit of a tensor-parallel split of width `dim`: the strategy's for
 * dense weights; for quantized ones the block unit of {@link quantTPUnit}
 * (a strategy unit that is not 1 or a multiple of it would cut blocks: a
 * ShardingError naming the unit).
 */
function tpUnit(what: string, q: ResolvedQuantConfig | undefined, layout: GateUpLayout, dim: number, H: number, strategyUnit: number): TPUnit {
  if (!q) return { unit: strategyUnit, why: '' };
  const { unit, reasons } = quantTPUnit(q, layout, dim, H);
  const why = ` = ${q.format} blocks (${reasons.join('; ')})`;
  if (strategyUnit !== 1 && strategyUnit % unit !== 0) throw new ShardingError(`${what} unit`, `1 or a multiple of ${unit}${why}`, `${strategyUnit}: the split would cut a block`);
  return { unit: Math.max(unit, strategyUnit), why };
}

/** The n ranges of `dim` in whole units; a ShardingError naming the unit and the sizes when a shard would be empty (for quantized weights: when only a cut block could feed it). */
function nonEmptyRanges(what: string, name: string, dim: number, n: number, { unit, why }: TPUnit): [number, number][] {
  const r = Array.from({ length: n }, (_, i) => shardRange(dim, i, n, unit));
  const empty = r.findIndex(([s, e]) => e === s);
  if (empty >= 0) {
    const cut = why ? ` (${Math.ceil(dim / unit)} unit(s) of ${unit} for ${n} shards: any split of ${name} into ${n} would cut a block)` : '';
    throw new ShardingError(`${what}: ${name} = ${dim} (unit ${unit}${why})`, `at least ${(n - 1) * unit + 1} so that every shard gets a slice`, `an empty shard ${empty}${cut}`);
  }
  return r;
}

/**
 * Expert parallel over n shards: shard i gets `epSize = n`, `shardIndex = i`
 * and experts `[i*E/n, (i+1)*E/n)` of every routed-expert tensor; the rest
 * is replicated. `sliced: false`: the source is shard i already (a rank's own
 * expert shard), nothing is cut.
 */
export function epShardPlan(source: MoELayer, n: number, sliced = true): ShardPlan {
  const ep = ShardingStrategy.expertParallel(n);
  const keys = expertKeys(source);
  return (i) => ({
    opts: { epSize: n, shardIndex: i },
    take: (name, t) => (sliced && keys.has(name) ? ep.shard(t, i).tensor : t),
  });
}

/**
 * Tensor parallel over n shards: shard i holds `I_i` of every expert's gate
 * rows and the matching up rows (concat or interleaved layout, from the
 * layer's activation), the matching down columns, the gate_up bias sliced
 * like its rows and the down bias on shard 0 only; the shared expert is split
 * the same way; the router is replicated. Quantized experts are cut in whole
 * blocks (quantTPUnit) and sliced packed (quantTPSlice). Typed errors before
 * anything is cut.
 */
export function tpShardPlan(source: MoELayer, strategy: ShardingStrategy, n: number): ShardPlan {
  // gate/up layout from the layer's activation (GPT-OSS interleaves gate and up rows)
  const what = `MoE.shard tensorParallel(${n})`;
  const H = source.hiddenDim;
  const layout = source.activation.layout;
  const q = expertQuant(source.config.experts);
  const I = source.moeDim;
  const S = source.sharedExpertsDim;
  const routedUnit = tpUnit(what, q, layout, I, H, strategy.unit);
  const sh = source.shared;
  const sharedQ = sh?.kind === 'packed' ? q : undefined;
  const ir = nonEmptyRanges(what, 'moeDim', I, n, routedUnit);
  const sr = source.hasSharedExperts ? nonEmptyRanges(what, 'sharedExpertsDim', S, n, tpUnit(what, sharedQ, 'concat', S, H, strategy.unit)) : [];
  const role: Record<string, RoutedRole> = {
    'experts.gate_up_proj_bias': 'gate_up_bias',
    'experts.down_proj_bias': 'down_bias',
    ...(q ? {} : { 'experts.gate_up_proj': 'gate_up', 'experts.down_proj': 'down' }),
  };
  // the packed codes and scales of quantized routed / shared experts (their biases go by role)
  const packed = (prefix: string, m: QuantizedExperts | undefined) =>
    new Set(m ? m.namedParameters().filter(([, p]) => p !== m.gateUpBias && p !== m.downBias).map(([name]) => prefix + name) : []);
  const routedPacked = packed('experts.', source.stacked.format !== 'dense' ? source.stacked : undefined);
  const sharedPacked = packed('shared_experts.', sh?.kind === 'packed' ? sh.store : undefined);
  return (i) => ({
    opts: { moeDim: ir[i][1] - ir[i][0], sharedExpertsDim: source.hasSharedExperts ? sr[i][1] - sr[i][0] : undefined },
    take: (name, t) => {
      if (role[name]) return tpStrategyFor(role[name], n, routedUnit.unit, layout).shard(t, i).tensor;
      if (routedPacked.has(name)) return quantTPSlice(q!, name.slice('experts.'.length), t, I, H, ir[i], layout, what);
      if (sharedPacked.has(name)) return quantTPSlice(q!, name.slice('shared_experts.'.length), t, S, H, sr[i], 'concat', what);
      if (name === 'shared_experts.gate_proj.weight' || name === 'shared_experts.up_proj.weight') return takeRanges(t, 0, [sr[i]]);
      if (name === 'shared_experts.down_proj.weight') return takeRanges(t, 1, [sr[i]]);
      if (name.startsWith('shared_experts.')) throw new UnsupportedError('MoE.shard tensorParallel', `shared expert parameter ${name}`, 'shared experts without biases');
      return t; // router, correction bias, shared_expert_gate: replicated
    },
  });
}
