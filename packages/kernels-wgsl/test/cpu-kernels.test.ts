// The CPU path's kernels (cpu-kernels.ts) against the references: the row decoders bit for bit, the grouped GEMMs and
// the linear within f64 rounding of their sums, on random codes of every weight format, odd sizes, chunked stacks,
// every activation and layout, biases, row scales and fp8 activations; the same typed errors.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { HostTensor, ShapeError, ValueError, toFloat32 } from '@webmoe/tensor';
import {
  chunkExpertWeightsHost,
  decodeExpertRow,
  groupedDownCpu,
  groupedDownRef,
  groupedGateUpCpu,
  groupedGateUpRef,
  linearCpu,
  linearRef,
  planExpertChunks,
  type ExpertActivation,
  type ExpertRowLayout,
  type ExpertStackHost,
  type ExpertWeightsHost,
} from '@webmoe/kernels-wgsl';
import { rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { expertRowDecoder, simdRowsDecoder } from '../src/kernels/cpu-kernels.js';
import { cpuSimd, enableCpuSimd, moduleBytes } from '../src/kernels/cpu-simd.js';
import { hostGrouping, naiveDown, naiveGateUp, randInt, randomIdx } from './grouped-helpers.js';
import { elementOf } from './quant-helpers.js';

type Format = 'f32' | 'bf16' | 'f16' | 'e4m3' | 'e5m2' | 'mxfp4' | 'int4' | 'int8' | 'int4z' | 'int8z';
const FORMATS: readonly Format[] = ['f32', 'bf16', 'f16', 'e4m3', 'e5m2', 'mxfp4', 'int4', 'int8', 'int4z', 'int8z'];

/**
 * Random codes of `f` for [E, rows, cols] (cols a multiple of 32 for mxfp4, even for int4): every fp8 code but NaN
 * (`finite`) or all 256, blocks that do not divide the rows and columns, f16 or f32 int scales.
 */
function randomStack(r: () => number, f: Format, E: number, rows: number, cols: number, finite = true): ExpertWeightsHost {
  const u8 = (n: number, lo: number, hi: number) => Uint8Array.from({ length: n }, () => randInt(r, lo, hi));
  const n = E * rows * cols;
  switch (f) {
    case 'f32':
    case 'bf16':
    case 'f16':
      return { kind: 'dense', w: HostTensor.fromFloat32([E, rows, cols], randomArray(r, n, -0.5, 0.5), f === 'f32' ? 'float32' : f === 'bf16' ? 'bfloat16' : 'float16') };
    case 'e4m3':
    case 'e5m2': {
      const [br, bc] = [[128, 128], [16, 32], [7, 5]][randInt(r, 0, 2)];
      const dt = f === 'e4m3' ? 'float8_e4m3fn' : 'float8_e5m2';
      const max = finite ? (f === 'e4m3' ? 0x7e : 0x7b) : 0x7f;
      const q = Uint8Array.from({ length: n }, () => randInt(r, 0, max) | (r() < 0.5 ? 0x80 : 0));
      const sc = [E, Math.ceil(rows / br), Math.ceil(cols / bc)];
      return { kind: 'fp8_block', q: new HostTensor(dt, [E, rows, cols], q), scaleInv: new HostTensor('float32', sc, randomArray(r, sc[0] * sc[1] * sc[2], 0.001, 0.01)), block: [br, bc] };
    }
    case 'mxfp4': {
      const nb = cols / 32;
      return { kind: 'mxfp4', blocks: new HostTensor('uint8', [E, rows, nb, 16], u8(E * rows * nb * 16, 0, 255)), scales: new HostTensor('uint8', [E, rows, nb], u8(E * rows * nb, 118, 126)) };
    }
    default: {
      const bits = f.startsWith('int4') ? 4 : 8;
      const bs = r() < 0.5 ? 16 * randInt(r, 1, 3) : randInt(r, 1, 40); // multiples of 16: the SIMD decoders
      const nbk = Math.ceil(cols / bs);
      const w: ExpertWeightsHost = {
        kind: 'int_block',
        bits,
        blockSize: bs,
        q: new HostTensor('uint8', [E, rows, (cols * bits) / 8], u8((E * rows * cols * bits) / 8, 0, 255)),
        scales: HostTensor.fromFloat32([E, rows, nbk], randomArray(r, E * rows * nbk, 0.001, 0.01), r() < 0.5 ? 'float16' : 'float32'),
      };
      return f.endsWith('z') ? { ...w, zeros: new HostTensor('uint8', [E, rows, nbk], u8(E * rows * nbk, 0, 2 ** bits - 1)) } : w;
    }
  }
}

/** Columns valid for every format: a multiple of 32 (mxfp4) when `f` is mxfp4, else odd where the format allows. */
function colsFor(r: () => number, f: Format): number {
  if (f === 'mxfp4') return 32 * randInt(r, 1, 4);
  const c = randInt(r, 1, 97);
  return f.startsWith('int4') ? c + (c % 2) : c;
}

/**
 * `w` (and its bias) split into chunks of at most a fifth, a third or half of its bytes (an expert cut inside where it
 * alone is larger), the first of those the chunk planner takes (it refuses cuts through a scale block); undefined
 * where none.
 */
function chunked(w: ExpertWeightsHost, layout: ExpertRowLayout, bias?: HostTensor): ExpertStackHost | undefined {
  for (const part of [5, 3, 2]) {
    try {
      return chunkExpertWeightsHost(w, layout, planExpertChunks(w, layout, Math.max(4, Math.floor(bytesOf(w) / part)), bias), bias);
    } catch {
      // a cut through a scale block: the next, larger, budget
    }
  }
  return undefined;
}

function bytesOf(w: ExpertWeightsHost): number {
  const ts = w.kind === 'dense' ? [w.w] : w.kind === 'fp8_block' ? [w.q, w.scaleInv] : w.kind === 'mxfp4' ? [w.blocks, w.scales] : [w.q, w.scales, ...(w.zeros ? [w.zeros] : [])];
  return ts.reduce((s, t) => s + t.data.byteLength, 0);
}

/** Runs the enclosing describe's tests with the SIMD dot products on (`simd`) or off (the JavaScript ones). */
function withSimd(simd: boolean): void {
  let was = true;
  beforeAll(() => {
    was = enableCpuSimd(simd);
  });
  afterAll(() => {
    enableCpuSimd(was);
  });
}

const ACTS: readonly ExpertActivation[] = [
  { kind: 'silu', layout: 'concat' },
  { kind: 'silu', layout: 'interleaved' },
  { kind: 'swiglu_limit', layout: 'concat', limit: 0.5 },
  { kind: 'swigluoai', layout: 'interleaved', limit: 0.4, alpha: 1.702 },
];

describe('CPU row decoders', () => {
  it('equal decodeExpertRow bit for bit: every format (all 256 fp8 codes, NaN and inf included), odd sizes, partial blocks, chunked stacks', () => {
    const r = rng(4242);
    let chunkedStacks = 0;
    for (let n = 0; n < 6; n++) {
      for (const f of FORMATS) {
        const E = randInt(r, 1, 3);
        const rows = 2 * randInt(r, 1, 40);
        const cols = colsFor(r, f);
        const w = randomStack(r, f, E, rows, cols, false);
        const c = chunked(w, 'concat');
        if (c) chunkedStacks++;
        for (const s of c ? [w, c] : [w]) {
          const dec = expertRowDecoder(s, rows, cols);
          const got = new Float32Array(cols);
          const want = new Float32Array(cols);
          for (let e = 0; e < E; e++)
            for (let row = 0; row < rows; row++) {
              dec(e, row, got);
              decodeExpertRow(s, e, row, want);
              expect(got, `${f} ${s.kind} e ${e} row ${row}`).toEqual(want);
            }
        }
      }
    }
    expect(chunkedStacks).toBeGreaterThan(FORMATS.length * 3);
  });
  it('the SIMD decoders (int4 / int8 blocks of 16k values, MXFP4, e4m3 fp8) equal decodeExpertRow bit for bit, -0 and NaN included, whole and chunked', () => {
    const r = rng(31);
    let checked = 0;
    for (let n = 0; n < 4; n++) {
      for (const f of ['int4', 'int8', 'int4z', 'int8z', 'mxfp4', 'e4m3'] as const) {
        const E = randInt(r, 1, 3);
        const rows = 2 * randInt(r, 1, 20);
        const cols = 32 * randInt(r, 1, 5);
        // fp8: all 256 codes (NaN, subnormals, -0), blocks of 16k columns
        let w = randomStack(r, f, E, rows, cols, false);
        if (w.kind === 'fp8_block' && w.block[1] % 16 !== 0) {
          const block: [number, number] = [[128, 128], [16, 32], [7, 16]][randInt(r, 0, 2)] as [number, number];
          const sc = [E, Math.ceil(rows / block[0]), Math.ceil(cols / block[1])];
          w = { ...w, block, scaleInv: new HostTensor('float32', sc, randomArray(r, sc[0] * sc[1] * sc[2], 0.001, 0.01)) };
        }
        if (w.kind === 'int_block' && w.blockSize % 16 !== 0) {
          // blocks of 16 values: new scales (and zero points) of that block count
          const nb = E * rows * (cols / 16);
          const scales = HostTensor.fromFloat32([E, rows, cols / 16], randomArray(r, nb, 0.001, 0.01), w.scales.dtype as 'float32');
          const zeros = w.zeros && new HostTensor('uint8', [E, rows, cols / 16], Uint8Array.from({ length: nb }, () => randInt(r, 0, 2 ** w.bits - 1)));
          w = { ...w, blockSize: 16, scales, zeros };
        }
        const c = chunked(w, 'concat');
        for (const s of c ? [w, c] : [w]) {
          const dec = simdRowsDecoder(s, rows, cols);
          expect(dec, `${f} ${s.kind}: a SIMD decoder`).toBeDefined();
          const want = new Float32Array(cols);
          for (let e = 0; e < E; e++) {
            // the expert's rows in runs of random length (one row up to all), each run staged and decoded together
            for (let row0 = 0; row0 < rows; ) {
              const count = randInt(r, 1, rows - row0);
              const got = new Float32Array(count * cols);
              dec!(e, row0, count, got);
              for (let q = 0; q < count; q++) {
                decodeExpertRow(s, e, row0 + q, want);
                expect(got.subarray(q * cols, (q + 1) * cols), `${f} ${s.kind} e ${e} row ${row0 + q} (run of ${count})`).toEqual(want);
                checked++;
              }
              row0 += count;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(200);
    // not taken: blocks that are not a multiple of 16 values, e5m2, dense
    const r2 = rng(2);
    const int4 = randomStack(r2, 'int4', 1, 2, 32) as Extract<ExpertWeightsHost, { kind: 'int_block' }>;
    const odd: ExpertWeightsHost = { ...int4, zeros: undefined, blockSize: 8, scales: HostTensor.fromFloat32([1, 2, 4], randomArray(r2, 8, 0.01, 0.1)) };
    const others = [odd, randomStack(r2, 'e5m2', 1, 2, 32), randomStack(r2, 'bf16', 1, 2, 32)];
    expect(others.map((w) => simdRowsDecoder(w, 2, 32))).toEqual([undefined, undefined, undefined]);
  });
  it('equal the independent element decoders (test/quant-helpers.ts)', () => {
    const r = rng(17);
    for (const f of FORMATS) {
      const cols = colsFor(r, f);
      const w = randomStack(r, f, 2, 9, cols);
      const got = new Float32Array(cols);
      const dec = expertRowDecoder(w, 9, cols);
      for (let e = 0; e < 2; e++)
        for (let row = 0; row < 9; row++) {
          dec(e, row, got);
          expect(Array.from(got), `${f} e ${e} row ${row}`).toEqual(Array.from({ length: cols }, (_, c) => elementOf(w, e, row, c)));
        }
    }
  });
});

describe('the WebAssembly SIMD dot product', () => {
  it('is there in Node (so the SIMD path is the one the tests below check first); f32 products in f32 sums of 16, then f64; f32 and bf16 weights', () => {
    const simd = cpuSimd();
    expect(simd).toBeDefined();
    const r = rng(8);
    const bf16 = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];
    // an f32 sum of 16 products is off by at most 16 roundings of 2^-24 of its terms' magnitude; the f64 sums add ~0
    const bound = (p: number[]) => 16 * 2 ** -24 * p.reduce((a, v) => a + Math.abs(v), 0) + 1e-300;
    for (const n of [0, 1, 7, 8, 9, 31, 127, 128, 129, 1001, 4099]) {
      const f = new Float32Array(simd!.memory.buffer, 0, 2 * n);
      f.set(randomArray(r, 2 * n));
      const p = Array.from({ length: n }, (_, i) => Math.fround(f[i] * f[n + i]));
      const want = p.reduce((a, v) => a + v, 0);
      const got = simd!.dot(0, 4 * n, n);
      expect(Math.abs(got - want), `n ${n}`).toBeLessThanOrEqual(bound(p));
      // dot_bf16: the weights as bf16 bit patterns (the high halves of f32 values) after the inputs
      const bits = Uint16Array.from({ length: n }, () => randInt(r, 0, 0xffff) & 0xbfff); // finite (exponent < 255)
      new Uint16Array(simd!.memory.buffer, 8 * n, n).set(bits);
      const pb = Array.from({ length: n }, (_, i) => Math.fround(f[i] * bf16(bits[i])));
      const wantBf16 = pb.reduce((a, v) => a + v, 0);
      expect(Math.abs(simd!.dotBf16(0, 8 * n, n) - wantBf16), `bf16 n ${n}`).toBeLessThanOrEqual(bound(pb));
    }
    // dot_f16 converts every f16 pattern exactly (inf and NaN included), in each lane: one-hot inputs
    const want = toFloat32('float16', Uint16Array.from({ length: 65536 }, (_, i) => i));
    const xs = new Float32Array(simd!.memory.buffer, 0, 8);
    const ws = new Uint16Array(simd!.memory.buffer, 32, 8);
    let bad = 0;
    for (let lane = 0; lane < 8; lane++) {
      xs.fill(0);
      xs[lane] = 1;
      for (let h = 0; h < 65536; h++) {
        ws.fill(0);
        ws[lane] = h;
        const got = simd!.dotF16(0, 32, 8);
        if (!(Number.isNaN(want[h]) ? Number.isNaN(got) : got === want[h])) bad++;
      }
    }
    expect(bad, 'f16 patterns dot_f16 converted wrongly').toBe(0);
    // small enough for a synchronous compile on a browser's main thread (Chromium's limit: 4 KiB)
    expect(moduleBytes().length).toBeLessThan(4096);
    // every value counted once across the 128-value chunks and the tail: n ones sum to n
    const n = 3 * 1024 + 13;
    new Float32Array(simd!.memory.buffer, 0, 2 * n).fill(1);
    expect(simd!.dot(0, 4 * n, n)).toBe(n);
  });
});

for (const simd of [true, false])
describe(`CPU grouped GEMMs vs the references (${simd ? 'SIMD' : 'JavaScript'} dot products)`, () => {
  withSimd(simd);
  it('gate_up then down: every format, activation and layout, odd sizes, T = 0..17, biases, row scales, fp8 activations, chunked stacks', () => {
    const r = rng(2026);
    let cases = 0;
    let chunkedCases = 0;
    for (let n = 0; n < 3; n++) {
      for (const f of FORMATS) {
        const act = ACTS[(n + cases) % ACTS.length];
        const E = randInt(r, 1, 6);
        const k = randInt(r, 1, Math.min(E, 3));
        const T = [0, 1, 3, 17][(n + cases) % 4];
        const H = colsFor(r, f);
        const I = f === 'mxfp4' ? 32 * randInt(r, 1, 2) : f.startsWith('int4') ? 2 * randInt(r, 1, 24) : randInt(r, 1, 45);
        const gu = randomStack(r, f, E, 2 * I, H);
        const dn = randomStack(r, f, E, H, I);
        const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
        const x = randomArray(r, T * H);
        const bias = n % 2 === 0 ? { gu: HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.1, 0.1), 'bfloat16'), dn: HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.1, 0.1)) } : undefined;
        const rowScale = n === 1 ? randomArray(r, T * k, 0.1, 1) : undefined;
        const aq = n === 2 ? { actQuant: 'fp8_dynamic' as const, actAmaxClamp: 1200 } : {};
        const what = `${f} ${act.kind}/${act.layout} E ${E} k ${k} T ${T} H ${H} I ${I}`;
        const hRef = groupedGateUpRef(x, g, gu, bias?.gu, act, rowScale, aq);
        const h = groupedGateUpCpu(x, g, gu, bias?.gu, act, rowScale, aq);
        expect(h.length, what).toBe(T * k * I);
        expect(relErr(h, hRef), what).toBeLessThan(1e-6);
        const yRef = groupedDownRef(hRef, g, dn, bias?.dn, aq);
        const y = groupedDownCpu(hRef, g, dn, bias?.dn, aq);
        expect(relErr(y, yRef), what).toBeLessThan(1e-6);
        // chunked stacks (biases travel in the chunks) give the same results as the whole ones
        const guC = chunked(gu, act.layout, bias?.gu);
        const dnC = chunked(dn, 'rows', bias?.dn);
        if (guC) expect(groupedGateUpCpu(x, g, guC, undefined, act, rowScale, aq), `${what} chunked`).toEqual(h);
        if (dnC) expect(groupedDownCpu(hRef, g, dnC, undefined, aq), `${what} chunked`).toEqual(y);
        chunkedCases += Number(!!guC) + Number(!!dnC);
        cases++;
      }
    }
    expect(cases).toBe(3 * FORMATS.length);
    expect(chunkedCases).toBeGreaterThan(FORMATS.length * 3);
  });
  it('packed experts with one input row per expert block: every SIMD format, both layouts, per-16 and per-block scales, with and without chunks', () => {
    const r = rng(606);
    let cases = 0;
    for (const f of ['int4', 'int8z', 'mxfp4', 'e4m3'] as const)
      for (const act of ACTS)
        for (const T of [1, 2]) {
          // E 4, k 1 or 2: experts with one row, with two and with none; H a multiple of 16 (the SIMD decoders)
          const [E, k] = [4, T];
          const H = f === 'mxfp4' ? 32 * randInt(r, 1, 6) : 16 * randInt(r, 1, 12);
          const I = f === 'mxfp4' ? 32 * randInt(r, 1, 2) : 16 * randInt(r, 1, 3);
          const gu = randomStack(r, f, E, 2 * I, H);
          const dn = randomStack(r, f, E, H, I);
          const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
          const x = randomArray(r, T * H);
          const what = `${f} ${act.kind}/${act.layout} T ${T} H ${H} I ${I}`;
          const h = groupedGateUpCpu(x, g, gu, undefined, act);
          expect(relErr(h, groupedGateUpRef(x, g, gu, undefined, act)), what).toBeLessThan(1e-6);
          const y = groupedDownCpu(h, g, dn);
          expect(relErr(y, groupedDownRef(h, g, dn)), what).toBeLessThan(1e-6);
          const guC = chunked(gu, act.layout);
          if (guC) expect(groupedGateUpCpu(x, g, guC, undefined, act), `${what} chunked`).toEqual(h);
          cases++;
        }
    expect(cases).toBe(4 * ACTS.length * 2);
  });
  it('equal a naive oracle on dense f32 weights (sums written out per element)', () => {
    const r = rng(5);
    const [T, k, E, H, I] = [7, 2, 5, 33, 19];
    const wgu = randomArray(r, E * 2 * I * H, -0.5, 0.5);
    const wdn = randomArray(r, E * H * I, -0.5, 0.5);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const x = randomArray(r, T * H);
    const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
    const h = groupedGateUpCpu(x, g, { kind: 'dense', w: new HostTensor('float32', [E, 2 * I, H], wgu) }, undefined, act);
    expect(relErr(h, naiveGateUp(x, g, wgu, undefined, act, undefined, H, I))).toBeLessThan(1e-6);
    const y = groupedDownCpu(h, g, { kind: 'dense', w: new HostTensor('float32', [E, H, I], wdn) });
    expect(relErr(y, naiveDown(h, g, wdn, undefined, H, I))).toBeLessThan(1e-6);
  });
  it('inputs over one row block (4 MiB): an expert with 2100 rows of 1024 columns', () => {
    const r = rng(21);
    const [T, k, E, H, I] = [2100, 1, 2, 1024, 3];
    const idx = Uint32Array.from({ length: T }, (_, t) => (t % 10 === 0 ? 1 : 0));
    const g = hostGrouping(idx, T, k, E);
    const x = randomArray(r, T * H);
    const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
    const gu = randomStack(r, 'bf16', E, 2 * I, H);
    const h = groupedGateUpCpu(x, g, gu, undefined, act);
    expect(relErr(h, groupedGateUpRef(x, g, gu, undefined, act))).toBeLessThan(1e-6);
    const dn = randomStack(r, 'bf16', E, 7, I);
    expect(relErr(groupedDownCpu(h, g, dn), groupedDownRef(h, g, dn))).toBeLessThan(1e-6);
    const w = HostTensor.fromFloat32([5, H], randomArray(r, 5 * H), 'bfloat16');
    expect(relErr(linearCpu(x, T, w), linearRef(x, T, w))).toBeLessThan(1e-6);
  });
  it('weight rows over several slot blocks (1024 columns: 16 rows a block): 37 outputs, every kind of row loading, both layouts', () => {
    const r = rng(77);
    const [T, k, E, H, I] = [5, 2, 3, 1024, 37];
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const x = randomArray(r, T * H);
    for (const f of ['bf16', 'f16', 'int4', 'e5m2'] as const) {
      for (const act of [ACTS[0], ACTS[3]]) {
        const gu = randomStack(r, f, E, 2 * I, H);
        const bias = HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.1, 0.1));
        const h = groupedGateUpCpu(x, g, gu, bias, act);
        expect(relErr(h, groupedGateUpRef(x, g, gu, bias, act)), `${f} ${act.layout}`).toBeLessThan(1e-6);
        const c = chunked(gu, act.layout, bias);
        if (c) expect(groupedGateUpCpu(x, g, c, undefined, act), `${f} ${act.layout} chunked`).toEqual(h);
      }
      const h = randomArray(r, T * k * H);
      const dn = randomStack(r, f, E, I, H);
      expect(relErr(groupedDownCpu(h, g, dn), groupedDownRef(h, g, dn)), `${f} down`).toBeLessThan(1e-6);
    }
  });
  it('refuse what the references refuse, with the same typed errors naming the CPU kernel', () => {
    const r = rng(3);
    const g = hostGrouping(randomIdx(r, 2, 1, 3), 2, 1, 3);
    const gu = randomStack(r, 'bf16', 3, 8, 16);
    const act: ExpertActivation = { kind: 'silu', layout: 'concat' };
    expect(() => groupedGateUpCpu(new Float32Array(31), g, gu, undefined, act)).toThrow(ShapeError);
    expect(() => groupedGateUpCpu(new Float32Array(31), g, gu, undefined, act)).toThrow(/groupedGateUpCpu x/);
    expect(() => groupedGateUpCpu(new Float32Array(32), g, randomStack(r, 'bf16', 2, 8, 16), undefined, act)).toThrow(ShapeError);
    expect(() => groupedGateUpCpu(new Float32Array(32), g, gu, undefined, { kind: 'gelu', layout: 'concat' } as never)).toThrow(ValueError);
    expect(() => groupedGateUpCpu(new Float32Array(32), g, gu, undefined, act, undefined, { actQuant: 'int8' as never })).toThrow(ValueError);
    expect(() => groupedDownCpu(new Float32Array(7), g, randomStack(r, 'bf16', 3, 16, 4))).toThrow(/groupedDownCpu h/);
  });
});

