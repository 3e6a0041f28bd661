import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { rng } from '../src/testing.js';
import {
  SafetensorsFile,
  bytesSource,
  HostTensor,
  quantizeFp8Block,
  dequantizeFp8Block,
  quantizeActivationsFp8,
  fakeQuantizeActivationsFp8,
  ShapeError,
  ValueError,
  DTypeError,
} from '@webmoe/tensor';

// Independent fp8 decoders (formula, not the package's tables).
function e4m3(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
function e5m2(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 2) & 31;
  const m = c & 3;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -16 : s * (1 + m / 4) * 2 ** (e - 15);
}
/** Half the spacing of the format at |q| (q in code units, before scaling). */
function halfStep(q: number, mbits: number, minNormExp: number): number {
  const a = Math.abs(q);
  const e = a < 2 ** minNormExp ? minNormExp : Math.floor(Math.log2(a));
  return 2 ** (e - mbits) / 2;
}

function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()) * scale;
  return out;
}

describe('DeepSeek-V3 fp8 fixture', () => {
  const bytes = new Uint8Array(readFileSync((process.env.WEBMOE_FIXTURES ? process.env.WEBMOE_FIXTURES + '/hf-moe' : fileURLToPath(new URL('../../../../shared/fixtures/hf-moe', import.meta.url))) + '/deepseek_v3_fp8/model.safetensors'));
  it('dequantizeFp8Block equals q * scale_inv[i/128, j/128] computed straight from the file bytes', async () => {
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
    const base = 8 + n;
    const dv = new DataView(bytes.buffer);
    const st = await SafetensorsFile.open(bytesSource(bytes));
    const weights = Object.keys(header).filter((k) => header[k].dtype === 'F8_E4M3');
    expect(weights.length).toBeGreaterThanOrEqual(27);
    for (const k of weights) {
      const [rows, cols] = header[k].shape;
      const sh = header[`${k}_scale_inv`];
      expect(sh.shape).toEqual([Math.ceil(rows / 128), Math.ceil(cols / 128)]);
      const got = dequantizeFp8Block(await st.read(k), await st.read(`${k}_scale_inv`), [128, 128]);
      const qb = base + header[k].data_offsets[0];
      const sb = base + sh.data_offsets[0];
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const s = dv.getFloat32(sb + 4 * (Math.floor(i / 128) * sh.shape[1] + Math.floor(j / 128)), true);
          const want = Math.fround(e4m3(bytes[qb + i * cols + j]) * s);
          if (got[i * cols + j] !== want) expect(`${k}[${i},${j}] = ${got[i * cols + j]}`).toBe(`${k}[${i},${j}] = ${want}`);
        }
      }
    }
  });
  it('re-quantising the dequantised fixture weights gives back its codes and scales', async () => {
    const st = await SafetensorsFile.open(bytesSource(bytes));
    const k = 'model.layers.0.mlp.experts.3.down_proj.weight';
    const q = await st.read(k);
    const s = await st.read(`${k}_scale_inv`);
    const w = dequantizeFp8Block(q, s);
    const r = quantizeFp8Block(w, q.shape[0], q.shape[1]);
    expect(Array.from(r.scaleInv.data)).toEqual(Array.from(s.data));
    expect(Buffer.compare(Buffer.from(r.q.bytes()), Buffer.from(q.bytes()))).toBe(0);
  });
});

