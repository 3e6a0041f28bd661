// Quantized checkpoints (DeepSeek-V3 fp8 block-scaled, GPT-OSS MXFP4) on the CPU path vs the transformers goldens.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { MoE, QuantizedExperts, parseHFQuantConfig, ConfigError, UnsupportedError } from '../src/index.js';
import { FIXTURES, readTensorsF32, relErr } from './helpers.js';

const golden = (arch: string) => readTensorsF32(join(FIXTURES, arch, 'golden.safetensors'));

describe('quantized checkpoints on the CPU vs goldens', () => {
  it('deepseek_v3_fp8: fp8 codes stay packed; weight-only within 1e-4, dynamic w8a8 within 1e-3', async () => {
    const g = golden('deepseek_v3_fp8');
    const x = g.get('input')!;
    const [T, H] = x.shape;
    for (const [aq, name, tol] of [['none', 'output_weight_only', 1e-4], ['dynamic', 'output_w8a8', 1e-3]] as const) {
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, activationQuant: aq });
      expect(moe.activationQuant).toBe(aq);
      expect(moe.stacked).toBeInstanceOf(QuantizedExperts);
      expect(moe.gateUpProj.value.dtype).toBe('float8_e4m3fn');
      expect(moe.gateUpProj.value.shape).toEqual([8, 256, 256]);
      expect(moe.quantizedSharedExperts!.gateUpProj.value.dtype).toBe('float8_e4m3fn');
      const y = (await moe.forward(new HostTensor('float32', [T, H], x.values))).data as Float32Array;
      const err = relErr(y, g.get(name)!.values);
      expect(err, `${name} rel err ${err}`).toBeLessThan(tol);
      // And the other golden is further away than the tolerance would hide (the two schemes really differ).
      const other = relErr(y, g.get(aq === 'none' ? 'output_w8a8' : 'output_weight_only')!.values);
      expect(other).toBeGreaterThan(err);
    }
  });

  it('deepseek_v3_fp8: the checkpoint activation_scheme (dynamic) is the default', async () => {
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0 });
    expect(moe.activationQuant).toBe('dynamic');
    const g = golden('deepseek_v3_fp8');
    const x = g.get('input')!;
    const y = await moe.forward(x.values);
    expect(relErr(y, g.get('output_w8a8')!.values)).toBeLessThan(1e-3);
  });

  it('gpt_oss_mxfp4: blocks/scales kept as uint8, biases float32; output within 1e-4', async () => {
    const g = golden('gpt_oss_mxfp4');
    const x = g.get('input')!;
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss_mxfp4`, layer: 0, device: DeviceRef.CPU() });
    const s = moe.stacked as QuantizedExperts;
    expect(s.gateUpProj.value.dtype).toBe('uint8');
    expect(s.gateUpProj.value.shape).toEqual([8, 64, 2, 16]);
    expect(s.gateUpScale.value.shape).toEqual([8, 64, 2]);
    expect(s.gateUpBias!.value.dtype).toBe('float32');
    expect(moe.activationQuant).toBe('none');
    const y = await moe.forward(x.values);
    const err = relErr(y, g.get('output')!.values);
    expect(err, `rel err ${err}`).toBeLessThan(1e-4);
  });
});

describe('quantization_config parsing', () => {
  it('reads fp8 and mxfp4, rejects others with typed errors', () => {
    expect(parseHFQuantConfig({ quant_method: 'fp8', fmt: 'e5m2', activation_scheme: 'dynamic', weight_block_size: [128, 64] })).toEqual({
      format: 'fp8_block', fp8Dtype: 'float8_e5m2', weightBlockSize: [128, 64], activationQuant: 'dynamic', quantizeSharedExperts: true,
    });
    expect(parseHFQuantConfig({ quant_method: 'mxfp4' }).format).toBe('mxfp4');
    expect(() => parseHFQuantConfig({ quant_method: 'gptq' })).toThrow(UnsupportedError);
    expect(() => parseHFQuantConfig({ quant_method: 'gptq' })).toThrow(/quant_method "gptq"/);
    expect(() => parseHFQuantConfig({ quant_method: 'fp8', fmt: 'e3m4', weight_block_size: [128, 128] })).toThrow(ConfigError);
    expect(() => parseHFQuantConfig({ quant_method: 'fp8' })).toThrow(/weight_block_size/);
  });
});
