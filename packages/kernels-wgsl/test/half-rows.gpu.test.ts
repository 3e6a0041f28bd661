// halfRowsKernel (the subgroup-matrix GEMMs' f16 x rows in grouped order, each row scaled by a power of two into f16's
// range): the register variant (the row read once, halfRowsRegs) against the two-read variant bit for bit, and both
// against the contract: every half times the row's XRU within f16 rounding of x (times the router weight), zero
// padding, zero pad rows. Odd K (multiples of 8, last vec4s of a thread past K), each x-row mode, router weights,
// rows far past f16's range, and inf / NaN rows (XRU 1, propagated).
import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, f16ToF32 } from '@webmoe/tensor';
import { GpuTensor, Recorder, foldWorkgroups, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { halfRowsKernel, halfRowsRegs, type HalfRowsVariant } from '../src/kernels/grouped-gemm-fast-wgsl.js';
import { HALF_ROWS_PAD, halfRowStride } from '../src/kernels/grouped-gemm-fast-shapes.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type XMode = HalfRowsVariant['xmode'];

/** The kernel's XH (as half bits) and XRU for one variant. */
async function runHalfRows(c: GpuContext, v: HalfRowsVariant, x: Float32Array, order: Uint32Array, rs: Float32Array | undefined, rows: number, K: number, k: number): Promise<{ xh: Uint16Array; xru: Float32Array }> {
  const kp = halfRowStride(K);
  const tX = GpuTensor.upload(c, HostTensor.fromFloat32([x.length / K, K], x));
  const tO = GpuTensor.upload(c, new HostTensor('uint32', [rows], order));
  const tR = rs ? GpuTensor.upload(c, HostTensor.fromFloat32([rs.length], rs)) : undefined;
  // stale contents: the kernel must write every half of every row and pad row
  const tXH = GpuTensor.upload(c, new HostTensor('uint32', [((rows + HALF_ROWS_PAD) * kp) / 2], new Uint32Array(((rows + HALF_ROWS_PAD) * kp) / 2).fill(0x7e007e00)));
  const tRU = GpuTensor.upload(c, HostTensor.fromFloat32([rows], new Float32Array(rows).fill(-7)));
  try {
    const rec = new Recorder(c);
    const bind: Record<string, GPUBuffer> = { X: tX.buffer, ORDER: tO.buffer, XH: tXH.buffer, XRU: tRU.buffer };
    if (tR) bind.RS = tR.buffer;
    rec.dispatch({ kernel: halfRowsKernel, variant: v, bind, params: { rows, kv: K / 4, k, kvp: kp / 4 }, workgroups: foldWorkgroups(c, rows + HALF_ROWS_PAD) });
    rec.submit();
    const words = (await tXH.download()).data as Uint32Array;
    const xru = (await tRU.download()).data as Float32Array;
    expect(c.takeUncapturedErrors()).toEqual([]);
    return { xh: new Uint16Array(words.buffer, words.byteOffset, words.length * 2), xru };
  } finally {
    for (const t of [tX, tO, tR, tXH, tRU]) t?.destroy();
  }
}

describe('halfRowsKernel', () => {
  const cases: { K: number; rows: number; k: number; xmode: XMode; rowScale: boolean }[] = [
    { K: 8, rows: 3, k: 1, xmode: 'grouped', rowScale: false },
    { K: 24, rows: 9, k: 3, xmode: 'token', rowScale: true },
    { K: 1000, rows: 7, k: 2, xmode: 'pair', rowScale: true },
    { K: 1032, rows: 5, k: 1, xmode: 'grouped', rowScale: false },
    { K: 4104, rows: 6, k: 2, xmode: 'token', rowScale: false },
    { K: 14336, rows: 4, k: 1, xmode: 'grouped', rowScale: false },
    { K: 16384, rows: 3, k: 1, xmode: 'pair', rowScale: true },
  ];
  it.each(cases.map((c) => ({ ...c, name: `K=${c.K} rows=${c.rows} ${c.xmode}${c.rowScale ? ' router weights' : ''} (regs ${halfRowsRegs(c.K)})` })))('$name: register variant = two-read variant, bit for bit, within f16 of x', async ({ K, rows, k, xmode, rowScale }, t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(K + rows);
    const srcRows = xmode === 'token' ? Math.ceil(rows / k) + 1 : rows;
    const x = randomArray(r, srcRows * K, -2, 2);
    // row 1: far past f16's range; row 2: one inf; row 3: a NaN (where there are such rows)
    for (let i = 0; i < K; i += 3) x[Math.min(1, srcRows - 1) * K + i] *= 5e4;
    if (srcRows > 2) x[2 * K + 5] = Infinity;
    if (srcRows > 3) x[3 * K + 1] = NaN;
    const pairs = xmode === 'grouped' ? rows : rows * 1;
    const order = new Uint32Array(rows).map((_, p) => (xmode === 'token' ? (p * 7) % (srcRows * k - k) : (p * 5) % pairs));
    const rs = rowScale ? randomArray(r, Math.max(pairs, srcRows * k), 0.1, 3) : undefined;
    const regs = halfRowsRegs(K);
    expect(regs, 'the register variant exists for these K').toBeDefined();
    const a = await runHalfRows(c, { xmode, rowScale, regs }, x, order, rs, rows, K, k);
    const b = await runHalfRows(c, { xmode, rowScale }, x, order, rs, rows, K, k);
    expect(Array.from(a.xru)).toEqual(Array.from(b.xru));
    expect(a.xh.length).toBe(b.xh.length);
    for (let i = 0; i < a.xh.length; i++) if (a.xh[i] !== b.xh[i]) throw new Error(`half ${i}: ${a.xh[i].toString(16)} vs ${b.xh[i].toString(16)}`);
    // the contract, from the register variant's output
    const kp = halfRowStride(K);
    for (let p = 0; p < rows + HALF_ROWS_PAD; p++) {
      for (let j = p < rows ? K : 0; j < kp; j++) if (a.xh[p * kp + j] !== 0) throw new Error(`row ${p} padding ${j}: ${a.xh[p * kp + j]}`);
      if (p >= rows) continue;
      const pair = order[p];
      const src = xmode === 'token' ? Math.floor(pair / k) : xmode === 'pair' ? pair : p;
      const w = rs ? rs[pair] : 1;
      const row = x.subarray(src * K, (src + 1) * K);
      const finite = row.every((v) => Number.isFinite(v));
      if (!finite) {
        expect(a.xru[p], `row ${p} (inf / NaN): unscaled`).toBe(1);
        continue;
      }
      let m = 0;
      for (const v of row) m = Math.max(m, Math.abs(v * w));
      const ru = a.xru[p];
      expect(m / ru, `row ${p}: max |x| * s within 2^14`).toBeLessThanOrEqual(16384 * 1.0001);
      if (m <= 16384) expect(ru).toBe(1);
      for (let j = 0; j < K; j++) {
        const got = f16ToF32(a.xh[p * kp + j]) * ru;
        const want = row[j] * w;
        // f16 rounding (2^-11 relative) of values above the subnormal range, else 2^-24 after scaling
        if (!(Math.abs(got - want) <= Math.abs(want) * 2 ** -10 + 2 ** -23 * ru)) throw new Error(`row ${p} [${j}]: ${got} for ${want}`);
      }
    }
  });
});
