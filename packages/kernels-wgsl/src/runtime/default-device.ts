/**
 * The device a layer runs fastest on in this process, for callers that do not
 * want to choose: a hardware WebGPU adapter, else the CPU path. A software
 * adapter (Mesa lavapipe, SwiftShader, WARP, a browser's fallback adapter) runs
 * the WGSL kernels on the CPU, slower than the CPU kernels themselves (on a
 * 2-core host 3-4x at T = 128, 3-21x at T = 1 and 16; docs/PERFORMANCE.md,
 * session 15), so it gives the CPU unless `allowSoftware` keeps it.
 */
import { DeviceRef } from '@webmoe/tensor';
import { createGpuContext, describeAdapter, requestAdapter, type AdapterDescription, type GpuContext, type GpuContextOptions } from './context.js';
import { NoAdapterError } from './errors.js';

/** Options of {@link defaultDevice}: those of `createGpuContext` for the GPU's context, and whether a software adapter may serve. */
export interface DefaultDeviceOptions extends GpuContextOptions {
  /** Take a software adapter rather than the CPU path (default false). */
  allowSoftware?: boolean;
}

/** The device {@link defaultDevice} chose, and why. */
export interface DefaultDevice {
  /** `DeviceRef.GPU(0)` on a hardware adapter (or a software one with `allowSoftware`), else `DeviceRef.CPU()`. */
  device: DeviceRef;
  /** The GPU's context (the caller keeps it referenced while the layer lives, and destroys it); undefined on the CPU. */
  ctx?: GpuContext;
  /** The adapter WebGPU offered, where it offered one. */
  adapter?: AdapterDescription;
  /** One line: why this device. */
  reason: string;
}

/**
 * The GPU where WebGPU offers a hardware adapter, else the CPU: no WebGPU
 * (a NoAdapterError: no `webgpu` package in Node, no `navigator.gpu`, no
 * adapter) or only a software adapter. Other errors (a device that cannot be
 * created on a hardware adapter) are thrown, not hidden behind the CPU.
 * @example
 * ```ts
 * const { device, ctx, reason } = await defaultDevice();
 * const moe = await MoE.fromHuggingFace({ source, layer: 0, device, ctx });
 * ```
 */
export async function defaultDevice(opts: DefaultDeviceOptions = {}): Promise<DefaultDevice> {
  return chooseDevice(opts, () => requestAdapter(opts.powerPreference));
}

/** {@link defaultDevice} with the adapter request given (`request`, where opts.adapter is not): for the tests. */
export async function chooseDevice(opts: DefaultDeviceOptions, request: () => Promise<GPUAdapter>): Promise<DefaultDevice> {
  const { allowSoftware = false, ...ctxOpts } = opts;
  let gpu: GPUAdapter;
  try {
    gpu = ctxOpts.adapter ?? (await request());
  } catch (e) {
    if (!(e instanceof NoAdapterError)) throw e;
    return { device: DeviceRef.CPU(), reason: `no WebGPU adapter (${e.message}): the CPU path` };
  }
  const adapter = describeAdapter(gpu);
  if (adapter.software && !allowSoftware) {
    return { device: DeviceRef.CPU(), adapter, reason: `${adapter.name} is a software adapter: the CPU path is faster (allowSoftware: true takes the adapter)` };
  }
  const ctx = await createGpuContext({ ...ctxOpts, adapter: gpu });
  return { device: DeviceRef.GPU(0), ctx, adapter, reason: `${adapter.name}${adapter.software ? ' (software, allowSoftware)' : ''}` };
}