describe('quantizeFp8Block / dequantizeFp8Block on random matrices', () => {
  const cases: [number, number, [number, number]][] = [
    [130, 259, [128, 128]],
    [1, 1, [128, 128]],
    [37, 53, [16, 8]],
    [255, 129, [128, 128]],
    [9, 300, [4, 128]],
  ];
  for (const [rows, cols, block] of cases) {
    for (const format of ['float8_e4m3fn', 'float8_e5m2'] as const) {
      it(`${format} [${rows}, ${cols}] block [${block}]`, () => {
        const r = rng(rows * 1000 + cols);
        const w = randn(r, rows * cols, 0.02);
        // Varied magnitudes per region so blocks have different scales.
        for (let i = 0; i < w.length; i++) if (i % 7 === 0) w[i] = Math.fround(w[i] * 300);
        const [bh, bw] = block;
        const { q, scaleInv } = quantizeFp8Block(w, rows, cols, { block, format });
        const sr = Math.ceil(rows / bh);
        const sc = Math.ceil(cols / bw);
        expect(q.dtype).toBe(format);
        expect(q.shape).toEqual([rows, cols]);
        expect(scaleInv.dtype).toBe('float32');
        expect(scaleInv.shape).toEqual([sr, sc]);
        const fmax = format === 'float8_e4m3fn' ? 448 : 57344;
        const dec = format === 'float8_e4m3fn' ? e4m3 : e5m2;
        const mbits = format === 'float8_e4m3fn' ? 3 : 2;
        const minNormExp = format === 'float8_e4m3fn' ? -6 : -14;
        // Independent per-block amax -> expected scales.
        for (let bi = 0; bi < sr; bi++) {
          for (let bj = 0; bj < sc; bj++) {
            let amax = 0;
            for (let i = bi * bh; i < Math.min(rows, bi * bh + bh); i++) for (let j = bj * bw; j < Math.min(cols, bj * bw + bw); j++) amax = Math.max(amax, Math.abs(w[i * cols + j]));
            expect(scaleInv.data[bi * sc + bj]).toBe(Math.fround(amax / fmax));
          }
        }
        const back = dequantizeFp8Block(q, scaleInv, block);
        let worst = 0;
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) {
            const s = scaleInv.data[Math.floor(i / bh) * sc + Math.floor(j / bw)];
            const x = w[i * cols + j];
            const code = q.data[i * cols + j];
            expect(back[i * cols + j]).toBe(Math.fround(dec(code) * s));
            const bound = s * halfStep(x / s, mbits, minNormExp) * (1 + 2 ** -20) + Math.abs(x) * 2 ** -23;
            const err = Math.abs(back[i * cols + j] - x);
            worst = Math.max(worst, err / bound);
            if (err > bound) expect(`[${i},${j}] err ${err}`).toBe(`<= ${bound}`);
          }
        }
        expect(worst).toBeLessThanOrEqual(1);
      });
    }
  }
  it('the block amax maps to the top code; an all-zero block gets scale 1 and zero codes', () => {
    const w = new Float32Array(4 * 4);
    w[0] = -3; // block (0,0) of a 2x2 blocking: amax 3
    w[1] = 1.5;
    const { q, scaleInv } = quantizeFp8Block(w, 4, 4, { block: [2, 2] });
    expect(Array.from(scaleInv.data)).toEqual([Math.fround(3 / 448), 1, 1, 1]);
    expect(q.data[0]).toBe(0xfe); // -448
    expect(e4m3(q.data[1])).toBe(224);
    expect(Array.from(q.data).filter((c, i) => i > 1 && c !== 0)).toEqual([]);
  });
  it('rejects bad input with typed errors', () => {
    expect(() => quantizeFp8Block(new Float32Array(5), 2, 3)).toThrow(ShapeError);
    expect(() => quantizeFp8Block(new Float32Array(6), 2, 3, { block: [0, 128] })).toThrow(ValueError);
    expect(() => quantizeFp8Block(new Float32Array([1, NaN]), 1, 2)).toThrow(/finite/);
    const q = new HostTensor('float8_e4m3fn', [4, 4]);
    expect(() => dequantizeFp8Block(q, new HostTensor('float32', [1, 2]), [128, 128])).toThrow(/expected shape \[1, 1\], got \[1, 2\]/);
    expect(() => dequantizeFp8Block(new HostTensor('float32', [4, 4]), new HostTensor('float32', [1, 1]))).toThrow(DTypeError);
  });
});

describe('dynamic activation quantisation (per token, per group)', () => {
  it('scales = amax/448 per token and group (partial last group), codes within half a step, fake-quant = code * scale', () => {
    const T = 5;
    const H = 300;
    const r = rng(42);
    const x = randn(r, T * H, 2);
    for (let c = 0; c < H; c++) x[2 * H + c] = 0; // an all-zero token
    const { q, scales } = quantizeActivationsFp8(x, T, H);
    const G = Math.ceil(H / 128);
    expect(G).toBe(3);
    expect(scales.length).toBe(T * G);
    const fq = fakeQuantizeActivationsFp8(x, T, H);
    for (let t = 0; t < T; t++) {
      for (let g = 0; g < G; g++) {
        let amax = 0;
        for (let c = g * 128; c < Math.min(H, g * 128 + 128); c++) amax = Math.max(amax, Math.abs(x[t * H + c]));
        expect(scales[t * G + g]).toBe(amax === 0 ? 1 : Math.fround(amax / 448));
      }
      for (let c = 0; c < H; c++) {
        const s = scales[t * G + Math.floor(c / 128)];
        const v = e4m3(q[t * H + c]);
        expect(fq[t * H + c]).toBe(Math.fround(v * s));
        const xi = x[t * H + c];
        const bound = s * halfStep(xi / s, 3, -6) * (1 + 2 ** -20) + Math.abs(xi) * 2 ** -23;
        expect(Math.abs(fq[t * H + c] - xi)).toBeLessThanOrEqual(bound);
      }
    }
  });
  it('amaxClamp caps the scale and saturates the spike to 448', () => {
    const x = new Float32Array(8).fill(1);
    x[3] = 5000;
    const { q, scales } = quantizeActivationsFp8(x, 1, 8, { group: 8, amaxClamp: 1200 });
    expect(scales[0]).toBe(Math.fround(1200 / 448));
    expect(e4m3(q[3])).toBe(448);
    const fq = fakeQuantizeActivationsFp8(x, 1, 8, { group: 8, amaxClamp: 1200 });
    expect(fq[3]).toBe(Math.fround(448 * Math.fround(1200 / 448)));
    expect(() => quantizeActivationsFp8(x, 1, 8, { group: 0 })).toThrow(ValueError);
    expect(() => quantizeActivationsFp8(x, 2, 8)).toThrow(ShapeError);
  });
});
