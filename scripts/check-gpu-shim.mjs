// The GPU test bundle (scripts/gpu/build-gpu-tests.mjs) runs the GPU test files under scripts/gpu/vitest-shim.ts, not
// vitest: a file that uses a member the shim lacks (`it.for`, `expect.arrayContaining`, a matcher) passes in CI and
// stops the bundle on the GPU machine (session 35: `it.for`). This check reads every GPU test file for
// `it.x` / `test.x` / `describe.x` / `expect.x` members and `.toX(` matchers and fails naming each one the shim does not
// define.
//   node scripts/check-gpu-shim.mjs
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gpuTestFiles } from './gpu/gpu-test-files.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const shim = readFileSync(join(root, 'scripts/gpu/vitest-shim.ts'), 'utf8');

// what the shim defines: it's members (the object given to Object.assign for `it`), describe.x assignments, matcher
// names (keys `toX:` of matchers()), the chain members of expect()'s result (`m.x =`) and expect's own (`expect.x =`)
const itBlock = shim.match(/export const it = Object\.assign\([^,]+,[^{]*\{([\s\S]*?)\n\}\);/);
if (!itBlock) throw new Error('check-gpu-shim: the shim\'s `export const it = Object.assign(..., { ... });` was not found');
const has = {
  it: new Set([...itBlock[1].matchAll(/^\s{2}(\w+):/gm)].map((m) => m[1])),
  describe: new Set([...shim.matchAll(/^describe\.(\w+) =/gm)].map((m) => m[1])),
  matcher: new Set([...shim.matchAll(/^\s+(to[A-Z]\w*): /gm)].map((m) => m[1])),
  chain: new Set([...shim.matchAll(/^\s+m\.(\w+) =/gm)].map((m) => m[1])),
  expect: new Set([...shim.matchAll(/^expect\.(\w+) =/gm)].map((m) => m[1])),
};
for (const [k, v] of Object.entries(has)) if (v.size === 0) throw new Error(`check-gpu-shim: found no ${k} members in the shim (its layout changed?)`);
has.test = has.it;

const files = gpuTestFiles(root);
/** The index just past the parenthesis that closes the one at `open` (strings and comments not told apart: the test files' expect() arguments have balanced parentheses). */
function closing(src, open) {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === '(') depth++;
    else if (src[i] === ')' && --depth === 0) return i + 1;
  }
  return src.length;
}
const missing = [];
for (const f of files) {
  const src = readFileSync(f, 'utf8');
  const where = (at) => `${relative(root, f)}:${src.slice(0, at).split('\n').length}`;
  // it.x / test.x / describe.x / expect.x, not inside a string ('test.inplace') or a longer name
  for (const m of src.matchAll(/(?<![\w.$'"`])(it|test|describe|expect)\.(\w+)/g)) {
    const [, obj, member] = m;
    if (!has[obj].has(member)) missing.push(`${where(m.index)}: ${obj}.${member}`);
  }
  // expect(...) followed by its chain (.not / .resolves / .rejects) and a matcher
  for (const m of src.matchAll(/(?<![\w.$])expect\(/g)) {
    const end = closing(src, m.index + m[0].length - 1);
    const tail = /^\s*((?:\.\s*\w+\s*)+)\(/.exec(src.slice(end));
    if (!tail) continue;
    const chain = tail[1].split('.').map((x) => x.trim()).filter(Boolean);
    const matcher = chain.pop();
    for (const c of chain) if (!has.chain.has(c)) missing.push(`${where(end)}: expect(...).${c}`);
    if (!has.matcher.has(matcher)) missing.push(`${where(end)}: matcher ${matcher}`);
  }
}
if (missing.length) {
  console.error(`check-gpu-shim: ${missing.length} use(s) in GPU test files that scripts/gpu/vitest-shim.ts does not define (the GPU bundle would stop there):`);
  for (const m of missing) console.error(`  ${m}`);
  process.exit(1);
}
console.log(`check-gpu-shim: ${files.length} GPU test files use only what the bundle's vitest shim defines`);
