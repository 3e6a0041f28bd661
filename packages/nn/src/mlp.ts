import { HostTensor, ShapeError, ValueError, type HostArray } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  denseGroupingGpu,
  groupedGateUpGpu,
  groupedDownGpu,
  gemvGateUpGpu,
  gemvDownGpu,
  type ExpertActivation,
  useSingleExpertGemv,
  gatedActivationRef,
} from '@webmoe/kernels-wgsl';
import { ShardingError, ShardingStrategy, cpuAllReduce, takeRanges, type DeviceGroup } from '@webmoe/sharding';
import { Module, type ModuleOptions } from './module.js';
import { Linear, rowsOf, type RecordOptions } from './linear.js';
import {
  buildShards,
  checkWidths,
  gpuPartialSum,
  resolveShardGroup,
  shardInputRows,
  shardOutput,
  strategyOf,
  type ShardDevices,
  type ShardInput,
  type ShardOutput,
} from './shard.js';

/** The gated activation of an {@link MLP}: SiLU-gated, or MAX's `swigluLimit` clamp. @example `{ kind: 'swiglu_limit', limit: 7 }` */
export type MLPActivation = { kind: 'silu' } | { kind: 'swiglu_limit'; limit: number };

/** Options of {@link MLP}. @example `{ hiddenDim: 64, feedForwardLength: 32, dtype: 'bfloat16' }` */
export interface MLPOptions extends ModuleOptions {
  /** H: input and output features. */
  hiddenDim: number;
  /** I: width of the gate/up projections. */
  feedForwardLength: number;
  /** Biases on the three projections (default false). */
  hasBias?: boolean;
  /** Default `{ kind: 'silu' }`: `down(silu(gate(x)) * up(x))`. */
  activation?: MLPActivation;
}

/** Concatenates host tensors of one dtype along the first axis, in their storage type (no f32 round trip). @example `concatRows([gate, up], [1, 2 * I, H])` */
export function concatRows(parts: readonly HostTensor[], shape: readonly number[]): HostTensor {
  const dtype = parts[0].dtype;
  const n = parts.reduce((s, p) => s + p.size, 0);
  const out = new (parts[0].data.constructor as { new (n: number): HostArray })(n);
  let off = 0;
  for (const p of parts) {
    if (p.dtype !== dtype) throw new ValueError('concatRows', `all parts ${dtype}`, p.dtype);
    (out as Uint8Array).set(p.data as Uint8Array, off);
    off += p.size;
  }
  return new HostTensor(dtype, shape, out);
}

/**
 * The gated MLP `down(act(gate(x), up(x)))` (MAX's `MLP`), with children
 * `gate_proj`, `up_proj`, `down_proj`. On a GPU it packs gate and up into one
 * [1, 2I, H] tensor (in the storage dtype) and runs through the grouped
 * expert GEMMs with a dense grouping; its Linear children then hold the host
 * copies only.
 *
 * @example
 * ```ts
 * const mlp = new MLP({ hiddenDim: 64, feedForwardLength: 32, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx });
 * mlp.loadStateDict({ 'gate_proj.weight': g, 'up_proj.weight': u, 'down_proj.weight': d });
 * const y = await mlp.forward(x); // x: Float32Array [T, 64]
 * ```
 */
export class MLP extends Module {
  readonly hiddenDim: number;
  readonly feedForwardLength: number;
  readonly activation: MLPActivation;
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;
  private packed: { gateUp: GpuTensor; down: GpuTensor; gateUpBias?: GpuTensor; downBias?: GpuTensor } | undefined;

  constructor(opts: MLPOptions) {
    super(opts);
    this.hiddenDim = opts.hiddenDim;
    this.feedForwardLength = opts.feedForwardLength;
    this.activation = opts.activation ?? { kind: 'silu' };
    const H = opts.hiddenDim;
    const I = opts.feedForwardLength;
    const child = { dtype: this.dtype, hasBias: !!opts.hasBias };
    this.gateProj = this.addModule('gate_proj', new Linear({ ...child, inDim: H, outDim: I }));
    this.upProj = this.addModule('up_proj', new Linear({ ...child, inDim: H, outDim: I }));
    this.downProj = this.addModule('down_proj', new Linear({ ...child, inDim: I, outDim: H }));
  }

  /** The activation in the kernels' terms (concat layout). */
  get expertActivation(): ExpertActivation {
    return this.activation.kind === 'silu' ? { kind: 'silu', layout: 'concat' } : { kind: 'swiglu_limit', limit: this.activation.limit, layout: 'concat' };
  }

  protected override afterLoad(): void {
    super.afterLoad();
    this.destroyPacked();
    if (!this.device.isGpu()) return;
    const ctx = this.ctx!;
    const H = this.hiddenDim;
    const I = this.feedForwardLength;
    const gu = concatRows([this.gateProj.weight.value, this.upProj.weight.value], [1, 2 * I, H]);
    this.packed = {
      gateUp: GpuTensor.upload(ctx, gu, 'mlp.gate_up'),
      down: GpuTensor.upload(ctx, this.downProj.weight.value.reshape([1, H, I]), 'mlp.down'),
    };
    if (this.gateProj.bias) {
      this.packed.gateUpBias = GpuTensor.upload(ctx, concatRows([this.gateProj.bias.value, this.upProj.bias!.value], [1, 2 * I]), 'mlp.gate_up_bias');
      this.packed.downBias = GpuTensor.upload(ctx, this.downProj.bias!.value.reshape([1, H]), 'mlp.down_bias');
    }
  }

  private destroyPacked(): void {
    if (!this.packed) return;
    for (const t of Object.values(this.packed)) t?.destroy();
    this.packed = undefined;
  }

