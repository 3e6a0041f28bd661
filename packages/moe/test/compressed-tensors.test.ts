// compressed-tensors pack-quantized int4 / int8 checkpoints (docs/COMPRESSED-TENSORS.md): the unpacker on the
// hand-worked bytes of scripts/fixtures/make-compressed-tensors.py, the config reader, the loader on
// checkpoints written by test/ct-writer.ts over the dense fixtures (against the same layer with the
// dequantized weights, dense), and the typed errors for malformed checkpoints.
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { MoE, CheckpointError, ConfigError, UnsupportedError, QuantizedExperts, type MoECheckpoint } from '../src/index.js';
// the loader's internals (not in the package's public list)
import { ctPackedToCodes, ctUnpackZeroPoints, ctTensorNeeds } from '../src/compressed-tensors.js';
import { ctSchemeOf, parseCompressedTensorsConfig } from '../src/compressed-tensors-config.js';
import { FIXTURES, fixtureCheckpoints, loadGolden, relErr } from './helpers.js';
import { CT_CASES, QWEN_IGNORE, ctCase, ctConfig, int64Pair, patchedCheckpoint, type CTCase } from './ct-writer.js';

const cpu = DeviceRef.CPU();
const open = fixtureCheckpoints();

describe('compressed-tensors unpacking: the hand-worked case (same bytes as make-compressed-tensors.py)', () => {
  // Codes (signed) [[-8, -1, 0, 1, 7, 3, -2, 5, 2, -3], [1, 2, 3, 4, 5, 6, 7, -8, -7, -6]]; +8 -> unsigned;
  // eight per int32, the first in the low bits: row 0 words 0xD6BF9870, 0x0000005A; row 1 0x0FEDCBA9, 0x00000021.
  const weightPacked = new Uint8Array([0x70, 0x98, 0xbf, 0xd6, 0x5a, 0x00, 0x00, 0x00, 0xa9, 0xcb, 0xed, 0x0f, 0x21, 0x00, 0x00, 0x00]);
  // Zero points (signed) [[-8, 7], [0, -1], [3, -5]] packed along rows into [1, 2] int32: 0x00000B80, 0x0000037F.
  const zeroPointPacked = new Uint8Array([0x80, 0x0b, 0x00, 0x00, 0x7f, 0x03, 0x00, 0x00]);

  it('weight_packed [2, 2] int32 -> int4 bytes [2, 5] (even column in the low nibble, padding dropped)', () => {
    expect([...ctPackedToCodes(weightPacked, 2, 10, 4)]).toEqual([0x70, 0x98, 0xbf, 0xd6, 0x5a, 0xa9, 0xcb, 0xed, 0x0f, 0x21]);
    // the unsigned codes they hold: signed + 8
    const b = ctPackedToCodes(weightPacked, 2, 10, 4);
    const codes = [...b].flatMap((x) => [x & 15, x >> 4]);
    expect(codes).toEqual([-8, -1, 0, 1, 7, 3, -2, 5, 2, -3, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6].map((v) => v + 8));
  });
  it('weight_zero_point [1, 2] int32 packed along rows -> unsigned codes [3, 2]', () => {
    expect([...ctUnpackZeroPoints(zeroPointPacked, 3, 2, 4)]).toEqual([-8, 7, 0, -1, 3, -5].map((v) => v + 8));
  });
  it('8 bits: pack_to_int32 docstring example [1, 2] -> 33409 (0x8281); zero points [-128, 5, 127] along rows -> 0x00FF8500', () => {
    expect([...ctPackedToCodes(new Uint8Array([0x81, 0x82, 0x00, 0x00]), 1, 2, 8)]).toEqual([1 + 128, 2 + 128]);
    expect([...ctUnpackZeroPoints(new Uint8Array([0x00, 0x85, 0xff, 0x00]), 3, 1, 8)]).toEqual([0, 5 + 128, 255]);
  });
});

