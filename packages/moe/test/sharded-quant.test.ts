// Quantized experts sharded on CPU shards (DeviceGroup.cpu): the quantized fixtures (DeepSeek-V3 fp8 blocks, GPT-OSS
// MXFP4) under expert parallel against the unsharded layer (1e-5) and transformers' goldens, the typed error naming the
// block unit where their I cannot be split in whole blocks (TP 2, TP 3), and random quantize()-built layers of every
// format with odd shapes whose I does split (TP 2, TP 3, EP) against the unsharded layer, with the packed slices
// checked byte for byte against the source's codes and scales.
import { describe, it, expect } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { DeviceGroup, ShardingError, ShardingStrategy } from '@webmoe/sharding';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { MoE, QuantizedExperts, ShardedMoE, quantize, type MoEQuantConfig } from '../src/index.js';
import { FIXTURES, goldenTensors, relErr } from './helpers.js';
import { quantizedCase } from './quant-cases.js';
import { QUANT_SHARD_CASES } from './quant-shard-cases.js';

const TOL = 1e-5;

/** The quantized fixtures: the golden output of each activation scheme, its tolerance, and the block-unit error of TP 2 / TP 3. */
export const QUANT_FIXTURES = [
  { arch: 'deepseek_v3_fp8', activationQuant: 'dynamic', golden: 'output_w8a8', tol: 1e-3, tpError: /moeDim = 128 \(unit 128 = fp8_block blocks \(.*down_proj_scale_inv: 128 input channels per scale.*dynamic fp8 activations: 128 channels per scale\)\).*1 unit\(s\) of 128 for \d shards: any split of moeDim into \d would cut a block/ },
  { arch: 'deepseek_v3_fp8', activationQuant: 'none', golden: 'output_weight_only', tol: 1e-4, tpError: /moeDim = 128 \(unit 128 = fp8_block blocks \(gate_up_proj_scale_inv: 128-row blocks \(concat gate\/up rows\); down_proj_scale_inv: 128 input channels per scale\)\).*any split of moeDim into \d would cut a block/ },
  { arch: 'gpt_oss_mxfp4', activationQuant: 'none', golden: 'output', tol: 1e-4, tpError: /moeDim = 32 \(unit 32 = mxfp4 blocks \(down_proj_blocks: 32 input channels per packed index; down_proj_scales: 32 input channels per scale\)\).*1 unit\(s\) of 32 for \d shards/ },
] as const;

describe('quantized fixtures sharded on CPU shards', () => {
  for (const f of QUANT_FIXTURES) {
    it(`${f.arch} (${f.activationQuant} activations): EP 2 and EP 4 give the unsharded output (1e-5) and the golden; TP 2 / TP 3 are a ShardingError naming the block unit`, async () => {
      const g = goldenTensors(f.arch);
      const x = g.get('input')!;
      const [T, H] = x.shape;
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${f.arch}`, layer: 0, activationQuant: f.activationQuant });
      const want = moe.forwardHost(x.values, T);
      expect(relErr(want, g.get(f.golden)!.values)).toBeLessThan(f.tol);
      for (const n of [2, 4]) {
        const s = moe.shard(DeviceGroup.cpu(n), ShardingStrategy.expertParallel(n));
        for (const m of s.shards) {
          expect(m.stacked).toBeInstanceOf(QuantizedExperts);
          expect(m.gateUpProj.value.dtype).toBe(moe.gateUpProj.value.dtype); // still packed
          expect(m.gateUpProj.value.shape[0]).toBe(moe.numExperts / n);
          expect(m.activationQuant).toBe(f.activationQuant);
        }
        const y = await s.forward(x.values);
        expect(relErr(y, want), `EP ${n}`).toBeLessThan(TOL);
        expect(relErr(y, g.get(f.golden)!.values), `EP ${n} vs golden`).toBeLessThan(f.tol);
        expect(relErr(await s.forward(x.values.subarray(0, H)), want.subarray(0, H)), `EP ${n}, T = 1`).toBeLessThan(TOL);
        s.destroy();
      }
      for (const n of [2, 3]) {
        expect(() => moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n))).toThrow(ShardingError);
        expect(() => moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n))).toThrow(f.tpError);
      }
      moe.destroy();
    });
  }

  it('ShardedMoE.fromHuggingFace reads a quantized layer and shards it (EP 2, DeepSeek fp8 with its quantized shared expert)', async () => {
    const g = goldenTensors('deepseek_v3_fp8');
    const x = g.get('input')!;
    const s = await ShardedMoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, devices: DeviceGroup.cpu(2), strategy: ShardingStrategy.expertParallel(2) });
    expect(s.shards[1].shared?.kind).toBe('packed');
    expect(relErr(await s.forward(x.values), g.get('output_w8a8')!.values)).toBeLessThan(1e-3);
    s.destroy();
  });

  it('MoE.fromHuggingFace with expertShard reads a quantized layer\'s experts of one shard (codes and scales of those experts only)', async () => {
    const full = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0 });
    const part = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, expertShard: { epSize: 4, shardIndex: 3 } });
    for (const name of ['experts.gate_up_proj', 'experts.gate_up_proj_scale_inv', 'experts.down_proj', 'experts.down_proj_scale_inv']) {
      const a = full.stateDict().get(name)!;
      const b = part.stateDict().get(name)!;
      const per = a.size / a.shape[0];
      expect(b.shape, name).toEqual([2, ...a.shape.slice(1)]);
      expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(a.data.buffer, a.data.byteOffset + 6 * per * a.data.BYTES_PER_ELEMENT, 2 * per * a.data.BYTES_PER_ELEMENT)), name).toBe(true);
    }
    const oss = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss_mxfp4`, layer: 0, expertShard: { epSize: 2, shardIndex: 1 } });
    expect(oss.gateUpProj.value.shape).toEqual([4, 64, 2, 16]);
    expect(oss.stacked.gateUpBias!.value.shape).toEqual([4, 64]);
    for (const m of [full, part, oss]) m.destroy();
  });
});

