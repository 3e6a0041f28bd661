// MoE blocks against transformers' own (fixtures/hf-blocks, made by scripts/fixtures/make-hf-blocks.py) on the CPU
// path: DeepSeek-V2 greedy and group-limited greedy with shared experts, MiniMax-M2, ERNIE 4.5, Granite 4.0 with its
// shared MLP; each golden set's tokens at once (T = 16 and T = 600) and one token at a time.
import { describe, it, expect } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import * as moeLib from '../src/index.js';
import { GOLDEN_SETS, relErr } from './helpers.js';
import { HF_BLOCKS, HF_BLOCK_FIXTURES, loadHFBlockGolden } from './hf-blocks-fixtures.js';

describe('MoE.fromHuggingFace on the CPU vs the transformers goldens of fixtures/hf-blocks', () => {
  for (const f of HF_BLOCK_FIXTURES) {
    it(`${f.name}: float32 weights, every golden set (all its tokens) and the first 3 tokens alone`, async () => {
      const moe = await moeLib.MoE.fromHuggingFace({ source: `${HF_BLOCKS}/${f.name}`, layer: 0, device: DeviceRef.CPU() });
      expect(moe.gate).toBeInstanceOf(moeLib[f.gate]);
      expect(moe.hasSharedExperts).toBe(f.shared);
      for (const set of GOLDEN_SETS) {
        const g = loadHFBlockGolden(f.name, set);
        const err = relErr(await moe.forward(g.input), g.output);
        expect(err, `${f.name} ${set} T=${g.T} rel err ${err}`).toBeLessThan(g.tol);
        for (let t = 0; t < 3; t++) {
          const e1 = relErr(await moe.forward(g.row('input', t)), g.row('output', t));
          expect(e1, `${f.name} ${set} token ${t} rel err ${e1}`).toBeLessThan(g.tol);
        }
      }
    });
  }
});