describe('compressed-tensors quantization_config', () => {
  const groupCfg = (w: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ ...ctConfig({ group_size: 32, symmetric: true, ...w }, ['Linear'], QWEN_IGNORE), ...extra });
  it('reads a pack-quantized int4 group scheme (symmetric and asymmetric, channel)', () => {
    expect(parseCompressedTensorsConfig(groupCfg({}))).toEqual({ format: 'pack-quantized', ignore: QWEN_IGNORE, groups: [{ name: 'group_0', targets: ['Linear'], weights: { numBits: 4, groupSize: 32, symmetric: true } }] });
    expect(parseCompressedTensorsConfig(groupCfg({ symmetric: false, group_size: 128 })).groups[0].weights).toEqual({ numBits: 4, groupSize: 128, symmetric: false });
    expect(parseCompressedTensorsConfig(groupCfg({ strategy: 'channel', group_size: null })).groups[0].weights).toEqual({ numBits: 4, groupSize: 'channel', symmetric: true });
    // mixed-precision: the groups carry the format
    const mixed = groupCfg({}, { format: 'mixed-precision' });
    (mixed.config_groups as Record<string, Record<string, unknown>>).group_0.format = 'pack-quantized';
    expect(parseCompressedTensorsConfig(mixed).groups).toHaveLength(1);
    (mixed.config_groups as Record<string, Record<string, unknown>>).group_0.format = 'float-quantized';
    expect(() => parseCompressedTensorsConfig(mixed)).toThrow(/config_groups.group_0.format: "float-quantized" is not supported/);
  });
  it('rejects what it cannot read with typed errors naming the field', () => {
    const bad: [Record<string, unknown>, typeof ConfigError | typeof UnsupportedError, RegExp][] = [
      [groupCfg({}, { format: 'pack-quantised' }), ConfigError, /quantization_config.format: expected a compressed-tensors format.*got pack-quantised/],
      [groupCfg({}, { format: 'float-quantized' }), UnsupportedError, /quantization_config.format: "float-quantized" is not supported \(supported: "pack-quantized"/],
      [groupCfg({ num_bits: 2 }), UnsupportedError, /weights.num_bits: 2 is not supported \(supported: 4 and 8\)/],
      [groupCfg({ num_bits: 'four' }), ConfigError, /num_bits: expected an integer from 1 to 8/],
      [groupCfg({ group_size: 0 }), ConfigError, /group_size: expected a positive integer/],
      [groupCfg({ strategy: 'tensor' }), UnsupportedError, /strategy: "tensor" is not supported/],
      [groupCfg({ type: 'float' }), UnsupportedError, /type: "float" is not supported/],
      [groupCfg({ actorder: 'group' }), UnsupportedError, /actorder/],
      [groupCfg({}, { config_groups: {} }), ConfigError, /config_groups/],
      [groupCfg({}, { ignore: 'lm_head' }), ConfigError, /ignore/],
      [{ ...groupCfg({}), config_groups: { g: { targets: ['Linear'], weights: { num_bits: 4, strategy: 'group', group_size: 32 }, input_activations: { num_bits: 8 } } } }, UnsupportedError, /input_activations/],
    ];
    for (const [cfg, cls, msg] of bad) {
      let err: unknown;
      try {
        parseCompressedTensorsConfig(cfg);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(cfg)).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(msg);
    }
  });
  it('targets and ignore match as compressed-tensors does (re: anchored at the start, "Linear" any Linear)', () => {
    const ct = parseCompressedTensorsConfig(ctConfig({ group_size: 32, symmetric: true }, ['re:.*experts\\.\\d+\\.', 'model.layers.0.mlp.shared_expert.up_proj'], ['re:.*experts\\.3\\.']));
    expect(ctSchemeOf(ct, 'model.layers.0.mlp.experts.2.gate_proj')?.name).toBe('group_0');
    expect(ctSchemeOf(ct, 'model.layers.0.mlp.experts.3.gate_proj')).toBeUndefined(); // ignored
    expect(ctSchemeOf(ct, 'model.layers.0.mlp.shared_expert.up_proj')?.name).toBe('group_0'); // exact name
    expect(ctSchemeOf(ct, 'model.layers.0.mlp.shared_expert.gate_proj')).toBeUndefined();
    // re.match is anchored at the start only
    const mid = parseCompressedTensorsConfig(ctConfig({ group_size: 32, symmetric: true }, ['re:mlp\\.experts'], []));
    expect(ctSchemeOf(mid, 'model.layers.0.mlp.experts.0.gate_proj')).toBeUndefined();
    expect(ctSchemeOf(mid, 'mlp.experts.0.gate_proj')?.name).toBe('group_0');
  });
});