describe('random quantize()-built layers sharded on CPU shards (every format, odd shapes)', () => {
  QUANT_SHARD_CASES.forEach((c, ci) => {
    it(`${c.case.name}: TP 2, TP 3 and EP ${c.ep.join(', ')} give the unsharded output within 1e-5; slices stay packed`, async () => {
      const T = 9;
      const { moe, x } = quantizedCase(c.case, c.fmt, 4100 + ci, T, undefined, undefined, c.activationQuant);
      const want = moe.forwardHost(x, T);
      for (const n of [2, 3] as const) {
        const s = moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n));
        expect(s.shards.map((m) => m.moeDim), `TP ${n} widths`).toEqual(c.widths[n].I);
        if (c.widths[n].S) expect(s.shards.map((m) => m.sharedExpertsDim), `TP ${n} shared widths`).toEqual(c.widths[n].S);
        for (const m of s.shards) {
          expect(m.quant).toEqual(moe.quant);
          for (const [name, t] of m.stateDict()) expect(t.dtype, name).toBe(moe.stateDict().get(name)!.dtype);
        }
        checkPackedSlices(moe, s, n, c.unit);
        const y = await s.forward(x);
        const err = relErr(y, want);
        expect(err, `TP ${n}: rel err ${err}`).toBeLessThan(TOL);
        expect(relErr(await s.forward(x.subarray(0, moe.hiddenDim)), want.subarray(0, moe.hiddenDim)), `TP ${n}, T = 1`).toBeLessThan(TOL);
        s.destroy();
      }
      for (const n of c.ep) {
        const s = moe.shard(DeviceGroup.cpu(n), ShardingStrategy.expertParallel(n));
        const err = relErr(await s.forward(x), want);
        expect(err, `EP ${n}: rel err ${err}`).toBeLessThan(TOL);
        s.destroy();
      }
      // a unit that is not a multiple of the block unit would cut blocks
      expect(() => moe.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2, { unit: c.unit / 2 }))).toThrow(new RegExp(`unit: expected 1 or a multiple of ${c.unit} = ${c.fmt.format} blocks.*got ${c.unit / 2}: the split would cut a block`));
      // a multiple of it is taken as given
      const coarse = moe.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2, { unit: 2 * c.unit }));
      expect(coarse.shards[0].moeDim).toBe(Math.min(moe.moeDim, 2 * c.unit));
      expect(relErr(await coarse.forward(x), want)).toBeLessThan(TOL);
      coarse.destroy();
      moe.destroy();
    });
  });

  it('more shards than whole blocks: a ShardingError naming the unit, for the routed and the shared width', () => {
    const [a, , oss] = QUANT_SHARD_CASES;
    const { moe } = quantizedCase(a.case, a.fmt, 1, 1);
    // I = 56 is 4 units of 16 (TP 4 splits it), S = 40 only 3
    expect(() => moe.shard(DeviceGroup.cpu(4), ShardingStrategy.tensorParallel(4))).toThrow(/sharedExpertsDim = 40 \(unit 16 = fp8_block blocks .*expected at least 49 .*got an empty shard 3 \(3 unit\(s\) of 16 for 4 shards/);
    expect(() => moe.shard(DeviceGroup.cpu(5), ShardingStrategy.tensorParallel(5))).toThrow(/moeDim = 56 \(unit 16 = fp8_block blocks/);
    const { moe: m2 } = quantizedCase(oss.case, oss.fmt, 1, 1);
    expect(() => m2.shard(DeviceGroup.cpu(4), ShardingStrategy.tensorParallel(4))).toThrow(/moeDim = 96 \(unit 32 = mxfp4 blocks/);
    // concat fp8 whose I is not a multiple of the row block: gate and up blocks straddle, no split keeps them whole
    const odd = new MoE({ hiddenDim: 16, numExperts: 2, numExpertsPerToken: 1, moeDim: 36, quantConfig: { format: 'fp8_block', weightBlockSize: [8, 16] } });
    odd.loadStateDict(new Map([...odd.namedParameters()].map(([name, p]) => [name, new HostTensor(p.dtype, p.shape, new (p.dtype === 'float32' ? Float32Array : Uint8Array)(p.shape.reduce((x, y) => x * y, 1)))])));
    expect(() => odd.shard(DeviceGroup.cpu(2), ShardingStrategy.tensorParallel(2))).toThrow(/gate_up_proj_scale_inv \[2, 9, 1\] \(fp8_block, blocks of 8 rows\).*got rows \[36, 68\) of 72 .*the split would cut a block/);
    for (const m of [moe, m2, odd]) m.destroy();
  });
});

describe('random shapes, formats and shard counts (CPU): TP splits in whole blocks or throws a ShardingError, EP always splits', () => {
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;
  it('40 random layers', async () => {
    const r = rng(97);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    let split = 0;
    let refused = 0;
    for (let trial = 0; trial < 40; trial++) {
      const kind = pick(['fp8_block', 'mxfp4', 'int4', 'int8'] as const);
      const interleaved = r() < 0.4;
      const dynamic = r() < 0.2;
      const n = int(2, 4);
      const E = pick([2, 4, 6]);
      let fmt: MoEQuantConfig;
      let H: number;
      let I: number;
      // the I-axis unit by the rules of docs/DISTRIBUTED.md (test-side), and whether concat gate/up rows can split at all
      let unit: number;
      let rowsOk = true;
      if (kind === 'fp8_block') {
        const [br, bc] = [pick([2, 4, 8, 16]), pick([4, 8, 16, 32])];
        fmt = { format: kind, weightBlockSize: [br, bc] };
        H = int(5, 40);
        I = int(4, 80);
        unit = lcm(interleaved ? br / gcd(br, 2) : br, bc);
        rowsOk = interleaved || I % br === 0;
      } else if (kind === 'mxfp4') {
        fmt = { format: kind };
        H = 32 * int(1, 2);
        I = 32 * int(1, 5);
        unit = 32;
      } else {
        const b = int(2, 12);
        fmt = { format: kind, blockSize: b, scaleDtype: pick(['float16', 'float32'] as const) };
        H = 2 * int(3, 20);
        I = 2 * int(2, 40);
        unit = kind === 'int4' ? lcm(b, 2) : b;
      }
      if (dynamic) {
        unit = lcm(unit, 128);
        I = Math.max(I, int(130, 400));
        if (kind === 'mxfp4') I = 32 * Math.ceil(I / 32);
        if (kind !== 'fp8_block' && I % 2) I++; // int4 packs two codes per byte
        if (kind === 'fp8_block' && !interleaved) rowsOk = I % fmt.weightBlockSize![0] === 0;
      }
      const what = `trial ${trial}: ${JSON.stringify(fmt)} ${interleaved ? 'interleaved' : 'concat'}${dynamic ? ' dynamic' : ''} H ${H} E ${E} I ${I} TP ${n} (unit ${unit})`;
      const dense = new MoE({
        hiddenDim: H, numExperts: E, numExpertsPerToken: 2, moeDim: I, hasExpertBias: interleaved,
        expertActivation: interleaved ? { kind: 'swigluoai', limit: 7, alpha: 1.702, layout: 'interleaved' } : undefined,
      });
      const rand = (shape: number[], sc: number) => HostTensor.fromFloat32(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * sc));
      const sd = new Map<string, HostTensor>([
        ['gate.weight', rand([E, H], 1)],
        ['experts.gate_up_proj', rand([E, 2 * I, H], 1 / Math.sqrt(H))],
        ['experts.down_proj', rand([E, H, I], 1 / Math.sqrt(I))],
      ]);
      if (interleaved) sd.set('experts.gate_up_proj_bias', rand([E, 2 * I], 0.2)).set('experts.down_proj_bias', rand([E, H], 0.2));
      dense.loadStateDict(sd);
      const moe = quantize(dense, { ...fmt, activationQuant: dynamic ? 'dynamic' : 'none' });
      dense.destroy();
      const T = int(1, 6);
      const x = rand([T, H], 1).data as Float32Array;
      const want = moe.forwardHost(x, T);
      const ep = moe.shard(DeviceGroup.cpu(2), ShardingStrategy.expertParallel(2));
      expect(relErr(await ep.forward(x), want), `${what}: EP 2`).toBeLessThan(TOL);
      ep.destroy();
      if (rowsOk && Math.ceil(I / unit) >= n) {
        const s = moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n));
        const widths = s.shards.map((m) => m.moeDim);
        expect(widths.reduce((a, b) => a + b, 0), what).toBe(I);
        widths.slice(0, -1).forEach((w, i) => expect(w % unit, `${what}: shard ${i} width ${w}`).toBe(0));
        const err = relErr(await s.forward(x), want);
        expect(err, `${what}: rel err ${err}`).toBeLessThan(TOL);
        s.destroy();
        split++;
      } else {
        expect(() => moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n)), what).toThrow(ShardingError);
        // too few whole units is found first; otherwise the gate/up row block that no unit avoids
        const unitErr = new RegExp(`moeDim = ${I} \\(unit ${unit} = ${kind} blocks.*any split of moeDim into ${n} would cut a block`);
        expect(() => moe.shard(DeviceGroup.cpu(n), ShardingStrategy.tensorParallel(n)), what).toThrow(Math.ceil(I / unit) < n ? unitErr : /gate_up_proj_scale_inv .*the split would cut a block/);
        refused++;
      }
      moe.destroy();
    }
    // both outcomes occur in the sample (the seed is fixed)
    expect(split).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(3);
  });
});

