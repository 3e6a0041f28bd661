// Granite MoE checkpoints (model types granitemoe, granitemoeshared, granitemoehybrid: Granite 3.x MoE and Granite
// 4.0) through MoE.fromHuggingFace on the CPU: the Mixtral fixture seen as granitemoe against its transformers golden
// (Mixtral's routing is Granite's), random layers with the shared MLP against the independent per-token reference,
// and the refusals.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { DeviceGroup, ShardingStrategy } from '@webmoe/sharding';
import { CheckpointError, ConfigError, MoE, TopKSoftmaxGate, UnsupportedError, hfMoELayers, parseHFMoEConfig } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { expectGoldenSets, fixtureCheckpoints, relErr } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';
import { graniteCheckpoint, graniteConfig, graniteFromMixtral, type GraniteType } from './granite-checkpoint.js';

const cpu = DeviceRef.CPU();
const open = fixtureCheckpoints();

describe('granite MoE checkpoints (CPU)', () => {
  it('granitemoe: the Mixtral fixture in Granite\'s layout gives its transformers golden (T = 16 and 600)', async () => {
    const view = await graniteFromMixtral(await open('mixtral'));
    const spec = parseHFMoEConfig(view.config, 0);
    expect([spec.modelType, spec.experts.kind, spec.shared]).toEqual(['granitemoe', 'fused_out_in', undefined]);
    const moe = await MoE.fromHuggingFace({ source: view, layer: 0, device: cpu });
    expect(moe.gate).toBeInstanceOf(TopKSoftmaxGate);
    expect(moe.gate.routerParams()).toMatchObject({ kind: 'topk_softmax' });
    expect(moe.gate.bias).toBeUndefined();
    await expectGoldenSets(moe, 'mixtral');
  });

  for (const type of ['granitemoehybrid', 'granitemoeshared', 'granitemoe'] as GraniteType[]) {
    it(`${type}: the reference at T = 1 and 13${type === 'granitemoe' ? '' : ' (the shared MLP\'s fused input_linear split into gate and up)'}`, async () => {
      for (const [seed, T] of [[81, 1], [83, 13]] as const) {
        const { source, cfg, w, x } = graniteCheckpoint(seed, T, type);
        const moe = await MoE.fromHuggingFace({ source, layer: 1, device: cpu });
        expect(!!moe.shared, 'shared MLP').toBe(type !== 'granitemoe');
        const err = relErr(await moe.forward(x), referenceMoE(cfg, w, x, T));
        expect(err, `${type} T=${T}`).toBeLessThan(1e-5);
      }
    });
  }

  it('granitemoehybrid shards: TP 2, TP 3 (the shared MLP split too) and EP 2 give the unsharded layer and the reference (T = 13)', async () => {
    const { source, cfg, w, x } = graniteCheckpoint(85, 13, 'granitemoehybrid');
    const moe = await MoE.fromHuggingFace({ source, layer: 1, device: cpu, dtype: 'float32' });
    const want = referenceMoE(cfg, w, x, 13);
    for (const [strategy, n] of [[ShardingStrategy.tensorParallel(2), 2], [ShardingStrategy.tensorParallel(3), 3], [ShardingStrategy.expertParallel(2), 2]] as const) {
      moe.shardingStrategy = strategy;
      const s = moe.shard(DeviceGroup.cpu(n));
      const err = relErr(await s.forward(x), want);
      expect(err, `${strategy.kind} ${n}: rel err ${err}`).toBeLessThan(1e-5);
      s.destroy();
    }
  });

  it('shared_intermediate_size 0 has no shared MLP; every layer is an MoE layer; refusals name the field', () => {
    const cfg = graniteConfig('granitemoehybrid', 8, 4, 2, 4, 0);
    expect(parseHFMoEConfig(cfg, 1).shared).toBeUndefined();
    expect(parseHFMoEConfig({ ...cfg, shared_intermediate_size: 16 }, 1).shared).toEqual({ prefix: 'shared_mlp.', dim: 16, fused: true });
    expect(hfMoELayers(cfg)).toEqual([0, 1]);
    expect(() => parseHFMoEConfig({ ...cfg, hidden_act: 'gelu' }, 0)).toThrow(UnsupportedError);
    expect(() => parseHFMoEConfig({ ...cfg, num_local_experts: 0 }, 0)).toThrow(ConfigError);
    expect(() => parseHFMoEConfig({ ...cfg, num_local_experts: 0 }, 0)).toThrow(/num_local_experts/);
    expect(() => parseHFMoEConfig({ ...cfg, shared_intermediate_size: -1 }, 0)).toThrow(/shared_intermediate_size/);
  });

  it('refuses tensors of the block it does not read (a shared MLP the config lacks, an unknown one), not the layer\'s others', async () => {
    const { source } = graniteCheckpoint(89, 1, 'granitemoehybrid', { shared_intermediate_size: 0 });
    await expect(MoE.fromHuggingFace({ source, layer: 1, device: cpu })).rejects.toThrow(/unexpected tensor\(s\) model\.layers\.1\.shared_mlp\.input_linear\.weight/);
    const ck = await open('mixtral');
    const view = await graniteFromMixtral(ck);
    const withExtra = patchedCheckpoint(view, { add: new Map([['model.layers.0.block_sparse_moe.router.layer.bias', HostTensor.fromFloat32([8], new Float32Array(8))]]) });
    await expect(MoE.fromHuggingFace({ source: withExtra, layer: 0, device: cpu })).rejects.toThrow(CheckpointError);
    // the layer's attention and norms (under model.layers.0., not the block's) are not the loader's business
    expect(view.tensorNames.some((n) => n.startsWith('model.layers.0.self_attn.'))).toBe(true);
  });

  it('refuses block-fp8 Granite experts (a fused layout) with a typed error naming it', async () => {
    const quantization_config = { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 128], activation_scheme: 'dynamic' };
    const { source } = graniteCheckpoint(87, 1, 'granitemoehybrid', { quantization_config });
    const load = () => MoE.fromHuggingFace({ source, layer: 1, device: cpu });
    await expect(load()).rejects.toThrow(UnsupportedError);
    await expect(load()).rejects.toThrow(/fused fp8 experts for granitemoehybrid/);
  });
});
