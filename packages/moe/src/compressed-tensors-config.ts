/**
 * compressed-tensors `quantization_config` (docs/COMPRESSED-TENSORS.md): the
 * reader of its config groups and `ignore` list, and the per-module scheme
 * lookup. The config part only: hf-config.ts reads it, compressed-tensors.ts
 * loads the tensors it describes.
 */
import { ConfigError, UnsupportedError } from './errors.js';

/** Every compression format compressed-tensors names (config/base.py CompressionFormat). */
const KNOWN_FORMATS = ['dense', 'sparse-bitmask', 'sparse-24-bitmask', 'int-quantized', 'float-quantized', 'naive-quantized', 'pack-quantized', 'marlin-24', 'mixed-precision', 'nvfp4-pack-quantized', 'mxfp4-pack-quantized'];

/** The weight quantization of one config group: 4- or 8-bit ints, per group of `groupSize` inputs ('channel': one group per row). @example `{ numBits: 4, groupSize: 128, symmetric: true }` */
export interface CTWeightScheme {
  numBits: 4 | 8;
  /** Inputs per scale; `'channel'` = the whole row (strategy channel). */
  groupSize: number | 'channel';
  symmetric: boolean;
}

/** One entry of `config_groups`. @example `{ name: 'group_0', targets: ['Linear'], weights: { numBits: 4, groupSize: 128, symmetric: false } }` */
export interface CTConfigGroup {
  name: string;
  targets: string[];
  weights: CTWeightScheme;
}

