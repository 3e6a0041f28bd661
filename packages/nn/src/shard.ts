import { DeviceRef, HostTensor, DTYPES, ShapeError, DTypeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext } from '@webmoe/kernels-wgsl';
import {
  DeviceGroup,
  ShardingError,
  ShardingStrategy,
  allGather,
  allReduce,
  cpuAllGather,
  cpuAllReduce,
  shardRange,
  takeRanges,
} from '@webmoe/sharding';
import { Linear } from './linear.js';
import { MLP } from './mlp.js';
import type { Module } from './module.js';

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
  const partials: GpuTensor[] = [];
  const scratch: { destroy(): void }[] = [];
  try {
    for (let i = 0; i < group.size; i++) {
      const ctx = group.context(i);
      const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, inDim], xs), 'sharded.x');
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

function checkWidths(what: string, dim: number, n: number, unit: number): [number, number][] {
  const r = Array.from({ length: n }, (_, i) => shardRange(dim, i, n, unit));
  const empty = r.findIndex(([s, e]) => e === s);
  if (empty >= 0) throw new ShardingError(`${what} = ${dim} over ${n} shards (unit ${unit})`, `at least ${n * unit} so that every shard gets a slice`, `an empty shard ${empty}`);
  return r;
}

/**
 * A {@link Linear} cut over the devices of a group (MAX `Linear.shard`):
 * rowwise -> each shard holds `out_i` weight (and bias) rows and the outputs
 * are all-gathered along the last axis; columnwise -> each shard holds
 * `in_i` weight columns and sees the matching input columns, the bias goes
 * to shard 0 only, and the partial outputs are all-reduced (f32, fixed
 * order); replicate -> every shard holds the whole layer (shard 0 answers).
 * Weights keep their storage dtype (host slicing copies bits).
 *
 * @example
 * ```ts
 * lin.shardingStrategy = ShardingStrategy.columnwise(2);
 * const s = lin.shard(group);           // group: DeviceGroup of 2 (GPU or CPU)
 * const y = await s.forward(x);         // Float32Array [T, outDim], as lin.forward(x)
 * s.destroy();
 * ```
 */
export class ShardedLinear {
  /** MAX `shard()`'s result: one Linear per device. */
  readonly shards: readonly Linear[];
  private readonly cols: readonly [number, number][];
  constructor(
    readonly source: Linear,
    readonly group: DeviceGroup,
    readonly strategy: ShardingStrategy,
  ) {
    const n = group.size;
    const { inDim, outDim } = source;
    const kind = strategy.kind;
    if (kind !== 'rowwise' && kind !== 'columnwise' && kind !== 'replicate') {
      throw new ShardingError('Linear.shard shardingStrategy', "rowwise | columnwise | replicate", kind);
    }
    const rows = kind === 'rowwise' ? checkWidths('Linear outDim', outDim, n, strategy.unit) : Array.from({ length: n }, () => [0, outDim] as [number, number]);
    this.cols = kind === 'columnwise' ? checkWidths('Linear inDim', inDim, n, strategy.unit) : Array.from({ length: n }, () => [0, inDim] as [number, number]);
    const w = source.weight.value;
    const b = source.bias?.value;
    const shards: Linear[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const [r0, r1] = rows[i];
        const [c0, c1] = this.cols[i];
        const lin = new Linear({ dtype: source.dtype, inDim: c1 - c0, outDim: r1 - r0, hasBias: !!b, device: group.devices[i], ctx: group.kind === 'gpu' ? group.context(i) : undefined });
        shards.push(lin);
        const sd: Record<string, HostTensor> = { weight: takeRanges(takeRanges(w, 0, [[r0, r1]]), 1, [[c0, c1]]) };
        if (b) sd.bias = kind === 'rowwise' ? takeRanges(b, 0, [[r0, r1]]) : ShardingStrategy.leader(n).shard(b, i).tensor;
        lin.loadStateDict(sd);
        lin.markShard(strategy, i, group.devices);
      }
    } catch (e) {
      for (const s of shards) s.destroy();
      throw e;
    }
    this.shards = shards;
  }

  /** x [T, inDim] on the host or on device 0 -> f32 [T, outDim], the unsharded result (to f32 rounding). */
  async forward<X extends ShardInput>(x: X): Promise<ShardOutput<X>> {
    const { inDim, outDim } = this.source;
    const { T, xs } = await shardInputRows('Linear sharded input', x, inDim, this.group);
    const n = this.group.size;
    const kind = this.strategy.kind;
    const xsOf = (i: number) => {
      if (kind !== 'columnwise') return xs;
      const [c0, c1] = this.cols[i];
      return takeRanges(new HostTensor('float32', [T, inDim], xs), 1, [[c0, c1]]).data as Float32Array;
    };
    let y: Float32Array;
    if (this.group.kind === 'cpu') {
      const parts = this.shards.map((s, i) => s.forwardHost(xsOf(i), T));
      if (kind === 'rowwise') y = cpuAllGather(parts.map((p, i) => new HostTensor('float32', [T, this.shards[i].outDim], p)), 1)[0].data as Float32Array;
      else if (kind === 'columnwise') y = cpuAllReduce(parts)[0];
      else y = parts[0];
    } else if (kind === 'columnwise') {
      y = await gpuPartialSumPerDevice(this.group, (i) => xsOf(i), T, (i) => this.shards[i].inDim, outDim, (i, _ctx, rec, xg) => this.shards[i].record(rec, xg));
    } else {
      const outs: GpuTensor[] = [];
      const ins: GpuTensor[] = [];
      try {
        const m = kind === 'rowwise' ? n : 1;
        for (let i = 0; i < m; i++) {
          const ctx = this.group.context(i);
          const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, inDim], xs), 'sharded.x');
          ins.push(xg);
          const rec = new Recorder(ctx);
          outs.push(this.shards[i].record(rec, xg));
          rec.submit();
        }
        if (kind === 'rowwise') {
          const full = await allGather(outs, 1);
          try {
            y = (await full[0].download()).data as Float32Array;
          } finally {
            for (const f of full) f.destroy();
          }
        } else y = (await outs[0].download()).data as Float32Array;
      } finally {
        for (const t of [...outs, ...ins]) t.destroy();
      }
    }
    return shardOutput(x, y, T, outDim, this.group);
  }

  /** Frees the shards' GPU weights (the group stays the caller's). */
  destroy(): void {
    for (const s of this.shards) s.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** {@link gpuPartialSum} with a different input per device (columnwise Linear). */
async function gpuPartialSumPerDevice(
  group: DeviceGroup,
  xsOf: (i: number) => Float32Array,
  T: number,
  inDimOf: (i: number) => number,
  outDim: number,
  record: (i: number, ctx: GpuContext, rec: Recorder, x: GpuTensor) => GpuTensor,
): Promise<Float32Array> {
  const partials: GpuTensor[] = [];
  const ins: GpuTensor[] = [];
  try {
    for (let i = 0; i < group.size; i++) {
      const ctx = group.context(i);
      const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, inDimOf(i)], xsOf(i)), 'sharded.x');
      ins.push(xg);
      const rec = new Recorder(ctx);
      partials.push(record(i, ctx, rec, xg));
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
    for (const t of [...partials, ...ins]) t.destroy();
  }
}

