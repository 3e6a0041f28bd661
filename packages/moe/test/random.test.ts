// The layer on a random config (not from a fixture) against a plain per-token implementation (test/reference.ts).
import { describe, it, expect } from 'vitest';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { MoE } from '../src/index.js';
import { referenceMoE } from './reference.js';
import { CASES, buildCase } from './random-cases.js';
import { relErr } from './helpers.js';

describe('MoE (CPU) vs an independent per-token implementation', () => {
  CASES.forEach((c, ci) => {
    it(c.name, async () => {
      for (const [seed, T] of [[11 + ci, 1], [101 + ci, 13]] as const) {
        const { sd, w, x } = buildCase(c, seed, T);
        const moe = new MoE({ ...c.opts, dtype: c.dtype, devices: [DeviceRef.CPU()] });
        moe.loadStateDict(sd);
        const want = referenceMoE(c.cfg, w, x, T);
        const got = await moe.forward(new HostTensor('float32', [T, c.cfg.H], x));
        expect(got.shape).toEqual([T, c.cfg.H]);
        const err = relErr(got.data as Float32Array, want);
        expect(err, `${c.name} T=${T}: rel err ${err}`).toBeLessThan(1e-5);
      }
    });
  });
});