/** A parsed compressed-tensors `quantization_config`. @example `parseCompressedTensorsConfig(cfg.quantization_config).groups[0].weights.groupSize // 128` */
export interface CompressedTensorsConfig {
  format: 'pack-quantized';
  groups: CTConfigGroup[];
  ignore: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/**
 * Reads a `quantization_config` with `quant_method: compressed-tensors`.
 * Supported: `format: pack-quantized` (top level, or per group under
 * `mixed-precision`), weight-only
 * groups (`input_activations` null) with `num_bits` 4 or 8, `type: int`,
 * `strategy: group` (with `group_size`) or `channel`, symmetric or not, no
 * activation ordering by group (`actorder: group` writes `weight_g_idx`).
 * ConfigError for malformed fields, UnsupportedError for valid schemes this
 * version does not run; both name the field.
 *
 * @example
 * ```ts
 * const ct = parseCompressedTensorsConfig({ quant_method: 'compressed-tensors', format: 'pack-quantized', ignore: ['lm_head'],
 *   config_groups: { group_0: { targets: ['Linear'], weights: { num_bits: 4, type: 'int', symmetric: true, strategy: 'group', group_size: 128 } } } });
 * ```
 */
export function parseCompressedTensorsConfig(qc: Obj): CompressedTensorsConfig {
  const where = 'quantization_config';
  const checkFormat = (field: string, f: unknown) => {
    if (f === 'pack-quantized') return;
    if (typeof f === 'string' && KNOWN_FORMATS.includes(f)) throw new UnsupportedError(field, JSON.stringify(f), '"pack-quantized" (int4 / int8 weights packed eight / four per int32)');
    throw new ConfigError(field, `a compressed-tensors format (${KNOWN_FORMATS.join(' | ')})`, f);
  };
  // mixed-precision: each group names its own format (then every group must say pack-quantized)
  const mixed = qc.format === 'mixed-precision';
  if (!mixed) checkFormat(`${where}.format`, qc.format);
  const cg = qc.config_groups;
  if (!isObj(cg) || Object.keys(cg).length === 0) throw new ConfigError(`${where}.config_groups`, 'an object of named quantization schemes { targets, weights }', cg);
  const ignore = qc.ignore ?? [];
  if (!strList(ignore)) throw new ConfigError(`${where}.ignore`, 'a list of layer names or "re:" patterns', ignore);
  if (qc.kv_cache_scheme !== undefined && qc.kv_cache_scheme !== null) throw new UnsupportedError(`${where}.kv_cache_scheme`, 'a quantized kv cache', 'none (weight-only MoE checkpoints)');
  const groups: CTConfigGroup[] = [];
  for (const [name, g] of Object.entries(cg)) {
    const f = `${where}.config_groups.${name}`;
    if (Array.isArray(g)) throw new UnsupportedError(f, 'a preset scheme name list', 'groups written out as { targets, weights }');
    if (!isObj(g)) throw new ConfigError(f, 'an object { targets, weights }', g);
    if (!strList(g.targets) || g.targets.length === 0) throw new ConfigError(`${f}.targets`, 'a non-empty list of layer names, "re:" patterns or class names', g.targets);
    if (mixed || (g.format !== undefined && g.format !== null)) checkFormat(`${f}.format`, g.format);
    for (const a of ['input_activations', 'output_activations'] as const) {
      if (g[a] !== undefined && g[a] !== null) throw new UnsupportedError(`${f}.${a}`, 'quantized activations', 'weight-only schemes (null)');
    }
    groups.push({ name, targets: g.targets, weights: parseWeights(`${f}.weights`, g.weights) });
  }
  return { format: 'pack-quantized', groups, ignore };
}

function parseWeights(f: string, w: unknown): CTWeightScheme {
  if (!isObj(w)) throw new ConfigError(f, 'an object { num_bits, type, symmetric, strategy, group_size }', w);
  const numBits = w.num_bits;
  if (numBits !== 4 && numBits !== 8) {
    if (typeof numBits === 'number' && Number.isInteger(numBits) && numBits >= 1 && numBits <= 8) throw new UnsupportedError(`${f}.num_bits`, String(numBits), '4 and 8');
    throw new ConfigError(`${f}.num_bits`, 'an integer from 1 to 8 (4 and 8 are supported)', numBits);
  }
  if ((w.type ?? 'int') !== 'int') throw new UnsupportedError(`${f}.type`, JSON.stringify(w.type), '"int"');
  const symmetric = w.symmetric ?? true;
  if (typeof symmetric !== 'boolean') throw new ConfigError(`${f}.symmetric`, 'true | false', symmetric);
  if (w.dynamic !== undefined && w.dynamic !== false && w.dynamic !== null) throw new UnsupportedError(`${f}.dynamic`, JSON.stringify(w.dynamic), 'false (static weight scales)');
  if (w.actorder === 'group') throw new UnsupportedError(`${f}.actorder`, '"group" (columns permuted by weight_g_idx)', 'null, false or "weight"');
  const strategy = w.strategy;
  if (strategy === 'channel') return { numBits, groupSize: 'channel', symmetric };
  if (strategy !== 'group') {
    if (typeof strategy === 'string' && ['tensor', 'block', 'token', 'tensor_group', 'attn_head'].includes(strategy)) throw new UnsupportedError(`${f}.strategy`, JSON.stringify(strategy), '"group" and "channel"');
    throw new ConfigError(`${f}.strategy`, '"group" | "channel" (compressed-tensors QuantizationStrategy)', strategy);
  }
  const gs = w.group_size;
  if (!(typeof gs === 'number' && Number.isInteger(gs) && gs >= 1)) throw new ConfigError(`${f}.group_size`, 'a positive integer for strategy "group"', gs);
  return { numBits, groupSize: gs, symmetric };
}

/** compressed-tensors `_match_name`: `re:` patterns match with Python's `re.match` (anchored at the start); others exactly. */
function matchName(name: string, target: string): boolean {
  if (target.startsWith('re:')) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${target.slice(3)})`);
    } catch {
      throw new ConfigError('quantization_config target', 'a valid regular expression after "re:"', target);
    }
    return re.test(name);
  }
  return name === target;
}

/**
 * Whether `target` selects the Linear module `name`: by name (exact or
 * `re:`), or by class, where `Linear` matches every Linear (every module the
 * loader asks about is one; other class names match none of them).
 */
function matchLinear(name: string, target: string): boolean {
  return target === 'Linear' || matchName(name, target);
}

/**
 * The config group whose weights scheme applies to the Linear module `name`
 * (e.g. `model.layers.0.mlp.experts.3.gate_proj`), or undefined when no
 * group targets it or `ignore` lists it. Two groups with different schemes
 * on one module: ConfigError.
 *
 * @example `ctSchemeOf(ct, 'model.layers.0.mlp.gate') // undefined when ignored`
 */
export function ctSchemeOf(ct: CompressedTensorsConfig, name: string): CTConfigGroup | undefined {
  if (ct.ignore.some((i) => matchLinear(name, i))) return undefined;
  const hits = ct.groups.filter((g) => g.targets.some((t) => matchLinear(name, t)));
  if (hits.length > 1 && hits.some((h) => JSON.stringify(h.weights) !== JSON.stringify(hits[0].weights))) {
    throw new ConfigError(`quantization_config.config_groups (${hits.map((h) => h.name).join(', ')})`, `one weights scheme for ${name}`, 'several different ones');
  }
  return hits[0];
}
