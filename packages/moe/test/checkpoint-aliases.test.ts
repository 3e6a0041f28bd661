// Checkpoints as published whose MoE block is one the loader knows (HF_MOE_MODEL_TYPE_ALIASES): Kimi-K2's
// `kimi_k2` config (DeepSeek-V3's architecture and keys) and Llama 4's `llama4` config (Llama4ForConditionalGeneration:
// the llama4_text config in `text_config`, the tensors under `language_model.model.layers.`, or as transformers 5
// names them `model.language_model.layers.`). Each is the HF fixture of the same block seen through that config and
// those names; the layer must give the transformers golden, and the same output as the fixture loaded directly.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { ConfigError, HF_MOE_MODEL_TYPE_ALIASES, MoE, UnsupportedError, hfMoELayers, parseHFMoEConfig, type MoECheckpoint } from '../src/index.js';
import { fixtureCheckpoints, goldenTensors, loadGolden, relErr } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';

const open = fixtureCheckpoints();
const cpu = DeviceRef.CPU();

/** The layer loaded from `view` gives fixture `arch`'s golden (float32) and the same output as loaded from `direct`, bit for bit. */
async function expectGoldenAsDirect(view: MoECheckpoint, direct: MoECheckpoint, arch: string): Promise<void> {
  const g = loadGolden(arch);
  const y = await (await MoE.fromHuggingFace({ source: view, layer: 0, device: cpu })).forward(g.input);
  expect(relErr(y, g.output), `${arch} golden`).toBeLessThan(g.f32Tol);
  expect(y).toEqual(await (await MoE.fromHuggingFace({ source: direct, layer: 0, device: cpu })).forward(g.input));
}

/** Llama 4's published config around a llama4_text config. */
const llama4Config = (text: object): Record<string, unknown> => ({ architectures: ['Llama4ForConditionalGeneration'], model_type: 'llama4', text_config: text, vision_config: { model_type: 'llama4_vision_model', hidden_size: 88 } });

