/** Picks the device the bench runs on: a GPU, else lavapipe (a CPU WebGPU adapter), else the CPU path. */
import { cpuKernelPath, createGpuContext, type GpuContext } from '@webmoe/kernels-wgsl';
import type { DeviceChoice } from './args.js';

/** The device of a run. */
export type BenchDevice =
  | { kind: 'gpu' | 'lavapipe'; ctx: GpuContext; name: string }
  | { kind: 'cpu'; name: string; reason: string };

/** The CPU device's name: which dot products its kernels run. */
const CPU_NAME = () => `cpu (the CPU kernels, ${cpuKernelPath() === 'wasm-simd' ? 'WebAssembly SIMD' : 'JavaScript'} dot products)`;

/**
 * Opens the device: `auto` takes the WebGPU adapter if there is one (GPU or
 * lavapipe) and the CPU otherwise; `gpu` fails without an adapter.
 * @example `const dev = await openDevice('auto'); console.log(dev.kind, dev.name)`
 */
export async function openDevice(choice: DeviceChoice): Promise<BenchDevice> {
  if (choice === 'cpu') return { kind: 'cpu', name: CPU_NAME(), reason: '--device cpu' };
  try {
    const ctx = await createGpuContext({ label: 'webmoe-bench' });
    const kind = ctx.adapterInfo.software ? 'lavapipe' : 'gpu';
    return { kind, ctx, name: ctx.adapterName };
  } catch (e) {
    if (choice === 'gpu') throw e;
    return { kind: 'cpu', name: CPU_NAME(), reason: `no WebGPU adapter: ${(e as Error).message}` };
  }
}
