// A minimal stand-in for vitest's test API, so the GPU test files can be
// bundled with esbuild and run on a machine that has a GPU but no
// node_modules (the lent GPU machines). Only what the tests use is here;
// scripts/check-gpu-shim.mjs (run by scripts/test.sh) fails where a GPU test
// file uses an `it.` / `describe.` / `expect.` member or a matcher it lacks.
type Fn = (ctx: TestCtx) => unknown | Promise<unknown>;
interface TestCtx { skip: (reason?: string) => never }
interface Suite { name: string; tests: { name: string; fn: Fn; skip: boolean }[]; before: Fn[]; after: Fn[]; beforeEach: Fn[]; afterEach: Fn[]; children: Suite[] }

const root: Suite = { name: '', tests: [], before: [], after: [], beforeEach: [], afterEach: [], children: [] };
let cur = root;
class SkipSignal extends Error {}

export function describe(name: string, fn: () => void): void {
  const s: Suite = { name, tests: [], before: [], after: [], beforeEach: [], afterEach: [], children: [] };
  cur.children.push(s);
  const prev = cur;
  cur = s;
  fn();
  cur = prev;
}
let skipping = false; // inside a describe that does not run: its tests are registered as skipped
function describeSkipped(name: string, fn: () => void): void {
  const was = skipping;
  skipping = true;
  try {
    describe(name, fn);
  } finally {
    skipping = was;
  }
}
describe.skip = describeSkipped;
describe.runIf = (c: unknown) => (name: string, fn: () => void) => (c ? describe(name, fn) : describeSkipped(name, fn));
describe.skipIf = (c: unknown) => (name: string, fn: () => void) => (c ? describeSkipped(name, fn) : describe(name, fn));
describe.each = (rows: unknown[]) => (name: string, fn: (...a: unknown[]) => void) => rows.forEach((r) => describe(fmt(name, r), () => fn(...(Array.isArray(r) ? r : [r]))));

function fmt(name: string, r: unknown): string {
  const args = Array.isArray(r) ? r : [r];
  let i = 0;
  return name.replace(/%[sdifjo]/g, () => String(args[i++])).replace(/\$(\w+)/g, (_, k) => String((r as Record<string, unknown>)?.[k]));
}

function addTest(name: string, fn: Fn, skip = false): void {
  cur.tests.push({ name, fn, skip: skip || skipping });
}
export const it = Object.assign((name: string, fn: Fn, _t?: number) => addTest(name, fn), {
  skip: (name: string, fn: Fn) => addTest(name, fn, true),
  runIf: (c: boolean) => (name: string, fn: Fn, _t?: number) => addTest(name, fn, !c),
  skipIf: (c: boolean) => (name: string, fn: Fn, _t?: number) => addTest(name, fn, c),
  each: (rows: unknown[]) => (name: string, fn: (...a: unknown[]) => unknown, _t?: number) => rows.forEach((r) => addTest(fmt(name, r), () => fn(...(Array.isArray(r) ? r : [r])))),
  // vitest's test.for: the row as one argument (not spread), then the test context
  for: (rows: unknown[]) => (name: string, fn: (row: unknown, ctx: TestCtx) => unknown, _t?: number) => rows.forEach((r) => addTest(fmt(name, r), (ctx) => fn(r, ctx))),
  concurrent: (name: string, fn: Fn) => addTest(name, fn),
});
export const test = it;
export const beforeAll = (fn: Fn) => cur.before.push(fn);
export const afterAll = (fn: Fn) => cur.after.push(fn);
export const beforeEach = (fn: Fn) => cur.beforeEach.push(fn);
export const afterEach = (fn: Fn) => cur.afterEach.push(fn);
export const vi = { fn: () => () => {} };

/** vitest's asymmetric matchers (expect.arrayContaining, expect.stringMatching): a value that eq and toMatchObject test against. */
class Asymmetric {
  constructor(readonly test: (v: unknown) => boolean, readonly what: string) {}
  toJSON(): string { return this.what; }
}

function eq(a: unknown, b: unknown): boolean {
  if (b instanceof Asymmetric) return b.test(a);
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = a as unknown as ArrayLike<unknown>, y = b as unknown as ArrayLike<unknown>;
    return x.length === y.length && Array.from(x).every((v, i) => Object.is(v, y[i]));
  }
  const ka = Object.keys(a as object), kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => eq((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
/** vitest's toMatchObject: every property of `sub` is in `obj` and matches (objects recursively, arrays element-wise, the rest as eq). */
function matchesObject(obj: unknown, sub: unknown): boolean {
  if (sub instanceof Asymmetric) return sub.test(obj);
  if (sub === null || typeof sub !== 'object') return eq(obj, sub);
  if (obj === null || typeof obj !== 'object') return false;
  if (Array.isArray(sub)) return Array.isArray(obj) && obj.length === sub.length && sub.every((v, i) => matchesObject(obj[i], v));
  return Object.keys(sub as object).every((k) => k in (obj as object) && matchesObject((obj as Record<string, unknown>)[k], (sub as Record<string, unknown>)[k]));
}
function show(v: unknown): string {
  try { return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x))?.slice(0, 200) ?? String(v); } catch { return String(v); }
}