/**
 * An {@link MLP} cut over the devices of a group with
 * `ShardingStrategy.tensorParallel(n)` (MAX `MLP.shard`): shard i holds gate
 * and up rows `[s, e) = shardRange(I, i, n, unit)` (the `forRole('gate_up')`
 * split of the fused gate/up weight), the matching down columns
 * (`forRole('down')`), gate/up biases sliced like their rows and the down
 * bias on shard 0 only (`forRole('down_bias')` = leader). Each shard's
 * output is a partial sum; an all-reduce (f32, fixed order) gives the
 * output. Uneven I (e.g. 32 over 3 = 11, 11, 10) works. `replicate(n)`
 * gives n whole copies (shard 0 answers).
 *
 * @example
 * ```ts
 * mlp.shardingStrategy = ShardingStrategy.tensorParallel(3);
 * const s = mlp.shard(group);      // 3 MLPs of width 11, 11, 10 (I = 32)
 * const y = await s.forward(x);    // == await mlp.forward(x) to f32 rounding
 * ```
 */
export class ShardedMLP {
  /** MAX `shard()`'s result: one MLP per device. */
  readonly shards: readonly MLP[];
  constructor(
    readonly source: MLP,
    readonly group: DeviceGroup,
    readonly strategy: ShardingStrategy,
  ) {
    const n = group.size;
    const H = source.hiddenDim;
    const I = source.feedForwardLength;
    if (strategy.kind !== 'tensor_parallel' && strategy.kind !== 'replicate') throw new ShardingError('MLP.shard shardingStrategy', 'tensor_parallel | replicate', strategy.kind);
    const ranges = strategy.kind === 'tensor_parallel' ? checkWidths('MLP feedForwardLength', I, n, strategy.unit) : Array.from({ length: n }, () => [0, I] as [number, number]);
    const bias = !!source.gateProj.bias;
    const shards: MLP[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const r: [number, number][] = [ranges[i]];
        const m = new MLP({
          dtype: source.dtype,
          hiddenDim: H,
          feedForwardLength: r[0][1] - r[0][0],
          hasBias: bias,
          activation: source.activation,
          device: group.devices[i],
          ctx: group.kind === 'gpu' ? group.context(i) : undefined,
        });
        shards.push(m);
        const sd: Record<string, HostTensor> = {
          'gate_proj.weight': takeRanges(source.gateProj.weight.value, 0, r),
          'up_proj.weight': takeRanges(source.upProj.weight.value, 0, r),
          'down_proj.weight': takeRanges(source.downProj.weight.value, 1, r),
        };
        if (bias) {
          sd['gate_proj.bias'] = takeRanges(source.gateProj.bias!.value, 0, r);
          sd['up_proj.bias'] = takeRanges(source.upProj.bias!.value, 0, r);
          const db = source.downProj.bias!.value;
          sd['down_proj.bias'] = strategy.kind === 'tensor_parallel' ? ShardingStrategy.leader(n).shard(db, i).tensor : db;
        }
        m.loadStateDict(sd);
        m.markShard(strategy, i, group.devices);
      }
    } catch (e) {
      for (const s of shards) s.destroy();
      throw e;
    }
    this.shards = shards;
  }

  /** x [T, H] on the host or on device 0 -> f32 [T, H], the unsharded result (to f32 rounding). */
  async forward<X extends ShardInput>(x: X): Promise<ShardOutput<X>> {
    const H = this.source.hiddenDim;
    const { T, xs } = await shardInputRows('MLP sharded input', x, H, this.group);
    const replicate = this.strategy.kind === 'replicate';
    let y: Float32Array;
    if (this.group.kind === 'cpu') {
      y = replicate ? this.shards[0].forwardHost(xs, T) : cpuAllReduce(this.shards.map((s) => s.forwardHost(xs, T)))[0];
    } else if (replicate) {
      y = await this.shards[0].forward(xs);
    } else {
      y = await gpuPartialSum(this.group, xs, T, H, H, (i, _ctx, rec, xg, scratch) => this.shards[i].record(rec, xg, { scratch }));
    }
    return shardOutput(x, y, T, H, this.group);
  }

  /** Frees the shards' GPU weights (the group stays the caller's). */
  destroy(): void {
    for (const s of this.shards) s.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
