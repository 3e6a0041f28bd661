import { DeviceRef } from '@webmoe/tensor';
import { createGpuContext, getGpu, describeAdapter, NoAdapterError, type GpuContext, type GpuContextOptions } from '@webmoe/kernels-wgsl';
import { ShardingError } from './errors.js';

/** How {@link DeviceGroup.create} maps devices to adapters. */
export type DevicePlacement =
  /** One device per distinct adapter found; if there are fewer than n, the rest are extra devices on the first adapter (default). */
  | 'auto'
  /** Every device from the same (default) adapter: n independent GPUDevices that share no buffers (tests, one GPU). */
  | 'same-adapter'
  /** Exactly one device per distinct adapter; ShardingError when fewer than n distinct adapters exist. */
  | 'distinct-adapters';

/** Options of {@link DeviceGroup.create}. */
export interface DeviceGroupOptions {
  /** Default 'auto'. */
  placement?: DevicePlacement;
  /**
   * Adapters to use, one per device (each is consumed by its device: WebGPU
   * adapters give one device each). Overrides `placement`.
   */
  adapters?: readonly GPUAdapter[];
  /**
   * Node only: extra `GPU` instances to search for distinct adapters, e.g.
   * `create(['adapter=NVIDIA H200', ...DAWN_NODE_TOGGLES])` from the
   * `webgpu` package (Dawn's `adapter=` flag selects by name substring).
   * Each must be called again per device because adapters are consumed:
   * pass factories.
   */
  gpuFactories?: readonly (() => GPU)[];
  /** Options passed to every createGpuContext (features, label prefix). */
  context?: Omit<GpuContextOptions, 'adapter'>;
}

function adapterKey(a: GPUAdapter): string {
  const d = describeAdapter(a);
  return `${d.vendor}|${d.architecture}|${d.device}|${d.description}`;
}

/**
 * A group of n devices that share no memory: n GpuContexts (each its own
 * GPUDevice), or n CPU "devices" whose shards are host arrays. Collectives
 * (allReduce, allGather, allToAll) move data between them. The group owns
 * the contexts it created and destroys them.
 *
 * In Node, Dawn hands out one device per adapter object and a fresh adapter
 * per `requestAdapter()` call, so several devices of one physical GPU are
 * separate devices exactly as two GPUs would be (no shared buffers); that is
 * how the tests run 2, 3 and 4 devices on one lavapipe adapter.
 * docs/DISTRIBUTED.md says how several physical GPUs are reached.
 *
 * @example
 * ```ts
 * const group = await DeviceGroup.create(2, { placement: 'same-adapter' });
 * const [a, b] = group.contexts;
 * group.destroy();
 * const cpu = DeviceGroup.cpu(4); // host shards
 * ```
 */
export class DeviceGroup {
  /** 'gpu': contexts holds one GpuContext per device; 'cpu': no contexts, shards live on the host. */
  readonly kind: 'gpu' | 'cpu';
  readonly size: number;
  /** One per device (empty for a CPU group). */
  readonly contexts: readonly GpuContext[];
  /** MAX-style device references: GPU(0..n-1) or CPU() n times. */
  readonly devices: readonly DeviceRef[];
  private readonly owned: boolean;
  private destroyed = false;

  private constructor(kind: 'gpu' | 'cpu', size: number, contexts: readonly GpuContext[], owned: boolean) {
    this.kind = kind;
    this.size = size;
    this.contexts = Object.freeze([...contexts]);
    this.devices = Object.freeze(Array.from({ length: size }, (_, i) => (kind === 'gpu' ? DeviceRef.GPU(i) : DeviceRef.CPU())));
    this.owned = owned;
  }

  /**
   * Creates n GPU devices (see {@link DevicePlacement}). Throws
   * NoAdapterError when WebGPU has no adapter, ShardingError when
   * 'distinct-adapters' cannot be met.
   *
   * @example
   * ```ts
   * const g = await DeviceGroup.create(4); // one per GPU when Dawn shows several, else 4 devices on one
   * ```
   */
  static async create(n: number, opts: DeviceGroupOptions = {}): Promise<DeviceGroup> {
    if (!Number.isInteger(n) || n < 1) throw new ShardingError('DeviceGroup.create n', 'a positive integer', n);
    const placement = opts.placement ?? 'auto';
    if (!['auto', 'same-adapter', 'distinct-adapters'].includes(placement)) throw new ShardingError('DeviceGroup placement', "'auto' | 'same-adapter' | 'distinct-adapters'", placement);
    if (opts.adapters && opts.adapters.length !== n) throw new ShardingError('DeviceGroup.create adapters', `${n} adapters (one per device)`, opts.adapters.length);
    const contexts: GpuContext[] = [];
    try {
      const next = await adapterSource(n, placement, opts);
      for (let i = 0; i < n; i++) {
        const adapter = opts.adapters ? opts.adapters[i] : await next(i);
        contexts.push(await createGpuContext({ ...opts.context, adapter, label: `${opts.context?.label ?? 'webmoe'}-dev${i}` }));
      }
    } catch (e) {
      for (const c of contexts) c.destroy();
      throw e;
    }
    return new DeviceGroup('gpu', n, contexts, true);
  }