function matchers(actual: unknown, neg: boolean, msg?: string) {
  const check = (ok: boolean, what: string) => {
    if (ok === neg) throw new Error(`${msg ? msg + ': ' : ''}expected ${show(actual)} ${neg ? 'not ' : ''}${what}`);
  };
  const throwsCheck = (err: unknown, m?: unknown) => {
    if (m === undefined) return true;
    if (typeof m === 'function') return err instanceof (m as new () => unknown);
    const message = (err as Error)?.message ?? String(err);
    if (typeof m === 'string') return message.includes(m);
    if (m instanceof RegExp) return m.test(message);
    return true;
  };
  return {
    toBe: (e: unknown) => check(Object.is(actual, e), `to be ${show(e)}`),
    toEqual: (e: unknown) => check(eq(actual, e), `to equal ${show(e)}`),
    toStrictEqual: (e: unknown) => check(eq(actual, e), `to equal ${show(e)}`),
    toMatchObject: (e: unknown) => check(matchesObject(actual, e), `to match object ${show(e)}`),
    toBeLessThan: (e: number) => check((actual as number) < e, `< ${e}`),
    toBeLessThanOrEqual: (e: number) => check((actual as number) <= e, `<= ${e}`),
    toBeGreaterThan: (e: number) => check((actual as number) > e, `> ${e}`),
    toBeGreaterThanOrEqual: (e: number) => check((actual as number) >= e, `>= ${e}`),
    toBeCloseTo: (e: number, d = 2) => check(Math.abs((actual as number) - e) < 10 ** -d / 2, `close to ${e}`),
    toBeTruthy: () => check(!!actual, 'truthy'),
    toBeFalsy: () => check(!actual, 'falsy'),
    toBeDefined: () => check(actual !== undefined, 'defined'),
    toBeUndefined: () => check(actual === undefined, 'undefined'),
    toBeNull: () => check(actual === null, 'null'),
    toBeNaN: () => check(Number.isNaN(actual), 'NaN'),
    toBeInstanceOf: (c: new (...a: never[]) => unknown) => check(actual instanceof c, `instance of ${c.name}`),
    toContain: (e: unknown) => check((actual as { includes(x: unknown): boolean }).includes(e), `to contain ${show(e)}`),
    toMatch: (e: RegExp | string) => check(typeof e === 'string' ? String(actual).includes(e) : e.test(String(actual)), `to match ${e}`),
    toHaveLength: (n: number) => check((actual as { length: number }).length === n, `length ${n}`),
    toHaveProperty: (k: string) => check(actual != null && k in (actual as object), `to have ${k}`),
    toThrow: (m?: unknown) => {
      let err: unknown, threw = false;
      try { (actual as () => unknown)(); } catch (e) { threw = true; err = e; }
      check(threw && throwsCheck(err, m), `to throw ${m ? String(m) : ''} (got ${threw ? (err as Error)?.message : 'no throw'})`);
    },
  };
}
type M = ReturnType<typeof matchers>;
export function expect(actual: unknown, msg?: string): M & { not: M; rejects: { toThrow: (m?: unknown) => Promise<void>; toBeInstanceOf: (c: new (...a: never[]) => unknown) => Promise<void> }; resolves: M } {
  const m = matchers(actual, false, msg) as M & { not: M; rejects: unknown; resolves: unknown };
  m.not = matchers(actual, true, msg);
  m.rejects = {
    toThrow: async (e?: unknown) => {
      try { await actual; } catch (err) { return matchers(() => { throw err; }, false, msg).toThrow(e); }
      throw new Error(`${msg ?? ''} expected promise to reject`);
    },
    toBeInstanceOf: async (c: new (...a: never[]) => unknown) => {
      try { await actual; } catch (err) { return matchers(err, false, msg).toBeInstanceOf(c); }
      throw new Error(`${msg ?? ''} expected promise to reject`);
    },
  };
  m.resolves = matchers(actual, false, msg);
  return m as never;
}
expect.fail = (message?: string): never => {
  throw new Error(message ?? 'expect.fail');
};
expect.arrayContaining = (items: unknown[]) => new Asymmetric((v) => Array.isArray(v) && items.every((x) => v.some((y) => eq(y, x))), `ArrayContaining ${show(items)}`);
expect.stringMatching = (re: RegExp | string) => new Asymmetric((v) => typeof v === 'string' && (typeof re === 'string' ? v.includes(re) : re.test(v)), `StringMatching ${String(re)}`);

export interface RunSummary { passed: number; failed: number; skipped: number; failures: string[] }

/** Runs every registered test (called by the bundle's entry). */
export async function runAll(fileLabel: string): Promise<RunSummary> {
  const sum: RunSummary = { passed: 0, failed: 0, skipped: 0, failures: [] };
  const ctx: TestCtx = { skip: (r?: string) => { throw new SkipSignal(r); } };
  async function runSuite(s: Suite, path: string[], be: Fn[], ae: Fn[]): Promise<void> {
    try { for (const b of s.before) await b(ctx); } catch (e) { sum.failed++; sum.failures.push(`${fileLabel} > ${path.join(' > ')} beforeAll: ${(e as Error).message}`); return; }
    const allBe = [...be, ...s.beforeEach], allAe = [...s.afterEach, ...ae];
    for (const t of s.tests) {
      const name = [...path, t.name].join(' > ');
      if (t.skip) { sum.skipped++; continue; }
      const t0 = performance.now();
      try {
        for (const b of allBe) await b(ctx);
        await t.fn(ctx);
        for (const a of allAe) await a(ctx);
        sum.passed++;
        console.log(`  ok   ${name} (${(performance.now() - t0).toFixed(0)} ms)`);
      } catch (e) {
        if (e instanceof SkipSignal) { sum.skipped++; console.log(`  skip ${name}: ${e.message}`); continue; }
        sum.failed++;
        const m = `${fileLabel} > ${name}: ${(e as Error)?.stack ?? e}`;
        sum.failures.push(m);
        console.log(`  FAIL ${m}`);
      }
    }
    for (const c of s.children) await runSuite(c, [...path, c.name], allBe, allAe);
    for (const a of s.after) { try { await a(ctx); } catch { /* ignore */ } }
  }
  await runSuite(root, [], [], []);
  root.children = []; root.tests = []; root.before = []; root.after = [];
  return sum;
}
