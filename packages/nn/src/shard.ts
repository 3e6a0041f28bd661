import { DeviceRef, HostTensor, DTYPES, ShapeError, DTypeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import { DeviceGroup, ShardingError, ShardingStrategy, allReduce, shardRange } from '@webmoe/sharding';
import type { Module, StateDict } from './module.js';

// The sharding helpers that Linear, MLP (linear.ts, mlp.ts: each class sits
// beside its sharded form) and @webmoe/moe's ShardedMoE share. Nothing here
// imports a layer, so the layers can import this file without a circle.

/** Where `shard(devices)` puts the shards: a DeviceGroup (GPU or CPU), or CPU DeviceRefs (one CPU shard each). @example `mlp.shard(await DeviceGroup.create(2))` or `mlp.shard([DeviceRef.CPU(), DeviceRef.CPU()])` */
export type ShardDevices = DeviceGroup | readonly DeviceRef[];

/** What a sharded forward takes: x f32 [T, dim] on the host, or a GpuTensor on device 0 of the group. @example `const x: ShardInput = new Float32Array(T * H);` */
export type ShardInput = Float32Array | HostTensor | GpuTensor;
/** The output kind for each input kind: host in, host out; device 0 in, device 0 out. @example `const y: ShardOutput<Float32Array> = await s.forward(x);` */
export type ShardOutput<X> = X extends GpuTensor ? GpuTensor : X extends HostTensor ? HostTensor : Float32Array;

/**
 * The DeviceGroup of `devices`, checked against the strategy's device count
 * (a ShardingError naming `what`, expected vs got, before anything is
 * allocated). CPU DeviceRefs give `DeviceGroup.cpu(n)`; GPU DeviceRefs carry
 * no GpuContext and are refused (pass the DeviceGroup).
 *
 * @example
 * ```ts
 * const g = resolveShardGroup('MLP.shard', [DeviceRef.CPU(), DeviceRef.CPU()], ShardingStrategy.tensorParallel(2)); // g.kind === 'cpu'
 * ```
 */
export function resolveShardGroup(what: string, devices: ShardDevices, strategy: ShardingStrategy): DeviceGroup {
  let group: DeviceGroup;
  if (devices instanceof DeviceGroup) group = devices;
  else if (Array.isArray(devices)) {
    if (devices.length < 1) throw new ShardingError(`${what} devices`, 'at least one device', 0);
    if (devices.some((d) => !(d instanceof DeviceRef) || !d.isCpu())) {
      throw new ShardingError(`${what} devices`, 'a DeviceGroup (GPU shards need their GpuContexts) or CPU DeviceRefs', devices.map(String).join(', '));
    }
    group = DeviceGroup.cpu(devices.length);
  } else throw new ShardingError(`${what} devices`, 'a DeviceGroup or DeviceRef[]', typeof devices);
  if (strategy.numDevices !== group.size) {
    throw new ShardingError(`${what} devices (shardingStrategy ${strategy.kind} numDevices = ${strategy.numDevices})`, `${strategy.numDevices} devices`, group.size);
  }
  return group;
}

/** The module's strategy (or `given`), typed error when neither is set. @example `const s = strategyOf('MLP.shard', mlp, undefined)` */
export function strategyOf(what: string, m: Module, given: ShardingStrategy | undefined): ShardingStrategy {
  const s = given ?? m.shardingStrategy;
  if (!(s instanceof ShardingStrategy)) throw new ShardingError(`${what} shardingStrategy`, 'a ShardingStrategy (set module.shardingStrategy or pass one to shard())', s === undefined ? 'undefined' : typeof s);
  return s;
}

/**
 * Reads a sharded forward's input as host f32 values [T, dim]. A GpuTensor
 * must live on device 0 of the group (it is downloaded once).
 *
 * @example
 * ```ts
 * const { T, xs } = await shardInputRows('MLP sharded input', x, 64, group);
 * ```
 */
export async function shardInputRows(what: string, x: ShardInput, dim: number, group: DeviceGroup): Promise<{ T: number; xs: Float32Array }> {
  if (x instanceof GpuTensor) {
    if (group.kind !== 'gpu' || x.ctx.device !== group.context(0).device) throw new ValueError(what, 'a host array or a GpuTensor on device 0 of the group', 'a GpuTensor of another device');
    if (x.shape.length !== 2 || x.shape[1] !== dim) throw new ShapeError(what, ['T', dim], x.shape);
    if (x.dtype !== 'float32') throw new DTypeError(what, 'float32', x.dtype);
    return { T: x.shape[0], xs: (await x.download()).data as Float32Array };
  }
  if (x instanceof HostTensor) {
    if (x.shape.length !== 2 || x.shape[1] !== dim) throw new ShapeError(what, ['T', dim], x.shape);
    if (!DTYPES[x.dtype]?.isFloat) throw new DTypeError(what, ['float32', 'bfloat16', 'float16'], x.dtype);
    return { T: x.shape[0], xs: x.toFloat32() };
  }
  if (x instanceof Float32Array) {
    if (x.length % dim !== 0) throw new ShapeError(what, `T*${dim} values`, `${x.length} values`);
    return { T: x.length / dim, xs: x };
  }
  throw new ValueError(what, 'a Float32Array, HostTensor or GpuTensor', typeof x);
}

/** Wraps host output values like the input came: Float32Array, HostTensor [T, dim] f32, or a GpuTensor on device 0. @example `return shardOutput(x, y, T, H, group)` */
export function shardOutput<X extends ShardInput>(x: X, y: Float32Array, T: number, dim: number, group: DeviceGroup): ShardOutput<X> {
  if (x instanceof GpuTensor) return GpuTensor.upload(group.context(0), new HostTensor('float32', [T, dim], y), 'sharded.out') as ShardOutput<X>;
  if (x instanceof HostTensor) return new HostTensor('float32', [T, dim], y) as ShardOutput<X>;
  return y as ShardOutput<X>;
}

/**
 * Runs `record(i, ctx, rec, x_i, scratch)` on every GPU device of `group`
 * (x uploaded to each), then all-reduces the f32 partial outputs [T, outDim]
 * in the fixed order 0 + 1 + ... and returns the sum on the host.
 *
 * @example
 * ```ts
 * const y = await gpuPartialSum(group, xs, T, H, H, (i, ctx, rec, x, scratch) => shards[i].record(rec, x, { scratch }));
 * ```
 */
export async function gpuPartialSum(
  group: DeviceGroup,
  xs: Float32Array,
  T: number,
  inDim: number,
  outDim: number,
  record: (i: number, ctx: GpuContext, rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]) => GpuTensor,
): Promise<Float32Array> {
  return gpuPartialSumPerDevice(group, () => xs, T, () => inDim, outDim, record);
}

