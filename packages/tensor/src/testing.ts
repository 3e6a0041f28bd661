/**
 * Helpers for the tests of every package (`@webmoe/tensor/testing`): the one
 * seeded PRNG (`@webmoe/kernels-wgsl/testing` re-exports it).
 */

/**
 * A seeded PRNG (mulberry32) for reproducible random tests: uniform values in [0, 1).
 * @example `const r = rng(1); r() // 0.627...`
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
