// Input checks of the public entry points (CPU): each bad input is a typed WebMoEError whose message
// names the field or tensor and says what was expected and what came.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceRef, DTypeError, HostTensor, SafetensorsError, ShapeError, ValueError, WebMoEError, memorySource } from '@webmoe/tensor';
import { Linear, MLP, NotLoadedError } from '@webmoe/nn';
import { ShardingError } from '@webmoe/sharding';
import { DeepseekV3Gate, MoE, SoftmaxTopKGate } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const base = { hiddenDim: 8, numExperts: 4, numExpertsPerToken: 2, moeDim: 6 };

/** The error `fn` throws (sync or async). */
async function caught(fn: () => unknown): Promise<WebMoEError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WebMoEError);
    return e as WebMoEError;
  }
  return expect.fail('expected a WebMoEError, nothing was thrown');
}

function loaded(opts: Partial<ConstructorParameters<typeof MoE>[0]> = {}): MoE {
  const moe = new MoE({ ...base, gateCls: SoftmaxTopKGate, ...opts });
  const sd: Record<string, HostTensor> = {};
  for (const [n, p] of moe.namedParameters()) sd[n] = HostTensor.fromFloat32(p.shape, new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.01), p.dtype);
  moe.loadStateDict(sd);
  return moe;
}

describe('MoE constructor', () => {
  it('k > E, non-positive or non-integer sizes: ValueError naming the field with expected vs got', async () => {
    let e = await caught(() => new MoE({ ...base, numExpertsPerToken: 5 }));
    expect(e).toBeInstanceOf(ValueError);
    expect(e.message).toMatch(/numExpertsPerToken: expected at most numExperts \(4\), got 5/);
    for (const [field, v] of [['hiddenDim', 0], ['numExperts', 2.5], ['moeDim', -1], ['numExpertsPerToken', NaN]] as const) {
      e = await caught(() => new MoE({ ...base, [field]: v }));
      expect(e).toBeInstanceOf(ValueError);
      expect(e.message).toContain(field);
      expect(e.message).toMatch(/expected a positive integer, got/);
    }
    e = await caught(() => new MoE({ ...base, swigluLimit: -1 }));
    expect(e.message).toMatch(/swigluLimit: expected a number >= 0, got -1/);
  });

  it('nGroup not dividing E, topkGroup out of range or too small for k: ValueError naming it', async () => {
    const g = (o: object) => new MoE({ ...base, numExperts: 8, numExpertsPerToken: 4, gateCls: DeepseekV3Gate, gateOptions: o });
    let e = await caught(() => g({ nGroup: 3, topkGroup: 1 }));
    expect(e.message).toMatch(/nGroup: expected a positive divisor of numExperts \(8\), got 3/);
    e = await caught(() => g({ nGroup: 4, topkGroup: 5 }));
    expect(e.message).toMatch(/topkGroup: expected an integer in 1..nGroup \(4\), got 5/);
    e = await caught(() => g({ nGroup: 4, topkGroup: 1 })); // 1 group of 2 experts cannot hold k = 4
    expect(e.message).toMatch(/topkGroup: expected enough groups to hold numExpertsPerToken \(4\) experts, got 1/);
  });

  it('E not divisible by epSize: ShardingError naming numExperts and epSize', async () => {
    const e = await caught(() => new MoE({ ...base, numExperts: 6, epSize: 4 }));
    expect(e).toBeInstanceOf(ShardingError);
    expect(e.message).toMatch(/numExperts.*epSize 4.*expected a multiple of 4, got 6/);
    expect((await caught(() => new MoE({ ...base, epSize: 0 }))).message).toMatch(/epSize: expected a positive integer, got 0/);
  });

  it('an unsupported dtype or two devices: typed errors naming them', async () => {
    expect((await caught(() => new MoE({ ...base, dtype: 'int8' }))).message).toMatch(/MoE dtype: expected dtype float32 \| bfloat16 \| float16, got int8/);
    expect((await caught(() => new MoE({ ...base, devices: [DeviceRef.CPU(), DeviceRef.CPU()] }))).message).toMatch(/devices/);
  });
});