describe('published model types whose block the loader knows', () => {
  it('the aliases', () => {
    expect(HF_MOE_MODEL_TYPE_ALIASES).toEqual({ kimi_k2: 'deepseek_v3', deepseek_v32: 'deepseek_v3', glm4_moe: 'deepseek_v3', glm_moe_dsa: 'deepseek_v3', glm4_moe_lite: 'deepseek_v3', dots1: 'deepseek_v3', minimax: 'mixtral', qwen3_next: 'qwen2_moe', llama4: 'llama4_text', qwen3_vl_moe: 'qwen3_vl_moe_text' });
  });

  // [model type, architecture, why, config keys of its own]
  for (const [type, arch, why, own] of [
    ['glm4_moe', 'Glm4MoeForCausalLM', 'GLM-4.5 / 4.6: transformers\' Glm4MoeMoE routes as DeepSeek-V3', {}],
    ['dots1', 'Dots1ForCausalLM', 'dots.llm1: transformers\' Dots1MoE is DeepseekV3MoE', {}],
    ['glm_moe_dsa', 'GlmMoeDsaForCausalLM', 'GLM-5: transformers\' GlmMoeDsaMoE routes as DeepSeek-V3, its layers listed in mlp_layer_types', { mlp_layer_types: ['sparse'], index_topk: 2048 }],
    ['glm4_moe_lite', 'Glm4MoeLiteForCausalLM', 'GLM-4.7-Flash: transformers\' Glm4MoeLiteMoE routes as DeepSeek-V3, its layers listed in mlp_layer_types', { mlp_layer_types: ['sparse'] }],
  ] as const) {
    it(`${type} (${why}, same names and keys, no scoring_func / topk_method keys): the deepseek_v3 golden`, async () => {
      const ck = await open('deepseek_v3');
      const view = patchedCheckpoint(ck, {
        config: (c) => {
          const { scoring_func: _s, topk_method: _t, ...rest } = c;
          return { ...rest, model_type: type, architectures: [arch], ...own };
        },
      });
      expect(parseHFMoEConfig(view.config, 0).modelType).toBe('deepseek_v3');
      await expectGoldenAsDirect(view, ck, 'deepseek_v3');
    });
  }

  it('qwen3_vl_moe (Qwen3-VL MoE: text_config, tensors under model.language_model.layers., fused [in, out] experts; its block is Qwen3-MoE\'s, always renormalised): the qwen3_moe golden', async () => {
    const ck = await open('qwen3_moe');
    const c = ck.config as Record<string, unknown>;
    const p = 'model.layers.0.mlp.';
    const E = ck.tensorNames.filter((n) => n.startsWith(`${p}experts.`) && n.endsWith('.gate_proj.weight')).length;
    const [I, H] = ck.info(`${p}experts.0.gate_proj.weight`)!.shape;
    // the fused tensors as the hub stores them: gate_up_proj [E, H, 2I] (gate columns, then up), down_proj [E, I, H]
    const gateUp = new Float32Array(E * H * 2 * I);
    const down = new Float32Array(E * I * H);
    for (let e = 0; e < E; e++) {
      const g = (await ck.read(`${p}experts.${e}.gate_proj.weight`)).toFloat32();
      const u = (await ck.read(`${p}experts.${e}.up_proj.weight`)).toFloat32();
      const d = (await ck.read(`${p}experts.${e}.down_proj.weight`)).toFloat32();
      for (let i = 0; i < I; i++) {
        for (let h = 0; h < H; h++) {
          gateUp[(e * H + h) * 2 * I + i] = g[i * H + h];
          gateUp[(e * H + h) * 2 * I + I + i] = u[i * H + h];
          down[(e * I + i) * H + h] = d[h * I + i];
        }
      }
    }
    const q = 'model.language_model.layers.0.mlp.';
    const vl = patchedCheckpoint(ck, {
      rename: (n) => n.replace('model.layers.', 'model.language_model.layers.'),
      drop: (n) => n.includes('.experts.'),
      add: new Map([
        [`${q}experts.gate_up_proj`, HostTensor.fromFloat32([E, H, 2 * I], gateUp)],
        [`${q}experts.down_proj`, HostTensor.fromFloat32([E, I, H], down)],
      ]),
      config: { model_type: 'qwen3_vl_moe', architectures: ['Qwen3VLMoeForConditionalGeneration'], text_config: { ...c, model_type: 'qwen3_vl_moe_text', num_experts: E }, vision_config: { model_type: 'qwen3_vl_moe' } },
    });
    const spec = parseHFMoEConfig(vl.config, 0);
    expect([spec.modelType, spec.experts.kind, spec.numExperts]).toEqual(['qwen3_vl_moe_text', 'fused_in_out', E]);
    const g = loadGolden('qwen3_moe');
    const y = await (await MoE.fromHuggingFace({ source: vl, layer: 0, device: cpu })).forward(g.input);
    expect(relErr(y, g.output)).toBeLessThan(g.f32Tol);
    // a text_config of another model type is refused naming the field
    expect(() => parseHFMoEConfig({ ...vl.config, text_config: { ...c, model_type: 'qwen3_moe' } }, 0)).toThrow(/text_config.model_type/);
  });

  it('minimax (MiniMax-Text-01 / M1 as transformers stores them: MiniMaxSparseMoeBlock is Mixtral\'s, converted by Mixtral\'s pattern; the lightning-attention keys beside it): the mixtral golden', async () => {
    const ck = await open('mixtral');
    const mm = patchedCheckpoint(ck, {
      config: (c) => ({ ...c, model_type: 'minimax', architectures: ['MiniMaxForCausalLM'], layer_types: ['linear_attention'], block_size: 256, linear_attn_alpha_factor: 3.5, linear_attn_beta_factor: 1, mlp_alpha_factor: 3.5, mlp_beta_factor: 1 }),
    });
    const spec = parseHFMoEConfig(mm.config, 0);
    expect([spec.modelType, spec.numExperts, spec.topK]).toEqual(['mixtral', 8, 2]);
    await expectGoldenAsDirect(mm, ck, 'mixtral');
  });

  it('qwen3_next (Qwen3-Next: transformers\' Qwen3NextSparseMoeBlock is Qwen2-MoE\'s block): the qwen2_moe golden, gated shared expert included', async () => {
    const ck = await open('qwen2_moe');
    const next = patchedCheckpoint(ck, { config: { model_type: 'qwen3_next', architectures: ['Qwen3NextForCausalLM'] } });
    const spec = parseHFMoEConfig(next.config, 0);
    expect([spec.modelType, spec.shared?.gate]).toEqual(['qwen2_moe', 'shared_expert_gate.weight']);
    await expectGoldenAsDirect(next, ck, 'qwen2_moe');
  });

  it('kimi_k2: the deepseek_v3 block; its golden, and the deepseek_v3 load bit for bit', async () => {
    const ck = await open('deepseek_v3');
    const kimi = patchedCheckpoint(ck, { config: { model_type: 'kimi_k2', architectures: ['DeepseekV3ForCausalLM'] } });
    expect(parseHFMoEConfig(kimi.config, 0).modelType).toBe('deepseek_v3');
    await expectGoldenAsDirect(kimi, ck, 'deepseek_v3');
  });

  it('kimi_k2 with fp8 blocks (quant_method "fp8", as Kimi-K2 is published): the deepseek_v3_fp8 weight-only golden', async () => {
    const ck = await open('deepseek_v3_fp8');
    const g = goldenTensors('deepseek_v3_fp8');
    const kimi = patchedCheckpoint(ck, { config: { model_type: 'kimi_k2' } });
    const moe = await MoE.fromHuggingFace({ source: kimi, layer: 0, device: cpu, activationQuant: 'none' });
    expect(moe.stacked.format).toBe('fp8_block');
    const y = await moe.forward(g.get('input')!.values);
    expect(relErr(y, g.get('output_weight_only')!.values)).toBeLessThan(1e-4);
  });

  // DeepSeek-V3.2 (-Exp): DeepSeek-V3's MoE block and keys; its sparse attention adds an indexer (index_* keys, tensors
  // under self_attn.indexer.) that the MoE layer does not read
  const v32Config = { model_type: 'deepseek_v32', architectures: ['DeepseekV32ForCausalLM'], index_n_heads: 64, index_head_dim: 128, index_topk: 2048 };
  it('deepseek_v32 (DeepSeek-V3.2: the deepseek_v3 block beside a sparse-attention indexer): the deepseek_v3 golden, and the deepseek_v3 load bit for bit', async () => {
    const ck = await open('deepseek_v3');
    const H = (ck.config as Record<string, number>).hidden_size;
    const v32 = patchedCheckpoint(ck, { config: v32Config, add: new Map([['model.layers.0.self_attn.indexer.wk.weight', HostTensor.fromFloat32([128, H], new Float32Array(128 * H))]]) });
    const spec = parseHFMoEConfig(v32.config, 0);
    expect([spec.modelType, spec.numExperts]).toEqual(['deepseek_v3', (ck.config as Record<string, number>).n_routed_experts]);
    await expectGoldenAsDirect(v32, ck, 'deepseek_v3');
  });

  it('deepseek_v32 with fp8 blocks (as DeepSeek-V3.2 is published): the deepseek_v3_fp8 weight-only golden', async () => {
    const ck = await open('deepseek_v3_fp8');
    const g = goldenTensors('deepseek_v3_fp8');
    const moe = await MoE.fromHuggingFace({ source: patchedCheckpoint(ck, { config: v32Config }), layer: 0, device: cpu, activationQuant: 'none' });
    expect(moe.stacked.format).toBe('fp8_block');
    expect(relErr(await moe.forward(g.get('input')!.values), g.get('output_weight_only')!.values)).toBeLessThan(1e-4);
  });

  for (const [name, prefix] of [
    ['language_model.model.layers. (as published)', 'language_model.model.'],
    ['model.language_model.layers. (transformers 5)', 'model.language_model.'],
  ] as const) {
    it(`llama4 (text_config, tensors under ${name}): the llama4_text block; its golden, and the llama4_text load bit for bit`, async () => {
      const ck = await open('llama4_text');
      const wrapped = patchedCheckpoint(ck, { config: llama4Config, rename: (n) => (n.startsWith('model.') ? prefix + n.slice('model.'.length) : `language_model.${n}`) });
      expect(wrapped.tensorNames.some((n) => n.startsWith(`${prefix}layers.0.feed_forward.router`))).toBe(true);
      const spec = parseHFMoEConfig(wrapped.config, 0);
      expect([spec.modelType, spec.numExperts, spec.moeDim]).toEqual(['llama4_text', 8, 32]);
      await expectGoldenAsDirect(wrapped, ck, 'llama4_text');
    });
  }

  it('typed errors: llama4 without a text_config or with another text model type, kimi_k2 with another router, an unknown type naming the aliases', async () => {
    const ck = await open('llama4_text');
    expect(() => parseHFMoEConfig({ model_type: 'llama4' }, 0)).toThrow(ConfigError);
    expect(() => parseHFMoEConfig({ model_type: 'llama4' }, 0)).toThrow(/text_config/);
    expect(() => parseHFMoEConfig(llama4Config({ ...(ck.config as object), model_type: 'mixtral' }), 0)).toThrow(/text_config.model_type/);
    // llama4's top-level quantization_config applies to its text block (here one the block cannot take)
    expect(() => parseHFMoEConfig({ ...llama4Config(ck.config as object), quantization_config: { quant_method: 'mxfp4' } }, 0)).toThrow(/mxfp4.*llama4_text/);
    const ds = (await open('deepseek_v3')).config as object;
    expect(() => parseHFMoEConfig({ ...ds, model_type: 'kimi_k2', scoring_func: 'softmax' }, 0)).toThrow(UnsupportedError);
    const e = (() => {
      try {
        parseHFMoEConfig({ model_type: 'llama' }, 0);
      } catch (x) {
        return x as Error;
      }
    })();
    expect(e).toBeInstanceOf(UnsupportedError);
    expect(e!.message).toMatch(/kimi_k2/);
    expect(e!.message).toMatch(/glm4_moe/);
    expect(e!.message).toMatch(/deepseek_v2/);
    expect(e!.message).toMatch(/granitemoehybrid.*jamba/);
    expect(e!.message).toMatch(/llama4\b/);
  });
});

