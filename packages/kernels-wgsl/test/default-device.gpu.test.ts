// defaultDevice: the GPU where WebGPU offers a hardware adapter, else the CPU path (no adapter, or a software one).
// Fake adapters check each branch without a GPU; the real adapter of this machine (lavapipe in CI) checks the whole call.
import { describe, expect, it } from 'vitest';
import { NoAdapterError, defaultDevice } from '../src/index.js';
import { chooseDevice } from '../src/runtime/default-device.js';
import { testGpu } from '../src/testing.js';

/** An adapter object with `info` only; requestDevice fails with `deviceError` (a hardware adapter must reach it). */
function fakeAdapter(info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }, deviceError = new Error('fake adapter: requestDevice called')): GPUAdapter {
  return {
    info,
    features: new Set<string>(),
    limits: {},
    requestDevice: () => Promise.reject(deviceError),
  } as unknown as GPUAdapter;
}

const noRequest = () => Promise.reject(new Error('the adapter was given: no request expected'));

describe('defaultDevice', () => {
  it('no WebGPU adapter (a NoAdapterError): the CPU, with the reason', async () => {
    const d = await chooseDevice({}, () => Promise.reject(new NoAdapterError('navigator.gpu is missing')));
    expect(d.device.isCpu()).toBe(true);
    expect(d.ctx).toBeUndefined();
    expect(d.adapter).toBeUndefined();
    expect(d.reason).toContain('navigator.gpu is missing');
  });
  it('any other failure to get an adapter is thrown, not hidden behind the CPU', async () => {
    await expect(chooseDevice({}, () => Promise.reject(new TypeError('broken binding')))).rejects.toThrow('broken binding');
  });
  it('a software adapter (lavapipe, SwiftShader, a fallback adapter): the CPU unless allowSoftware; no device is created', async () => {
    for (const info of [{ vendor: 'mesa', device: 'llvmpipe (LLVM 15.0.6, 256 bits)' }, { vendor: 'google', architecture: 'swiftshader' }, { vendor: 'x', isFallbackAdapter: true }]) {
      const d = await chooseDevice({ adapter: fakeAdapter(info) }, noRequest);
      expect(d.device.isCpu(), JSON.stringify(info)).toBe(true);
      expect(d.adapter?.software).toBe(true);
      expect(d.reason).toContain('software adapter');
      // allowSoftware takes it: the device request comes (and here fails as the fake says)
      await expect(chooseDevice({ adapter: fakeAdapter(info), allowSoftware: true }, noRequest)).rejects.toThrow('requestDevice called');
    }
  });
  it('a hardware adapter: its device is created; a failure there is thrown', async () => {
    await expect(chooseDevice({ adapter: fakeAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'H200' }, new Error('out of devices')) }, noRequest)).rejects.toThrow('out of devices');
  });
  it("this machine's adapter: a hardware one gives the GPU with its context, a software one the CPU (and the GPU with allowSoftware)", async (t) => {
    // the tests' shared context (never destroyed here: every GPU test of the process uses it)
    const shared = await testGpu();
    if (!shared) return t.skip('no WebGPU adapter');
    const software = shared.adapterInfo.software;
    const d = await defaultDevice({ label: 'default-device test' });
    try {
      expect(d.device.isGpu()).toBe(!software);
      expect(!!d.ctx).toBe(!software);
      expect(d.adapter?.software).toBe(software);
    } finally {
      d.ctx?.destroy();
    }
    if (software) {
      const s = await defaultDevice({ allowSoftware: true });
      try {
        expect(s.device.isGpu()).toBe(true);
        expect(s.ctx?.adapterInfo.software).toBe(true);
      } finally {
        s.ctx?.destroy();
      }
    }
  });
});
