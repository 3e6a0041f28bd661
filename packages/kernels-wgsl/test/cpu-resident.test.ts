// Tensors kept where the CPU kernels read them in place (cpu-resident.ts): the copies' values, and the kernels over
// resident dense weights (f32, bf16, f16) bit for bit the copying path's results, every layout, odd sizes, more input
// rows than the scratch holds; the fallbacks (SIMD off, f16 rows that are not a multiple of 8, chunked stacks).
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { HostTensor, type DType } from '@webmoe/tensor';
import {
  chunkExpertWeightsHost,
  cpuResident,
  groupedDownCpu,
  groupedDownRef,
  groupedGateUpCpu,
  groupedGateUpRef,
  isCpuResident,
  linearCpu,
  linearRef,
  planExpertChunks,
  type ExpertActivation,
  type ExpertWeightsHost,
} from '@webmoe/kernels-wgsl';
import { rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { enableCpuSimd } from '../src/kernels/cpu-simd.js';
import { ROW_DOTS, residentCopies, residentMemoryOf } from '../src/kernels/cpu-resident.js';
import { readsInPlace } from '../src/kernels/cpu-kernels.js';
import { hostGrouping, randInt, randomIdx } from './grouped-helpers.js';

const DENSE: readonly DType[] = ['float32', 'bfloat16', 'float16'];
const ACTS: readonly ExpertActivation[] = [
  { kind: 'silu', layout: 'concat' },
  { kind: 'swigluoai', layout: 'interleaved', limit: 0.4, alpha: 1.702 },
];

/** The first value at which two float arrays differ in their bits (-0 and NaN patterns included), or -1 (any length); a deep toEqual takes seconds over millions of values. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const [ua, ub] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

const dense = (w: HostTensor): ExpertWeightsHost => ({ kind: 'dense', w });

describe('cpuResident', () => {
  it('copies tensors of any dtype into one memory: the same dtypes, shapes and values, 16-byte aligned, the inputs left as they were', () => {
    const r = rng(1);
    const given = [
      HostTensor.fromFloat32([3, 7], randomArray(r, 21), 'bfloat16'),
      HostTensor.fromFloat32([5], randomArray(r, 5)),
      new HostTensor('uint8', [3, 3], Uint8Array.from({ length: 9 }, (_, i) => i)),
      HostTensor.fromFloat32([2, 1, 9], randomArray(r, 18), 'float16'),
    ];
    const before = given.map((t) => t.data.slice());
    const got = cpuResident(given);
    expect(got.length).toBe(given.length);
    const mem = residentMemoryOf(got[0].data)!;
    expect(mem).toBeDefined();
    got.forEach((t, i) => {
      expect(t).not.toBe(given[i]);
      expect([t.dtype, t.shape]).toEqual([given[i].dtype, given[i].shape]);
      expect(Array.from(t.data)).toEqual(Array.from(given[i].data));
      expect(Array.from(given[i].data)).toEqual(Array.from(before[i]));
      expect(isCpuResident(t)).toBe(true);
      expect(isCpuResident(given[i])).toBe(false);
      expect(t.data.buffer).toBe(got[0].data.buffer);
      expect(t.data.byteOffset % 16).toBe(0);
      // the scratch lies past every tensor's data
      expect(t.data.byteOffset + t.data.byteLength).toBeLessThanOrEqual(mem.scratch);
    });
    // the scratch holds at least one f32 row of the widest tensor
    expect(mem.scratchBytes).toBeGreaterThanOrEqual(4 * 9);
    // then the row dots' results of two slots
    expect(mem.results).toBeGreaterThanOrEqual(mem.scratch + mem.scratchBytes);
    expect(mem.results + 2 * 8 * ROW_DOTS).toBeLessThanOrEqual(mem.simd.memory.buffer.byteLength);
    expect(cpuResident([])).toEqual([]);
  });

  it('tensors past one memory get a memory each; one past it alone comes back as it was (here memories of 4 MiB)', () => {
    const r = rng(2);
    const pages = 64;
    const small = HostTensor.fromFloat32([100], randomArray(r, 100), 'bfloat16');
    // 2 MB each, a 1 MiB scratch (256 rows of 1000 f32): one fits, two do not
    const [big1, big2] = [0, 1].map(() => HostTensor.fromFloat32([1000, 1000], randomArray(r, 1e6), 'bfloat16'));
    const huge = HostTensor.fromFloat32([1100, 1000], randomArray(r, 1.1e6)); // 4.4 MB alone
    const split = residentCopies([big1, big2], pages);
    expect(split.map(isCpuResident)).toEqual([true, true]);
    expect(split[0].data.buffer).not.toBe(split[1].data.buffer);
    const three = residentCopies([small, huge, big1], pages);
    expect(three[1]).toBe(huge);
    expect([isCpuResident(three[0]), isCpuResident(three[2])]).toEqual([true, true]);
    three.forEach((t, i) => expect(Array.from(t.data), `tensor ${i}`).toEqual(Array.from([small, huge, big1][i].data)));
    const one = residentCopies([small, big1], pages);
    expect(one[0].data.buffer).toBe(one[1].data.buffer);
  });

  it('gives the inputs themselves where WebAssembly SIMD is off (the JavaScript dots read them as they are)', () => {
    const was = enableCpuSimd(false);
    try {
      const t = HostTensor.fromFloat32([2, 3], [1, 2, 3, 4, 5, 6], 'bfloat16');
      const [got] = cpuResident([t]);
      expect(got).toBe(t);
      expect(isCpuResident(got)).toBe(false);
    } finally {
      enableCpuSimd(was);
    }
  });
});

describe('the CPU kernels over resident dense weights', () => {
  // the copying path's results: the same tensors' data copied out of the resident memory
  const copied = (t: HostTensor) => new HostTensor(t.dtype, t.shape, t.data.slice());

  it('grouped gate_up and down equal the copying path bit for bit: f32, bf16, f16, both layouts, odd sizes, T = 0..80, biases', () => {
    const r = rng(77);
    let cases = 0;
    let inPlaceCases = 0;
    for (const dtype of DENSE)
      for (const act of ACTS)
        for (const T of [0, 1, 5, 80]) {
          const E = randInt(r, 1, 5);
          const k = randInt(r, 1, Math.min(E, 3));
          // f16 rows a multiple of 8 long read their patterns in place; other lengths keep the row decoders
          const H = dtype === 'float16' && r() < 0.7 ? 8 * randInt(r, 1, 12) : randInt(r, 1, 97);
          const I = randInt(r, 1, 45);
          const [gu, dn] = cpuResident([
            HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H, -0.5, 0.5), dtype),
            HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I, -0.5, 0.5), dtype),
          ]);
          expect(isCpuResident(gu) && isCpuResident(dn)).toBe(true);
          // read in place: every dense dtype, f16 rows of a multiple of 8 values
          const inPlace = dtype !== 'float16' || H % 8 === 0;
          expect(readsInPlace(dense(gu), 2 * I, H)).toBe(inPlace);
          if (inPlace) inPlaceCases++;
          const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
          const x = randomArray(r, T * H);
          const bias = T % 2 === 1 ? { gu: HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I, -0.1, 0.1)), dn: HostTensor.fromFloat32([E, H], randomArray(r, E * H, -0.1, 0.1), 'bfloat16') } : undefined;
          const what = `${dtype} ${act.kind}/${act.layout} E ${E} k ${k} T ${T} H ${H} I ${I}`;
          const h = groupedGateUpCpu(x, g, dense(gu), bias?.gu, act);
          expect(firstBitDifference(h, groupedGateUpCpu(x, g, dense(copied(gu)), bias?.gu, act)), what).toBe(-1);
          expect(relErr(h, groupedGateUpRef(x, g, dense(gu), bias?.gu, act)), what).toBeLessThan(1e-6);
          const y = groupedDownCpu(h, g, dense(dn), bias?.dn);
          expect(firstBitDifference(y, groupedDownCpu(h, g, dense(copied(dn)), bias?.dn)), what).toBe(-1);
          expect(relErr(y, groupedDownRef(h, g, dense(dn), bias?.dn)), what).toBeLessThan(1e-6);
          cases++;
        }
    expect(cases).toBe(DENSE.length * ACTS.length * 4);
    expect(inPlaceCases).toBeGreaterThan(cases / 2);
  });

  it('more input rows than the scratch holds: blocks of rows, the same results (T = 300 over rows of 4099 values: blocks of 127 rows)', () => {
    const r = rng(3);
    const [T, k, E, H, I] = [300, 1, 1, 4099, 3];
    const [gu, dn] = cpuResident([HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H), 'bfloat16'), HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I), 'bfloat16')]);
    expect(residentMemoryOf(gu.data)!.scratchBytes).toBeLessThan(4 * T * H);
    expect(readsInPlace(dense(gu), 2 * I, H) && readsInPlace(dense(dn), H, I)).toBe(true);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const x = randomArray(r, T * H);
    const h = groupedGateUpCpu(x, g, dense(gu), undefined, ACTS[0]);
    expect(firstBitDifference(h, groupedGateUpCpu(x, g, dense(copied(gu)), undefined, ACTS[0]))).toBe(-1);
    expect(firstBitDifference(groupedDownCpu(h, g, dense(dn)), groupedDownCpu(h, g, dense(copied(dn))))).toBe(-1);
  });

  it('long rows: several runs of weight rows per call (gate_up 7 rows a run over 4099 values, interleaved pairs 3), the same results', () => {
    const r = rng(4);
    const [E, k, T, H, I] = [3, 2, 5, 4099, 20];
    for (const act of ACTS) {
      const [gu, dn, bgu, bdn] = cpuResident([
        HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H), 'bfloat16'),
        HostTensor.fromFloat32([E, H, I], randomArray(r, E * H * I), 'float32'),
        HostTensor.fromFloat32([E, 2 * I], randomArray(r, E * 2 * I)),
        HostTensor.fromFloat32([E, H], randomArray(r, E * H)),
      ]);
      expect(readsInPlace(dense(gu), 2 * I, H) && readsInPlace(dense(dn), H, I)).toBe(true);
      const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
      const x = randomArray(r, T * H);
      const h = groupedGateUpCpu(x, g, dense(gu), bgu, act);
      expect(firstBitDifference(h, groupedGateUpCpu(x, g, dense(copied(gu)), bgu, act)), act.layout).toBe(-1);
      expect(relErr(h, groupedGateUpRef(x, g, dense(gu), bgu, act)), act.layout).toBeLessThan(1e-6);
      const y = groupedDownCpu(h, g, dense(dn), bdn);
      expect(firstBitDifference(y, groupedDownCpu(h, g, dense(copied(dn)), bdn)), act.layout).toBe(-1);
      expect(relErr(y, groupedDownRef(h, g, dense(dn), bdn)), act.layout).toBeLessThan(1e-6);
    }
  });

  it('the linear equals the copying path bit for bit (f32, bf16, f16; one row wider than the 2 MiB scratch cap included)', () => {
    const r = rng(9);
    for (const dtype of DENSE)
      for (const [T, N, K] of [
        [1, 8, 64],
        [37, 13, 29],
        [3, 2, 600_001],
      ]) {
        const [w, b] = cpuResident([HostTensor.fromFloat32([N, K], randomArray(r, N * K), dtype), HostTensor.fromFloat32([N], randomArray(r, N))]);
        const x = randomArray(r, T * K);
        const what = `${dtype} T ${T} N ${N} K ${K}`;
        expect(readsInPlace(dense(new HostTensor(w.dtype, [1, N, K], w.data)), N, K), what).toBe(dtype !== 'float16' || K % 8 === 0);
        const y = linearCpu(x, T, w, b);
        expect(firstBitDifference(y, linearCpu(x, T, copied(w), b)), what).toBe(-1);
        expect(relErr(y, linearRef(x, T, w, b)), what).toBeLessThan(1e-6);
      }
  });

  it('a chunked stack of resident chunks keeps the copying path (its chunks lie apart): the same results', () => {
    const r = rng(12);
    const [E, I, H, T, k] = [4, 6, 24, 9, 2];
    const [gu] = cpuResident([HostTensor.fromFloat32([E, 2 * I, H], randomArray(r, E * 2 * I * H), 'bfloat16')]);
    const w = dense(gu);
    const c = chunkExpertWeightsHost(w, 'concat', planExpertChunks(w, 'concat', Math.floor(gu.data.byteLength / 3)));
    expect(c.kind).toBe('chunked');
    expect([readsInPlace(w, 2 * I, H), readsInPlace(c, 2 * I, H)]).toEqual([true, false]);
    const g = hostGrouping(randomIdx(r, T, k, E), T, k, E);
    const x = randomArray(r, T * H);
    expect(firstBitDifference(groupedGateUpCpu(x, g, c, undefined, ACTS[0]), groupedGateUpCpu(x, g, w, undefined, ACTS[0]))).toBe(-1);
  });
});

describe('with the SIMD dots turned off after the copies were made', () => {
  let was = true;
  beforeAll(() => {
    was = enableCpuSimd(false);
  });
  afterAll(() => {
    enableCpuSimd(was);
  });
  it('the JavaScript dots read resident tensors as they are', () => {
    enableCpuSimd(true);
    const r = rng(21);
    const [w] = cpuResident([HostTensor.fromFloat32([5, 33], randomArray(r, 5 * 33), 'bfloat16')]);
    enableCpuSimd(false);
    expect(isCpuResident(w)).toBe(true);
    expect(readsInPlace(dense(w), 5, 33)).toBe(false);
    const x = randomArray(r, 2 * 33);
    expect(relErr(linearCpu(x, 2, w), linearRef(x, 2, w))).toBeLessThan(1e-6);
  });
});