describe('MoE.fromHuggingFace on compressed-tensors checkpoints (CPU) vs the same layer with dequantized weights', () => {
  for (const c of CT_CASES) {
    it(c.name, async () => {
      const { ct, deq } = await ctCase(c, open);
      const g = loadGolden(c.arch);
      const moe = await MoE.fromHuggingFace({ source: ct, layer: 0, device: cpu });
      const ref = await MoE.fromHuggingFace({ source: deq, layer: 0, device: cpu });
      // codes stay packed (int4 two per byte, int8 one), scales per group, zero points for asymmetric schemes
      const s = moe.stacked as QuantizedExperts;
      expect(s).toBeInstanceOf(QuantizedExperts);
      const bits = c.scheme.bits ?? 4;
      expect(moe.quant!.format).toBe(`int${bits}`);
      expect(s.gateUpProj.value.dtype).toBe('uint8');
      expect(s.gateUpProj.value.shape).toEqual([moe.numExperts, 2 * moe.moeDim, (moe.hiddenDim * bits) / 8]);
      expect(s.gateUpScale.value.dtype).toBe(c.scheme.scaleDtype === 'float16' ? 'float16' : 'float32');
      expect(!!s.gateUpZeros).toBe(!c.scheme.symmetric);
      expect(moe.shared?.kind === 'packed').toBe(c.sharedQuantized);
      const y = await moe.forward(g.input);
      const want = await ref.forward(g.input);
      const err = relErr(y, want);
      expect(err, `rel err ${err}`).toBeLessThan(1e-5);
      // and the quantization is visible at this tolerance (the comparison is not with the unquantized layer)
      expect(relErr(want, g.output)).toBeGreaterThan(1e-3);
    });
  }
});

