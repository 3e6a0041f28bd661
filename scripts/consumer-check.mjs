#!/usr/bin/env node
// The packages as a consumer gets them (scripts/consumer-check.sh runs this).
//
// 1. Packs every publishable package (`pnpm pack`; prepack builds it) and
//    checks each tarball: LICENSE (the root's), README, no build info, every
//    export and bin target present, no `workspace:` ranges, the repository
//    metadata of the root package.json, `default` conditions, `webgpu` never
//    a hard dependency, `@webgpu/types` a dependency wherever the
//    declarations use GPU* types; then publint and are-the-types-wrong
//    (`--profile esm-only`) on the tarball.
// 2. For npm and for pnpm (hoist=false, so an undeclared dependency fails),
//    installs each package ALONE into a scratch project (its @webmoe
//    dependencies from their tarballs through overrides, never the
//    registry), type-checks every entry point under a strict consumer
//    tsconfig (NodeNext, strict, exactOptionalPropertyTypes, skipLibCheck
//    false, `types: []`, target ES2022 so esnext.disposable comes only from
//    our declarations), imports every entry point in Node (and `require()`s
//    it where Node has require(esm)), checks `VERSION`, then compiles and
//    runs the README's examples (fenced as "```ts example"; `fixture=DIR`
//    passes <fixtures>/DIR as argv[2]). GPU examples run on the machine's
//    WebGPU adapter (lavapipe in CI).
// 3. Installs @webmoe/kernels-wgsl without `webgpu` and checks that nothing
//    installs Dawn and that createGpuContext() throws NoAdapterError saying
//    `npm install webgpu`.
//
// Parts 2 and 3 run for npm and pnpm concurrently (two child processes; each
// one's log is printed when it ends).
//
// Usage: node scripts/consumer-check.mjs [--pm npm,pnpm] [--only tensor,moe] [--no-examples] [--keep]
//   WEBMOE_FIXTURES: the fixtures directory (default ../shared/fixtures beside the repository).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const managers = opt('--pm', 'npm,pnpm').split(',');
const only = opt('--only', '') ? opt('--only', '').split(',') : null;
const runExamples = !argv.includes('--no-examples');
const keep = argv.includes('--keep');
// --child --work DIR: one package manager's part (2 and 3) over the tarballs in DIR/tarballs; the parent runs npm's and pnpm's concurrently.
const child = argv.includes('--child');
const fixtures = resolve(process.env.WEBMOE_FIXTURES ?? join(root, '..', 'shared', 'fixtures'));

const work = child ? opt('--work') : mkdtempSync(join(tmpdir(), 'webmoe-consumer-'));
const tarballs = join(work, 'tarballs');
const failures = [];
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
const rootPkg = readJson(join(root, 'package.json'));

function fail(what) {
  failures.push(what);
  console.log(`  FAIL ${what}`);
}
function ok(what) {
  console.log(`  ok   ${what}`);
}
/** Runs a command; returns { status, out } (stdout+stderr). Never throws. */
function sh(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}
/** Runs a command and records a failure (with its output) when it exits non-zero. */
function step(what, cmd, args, cwd, env) {
  const t = Date.now();
  const r = sh(cmd, args, cwd, env);
  if (r.status === 0) ok(`${what} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  else fail(`${what}: \`${cmd} ${args.join(' ')}\` exited ${r.status}\n${indent(r.out.trim().split('\n').slice(-40).join('\n'))}`);
  return r;
}
const bin = (name, dir = root) => join(dir, 'node_modules', '.bin', name);
const indent = (s) => s.replace(/^/gm, '       ');

// ---- the publishable packages --------------------------------------------
const packages = readdirSync(join(root, 'packages'))
  .map((d) => ({ dir: join(root, 'packages', d), short: d }))
  .filter((p) => existsSync(join(p.dir, 'package.json')))
  .map((p) => ({ ...p, pkg: readJson(join(p.dir, 'package.json')) }))
  .filter((p) => !p.pkg.private);
const byName = new Map(packages.map((p) => [p.pkg.name, p]));
const selected = only ? packages.filter((p) => only.includes(p.short)) : packages;