describe('hfMoELayers: the layers that hold an MoE block, by the config\'s rules', () => {
  it('DeepSeek-V3 and Kimi-K2 (first_k_dense_replace), Llama 4 Scout and Maverick (interleave step), Qwen (mlp_only_layers, decoder_sparse_step), Mixtral', async () => {
    const ds = (await open('deepseek_v3')).config as Record<string, unknown>;
    const l4 = (await open('llama4_text')).config as Record<string, unknown>;
    const q3 = (await open('qwen3_moe')).config as Record<string, unknown>;
    const mx = (await open('mixtral')).config as Record<string, unknown>;
    const range = (a: number, b: number, step = 1) => Array.from({ length: Math.ceil((b - a) / step) }, (_, i) => a + i * step);
    expect(hfMoELayers({ ...ds, num_hidden_layers: 61, first_k_dense_replace: 3, moe_layer_freq: 1 })).toEqual(range(3, 61));
    expect(hfMoELayers({ ...ds, model_type: 'kimi_k2', num_hidden_layers: 61, first_k_dense_replace: 1 })).toEqual(range(1, 61));
    // GLM-4.5: 92 layers, the first 3 dense (its MTP layer 92 is past num_hidden_layers); Qwen3-Next: every layer
    expect(hfMoELayers({ ...ds, model_type: 'glm4_moe', num_hidden_layers: 92, first_k_dense_replace: 3 })).toEqual(range(3, 92));
    // GLM-5: the per-layer list where given (transformers fills it from first_k_dense_replace otherwise), over
    // first_k_dense_replace; each dense layer refused naming the list, and a malformed list refused
    const glm5 = { ...ds, model_type: 'glm_moe_dsa', num_hidden_layers: 6, first_k_dense_replace: 1, mlp_layer_types: ['dense', 'dense', 'sparse', 'dense', 'sparse', 'sparse'] };
    expect(hfMoELayers(glm5)).toEqual([2, 4, 5]);
    for (const l of [0, 1, 3]) expect(() => parseHFMoEConfig(glm5, l), `layer ${l}`).toThrow(/mlp_layer_types/);
    expect(() => parseHFMoEConfig(glm5, 6)).toThrow(ConfigError);
    expect(() => hfMoELayers({ ...glm5, mlp_layer_types: ['dense', 'moe'] })).toThrow(/mlp_layer_types/);
    const { mlp_layer_types: _t, ...glm5NoList } = glm5;
    expect(hfMoELayers({ ...glm5NoList, num_hidden_layers: 78, first_k_dense_replace: 3 })).toEqual(range(3, 78));
    // GlmMoeDsaConfig's default first_k_dense_replace is 3
    const { first_k_dense_replace: _f, ...glm5Bare } = glm5NoList;
    expect(hfMoELayers({ ...glm5Bare, num_hidden_layers: 78 })).toEqual(range(3, 78));
    // GLM-4.7-Flash: without the list layer 0 is dense and the rest MoE, whatever first_k_dense_replace says (its
    // config class has no such field); with the list, the list
    const { first_k_dense_replace: _g, moe_layer_freq: _h, ...dsBare } = ds;
    expect(hfMoELayers({ ...dsBare, model_type: 'glm4_moe_lite', num_hidden_layers: 47 })).toEqual(range(1, 47));
    expect(hfMoELayers({ ...ds, model_type: 'glm4_moe_lite', num_hidden_layers: 47, first_k_dense_replace: 3 })).toEqual(range(1, 47));
    expect(hfMoELayers({ ...ds, model_type: 'glm4_moe_lite', num_hidden_layers: 4, mlp_layer_types: ['dense', 'sparse', 'dense', 'sparse'] })).toEqual([1, 3]);
    expect(() => parseHFMoEConfig({ ...ds, model_type: 'glm4_moe_lite', num_hidden_layers: 47 }, 0)).toThrow(/mlp_layer_types/);
    expect(parseHFMoEConfig({ ...ds, model_type: 'glm4_moe_lite', num_hidden_layers: 47 }, 1).layer).toBe(1);
    expect(hfMoELayers({ ...q3, model_type: 'qwen3_next', num_hidden_layers: 48, mlp_only_layers: [] })).toEqual(range(0, 48));
    const { moe_layers: _m, ...l4NoList } = l4;
    expect(hfMoELayers(llama4Config({ ...l4NoList, num_hidden_layers: 48, interleave_moe_layer_step: 2 }))).toEqual(range(1, 48, 2));
    expect(hfMoELayers(llama4Config({ ...l4NoList, num_hidden_layers: 48, interleave_moe_layer_step: 1 }))).toEqual(range(0, 48));
    expect(hfMoELayers({ ...l4, num_hidden_layers: 4, moe_layers: [0, 3] })).toEqual([0, 3]);
    expect(hfMoELayers({ ...q3, num_hidden_layers: 6, mlp_only_layers: [0, 5] })).toEqual([1, 2, 3, 4]);
    expect(hfMoELayers({ ...q3, model_type: 'qwen2_moe', num_hidden_layers: 6, decoder_sparse_step: 2 })).toEqual([1, 3, 5]);
    expect(hfMoELayers({ ...mx, num_hidden_layers: 32 })).toEqual(range(0, 32));
    // each layer listed is one parseHFMoEConfig takes; each other one it refuses naming the rule's field
    const cfg = { ...ds, num_hidden_layers: 8, first_k_dense_replace: 2, moe_layer_freq: 2 };
    const moe = hfMoELayers(cfg);
    expect(moe).toEqual([2, 4, 6]);
    for (let l = 0; l < 8; l++) {
      if (moe.includes(l)) expect(parseHFMoEConfig(cfg, l).layer).toBe(l);
      else expect(() => parseHFMoEConfig(cfg, l), `layer ${l}`).toThrow(l < 2 ? /first_k_dense_replace/ : /moe_layer_freq/);
    }
  });

  it('typed errors: no num_hidden_layers, an unknown model type, a malformed rule', async () => {
    const q3 = (await open('qwen3_moe')).config as Record<string, unknown>;
    const { num_hidden_layers: _n, ...noLayers } = q3;
    expect(() => hfMoELayers(noLayers)).toThrow(ConfigError);
    expect(() => hfMoELayers(noLayers)).toThrow(/num_hidden_layers/);
    expect(() => hfMoELayers({ ...q3, model_type: 'llama' })).toThrow(UnsupportedError);
    expect(() => hfMoELayers({ ...q3, mlp_only_layers: 3 })).toThrow(/mlp_only_layers/);
    expect(() => hfMoELayers('{}')).toThrow(ConfigError);
  });
});
