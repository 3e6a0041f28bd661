// Exhaustive checks of src/convert.ts against an independent derivation:
// values come from the sign/exponent/mantissa formula written out here, and
// rounding is checked by brute-force nearest search, never with the code
// under test.
import { describe, it, expect } from 'vitest';
import { bf16ToF32, f32ToBf16, f16ToF32, f32ToF16, e4m3ToF32, f32ToE4m3, e5m2ToF32, f32ToE5m2 } from '@webmoe/tensor';
import { rng } from '../src/testing.js';

interface Fmt {
  name: string;
  bits: number;
  e: number;
  m: number;
  bias: number;
  /** 'ieee': exponent all ones = inf/NaN; 'fn': no inf, only S.1111.111 is NaN. */
  kind: 'ieee' | 'fn';
  decode: (c: number) => number;
  encode: (x: number) => number;
}
const BF16: Fmt = { name: 'bf16', bits: 16, e: 8, m: 7, bias: 127, kind: 'ieee', decode: bf16ToF32, encode: f32ToBf16 };
const F16: Fmt = { name: 'f16', bits: 16, e: 5, m: 10, bias: 15, kind: 'ieee', decode: f16ToF32, encode: f32ToF16 };
const E4M3: Fmt = { name: 'e4m3fn', bits: 8, e: 4, m: 3, bias: 7, kind: 'fn', decode: e4m3ToF32, encode: (x) => f32ToE4m3(x, true) };
const E5M2: Fmt = { name: 'e5m2', bits: 8, e: 5, m: 2, bias: 15, kind: 'ieee', decode: e5m2ToF32, encode: (x) => f32ToE5m2(x, false) };
const FMTS = [BF16, F16, E4M3, E5M2];

/** Independent value of code `c`: (-1)^s * 2^(e-bias) * (1 + m/2^p), subnormals 2^(1-bias) * m/2^p. */
function formula(f: Fmt, c: number): number {
  const s = (c >> (f.bits - 1)) & 1;
  const e = (c >> f.m) & ((1 << f.e) - 1);
  const m = c & ((1 << f.m) - 1);
  const emax = (1 << f.e) - 1;
  const sign = s ? -1 : 1;
  if (f.kind === 'ieee' && e === emax) return m === 0 ? sign * Infinity : NaN;
  if (f.kind === 'fn' && e === emax && m === (1 << f.m) - 1) return NaN;
  if (e === 0) return sign * Math.pow(2, 1 - f.bias) * (m / Math.pow(2, f.m));
  return sign * Math.pow(2, e - f.bias) * (1 + m / Math.pow(2, f.m));
}

// Own f32 bit helpers via DataView (not the package's).
const dv = new DataView(new ArrayBuffer(4));
const toBits = (x: number) => (dv.setFloat32(0, x), dv.getUint32(0));
const fromBits = (b: number) => (dv.setUint32(0, b >>> 0), dv.getFloat32(0));
/** Next f32 above / below a positive finite f32 value. */
const nextUp = (x: number) => fromBits(toBits(x) + 1);
const nextDown = (x: number) => fromBits(toBits(x) - 1);

/** Positive finite codes sorted by value, with values. */
function positives(f: Fmt): { code: number; v: number }[] {
  const out: { code: number; v: number }[] = [];
  for (let c = 0; c < 1 << (f.bits - 1); c++) {
    const v = formula(f, c);
    if (Number.isFinite(v)) out.push({ code: c, v });
  }
  return out.sort((a, b) => a.v - b.v);
}

/** Expected code of positive x by nearest search (ties to the even code), overflow by the format's rule. */
function nearest(f: Fmt, pos: { code: number; v: number }[], x: number, saturate: boolean): number {
  const maxV = pos[pos.length - 1].v;
  // The first value past max, as if the exponent range went on: for ieee
  // 2^(all-ones exponent - bias) (where inf sits); for fn the NaN slot S.1111.111.
  const topExp = (1 << f.e) - 1 - f.bias;
  const beyond = f.kind === 'ieee' ? Math.pow(2, topExp) : Math.pow(2, topExp) * (1 + ((1 << f.m) - 1) / (1 << f.m));
  if (x >= maxV) {
    const mid = (maxV + beyond) / 2;
    const over = x > mid || (x === mid && (pos[pos.length - 1].code & 1) === 1);
    if (!over) return pos[pos.length - 1].code;
    if (saturate) return pos[pos.length - 1].code;
    return f.kind === 'fn' ? (1 << (f.bits - 1)) - 1 : ((1 << f.e) - 1) << f.m;
  }
  let lo = 0;
  let hi = pos.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (pos[mid].v <= x) lo = mid;
    else hi = mid;
  }
  const a = pos[lo];
  const b = pos[hi];
  const da = x - a.v;
  const db = b.v - x;
  if (da < db) return a.code;
  if (db < da) return b.code;
  return (a.code & 1) === 0 ? a.code : b.code;
}

