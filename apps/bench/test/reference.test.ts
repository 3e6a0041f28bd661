// The bench's float64 reference (src/reference.ts) on its own: decoders against @webmoe/tensor's conversions
// and the kernels' host decoder (two other implementations), routing and a whole layer by hand.
import { describe, expect, it } from 'vitest';
import { bf16ToF32, e4m3ToF32, f16ToF32, HostTensor } from '@webmoe/tensor';
import { decodeExpertRow, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { referenceForward, routeToken64 } from '../src/reference.js';
import { bf16ToNumber, e4m3ToNumber, f16ToNumber, readExpert, type StoredDtype, type StoredExperts, type StoredLayer, type StoredTensor } from '../src/stored.js';
import { relErr64, sampleTokens } from '../src/check.js';

/** A host byte array as a stored tensor. */
function stored(dtype: StoredDtype, shape: number[], bytes: Uint8Array): StoredTensor {
  return { dtype, shape, read: async (o, n) => bytes.slice(o, o + n) };
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const same = (a: number, b: number) => (Number.isNaN(a) ? Number.isNaN(b) : a === b);

describe('reference decoders', () => {
  it('bf16, f16 (all 65536 codes) and e4m3 (all 256) equal @webmoe/tensor', () => {
    for (let h = 0; h < 65536; h++) {
      expect(same(bf16ToNumber(h), bf16ToF32(h)), `bf16 ${h}`).toBe(true);
      expect(same(f16ToNumber(h), f16ToF32(h)), `f16 ${h}`).toBe(true);
    }
    for (let b = 0; b < 256; b++) expect(same(e4m3ToNumber(b), e4m3ToF32(b)), `e4m3 ${b}`).toBe(true);
  });

  // odd sizes: 3 experts, 5 rows, partial scale blocks
  const E = 3;
  const r = rng(5);
  const randBytes = (n: number, mask = 0xff) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256) & mask);
  const cases: [string, number, number, () => [StoredExperts, ExpertWeightsHost]][] = [
    ['fp8 block [4, 8]', 5, 20, () => {
      const q = randBytes(E * 5 * 20, 0xbf); // never NaN
      const s = Float32Array.from({ length: E * 2 * 3 }, () => 2 ** -Math.floor(r() * 8));
      return [
        { kind: 'fp8_block', q: stored('float8_e4m3fn', [E, 5, 20], q), scaleInv: stored('float32', [E, 2, 3], bytesOf(s)), block: [4, 8] },
        { kind: 'fp8_block', q: new HostTensor('float8_e4m3fn', [E, 5, 20], q), scaleInv: new HostTensor('float32', [E, 2, 3], s), block: [4, 8] },
      ];
    }],
    ...([4, 8] as const).map((bits): [string, number, number, () => [StoredExperts, ExpertWeightsHost]] => [`int${bits} blocks of 16, f16 scales`, 5, 40, () => {
      const q = randBytes((E * 5 * 40 * bits) / 8);
      const s = Uint16Array.from({ length: E * 5 * 3 }, () => 0x1c00 + Math.floor(r() * 0x400)); // f16 in [2^-8, 2^-7)
      return [
        { kind: 'int_block', bits, q: stored('uint8', [E, 5, (40 * bits) / 8], q), scales: stored('float16', [E, 5, 3], bytesOf(s)), blockSize: 16 },
        { kind: 'int_block', bits, q: new HostTensor('uint8', [E, 5, (40 * bits) / 8], q), scales: new HostTensor('float16', [E, 5, 3], s), blockSize: 16 },
      ];
    }]),
    ['int8 blocks of 16, f32 scales', 5, 40, () => {
      const q = randBytes(E * 5 * 40);
      const s = Float32Array.from({ length: E * 5 * 3 }, () => r() / 64);
      return [
        { kind: 'int_block', bits: 8, q: stored('uint8', [E, 5, 40], q), scales: stored('float32', [E, 5, 3], bytesOf(s)), blockSize: 16 },
        { kind: 'int_block', bits: 8, q: new HostTensor('uint8', [E, 5, 40], q), scales: new HostTensor('float32', [E, 5, 3], s), blockSize: 16 },
      ];
    }],
    ['mxfp4', 5, 96, () => {
      const blocks = randBytes(E * 5 * 3 * 16);
      const scales = Uint8Array.from({ length: E * 5 * 3 }, () => 118 + Math.floor(r() * 12));
      return [
        { kind: 'mxfp4', blocks: stored('uint8', [E, 5, 3, 16], blocks), scales: stored('uint8', [E, 5, 3], scales) },
        { kind: 'mxfp4', blocks: new HostTensor('uint8', [E, 5, 3, 16], blocks), scales: new HostTensor('uint8', [E, 5, 3], scales) },
      ];
    }],
    ['dense f16', 5, 7, () => {
      const w = Uint16Array.from({ length: E * 5 * 7 }, () => Math.floor(r() * 0x7bff) | (r() < 0.5 ? 0x8000 : 0));
      return [{ kind: 'dense', w: stored('float16', [E, 5, 7], bytesOf(w)) }, { kind: 'dense', w: new HostTensor('float16', [E, 5, 7], w) }];
    }],
  ];
  for (const [name, rows, cols, make] of cases) {
    it(`readExpert (${name}) equals the kernels' decodeExpertRow, reading only that expert's bytes`, async () => {
      const [st, host] = make();
      const row = new Float64Array(cols);
      const want = new Float32Array(cols);
      let nonzero = 0;
      for (let e = 0; e < E; e++) {
        const m = await readExpert(st, e, rows, cols);
        for (let i = 0; i < rows; i++) {
          m.row(i, row);
          decodeExpertRow(host, e, i, want);
          for (let c = 0; c < cols; c++) {
            expect(Math.fround(row[c]), `${name} [${e}, ${i}, ${c}]`).toBe(want[c]);
            if (row[c] !== 0) nonzero++;
          }
        }
      }
      expect(nonzero).toBeGreaterThan((E * rows * cols) / 2);
    });
  }
});

