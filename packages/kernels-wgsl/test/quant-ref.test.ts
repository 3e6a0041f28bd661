import { describe, it, expect } from 'vitest';
import { HostTensor, ShapeError, DTypeError, ValueError, e4m3ToF32, f32ToE4m3 } from '@webmoe/tensor';
import { decodeExpertRow, expertDims, quantizeExperts, type ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import { fakeQuantFp8Ref, fp4ToF32 } from '../src/kernels/quant-ref.js';
import { rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { randInt } from './grouped-helpers.js';
import { elementOf } from './quant-helpers.js';

function allRows(w: ExpertWeightsHost): Float32Array {
  const { E, rows, cols } = expertDims(w);
  const out = new Float32Array(E * rows * cols);
  const row = new Float32Array(cols);
  for (let e = 0; e < E; e++) for (let r = 0; r < rows; r++) out.set(decodeExpertRow(w, e, r, row), (e * rows + r) * cols);
  return out;
}

function allElements(w: ExpertWeightsHost): Float32Array {
  const { E, rows, cols } = expertDims(w);
  const out = new Float32Array(E * rows * cols);
  for (let e = 0; e < E; e++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[(e * rows + r) * cols + c] = elementOf(w, e, r, c);
  return out;
}

describe('fp4 decode', () => {
  it('maps the 16 codes to the e2m1 values (low 3 bits magnitude, bit 3 sign)', () => {
    const want = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
    for (let c = 0; c < 16; c++) expect(fp4ToF32(c)).toBe(want[c]);
  });
});

describe('decodeExpertRow vs independent element decoders', () => {
  it('random codes of every format (partial blocks, odd sizes)', () => {
    const r = rng(99);
    for (let n = 0; n < 8; n++) {
      const E = randInt(r, 1, 3);
      const rows = randInt(r, 1, 150);
      const colsOdd = randInt(r, 1, 140);
      const u8 = (len: number, f: () => number) => Uint8Array.from({ length: len }, f);
      // fp8 (finite codes only), block [br, bc] with partial edge blocks.
      const br = [128, 16, 7][n % 3];
      const bc = [128, 32, 5][n % 3];
      for (const dt of ['float8_e4m3fn', 'float8_e5m2'] as const) {
        const q = u8(E * rows * colsOdd, () => (dt === 'float8_e4m3fn' ? randInt(r, 0, 0x7e) | (r() < 0.5 ? 0x80 : 0) : randInt(r, 0, 0x7b) | (r() < 0.5 ? 0x80 : 0)));
        const s = randomArray(r, E * Math.ceil(rows / br) * Math.ceil(colsOdd / bc), 0.001, 0.01);
        const w: ExpertWeightsHost = { kind: 'fp8_block', q: new HostTensor(dt, [E, rows, colsOdd], q), scaleInv: new HostTensor('float32', [E, Math.ceil(rows / br), Math.ceil(colsOdd / bc)], s), block: [br, bc] };
        expect(allRows(w)).toEqual(allElements(w));
      }
      // mxfp4
      const nb = randInt(r, 1, 3);
      const mx: ExpertWeightsHost = {
        kind: 'mxfp4',
        blocks: new HostTensor('uint8', [E, rows, nb, 16], u8(E * rows * nb * 16, () => randInt(r, 0, 255))),
        scales: new HostTensor('uint8', [E, rows, nb], u8(E * rows * nb, () => randInt(r, 110, 135))),
      };
      expect(allRows(mx)).toEqual(allElements(mx));
      // int8 (odd cols) and int4 (even cols), f32 and f16 scales, blockSize not dividing cols.
      for (const bits of [4, 8] as const) {
        const cols = bits === 4 ? colsOdd + (colsOdd % 2) : colsOdd;
        const bs = randInt(r, 1, 40);
        const nbk = Math.ceil(cols / bs);
        const sdt = n % 2 ? 'float16' : 'float32';
        const sv = randomArray(r, E * rows * nbk, 0.01, 0.1);
        const w: ExpertWeightsHost = {
          kind: 'int_block',
          bits,
          blockSize: bs,
          q: new HostTensor('uint8', [E, rows, (cols * bits) / 8], u8((E * rows * cols * bits) / 8, () => randInt(r, 0, 255))),
          scales: HostTensor.fromFloat32([E, rows, nbk], sv, sdt),
        };
        expect(allRows(w)).toEqual(allElements(w));
        // the same codes with a zero point per block (asymmetric)
        const wz: ExpertWeightsHost = { ...w, zeros: new HostTensor('uint8', [E, rows, nbk], u8(E * rows * nbk, () => randInt(r, 0, 2 ** bits - 1))) };
        expect(allRows(wz)).toEqual(allElements(wz));
        expect(allRows(wz)).not.toEqual(allRows(w));
      }
    }
  });
});

describe('quantizeExperts', () => {
  const r = rng(7);
  const E = 2, rows = 131, cols = 160;
  const w = randomArray(r, E * rows * cols, -0.5, 0.5);
  const maxRel = (got: Float32Array) => {
    let m = 0;
    for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(got[i] - w[i]));
    return m / 0.5;
  };
  it('fp8_block e4m3 / e5m2: error within the format step, scales per block, block amax maps to fmax', () => {
    const q = quantizeExperts(w, E, rows, cols, { kind: 'fp8_block' });
    expect(q.kind).toBe('fp8_block');
    if (q.kind !== 'fp8_block') return;
    expect(q.scaleInv.shape).toEqual([E, 2, 2]);
    expect(maxRel(allElements(q))).toBeLessThan(1 / 16 + 1e-6);
    const q5 = quantizeExperts(w, E, rows, cols, { kind: 'fp8_block', dtype: 'float8_e5m2', block: [64, 48] });
    if (q5.kind !== 'fp8_block') throw new Error('kind');
    expect(q5.scaleInv.shape).toEqual([E, 3, 4]);
    expect(maxRel(allElements(q5))).toBeLessThan(1 / 8 + 1e-6);
    // The largest |w| of the first block quantises to 448 (code 0x7e).
    let best = 0;
    for (let rr = 0; rr < 128; rr++) for (let c = 0; c < 128; c++) if (Math.abs(w[rr * cols + c]) > Math.abs(w[best])) best = rr * cols + c;
    expect((q.q.data as Uint8Array)[best] & 0x7f).toBe(0x7e);
  });
  it('mxfp4: scale exponent per 32 inputs, error within half an fp4 step', () => {
    const q = quantizeExperts(w, E, rows, cols, { kind: 'mxfp4' });
    if (q.kind !== 'mxfp4') throw new Error('kind');
    expect(q.blocks.shape).toEqual([E, rows, 5, 16]);
    const d = allElements(q);
    // error <= 1 (largest gap 4..6 halves to 1) x 2^s with amax/2^s in (3, 6].
    for (let i = 0; i < w.length; i += 32) {
      let amax = 0;
      for (let c = 0; c < 32; c++) amax = Math.max(amax, Math.abs(w[i + c]));
      for (let c = 0; c < 32; c++) expect(Math.abs(d[i + c] - w[i + c])).toBeLessThanOrEqual(amax / 3 + 1e-7);
    }
    expect(() => quantizeExperts(new Float32Array(2 * 33), 1, 2, 33, { kind: 'mxfp4' })).toThrow(/multiple of 32.*got 33/);
  });
  it('int_block int4 / int8: symmetric scales, error <= scale / 2', () => {
    for (const [bits, bs, sd] of [[4, 32, 'float32'], [8, 50, 'float16'], [4, 7, 'float16']] as const) {
      const q = quantizeExperts(w, E, rows, cols, { kind: 'int_block', bits, blockSize: bs, scaleDtype: sd });
      if (q.kind !== 'int_block') throw new Error('kind');
      expect(q.q.shape).toEqual([E, rows, (cols * bits) / 8]);
      expect(q.scales.shape).toEqual([E, rows, Math.ceil(cols / bs)]);
      const d = allElements(q);
      const sc = q.scales.toFloat32();
      for (let i = 0; i < w.length; i++) {
        const row = Math.floor(i / cols);
        const s = sc[row * Math.ceil(cols / bs) + Math.floor((i % cols) / bs)];
        expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(s / 2 + s * 1e-3 + 1e-7);
      }
    }
    expect(() => quantizeExperts(new Float32Array(3), 1, 1, 3, { kind: 'int_block', bits: 4, blockSize: 2 })).toThrow(ValueError);
    expect(() => quantizeExperts(new Float32Array(3), 1, 1, 3, { kind: 'int_block', bits: 4, blockSize: 2 })).toThrow(/even number.*got 3/);
    expect(() => quantizeExperts(new Float32Array(4), 1, 1, 3, { kind: 'dense', dtype: 'float32' })).toThrow(/length: expected E\*rows\*cols = 3, got 4/);
  });
  it('int_block with zeroPoint: asymmetric min/max scales and per-block zero points, error <= scale (the rounded zero point can clip the ends by half a step)', () => {
    // Shifted weights (mostly positive): a symmetric scale would waste half the codes; the zero points move off 8 / 128.
    const ws = w.map((v) => v + 0.3);
    for (const [bits, bs, sd] of [[4, 32, 'float32'], [8, 50, 'float16'], [4, 7, 'float16']] as const) {
      const q = quantizeExperts(ws, E, rows, cols, { kind: 'int_block', bits, blockSize: bs, scaleDtype: sd, zeroPoint: true });
      if (q.kind !== 'int_block' || !q.zeros) throw new Error('kind / zeros');
      const nb = Math.ceil(cols / bs);
      expect(q.zeros.shape).toEqual([E, rows, nb]);
      const z = q.zeros.data as Uint8Array;
      expect(Math.max(...z)).toBeLessThan(2 ** bits);
      expect(z.some((v) => v !== 2 ** (bits - 1)), 'zero points differ from the symmetric one').toBe(true);
      const d = allElements(q);
      const sc = q.scales.toFloat32();
      for (let i = 0; i < ws.length; i++) {
        const s = sc[Math.floor(i / cols) * nb + Math.floor((i % cols) / bs)];
        expect(Math.abs(d[i] - ws[i])).toBeLessThanOrEqual(s + s * 1e-3 + 1e-7);
      }
    }
  });
});

describe('fakeQuantFp8Ref', () => {
  it('per 128 channels: outputs are e4m3 values times amax/448, the amax element is kept, error within the e4m3 step', () => {
    const r = rng(3);
    const rows = 5, cols = 300;
    const x = randomArray(r, rows * cols, -3, 3);
    x.fill(0, 2 * cols, 2 * cols + 128); // an all-zero group
    const y = fakeQuantFp8Ref(x, rows, cols);
    for (let rr = 0; rr < rows; rr++)
      for (let c0 = 0; c0 < cols; c0 += 128) {
        let amax = 0;
        for (let c = c0; c < Math.min(cols, c0 + 128); c++) amax = Math.max(amax, Math.abs(x[rr * cols + c]));
        const s = Math.fround(amax / 448);
        for (let c = c0; c < Math.min(cols, c0 + 128); c++) {
          const i = rr * cols + c;
          if (amax === 0) {
            expect(y[i]).toBe(0);
            continue;
          }
          expect(e4m3ToF32(f32ToE4m3(y[i] / s))).toBeCloseTo(y[i] / s, 4);
          expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(Math.max(Math.abs(x[i]) / 16, s / 512) * 1.0001);
          if (Math.abs(x[i]) === amax) expect(Math.abs(y[i])).toBeCloseTo(amax, 5);
        }
      }
    // The amax clamp: with clamp 1, values beyond 1 saturate to 448 * (1/448).
    const yc = fakeQuantFp8Ref(Float32Array.from([10, 0.5, -4]), 1, 3, 1);
    expect(yc[0]).toBeCloseTo(1, 6);
    expect(yc[1]).toBeCloseTo(0.5, 6);
    expect(yc[2]).toBeCloseTo(-1, 6);
  });
});

describe('expertDims validation', () => {
  it('gives typed errors saying what was expected', () => {
    const q = new HostTensor('float8_e4m3fn', [2, 130, 129]);
    expect(() => expertDims({ kind: 'fp8_block', q, scaleInv: new HostTensor('float32', [2, 1, 2]), block: [128, 128] })).toThrow(/scaleInv: expected shape \[2, 2, 2\], got \[2, 1, 2\]/);
    expect(() => expertDims({ kind: 'fp8_block', q, scaleInv: new HostTensor('float16', [2, 2, 2]), block: [128, 128] })).toThrow(DTypeError);
    expect(() => expertDims({ kind: 'mxfp4', blocks: new HostTensor('uint8', [1, 2, 3, 8]), scales: new HostTensor('uint8', [1, 2, 3]) })).toThrow(ShapeError);
    expect(() => expertDims({ kind: 'int_block', bits: 3 as 4, blockSize: 32, q: new HostTensor('uint8', [1, 2, 4]), scales: new HostTensor('float32', [1, 2, 1]) })).toThrow(/bits: expected 4 or 8, got 3/);
    expect(expertDims({ kind: 'int_block', bits: 4, blockSize: 3, q: new HostTensor('uint8', [1, 2, 4]), scales: new HostTensor('float32', [1, 2, 3]) })).toEqual({ E: 1, rows: 2, cols: 8 });
    expect(() => expertDims({ kind: 'dense', w: new HostTensor('int8', [1, 2, 3]) })).toThrow(DTypeError);
    const i4 = { kind: 'int_block' as const, bits: 4 as const, blockSize: 3, q: new HostTensor('uint8', [1, 2, 4]), scales: new HostTensor('float32', [1, 2, 3]) };
    expect(() => expertDims({ ...i4, zeros: new HostTensor('uint8', [1, 2, 2]) })).toThrow(/zeros: expected shape \[1, 2, 3\], got \[1, 2, 2\]/);
    expect(() => expertDims({ ...i4, zeros: new HostTensor('int32', [1, 2, 3]) })).toThrow(DTypeError);
  });
});