describe('decode: every bit pattern against the formula', () => {
  for (const f of FMTS) {
    it(`${f.name}: all ${1 << f.bits} codes`, () => {
      let bad = 0;
      const firstBad: string[] = [];
      for (let c = 0; c < 1 << f.bits; c++) {
        const want = formula(f, c);
        const got = f.decode(c);
        const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want === 0 && c >> (f.bits - 1) ? -0 : want);
        if (!ok) {
          bad++;
          if (firstBad.length < 5) firstBad.push(`0x${c.toString(16)}: want ${want} got ${got}`);
        }
      }
      expect(firstBad).toEqual([]);
      expect(bad).toBe(0);
    });
  }
  it('spot values from the format definitions', () => {
    expect(e4m3ToF32(0x7e)).toBe(448);
    expect(e4m3ToF32(0x01)).toBe(2 ** -9);
    expect(e4m3ToF32(0x08)).toBe(2 ** -6);
    expect(Number.isNaN(e4m3ToF32(0xff))).toBe(true);
    expect(e4m3ToF32(0x78)).toBe(256); // e=15, m=0: finite in fn
    expect(e5m2ToF32(0x7b)).toBe(57344);
    expect(e5m2ToF32(0x7c)).toBe(Infinity);
    expect(e5m2ToF32(0xfc)).toBe(-Infinity);
    expect(e5m2ToF32(0x01)).toBe(2 ** -16);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(bf16ToF32(0x0001)).toBe(2 ** -133);
    expect(bf16ToF32(0x7f7f)).toBe(3.3895313892515355e38);
  });
});

describe('encode: every finite code round-trips, -0 and NaN', () => {
  for (const f of FMTS) {
    it(`${f.name}: value of each finite code encodes back to the code`, () => {
      const bad: string[] = [];
      for (let c = 0; c < 1 << f.bits; c++) {
        const v = formula(f, c);
        if (!Number.isFinite(v)) continue;
        const got = f.encode(v);
        if (got !== c) bad.push(`0x${c.toString(16)} (${v}) -> 0x${got.toString(16)}`);
        if (bad.length > 5) break;
      }
      expect(bad).toEqual([]);
    });
    it(`${f.name}: -0 keeps its sign, +0 is code 0`, () => {
      expect(f.encode(-0)).toBe(1 << (f.bits - 1));
      expect(f.encode(0)).toBe(0);
    });
    it(`${f.name}: NaN stays NaN (both signs)`, () => {
      for (const x of [NaN, -NaN, fromBits(0x7fc00001), fromBits(0xffc00000), fromBits(0x7f800001)]) {
        expect(Number.isNaN(formula(f, f.encode(x)))).toBe(true);
      }
    });
  }
});

describe('encode: rounding to nearest even at and around every midpoint', () => {
  for (const f of FMTS) {
    it(`${f.name}: midpoints, just above and just below`, () => {
      const pos = positives(f);
      const bad: string[] = [];
      for (let i = 0; i + 1 < pos.length; i++) {
        const a = pos[i];
        const b = pos[i + 1];
        const mid = (a.v + b.v) / 2; // exact in f32 for every format here
        expect(Math.fround(mid)).toBe(mid);
        const even = (a.code & 1) === 0 ? a.code : b.code;
        expect((a.code & 1) !== (b.code & 1)).toBe(true);
        const sgn = 1 << (f.bits - 1);
        const cases: [number, number][] = [
          [mid, even],
          [nextUp(mid), b.code],
          [nextDown(mid), a.code],
          [-mid, even | sgn],
          [-nextUp(mid), b.code | sgn],
        ];
        for (const [x, want] of cases) {
          const got = f.encode(x);
          if (got !== want) bad.push(`${x}: want 0x${want.toString(16)} got 0x${got.toString(16)}`);
        }
        if (bad.length > 5) break;
      }
      expect(bad).toEqual([]);
    });
  }
});