for (const simd of [true, false])
describe(`CPU linear vs linearRef (${simd ? 'SIMD' : 'JavaScript'} dot products)`, () => {
  withSimd(simd);
  it('f32, bf16 and f16 weights and biases, odd sizes, T = 0..5', () => {
    const r = rng(11);
    for (const wdt of ['float32', 'bfloat16', 'float16'] as const) {
      for (const bdt of [undefined, 'float32', 'bfloat16', 'float16'] as const) {
        const T = randInt(r, 0, 5);
        const N = randInt(r, 1, 70);
        const K = randInt(r, 1, 90);
        const w = HostTensor.fromFloat32([N, K], randomArray(r, N * K), wdt);
        const b = bdt ? HostTensor.fromFloat32([N], randomArray(r, N), bdt) : undefined;
        const x = randomArray(r, T * K);
        expect(relErr(linearCpu(x, T, w, b), linearRef(x, T, w, b)), `${wdt} bias ${bdt} T ${T} N ${N} K ${K}`).toBeLessThan(1e-6);
      }
    }
  });
  it('refuses a wrong x length or bias size with typed errors', () => {
    const w = HostTensor.fromFloat32([3, 4], new Float32Array(12), 'bfloat16');
    expect(() => linearCpu(new Float32Array(7), 2, w)).toThrow(/linearCpu x/);
    expect(() => linearCpu(new Float32Array(8), 2, w, HostTensor.fromFloat32([2], new Float32Array(2)))).toThrow(ShapeError);
  });
});
