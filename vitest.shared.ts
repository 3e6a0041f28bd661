// Shared vitest settings: workspace packages resolve to their TypeScript
// sources, so a package's tests never need another package's dist.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const pkgs = ['tensor', 'kernels-wgsl', 'sharding', 'nn', 'moe'];

export function config(extra: { testTimeout?: number } = {}) {
  return defineConfig({
    resolve: {
      alias: [
        { find: /^@webmoe\/kernels-wgsl\/testing$/, replacement: `${root}packages/kernels-wgsl/src/testing.ts` },
        { find: /^@webmoe\/tensor\/node$/, replacement: `${root}packages/tensor/src/node.ts` },
        ...pkgs.map((p) => ({ find: new RegExp(`^@webmoe/${p}$`), replacement: `${root}packages/${p}/src/index.ts` })),
      ],
    },
    test: {
      include: ['test/**/*.test.ts'],
      pool: 'forks',
      fileParallelism: false,
      testTimeout: extra.testTimeout ?? 300_000, // lavapipe compiles some large unrolled kernels in ~100 s
      hookTimeout: 120_000,
      reporters: ['default'],
    },
  });
}
