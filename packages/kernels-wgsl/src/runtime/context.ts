/**
 * GpuContext: the device with its probed features and limits, the binding limit, error scopes, staging reuse and
 * queue order, and the adapter request that makes it. Over ~400 lines on purpose: one class and its factory.
 */
import { ValueError } from '@webmoe/tensor';
import { selectGpuFromEnv, type GpuSelection } from './gpu-select.js';
import { NoAdapterError, DeviceLostError, GpuValidationError, GpuOutOfMemoryError } from './errors.js';
import { STAGED_WRITE_ABOVE_BYTES, UploadStaging } from './upload-staging.js';

/** Features the kernels select variants by. */
export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
  subgroupMatrix: boolean;
}

/** Options of {@link createGpuContext}. */
export interface GpuContextOptions {
  /** An adapter to use (browser or Node). Default: the first from `navigator.gpu` or the `webgpu` package. */
  adapter?: GPUAdapter;
  /** 'high-performance' (default) or 'low-power'. */
  powerPreference?: GPUPowerPreference;
  /** Ask for these features only if the adapter has them (default: all that the kernels use). */
  wantFeatures?: readonly GPUFeatureName[];
  /** Disable use of shader-f16 even where present (for testing the fallback path). */
  disableF16?: boolean;
  /** Disable subgroup-matrix even where present. */
  disableSubgroupMatrix?: boolean;
  /** A label for the device. */
  label?: string;
  /**
   * The most bytes one storage binding of expert weights may hold (a positive
   * multiple of 4; default and cap: the device's maxStorageBufferBindingSize
   * and maxBufferSize). Expert stacks larger than this are split over several
   * buffers (see `uploadExpertWeights`). Lowering it lets small layers take
   * the chunked paths (tests, CI on lavapipe); scratch buffers keep the
   * device limits.
   */
  maxBindingBytes?: number;
}

/** Readback staging buffers a GpuContext keeps for reuse. */
export const STAGING_KEEP = 4;

const WANTED: readonly string[] = ['shader-f16', 'subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix'];

let nodeGpu: Promise<GPU> | undefined;
let nodeGpuSelection: GpuSelection | undefined;

/** What `WEBMOE_GPU_INDEX` selected when this process's Dawn instance was created (undefined without it, or before). @example `gpuSelection()?.set // 'DRI_PRIME=pci-0000_41_00_0'` */
export function gpuSelection(): GpuSelection | undefined {
  return nodeGpuSelection;
}

/** Dawn instance toggles used in Node: unsafe APIs expose subgroup-matrix; f16 on NVIDIA needs its own toggle; timestamps unquantized (Dawn rounds them to 65.5 us by default). */
export const DAWN_NODE_TOGGLES = ['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia', 'disable-dawn-features=timestamp_quantization'];

/**
 * The `GPU` object: `navigator.gpu` in browsers, the `webgpu` package's
 * Dawn instance in Node (created once per process).
 * @example `const gpu = await getGpu(); await gpu.requestAdapter()`
 */
export async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof process !== 'undefined' && !!(process as { versions?: { node?: string } }).versions?.node;
  if (!isNode) throw new NoAdapterError('navigator.gpu is missing (this browser has no WebGPU, or it is disabled)');
  nodeGpu ??= (async () => {
    nodeGpuSelection = await selectGpuFromEnv(); // WEBMOE_GPU_INDEX: before Dawn enumerates devices
    return loadDawn();
  })().catch((e: unknown) => {
    nodeGpu = undefined; // installing `webgpu` later in the same process works
    throw e;
  });
  return nodeGpu;
}

/** What `getGpu` needs of the `webgpu` package (Dawn for Node). */
export interface DawnModule {
  create: (toggles: string[]) => GPU;
  globals: Record<string, unknown>;
}

/** The message of the NoAdapterError thrown when Node has no `webgpu` package. */
export const WEBGPU_MISSING = 'the optional peer dependency `webgpu` (Dawn for Node) is not installed: run `npm install webgpu` (or `pnpm add webgpu`)';

const importWebgpu = (): Promise<unknown> => {
  const spec = 'webgpu'; // a variable, so that bundlers for browsers leave it alone
  return import(/* @vite-ignore */ spec);
};

/**
 * Loads the `webgpu` package and creates its Dawn instance, installing its
 * globals (`GPUBufferUsage`, ...). A missing package is a NoAdapterError
 * saying how to install it; `importer` exists for tests.
 */
