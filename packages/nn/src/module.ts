import { DeviceRef, DTypeError, ShapeError, ValueError, HostTensor, shapeEquals, checkShape, type DType } from '@webmoe/tensor';
import { GpuTensor, cpuResident, type GpuContext } from '@webmoe/kernels-wgsl';

/** The parameter dtypes a CPU module keeps where the CPU kernels read them in place (Module.afterLoad). */
const RESIDENT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'bfloat16', 'float16']);
import type { ShardingStrategy } from '@webmoe/sharding';
import { NotLoadedError, StateDictError } from './errors.js';

/** A state dict: parameter name (dotted path) to host tensor. @example `{ 'gate_proj.weight': w }` or `new Map([['weight', w]])` */
export type StateDict = ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>;

/** Options every module takes. @example `{ dtype: 'bfloat16', device: DeviceRef.GPU(), ctx }` */
export interface ModuleOptions {
  /** Storage dtype of the weights (default float32). */
  dtype?: DType;
  /** Where the module runs (default `DeviceRef.CPU()`). */
  device?: DeviceRef;
  /** The WebGPU context; required when `device` is a GPU. */
  ctx?: GpuContext;
}

/**
 * One named weight of a module: its declared shape and dtype, the host value
 * (in its storage dtype) and, on a GPU module, the uploaded copy.
 *
 * @example
 * ```ts
 * const p = linear.weight; p.shape // [out, in]; p.host?.dtype // 'bfloat16'
 * ```
 */
export class Parameter {
  /** The host value, in its storage dtype (undefined until loaded). */
  host: HostTensor | undefined;
  /** The GPU copy (GPU modules only, after loading). Owned by the parameter. */
  gpu: GpuTensor | undefined;
  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {
    checkShape(name, shape);
  }
  /** The host value; throws NotLoadedError before loading. */
  get value(): HostTensor {
    if (!this.host) throw new NotLoadedError(`parameter ${this.name}`);
    return this.host;
  }
  /** The GPU value; throws NotLoadedError unless uploaded. */
  get gpuValue(): GpuTensor {
    if (!this.gpu) throw new NotLoadedError(`parameter ${this.name} (GPU copy)`);
    return this.gpu;
  }
  /** Checks that `t` fits this parameter (shape and dtype); throws ShapeError / DTypeError naming `key`. */
  check(key: string, t: HostTensor): void {
    if (!(t instanceof HostTensor)) throw new ValueError(key, 'a HostTensor', typeof t);
    if (!shapeEquals(t.shape, this.shape)) throw new ShapeError(key, this.shape, t.shape);
    if (t.dtype !== this.dtype) throw new DTypeError(key, this.dtype, t.dtype);
  }
  /** Frees the GPU copy. */
  destroy(): void {
    this.gpu?.destroy();
    this.gpu = undefined;
  }
}

function entries(sd: StateDict): [string, HostTensor][] {
  return sd instanceof Map ? [...(sd as ReadonlyMap<string, HostTensor>).entries()] : Object.entries(sd as Record<string, HostTensor>);
}

/**
 * Base class of the layers: a tree of named parameters and child modules,
 * a storage dtype and a device. `loadStateDict` checks every key, shape and
 * dtype before it stores anything, then uploads the weights (in their storage
 * dtype) when the module lives on a GPU.
 *
 * @example
 * ```ts
 * class Scale extends Module {
 *   readonly w = this.addParameter('weight', [4]);
 * }
 * const m = new Scale();
 * m.loadStateDict({ weight: HostTensor.fromFloat32([4], [1, 2, 3, 4]) });
 * m.parameters().length // 1
 * ```
 */
export class Module {
  readonly dtype: DType;
  readonly device: DeviceRef;
  readonly ctx: GpuContext | undefined;
  /**
   * MAX `sharding_strategy`: how `shard(devices)` splits this module (unset
   * until assigned; a shard carries the strategy it was cut with).
   * @example `mlp.shardingStrategy = ShardingStrategy.tensorParallel(2); const s = mlp.shard(group);`
   */
  shardingStrategy: ShardingStrategy | undefined;
  /** MAX `shard_idx`: which shard of its source this module is (0 for a module that was not cut from another). @example `sharded.shards[1].shardIndex // 1` */
  shardIndex = 0;
  private shardDeviceList: readonly DeviceRef[] | undefined;
  private readonly params = new Map<string, Parameter>();
  private readonly children = new Map<string, Module>();

  constructor(opts: ModuleOptions = {}) {
    this.dtype = opts.dtype ?? 'float32';
    this.device = opts.device ?? DeviceRef.CPU();
    this.ctx = opts.ctx;
    if (this.device.isGpu() && !this.ctx) throw new ValueError('ctx', `a GpuContext for device ${this.device}`, 'undefined');
  }

