import { DTYPES, DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, linearGpu, linearCpu, type BufferPool } from '@webmoe/kernels-wgsl';
import { ShardingError, ShardingStrategy, allGather, cpuAllGather, cpuAllReduce, takeRanges, type DeviceGroup } from '@webmoe/sharding';
import { Module, type ModuleOptions, type Parameter } from './module.js';
import {
  checkWidths,
  gpuPartialSumPerDevice,
  buildShards,
  resolveShardGroup,
  shardInputRows,
  shardOutput,
  strategyOf,
  type ShardDevices,
  type ShardInput,
  type ShardOutput,
} from './shard.js';

/** Options of {@link Linear}. @example `{ inDim: 64, outDim: 8, hasBias: true, dtype: 'bfloat16' }` */
export interface LinearOptions extends ModuleOptions {
  /** Input features. */
  inDim: number;
  /** Output features. */
  outDim: number;
  /** Whether the layer has a bias [outDim] (default false). */
  hasBias?: boolean;
}

/** Options of the recording methods: a scratch pool and a list that collects temporaries to free after submit. @example `const scratch: { destroy(): void }[] = []; mlp.record(rec, x, { pool, scratch })` */
export interface RecordOptions {
  pool?: BufferPool;
  /** Temporaries the caller destroys after `rec.submit()` (destroying them earlier would free buffers the recording still uses). */
  scratch?: { destroy(): void }[];
}

/** Checks x as [T, dim] f32 values (GpuTensor or host array) and returns T. @example `rowsOf('x', new Float32Array(8), 4) // 2` */
export function rowsOf(what: string, x: { length: number } | GpuTensor | HostTensor, dim: number): number {
  if (x instanceof HostTensor) {
    if (x.shape.length !== 2 || x.shape[1] !== dim) throw new ShapeError(what, ['T', dim], x.shape);
    if (!DTYPES[x.dtype].isFloat) throw new DTypeError(what, ['float32', 'bfloat16', 'float16', 'float8_e4m3fn', 'float8_e5m2'], x.dtype);
    return x.shape[0];
  }
  if (x instanceof GpuTensor) {
    if (x.shape.length !== 2 || x.shape[1] !== dim) throw new ShapeError(what, ['T', dim], x.shape);
    if (x.dtype !== 'float32') throw new DTypeError(what, 'float32', x.dtype);
    return x.shape[0];
  }
  if (x.length % dim !== 0) throw new ShapeError(what, `a multiple of ${dim} values ([T, ${dim}])`, `${x.length} values`);
  return x.length / dim;
}

/**
 * `y = x @ W^T + b` with `W` [outDim, inDim] kept in its storage dtype
 * (float32, bfloat16, float16). On the GPU through `linearGpu`, on the CPU
 * through `linearCpu` (the results of `linearRef`).
 *
 * @example
 * ```ts
 * const lin = new Linear({ inDim: 4, outDim: 2, hasBias: true });
 * lin.loadStateDict({ weight: HostTensor.fromFloat32([2, 4], w), bias: HostTensor.fromFloat32([2], b) });
 * const y = await lin.forward(new Float32Array(8)); // [2, 2]
 * ```
 */
export class Linear extends Module {
  readonly inDim: number;
  readonly outDim: number;
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(opts: LinearOptions) {
    super(opts);
    for (const k of ['inDim', 'outDim'] as const) {
      if (!Number.isInteger(opts[k]) || opts[k] <= 0) throw new ValueError(`Linear ${k}`, 'a positive integer', opts[k]);
    }
    this.inDim = opts.inDim;
    this.outDim = opts.outDim;
    this.weight = this.addParameter('weight', [opts.outDim, opts.inDim]);
    this.bias = opts.hasBias ? this.addParameter('bias', [opts.outDim]) : undefined;
  }

  /**
   * MAX `Linear.shard(devices)`: cuts the loaded layer over `devices` with
   * `shardingStrategy` (rowwise, columnwise or replicate; or `strategy`).
   * The result holds one Linear per device (`shards`, each with
   * `shardIndex`, `shardDevices`, `shardingStrategy`) and runs the sharded
   * forward. ShardingError (devices count vs the strategy's, a shard left
   * empty) before anything is allocated.
   *
   * @example
   * ```ts
   * lin.shardingStrategy = ShardingStrategy.rowwise(2);
   * const s = lin.shard(DeviceGroup.cpu(2));
   * await s.forward(x); // [T, outDim]
   * ```
   */
  shard(devices: ShardDevices, strategy?: ShardingStrategy): ShardedLinear {
    const st = strategyOf('Linear.shard', this, strategy);
    const group = resolveShardGroup('Linear.shard', devices, st);
    this.markShard(st, 0, group.devices);
    return new ShardedLinear(this, group, st);
  }

  /** Records `x @ W^T + b` for x f32 [T, inDim] on the GPU; returns f32 [T, outDim] (from `opts.pool` when given). */
  record(rec: Recorder, x: GpuTensor, opts: RecordOptions = {}): GpuTensor {
    rowsOf('Linear input', x, this.inDim);
    return linearGpu(this.ctx!, rec, x, this.weight.gpuValue, { bias: this.bias?.gpuValue, pool: opts.pool });
  }

  /** The same on the host (TypeScript reference). */
  forwardHost(x: Float32Array, T?: number): Float32Array {
    const t = T ?? rowsOf('Linear input', x, this.inDim);
    if (x.length !== t * this.inDim) throw new ShapeError('Linear input', [t, this.inDim], `${x.length} values`);
    return linearCpu(x, t, this.weight.value, this.bias?.value);
  }

  /** Runs on the module's device: x [T, inDim] f32 values; returns [T, outDim]. */
  async forward(x: Float32Array | HostTensor): Promise<Float32Array> {
    if (x instanceof HostTensor) rowsOf('Linear input', x, this.inDim); // shape [T, inDim] and a float dtype
    const xs = x instanceof HostTensor ? x.toFloat32() : x;
    const T = rowsOf('Linear input', xs, this.inDim);
    if (this.device.isCpu()) return this.forwardHost(xs, T);
    const ctx = this.ctx!;
    const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, this.inDim], xs), 'linear.x');
    try {
      const rec = new Recorder(ctx);
      const y = this.record(rec, xg);
      rec.submit();
      try {
        return (await y.download()).data as Float32Array;
      } finally {
        y.destroy();
      }
    } finally {
      xg.destroy();
    }
  }
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
    const shards = buildShards(
      n,
      strategy,
      group.devices,
      (i) => new Linear({ dtype: source.dtype, inDim: this.cols[i][1] - this.cols[i][0], outDim: rows[i][1] - rows[i][0], hasBias: !!b, device: group.devices[i], ctx: group.kind === 'gpu' ? group.context(i) : undefined }),
      (i) => {
        const [r0, r1] = rows[i];
        const [c0, c1] = this.cols[i];
        const sd: Record<string, HostTensor> = { weight: takeRanges(takeRanges(w, 0, [[r0, r1]]), 1, [[c0, c1]]) };
        if (b) sd.bias = kind === 'rowwise' ? takeRanges(b, 0, [[r0, r1]]) : ShardingStrategy.leader(n).shard(b, i).tensor;
        return sd;
      },
    );
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
