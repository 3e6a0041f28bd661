// Bad checkpoints and configs fail with typed errors naming the tensor or field, before anything is built.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor, WebMoEError, Checkpoint, memorySource, serializeSafetensors } from '@webmoe/tensor';
import { dirSource } from '@webmoe/tensor/node';
import { MoE, CheckpointError, ConfigError, UnsupportedError, parseHFMoEConfig, type MoECheckpoint } from '../src/index.js';
import { FIXTURES, fixtureCheckpoints } from './helpers.js';
import { patchedCheckpoint } from './ct-writer.js';

const open = fixtureCheckpoints();

/** A checkpoint with some tensors dropped, added or replaced, and the config patched. */
function patched(ck: MoECheckpoint, p: { drop?: string[]; add?: Record<string, HostTensor>; config?: Record<string, unknown> }): MoECheckpoint {
  return patchedCheckpoint(ck, { drop: (n) => (p.drop ?? []).includes(n), add: new Map(Object.entries(p.add ?? {})), config: p.config });
}

const cpu = DeviceRef.CPU();

describe('MoE.fromHuggingFace errors', () => {
  it('a missing expert tensor is a CheckpointError naming it', async () => {
    const name = 'model.layers.0.mlp.experts.3.up_proj.weight';
    const src = patched(await open('qwen3_moe'), { drop: [name] });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(name);
    expect(e.message).toMatch(/missing/);
  });

  it('a missing router is a CheckpointError naming it', async () => {
    const src = patched(await open('mixtral'), { drop: ['model.layers.0.block_sparse_moe.gate.weight'] });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain('gate.weight');
  });

  it('a tensor whose shape disagrees with the config is a CheckpointError with expected and got', async () => {
    const name = 'model.layers.0.mlp.experts.down_proj';
    const src = patched(await open('gpt_oss'), { add: { [name]: new HostTensor('float32', [8, 64, 32]) } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(name);
    expect(e.message).toContain('[8, 32, 64]');
    expect(e.message).toContain('[8, 64, 32]');
  });

  it('a config that disagrees with the tensors (moe_intermediate_size) names the tensor', async () => {
    const src = patched(await open('deepseek_v3'), { config: { moe_intermediate_size: 48 } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/expected shape \[48, 64\]/);
  });

  it('an unexpected tensor under the block prefix is a CheckpointError naming it', async () => {
    const name = 'model.layers.0.mlp.experts.16.gate_proj.weight';
    const src = patched(await open('olmoe'), { add: { [name]: new HostTensor('float32', [32, 64]) } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(name);
  });

  it('an integer-typed weight is a CheckpointError naming the dtype', async () => {
    const name = 'model.layers.0.mlp.gate.weight';
    const src = patched(await open('qwen2_moe'), { add: { [name]: new HostTensor('int32', [8, 64]) } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain('int32');
  });

  it('an unknown model_type is an UnsupportedError naming model_type', async () => {
    const src = patched(await open('mixtral'), { config: { model_type: 'llama' } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(UnsupportedError);
    expect(e.message).toContain('model_type');
    expect(e.message).toContain('"llama"');
  });

  it('an unsupported quantization_config (gptq), or fp8/mxfp4 on the wrong architecture, is an UnsupportedError naming quantization_config', async () => {
    const gptq = patched(await open('mixtral'), { config: { quantization_config: { quant_method: 'gptq', bits: 4 } } });
    let e = await MoE.fromHuggingFace({ source: gptq, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(UnsupportedError);
    expect(e.message).toContain('quantization_config');
    expect(e.message).toContain('gptq');
    const mx = patched(await open('mixtral'), { config: { quantization_config: { quant_method: 'mxfp4' } } });
    e = await MoE.fromHuggingFace({ source: mx, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(UnsupportedError);
    expect(e.message).toMatch(/quantization_config.*mxfp4.*mixtral/);
  });

  it('fp8 checkpoints: a missing weight_scale_inv or a scale of the wrong dtype is a CheckpointError naming the tensor', async () => {
    const s = 'model.layers.0.mlp.experts.3.up_proj.weight_scale_inv';
    const ck = await open('deepseek_v3_fp8');
    let e = await MoE.fromHuggingFace({ source: patched(ck, { drop: [s] }), layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(s);
    expect(e.message).toContain('missing');
    e = await MoE.fromHuggingFace({ source: patched(ck, { add: { [s]: HostTensor.fromFloat32([1, 2], [1, 1], 'bfloat16') } }), layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(s);
    // codes in the wrong dtype (f32 where e4m3 is expected)
    const w = 'model.layers.0.mlp.experts.0.gate_proj.weight';
    e = await MoE.fromHuggingFace({ source: patched(ck, { add: { [w]: HostTensor.fromFloat32([128, 256], new Float32Array(128 * 256)) } }), layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/float8_e4m3fn.*got float32/);
  });

  it('mxfp4 checkpoints: blocks of the wrong shape are a CheckpointError naming the tensor; activationQuant dynamic on an unquantized checkpoint is a ConfigError', async () => {
    const b = 'model.layers.0.mlp.experts.down_proj_blocks';
    const ck = await open('gpt_oss_mxfp4');
    const e = await MoE.fromHuggingFace({ source: patched(ck, { add: { [b]: new HostTensor('uint8', [8, 64, 2, 16], new Uint8Array(8 * 64 * 32)) } }), layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toContain(b);
    expect(e.message).toContain('[8, 64, 1, 16]');
    const d = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, device: cpu, activationQuant: 'dynamic' }).catch((x) => x);
    expect(d).toBeInstanceOf(ConfigError);
    expect(d.message).toContain('activationQuant');
  });

  it('a DeepSeek-V3 layer below first_k_dense_replace is a ConfigError (dense layer)', async () => {
    const src = patched(await open('deepseek_v3'), { config: { first_k_dense_replace: 1 } });
    const e = await MoE.fromHuggingFace({ source: src, layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain('first_k_dense_replace');
  });

  it('a layer past num_hidden_layers, and a missing required field, are ConfigErrors', async () => {
    const ck = await open('mixtral');
    expect(() => parseHFMoEConfig(ck.config, 5)).toThrow(ConfigError);
    const cfg = { ...(ck.config as object), hidden_size: undefined };
    expect(() => parseHFMoEConfig(cfg, 0)).toThrow(/hidden_size/);
    expect(() => parseHFMoEConfig({ ...(ck.config as object), num_experts_per_tok: 2.5 }, 0)).toThrow(/num_experts_per_tok/);
  });

  it('a missing checkpoint directory is a typed error naming config.json', async () => {
    const e = await MoE.fromHuggingFace({ source: '/nonexistent/dir', layer: 0, device: cpu }).catch((x) => x);
    expect(e).toBeInstanceOf(WebMoEError);
    expect(e.message).toContain('config.json');
  });

  it('loads sharded checkpoints through model.safetensors.index.json', async () => {
    // Split the mixtral fixture into two shards in memory.
    const { readFileSync } = await import('node:fs');
    const src = await Checkpoint.open(dirSource(`${FIXTURES}/mixtral`));
    const a: Record<string, HostTensor> = {};
    const b: Record<string, HostTensor> = {};
    const weightMap: Record<string, string> = {};
    for (const [i, n] of src.keys().entries()) {
      (i % 2 ? a : b)[n] = await src.read(n);
      weightMap[n] = i % 2 ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors';
    }
    const files = memorySource({
      'config.json': new Uint8Array(readFileSync(`${FIXTURES}/mixtral/config.json`)),
      'model.safetensors.index.json': new TextEncoder().encode(JSON.stringify({ weight_map: weightMap })),
      'model-00001-of-00002.safetensors': serializeSafetensors(a),
      'model-00002-of-00002.safetensors': serializeSafetensors(b),
    });
    const sharded = await MoE.fromHuggingFace({ source: files, layer: 0, device: cpu });
    const single = await MoE.fromHuggingFace({ source: `${FIXTURES}/mixtral`, layer: 0, device: cpu });
    expect(sharded.gateUpProj.value.data).toEqual(single.gateUpProj.value.data);
    await src.close();
  });
});
