import type { ExpertActivation } from '@webmoe/kernels-wgsl';
import { ConfigError, UnsupportedError } from './errors.js';
import { parseHFQuantConfig, type MoEQuantConfig } from './quant-experts.js';
import { parseCompressedTensorsConfig, type CompressedTensorsConfig } from './compressed-tensors-config.js';
import { SoftmaxTopKGate, TopKSoftmaxGate, DeepseekV2Gate, DeepseekV3Gate, Ernie45Gate, Llama4Gate, type GateClass, type GateOptions } from './gates.js';

/** The MoE blocks `MoE.fromHuggingFace` loads, by the model type of their config. @example `HF_MOE_MODEL_TYPES.includes('olmoe') // true` */
export const HF_MOE_MODEL_TYPES = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'qwen3_vl_moe_text', 'olmoe', 'deepseek_v2', 'deepseek_v3', 'minimax_m2', 'ernie4_5_moe', 'gpt_oss', 'llama4_text', 'granitemoe', 'granitemoeshared', 'granitemoehybrid', 'jamba'] as const;
/** One of {@link HF_MOE_MODEL_TYPES}. @example `const t: HFMoEModelType = 'gpt_oss';` */
export type HFMoEModelType = (typeof HF_MOE_MODEL_TYPES)[number];

/**
 * Model types of published checkpoints whose MoE block is one of {@link HF_MOE_MODEL_TYPES}:
 * - `kimi_k2` (Kimi-K2, custom code of DeepSeek-V3's architecture): DeepSeek-V3's block and config keys;
 * - `glm4_moe` (GLM-4.5, GLM-4.5-Air, GLM-4.6): transformers' Glm4MoeMoE routes as DeepSeek-V3 (sigmoid, correction
 *   bias, groups by their top-2 sum, weights renormalised with 1e-20 and scaled), with the same tensor names and keys;
 * - `dots1` (rednote dots.llm1): transformers' Dots1MoE is DeepseekV3MoE, same names and keys;
 * - `minimax` (MiniMax-Text-01 and MiniMax-M1 in transformers' format, `MiniMaxForCausalLM`): transformers'
 *   MiniMaxSparseMoeBlock and MiniMaxTopKRouter are Mixtral's (softmax top-k, renormalised), its checkpoints convert
 *   with Mixtral's pattern (`block_sparse_moe.experts.{e}.w1/w3/w2`), every layer MoE; the lightning-attention keys
 *   (`layer_types`, `block_size`, the residual alpha / beta factors) belong to the decoder, not the block;
 * - `qwen3_next` (Qwen3-Next): transformers' Qwen3NextSparseMoeBlock is Qwen2-MoE's block (softmax top-k,
 *   `norm_topk_prob`, a shared expert scaled by sigmoid(`shared_expert_gate`)), same names, keys and sparse-layer rules;
 * - `llama4` (Llama 4 Scout / Maverick, `Llama4ForConditionalGeneration`): the `llama4_text` block, its config in
 *   `text_config` (a top-level `quantization_config` applies to it), its tensors under `language_model.model.layers.`
 *   (or `model.language_model.layers.`);
 * - `qwen3_vl_moe` (Qwen3-VL MoE, `Qwen3VLMoeForConditionalGeneration`): the `qwen3_vl_moe_text` block (Qwen3-MoE's
 *   routing, always renormalised, with fused [in, out] experts), its config in `text_config`, its tensors under
 *   `model.language_model.layers.`.
 * @example `HF_MOE_MODEL_TYPE_ALIASES.kimi_k2 // 'deepseek_v3'`
 */
export const HF_MOE_MODEL_TYPE_ALIASES: Readonly<Record<string, HFMoEModelType>> = {
  kimi_k2: 'deepseek_v3',
  deepseek_v32: 'deepseek_v3',
  glm4_moe: 'deepseek_v3',
  glm_moe_dsa: 'deepseek_v3',
  glm4_moe_lite: 'deepseek_v3',
  dots1: 'deepseek_v3',
  minimax: 'mixtral',
  qwen3_next: 'qwen2_moe',
  llama4: 'llama4_text',
  qwen3_vl_moe: 'qwen3_vl_moe_text',
};

