// The GPU test files (packages/*/test/*.gpu.test.ts and apps/*/test/*.gpu.test.ts): what the GPU bundle runs
// (build-gpu-tests.mjs) and what check-gpu-shim.mjs reads.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The GPU test files under `root`, absolute paths, package by package. */
export function gpuTestFiles(root) {
  const files = [];
  for (const dir of ['packages', 'apps']) {
    for (const p of readdirSync(join(root, dir))) {
      const t = join(root, dir, p, 'test');
      if (!existsSync(t)) continue;
      for (const f of readdirSync(t)) if (f.endsWith('.gpu.test.ts')) files.push(join(t, f));
    }
  }
  return files;
}
