// Quantized experts sharded over WebGPU devices (3 GPUDevices of the test adapter; sub-groups of 2 reuse them): the
// quantized fixtures under EP 2 against the unsharded layer on one device (1e-5) and the goldens, and the random
// quantize()-built layers of every format (test/quant-shard-cases.ts) under TP 2, TP 3 and EP 2 against the unsharded
// layer on one device and the host reference path. The random cases run twice: on the adapter as it is, and (where it
// lacks the subgroup-matrix feature, e.g. lavapipe) through context views whose planner sees the H200's adapter, with
// the subgroup-matrix builtins emulated (withEmulatedSubgroupMatrix), so that the kernel mix the H200 runs is checked here.
//
// Tolerance between the sharded and the unsharded GPU layer: each shard plans its own kernels from its own shapes
// (moeDim and sharedExpertsDim per shard, experts per rank), so the two sides can run different kernels. The f32
// kernels (tiled GEMMs, decode GEMVs, f32 fast GEMMs) differ only in summation order: 1e-5. Where one side ran an
// f16-staged GEMM (the subgroup-matrix kernel: x and the decoded weights rounded to f16, relative 2^-11 each, f32
// accumulation; stagedTol's 2e-3 against f32) and the other did not, or both did on different slices, the two results
// are each within their kernels' tolerance of the f32 result, so within the sum of the two of each other. Seen on the
// H200 (reproduced here by the emulated views): the GPT-OSS-like fp8 case at T = 70, TP 2: the unsharded down GEMM
// (K = I = 44, not a multiple of 8) is tiled f32 while shard 0's (K = 32) takes the subgroup-matrix kernel; the
// Llama-4-like int8 case at T = 9, TP 2: the unsharded layer's shared expert (S = 20: no decode GEMV, whose columns
// must be a multiple of 8) runs its gate_up on the subgroup-matrix kernel (9 rows of one expert) while shard 0's
// (S = 16) runs the f32 decode GEMV.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { stagedTol, testGpu, withDispatchLog, withEmulatedSubgroupMatrix, type Dispatched } from '@webmoe/kernels-wgsl/testing';
import { DeviceGroup, ShardingError, ShardingStrategy } from '@webmoe/sharding';
import { MoE } from '../src/index.js';
import { FIXTURES, goldenTensors, relErr } from './helpers.js';
import { quantizedCase } from './quant-cases.js';
import { QUANT_SHARD_CASES } from './quant-shard-cases.js';

const TOL = 1e-5;
let group: DeviceGroup | null = null;
/** Sub-groups of 2 and 3 devices: of the adapter as it is ('adapter'), and of views that emulate the H200's subgroup-matrix kernel ('h200'). */
const sub = { adapter: new Map<number, DeviceGroup>(), h200: new Map<number, DeviceGroup>() };
type Planner = keyof typeof sub;
beforeAll(async () => {
  if (!(await testGpu())) return; // testGpu prints why (and throws under CI=true)
  group = await DeviceGroup.create(3, { placement: 'same-adapter', context: { label: 'sharded-quant' } });
  const views = group.contexts.map(withEmulatedSubgroupMatrix);
  for (const n of [2, 3]) {
    sub.adapter.set(n, DeviceGroup.fromContexts(group.contexts.slice(0, n)));
    sub.h200.set(n, DeviceGroup.fromContexts(views.slice(0, n)));
  }
});
afterAll(() => {
  group?.destroy();
});

/** Whether a dispatch log holds an f16-staged GEMM (what stagedTol relaxes for). */
const staged = (log: readonly Dispatched[]) => stagedTol(log, 0) > 0;

/** Tolerance between two GPU results of the same layer: 1e-5 for f32 kernels on both sides, else the sum of each side's allowance against f32. */
function pairTol(a: readonly Dispatched[], b: readonly Dispatched[]): number {
  return staged(a) || staged(b) ? stagedTol(a, 0) + stagedTol(b, 0) : TOL;
}

function noGpuErrors(what: string, contexts: readonly GpuContext[] = group!.contexts): void {
  for (const ctx of contexts) expect(ctx.takeUncapturedErrors(), `${what}: GPU errors`).toEqual([]);
}