export async function loadDawn(importer: () => Promise<unknown> = importWebgpu): Promise<GPU> {
  let mod: DawnModule;
  try {
    mod = (await importer()) as DawnModule;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    const missing = (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && /['"]webgpu['"]/.test(err.message ?? '');
    if (missing) throw new NoAdapterError(WEBGPU_MISSING, { cause: e });
    throw new NoAdapterError(`the \`webgpu\` package failed to load: ${err.message ?? String(e)}`, { cause: e });
  }
  if (typeof mod?.create !== 'function') throw new NoAdapterError('the `webgpu` package has no create() function (expected webgpu ^0.6)');
  Object.assign(globalThis, mod.globals);
  return mod.create(dawnNodeToggles());
}

/** The limits every WebGPU device reports (the spec's GPUSupportedLimits). */
const LIMIT_NAMES = [
  'maxTextureDimension1D', 'maxTextureDimension2D', 'maxTextureDimension3D', 'maxTextureArrayLayers', 'maxBindGroups',
  'maxBindGroupsPlusVertexBuffers', 'maxBindingsPerBindGroup', 'maxDynamicUniformBuffersPerPipelineLayout',
  'maxDynamicStorageBuffersPerPipelineLayout', 'maxSampledTexturesPerShaderStage', 'maxSamplersPerShaderStage',
  'maxStorageBuffersPerShaderStage', 'maxStorageTexturesPerShaderStage', 'maxUniformBuffersPerShaderStage',
  'maxUniformBufferBindingSize', 'maxStorageBufferBindingSize', 'minUniformBufferOffsetAlignment',
  'minStorageBufferOffsetAlignment', 'maxVertexBuffers', 'maxBufferSize', 'maxVertexAttributes', 'maxVertexBufferArrayStride',
  'maxInterStageShaderVariables', 'maxColorAttachments', 'maxColorAttachmentBytesPerSample', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/**
 * A plain copy of a device's limits (not frozen: test views of a context wrap it in a Proxy). Dawn for Node answers each read
 * of GPUSupportedLimits through a native getter, and the forward's checks
 * read limits on every call (~2.4 us per MoE.checkForward on an H200 host).
 * @example `snapshotLimits(device.limits).maxBufferSize`
 */
export function snapshotLimits(l: GPUSupportedLimits): GPUSupportedLimits {
  const out: Record<string, number> = {};
  for (const k of LIMIT_NAMES) {
    const v = (l as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') out[k] = v;
  }
  return out as unknown as GPUSupportedLimits;
}

/**
 * DAWN_NODE_TOGGLES plus the Dawn toggles named in `WEBMOE_DAWN_ENABLE`
 * (comma separated, e.g. `skip_validation,disable_robustness`: for measuring
 * what validation and bounds checks cost; never set by the library).
 * @example `dawnNodeToggles({ WEBMOE_DAWN_ENABLE: 'skip_validation' })[0] // 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia,skip_validation'`
 */
export function dawnNodeToggles(env: Record<string, string | undefined> = process.env): string[] {
  const extra = (env.WEBMOE_DAWN_ENABLE ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of extra) if (!/^[a-z0-9_]+$/.test(t)) throw new ValueError('WEBMOE_DAWN_ENABLE', 'Dawn toggle names (lower case, digits, _) separated by commas', env.WEBMOE_DAWN_ENABLE);
  return extra.length ? [`${DAWN_NODE_TOGGLES[0]},${extra.join(',')}`, ...DAWN_NODE_TOGGLES.slice(1)] : [...DAWN_NODE_TOGGLES];
}

/**
 * Lists adapters: in Node each distinct physical adapter Dawn reports for the
 * two power preferences (Dawn picks one per preference); in browsers one.
 * @example `const adapters = await listAdapters()`
 */
export async function requestAdapter(powerPreference: GPUPowerPreference = 'high-performance'): Promise<GPUAdapter> {
  const gpu = await getGpu();
  const a = await gpu.requestAdapter({ powerPreference });
  if (!a) throw new NoAdapterError('requestAdapter() returned null (no Vulkan/Metal/D3D12 driver found; on Linux without a GPU install Mesa lavapipe >= 25)');
  return a;
}

/** A description of the adapter, printed by tests and the bench. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A short one-line name. */
  name: string;
  /** A software adapter (Mesa lavapipe/llvmpipe, SwiftShader, WARP, or one the browser calls a fallback adapter): kernels run on the CPU. */
  software: boolean;
}

export function describeAdapter(a: GPUAdapter): AdapterDescription {
  const i = (a as GPUAdapter & { info?: GPUAdapterInfo }).info ?? ({} as GPUAdapterInfo);
  const vendor = i.vendor ?? '';
  const architecture = i.architecture ?? '';
  const device = i.device ?? '';
  const description = i.description ?? '';
  const name = [vendor, architecture, device, description].filter((s) => s).join(' / ') || 'unknown adapter';
  const fallback = !!(i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const software = fallback || /llvmpipe|lavapipe|swiftshader|software|warp/.test(name.toLowerCase());
  return { vendor, architecture, device, description, name, software };
}

/**
 * A WebGPU device with its probed features and limits. Whoever creates it
 * destroys it (`destroy()` / `using`).
 *
 * @example
 * ```ts
 * const ctx = await createGpuContext();
 * console.log(ctx.adapterName, ctx.features.shaderF16);
 * ctx.destroy();
 * ```
 */
export class GpuContext {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly features: GpuFeatures;
  readonly limits: GPUSupportedLimits;
  readonly adapterInfo: AdapterDescription;
  private readonly maxBindingOption: number | undefined;
  private lostInfo: GPUDeviceLostInfo | undefined;
  private destroyed = false;
  private readonly uncaptured: string[] = [];
  private readonly stagingFree: GPUBuffer[] = [];
  /** Staging for writes repeated call after call past Dawn's upload ring (writeBufferStaged), made at the first. */
  private uploads: UploadStaging | undefined;
  /** The deferred encoder (`GpuGraph.replay({ defer: true })` appends to it), submitted by flush(). */
  private pending: GPUCommandEncoder | undefined;
  /** The buffer reclaimMemory clears (a submit after the destroys it waits for), made at its first call. */
  private reclaimMarker: GPUBuffer | undefined;

  constructor(adapter: GPUAdapter, device: GPUDevice, features: GpuFeatures, opts: { maxBindingBytes?: number } = {}) {
    this.adapter = adapter;
    this.device = device;
    this.features = features;
    this.limits = snapshotLimits(device.limits);
    this.adapterInfo = describeAdapter(adapter);
    this.maxBindingOption = checkMaxBindingBytes('GpuContext maxBindingBytes', opts.maxBindingBytes);
    device.lost.then((info) => {
      this.lostInfo = info;
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured.push(e?.message ?? String(e));
    });
  }

  /**
   * The most bytes one storage binding of expert weights holds: the
   * `maxBindingBytes` option, capped by the device's maxStorageBufferBindingSize
   * and maxBufferSize (rounded down to a multiple of 4).
   */
  get maxBindingBytes(): number {
    const deviceMax = Math.floor(Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize) / 4) * 4;
    return Math.min(this.maxBindingOption ?? deviceMax, deviceMax);
  }

  /** A one-line adapter name. */
  get adapterName(): string {
    return this.adapterInfo.name;
  }

  /** True once the device is lost or destroyed. */
  get isLost(): boolean {
    return this.lostInfo !== undefined || this.destroyed;
  }

  /** Throws DeviceLostError if the device is gone. */
  assertAlive(): void {
    if (this.lostInfo) throw new DeviceLostError(this.lostInfo.reason ?? 'unknown', this.lostInfo.message || 'device lost');
    if (this.destroyed) throw new DeviceLostError('destroyed', 'the GpuContext was destroyed');
  }

  /**
   * Turns a failure caused by a lost device into a DeviceLostError: waits
   * (at most `waitMs`) for the device's `lost` promise, throws DeviceLostError
   * if the device is gone, else rethrows `e` unchanged. Dawn rejects a pending
   * `mapAsync` with a bare DOMException when the device is destroyed under it.
   */
  async rethrowIfLost(e: unknown, waitMs = 100): Promise<never> {
    if (!this.isLost) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.device.lost.then(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    this.assertAlive();
    throw e;
  }

  /** Errors that escaped every error scope since the last call (and clears them). */
  takeUncapturedErrors(): string[] {
    return this.uncaptured.splice(0);
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and throws a
   * typed error if the GPU reported one. Nothing escapes silently.
   */
  async checked<T>(where: string, fn: () => T | Promise<T>): Promise<T> {
    const close = this.openErrorScopes(where);
    let result: T;
    let thrown: unknown;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    await close();
    if (thrown !== undefined) throw thrown;
    return result!;
  }

  /**
   * Opens validation and out-of-memory error scopes; the returned `close`
   * pops both at once (issue it right after the submit it guards, so that
   * the scopes resolve while the GPU works) and rejects with
   * GpuOutOfMemoryError (first: the validation errors an invalid buffer
   * causes follow from it) / GpuValidationError naming `where` if the GPU
   * reported an error, or DeviceLostError if the device is gone.
   * @example `const close = ctx.openErrorScopes('op'); submitWork(); const done = close(); await Promise.all([read, done])`
   */
  openErrorScopes(where: string): () => Promise<void> {
    this.assertAlive();
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    return async () => {
      const [v, o] = await Promise.all([this.device.popErrorScope(), this.device.popErrorScope()]);
      // out of memory first: a failed allocation leaves an invalid buffer, and every use of it then fails validation
      // ("invalid due to a previous error"), which would otherwise hide the cause
      if (o) throw new GpuOutOfMemoryError(where, `${o.message}${v ? `; then: ${v.message}` : ''}${OUT_OF_MEMORY_HINT}`);
      if (v) throw new GpuValidationError(where, v.message);
      this.assertAlive();
    };
  }

  /**
   * A MAP_READ | COPY_DST staging buffer of at least `bytes` (rounded up to
   * 256), reused across reads: hand it back with {@link releaseStaging}
   * once unmapped. At most {@link STAGING_KEEP} stay cached.
   */
  acquireStaging(bytes: number): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256);
    const i = this.stagingFree.findIndex((b) => b.size === size);
    if (i >= 0) return this.stagingFree.splice(i, 1)[0];
    return this.device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Returns an unmapped staging buffer from {@link acquireStaging} (the oldest cached one is destroyed past the cap). */
  releaseStaging(buf: GPUBuffer): void {
    if (this.destroyed || buf.mapState !== 'unmapped') {
      buf.destroy();
      return;
    }
    this.stagingFree.push(buf);
    if (this.stagingFree.length > STAGING_KEEP) this.stagingFree.shift()!.destroy();
  }

  /**
   * The context's deferred command encoder: work appended to it (e.g.
   * `GpuGraph.replay({ defer: true })`) is submitted by {@link flush}, which
   * runs by itself once the current task and its microtasks are done (the
   * work of one task in one submit), and before anything else reaches the
   * queue through this context ({@link submit}, {@link writeBuffer}, reads,
   * {@link sync}, destroys). Code that uses `device.queue` directly calls `flush()` first.
   */
  deferredEncoder(): GPUCommandEncoder {
    this.assertAlive();
    if (!this.pending) {
      this.pending = this.device.createCommandEncoder({ label: 'deferred' });
      afterTask(() => this.flush());
    }
    return this.pending;
  }

  /** Submits the deferred encoder's work, if any (a no-op on a lost or destroyed device). */
  flush(): void {
    const enc = this.pending;
    if (!enc) return;
    this.pending = undefined;
    if (this.isLost) return;
    this.device.queue.submit([enc.finish()]);
  }

  /** `queue.submit` after the deferred work ({@link flush}): queue order is issue order. */
  submit(commandBuffers: Iterable<GPUCommandBuffer>): void {
    this.assertAlive();
    this.flush();
    this.device.queue.submit(commandBuffers);
  }

  /** `queue.writeBuffer` after the deferred work ({@link flush}), so the write lands after every command issued before it. */
  writeBuffer(buffer: GPUBuffer, offset: number, data: Parameters<GPUQueue['writeBuffer']>[2], dataOffset?: number, size?: number): void {
    this.assertAlive();
    this.flush();
    this.device.queue.writeBuffer(buffer, offset, data, dataOffset, size);
  }

  /**
   * `queue.writeBuffer` for host bytes written call after call (a forward's host input), after the deferred work
   * ({@link flush}): a write of more than half Dawn's 4 MiB upload ring (STAGED_WRITE_ABOVE_BYTES), which Dawn may stage in
   * a new host-visible allocation on every call, goes through staging buffers the context keeps mapped (UploadStaging:
   * a copy into one, and a copy command submitted now); smaller ones through queue.writeBuffer. Same bytes, same queue
   * order. `offset` and the length: multiples of 4.
   * @example `ctx.writeBufferStaged(x.buffer, 0, new Uint8Array(xs.buffer, xs.byteOffset, xs.byteLength))`
   */
  writeBufferStaged(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    this.assertAlive();
    this.flush();
    if (bytes.byteLength <= STAGED_WRITE_ABOVE_BYTES) this.device.queue.writeBuffer(buffer, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    else (this.uploads ??= new UploadStaging(this.device)).write(buffer, offset, bytes);
  }

  /** Host-visible bytes the context keeps: readback staging buffers and writeBufferStaged's. */
  stagingBytes(): { read: number; write: number } {
    return { read: this.stagingFree.reduce((s, b) => s + b.size, 0), write: this.uploads?.keptBytes() ?? 0 };
  }

  /** Waits until the GPU has finished all issued work (deferred work included). */
  async sync(): Promise<void> {
    this.assertAlive();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.assertAlive();
  }

  /**
   * Waits until the GPU has finished all issued work and the memory of every buffer destroyed before the call is free
   * again. Dawn gives a destroyed buffer's memory back once a submit issued after the destroy has completed, so
   * {@link sync}, which waits for the submits before it, can return while that memory is still held: on a device
   * filled to its memory, a model destroyed to make room for the next may still hold it when that one allocates (on
   * an 80 GB H100 the bench's int4 Mixtral could not allocate after bf16 Mixtral's 30-layer chain was destroyed and
   * synced, session 41). This submits a clear of a 4-byte buffer of its own and waits for it.
   * @example `old.destroy(); await ctx.reclaimMemory(); const next = await MoE.fromHuggingFace({ source, layer: 0, device: DeviceRef.GPU(), ctx })`
   */
  async reclaimMemory(): Promise<void> {
    this.assertAlive();
    this.reclaimMarker ??= this.device.createBuffer({ label: 'reclaim', size: 4, usage: GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder({ label: 'reclaim' });
    enc.clearBuffer(this.reclaimMarker);
    this.submit([enc.finish({ label: 'reclaim' })]);
    await this.sync();
  }

  /** Destroys the device (and with it every buffer on it). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pending = undefined;
    this.uploads?.destroy();
    this.device.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** What an out-of-memory error adds: memory of buffers destroyed just before may not be back yet (reclaimMemory). */
const OUT_OF_MEMORY_HINT = ' (buffers destroyed just before give their memory back once `await ctx.reclaimMemory()` returns)';

/** Runs `f` once the current task and its microtasks are done (a macrotask: setImmediate in Node, a message in browsers). */
function afterTask(f: () => void): void {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    g.setImmediate(f);
    return;
  }
  const ch = new MessageChannel();
  ch.port1.onmessage = () => {
    ch.port1.close();
    f();
  };
  ch.port2.postMessage(undefined);
}

/**
 * Validates a `maxBindingBytes` setting: undefined (the device's limit) or a
 * positive multiple of 4; ValueError naming `what` otherwise.
 * @example `checkMaxBindingBytes('maxBindingBytes', 1 << 20) // 1048576`
 */
export function checkMaxBindingBytes(what: string, v: unknown): number | undefined {
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 4 && v % 4 === 0)) throw new ValueError(what, 'a positive multiple of 4 (or undefined: the device limit)', v);
  return v as number | undefined;
}

/**
 * Creates a GpuContext: requests an adapter, its limits (all of them, not the
 * defaults) and the features the kernels use where present.
 *
 * @example
 * ```ts
 * const ctx = await createGpuContext();
 * ```
 */
export async function createGpuContext(opts: GpuContextOptions = {}): Promise<GpuContext> {
  const mb = checkMaxBindingBytes('createGpuContext maxBindingBytes', opts.maxBindingBytes); // before a device exists
  const adapter = opts.adapter ?? (await requestAdapter(opts.powerPreference));
  const want = (opts.wantFeatures ?? WANTED).filter((f) => adapter.features.has(f));
  const filtered = want.filter(
    (f) => !(opts.disableF16 && f === 'shader-f16') && !(opts.disableSubgroupMatrix && f === 'chromium-experimental-subgroup-matrix'),
  );
  const requiredLimits: Record<string, number> = {};
  const lim = adapter.limits as unknown as Record<string, number>;
  for (const k of [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
    'maxUniformBufferBindingSize',
  ]) {
    if (typeof lim[k] === 'number') requiredLimits[k] = lim[k];
  }
  const device = await adapter.requestDevice({
    label: opts.label ?? 'webmoe',
    requiredFeatures: filtered as GPUFeatureName[],
    requiredLimits,
  });
  const has = (f: string) => device.features.has(f);
  return new GpuContext(adapter, device, {
    shaderF16: has('shader-f16'),
    subgroups: has('subgroups'),
    timestampQuery: has('timestamp-query'),
    subgroupMatrix: has('chromium-experimental-subgroup-matrix'),
  }, { maxBindingBytes: mb });
}
