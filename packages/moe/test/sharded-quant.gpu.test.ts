// Quantized experts sharded over WebGPU devices (3 GPUDevices of the test adapter; sub-groups of 2 reuse them): the
// quantized fixtures under EP 2 against the unsharded layer on one device (1e-5) and the goldens, and the random
// quantize()-built layers of every format (test/quant-shard-cases.ts) under TP 2, TP 3 and EP 2 against the unsharded
// layer on one device (1e-5) and the host reference path (1e-4).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { stagedTol, testGpu, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { DeviceGroup, ShardingError, ShardingStrategy } from '@webmoe/sharding';
import { MoE } from '../src/index.js';
import { FIXTURES, goldenTensors, relErr } from './helpers.js';
import { quantizedCase } from './quant-cases.js';
import { QUANT_SHARD_CASES } from './quant-shard-cases.js';

const TOL = 1e-5;
let group: DeviceGroup | null = null;
const sub = new Map<number, DeviceGroup>();
beforeAll(async () => {
  if (!(await testGpu())) return; // testGpu prints why (and throws under CI=true)
  group = await DeviceGroup.create(3, { placement: 'same-adapter', context: { label: 'sharded-quant' } });
  sub.set(2, DeviceGroup.fromContexts(group.contexts.slice(0, 2)));
  sub.set(3, group);
});
afterAll(() => {
  group?.destroy();
});

function noGpuErrors(what: string): void {
  for (const ctx of group!.contexts) expect(ctx.takeUncapturedErrors(), `${what}: GPU errors`).toEqual([]);
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
      const s = host.shard(sub.get(2)!, ShardingStrategy.expertParallel(2));
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
      expect(() => host.shard(sub.get(2)!, ShardingStrategy.tensorParallel(2))).toThrow(ShardingError);
      host.destroy();
    }, 300_000);
  }

  QUANT_SHARD_CASES.forEach((qc, ci) => {
    it(`${qc.case.name}: TP 2, TP 3, EP 2 equal the unsharded GPU layer within 1e-5 (T = 9: decode GEMVs, T = 70: tiled GEMMs)`, async (c) => {
      if (!group) return c.skip('no WebGPU adapter');
      for (const T of [9, 70]) await checkCase(qc, 5200 + 10 * ci + T, T);
    }, 300_000);
  });
});

/** One random case at T tokens: the sharded layer on 2 or 3 devices against the unsharded one on device 0. */
async function checkCase(qc: (typeof QUANT_SHARD_CASES)[number], seed: number, T: number): Promise<void> {
  const { moe: host, x } = quantizedCase(qc.case, qc.fmt, seed, T, undefined, undefined, qc.activationQuant);
  const { moe: one } = quantizedCase(qc.case, qc.fmt, seed, T, [DeviceRef.GPU()], group!.context(0), qc.activationQuant);
  // f32 kernels: 1e-4 against the host; the f16-staged prefill kernels (subgroup-matrix, where the adapter has them): 2e-3
  const { result: want, dispatched } = await withDispatchLog(() => one.forward(x));
  one.destroy();
  expect(relErr(want, host.forwardHost(x, T)), `T = ${T}: unsharded GPU vs host (kernels ${[...new Set(dispatched.map((d) => d.kernel))].join(', ')})`).toBeLessThan(stagedTol(dispatched, 1e-4));
  for (const [n, st] of [[2, ShardingStrategy.tensorParallel(2)], [3, ShardingStrategy.tensorParallel(3)], [2, ShardingStrategy.expertParallel(2)]] as const) {
    const s = host.shard(sub.get(n)!, st);
    try {
      const y = await s.forward(x);
      const err = relErr(y, want);
      expect(err, `T = ${T} ${st.kind} ${n} GPU: rel err ${err}`).toBeLessThan(TOL);
      noGpuErrors(`${qc.case.name} ${st.kind} ${n}`);
    } finally {
      s.destroy();
    }
  }
  host.destroy();
}