/**
 * The TP shards' packed tensors are the source's bytes (test-side index maths, not the package's): for every quantized
 * parameter, shard i's slice along the I axis in the tensor's own index units (gate_up rows: gate [s, e) and up
 * [I+s, I+e) or interleaved [2s, 2e), over the row block of scales; down columns over the column block).
 */
function checkPackedSlices(src: MoE, s: ShardedMoE, n: number, unit: number): void {
  const widths = s.shards.map((m) => m.moeDim);
  const I = src.moeDim;
  const inter = src.activation.layout === 'interleaved';
  let start = 0;
  for (const [i, m] of s.shards.entries()) {
    const [a, b] = [start, start + widths[i]];
    start = b;
    expect(a % unit, `shard ${i} starts on the unit`).toBe(0);
    const ex = m.stacked as QuantizedExperts;
    const full = src.stacked as QuantizedExperts;
    for (const [name, p] of ex.namedParameters()) {
      if (name.endsWith('_bias')) continue;
      const srcT = full.namedParameters().find(([nm]) => nm === name)![1].value;
      const t = p.value;
      const isGateUp = name.startsWith('gate_up');
      const axis = isGateUp ? 1 : 2;
      const fullLen = srcT.shape[axis];
      const per = perIndex(src, name, isGateUp);
      const elemRanges = isGateUp ? (inter ? [[2 * a, 2 * b]] : [[a, b], [I + a, I + b]]) : [[a, b]];
      const idx = elemRanges.map(([x, y]) => [x / per, Math.ceil(y / per)]);
      const inner = srcT.shape.slice(axis + 1).reduce((u, v) => u * v, 1);
      const outer = srcT.shape.slice(0, axis).reduce((u, v) => u * v, 1);
      const bpe = srcT.data.BYTES_PER_ELEMENT;
      const sb = Buffer.from(srcT.data.buffer, srcT.data.byteOffset, srcT.data.byteLength);
      const parts: Buffer[] = [];
      for (let o = 0; o < outer; o++) for (const [x, y] of idx) parts.push(sb.subarray((o * fullLen + x) * inner * bpe, (o * fullLen + y) * inner * bpe));
      expect(Buffer.concat(parts).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `TP ${n} shard ${i} ${name}`).toBe(true);
    }
  }
}

/** Rows (gate_up) or input channels (down) per index along the I axis of a packed tensor, from the format's definition. */
function perIndex(src: MoE, name: string, isGateUp: boolean): number {
  const q = src.quant!;
  const scale = name.endsWith('_scale_inv') || name.endsWith('_scales');
  switch (q.format) {
    case 'fp8_block':
      return scale ? q.weightBlockSize[isGateUp ? 0 : 1] : 1;
    case 'mxfp4':
      return isGateUp ? 1 : 32;
    default:
      return isGateUp ? 1 : scale ? q.blockSize : q.format === 'int4' ? 2 : 1;
  }
}