describe('quantized experts sharded on GPU devices', () => {
  for (const [arch, aq, golden, tol] of [
    ['deepseek_v3_fp8', 'dynamic', 'output_w8a8', 1e-3],
    ['deepseek_v3_fp8', 'none', 'output_weight_only', 1e-4],
    ['gpt_oss_mxfp4', 'none', 'output', 1e-4],
  ] as const) {
    it(`${arch} (${aq} activations): EP 2 equals the unsharded GPU layer within 1e-5 and the golden; TP 2 a ShardingError`, async (c) => {
      if (!group) return c.skip('no WebGPU adapter');
      const g = goldenTensors(arch);
      const x = g.get('input')!.values;
      const host = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, activationQuant: aq });
      const one = await MoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, activationQuant: aq, device: DeviceRef.GPU(), ctx: group.context(0) });
      const want = await one.forward(x);
      one.destroy();
      const s = host.shard(sub.adapter.get(2)!, ShardingStrategy.expertParallel(2));
      try {
        expect(s.shards.every((m) => m.device.isGpu())).toBe(true);
        const y = await s.forward(x);
        const err = relErr(y, want);
        expect(err, `EP 2 GPU: rel err ${err}`).toBeLessThan(TOL);
        expect(relErr(y, g.get(golden)!.values), 'EP 2 GPU vs golden').toBeLessThan(tol);
        noGpuErrors(`${arch} EP 2`);
      } finally {
        s.destroy();
      }
      expect(() => host.shard(sub.adapter.get(2)!, ShardingStrategy.tensorParallel(2))).toThrow(ShardingError);
      host.destroy();
    }, 300_000);
  }

  for (const planner of ['adapter', 'h200'] as const) {
    QUANT_SHARD_CASES.forEach((qc, ci) => {
      it(`${planner === 'h200' ? "the H200's planner (subgroup-matrix builtins emulated): " : ''}${qc.case.name}: TP 2, TP 3, EP 2 equal the unsharded GPU layer (T = 9: decode GEMVs, T = 70: tiled / fast GEMMs)`, async (c) => {
        if (!group) return c.skip('no WebGPU adapter');
        if (planner === 'h200' && group.context(0).features.subgroupMatrix) return c.skip('the adapter has the subgroup-matrix kernel: the tests above run its real builtins');
        const relaxed: string[] = [];
        for (const T of [9, 70]) await checkCase(planner, qc, 5200 + 10 * ci + T, T, relaxed);
        // the emulation reaches the comparisons that failed the 1e-5 check on the H200 (the file's comment)
        if (planner === 'h200') expect(relaxed).toEqual(expect.arrayContaining(H200_STAGED[ci] ?? []));
      }, 600_000);
    });
  }
});

/** Comparisons (by case index) that failed the 1e-5 check on the H200 (2026-12-04): f16-staged GEMMs on one side at least. */
const H200_STAGED: Partial<Record<number, string[]>> = { 3: ['T = 70 tensor_parallel 2'], 4: ['T = 9 tensor_parallel 2'] };

/**
 * One random case at T tokens: the sharded layer on 2 or 3 devices against the unsharded one on device 0, and both
 * against the host path. `relaxed` collects the comparisons that take the f16-staged tolerance (`T = <T> <strategy> <n>`). */
async function checkCase(planner: Planner, qc: (typeof QUANT_SHARD_CASES)[number], seed: number, T: number, relaxed: string[]): Promise<void> {
  const groups = sub[planner];
  const { moe: host, x } = quantizedCase(qc.case, qc.fmt, seed, T, undefined, undefined, qc.activationQuant);
  const { moe: one } = quantizedCase(qc.case, qc.fmt, seed, T, [DeviceRef.GPU()], groups.get(2)!.context(0), qc.activationQuant);
  const ref = host.forwardHost(x, T);
  // f32 kernels: 1e-4 against the host; the f16-staged prefill kernels (subgroup-matrix, where the adapter has them): 2e-3
  const { result: want, dispatched: oneLog } = await withDispatchLog(() => one.forward(x));
  one.destroy();
  const kernels = (log: Dispatched[]) => [...new Set(log.map((d) => d.kernel))].join(', ');
  expect(relErr(want, ref), `T = ${T}: unsharded GPU vs host (kernels ${kernels(oneLog)})`).toBeLessThan(stagedTol(oneLog, 1e-4));
  for (const [n, st] of [[2, ShardingStrategy.tensorParallel(2)], [3, ShardingStrategy.tensorParallel(3)], [2, ShardingStrategy.expertParallel(2)]] as const) {
    const s = host.shard(groups.get(n)!, st);
    try {
      const { result: y, dispatched } = await withDispatchLog(() => s.forward(x));
      const tag = `T = ${T} ${st.kind} ${n}`;
      const err = relErr(y, want);
      const tol = pairTol(oneLog, dispatched);
      if (tol > TOL) relaxed.push(tag);
      expect(err, `${tag} GPU: rel err ${err} vs the unsharded GPU layer, tolerance ${tol} (kernels: unsharded ${kernels(oneLog)}; sharded ${kernels(dispatched)})`).toBeLessThan(tol);
      expect(relErr(y, ref), `${tag} GPU vs host`).toBeLessThan(stagedTol(dispatched, 1e-4));
      noGpuErrors(`${qc.case.name} ${st.kind} ${n}`, groups.get(n)!.contexts);
    } finally {
      s.destroy();
    }
  }
  host.destroy();
}
