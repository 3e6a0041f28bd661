// Quantized experts on the GPU: the fp8 / MXFP4 fixtures vs the transformers goldens, and the GPU bytes each layer holds.
import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { sgmatTileBands, testGpu, withEmulatedSubgroupMatrix, withSgmatSplitKRule, withSgmatTileBands } from '@webmoe/kernels-wgsl/testing';
import { MoE, quantize, QuantizedExperts, type MoEQuantConfig } from '../src/index.js';
import { FIXTURES, packedShared, expectPrefillPaths, expertGemmPaths, forwardLogged, goldenTensors, readTensorsF32, relErr, stagedTol } from './helpers.js';
import { CASES } from './random-cases.js';
import { FORMATS, quantizedCase } from './quant-cases.js';
import { referenceMoE } from './reference.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const golden = (arch: string) => goldenTensors(arch);

async function runGpu(moe: MoE, x: Float32Array, T: number, H: number): Promise<Float32Array> {
  return (await forwardLogged(ctx!, moe, x, T, H)).y;
}

describe('quantized checkpoints on the GPU vs goldens', () => {
  it('deepseek_v3_fp8: weight-only within 1e-4, dynamic w8a8 within 1e-3; fp8 weights and scales stay packed on the GPU', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = golden('deepseek_v3_fp8');
    const x = g.get('input')!;
    const [T, H] = x.shape;
    for (const [aq, name, tol] of [['none', 'output_weight_only', 1e-4], ['dynamic', 'output_w8a8', 1e-3]] as const) {
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, device: DeviceRef.GPU(), ctx, activationQuant: aq });
      try {
        const s = moe.stacked as QuantizedExperts;
        expect(s.gateUpProj.gpuValue.dtype).toBe('float8_e4m3fn');
        expect(s.gateUpScale.gpuValue.dtype).toBe('float32');
        expect(packedShared(moe).gateUpProj.gpuValue.dtype).toBe('float8_e4m3fn');
        const y = await runGpu(moe, x.values, T, H);
        const err = relErr(y, g.get(name)!.values);
        expect(err, `${name} GPU rel err ${err}`).toBeLessThan(tol);
        // Graph replay (the default for small T): run twice, same result.
        const y2 = await runGpu(moe, x.values, T, H);
        expect(relErr(y2, y)).toBe(0);
        moe.useGraphs = false; // the plain recorded forward (no graph replay) gives the same
        expect(relErr(await runGpu(moe, x.values, T, H), y)).toBeLessThan(1e-6);
      } finally {
        moe.destroy();
      }
    }
  });

  it('deepseek_v3_fp8 golden-large (T = 600) on the prefill kernels: weight-only within 1e-4 (FMA) / 1e-3 (subgroup-matrix), dynamic w8a8 within 1e-3', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = goldenTensors('deepseek_v3_fp8', 'golden-large');
    const x = g.get('input')!;
    const [T, H] = x.shape;
    for (const [aq, name] of [['none', 'output_weight_only'], ['dynamic', 'output_w8a8']] as const) {
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, device: DeviceRef.GPU(), ctx, activationQuant: aq });
      try {
        const { y, dispatched } = await forwardLogged(ctx, moe, x.values, T, H);
        // Packed fp8 experts (routed and shared): any prefill GEMM, never the decode GEMV or tile.
        const paths = expectPrefillPaths(dispatched, { dense: false });
        // The subgroup-matrix kernels stage activations as f16: weight-only is held to 1e-3 there (issue 12).
        const matrix = paths.some((p) => p.endsWith(':subgroup-matrix'));
        const tol = aq === 'dynamic' || matrix ? 1e-3 : 1e-4;
        const err = relErr(y, g.get(name)!.values);
        expect(err, `${name} GPU rel err ${err} on ${paths.join(' ')}`).toBeLessThan(tol);
      } finally {
        moe.destroy();
      }
    }
  });

  // deepseek_v3_fp8's golden-large (T = 600) on the subgroup-matrix kernels: this adapter's, else emulated
  const matrixSkip = () => (!ctx ? 'no WebGPU adapter' : !ctx.features.shaderF16 || !ctx.features.subgroups ? 'the adapter lacks shader-f16 or subgroups' : undefined);
  function fp8LargeOnMatrixTiles() {
    const view = ctx!.features.subgroupMatrix ? ctx! : withEmulatedSubgroupMatrix(ctx!);
    const g = goldenTensors('deepseek_v3_fp8', 'golden-large');
    const x = g.get('input')!;
    const [T, H] = x.shape;
    const load = () => MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, device: DeviceRef.GPU(), ctx: view, activationQuant: 'none' });
    const forward = (moe: MoE) => forwardLogged(view, moe, x.values, T, H);
    // a freshly loaded layer's forward, then the layer destroyed (a layer keeps the graphs it recorded: one per planner rule)
    const run = async () => {
      const moe = await load();
      try {
        return await forward(moe);
      } finally {
        moe.destroy();
      }
    };
    return { want: g.get('output_weight_only')!.values, load, forward, run };
  }

  it('deepseek_v3_fp8 golden-large with the experts decoded to f16 first (MoE.prefillDequant): within 1e-3 on the subgroup-matrix kernels (emulated where the adapter lacks them), equal to the staging decode', async (c) => {
    const skip = matrixSkip();
    if (skip) return c.skip(skip);
    const { want, load, forward } = fp8LargeOnMatrixTiles();
    const moe = await load();
    try {
      moe.prefillDequant = 'on';
      const on = await forward(moe);
      const kernels = on.dispatched.map((d) => d.kernel);
      expect(kernels, kernels.join(' ')).toContain('dequant_f16');
      expect(kernels).toContain('grouped_gemm_sgmat');
      const err = relErr(on.y, want);
      expect(err, `rel err ${err}`).toBeLessThan(1e-3);
      moe.prefillDequant = 'off';
      const off = await forward(moe);
      expect(off.dispatched.map((d) => d.kernel)).not.toContain('dequant_f16');
      expect(relErr(on.y, off.y)).toBeLessThan(1e-6);
      expect(() => (moe.prefillDequant = 'yes' as 'on')).toThrow(/'auto' \| 'on' \| 'off'/);
    } finally {
      moe.destroy();
    }
  }, 600_000);

  it('deepseek_v3_fp8 golden-large through the split-K down GEMM (the rule lowered to the fixture\'s K = 128: 2 slices of 64): within 1e-3 on the subgroup-matrix kernels (emulated where the adapter lacks them), within 1e-6 of the unsplit forward', async (c) => {
    const skip = matrixSkip();
    if (skip) return c.skip(skip);
    const { want, run } = fp8LargeOnMatrixTiles();
    // every down GEMM split 2 ways (K = 128 over slices of at least 64), whatever its tiles and rows per expert
    const split = await withSgmatSplitKRule({ targetWorkgroups: 1 << 30, maxSplit: 2, minSliceK: 64, maxRowsPerExpert: 1 << 30 }, run);
    const downs = (log: typeof split.dispatched) => log.filter((d) => d.kernel === 'grouped_gemm_sgmat' && d.variant.op === 'down');
    expect(downs(split.dispatched).length).toBeGreaterThan(0);
    expect(downs(split.dispatched).map((d) => d.variant.splitK)).toEqual(downs(split.dispatched).map(() => 2));
    expect(split.dispatched.map((d) => d.kernel)).toContain('grouped_gemm_splitk_reduce');
    const err = relErr(split.y, want);
    expect(err, `rel err ${err}`).toBeLessThan(1e-3);
    // the planner's rule again: this fixture's K is too short to split
    const plain = await run();
    expect(downs(plain.dispatched).length).toBeGreaterThan(0);
    expect(plain.dispatched.map((d) => d.kernel)).not.toContain('grouped_gemm_splitk_reduce');
    expect(relErr(split.y, plain.y)).toBeLessThan(1e-6);
  }, 600_000);

  // the fp8 bands' tiles, each widened to every call (KERNEL_CROSSOVERS.sgmatTiles.bands: the planner keeps the 128 x 256
  // tile for 64-511 rows per expert, the 32 x 128 one with two 64-wide K slices in flight for 8-32, on 48 KiB devices)
  for (const [tile, shape] of [['128 x 256', 'm128n256k32va'], ['32 x 128 pf2', 'm32n128k64vap2']] as const) it(`deepseek_v3_fp8 golden-large on the fp8 band's ${tile} tile (${shape}) at every row count: within 1e-3 on the subgroup-matrix kernels (emulated where the adapter lacks them), within 1e-5 of the planner's tiles without the fp8 bands`, async (c) => {
    const skip = matrixSkip();
    if (skip) return c.skip(skip);
    const { want, run } = fp8LargeOnMatrixTiles();
    const band = await withSgmatTileBands([{ shapes: { fp8_e4m3: shape }, minRowsPerExpert: 0, maxRowsPerExpert: 1 << 30, minWorkgroupBytes: 0 }], run);
    // every fp8 matrix GEMM (the routed experts' gate_up and down; the shared expert's 600 rows are decoded to f16 first,
    // sgmatDequant, and take the 16-bit tiles) on the band's tile over f16 x rows
    const gemms = band.dispatched.filter((d) => d.kernel === 'grouped_gemm_sgmat' && d.variant.wf === 'fp8_e4m3');
    expect(gemms.map((d) => d.variant.op).sort()).toEqual(['down', 'gate_up']);
    expect(gemms.map((d) => `${d.variant.sg}/${d.variant.xh}`)).toEqual(gemms.map(() => `${shape}/staged`));
    const err = relErr(band.y, want);
    expect(err, `rel err ${err}`).toBeLessThan(1e-3);
    // against the planner's tiles without the fp8 bands (the planner's own rule takes the 128 x 256 band tile at this
    // fixture's rows per expert since session 28: the comparison must be with another tile)
    const noFp8Bands = sgmatTileBands().filter((b) => !Object.hasOwn(b.shapes, 'fp8_e4m3'));
    const plain = await withSgmatTileBands(noFp8Bands, run);
    expect(plain.dispatched.filter((d) => d.kernel === 'grouped_gemm_sgmat').map((d) => d.variant.sg)).not.toContain(shape);
    expect(relErr(band.y, plain.y)).toBeLessThan(1e-5);
  }, 600_000);

  it('gpt_oss_mxfp4: output within 1e-4, blocks/scales uint8 on the GPU', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = golden('gpt_oss_mxfp4');
    const x = g.get('input')!;
    const [T, H] = x.shape;
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss_mxfp4`, layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      const s = moe.stacked as QuantizedExperts;
      expect(s.gateUpProj.gpuValue.dtype).toBe('uint8');
      expect(s.gateUpScale.gpuValue.dtype).toBe('uint8');
      const y = await runGpu(moe, x.values, T, H);
      const err = relErr(y, g.get('output')!.values);
      expect(err, `GPU rel err ${err}`).toBeLessThan(1e-4);
    } finally {
      moe.destroy();
    }
  });
});

describe('gpuBytes: quantized experts hold packed codes + scales only', () => {
  // Independent expectation from the shapes: codes and scales of gate_up [E, 2I, H] and down [E, H, I] (+ shared experts when quantized).
  function expected(fmt: MoEQuantConfig, mats: [number, number, number][]): number {
    let b = 0;
    for (const [E, rows, cols] of mats) {
      switch (fmt.format) {
        case 'fp8_block': {
          const [br, bc] = fmt.weightBlockSize ?? [128, 128];
          b += E * rows * cols + E * Math.ceil(rows / br) * Math.ceil(cols / bc) * 4;
          break;
        }
        case 'mxfp4':
          b += (E * rows * cols) / 2 + (E * rows * cols) / 32;
          break;
        case 'int4':
        case 'int8': {
          const bits = fmt.format === 'int4' ? 4 : 8;
          const sb = fmt.scaleDtype === 'float32' ? 4 : 2;
          // scales, plus one zero-point byte per block with zeroPoint
          b += (E * rows * cols * bits) / 8 + E * rows * Math.ceil(cols / (fmt.blockSize ?? 32)) * (sb + (fmt.zeroPoint ? 1 : 0));
          break;
        }
      }
    }
    return b;
  }

  it('deepseek_v3_fp8 (routed + shared fp8) and gpt_oss_mxfp4 as loaded', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const ds = await MoE.fromHuggingFace({ source: `${FIXTURES}/deepseek_v3_fp8`, layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      const b = ds.gpuBytes();
      const want = expected({ format: 'fp8_block' }, [[8, 256, 256], [8, 256, 128], [1, 256, 256], [1, 256, 128]]);
      expect(b.expertWeights + b.expertScales).toBeLessThanOrEqual(1.02 * want);
      expect(b.expertWeights + b.expertScales).toBeGreaterThanOrEqual(want);
      expect(b.expertScales).toBe((8 * 2 * 2 + 8 * 2 * 1 + 2 * 2 + 2) * 4);
      // router [8, 256] f32 + correction bias [8] f32
      expect(b.other).toBe(8 * 256 * 4 + 8 * 4);
    } finally {
      ds.destroy();
    }
    const go = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss_mxfp4`, layer: 0, device: DeviceRef.GPU(), ctx });
    try {
      const b = go.gpuBytes();
      const want = expected({ format: 'mxfp4' }, [[8, 64, 64], [8, 64, 32]]);
      expect(b.expertWeights + b.expertScales).toBeLessThanOrEqual(1.02 * want);
      expect(b.expertWeights + b.expertScales).toBeGreaterThanOrEqual(want);
    } finally {
      go.destroy();
    }
  });

  const FORMATS: MoEQuantConfig[] = [
    { format: 'fp8_block' },
    { format: 'fp8_block', fp8Dtype: 'float8_e5m2', weightBlockSize: [32, 32] },
    { format: 'mxfp4' },
    { format: 'int4', blockSize: 32 },
    { format: 'int4', blockSize: 32, zeroPoint: true },
    { format: 'int8', blockSize: 16, scaleDtype: 'float32' },
  ];
  it('quantize(gpt_oss f32 layer) into each format: bytes <= 1.02 x (packed + scales), output close to the f32 layer', async (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const g = readTensorsF32(join(FIXTURES, 'gpt_oss', 'golden.safetensors'));
    const x = g.get('input')!;
    const [T, H] = x.shape;
    const dense = await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss`, layer: 0, device: DeviceRef.GPU(), ctx });
    const I = dense.moeDim;
    const E = dense.numExperts;
    try {
      const yd = await runGpu(dense, x.values, T, H);
      const denseBytes = dense.gpuBytes();
      expect(denseBytes.expertWeights).toBe(E * 2 * I * H * 4 + E * H * I * 4);
      for (const f of FORMATS) {
        const q = quantize(dense, f);
        try {
          expect(q.stacked).toBeInstanceOf(QuantizedExperts);
          const b = q.gpuBytes();
          const want = expected(f, [[E, 2 * I, H], [E, H, I]]);
          expect(b.expertWeights + b.expertScales, JSON.stringify(f)).toBeLessThanOrEqual(1.02 * want);
          expect(b.other).toBe(denseBytes.other); // router, router bias, expert biases unchanged
          const { y, dispatched } = await forwardLogged(ctx!, q, x.values, T, H);
          // Quantisation error only (bounded loosely per format); the exact maths is checked against the CPU path.
          const err = relErr(y, yd);
          expect(err, `${JSON.stringify(f)} vs f32 layer`).toBeLessThan(f.format === 'mxfp4' || f.format === 'int4' ? 0.25 : f.fp8Dtype === 'float8_e5m2' ? 0.15 : 0.08);
          const cpu = quantize(await MoE.fromHuggingFace({ source: `${FIXTURES}/gpt_oss`, layer: 0 }), f);
          const yc = await cpu.forward(x.values);
          expect(relErr(y, yc), `${JSON.stringify(f)} GPU vs CPU on ${expertGemmPaths(dispatched).join(' ')}`).toBeLessThan(stagedTol(dispatched, 1e-5));
        } finally {
          q.destroy();
        }
      }
    } finally {
      dense.destroy();
    }
  });
});

describe('quantized experts on the GPU, random configs: vs the per-token reference (weight-only) and vs the CPU path (dynamic w8a8)', () => {
  CASES.forEach((c, ci) => {
    it(c.name, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      for (const [fi, fmt] of FORMATS.entries()) {
        const T = fi % 2 ? 3 : 17;
        for (const aq of ['none', 'dynamic'] as const) {
          const seed = 500 + 10 * ci + fi;
          const g = quantizedCase(ci, fmt, seed, T, [DeviceRef.GPU()], ctx, aq);
          const cpu = quantizedCase(ci, fmt, seed, T, [DeviceRef.CPU()], undefined, aq);
          try {
            const { y, dispatched } = await forwardLogged(ctx!, g.moe, g.x, T, g.cfg.H);
            const tag = `${c.name} ${JSON.stringify(fmt)} ${aq} T=${T} on ${expertGemmPaths(dispatched).join(' ')}`;
            // w8a8: an f32 rounding difference in h can move one activation across an e4m3 rounding boundary (one
            // code step, 1/16 relative), so the dynamic comparison allows 2e-3; weight-only must agree to f32 rounding.
            expect(relErr(y, await cpu.moe.forward(g.x)), `${tag} GPU vs CPU`).toBeLessThan(stagedTol(dispatched, aq === 'none' ? 1e-5 : 2e-3));
            if (aq === 'none') expect(relErr(y, referenceMoE(g.cfg, g.ref, g.x, T)), `${tag} vs reference`).toBeLessThan(stagedTol(dispatched, 1e-5));
          } finally {
            g.moe.destroy();
          }
        }
      }
    });
  });
});