/**
 * Aliases whose transformers config fills a layer rule its config.json may leave out, as the fields of the block
 * type's own rule (deepseek_v3: `mlp_layer_types`, else `first_k_dense_replace`): GLM-4.7-Flash's Glm4MoeLiteConfig
 * makes layer 0 dense and the rest MoE unless `mlp_layer_types` lists them (it has no first_k_dense_replace); GLM-5's
 * GlmMoeDsaConfig derives the list from `first_k_dense_replace`, 3 when absent.
 */
const ALIAS_LAYER_DEFAULTS: Readonly<Record<string, (cfg: Cfg) => Cfg>> = {
  glm4_moe_lite: (cfg) => {
    if (cfg.mlp_layer_types != null) return cfg;
    const n = cfg.num_hidden_layers;
    // the list as transformers fills it (a dense layer is refused naming it); without a layer count, the same rule
    return typeof n === 'number' && Number.isInteger(n) && n >= 1
      ? { ...cfg, mlp_layer_types: ['dense', ...Array<string>(n - 1).fill('sparse')] }
      : { ...cfg, first_k_dense_replace: 1, moe_layer_freq: 1 };
  },
  glm_moe_dsa: (cfg) => (cfg.mlp_layer_types == null && cfg.first_k_dense_replace === undefined ? { ...cfg, first_k_dense_replace: 3 } : cfg),
};

/** The aliases whose block config is their `text_config` (multimodal checkpoints); its model type is the alias's. */
const TEXT_CONFIG_ALIASES: ReadonlySet<string> = new Set(['llama4', 'qwen3_vl_moe']);

/**
 * Why layer `layer` of a model of block type `modelType` is a dense MLP rather than an MoE block, as the ConfigError
 * naming the config field that makes it so (qwen2_moe / qwen3_moe: `mlp_only_layers`, `decoder_sparse_step`;
 * deepseek_v2 / deepseek_v3: `mlp_layer_types` where listed (GLM-5, GLM-4.7-Flash), else `first_k_dense_replace`,
 * `moe_layer_freq`; llama4_text: `moe_layers`, else `interleave_moe_layer_step`); undefined for an MoE layer. A
 * malformed field throws.
 */