describe('malformed compressed-tensors checkpoints: typed errors naming the tensor, before anything is allocated', () => {
  // A GPU context that fails on any use: the errors must come before the layer (or any buffer) is built.
  const untouchable = new Proxy({}, { get: (_, p) => { throw new Error(`the loader touched ctx.${String(p)} before failing`); } }) as never;
  const load = (source: MoECheckpoint) => MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.GPU(), ctx: untouchable }).then(() => undefined, (e: unknown) => e);
  const P = 'model.layers.0.mlp.';
  const asym = CT_CASES[1];
  const sym = CT_CASES[0];
  const withTensors = async (c: CTCase, edit: { drop?: string[]; add?: Record<string, HostTensor | { i64: Uint8Array; shape: number[] }>; config?: Record<string, unknown> }) => {
    const { ct } = await ctCase(c, open);
    return patchedCheckpoint(ct, { drop: (n) => (edit.drop ?? []).includes(n), add: new Map(Object.entries(edit.add ?? {})), config: edit.config });
  };
  const expectErr = (e: unknown, cls: typeof CheckpointError | typeof ConfigError | typeof UnsupportedError, ...parts: (string | RegExp)[]) => {
    expect(e).toBeInstanceOf(cls);
    for (const p of parts) expect((e as Error).message).toMatch(p);
  };

  it('a scale of the wrong shape', async () => {
    const n = `${P}experts.2.up_proj.weight_scale`;
    const e = await load(await withTensors(sym, { add: { [n]: HostTensor.fromFloat32([32, 3], new Float32Array(96), 'bfloat16') } }));
    expectErr(e, CheckpointError, n, /expected shape \[32, 2\], got \[32, 3\]/);
  });
  it('a group size that does not divide the input channels', async () => {
    const e = await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 24, symmetric: true }, ['Linear'], QWEN_IGNORE) } }));
    expectErr(e, CheckpointError, `${P}experts.0.gate_proj.weight_packed`, /input channels divisible by group_size 24, got 64 input channels/);
  });
  it('an unknown format, and num_bits other than 4 and 8', async () => {
    expectErr(await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: true }, ['Linear'], QWEN_IGNORE, 'packed-int4') } })), ConfigError, /quantization_config.format/, /packed-int4/);
    expectErr(await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: true, num_bits: 3 }, ['Linear'], QWEN_IGNORE) } })), UnsupportedError, /num_bits: 3 is not supported/);
  });
  it('missing zero points of an asymmetric scheme', async () => {
    const n = `${P}experts.5.down_proj.weight_zero_point`;
    expectErr(await load(await withTensors(asym, { drop: [n] })), CheckpointError, n, /missing/);
    // and a symmetric checkpoint whose config says asymmetric: every expert's zero points are missing
    expectErr(await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: false }, ['Linear'], QWEN_IGNORE) } })), CheckpointError, `${P}experts.0.gate_proj.weight_zero_point`, /missing/);
  });
  it('zero points of the wrong shape, and packed weights of the wrong dtype', async () => {
    const z = `${P}experts.1.gate_proj.weight_zero_point`;
    expectErr(await load(await withTensors(asym, { add: { [z]: new HostTensor('int32', [32, 4]) } })), CheckpointError, z, /expected shape \[4, 4\], got \[32, 4\]/);
    const w = `${P}experts.1.gate_proj.weight_packed`;
    expectErr(await load(await withTensors(asym, { add: { [w]: new HostTensor('uint8', [32, 8]) } })), CheckpointError, w, /dtype int32, got uint8/);
  });
  it('odd input channels in int4 (the int4 format holds two codes per byte)', () => {
    expect(() => ctTensorNeeds({ name: 'm.experts.0.down_proj', rows: 8, cols: 33 }, { numBits: 4, groupSize: 'channel', symmetric: true })).toThrow(/m\.experts\.0\.down_proj\.weight_packed: 33 input channels \(odd\) in int4 is not supported/);
    expect(ctTensorNeeds({ name: 'm', rows: 8, cols: 33 }, { numBits: 8, groupSize: 'channel', symmetric: false }).map((n) => n.shape)).toEqual([[8, 9], [8, 1], [2], [2, 1]]);
  });
  it('a weight_shape that disagrees with the config', async () => {
    const n = `${P}experts.7.down_proj.weight_shape`;
    expectErr(await load(await withTensors(sym, { add: { [n]: { i64: int64Pair(64, 30), shape: [2] } } })), CheckpointError, n, /expected \[64, 32\].*got \[64, 30\]/);
    expectErr(await load(await withTensors(sym, { add: { [n]: new HostTensor('int32', [2], Int32Array.from([32, 64])) } })), CheckpointError, n, /got \[32, 64\]/);
  });
  it('a quantized router, experts partly quantized, mixed scale dtypes', async () => {
    expectErr(await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: true }, ['Linear'], []) } })), UnsupportedError, `${P}gate`, /quantized router/);
    expectErr(await load(await withTensors(sym, { config: { quantization_config: ctConfig({ group_size: 32, symmetric: true }, ['Linear'], [...QWEN_IGNORE, 're:.*experts\\.4\\.']) } })), UnsupportedError, `${P}experts.4.gate_proj`, /dense routed expert beside quantized ones/);
    const n = `${P}experts.3.gate_proj.weight_scale`;
    expectErr(await load(await withTensors(sym, { add: { [n]: HostTensor.fromFloat32([32, 2], new Float32Array(64), 'float16') } })), CheckpointError, n, /dtype bfloat16/, /got float16/);
  });
});
