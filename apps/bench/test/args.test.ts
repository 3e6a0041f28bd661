import { describe, expect, it } from 'vitest';
import { parseArgs, withQuickDefaults } from '../src/args.js';
import { QUICK, DEFAULT_TOKENS } from '../src/models.js';

describe('parseArgs', () => {
  it('defaults and --quick', () => {
    const d = parseArgs([]);
    expect(d.tokens).toEqual(DEFAULT_TOKENS);
    expect(d.models).toHaveLength(5);
    const q = parseArgs(['--quick']);
    expect(q.models).toEqual(QUICK.models);
    expect(q.tokens).toEqual(QUICK.tokens);
  });
  it('flags', () => {
    const o = parseArgs(['--models', 'tiny,qwen3-30b-a3b/s4', '--tokens=1,8', '--dtypes', 'bf16,fp8', '--iters', '7', '--warmup', '0', '--json', 'a.json', '--html', 'b.html', '--device', 'cpu']);
    expect(o).toMatchObject({ models: ['tiny', 'qwen3-30b-a3b/s4'], tokens: [1, 8], dtypes: ['bf16', 'fp8'], iters: 7, warmup: 0, json: 'a.json', html: 'b.html', device: 'cpu' });
  });
  it('explicit flags are remembered (the CLI swaps in --quick on software devices only without them)', () => {
    expect(parseArgs([]).explicit).toBe(false);
    expect(parseArgs(['--json', 'a.json']).explicit).toBe(false);
    expect(parseArgs(['--tokens', '1']).explicit).toBe(true);
    const q = withQuickDefaults(parseArgs(['--json', 'a.json']));
    expect(q).toMatchObject({ quick: true, models: QUICK.models, tokens: QUICK.tokens, json: 'a.json' });
  });
  it('rejects bad input', () => {
    expect(() => parseArgs(['--tokens', '0'])).toThrow(/integer >= 1/);
    expect(() => parseArgs(['--dtypes', 'int3'])).toThrow(/unknown dtype/);
    expect(() => parseArgs(['--models', 'gpt5'])).toThrow(/unknown model/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown option/);
    expect(() => parseArgs(['--peer', 'tfjs'])).toThrow(/onnxruntime/);
  });
});
