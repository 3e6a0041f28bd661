// Bundles every GPU test file (packages/*/test/*.gpu.test.ts) into one ES
// module for the GPU machine, with `vitest` replaced by vitest-shim.ts and
// `webgpu` left external (the kit provides it).
//   node scripts/gpu/build-gpu-tests.mjs [.gpu-kit/gpu-tests.mjs]
import { build } from 'esbuild';
import { cpSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gpuTestFiles } from './gpu-test-files.mjs';
const root = resolve(new URL('../..', import.meta.url).pathname);
const out = process.argv[2] ?? join(root, '.gpu-kit/gpu-tests.mjs');
const files = gpuTestFiles(root);
const entry = join(root, 'scripts/gpu/.entry.ts');
writeFileSync(entry, [
  `import { runAll } from './vitest-shim.ts';`,
  `const files: [string, () => Promise<unknown>][] = [`,
  ...files.map((f) => `  [${JSON.stringify(f.slice(root.length + 1))}, () => import(${JSON.stringify(f)})],`),
  `];`,
  `let passed = 0, failed = 0, skipped = 0; const failures: string[] = [];`,
  `const only = process.argv.slice(2);`,
  `for (const [name, load] of files) {`,
  `  if (only.length && !only.some((o) => name.includes(o))) continue;`,
  `  console.log(name); await load(); const s = await runAll(name);`,
  `  passed += s.passed; failed += s.failed; skipped += s.skipped; failures.push(...s.failures);`,
  `}`,
  `for (const f of failures) console.log('FAILED: ' + f.split('\\n')[0]);`,
  `console.log(\`\${passed} passed, \${failed} failed, \${skipped} skipped\`);`,
  `process.exit(failed ? 1 : 0);`,
].join('\n'));
const pk = ['tensor', 'kernels-wgsl', 'sharding', 'nn', 'moe'];
const alias = { vitest: join(root, 'scripts/gpu/vitest-shim.ts'), '@webmoe/kernels-wgsl/testing': join(root, 'packages/kernels-wgsl/src/testing.ts') };
for (const p of pk) alias[`@webmoe/${p}`] = join(root, `packages/${p}/src/index.ts`);
for (const sub of ['node', 'testing']) if (existsSync(join(root, `packages/tensor/src/${sub}.ts`))) alias[`@webmoe/tensor/${sub}`] = join(root, `packages/tensor/src/${sub}.ts`);
await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, external: ['webgpu'], alias, logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" } });
// The loader reaches Node-only helpers with a dynamic import of
// '@webmoe/tensor/node' (kept out of browser bundles), which esbuild cannot
// follow: give the kit a tiny package that resolves it.
const pkgDir = join(out, '..', 'node_modules', '@webmoe', 'tensor');
await build({ entryPoints: [join(root, 'packages/tensor/src/node.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20',
  outfile: join(pkgDir, 'node.mjs'), alias: { '@webmoe/tensor': join(root, 'packages/tensor/src/index.ts') }, logLevel: 'warning' });
writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name: '@webmoe/tensor', type: 'module', exports: { './node': './node.mjs' } }));
// Fixtures that tests find beside their own file (new URL('./fixtures/...', import.meta.url)) sit beside the bundle.
for (const f of ['packages/moe/test/fixtures/compressed-tensors', 'packages/moe/test/fixtures/hf-blocks']) cpSync(join(root, f), join(dirname(out), 'fixtures', f.split('/').pop()), { recursive: true });
console.log(`bundled ${files.length} GPU test files into ${out}`);
