// The layer on the GPU, on random configs, against a plain per-token implementation (test/reference.ts).
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { GpuTensor, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, stagedTol, withDispatchLog } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { CASES, buildCase } from './random-cases.js';
import { relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('MoE (GPU) vs an independent per-token implementation', () => {
  CASES.forEach((c, ci) => {
    it(c.name, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      for (const [seed, T] of [[11 + ci, 1], [101 + ci, 13], [201 + ci, 70]] as const) {
        const { sd, w, x } = buildCase(c, seed, T);
        const moe = new MoE({ ...c.opts, dtype: c.dtype, devices: [DeviceRef.GPU()], ctx });
        try {
          moe.loadStateDict(sd);
          expect(moe.gateUpProj.gpuValue.dtype).toBe(c.dtype);
          const want = referenceMoE(c.cfg, w, x, T);
          let tol = 1e-4;
          const got = await gpuChecked(ctx, async () => {
            // Float32Array convenience and GpuTensor input give the same numbers.
            const { result: viaHost, dispatched } = await withDispatchLog(() => moe.forward(x));
            tol = stagedTol(dispatched, 1e-4);
            const xg = GpuTensor.upload(ctx!, new HostTensor('float32', [T, c.cfg.H], x));
            // The whole layer is one submit, with no read back to the host.
            const q = ctx!.device.queue;
            const submit = q.submit.bind(q);
            let submits = 0;
            q.submit = (cbs: Iterable<GPUCommandBuffer>) => {
              submits++;
              return submit(cbs);
            };
            const mapAsync = GPUBuffer.prototype.mapAsync;
            let maps = 0;
            GPUBuffer.prototype.mapAsync = function (...a: Parameters<GPUBuffer['mapAsync']>) {
              maps++;
              return mapAsync.apply(this, a);
            };
            let yg: GpuTensor;
            try {
              yg = await moe.forward(xg);
            } finally {
              q.submit = submit;
              GPUBuffer.prototype.mapAsync = mapAsync;
            }
            expect(submits).toBe(1);
            expect(maps).toBe(0);
            // small T replays a cached graph, which holds its scratch until clearGraphs()
            moe.clearGraphs();
            expect(moe.scratchPool!.liveCount).toBe(0);
            const viaGpu = (await yg.download()).data as Float32Array;
            xg.destroy();
            yg.destroy();
            expect(viaGpu).toEqual(viaHost);
            return viaGpu;
          });
          const err = relErr(got, want);
          expect(err, `${c.name} T=${T}: rel err ${err} (tolerance ${tol})`).toBeLessThan(tol);
        } finally {
          moe.destroy();
        }
      }
    });
  });
});