/** The `[start, end)` slice of `dim` of each of n shards (`shardRange`); ShardingError naming `what` when a shard would be empty. @example `checkWidths('MLP feedForwardLength', 32, 3, 1) // [[0, 11], [11, 22], [22, 32]]` */
export function checkWidths(what: string, dim: number, n: number, unit: number): [number, number][] {
  const r = Array.from({ length: n }, (_, i) => shardRange(dim, i, n, unit));
  const empty = r.findIndex(([s, e]) => e === s);
  if (empty >= 0) throw new ShardingError(`${what} = ${dim} over ${n} shards (unit ${unit})`, `at least ${n * unit} so that every shard gets a slice`, `an empty shard ${empty}`);
  return r;
}

/** {@link gpuPartialSum} with a different input per device (columnwise Linear). */
export async function gpuPartialSumPerDevice(
  group: DeviceGroup,
  xsOf: (i: number) => Float32Array,
  T: number,
  inDimOf: (i: number) => number,
  outDim: number,
  record: (i: number, ctx: GpuContext, rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]) => GpuTensor,
): Promise<Float32Array> {
  const partials: GpuTensor[] = [];
  const scratch: { destroy(): void }[] = [];
  try {
    for (let i = 0; i < group.size; i++) {
      const ctx = group.context(i);
      const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, inDimOf(i)], xsOf(i)), 'sharded.x');
      scratch.push(xg);
      const rec = new Recorder(ctx, { label: `sharded.partial${i}` });
      partials.push(record(i, ctx, rec, xg, scratch));
      rec.submit();
    }
    const sums = await allReduce(partials);
    try {
      const y = (await sums[0].download()).data as Float32Array;
      if (y.length !== T * outDim) throw new ShapeError('sharded partial sums', [T, outDim], [y.length]);
      return y;
    } finally {
      for (const s of sums) s.destroy();
    }
  } finally {
    for (const p of partials) p.destroy();
    for (const s of scratch) s.destroy();
  }
}

/**
 * Builds the n shards of a module (the loop every `shard()` runs): shard i is
 * `create(i)`, loaded with `state(i, shard)` and marked as shard `indexOf(i)`
 * (default i) of `strategy` over `devices`. On any error every shard made so
 * far is destroyed before the error is rethrown: nothing half-built stays.
 * @example `const shards = buildShards(2, st, group.devices, (i) => new Linear(opts(i)), (i) => ({ weight: slice(i) }))`
 */
export function buildShards<M extends Module>(
  n: number,
  strategy: ShardingStrategy,
  devices: readonly DeviceRef[],
  create: (i: number) => M,
  state: (i: number, shard: M) => StateDict,
  indexOf: (i: number) => number = (i) => i,
): M[] {
  const shards: M[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const m = create(i);
      shards.push(m);
      m.loadStateDict(state(i, m));
      m.markShard(strategy, indexOf(i), devices);
    }
  } catch (e) {
    for (const s of shards) s.destroy();
    throw e;
  }
  return shards;
}