function denseLayer(cfg: Cfg, modelType: HFMoEModelType, layer: number): ConfigError | undefined {
  switch (modelType) {
    case 'qwen2_moe':
    case 'qwen3_moe':
    case 'qwen3_vl_moe_text': {
      const only = cfg.mlp_only_layers ?? [];
      if (!Array.isArray(only)) throw new ConfigError('mlp_only_layers', 'a list of layer numbers', only);
      if (only.includes(layer)) return new ConfigError('mlp_only_layers', `layer ${layer} to be an MoE layer`, only);
      const step = int(cfg, ['decoder_sparse_step'], { optional: true }) ?? 1;
      return (layer + 1) % step !== 0 ? new ConfigError('decoder_sparse_step', `layer ${layer} to be an MoE layer`, step) : undefined;
    }
    case 'deepseek_v2':
    case 'deepseek_v3': {
      // GLM-5 / GLM-4.7-Flash: a "dense" / "sparse" entry per layer where the config lists them (transformers'
      // GlmMoeDsaDecoderLayer, Glm4MoeLiteDecoderLayer; ALIAS_LAYER_DEFAULTS fills what their configs leave out)
      const types = cfg.mlp_layer_types;
      if (types !== undefined && types !== null) {
        if (!Array.isArray(types) || types.some((t) => t !== 'dense' && t !== 'sparse')) throw new ConfigError('mlp_layer_types', 'a list of "dense" / "sparse", one per layer', types);
        return types[layer] === 'sparse' ? undefined : new ConfigError('mlp_layer_types', `"sparse" at layer ${layer}`, types[layer] ?? `a list of ${types.length} entries`);
      }
      const firstDense = int(cfg, ['first_k_dense_replace'], { optional: true, min: 0 }) ?? 0;
      if (layer < firstDense) return new ConfigError('first_k_dense_replace', `at most layer ${layer} (layers below it are dense MLPs, not MoE)`, firstDense);
      const freq = int(cfg, ['moe_layer_freq'], { optional: true }) ?? 1;
      return layer % freq !== 0 ? new ConfigError('moe_layer_freq', `a divisor of layer ${layer}`, freq) : undefined;
    }
    case 'ernie4_5_moe': {
      // transformers' Ernie4_5_MoeDecoderLayer: MoE where (layer + 1) % moe_layer_interval == 0 and
      // moe_layer_start_index <= layer <= moe_layer_end_index (-1, the default: the last layer)
      const step = int(cfg, ['moe_layer_interval'], { optional: true, min: 1 }) ?? 1;
      const start = int(cfg, ['moe_layer_start_index'], { optional: true, min: 0 }) ?? 0;
      const end = int(cfg, ['moe_layer_end_index'], { optional: true, min: -1 }) ?? -1;
      if (layer < start) return new ConfigError('moe_layer_start_index', `at most layer ${layer} (layers below it are dense MLPs, not MoE)`, start);
      if (end >= 0 && layer > end) return new ConfigError('moe_layer_end_index', `at least layer ${layer} (layers past it are dense MLPs, not MoE)`, end);
      return (layer + 1) % step !== 0 ? new ConfigError('moe_layer_interval', `an interval that makes layer ${layer} an MoE layer`, step) : undefined;
    }
    case 'jamba': {
      // transformers' JambaConfig.layers_num_experts: num_experts where layer % expert_layer_period ==
      // expert_layer_offset, else 1 (a dense JambaMLP)
      const period = int(cfg, ['expert_layer_period'], { optional: true }) ?? 2;
      const offset = int(cfg, ['expert_layer_offset'], { optional: true, min: 0 }) ?? 1;
      return layer % period !== offset ? new ConfigError('expert_layer_period', `a period and offset (${offset}) that make layer ${layer} an MoE layer`, period) : undefined;
    }
    case 'llama4_text': {
      const moeLayers = cfg.moe_layers;
      if (Array.isArray(moeLayers)) return moeLayers.includes(layer) ? undefined : new ConfigError('moe_layers', `a list containing layer ${layer}`, moeLayers);
      const step = int(cfg, ['interleave_moe_layer_step'], { optional: true }) ?? 1;
      return (layer + 1) % step !== 0 ? new ConfigError('interleave_moe_layer_step', `a step that makes layer ${layer} an MoE layer`, step) : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The layers of a checkpoint's model that hold an MoE block (`MoE.fromHuggingFace` loads those; the others are
 * dense MLPs): 0..num_hidden_layers-1 by the config's own rules (DeepSeek-V3 and Kimi-K2 from
 * `first_k_dense_replace`, Llama 4 Maverick every other layer, Qwen's `mlp_only_layers`, ...). Typed errors as
 * parseHFMoEConfig's for an unknown model type or a malformed field; `num_hidden_layers` is required.
 * @example `for (const layer of hfMoELayers(config)) layers.push(await MoE.fromHuggingFace({ source, layer, ctx, device }))`
 */
export function hfMoELayers(config: unknown): number[] {
  const { cfg, modelType } = blockConfig(configObject(config));
  const n = int(cfg, ['num_hidden_layers'], { min: 1 });
  return Array.from({ length: n }, (_, l) => l).filter((l) => !denseLayer(cfg, modelType, l));
}

/** A checkpoint's config.json as an object (a ConfigError for anything else). */
function configObject(config: unknown): Cfg {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError('config.json', 'a JSON object', typeof config);
  return config as Cfg;
}

/**
 * The config of the MoE block a checkpoint's config describes and its block type: the config itself for the types of
 * HF_MOE_MODEL_TYPES and the other aliases, `text_config` (with the top-level quantization_config) for llama4 and
 * qwen3_vl_moe.
 */
function blockConfig(cfg: Cfg): { cfg: Cfg; modelType: HFMoEModelType } {
  const mt = cfg.model_type;
  const alias = typeof mt === 'string' && Object.hasOwn(HF_MOE_MODEL_TYPE_ALIASES, mt) ? HF_MOE_MODEL_TYPE_ALIASES[mt] : undefined;
  if (typeof mt !== 'string' || (!alias && !(HF_MOE_MODEL_TYPES as readonly string[]).includes(mt))) {
    throw new UnsupportedError('config model_type', JSON.stringify(mt), [...HF_MOE_MODEL_TYPES, ...Object.keys(HF_MOE_MODEL_TYPE_ALIASES)].join(', '));
  }
  const textType = TEXT_CONFIG_ALIASES.has(mt) ? alias : undefined;
  if (!textType) return { cfg: Object.hasOwn(ALIAS_LAYER_DEFAULTS, mt) ? ALIAS_LAYER_DEFAULTS[mt](cfg) : cfg, modelType: alias ?? (mt as HFMoEModelType) };
  const text = cfg.text_config;
  if (typeof text !== 'object' || text === null || Array.isArray(text)) throw new ConfigError('text_config', `an object (the ${textType} config of a ${mt} checkpoint)`, text);
  const tc = text as Cfg;
  if (tc.model_type !== undefined && tc.model_type !== textType) throw new ConfigError('text_config.model_type', JSON.stringify(textType), tc.model_type);
  return { cfg: cfg.quantization_config === undefined ? tc : { ...tc, quantization_config: cfg.quantization_config }, modelType: textType };
}

/** How the routed experts are laid out in the checkpoint. @example `{ kind: 'per_expert', gate: 'w1', up: 'w3', down: 'w2' }` */
export type HFExpertLayout =
  /** `experts.{e}.{gate,up,down}_proj.weight` ([I,H], [I,H], [H,I]) */
  | { kind: 'per_expert'; gate: string; up: string; down: string }
  /** `experts.gate_up_proj` [E, H, 2I] and `experts.down_proj` [E, I, H] ([in, out]), optional `_bias`. */
  | { kind: 'fused_in_out'; bias: boolean }
  /** Granite's parallel experts: `gateUp` [E, 2I, H] (gate rows, then up) and `down` [E, H, I] ([out, in]), names relative to the prefix. */
  | { kind: 'fused_out_in'; gateUp: string; down: string };

/**
 * Everything about one MoE block that the HF config fixes: sizes, router,
 * expert layout and activation, shared experts, checkpoint prefixes.
 *
 * @example
 * ```ts
 * parseHFMoEConfig(config, 0).prefixes // ['model.layers.0.mlp.']
 * ```
 */
export interface HFMoESpec {
  modelType: HFMoEModelType;
  layer: number;
  /** Candidate prefixes of the block (e.g. `model.layers.3.mlp.`), the first with a router wins. */
  prefixes: string[];
  /**
   * The name spaces under the prefix that hold the block's tensors and nothing else (the loader refuses any tensor
   * there that it does not read); absent: the whole prefix. Granite's prefix is its layer's (`model.layers.N.`), whose
   * attention and norms are not the block's: `block_sparse_moe.` and `shared_mlp.`.
   */
  ownedNames?: string[];
  hiddenDim: number;
  numExperts: number;
  topK: number;
  moeDim: number;
  gateCls: GateClass;
  gateOptions: Partial<GateOptions>;
  /**
   * Router weight / bias / correction-bias names relative to the prefix; the correction bias's stored shape when it
   * is not [E] (ERNIE 4.5: [1, E]).
   */
  router: { weight: string; bias?: string; correctionBias?: string; correctionBiasShape?: number[] };
  experts: HFExpertLayout;
  activation: ExpertActivation;
  applyRouterWeightFirst: boolean;
  /**
   * Shared experts: one MLP of width `dim` under `prefix` (relative to the block's), as `gate_proj` / `up_proj` /
   * `down_proj`, or (`fused`, Granite) as `input_linear` [2 * dim, H] (gate rows, then up) and `output_linear`; `gate`:
   * the sigmoid gate's weight (Qwen2-MoE).
   */
  shared?: { prefix: string; dim: number; gate?: string; fused?: boolean };
  /** The experts' quantization from `quantization_config` (fp8 block-scaled, mxfp4), if any. */
  quant?: MoEQuantConfig;
  /** A compressed-tensors `quantization_config` (int4 pack-quantized): which modules are quantized is resolved against the checkpoint by the loader. */
  compressedTensors?: CompressedTensorsConfig;
}

type Cfg = Record<string, unknown>;

/** What every block's spec takes from the config's common keys (parseHFMoEConfig's `base`). */
type HFMoESpecBase = Pick<HFMoESpec, 'modelType' | 'layer' | 'quant' | 'compressedTensors' | 'hiddenDim' | 'topK' | 'applyRouterWeightFirst' | 'activation'>;

function int(cfg: Cfg, names: readonly string[], opts: { min?: number; optional?: false }): number;
function int(cfg: Cfg, names: readonly string[], opts: { min?: number; optional: true }): number | undefined;
function int(cfg: Cfg, names: readonly string[], opts: { min?: number; optional?: boolean }): number | undefined {
  for (const n of names) {
    const v = cfg[n];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (opts.min ?? 1)) throw new ConfigError(n, `an integer >= ${opts.min ?? 1}`, v);
    return v;
  }
  if (opts.optional) return undefined;
  throw new ConfigError(names.join(' | '), 'a value in config.json', 'none');
}

function num(cfg: Cfg, name: string, dflt: number): number {
  const v = cfg[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(name, 'a finite number', v);
  return v;
}

function bool(cfg: Cfg, name: string, dflt: boolean): boolean {
  const v = cfg[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(name, 'true or false', v);
  return v;
}

/** A DeepSeek config's expert groups, checked against its E routed experts (n_group divides E, topk_group <= n_group). */
function expertGroups(cfg: Cfg, E: number, nGroup: number, topkGroup: number): { nGroup: number; topkGroup: number } {
  if (E % nGroup !== 0) throw new ConfigError('n_group', `a divisor of n_routed_experts (${E})`, nGroup);
  if (topkGroup > nGroup) throw new ConfigError('topk_group', `at most n_group (${nGroup})`, topkGroup);
  return { nGroup, topkGroup };
}

/**
 * The block of DeepSeek V2 / V3 (and the types read as V3) and ERNIE 4.5: E per-expert Linear experts
 * (gate_proj / up_proj / down_proj) of `moe_intermediate_size` and `nShared` shared experts as one MLP `nShared` times
 * as wide (`shared_experts.`), under model.layers.N.mlp., with the given router.
 */
function sharedExpertsBlock(base: HFMoESpecBase, L: string, cfg: Cfg, E: number, nShared: number, router: Pick<HFMoESpec, 'gateCls' | 'gateOptions' | 'router'>): HFMoESpec {
  const I = int(cfg, ['moe_intermediate_size'], {});
  return {
    ...base,
    ...router,
    prefixes: [`${L}mlp.`],
    numExperts: E,
    moeDim: I,
    experts: { kind: 'per_expert', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' },
    shared: nShared > 0 ? { prefix: 'shared_experts.', dim: I * nShared } : undefined,
  };
}

function checkSiluAct(cfg: Cfg): void {
  const a = cfg.hidden_act ?? 'silu';
  if (a !== 'silu' && a !== 'swish') throw new UnsupportedError('config hidden_act', JSON.stringify(a), '"silu"');
}

/**
 * Reads the fields of an HF `config.json` that change the maths of layer
 * `layer`'s MoE block. Throws ConfigError (bad or missing field, dense
 * layer), UnsupportedError (unknown model_type, quantization_config,
 * activation).
 *
 * @example
 * ```ts
 * const spec = parseHFMoEConfig(JSON.parse(text), 0);
 * spec.numExperts // 8
 * ```
 */
export function parseHFMoEConfig(config: unknown, layer: number): HFMoESpec {
  const top = configObject(config);
  if (!Number.isInteger(layer) || layer < 0) throw new ConfigError('layer', 'a non-negative integer', layer);
  const { cfg, modelType } = blockConfig(top);
  const dense = denseLayer(cfg, modelType, layer);
  if (dense) throw dense;
  const q = cfg.quantization_config;
  const isCT = typeof q === 'object' && q !== null && !Array.isArray(q) && (q as Cfg).quant_method === 'compressed-tensors';
  const compressedTensors = isCT ? parseCompressedTensorsConfig(q as Cfg) : undefined;
  const quant = q !== undefined && q !== null && !isCT ? parseHFQuantConfig(q) : undefined;
  // block fp8 (DeepSeek-V3, Kimi-K2, Qwen3-MoE's FP8 checkpoints): the per-expert layouts; the fused ones (gpt_oss, llama4) are refused with the tensors (hf-loader)
  if (quant?.format === 'mxfp4' && modelType !== 'gpt_oss') throw new UnsupportedError('config quantization_config', `quant_method "mxfp4" for ${modelType}`, 'gpt_oss (experts.*_blocks / *_scales)');
  const nLayers = int(cfg, ['num_hidden_layers'], { optional: true });
  if (nLayers !== undefined && layer >= nLayers) throw new ConfigError('num_hidden_layers', `more than layer ${layer}`, nLayers);
  const H = int(cfg, ['hidden_size'], {});
  const k = int(cfg, ['num_experts_per_tok', 'experts_per_token', 'moe_k'], {});
  const L = `model.layers.${layer}.`;
  const base: HFMoESpecBase = { modelType, layer, quant, compressedTensors, hiddenDim: H, topK: k, applyRouterWeightFirst: false, activation: { kind: 'silu', layout: 'concat' } };
  const perExpert: HFExpertLayout = { kind: 'per_expert', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
  switch (modelType) {
    case 'mixtral': {
      checkSiluAct(cfg);
      return {
        ...base,
        prefixes: [`${L}block_sparse_moe.`, `${L}mlp.`],
        numExperts: int(cfg, ['num_local_experts', 'num_experts'], {}),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: SoftmaxTopKGate,
        gateOptions: { normTopkProb: true },
        router: { weight: 'gate.weight' },
        experts: { kind: 'per_expert', gate: 'w1', up: 'w3', down: 'w2' },
      };
    }
    case 'qwen2_moe':
    case 'qwen3_moe': {
      checkSiluAct(cfg);
      const E = int(cfg, ['num_experts', 'num_local_experts'], {});
      const spec: HFMoESpec = {
        ...base,
        prefixes: [`${L}mlp.`],
        numExperts: E,
        moeDim: int(cfg, ['moe_intermediate_size'], {}),
        gateCls: SoftmaxTopKGate,
        gateOptions: { normTopkProb: bool(cfg, 'norm_topk_prob', false) },
        router: { weight: 'gate.weight' },
        experts: perExpert,
      };
      if (modelType === 'qwen2_moe') {
        const sd = int(cfg, ['shared_expert_intermediate_size'], { optional: true, min: 0 }) ?? 0;
        if (sd > 0) spec.shared = { prefix: 'shared_expert.', dim: sd, gate: 'shared_expert_gate.weight' };
      }
      return spec;
    }
    case 'qwen3_vl_moe_text': {
      // transformers' Qwen3VLMoeTextSparseMoeBlock: Qwen3-MoE's softmax top-k, always renormalised (its
      // config's norm_topk_prob is not read); experts fused [in, out] (gate_up_proj [E, H, 2I], gate half first)
      checkSiluAct(cfg);
      return {
        ...base,
        prefixes: [`model.language_model.layers.${layer}.mlp.`, `${L}mlp.`],
        numExperts: int(cfg, ['num_experts', 'num_local_experts'], {}),
        moeDim: int(cfg, ['moe_intermediate_size'], {}),
        gateCls: SoftmaxTopKGate,
        gateOptions: { normTopkProb: true },
        router: { weight: 'gate.weight' },
        experts: { kind: 'fused_in_out', bias: false },
      };
    }
    case 'olmoe': {
      checkSiluAct(cfg);
      return {
        ...base,
        prefixes: [`${L}mlp.`],
        numExperts: int(cfg, ['num_experts', 'num_local_experts'], {}),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: SoftmaxTopKGate,
        gateOptions: { normTopkProb: bool(cfg, 'norm_topk_prob', false) },
        router: { weight: 'gate.weight' },
        experts: perExpert,
      };
    }
    case 'deepseek_v2': {
      // transformers' DeepseekV2Moe: softmax over the routed experts, greedy or group-limited greedy top-k, the
      // weights times routed_scaling_factor (never renormalised: DeepSeek's own code renormalises instead of scaling
      // when norm_topk_prob is set, transformers ignores it, so a config that sets it is refused)
      checkSiluAct(cfg);
      const scoring = cfg.scoring_func ?? 'softmax';
      if (scoring !== 'softmax') throw new UnsupportedError('config scoring_func', JSON.stringify(scoring), '"softmax" (deepseek_v2)');
      if (bool(cfg, 'norm_topk_prob', false)) throw new UnsupportedError('config norm_topk_prob', 'true (deepseek_v2: transformers ignores it, DeepSeek\'s code renormalises instead of scaling)', 'false');
      const method = cfg.topk_method ?? 'greedy';
      if (method !== 'greedy' && method !== 'group_limited_greedy') throw new UnsupportedError('config topk_method', JSON.stringify(method), '"greedy" or "group_limited_greedy" (deepseek_v2)');
      const E = int(cfg, ['n_routed_experts'], {});
      // greedy: one group; group_limited_greedy names its groups (no defaults)
      const groups = method === 'greedy' ? { nGroup: 1, topkGroup: 1 } : expertGroups(cfg, E, int(cfg, ['n_group'], {}), int(cfg, ['topk_group'], {}));
      // transformers' default: two shared experts
      const nShared = int(cfg, ['n_shared_experts'], { optional: true, min: 0 }) ?? 2;
      return sharedExpertsBlock(base, L, cfg, E, nShared, { gateCls: DeepseekV2Gate, gateOptions: { normTopkProb: false, ...groups, routedScalingFactor: num(cfg, 'routed_scaling_factor', 1) }, router: { weight: 'gate.weight' } });
    }
    case 'deepseek_v3': {
      checkSiluAct(cfg);
      const scoring = cfg.scoring_func ?? 'sigmoid';
      if (scoring !== 'sigmoid') throw new UnsupportedError('config scoring_func', JSON.stringify(scoring), '"sigmoid"');
      const method = cfg.topk_method ?? 'noaux_tc';
      if (method !== 'noaux_tc') throw new UnsupportedError('config topk_method', JSON.stringify(method), '"noaux_tc"');
      const E = int(cfg, ['n_routed_experts'], {});
      const nGroup = int(cfg, ['n_group'], { optional: true }) ?? 1;
      const groups = expertGroups(cfg, E, nGroup, int(cfg, ['topk_group'], { optional: true }) ?? nGroup);
      const nShared = int(cfg, ['n_shared_experts'], { optional: true, min: 0 }) ?? 0;
      const gateOptions = { normTopkProb: bool(cfg, 'norm_topk_prob', true), ...groups, routedScalingFactor: num(cfg, 'routed_scaling_factor', 1) };
      return sharedExpertsBlock(base, L, cfg, E, nShared, { gateCls: DeepseekV3Gate, gateOptions, router: { weight: 'gate.weight', correctionBias: 'gate.e_score_correction_bias' } });
    }
    case 'minimax_m2': {
      // transformers' MiniMaxM2SparseMoeBlock: s = sigmoid(logits), top-k of s + e_score_correction_bias (the block's,
      // not the gate's), weights s renormalised, not scaled; Mixtral's w1 / w3 / w2 experts under block_sparse_moe.
      // That is the sigmoid grouped router with one group and scale 1 (it adds 1e-20 to the sum: no f32 difference
      // for sums above 1e-13)
      checkSiluAct(cfg);
      const scoring = cfg.scoring_func ?? 'sigmoid';
      if (scoring !== 'sigmoid') throw new UnsupportedError('config scoring_func', JSON.stringify(scoring), '"sigmoid" (minimax_m2)');
      if (cfg.use_routing_bias === false) throw new UnsupportedError('config use_routing_bias', 'false', 'true (minimax_m2: e_score_correction_bias)');
      return {
        ...base,
        prefixes: [`${L}block_sparse_moe.`, `${L}mlp.`],
        numExperts: int(cfg, ['num_local_experts', 'num_experts'], {}),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: DeepseekV3Gate,
        gateOptions: { normTopkProb: true, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 },
        router: { weight: 'gate.weight', correctionBias: 'e_score_correction_bias' },
        experts: { kind: 'per_expert', gate: 'w1', up: 'w3', down: 'w2' },
      };
    }
    case 'ernie4_5_moe': {
      // transformers' Ernie4_5_MoeSparseMoeBlock: p = softmax(logits) in f32, top-k of p + moe_statics'
      // e_score_correction_bias ([1, E]), weights p / max(sum, moe_norm_min); shared experts moe_num_shared_experts x
      // moe_intermediate_size wide; the expert Linears without biases (use_bias)
      checkSiluAct(cfg);
      if (bool(cfg, 'use_bias', false)) throw new UnsupportedError('config use_bias', 'true (ernie4_5_moe: Linear biases on the experts)', 'false');
      const normMin = num(cfg, 'moe_norm_min', 1e-12);
      if (normMin !== 1e-12) throw new UnsupportedError('config moe_norm_min', String(normMin), '1e-12 (the router kernel\'s bound)');
      const E = int(cfg, ['moe_num_experts'], {});
      const nShared = int(cfg, ['moe_num_shared_experts'], { optional: true, min: 0 }) ?? 0;
      const router = { weight: 'gate.weight', correctionBias: 'moe_statics.e_score_correction_bias', correctionBiasShape: [1, E] };
      return sharedExpertsBlock(base, L, cfg, E, nShared, { gateCls: Ernie45Gate, gateOptions: { normTopkProb: true }, router });
    }
    case 'gpt_oss': {
      return {
        ...base,
        prefixes: [`${L}mlp.`],
        numExperts: int(cfg, ['num_local_experts', 'num_experts'], {}),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: TopKSoftmaxGate,
        gateOptions: { hasBias: true },
        router: { weight: 'router.weight', bias: 'router.bias' },
        experts: { kind: 'fused_in_out', bias: true },
        activation: { kind: 'swigluoai', limit: num(cfg, 'swiglu_limit', 7), alpha: 1.702, layout: 'interleaved' },
      };
    }
    case 'granitemoe':
    case 'granitemoeshared':
    case 'granitemoehybrid': {
      // transformers' GraniteMoeMoE (Granite 3.x MoE, Granite 4.0 hybrids): top-k of the router logits, softmax over
      // those k in f32; input_linear [E, 2I, H] chunked into gate then up; granitemoeshared / granitemoehybrid add the
      // layer's shared_mlp (input_linear [2S, H], output_linear [H, S], S = shared_intermediate_size; none for S = 0)
      // to the block's output, ungated
      checkSiluAct(cfg);
      const S = modelType === 'granitemoe' ? 0 : (int(cfg, ['shared_intermediate_size'], { optional: true, min: 0 }) ?? 0);
      return {
        ...base,
        prefixes: [L],
        // shared_mlp. owned with or without a shared MLP: its tensors in a checkpoint whose config has none are refused
        ownedNames: ['block_sparse_moe.', 'shared_mlp.'],
        numExperts: int(cfg, ['num_local_experts'], {}),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: TopKSoftmaxGate,
        gateOptions: { hasBias: false },
        router: { weight: 'block_sparse_moe.router.layer.weight' },
        experts: { kind: 'fused_out_in', gateUp: 'block_sparse_moe.input_linear.weight', down: 'block_sparse_moe.output_linear.weight' },
        shared: S > 0 ? { prefix: 'shared_mlp.', dim: S, fused: true } : undefined,
      };
    }
    case 'jamba': {
      // transformers' JambaSparseMoeBlock: softmax over all experts (f32), top-k, not renormalised; per-expert
      // JambaMLP experts; one expert (num_experts 1) is a dense model
      checkSiluAct(cfg);
      return {
        ...base,
        prefixes: [`${L}feed_forward.`],
        numExperts: int(cfg, ['num_experts'], { min: 2 }),
        moeDim: int(cfg, ['intermediate_size'], {}),
        gateCls: SoftmaxTopKGate,
        gateOptions: { normTopkProb: false },
        router: { weight: 'router.weight' },
        experts: perExpert,
      };
    }
    case 'llama4_text': {
      checkSiluAct(cfg);
      const I = int(cfg, ['intermediate_size'], {});
      return {
        ...base,
        // llama4_text checkpoints; llama4 ones (Llama4ForConditionalGeneration) as published, and as transformers 5 names them
        prefixes: [`${L}feed_forward.`, `language_model.${L}feed_forward.`, `model.language_model.layers.${layer}.feed_forward.`],
        numExperts: int(cfg, ['num_local_experts', 'num_experts'], {}),
        moeDim: I,
        gateCls: Llama4Gate,
        gateOptions: {},
        router: { weight: 'router.weight' },
        experts: { kind: 'fused_in_out', bias: false },
        applyRouterWeightFirst: true,
        shared: { prefix: 'shared_expert.', dim: I },
      };
    }
  }
}