/** The @webmoe packages `name` depends on, transitively (not itself). */
function webmoeDeps(name, seen = new Set()) {
  for (const d of Object.keys(byName.get(name).pkg.dependencies ?? {})) {
    if (byName.has(d) && !seen.has(d)) {
      seen.add(d);
      webmoeDeps(d, seen);
    }
  }
  return seen;
}

// ---- 1. pack and inspect ---------------------------------------------------
function locateTarballs() {
  for (const p of packages) {
    const file = readdirSync(tarballs).find((f) => f === `${p.pkg.name.replace('@', '').replace('/', '-')}-${p.pkg.version}.tgz`);
    if (!file) fail(`${p.pkg.name}: no tarball in ${tarballs}`);
    p.tarball = file ? join(tarballs, file) : null;
  }
}

if (!child) {
  console.log(`consumer-check: work dir ${work}`);
  console.log(`[${elapsed()}] versions: src/version.ts against package.json`);
  step('src/version.ts files match package.json', process.execPath, [join(root, 'scripts', 'version-file.mjs'), '--check'], root);

  console.log(`[${elapsed()}] pack (prepack builds each package)`);
  mkdirSync(tarballs);
  const packed = step('pnpm -r pack', 'pnpm', ['-r', '--filter', './packages/*', 'pack', '--pack-destination', tarballs], root);
  if (packed.status !== 0) finish();
  locateTarballs();

  const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
  const GPU_TYPE = /\bGPU[A-Z][A-Za-z]+\b/;
  const stripComments = (s) => s.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/(?!\/).*$/gm, '');

  for (const p of packages.filter((q) => q.tarball)) {
    const name = p.pkg.name;
    console.log(`[${elapsed()}] ${name}: tarball`);
    const unpacked = join(work, 'unpacked', p.short);
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['xzf', p.tarball, '-C', unpacked]);
    const files = execFileSync('tar', ['tzf', p.tarball], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    const fileSet = new Set(files);
    const read = (f) => readFileSync(join(unpacked, 'package', f), 'utf8');
    const pj = JSON.parse(read('package.json'));
    const check = (cond, what) => (cond ? ok(`${name}: ${what}`) : fail(`${name}: ${what}`));

    check(fileSet.has('LICENSE') && read('LICENSE') === rootLicense, 'LICENSE is the repository LICENSE');
    check(fileSet.has('README.md'), 'README.md included');
    const buildInfo = files.filter((f) => /tsbuildinfo/.test(f));
    check(buildInfo.length === 0, `no build info files${buildInfo.length ? ` (got ${buildInfo.join(', ')})` : ''}`);
    const targets = [];
    for (const [sub, conds] of Object.entries(pj.exports ?? {})) {
      const keys = Object.keys(conds);
      check(keys[0] === 'types' && keys.at(-1) === 'default', `exports["${sub}"] has types first and default last (got ${keys.join(', ')})`);
      targets.push(...Object.values(conds));
    }
    targets.push(pj.main, pj.types, ...Object.values(pj.bin ?? {}));
    const missing = targets.filter((t) => t && !fileSet.has(t.replace(/^\.\//, '')));
    check(missing.length === 0, `every export/main/types/bin target is in the tarball${missing.length ? ` (missing ${missing.join(', ')})` : ''}`);
    const ranges = JSON.stringify({ ...pj.dependencies, ...pj.peerDependencies, ...pj.optionalDependencies });
    check(!ranges.includes('workspace:'), 'no workspace: ranges');
    check(pj.license === rootPkg.license && pj.author === rootPkg.author, `license ${pj.license} and author "${pj.author}" match the root package.json`);
    check(
      pj.repository?.url === rootPkg.repository.url && pj.repository?.directory === `packages/${p.short}`,
      `repository ${pj.repository?.url} (directory ${pj.repository?.directory})`
    );
    check(pj.bugs?.url === rootPkg.bugs.url && typeof pj.homepage === 'string' && pj.homepage.startsWith(rootPkg.homepage.replace(/#readme$/, '')), 'bugs and homepage');
    check(Array.isArray(pj.keywords) && pj.keywords.length > 0, 'keywords');
    check(/\bbuild\b/.test(p.pkg.scripts?.prepack ?? ''), 'prepack builds (package.json; pnpm drops it from the packed manifest)');
    check(!pj.dependencies?.webgpu, 'webgpu is not a dependency');
    const importsWebgpu = files.some((f) => f.startsWith('dist/') && f.endsWith('.js') && /['"]webgpu['"]/.test(read(f)));
    if (importsWebgpu) check(pj.peerDependencies?.webgpu && pj.peerDependenciesMeta?.webgpu?.optional === true, 'webgpu is an optional peer dependency');
    const dts = files.filter((f) => f.endsWith('.d.ts'));
    const usesGpuTypes = dts.some((f) => GPU_TYPE.test(stripComments(read(f))));
    if (usesGpuTypes) check(Boolean(pj.dependencies?.['@webgpu/types']), 'declarations use GPU* types, so @webgpu/types is a dependency');
    step(`${name}: publint`, bin('publint'), ['run', p.tarball, '--strict'], root);
    step(`${name}: attw --profile esm-only`, bin('attw'), ['--profile', 'esm-only', '--no-definitely-typed', '--no-emoji', '--no-color', p.tarball], root);
  }
}

// ---- 2. each package alone, with npm and with pnpm -------------------------
const fileSpec = (name) => `file:${byName.get(name).tarball}`;
const devSpec = (name) => rootPkg.devDependencies[name];
const webgpuSpec = byName.get('@webmoe/kernels-wgsl').pkg.devDependencies.webgpu;
const strictTsconfig = {
  compilerOptions: {
    target: 'ES2022', // its default lib has no esnext.disposable: Symbol.dispose must come from the packages' own declarations
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    skipLibCheck: false,
    types: [], // no @types/node, no @webgpu/types unless the packages bring them
    noEmit: true,
  },
  include: ['entry-types.ts'],
};
const examplesTsconfig = {
  extends: './tsconfig.json',
  compilerOptions: { types: ['node'], noEmit: false, outDir: 'out', rootDir: 'examples' },
  include: ['examples/*.ts'],
};

/** The README's examples: fenced blocks whose info string is `ts example [fixture=DIR]`. */
function readmeExamples(p) {
  const text = readFileSync(join(p.dir, 'README.md'), 'utf8');
  const out = [];
  for (const m of text.matchAll(/^```ts example([^\n]*)\n([\s\S]*?)^```$/gm)) {
    const fixture = /fixture=(\S+)/.exec(m[1])?.[1];
    out.push({ code: m[2], fixture });
  }
  return out;
}

/** What the README's first `npm install` line installs: the packages a reader of its examples adds. */
function readmeInstall(p) {
  const line = /^npm install ([^\n#]+)/m.exec(readFileSync(join(p.dir, 'README.md'), 'utf8'));
  return line ? line[1].trim().split(/\s+/) : [];
}

/**
 * A scratch project that installs `names` as a reader would (@webmoe
 * packages from their tarballs, `webgpu` at the version the workspace
 * tests), every @webmoe package below them overridden to its tarball.
 */
function consumerProject(pm, names, dir) {
  mkdirSync(dir, { recursive: true });
  const ours = names.filter((n) => byName.has(n));
  const below = new Set(ours.flatMap((n) => [n, ...webmoeDeps(n)]));
  const overrides = Object.fromEntries([...below].map((d) => [d, fileSpec(d)]));
  const spec = (n) => (byName.has(n) ? fileSpec(n) : n === 'webgpu' ? webgpuSpec : null);
  const unknown = names.filter((n) => spec(n) === null);
  if (unknown.length) fail(`${dir}: the README installs ${unknown.join(', ')}, which this check does not know`);
  const pj = {
    name: `consumer-${dir.split('/').slice(-2).join('-')}`,
    private: true,
    type: 'module',
    dependencies: Object.fromEntries(names.filter((n) => spec(n) !== null).map((n) => [n, spec(n)])),
    devDependencies: { typescript: devSpec('typescript'), '@types/node': devSpec('@types/node') },
  };
  if (pm === 'npm') pj.overrides = overrides;
  else pj.pnpm = { overrides };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pj, null, 2));
  if (pm === 'pnpm') writeFileSync(join(dir, '.npmrc'), 'hoist=false\n');
  return dir;
}

const install = (pm, dir, what) =>
  pm === 'npm'
    ? step(`${what}: npm install`, 'npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], dir)
    : step(`${what}: pnpm install`, 'pnpm', ['install', '--ignore-workspace', '--reporter=append-only'], dir);

/** The @webmoe packages a scratch project installed must come from our tarballs, never the registry. */
function assertFromTarballs(pm, dir, what) {
  const lock = pm === 'npm' ? readFileSync(join(dir, 'package-lock.json'), 'utf8') : readFileSync(join(dir, 'pnpm-lock.yaml'), 'utf8');
  const fromRegistry = /registry\.npmjs\.org\/@webmoe\//.test(lock);
  if (fromRegistry) fail(`${what}: an @webmoe package was resolved from the registry instead of a tarball`);
  else ok(`${what}: every @webmoe package came from a tarball`);
}

const ENV = { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg-runtime' };

/** Parts 2 and 3 for one package manager. */
function consumers(pm) {
  for (const p of selected.filter((q) => q.tarball)) {
    const what = `${pm} ${p.pkg.name}`;
    console.log(`[${elapsed()}] ${what}: alone in a scratch project`);
    const names = readmeInstall(p);
    if (!names.includes(p.pkg.name)) {
      fail(`${what}: README.md has no \`npm install ${p.pkg.name} ...\` line`);
      continue;
    }
    console.log(`  (as the README says: npm install ${names.join(' ')})`);
    const dir = consumerProject(pm, names, join(work, pm, p.short));
    if (install(pm, dir, what).status !== 0) continue;
    assertFromTarballs(pm, dir, what);

    // Every entry point, type-checked by a strict consumer with nothing else configured.
    const subpaths = Object.keys(p.pkg.exports).map((s) => (s === '.' ? p.pkg.name : `${p.pkg.name}/${s.slice(2)}`));
    writeFileSync(
      join(dir, 'entry-types.ts'),
      subpaths.map((s, i) => `import * as entry${i} from '${s}';\n`).join('') +
        `export const entries: object[] = [${subpaths.map((_, i) => `entry${i}`).join(', ')}];\nexport const version: string = entry0.VERSION;\n`
    );
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(strictTsconfig, null, 2));

    // Every entry point loads in Node; VERSION is the package.json version; require() works where Node has require(esm).
    const load = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const subpaths = ${JSON.stringify(subpaths)};
      for (const s of subpaths) await import(s);
      const m = await import(subpaths[0]);
      if (m.VERSION !== ${JSON.stringify(p.pkg.version)}) throw new Error('VERSION is ' + m.VERSION + ', package.json says ${p.pkg.version}');
      if (process.features.require_module) for (const s of subpaths) require(s);
      console.log('loaded', subpaths.join(', '), 'VERSION', m.VERSION, process.features.require_module ? '(and require())' : '');`;
    step(`${what}: every entry point loads in Node and VERSION = ${p.pkg.version}`, process.execPath, ['--input-type=module', '-e', load], dir);

    // The README's examples, compiled under the same strict settings (plus Node's types), in the
    // same tsc run as the entry points (two projects, one `tsc -b`), then run.
    const examples = readmeExamples(p);
    if (examples.length === 0) fail(`${what}: README.md has no \`\`\`ts example block`);
    mkdirSync(join(dir, 'examples'), { recursive: true });
    examples.forEach((e, i) => writeFileSync(join(dir, 'examples', `readme-${i + 1}.ts`), e.code));
    writeFileSync(join(dir, 'tsconfig.examples.json'), JSON.stringify(examplesTsconfig, null, 2));
    const built = step(
      `${what}: a strict TypeScript consumer type-checks ${subpaths.join(', ')} and the README's ${examples.length} example(s)`,
      bin('tsc', dir),
      ['-b', 'tsconfig.json', ...(examples.length ? ['tsconfig.examples.json'] : [])],
      dir
    );
    if (built.status !== 0 || !runExamples) continue;
    examples.forEach((e, i) => {
      const args = e.fixture ? [join(fixtures, e.fixture)] : [];
      const t = Date.now();
      const r = step(`${what}: README example ${i + 1} runs`, process.execPath, [join('out', `readme-${i + 1}.js`), ...args], dir, ENV);
      if (r.status === 0) console.log(indent(`${r.out.trim()}\n(${((Date.now() - t) / 1000).toFixed(1)} s)`));
    });
  }

  // ---- 3. Node without the optional webgpu peer ----------------------------------
  const kernels = byName.get('@webmoe/kernels-wgsl');
  if (kernels?.tarball && (!only || only.includes('kernels-wgsl'))) {
    const what = `${pm} @webmoe/kernels-wgsl without webgpu`;
    console.log(`[${elapsed()}] ${what}`);
    const dir = consumerProject(pm, [kernels.pkg.name], join(work, pm, 'no-webgpu'));
    const probe = `
      import { existsSync, readdirSync } from 'node:fs';
      import { createGpuContext, NoAdapterError } from '@webmoe/kernels-wgsl';
      const store = existsSync('node_modules/.pnpm') ? readdirSync('node_modules/.pnpm') : [];
      if (existsSync('node_modules/webgpu') || store.some((d) => d.startsWith('webgpu@'))) throw new Error('webgpu was installed although nobody asked for it');
      try {
        await createGpuContext();
        throw new Error('createGpuContext() succeeded without the webgpu package');
      } catch (e) {
        if (!(e instanceof NoAdapterError) || !e.message.includes('npm install webgpu')) throw e;
        console.log('NoAdapterError:', e.message);
      }`;
    const r =
      install(pm, dir, what).status !== 0
        ? { status: 1 }
        : step(`${what}: nothing installs Dawn; createGpuContext() throws NoAdapterError saying npm install webgpu`, process.execPath, ['--input-type=module', '-e', probe], dir);
    if (r.status === 0)
      console.log(
        indent(`${r.out.trim()}\nnode_modules: ${execFileSync('du', ['-sh', 'node_modules'], { cwd: dir, encoding: 'utf8' }).split('\t')[0]} (typescript and @types/node included)`)
      );
  }
}

// Parts 2 and 3: in this process for one package manager, else one child process per manager, concurrently.
if (child) {
  locateTarballs();
  for (const pm of managers) consumers(pm);
  finish();
} else if (managers.length === 1) consumers(managers[0]);
else {
  console.log(`[${elapsed()}] ${managers.join(' and ')} consumers, concurrently (each one's log follows when it ends)`);
  const passOn = [...(only ? ['--only', only.join(',')] : []), ...(runExamples ? [] : ['--no-examples'])];
  const runs = managers.map(
    (pm) =>
      new Promise((done) => {
        const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', '--work', work, '--pm', pm, ...passOn], { stdio: ['ignore', 'pipe', 'pipe'] });
        let log = '';
        c.stdout.on('data', (d) => (log += d));
        c.stderr.on('data', (d) => (log += d));
        c.on('close', (code) => {
          console.log(`---- ${pm} (ended at ${elapsed()}) ----\n${log.trimEnd()}`);
          if (code !== 0) failures.push(`${pm} consumers: exit status ${code} (see its log above)`);
          done();
        });
      })
  );
  await Promise.all(runs);
}

// ---- 4. a publish dry run of every package ----------------------------------------
if (!only) {
  console.log(`[${elapsed()}] publish dry run`);
  // --ignore-scripts: prepack already built everything above.
  step('pnpm -r publish --dry-run --no-git-checks', 'pnpm', ['-r', '--filter', './packages/*', 'publish', '--dry-run', '--no-git-checks', '--ignore-scripts'], root);
}
finish();

function finish() {
  const who = child ? `consumer-check (${managers.join(', ')})` : 'consumer-check';
  console.log(`${who}: ${failures.length === 0 ? 'all passed' : `${failures.length} failed`} in ${elapsed()}`);
  for (const f of failures) console.log(`  - ${f.split('\n')[0]}`);
  if (child) process.exit(failures.length === 0 ? 0 : 1);
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`consumer-check: kept ${work}`);
  process.exit(failures.length === 0 ? 0 : 1);
}