  /** MAX `shard_devices`: the devices this module (or the module it was cut from) is sharded over; `[this.device]` when unsharded. @example `sharded.shards[0].shardDevices.length // 2` */
  get shardDevices(): readonly DeviceRef[] {
    return this.shardDeviceList ?? [this.device];
  }

  /** Records that this module is shard `index` of a module sharded over `devices` with `strategy` (called by the `shard()` implementations). @example `shard.markShard(ShardingStrategy.tensorParallel(2), 1, group.devices)` */
  markShard(strategy: ShardingStrategy, index: number, devices: readonly DeviceRef[]): void {
    this.shardingStrategy = strategy;
    this.shardIndex = index;
    this.shardDeviceList = Object.freeze([...devices]);
  }

  /** Declares a parameter (default dtype: the module's). */
  protected addParameter(name: string, shape: readonly number[], dtype: DType = this.dtype): Parameter {
    if (this.params.has(name) || this.children.has(name)) throw new ValueError(`parameter name ${name}`, 'a name not used yet', name);
    const p = new Parameter(name, shape, dtype);
    this.params.set(name, p);
    return p;
  }

  /** Declares a child module; its parameters appear under `name.`. */
  protected addModule<M extends Module>(name: string, m: M): M {
    if (this.params.has(name) || this.children.has(name)) throw new ValueError(`module name ${name}`, 'a name not used yet', name);
    this.children.set(name, m);
    return m;
  }

  /** Child modules by name. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every parameter of the tree with its dotted name, in declaration order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every parameter of the tree, in namedParameters' order (without building the names: a forward's graph key walks them). */
  parameters(): Parameter[] {
    const out: Parameter[] = [];
    this.collectParameters(out);
    return out;
  }

  private collectParameters(out: Parameter[]): void {
    for (const p of this.params.values()) out.push(p);
    for (const c of this.children.values()) c.collectParameters(out);
  }

  /** The loaded host values by dotted name. */
  stateDict(): Map<string, HostTensor> {
    const m = new Map<string, HostTensor>();
    for (const [n, p] of this.namedParameters()) if (p.host) m.set(n, p.host);
    return m;
  }

  /**
   * Loads weights by dotted name. Throws StateDictError (missing or
   * unexpected keys), ShapeError or DTypeError before storing anything;
   * uploads to the GPU when the module lives there.
   */
  loadStateDict(sd: StateDict): void {
    const given = new Map(entries(sd));
    const named = this.namedParameters();
    const missing = named.filter(([n]) => !given.has(n)).map(([n]) => n);
    const known = new Set(named.map(([n]) => n));
    const unexpected = [...given.keys()].filter((k) => !known.has(k));
    if (missing.length || unexpected.length) throw new StateDictError(this.constructor.name + '.loadStateDict', missing, unexpected);
    for (const [n, p] of named) p.check(n, given.get(n)!);
    for (const [n, p] of named) {
      p.destroy();
      p.host = given.get(n)!;
    }
    this.afterLoad();
  }

  /**
   * Called after every successful load: uploads the tree's own parameters on GPU modules; on CPU modules moves the
   * float ones (float32, bfloat16, float16) into one memory the CPU kernels read in place (kernels-wgsl cpuResident:
   * copies with the same dtypes, shapes and values, one per module; the loaded tensors themselves are left as they
   * are). Subclasses may pack weights here.
   */
  protected afterLoad(): void {
    for (const c of this.children.values()) c.afterLoad();
    if (this.device.isGpu()) {
      for (const p of this.params.values()) p.gpu = GpuTensor.upload(this.ctx!, p.value, p.name);
    } else if (this.device.isCpu()) {
      const floats = [...this.params.values()].filter((p) => RESIDENT_DTYPES.has(p.value.dtype));
      const moved = cpuResident(floats.map((p) => p.value));
      floats.forEach((p, i) => (p.host = moved[i]));
    }
  }

  /** Frees every GPU buffer of the tree. Idempotent. */
  destroy(): void {
    for (const p of this.params.values()) p.destroy();
    for (const c of this.children.values()) c.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * A list of modules whose parameters are named `0.`, `1.`, ... (MAX's
 * `LayerList`).
 *
 * @example
 * ```ts
 * const experts = new LayerList([mlp0, mlp1]);
 * experts.at(1) === mlp1; experts.length // 2
 * ```
 */
export class LayerList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[];
  constructor(items: readonly M[], opts: ModuleOptions = {}) {
    super({ dtype: opts.dtype ?? items[0]?.dtype, device: opts.device ?? items[0]?.device, ctx: opts.ctx ?? items[0]?.ctx });
    this.items = [...items];
    this.items.forEach((m, i) => this.addModule(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  /** The i-th module. */
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new ValueError('LayerList index', `0..${this.items.length - 1}`, i);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
