import { describe, it, expect } from 'vitest';
import { findModel } from '../src/models.js';

describe('<model>/e<N>: a layer with fewer routed experts', () => {
  it('keeps H, I, k, shared and the router kind, and changes E and numExperts', () => {
    const m = findModel('deepseek-v3/e32');
    expect([m.name, m.H, m.I, m.E, m.k, m.shared]).toEqual(['deepseek-v3/e32', 7168, 2048, 32, 8, 1]);
    expect(m.router.numExperts).toBe(32);
    expect(m.router.kind).toBe('sigmoid_grouped');
  });
  it('rejects counts the router cannot use', () => {
    expect(() => findModel('deepseek-v3/e12')).toThrow(/multiple of the 8/);
    expect(() => findModel('mixtral-8x7b/e1')).toThrow(/>= k=2/);
  });
});