describe('reference routing (hand computed)', () => {
  it('softmax top-k, renormalised and not', () => {
    const logits = [0, Math.log(3), Math.log(2), 0]; // probs 1/7, 3/7, 2/7, 1/7
    const a = routeToken64({ kind: 'softmax_topk', numExperts: 4, topK: 2, normTopkProb: true }, 2, logits);
    expect(a.idx).toEqual([1, 2]);
    expect(a.w[0]).toBeCloseTo(0.6, 14);
    expect(a.w[1]).toBeCloseTo(0.4, 14);
    expect(a.margin).toBeCloseTo(1 / 7, 14);
    const b = routeToken64({ kind: 'softmax_topk', numExperts: 4, topK: 2, normTopkProb: false }, 2, logits);
    expect(b.w[0]).toBeCloseTo(3 / 7, 14);
  });
  it('top-k then softmax, raw top-k, sigmoid top-k', () => {
    const logits = [1, 3, 2, -1];
    const t = routeToken64({ kind: 'topk_softmax', numExperts: 4, topK: 2, normTopkProb: false }, 2, logits);
    expect(t.idx).toEqual([1, 2]);
    expect(t.w[0]).toBeCloseTo(Math.E / (Math.E + 1), 14);
    expect(routeToken64({ kind: 'raw_topk', numExperts: 4, topK: 2, normTopkProb: false }, 2, logits).w).toEqual([3, 2]);
    expect(routeToken64({ kind: 'sigmoid_topk', numExperts: 4, topK: 1, normTopkProb: false }, 1, logits).w[0]).toBeCloseTo(1 / (1 + Math.exp(-3)), 14);
  });
  it('sigmoid grouped no-aux: groups by their top-2 corrected scores, uncorrected weights, scaling', () => {
    // 4 experts in 2 groups; correction makes group 1 win though expert 0 has the largest logit
    const logits = [2, -2, 0, 0];
    const corr = [0, 0, 0.3, 0.3];
    const p = { kind: 'sigmoid_grouped', numExperts: 4, topK: 1, normTopkProb: false, nGroup: 2, topkGroup: 1, routedScalingFactor: 2.5 } as const;
    const s = (v: number) => 1 / (1 + Math.exp(-v));
    // group 0: s(2) + s(-2) = 1; group 1: 2 * (0.5 + 0.3) = 1.6
    const r = routeToken64(p, 1, logits, corr);
    expect(r.idx).toEqual([2]);
    expect(r.w[0]).toBeCloseTo(s(0) * 2.5, 14);
    expect(r.margin).toBe(0); // experts 2 and 3 tie
  });
  it('softmax grouped (DeepSeek-V2): groups by their best probability, softmax weights over all experts, scaling', () => {
    // 6 experts in 3 groups; group maxima 2, 1.5, 1.9: groups 0 and 2 kept, so expert 5 (1.9) beats expert 2 (1.5)
    const logits = [2, -1, 1.5, 1.5, 0, 1.9];
    const z = logits.reduce((a, v) => a + Math.exp(v), 0);
    const p = { kind: 'softmax_grouped', numExperts: 6, topK: 2, normTopkProb: false, nGroup: 3, topkGroup: 2, routedScalingFactor: 16 } as const;
    const r = routeToken64(p, 2, logits);
    expect(r.idx).toEqual([0, 5]);
    expect(r.w[0]).toBeCloseTo((16 * Math.exp(2)) / z, 12);
    expect(r.w[1]).toBeCloseTo((16 * Math.exp(1.9)) / z, 12);
    // the group cut's margin: group 2's best (1.9) over group 1's (1.5), in probabilities
    expect(r.margin).toBeCloseTo((Math.exp(1.9) - Math.exp(1.5)) / z, 12);
    // one group (greedy), top-3: experts 0, 5, then the tie between 2 and 3 goes to the lower index
    expect(routeToken64({ ...p, topK: 3, nGroup: 1, topkGroup: 1 }, 3, logits).idx).toEqual([0, 5, 2]);
  });
  it('softmax biased (ERNIE 4.5): selection on probability + correction bias, probability weights, renormalised', () => {
    const logits = [2, 1, 0, 1];
    const z = logits.reduce((a, v) => a + Math.exp(v), 0);
    const r = routeToken64({ kind: 'softmax_biased', numExperts: 4, topK: 2, normTopkProb: false }, 2, logits, [0, 0, 0.5, 0]);
    expect(r.idx).toEqual([2, 0]);
    expect(r.w[0]).toBeCloseTo(1 / z, 12);
    expect(r.w[1]).toBeCloseTo(Math.exp(2) / z, 12);
    const n = routeToken64({ kind: 'softmax_biased', numExperts: 4, topK: 2, normTopkProb: true }, 2, logits, [0, 0, 0.5, 0]);
    expect(n.w[0] + n.w[1]).toBeCloseTo(1, 12);
  });
  it('a tie takes the other implementation\'s choice; a real difference does not', () => {
    const p = { kind: 'raw_topk', numExperts: 3, topK: 1, normTopkProb: false } as const;
    expect(routeToken64(p, 1, [1, 1 + 1e-7, 0], undefined, [0], 1e-6)).toMatchObject({ idx: [0], tookPreferred: true });
    expect(routeToken64(p, 1, [1, 1.1, 0], undefined, [0], 1e-6)).toMatchObject({ idx: [1], tookPreferred: false });
  });
});

