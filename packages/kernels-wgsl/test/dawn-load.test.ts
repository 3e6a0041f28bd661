// loadDawn: how Node without the optional `webgpu` peer fails. The missing
// module is simulated with the error Node itself raises: a child process
// imports 'webgpu' from an empty temporary directory and reports the error's
// code and message, which the importer given to loadDawn then throws.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValueError, WebMoEError } from '@webmoe/tensor';
import { NoAdapterError } from '../src/index.js';
import { DAWN_NODE_TOGGLES, dawnNodeToggles, describeAdapter, loadDawn, WEBGPU_MISSING } from '../src/runtime/context.js';

/** The error Node throws for `import('webgpu')` where no `webgpu` package can be found. */
function nodeMissingWebgpuError(): Error & { code?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'webmoe-no-webgpu-'));
  try {
    const script = "import('webgpu').then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))";
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' })) as { code?: string; message?: string };
    expect(out.code, 'Node should fail to find webgpu in an empty directory').toBe('ERR_MODULE_NOT_FOUND');
    return Object.assign(new Error(out.message), { code: out.code });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('loadDawn', () => {
  it('a missing webgpu package is a NoAdapterError that says to npm install webgpu', async () => {
    const cause = nodeMissingWebgpuError();
    const err = await loadDawn(() => Promise.reject(cause)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoAdapterError);
    expect(err).toBeInstanceOf(WebMoEError);
    const e = err as NoAdapterError;
    expect(e.code).toBe('NO_ADAPTER');
    expect(e.message).toContain('npm install webgpu');
    expect(e.message).toBe(`no WebGPU adapter: ${WEBGPU_MISSING}`);
    expect(e.cause).toBe(cause);
  });

  it('a webgpu package that fails to load for another reason keeps that reason', async () => {
    const cause = new Error('libvulkan.so.1: cannot open shared object file');
    const e = (await loadDawn(() => Promise.reject(cause)).catch((x: unknown) => x)) as NoAdapterError;
    expect(e).toBeInstanceOf(NoAdapterError);
    expect(e.message).toContain('failed to load: libvulkan.so.1');
    expect(e.message).not.toContain('npm install');
    expect(e.cause).toBe(cause);
  });

  it('a missing dependency of webgpu is not reported as webgpu missing', async () => {
    const cause = Object.assign(new Error("Cannot find package 'dawn-helper' imported from /x/node_modules/webgpu/index.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    const e = (await loadDawn(() => Promise.reject(cause)).catch((x: unknown) => x)) as NoAdapterError;
    expect(e).toBeInstanceOf(NoAdapterError);
    expect(e.message).toContain("failed to load: Cannot find package 'dawn-helper'");
  });

  it('a module without create() is rejected by name', async () => {
    const e = await loadDawn(async () => ({ globals: {} })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoAdapterError);
    expect((e as Error).message).toContain('no create() function');
  });

  it('a module with create() gets the toggles and installs its globals', async () => {
    let toggles: string[] = [];
    const gpu = { marker: 'fake GPU' } as unknown as GPU;
    const got = await loadDawn(async () => ({
      create: (t: string[]) => ((toggles = t), gpu),
      globals: { __webmoeDawnLoadTest: 7 },
    }));
    expect(got).toBe(gpu);
    expect(toggles.join(' ')).toContain('allow_unsafe_apis');
    expect((globalThis as Record<string, unknown>).__webmoeDawnLoadTest).toBe(7);
    delete (globalThis as Record<string, unknown>).__webmoeDawnLoadTest;
  });
});

describe('dawnNodeToggles (WEBMOE_DAWN_ENABLE)', () => {
  it('adds the named toggles to the one enable entry (Dawn takes the last entry of a key), and nothing without it', () => {
    expect(dawnNodeToggles({})).toEqual(DAWN_NODE_TOGGLES);
    const t = dawnNodeToggles({ WEBMOE_DAWN_ENABLE: 'skip_validation, disable_robustness' });
    expect(t.filter((s) => s.startsWith('enable-dawn-features='))).toEqual([`${DAWN_NODE_TOGGLES[0]},skip_validation,disable_robustness`]);
    expect(t.slice(1)).toEqual(DAWN_NODE_TOGGLES.slice(1));
  });
  it('a name that is not a toggle name is a ValueError naming the variable', () => {
    expect(() => dawnNodeToggles({ WEBMOE_DAWN_ENABLE: 'skip_validation,x=1' })).toThrow(ValueError);
    expect(() => dawnNodeToggles({ WEBMOE_DAWN_ENABLE: 'Skip' })).toThrow(/WEBMOE_DAWN_ENABLE/);
  });
});

describe('describeAdapter: software adapters', () => {
  const adapter = (info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }) => ({ info }) as unknown as GPUAdapter;
  it('lavapipe, SwiftShader, WARP and fallback adapters run kernels on the CPU; GPUs do not', () => {
    expect(describeAdapter(adapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15', description: 'llvmpipe' })).software).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'google', architecture: '', device: 'swiftshader', description: 'SwiftShader Device' })).software).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver (WARP)' })).software).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'intel', isFallbackAdapter: true })).software).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', device: 'nvidia-h200', description: 'NVIDIA: 580.159.04' })).software).toBe(false);
    expect(describeAdapter(adapter({ vendor: 'apple', architecture: 'metal-3' })).software).toBe(false);
  });
});
