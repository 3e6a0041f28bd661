// DeepSeek-V2 checkpoints (model_type deepseek_v2: V2, V2-Lite, V2.5, Coder-V2) through MoE.fromHuggingFace on the
// CPU path, against the independent per-token reference (transformers' DeepseekV2Moe: softmax router, greedy or
// group-limited greedy top-k, weights times routed_scaling_factor, two shared experts); the config's refusals.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { ConfigError, DeepseekV2Gate, MoE, UnsupportedError, parseHFMoEConfig } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { fixtureCheckpoints, loadGolden, relErr } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';
import { deepseekV2Checkpoint } from './hub-checkpoint.js';

const cpu = DeviceRef.CPU();
const open = fixtureCheckpoints();

describe('deepseek_v2 checkpoints (CPU)', () => {
  for (const method of ['group_limited_greedy', 'greedy'] as const) {
    it(`topk_method ${method}: the reference, T = 1 and 13`, async () => {
      for (const [seed, T] of [[31, 1], [37, 13]] as const) {
        const { source, cfg, w, x } = deepseekV2Checkpoint(seed, T, method);
        const moe = await MoE.fromHuggingFace({ source, layer: 1, device: cpu });
        expect(moe.gate).toBeInstanceOf(DeepseekV2Gate);
        expect(moe.gate.routerParams()).toMatchObject({ kind: 'softmax_grouped', normTopkProb: false, nGroup: cfg.nGroup, topkGroup: cfg.topkGroup, routedScalingFactor: 3 });
        expect([moe.hasSharedExperts, moe.sharedExpertsDim]).toEqual([true, 16]);
        const got = await moe.forward(x);
        const err = relErr(got, referenceMoE(cfg, w, x, T));
        expect(err, `${method} T=${T}`).toBeLessThan(1e-5);
      }
    });
  }

  it('greedy against a transformers golden: the OLMoE fixture seen as deepseek_v2 (OlmoeSparseMoeBlock routes as DeepseekV2Moe greedy at scale 1 without shared experts); scale 2.5 scales the golden', async () => {
    const ck = await open('olmoe');
    const g = loadGolden('olmoe');
    const c = ck.config as Record<string, unknown>;
    const asV2 = (scale: number) =>
      patchedCheckpoint(ck, {
        config: {
          model_type: 'deepseek_v2', n_routed_experts: c.num_experts, moe_intermediate_size: c.intermediate_size, n_shared_experts: 0,
          topk_method: 'greedy', routed_scaling_factor: scale, norm_topk_prob: false,
        },
      });
    const y1 = await (await MoE.fromHuggingFace({ source: asV2(1), layer: 0, device: cpu })).forward(g.input);
    expect(relErr(y1, g.output)).toBeLessThan(g.f32Tol);
    const y25 = await (await MoE.fromHuggingFace({ source: asV2(2.5), layer: 0, device: cpu })).forward(g.input);
    expect(relErr(y25, g.output.map((v) => 2.5 * v))).toBeLessThan(g.f32Tol);
  });

  it('the group choice matters: group_limited_greedy and greedy differ on the same weights', async () => {
    const a = deepseekV2Checkpoint(41, 13, 'group_limited_greedy');
    const b = deepseekV2Checkpoint(41, 13, 'greedy');
    const ya = await (await MoE.fromHuggingFace({ source: a.source, layer: 1, device: cpu })).forward(a.x);
    const yb = await (await MoE.fromHuggingFace({ source: b.source, layer: 1, device: cpu })).forward(a.x);
    expect(relErr(ya, yb)).toBeGreaterThan(1e-3);
  });

  it('typed refusals: a dense layer, renormalisation, other scoring or top-k methods, groups that do not fit', () => {
    const cfgOf = (extra: Record<string, unknown>) => ({
      model_type: 'deepseek_v2', hidden_size: 24, hidden_act: 'silu', num_hidden_layers: 2, first_k_dense_replace: 1, n_routed_experts: 12,
      num_experts_per_tok: 3, moe_intermediate_size: 8, n_shared_experts: 2, topk_method: 'group_limited_greedy', n_group: 4, topk_group: 2, ...extra,
    });
    expect(() => parseHFMoEConfig(cfgOf({}), 0)).toThrow(ConfigError); // layer 0: dense (first_k_dense_replace 1)
    expect(() => parseHFMoEConfig(cfgOf({}), 0)).toThrow(/first_k_dense_replace/);
    expect(() => parseHFMoEConfig(cfgOf({ norm_topk_prob: true }), 1)).toThrow(UnsupportedError);
    expect(() => parseHFMoEConfig(cfgOf({ scoring_func: 'sigmoid' }), 1)).toThrow(/scoring_func/);
    expect(() => parseHFMoEConfig(cfgOf({ topk_method: 'noaux_tc' }), 1)).toThrow(/topk_method/);
    expect(() => parseHFMoEConfig(cfgOf({ n_group: 5 }), 1)).toThrow(/n_group/);
    expect(() => parseHFMoEConfig(cfgOf({ topk_group: 5 }), 1)).toThrow(/topk_group/);
    expect(() => parseHFMoEConfig(cfgOf({ n_group: undefined }), 1)).toThrow(ConfigError);
    // greedy needs no groups; transformers' defaults: greedy, two shared experts, scaling 1
    const g = parseHFMoEConfig(cfgOf({ topk_method: undefined, n_group: undefined, topk_group: undefined, n_shared_experts: undefined }), 1);
    expect([g.modelType, g.gateOptions, g.shared?.dim]).toEqual(['deepseek_v2', { normTopkProb: false, nGroup: 1, topkGroup: 1, routedScalingFactor: 1 }, 16]);
  });
});
