/**
 * Test support for GPU tests (exported as `@webmoe/kernels-wgsl/testing`).
 * With CI=true a missing adapter fails the test run; elsewhere GPU tests
 * are skipped visibly with the reason printed.
 */
import { createGpuContext, type GpuContext } from './runtime/context.js';

let shared: Promise<GpuContext | null> | undefined;
let reason = '';
let printed = false;

/**
 * The one place that decides whether a test run may skip for lack of a
 * WebGPU adapter or of a peer: true when the environment demands every
 * check (CI=true, CI=1 or WEBMOE_REQUIRE_GPU=1). GPU tests then fail
 * without an adapter; peer tests, see {@link peerRequired}.
 */
export function gpuRequired(): boolean {
  const env = typeof process !== 'undefined' ? process.env : {};
  return env.CI === 'true' || env.CI === '1' || env.WEBMOE_REQUIRE_GPU === '1';
}

/**
 * Whether a test of the optional peer package `name` (onnxruntime-node,
 * ...) must run rather than skip: when the run demands every check
 * ({@link gpuRequired}) and the package is installed where `from` (a file
 * URL or path, e.g. `import.meta.url`) resolves packages. Installed but
 * unloadable then fails; not installed is a visible skip.
 * @example `if (!ort && (await peerRequired('onnxruntime-node', import.meta.url))) throw new Error('...')`
 */
export async function peerRequired(name: string, from: string | URL): Promise<boolean> {
  return gpuRequired() && (await peerInstalled(name, from));
}

/**
 * Whether the package `name` is installed where `from` resolves packages: a
 * `node_modules/<name>/package.json` in the directory of `from` or one above
 * (what an ESM import finds; NODE_PATH, which `pnpm exec` sets, does not count).
 * Does not load the package.
 */
export async function peerInstalled(name: string, from: string | URL): Promise<boolean> {
  const { existsSync } = await import('node:fs');
  const { dirname, join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const start = typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from);
  for (let dir = dirname(start); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules', name, 'package.json'))) return true;
    if (dirname(dir) === dir) return false;
  }
}