describe('MoE.forward', () => {
  it('T = 0 gives an empty output of the same kind', async () => {
    const moe = loaded();
    expect((await moe.forward(new Float32Array(0))).length).toBe(0);
    const y = await moe.forward(new HostTensor('float32', [0, 8]));
    expect(y.shape).toEqual([0, 8]);
  });

  it('wrong width names both widths; wrong rank, integer dtype and non-tensors are typed', async () => {
    const moe = loaded();
    let e = await caught(() => moe.forward(new HostTensor('float32', [3, 9])));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toBe('MoE.forward input: expected shape [T, 8], got [3, 9]');
    e = await caught(() => moe.forward(new Float32Array(20)));
    expect(e.message).toBe('MoE.forward input: expected shape T*8 values, got 20 values');
    e = await caught(() => moe.forward(new HostTensor('float32', [2, 2, 8])));
    expect(e).toBeInstanceOf(ShapeError);
    e = await caught(() => moe.forward(new HostTensor('int32', [2, 8])));
    expect(e).toBeInstanceOf(DTypeError);
    expect(e.message).toMatch(/MoE.forward input: expected dtype float32 \| .*, got int32/);
    e = await caught(() => moe.forward([1, 2, 3] as unknown as Float32Array));
    expect(e).toBeInstanceOf(ValueError);
    // bf16 input is accepted (converted to f32).
    expect((await moe.forward(HostTensor.fromFloat32([1, 8], new Float32Array(8).fill(0.5), 'bfloat16'))).shape).toEqual([1, 8]);
  });

  it('before loadStateDict: NotLoadedError naming the parameter', async () => {
    const e = await caught(() => new MoE({ ...base }).forward(new Float32Array(8)));
    expect(e).toBeInstanceOf(NotLoadedError);
    expect(e.message).toMatch(/parameter .*: expected loaded weights/);
  });

  it('a state dict whose tensors disagree with the config names the key, expected vs got', async () => {
    const moe = new MoE({ ...base });
    const sd: Record<string, HostTensor> = {};
    for (const [n, p] of moe.namedParameters()) sd[n] = new HostTensor(p.dtype, p.shape);
    sd['experts.down_proj'] = new HostTensor('float32', [4, 8, 7]);
    let e = await caught(() => moe.loadStateDict(sd));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toBe('experts.down_proj: expected shape [4, 8, 6], got [4, 8, 7]');
    sd['experts.down_proj'] = new HostTensor('bfloat16', [4, 8, 6]);
    e = await caught(() => moe.loadStateDict(sd));
    expect(e).toBeInstanceOf(DTypeError);
    expect(e.message).toMatch(/experts.down_proj: expected dtype float32, got bfloat16/);
  });
});

describe('Linear and MLP inputs', () => {
  it('wrong width, a HostTensor of the wrong shape or an integer dtype: typed errors with both widths', async () => {
    const lin = new Linear({ inDim: 10, outDim: 3 });
    lin.loadStateDict({ weight: new HostTensor('float32', [3, 10]) });
    expect((await caught(() => lin.forward(new Float32Array(15)))).message).toMatch(/Linear input: expected shape a multiple of 10 values \(\[T, 10\]\), got 15 values/);
    // A [2, 5] tensor holds 10 values but is not [T, 10].
    expect((await caught(() => lin.forward(new HostTensor('float32', [2, 5])))).message).toBe('Linear input: expected shape [T, 10], got [2, 5]');
    expect(await caught(() => lin.forward(new HostTensor('int8', [1, 10])))).toBeInstanceOf(DTypeError);
    const mlp = new MLP({ hiddenDim: 4, feedForwardLength: 3 });
    mlp.loadStateDict({ 'gate_proj.weight': new HostTensor('float32', [3, 4]), 'up_proj.weight': new HostTensor('float32', [3, 4]), 'down_proj.weight': new HostTensor('float32', [4, 3]) });
    expect((await caught(() => mlp.forward(new HostTensor('float32', [2, 5])))).message).toBe('MLP input: expected shape [T, 4], got [2, 5]');
  });
});

describe('MoE.fromHuggingFace on corrupt files', () => {
  const files = (arch: string, damage: (b: Uint8Array) => Uint8Array) => {
    const dir = join(FIXTURES, arch);
    return memorySource(
      {
        'config.json': new TextEncoder().encode(readFileSync(join(dir, 'config.json'), 'utf8')),
        'model.safetensors': damage(new Uint8Array(readFileSync(join(dir, 'model.safetensors')))),
      },
      `mem:${arch}`,
    );
  };

  it('a truncated model.safetensors: SafetensorsError naming the file', async () => {
    const e = await caught(() => MoE.fromHuggingFace({ source: files('olmoe', (b) => b.subarray(0, b.length >> 1)), layer: 0 }));
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toMatch(/model\.safetensors/);
  });

  it('a garbage header: SafetensorsError BAD_HEADER naming the file', async () => {
    const e = await caught(() =>
      MoE.fromHuggingFace({
        source: files('olmoe', (b) => {
          const out = b.slice();
          out.fill(0x7b, 8, 40); // '{{{{...' inside the JSON header
          return out;
        }),
        layer: 0,
      }),
    );
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.code).toBe('BAD_HEADER');
    expect(e.message).toMatch(/model\.safetensors/);
  });
});
