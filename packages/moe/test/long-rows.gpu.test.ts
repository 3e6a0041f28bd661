// The GPU planner's long-row 4-bit decode GEMVs against transformers goldens: int4 and MXFP4 experts at one token row
// per weight pass on the x-in-registers kernels (plan.ts KERNEL_CROSSOVERS.gemvPackedKernel.byFormat's `longRows`:
// gate_up 'rows4x', down 'rows8k4x'), which the planner takes for rows of 2880 columns and more. The fixtures' rows are
// short, so the rule is lowered to every row length (withGemvLongRowsFrom(0)) on a context seen as a GPU (software
// adapters plan other kernels), and the layer runs one token row at a time (T = 1: one row per weight pass), a few
// rows of each golden (a token's output depends on its own row only).
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { gemvKernelOf, testGpu, withGemvLongRowsFrom, type Dispatched } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { FIXTURES, forwardLogged, goldenTensors, relErr } from './helpers.js';
import { CT_FIXTURE_DIR, CT_FIXTURES, loadCTGolden } from './ct-writer.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

interface LongRowsCase {
  name: string;
  load: () => { dir: string; H: number; input: Float32Array; output: Float32Array; tol: number };
  /**
   * The GEMVs' kernels: the long-row ones, or the table loads where a scale group is narrower than the row-blocked
   * path's 16-byte chunk of 32 codes (packedPath; the long-row rule falls back to them as to every row-blocked kernel).
   */
  expect: { gate_up: string; down: string };
}
/** A compressed-tensors fixture's int4 group size (config.json's quantization_config). */
function groupSize(name: string): number {
  const cfg = JSON.parse(readFileSync(join(CT_FIXTURE_DIR, name, 'config.json'), 'utf8')) as { quantization_config: { config_groups: Record<string, { weights: { group_size: number } }> } };
  return Object.values(cfg.quantization_config.config_groups)[0].weights.group_size;
}
const LONG = { gate_up: 'rows4x', down: 'rows8k4x' };
const TABLE = { gate_up: 'table', down: 'table' };
const CASES: LongRowsCase[] = [
  {
    name: 'gpt_oss_mxfp4 (MXFP4, interleaved swigluoai, expert biases)',
    load: () => {
      const g = goldenTensors('gpt_oss_mxfp4');
      return { dir: `${FIXTURES}/gpt_oss_mxfp4`, H: g.get('input')!.shape[1], input: g.get('input')!.values, output: g.get('output')!.values, tol: 1e-4 };
    },
    expect: LONG,
  },
  ...CT_FIXTURES.map((f) => ({
    name: `${f.name} (compressed-tensors int4${f.symmetric ? '' : ' with zero points'}, groups of ${groupSize(f.name)})`,
    load: () => loadCTGolden(f.name, 'golden'),
    expect: groupSize(f.name) % 32 === 0 ? LONG : TABLE,
  })),
];

/** The 4-bit decode GEMVs of a forward, as kernel names (`rows4x`, `rows8k4x`, ...) by mode. */
function packedGemvs(dispatched: Dispatched[]): { mode: string; kernel: string }[] {
  return dispatched
    .filter((d) => d.kernel === 'moe_gemv' && ['int4', 'mxfp4'].includes(String(d.variant.wdtype)))
    .map((d) => ({ mode: String(d.variant.mode), kernel: gemvKernelOf(d)! }));
}

describe("the GPU planner's long-row 4-bit decode GEMVs (x in registers) vs transformers goldens", () => {
  for (const c of CASES) {
    it(`${c.name}: token rows 0, 7, 15 at T = 1 on ${c.expect.gate_up} / ${c.expect.down}`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const gpu = Object.create(ctx, { adapterInfo: { value: { ...ctx.adapterInfo, software: false }, enumerable: true } }) as GpuContext;
      const g = c.load();
      const { H } = g;
      await withGemvLongRowsFrom(0, async () => {
        const moe = await MoE.fromHuggingFace({ source: g.dir, layer: 0, device: DeviceRef.GPU(), ctx: gpu });
        // every forward recorded afresh (a replayed graph dispatches nothing the log sees)
        moe.useGraphs = false;
        try {
          for (const r of [0, 7, 15]) {
            const { y, dispatched } = await forwardLogged(gpu, moe, g.input.slice(r * H, (r + 1) * H), 1, H);
            const gemvs = packedGemvs(dispatched);
            expect(gemvs.filter((k) => k.mode === 'gate_up').length, `row ${r}: a 4-bit gate_up GEMV`).toBeGreaterThan(0);
            expect(gemvs.filter((k) => k.mode === 'down').length, `row ${r}: a 4-bit down GEMV`).toBeGreaterThan(0);
            for (const k of gemvs) expect(k.kernel, `row ${r}: ${k.mode}`).toBe(k.mode === 'down' ? c.expect.down : c.expect.gate_up);
            const err = relErr(y, g.output.subarray(r * H, (r + 1) * H));
            expect(err, `row ${r}: rel err ${err}`).toBeLessThan(g.tol);
          }
        } finally {
          moe.destroy();
        }
      });
    }, 300_000);
  }
  it('withGemvLongRowsFrom: a typed error for a column count that is not an integer >= 0, the rule unchanged', async () => {
    await expect(withGemvLongRowsFrom(-1, async () => 0)).rejects.toThrow(/withGemvLongRowsFrom minCols: expected an integer >= 0/);
    await expect(withGemvLongRowsFrom(1.5, async () => 0)).rejects.toThrow(/an integer >= 0/);
  });
});
