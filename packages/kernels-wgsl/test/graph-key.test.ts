import { describe, it, expect } from 'vitest';
import { rng } from '@webmoe/tensor/testing';
import { GraphKeyMemo, forwardGraphKey } from '../src/runtime/graph-key.js';

describe('GraphKeyMemo', () => {
  it('gives forwardGraphKey of each call over random changes of T, kernels and buffers (swapped, added, dropped)', () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const pool = Array.from({ length: 12 }, (_, i) => ({ name: `buffer ${i}` }));
      const memo = new GraphKeyMemo();
      let buffers = pool.slice(0, 6);
      for (let step = 0; step < 400; step++) {
        const change = r();
        if (change < 0.1) buffers = buffers.map((b) => (r() < 0.3 ? pool[Math.floor(r() * pool.length)] : b)); // weights swapped
        else if (change < 0.15 && buffers.length > 1) buffers = buffers.slice(0, -1); // one buffer fewer
        else if (change < 0.2) buffers = [...buffers, pool[Math.floor(r() * pool.length)]]; // one more
        // mostly decode steps, and prompts of many lengths (past the memo's 64 token counts)
        const T = r() < 0.5 ? 1 : 1 + Math.floor(r() * 200);
        const kernels = r() < 0.9 ? 'auto' : 'fma';
        expect(memo.key(T, kernels, buffers)).toBe(forwardGraphKey(T, kernels, buffers));
      }
    }
  });

  it('tells a layer whose buffer was replaced from the one before, at the same T (the key a replay must not reuse)', () => {
    const memo = new GraphKeyMemo();
    const [a, b, c] = [{}, {}, {}];
    const before = memo.key(1, 'auto', [a, b]);
    expect(memo.key(1, 'auto', [a, b])).toBe(before);
    const swapped = memo.key(1, 'auto', [a, c]);
    expect(swapped).not.toBe(before);
    expect(memo.key(1, 'auto', [a])).not.toBe(before);
    expect(memo.key(1, 'auto', [a, b, c])).not.toBe(before);
    expect(memo.key(1, 'auto', [a, b])).toBe(before);
  });
});
