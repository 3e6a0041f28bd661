// When MoE.fromHuggingFace streams the routed experts by default (streamExperts 'auto'): GPU layers of per-expert
// checkpoints whose gate_up stack exceeds STREAM_EXPERTS_BYTES (1 GiB), e.g. the real DeepSeek-V3 in fp8 and bf16;
// never on the CPU, for small layers, or for fused / compressed-tensors experts; an expert-parallel shard counts its own experts.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { DeviceRef } from '@webmoe/tensor';
import { STREAM_EXPERTS_BYTES, parseHFMoEConfig, parseHFQuantConfig } from '../src/index.js';
import { streamDecision } from '../src/hf-options.js';
import { normalizeQuantConfig } from '../src/quant-experts.js';
import { FIXTURES } from './helpers.js';

const fixture = (arch: string) => JSON.parse(readFileSync(`${FIXTURES}/${arch}/config.json`, 'utf8')) as Record<string, unknown>;
// the real DeepSeek-V3 sizes on the fixture's config (per-expert fp8 with 128x128 blocks)
const dsv3 = { ...fixture('deepseek_v3_fp8'), hidden_size: 7168, moe_intermediate_size: 2048, n_routed_experts: 256, n_group: 8, topk_group: 4, num_experts_per_tok: 8 };
const gpu = DeviceRef.GPU();

describe('streamExperts: auto', () => {
  const spec = parseHFMoEConfig(dsv3, 0);
  const q = normalizeQuantConfig(parseHFQuantConfig(dsv3.quantization_config));
  it('streams the real DeepSeek-V3 on a GPU (fp8: 7.5 GB of gate_up; bf16: 15 GB)', () => {
    expect(2 * 2048 * 7168 * 256).toBeGreaterThan(STREAM_EXPERTS_BYTES);
    expect(streamDecision({ source: '', layer: 0 }, gpu, spec, q, false, 'bfloat16')).toBe(true);
    expect(streamDecision({ source: '', layer: 0 }, gpu, spec, undefined, false, 'bfloat16')).toBe(true);
  });
  it('not on the CPU, not when asked not to, not for compressed-tensors experts', () => {
    expect(streamDecision({ source: '', layer: 0 }, DeviceRef.CPU(), spec, q, false, 'bfloat16')).toBe(false);
    expect(streamDecision({ source: '', layer: 0, streamExperts: false }, gpu, spec, q, false, 'bfloat16')).toBe(false);
    expect(streamDecision({ source: '', layer: 0 }, gpu, spec, q, true, 'bfloat16')).toBe(false);
  });
  it('an expert-parallel shard counts its own experts: 1/8 of the fp8 stack (0.94 GB) is loaded whole, 1/4 streams', () => {
    expect(streamDecision({ source: '', layer: 0, expertShard: { epSize: 8, shardIndex: 0 } }, gpu, spec, q, false, 'bfloat16')).toBe(false);
    expect(streamDecision({ source: '', layer: 0, expertShard: { epSize: 4, shardIndex: 0 } }, gpu, spec, q, false, 'bfloat16')).toBe(true);
  });
  it('the small fixtures and fused experts load whole', () => {
    expect(streamDecision({ source: '', layer: 0 }, gpu, parseHFMoEConfig(fixture('mixtral'), 0), undefined, false, 'float32')).toBe(false);
    const oss = fixture('gpt_oss');
    const big = parseHFMoEConfig({ ...oss, hidden_size: 8192, intermediate_size: 8192, num_local_experts: 64 }, 0);
    expect(streamDecision({ source: '', layer: 0 }, gpu, big, undefined, false, 'bfloat16')).toBe(false);
  });
});