describe('overflow rules', () => {
  it('e4m3fn saturates to +-448 with saturate=true, NaN without', () => {
    for (const x of [449, 464, 465, 480, 1000, 1e30, Infinity]) {
      expect(e4m3ToF32(f32ToE4m3(x, true))).toBe(448);
      expect(e4m3ToF32(f32ToE4m3(-x, true))).toBe(-448);
    }
    // 464 is the midpoint between 448 (mantissa 110, even) and the NaN slot: rounds to 448 even without saturation.
    expect(f32ToE4m3(464, false)).toBe(0x7e);
    expect(f32ToE4m3(nextDown(464), false)).toBe(0x7e);
    for (const x of [nextUp(464), 480, 1000, Infinity]) {
      expect(Number.isNaN(e4m3ToF32(f32ToE4m3(x, false)))).toBe(true);
      expect(f32ToE4m3(-x, false) & 0x80).toBe(0x80);
      expect(Number.isNaN(e4m3ToF32(f32ToE4m3(-x, false)))).toBe(true);
    }
  });
  it('e5m2 overflows to +-inf (midpoint 61440 rounds to even = inf)', () => {
    expect(f32ToE5m2(57344)).toBe(0x7b);
    expect(f32ToE5m2(nextDown(61440))).toBe(0x7b);
    expect(f32ToE5m2(61440)).toBe(0x7c);
    expect(f32ToE5m2(1e6)).toBe(0x7c);
    expect(f32ToE5m2(-1e6)).toBe(0xfc);
    expect(f32ToE5m2(Infinity)).toBe(0x7c);
    expect(f32ToE5m2(1e6, true)).toBe(0x7b);
  });
  it('f16 overflows to inf at the midpoint 65520 and keeps 65519.99 finite', () => {
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(nextDown(65520))).toBe(0x7bff);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
  });
  it('bf16: the f32 max rounds to inf, inf stays inf', () => {
    expect(f32ToBf16(fromBits(0x7f7fffff))).toBe(0x7f80);
    expect(f32ToBf16(Infinity)).toBe(0x7f80);
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
  });
});

describe('random f32 inputs against nearest search', () => {
  it('f32 -> bf16 on 200k random bit patterns: BigInt derivation', () => {
    const r = rng(1);
    let checked = 0;
    for (let i = 0; i < 200_000; i++) {
      const bits = Math.floor(r() * 2 ** 32) >>> 0;
      const x = fromBits(bits);
      const got = f32ToBf16(x);
      if (Number.isNaN(x)) {
        expect(Number.isNaN(bf16ToF32(got))).toBe(true);
        expect(got >> 15).toBe(bits >>> 31);
        continue;
      }
      // Independent: x = sign * M * 2^E exactly as BigInt, candidates lo = trunc, hi = lo + 1 ulp.
      const B = BigInt(bits);
      const lo = Number(B >> 16n);
      const rem = B & 0xffffn;
      const half = 0x8000n;
      // distance to lo is rem, to hi is 0x10000 - rem (same units): compare as BigInt.
      const want = rem < half ? lo : rem > half ? lo + 1 : (lo & 1) === 0 ? lo : lo + 1;
      // cross-check the BigInt choice by comparing real distances in f64 (exact for these values)
      const vlo = formula(BF16, lo);
      const vhi = formula(BF16, (lo + 1) & 0xffff);
      if (Number.isFinite(vlo) && Number.isFinite(vhi) && (lo & 0x7fff) !== 0x7fff) {
        const dlo = Math.abs(x - vlo);
        const dhi = Math.abs(vhi - x);
        const byDist = dlo < dhi ? lo : dhi < dlo ? lo + 1 : (lo & 1) === 0 ? lo : lo + 1;
        expect(byDist).toBe(want);
      }
      if (got !== (want & 0xffff)) expect(`0x${bits.toString(16)} -> 0x${got.toString(16)}`).toBe(`0x${bits.toString(16)} -> 0x${(want & 0xffff).toString(16)}`);
      checked++;
    }
    expect(checked).toBeGreaterThan(190_000);
  });

  for (const [f, scale] of [[F16, 70000], [E4M3, 500], [E5M2, 62000]] as const) {
    for (const sat of f === E4M3 ? [true, false] : [false]) {
      it(`f32 -> ${f.name}${f === E4M3 ? ` (saturate=${sat})` : ''} on 100k random values (log-uniform and linear)`, () => {
        const pos = positives(f);
        const enc = f === E4M3 ? (x: number) => f32ToE4m3(x, sat) : f.encode;
        const r = rng(7 + f.bits + (sat ? 1 : 0));
        const bad: string[] = [];
        for (let i = 0; i < 100_000; i++) {
          const mag = i % 2 === 0 ? Math.pow(2, (r() * 2 - 1) * 30) * (scale / 2 ** 30) * 2 : r() * scale;
          const x = Math.fround(r() < 0.5 ? -mag : mag);
          const a = Math.abs(x);
          let want = nearest(f, pos, a, sat);
          if (x < 0 || Object.is(x, -0)) want |= 1 << (f.bits - 1);
          const got = enc(x);
          const same = got === want || (Number.isNaN(formula(f, got)) && Number.isNaN(formula(f, want)) && got >> (f.bits - 1) === want >> (f.bits - 1));
          if (!same) bad.push(`${x}: want 0x${want.toString(16)} got 0x${got.toString(16)}`);
          if (bad.length > 5) break;
        }
        expect(bad).toEqual([]);
      });
    }
  }
});