  /**
   * Wraps existing contexts (not owned: destroy() leaves them alive).
   * Each must be a different GPUDevice.
   *
   * @example
   * ```ts
   * const g = DeviceGroup.fromContexts([ctxA, ctxB]);
   * ```
   */
  static fromContexts(contexts: readonly GpuContext[]): DeviceGroup {
    if (contexts.length < 1) throw new ShardingError('DeviceGroup.fromContexts', 'at least one GpuContext', 0);
    if (new Set(contexts.map((c) => c.device)).size !== contexts.length) throw new ShardingError('DeviceGroup.fromContexts', 'distinct GPUDevices', 'the same device twice');
    return new DeviceGroup('gpu', contexts.length, contexts, false);
  }

  /**
   * n CPU "devices": shards are host arrays, collectives are the `cpu*`
   * functions (each device gets its own copy).
   *
   * @example
   * ```ts
   * const g = DeviceGroup.cpu(3); g.devices[0].isCpu() // true
   * ```
   */
  static cpu(n: number): DeviceGroup {
    if (!Number.isInteger(n) || n < 1) throw new ShardingError('DeviceGroup.cpu n', 'a positive integer', n);
    return new DeviceGroup('cpu', n, [], true);
  }

  /** The context of device i (GPU groups only). @example `group.context(1).device` */
  context(i: number): GpuContext {
    if (this.kind !== 'gpu') throw new ShardingError('DeviceGroup.context', 'a GPU group', 'a CPU group');
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new ShardingError('DeviceGroup.context index', `an integer in [0, ${this.size})`, i);
    return this.contexts[i];
  }

  /** Adapter names, one per device. @example `group.adapterNames() // ['mesa / software / llvmpipe...', ...]` */
  adapterNames(): string[] {
    return this.kind === 'cpu' ? Array(this.size).fill('cpu') : this.contexts.map((c) => c.adapterName);
  }

  /** Waits until every device has finished its submitted work. @example `await group.sync()` */
  async sync(): Promise<void> {
    await Promise.all(this.contexts.map((c) => c.sync()));
  }

  /** Destroys the devices this group created (and with them their buffers). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.owned) for (const c of this.contexts) c.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** A function that returns a fresh adapter for device i according to the placement. */
async function adapterSource(n: number, placement: DevicePlacement, opts: DeviceGroupOptions): Promise<(i: number) => Promise<GPUAdapter>> {
  const gpu = await getGpu();
  const pp = opts.context?.powerPreference ?? 'high-performance';
  const fresh = async (g: GPU, powerPreference: GPUPowerPreference): Promise<GPUAdapter> => {
    const a = await g.requestAdapter({ powerPreference });
    if (!a) throw new NoAdapterError('requestAdapter() returned null');
    return a;
  };
  if (placement === 'same-adapter') return () => fresh(gpu, pp);
  // Distinct adapters: what the default GPU gives per power preference, then each factory's.
  const sources: { get: () => Promise<GPUAdapter> }[] = [];
  const seen = new Set<string>();
  const candidates: { get: () => Promise<GPUAdapter> }[] = [
    { get: () => fresh(gpu, pp) },
    { get: () => fresh(gpu, pp === 'high-performance' ? 'low-power' : 'high-performance') },
    ...(opts.gpuFactories ?? []).map((f) => ({ get: () => fresh(f(), pp) })),
  ];
  for (const c of candidates) {
    let a: GPUAdapter;
    try {
      a = await c.get();
    } catch (e) {
      if (sources.length === 0 && c === candidates[0]) throw e;
      continue;
    }
    const key = adapterKey(a);
    if (!seen.has(key)) {
      seen.add(key);
      sources.push(c);
    }
  }
  if (placement === 'distinct-adapters' && sources.length < n) {
    throw new ShardingError(`DeviceGroup.create(${n}, 'distinct-adapters')`, `${n} distinct adapters`, `${sources.length} (${[...seen].join('; ')})`);
  }
  return (i: number) => (i < sources.length ? sources[i].get() : sources[0].get());
}