  /**
   * MAX `MLP.shard(devices)`: cuts the loaded MLP over `devices` with
   * `shardingStrategy` (`tensorParallel(n)` or `replicate(n)`; or
   * `strategy`), see {@link ShardedMLP}. ShardingError (devices count vs the
   * strategy's, feedForwardLength too small for n shards) before anything
   * is allocated.
   *
   * @example
   * ```ts
   * mlp.shardingStrategy = ShardingStrategy.tensorParallel(2);
   * const s = mlp.shard(group); // group = await DeviceGroup.create(2)
   * const y = await s.forward(x);
   * s.destroy();
   * ```
   */
  shard(devices: ShardDevices, strategy?: ShardingStrategy): ShardedMLP {
    const st = strategyOf('MLP.shard', this, strategy);
    const group = resolveShardGroup('MLP.shard', devices, st);
    this.markShard(st, 0, group.devices);
    return new ShardedMLP(this, group, st);
  }

  /** The packed GPU weights (gate_up [1, 2I, H], down [1, H, I]); throws before loading. */
  get packedGpu(): { gateUp: GpuTensor; down: GpuTensor; gateUpBias?: GpuTensor; downBias?: GpuTensor } {
    if (!this.packed) throw new ValueError('MLP GPU weights', 'a GPU MLP with loaded weights', this.device.toString());
    return this.packed;
  }

  /**
   * Records the MLP for x f32 [T, H] into `rec`; returns f32 [T, H]. The
   * temporaries go to `opts.scratch` (destroy them after submit).
   */
  record(rec: Recorder, x: GpuTensor, opts: RecordOptions = {}): GpuTensor {
    const T = rowsOf('MLP input', x, this.hiddenDim);
    if (!opts.scratch) throw new ValueError('MLP.record opts.scratch', 'an array that collects the temporaries to destroy after submit', 'undefined');
    const w = this.packedGpu;
    const ctx = this.ctx!;
    const g = denseGroupingGpu(ctx, rec, T, { pool: opts.pool });
    // Few rows (decode): the GEMV kernels stream each weight once over many workgroups.
    const gemv = useSingleExpertGemv(T, ctx.adapterInfo.software);
    const h = gemv
      ? gemvGateUpGpu(ctx, rec, x, g, { kind: 'dense', w: w.gateUp }, this.expertActivation, { pool: opts.pool, bias: w.gateUpBias })
      : groupedGateUpGpu(ctx, rec, x, g, { kind: 'dense', w: w.gateUp }, w.gateUpBias, this.expertActivation, { pool: opts.pool });
    const y = gemv
      ? gemvDownGpu(ctx, rec, h, g, { kind: 'dense', w: w.down }, { pool: opts.pool, bias: w.downBias })
      : groupedDownGpu(ctx, rec, h, g, { kind: 'dense', w: w.down }, w.downBias, { pool: opts.pool });
    opts.scratch.push(h, g);
    return y;
  }

  /** The MLP on the host (TypeScript references): x [T, H] -> [T, H]. */
  forwardHost(x: Float32Array, T?: number): Float32Array {
    const t = T ?? rowsOf('MLP input', x, this.hiddenDim);
    if (x.length !== t * this.hiddenDim) throw new ShapeError('MLP input', [t, this.hiddenDim], `${x.length} values`);
    const g = this.gateProj.forwardHost(x, t);
    const u = this.upProj.forwardHost(x, t);
    const h = new Float32Array(g.length);
    const a = this.activation;
    const act = { kind: a.kind, limit: a.kind === 'swiglu_limit' ? a.limit : 0, alpha: 0 };
    for (let i = 0; i < h.length; i++) h[i] = gatedActivationRef(act, g[i], u[i]);
    return this.downProj.forwardHost(h, t);
  }

  /** Runs on the module's device: x [T, H] f32 values; returns [T, H]. */
  async forward(x: Float32Array | HostTensor): Promise<Float32Array> {
    if (x instanceof HostTensor) rowsOf('MLP input', x, this.hiddenDim); // shape [T, H] and a float dtype
    const xs = x instanceof HostTensor ? x.toFloat32() : x;
    const T = rowsOf('MLP input', xs, this.hiddenDim);
    if (this.device.isCpu()) return this.forwardHost(xs, T);
    const ctx = this.ctx!;
    const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, this.hiddenDim], xs), 'mlp.x');
    const scratch: { destroy(): void }[] = [xg];
    try {
      const rec = new Recorder(ctx);
      const y = this.record(rec, xg, { scratch });
      scratch.push(y);
      rec.submit();
      return (await y.download()).data as Float32Array;
    } finally {
      for (const t of scratch) t.destroy();
    }
  }

  override destroy(): void {
    this.destroyPacked();
    super.destroy();
  }
}

/**
 * An {@link MLP} cut over the devices of a group with
 * `ShardingStrategy.tensorParallel(n)` (MAX `MLP.shard`): shard i holds gate
 * and up rows `[s, e) = shardRange(I, i, n, unit)` (the `gateUp`
 * split of the fused gate/up weight), the matching down columns
 * (`axiswise(-1)`), gate/up biases sliced like their rows and the down
 * bias on shard 0 only (`leader`). Each shard's
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
    const shards = buildShards(
      n,
      strategy,
      group.devices,
      (i) =>
        new MLP({
          dtype: source.dtype,
          hiddenDim: H,
          feedForwardLength: ranges[i][1] - ranges[i][0],
          hasBias: bias,
          activation: source.activation,
          device: group.devices[i],
          ctx: group.kind === 'gpu' ? group.context(i) : undefined,
        }),
      (i) => {
        const r: [number, number][] = [ranges[i]];
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
        return sd;
      },
    );
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
