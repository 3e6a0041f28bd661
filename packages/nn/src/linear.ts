import { DTYPES, DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import { GpuTensor, Recorder, linearGpu, linearRef, type BufferPool } from '@webmoe/kernels-wgsl';
import type { ShardingStrategy } from '@webmoe/sharding';
import { Module, type ModuleOptions, type Parameter } from './module.js';
import { ShardedLinear, resolveShardGroup, strategyOf, type ShardDevices } from './shard.js';

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
 * through `linearRef`.
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
    return linearRef(x, t, this.weight.value, this.bias?.value);
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
