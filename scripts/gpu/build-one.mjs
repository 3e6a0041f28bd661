// Bundles one TypeScript entry for the GPU machine kit (webgpu external).
//   node scripts/gpu/build-one.mjs ENTRY.ts OUT.mjs
// WEBMOE_SRC_ROOT=DIR: take the @webmoe packages' sources from another checkout (e.g. a `git worktree` of an earlier
// commit, for an A/B of two builds in one call), with this checkout's esbuild.
import { build } from 'esbuild';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
const root = resolve(process.env.WEBMOE_SRC_ROOT ?? new URL('../..', import.meta.url).pathname);
const [entry, out] = process.argv.slice(2);
const alias = { '@webmoe/kernels-wgsl/testing': join(root, 'packages/kernels-wgsl/src/testing.ts') };
for (const p of ['tensor', 'kernels-wgsl', 'sharding', 'nn', 'moe']) alias[`@webmoe/${p}`] = join(root, `packages/${p}/src/index.ts`);
for (const sub of ['node', 'testing']) if (existsSync(join(root, `packages/tensor/src/${sub}.ts`))) alias[`@webmoe/tensor/${sub}`] = join(root, `packages/tensor/src/${sub}.ts`);
await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, external: ['webgpu', 'onnxruntime-node'], alias, logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" } });
console.log('bundled', out);