describe('reference layer', () => {
  it('one token through routed and shared experts (hand computed)', async () => {
    // H = 2, I = 1, E = 2, k = 1, raw top-1 router; expert 1 chosen with weight = its logit
    const f32 = (v: number[]) => bytesOf(Float32Array.from(v));
    const layer: StoredLayer = {
      router: stored('float32', [2, 2], f32([0, 0, 1, 1])), // logits 0 and x0 + x1
      gateUp: { kind: 'dense', w: stored('float32', [2, 2, 2], f32([0, 0, 0, 0, /* e1 gate */ 1, 0, /* e1 up */ 0, 1])) },
      down: { kind: 'dense', w: stored('float32', [2, 2, 1], f32([0, 0, 2, -1])) },
      shared: { gateUp: { kind: 'dense', w: stored('float32', [1, 2, 2], f32([1, 1, 1, 0])) }, down: { kind: 'dense', w: stored('float32', [1, 2, 1], f32([1, 1])) } },
    };
    const x = Float32Array.from([0.5, 0.25]);
    const spec = { H: 2, I: 1, E: 2, k: 1, router: { kind: 'raw_topk', numExperts: 2, topK: 1, normTopkProb: false } as const, act: { kind: 'silu', layout: 'concat' } as const };
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const h = silu(0.5) * 0.25; // expert 1: gate x0, up x1
    const w = 0.75;
    const hs = silu(0.75) * 0.5; // shared: gate x0 + x1, up x0
    const r = await referenceForward(spec, layer, x, [0]);
    expect(r.experts).toEqual(new Set([1]));
    expect(r.out[0]).toBeCloseTo(w * 2 * h + hs, 14);
    expect(r.out[1]).toBeCloseTo(w * -1 * h + hs, 14);
  });
  it('the sample covers every routed expert and stays small', () => {
    const T = 200, k = 2;
    const idx = new Uint32Array(T * k);
    for (let t = 0; t < T; t++) {
      idx[t * k] = t % 3;
      idx[t * k + 1] = t === 150 ? 9 : 3 + (t % 5); // expert 9 only at token 150
    }
    const s = sampleTokens(idx, T, k);
    expect(s).toContain(150);
    expect(s).toContain(T - 1);
    const covered = new Set(s.flatMap((t) => [idx[t * k], idx[t * k + 1]]));
    expect(covered).toEqual(new Set(idx));
    expect(s.length).toBeLessThan(20);
    expect(sampleTokens(idx, 16, k)).toEqual([...Array(16).keys()]);
  });
  it('relErr64', () => {
    expect(relErr64([1, 2], [1, 2])).toBe(0);
    expect(relErr64([0, 2], [0, 1])).toBe(1);
  });
});
