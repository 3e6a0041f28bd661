// A --stack chain that runs into the device's memory: creation stops at the out-of-memory error, gives back whole
// layers (the last made first) until the headroom is free, and hands the memory back (GpuContext.reclaimMemory) before
// the rows run. The out-of-memory error is injected at the fifth layer: lavapipe's memory is the host's.
import { describe, expect, it } from 'vitest';
import { GpuOutOfMemoryError, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { createLayer, createStackLayers } from '../src/moe-run.js';
import { TINY } from '../src/models.js';

const ctx = await testGpu();

describe('createStackLayers at the device memory', () => {
  it('stops at the out-of-memory error, gives back layers until the headroom is free, then reclaims their memory', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const real: GpuContext = ctx;
    const layer = await createLayer(real, TINY, 'bf16');
    let checks = 0;
    let reclaims = 0;
    // the context as createStackLayers sees it: its fifth checked creation runs out of memory
    const full = new Proxy(real, {
      get(target, key) {
        if (key === 'checked')
          return async <T>(where: string, fn: () => T | Promise<T>): Promise<T> => {
            checks++;
            if (checks === 5) {
              await fn();
              throw new GpuOutOfMemoryError(where, 'injected by the test');
            }
            return target.checked(where, fn);
          };
        if (key === 'reclaimMemory')
          return async () => {
            reclaims++;
            await target.reclaimMemory();
          };
        const v = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    try {
      // headroom of just over one layer's weights: two layers given back
      const st = await createStackLayers(full, layer, 10, 1 << 30, layer.weightBytes + 1);
      expect(checks).toBe(5);
      expect(reclaims).toBe(1);
      // the row's layer, four made, two given back
      expect(st.layers.length).toBe(3);
      expect(st.layers[0]).toBe(layer.moe);
      expect(new Set(st.layers).size).toBe(3);
      st.destroy();
    } finally {
      layer.destroy();
    }
  });
});
