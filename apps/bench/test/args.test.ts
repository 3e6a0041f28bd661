import { describe, expect, it } from 'vitest';
import { parseArgs, withQuickDefaults } from '../src/args.js';
import { plan } from '../src/bench.js';
import { QUICK, DEFAULT_TOKENS, MODELS } from '../src/models.js';

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
    expect(parseArgs([]).warmupMs).toBe(300);
    expect(parseArgs(['--warmup-ms', '0']).warmupMs).toBe(0);
    expect(parseArgs([]).drainEach).toBeUndefined();
    expect(parseArgs(['--drain-each']).drainEach).toBe(true);
  });
  it('--stack / --stack-gib: 48 layers by default, 8 with --quick (also when swapped in), the given N otherwise', () => {
    expect(parseArgs([]).stack).toBe(48);
    expect(parseArgs(['--quick']).stack).toBe(8);
    expect(withQuickDefaults(parseArgs([])).stack).toBe(8);
    expect(withQuickDefaults(parseArgs(['--stack', '5'])).stack).toBe(5);
    expect(parseArgs(['--quick', '--stack=12', '--stack-gib', '2.5'])).toMatchObject({ stack: 12, stackGib: 2.5 });
    expect(() => parseArgs(['--stack', '0'])).toThrow(/--stack/);
    expect(() => parseArgs(['--stack-gib', '-1'])).toThrow(/--stack-gib/);
  });
  it('explicit flags are remembered (the CLI swaps in --quick on software devices only without them)', () => {
    expect(parseArgs([]).explicit).toBe(false);
    expect(parseArgs(['--json', 'a.json']).explicit).toBe(false);
    expect(parseArgs(['--tokens', '1']).explicit).toBe(true);
    const q = withQuickDefaults(parseArgs(['--json', 'a.json']));
    expect(q).toMatchObject({ quick: true, models: QUICK.models, tokens: QUICK.tokens, json: 'a.json' });
  });
  it('packed dtypes: --dtypes int4,int8,mxfp4 for any model; GPT-OSS defaults to bf16 + mxfp4; --peer onnxruntime adds int4 to the defaults', () => {
    const o = parseArgs(['--models', 'tiny,mixtral-8x7b,deepseek-v3/s16', '--dtypes', 'int4,int8,mxfp4']);
    expect(o.dtypes).toEqual(['int4', 'int8', 'mxfp4']);
    expect(plan(o).map((p) => `${p.spec.name} ${p.dtype}`)).toEqual([
      'tiny int4', 'tiny int8', 'tiny mxfp4', 'mixtral-8x7b int4', 'mixtral-8x7b int8', 'mixtral-8x7b mxfp4', 'deepseek-v3/s16 int4', 'deepseek-v3/s16 int8', 'deepseek-v3/s16 mxfp4',
    ]);
    const names = (args: string[]) => plan(parseArgs(args)).map((p) => `${p.spec.name} ${p.dtype}`);
    expect(names([])).toEqual(['mixtral-8x7b bf16', 'qwen3-30b-a3b bf16', 'gpt-oss-20b bf16', 'gpt-oss-20b mxfp4', 'deepseek-v2-lite bf16', 'deepseek-v3 bf16', 'deepseek-v3 fp8']);
    expect(names(['--quick'])).toContain('gpt-oss-20b/s8 mxfp4');
    expect(names(['--peer', 'onnxruntime'])).toEqual([
      'mixtral-8x7b bf16', 'mixtral-8x7b int4', 'qwen3-30b-a3b bf16', 'qwen3-30b-a3b int4', 'gpt-oss-20b bf16', 'gpt-oss-20b mxfp4', 'gpt-oss-20b int4',
      'deepseek-v2-lite bf16', 'deepseek-v2-lite int4', 'deepseek-v3 bf16', 'deepseek-v3 fp8', 'deepseek-v3 int4',
    ]);
    // an explicit --dtypes is kept as given, peer or not
    expect(names(['--models', 'tiny', '--dtypes', 'bf16', '--peer', 'onnxruntime'])).toEqual(['tiny bf16']);
    expect(MODELS.find((m) => m.name === 'gpt-oss-20b')!.dtypes).toEqual(['bf16', 'mxfp4']);
  });
  it('rejects bad input', () => {
    expect(() => parseArgs(['--tokens', '0'])).toThrow(/integer >= 1/);
    expect(() => parseArgs(['--dtypes', 'int3'])).toThrow(/unknown dtype 'int3' \(bf16, f16, f32, fp8, int4, int8, mxfp4\)/);
    expect(() => parseArgs(['--models', 'gpt5'])).toThrow(/unknown model/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown option/);
    expect(() => parseArgs(['--peer', 'tfjs'])).toThrow(/onnxruntime/);
  });
});
