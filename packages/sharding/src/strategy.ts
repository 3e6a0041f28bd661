// ShardingStrategy: MAX's strategies as one class (each kind's shard and validity rules side by side). Slightly over
// ~400 lines on purpose: every strategy's shard(), its checks and its docs belong to the one class callers see.
import { HostTensor, allocHost } from '@webmoe/tensor';
import { ShardingError } from './errors.js';
import { checkShardIndex, shardRange, type IndexRange } from './range.js';
import { normalizeAxis, takeRanges, concatAxis } from './host-ops.js';

/** The strategies of MAX's `ShardingStrategy` (plus `leader`, for a bias after a partial-sum all-reduce). */
export type ShardingKind =
  | 'replicate'
  | 'rowwise'
  | 'columnwise'
  | 'axiswise'
  | 'stacked'
  | 'gate_up'
  | 'tensor_parallel'
  | 'expert_parallel'
  | 'leader';

/** How gate and up rows sit along the gate_up axis. `concat`: gate rows 0..I-1 then up rows I..2I-1; `interleaved`: row 2i gate, 2i+1 up (GPT-OSS). */
export type GateUpLayout = 'concat' | 'interleaved';

/** Options of the axis-splitting strategies. */
export interface SplitOptions {
  /**
   * Cut only at multiples of `unit` elements along the axis (default 1): a
   * quantisation block (32 for MXFP4, 128 for block-scaled fp8) must not be
   * split between shards. For gate_up the unit counts gate (and up) rows.
   */
  unit?: number;
}

/** Options of {@link ShardingStrategy.gateUp}. */
export interface GateUpOptions extends SplitOptions {
  /** The axis holding the 2I gate/up rows (default -2: [2I, H] or [E, 2I, H]). */
  axis?: number;
  /** Default `concat`. */
  layout?: GateUpLayout;
}

/** Shard `index` of `numShards` of a tensor, with where it came from. */
export interface Shard {
  /** The shard, in the dtype of the input. */
  readonly tensor: HostTensor;
  /** The (non-negative) axis that was split, or null when the shard is the whole tensor (replicate, leader). */
  readonly axis: number | null;
  /**
   * The index ranges along `axis` that the shard holds, in the order they
   * appear in it: one range for axis splits, two for concat gate_up (gate
   * rows, then up rows), none for replicate / leader.
   */
  readonly ranges: readonly IndexRange[];
  readonly index: number;
  readonly numShards: number;
}

interface Spec {
  kind: ShardingKind;
  numDevices: number;
  axis: number | null;
  unit: number;
  layout: GateUpLayout;
}

/**
 * How a weight is split across `numDevices` devices, after MAX's
 * `ShardingStrategy`. `shard(t, i)` is a pure host function: it returns
 * shard `i` of a HostTensor (any dtype; raw storage is copied, never
 * converted) and the index ranges it covers.
 *
 * Uneven splits follow MAX: a dimension `d` split `n` ways gives the first
 * `d mod n` shards `ceil(d/n)` rows and the rest `floor(d/n)` (see
 * {@link shardRange}); with `unit` the split is in whole blocks.
 *
 * | strategy | splits |
 * |---|---|
 * | `replicate(n)` | nothing: every shard is the whole tensor |
 * | `rowwise(n)` | axis 0 (a Linear's output rows) |
 * | `columnwise(n)` | axis 1 (a Linear's input columns) |
 * | `axiswise(axis, n)` | any axis (negative counts from the end) |
 * | `stacked(n)` | axis 1 of a stack `[S, rows, ...]`: each stacked matrix rowwise |
 * | `gateUp(n, {axis, layout})` | the gate/up axis so that each shard keeps its gate rows and the matching up rows |
 * | `expertParallel(n)` | axis 0 of `[E, ...]`, E divisible by n: contiguous experts `[i*E/n, (i+1)*E/n)` |
 * | `tensorParallel(n)` | a module-level marker: the sharded module (MoE, MLP) splits each of its weights with the strategies above |
 * | `leader(n)` | shard 0 is the tensor, the others zeros (a bias added once after an all-reduce) |
 *
 * @example
 * ```ts
 * const w = HostTensor.fromFloat32([4, 2], [0, 1, 2, 3, 4, 5, 6, 7], 'bfloat16');
 * const s = ShardingStrategy.rowwise(3).shard(w, 0);
 * s.tensor.shape // [2, 2]
 * s.ranges // [[0, 2]]
 * ```
 */
export class ShardingStrategy {
  readonly kind: ShardingKind;
  /** The number of devices (shards). */
  readonly numDevices: number;
  /** The configured axis (as given, may be negative), or null. */
  readonly axis: number | null;
  /** Split granularity along the axis (1 = any row). */
  readonly unit: number;
  /** gate_up layout (meaningful for gate_up only). */
  readonly layout: GateUpLayout;

  private constructor(s: Spec) {
    if (!Number.isInteger(s.numDevices) || s.numDevices < 1) throw new ShardingError(`ShardingStrategy.${s.kind} numDevices`, 'a positive integer', s.numDevices);
    if (!Number.isInteger(s.unit) || s.unit < 1) throw new ShardingError(`ShardingStrategy.${s.kind} unit`, 'a positive integer', s.unit);
    if (s.axis !== null && !Number.isInteger(s.axis)) throw new ShardingError(`ShardingStrategy.${s.kind} axis`, 'an integer', s.axis);
    if (s.layout !== 'concat' && s.layout !== 'interleaved') throw new ShardingError('gate_up layout', "'concat' | 'interleaved'", s.layout);
    this.kind = s.kind;
    this.numDevices = s.numDevices;
    this.axis = s.axis;
    this.unit = s.unit;
    this.layout = s.layout;
    Object.freeze(this);
  }

  /** Every device gets the whole weight. @example `ShardingStrategy.replicate(4).shard(w, 2).tensor // a copy of w` */
  static replicate(numDevices: number): ShardingStrategy {
    return new ShardingStrategy({ kind: 'replicate', numDevices, axis: null, unit: 1, layout: 'concat' });
  }
  /** Splits axis 0 (the output rows of a Linear `[out, in]`). @example `ShardingStrategy.rowwise(2).shardShape([5, 3], 1) // [2, 3]` */
  static rowwise(numDevices: number, opts: SplitOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'rowwise', numDevices, axis: 0, unit: opts.unit ?? 1, layout: 'concat' });
  }
  /** Splits axis 1 (the input columns of a Linear `[out, in]`). @example `ShardingStrategy.columnwise(2).shardShape([5, 3], 0) // [5, 2]` */
  static columnwise(numDevices: number, opts: SplitOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'columnwise', numDevices, axis: 1, unit: opts.unit ?? 1, layout: 'concat' });
  }
  /** Splits `axis` (negative counts from the end). @example `ShardingStrategy.axiswise(-1, 2).shardShape([4, 6, 5], 1) // [4, 6, 2]` */
  static axiswise(axis: number, numDevices: number, opts: SplitOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'axiswise', numDevices, axis, unit: opts.unit ?? 1, layout: 'concat' });
  }
  /** Splits axis 1 of a stack `[S, rows, ...]`: every stacked matrix rowwise. @example `ShardingStrategy.stacked(2).shardShape([8, 6, 4], 0) // [8, 3, 4]` */
  static stacked(numDevices: number, opts: SplitOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'stacked', numDevices, axis: 1, unit: opts.unit ?? 1, layout: 'concat' });
  }
  /**
   * Splits a fused gate/up axis of 2I rows (`[2I, H]`, `[E, 2I, H]`, a bias
   * `[E, 2I]` with `axis: -1`) so that shard i holds gate rows `[s, e)` AND
   * the matching up rows, where `[s, e) = shardRange(I, i, n, unit)`. The
   * shard keeps the layout: concat `[gate s..e; up s..e]` (2(e-s) rows, so
   * it is itself a concat gate_up of width e-s), interleaved rows
   * `[2s, 2e)`.
   *
   * @example
   * ```ts
   * const s = ShardingStrategy.gateUp(2).shard(w, 1); // w [E, 2*6, H]
   * s.ranges // [[3, 6], [9, 12]]
   * ```
   */
  static gateUp(numDevices: number, opts: GateUpOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'gate_up', numDevices, axis: opts.axis ?? -2, unit: opts.unit ?? 1, layout: opts.layout ?? 'concat' });
  }
  /**
   * Tensor parallelism for a whole module (MoE, MLP): a marker that the
   * module reads (`numDevices`, `unit`, `layout`) to split each of its weights
   * with the per-tensor strategies (gate/up rows by `gateUp`, down columns by
   * `axiswise(-1)`, the down bias on the `leader`, the router replicated).
   * `shard()` on a tensor throws.
   *
   * @example
   * ```ts
   * const tp = ShardingStrategy.tensorParallel(2, { unit: 32 });
   * ShardingStrategy.gateUp(tp.numDevices, { unit: tp.unit, layout: tp.layout }) // its gate_up weights' split
   * ```
   */
  static tensorParallel(numDevices: number, opts: GateUpOptions = {}): ShardingStrategy {
    return new ShardingStrategy({ kind: 'tensor_parallel', numDevices, axis: null, unit: opts.unit ?? 1, layout: opts.layout ?? 'concat' });
  }
  /**
   * Expert parallelism: a stacked `[E, ...]` expert weight is split on axis
   * 0 into contiguous expert ranges `[i*E/n, (i+1)*E/n)`; E must be
   * divisible by n (ShardingError otherwise). The module replicates what
   * is not an expert weight (router, shared expert).
   *
   * @example
   * ```ts
   * ShardingStrategy.expertParallel(4).shard(gateUp, 1).ranges // gateUp [8, 2I, H]: [[2, 4]]
   * ```
   */
  static expertParallel(numDevices: number): ShardingStrategy {
    return new ShardingStrategy({ kind: 'expert_parallel', numDevices, axis: 0, unit: 1, layout: 'concat' });
  }
  /** Shard 0 gets the tensor, the other shards zeros of the same shape: a bias added once to a sum of partial results. @example `ShardingStrategy.leader(2).shard(b, 1).tensor // zeros` */
  static leader(numDevices: number): ShardingStrategy {
    return new ShardingStrategy({ kind: 'leader', numDevices, axis: null, unit: 1, layout: 'concat' });
  }

  get isReplicate(): boolean {
    return this.kind === 'replicate';
  }
  get isRowwise(): boolean {
    return this.kind === 'rowwise';
  }
  get isColwise(): boolean {
    return this.kind === 'columnwise';
  }
  get isAxiswise(): boolean {
    return this.kind === 'axiswise';
  }
  get isStacked(): boolean {
    return this.kind === 'stacked';
  }
  get isGateUp(): boolean {
    return this.kind === 'gate_up';
  }
  get isTensorParallel(): boolean {
    return this.kind === 'tensor_parallel';
  }
  get isExpertParallel(): boolean {
    return this.kind === 'expert_parallel';
  }

  /** The axis this strategy splits in a tensor of `rank`, or null (replicate, leader, tensor_parallel). @example `ShardingStrategy.gateUp(2).shardedAxis(3) // 1` */
  shardedAxis(rank: number): number | null {
    if (this.axis === null) return null;
    return normalizeAxis(this.axis, rank, `${this.kind} axis`);
  }

  /**
   * The ranges along the split axis that shard `i` of `n` holds, for a
   * tensor of `shape` (see {@link Shard.ranges}). Validates everything a
   * `shard()` call would, without touching data.
   *
   * @example
   * ```ts
   * ShardingStrategy.rowwise(3).rangesFor([10, 4], 0) // { axis: 0, ranges: [[0, 4]] }
   * ```
   */
  rangesFor(shape: readonly number[], i: number, n: number = this.numDevices): { axis: number | null; ranges: IndexRange[] } {
    checkShardIndex(i, n);
    const rank = shape.length;
    switch (this.kind) {
      case 'replicate':
      case 'leader':
        return { axis: null, ranges: [] };
      case 'tensor_parallel':
        throw new ShardingError(
          'ShardingStrategy.tensorParallel().shard()',
          'a per-weight strategy (gateUp, axiswise, leader, replicate): tensor_parallel is module-level, as in MAX',
          `a rank-${rank} tensor`,
        );
      default:
        break;
    }
    if (rank === 0) throw new ShardingError(`${this.kind} shard`, 'a tensor of rank >= 1', 'a scalar');
    if (this.kind === 'stacked' && rank < 2) throw new ShardingError('stacked shard', 'a stack of rank >= 2 ([S, rows, ...])', `rank ${rank}`);
    const axis = normalizeAxis(this.axis!, rank, `${this.kind} axis`);
    const dim = shape[axis];
    if (this.kind === 'expert_parallel') {
      if (dim % n !== 0) throw new ShardingError(`expert_parallel over ${n} devices: number of experts (axis 0 of [${shape.join(', ')}])`, `divisible by ${n}`, dim);
      const per = dim / n;
      return { axis, ranges: [[i * per, (i + 1) * per]] };
    }
    if (this.kind === 'gate_up') {
      if (dim % 2 !== 0) throw new ShardingError(`gate_up axis ${axis} of [${shape.join(', ')}]`, 'an even size (2I gate/up rows)', dim);
      const I = dim / 2;
      const [s, e] = shardRange(I, i, n, this.unit);
      if (this.layout === 'interleaved') return { axis, ranges: [[2 * s, 2 * e]] };
      return { axis, ranges: [[s, e], [I + s, I + e]] };
    }
    return { axis, ranges: [shardRange(dim, i, n, this.unit)] };
  }

  /** The shape of shard `i` of `n` of a tensor of `shape`. @example `ShardingStrategy.gateUp(3).shardShape([2, 20, 8], 0) // [2, 8, 8]` */
  shardShape(shape: readonly number[], i: number, n: number = this.numDevices): number[] {
    const { axis, ranges } = this.rangesFor(shape, i, n);
    const out = [...shape];
    if (axis !== null) out[axis] = ranges.reduce((s, [a, b]) => s + b - a, 0);
    return out;
  }

  /**
   * Shard `i` of `n` (default `numDevices`) of `t`: a new HostTensor in
   * `t`'s dtype (storage copied bit for bit) and the ranges it covers.
   *
   * @example
   * ```ts
   * const { tensor, ranges } = ShardingStrategy.columnwise(2).shard(w, 1);
   * ```
   */
  shard(t: HostTensor, i: number, n: number = this.numDevices): Shard {
    const { axis, ranges } = this.rangesFor(t.shape, i, n);
    let tensor: HostTensor;
    if (this.kind === 'replicate' || (this.kind === 'leader' && i === 0)) tensor = new HostTensor(t.dtype, t.shape, t.data.slice());
    else if (this.kind === 'leader') tensor = new HostTensor(t.dtype, t.shape, allocHost(t.dtype, t.size));
    else tensor = takeRanges(t, axis!, ranges);
    return Object.freeze({ tensor, axis, ranges: Object.freeze(ranges), index: i, numShards: n });
  }

  /** All `n` shards of `t`. @example `ShardingStrategy.rowwise(2).shardAll(w).map((s) => s.tensor.shape)` */
  shardAll(t: HostTensor, n: number = this.numDevices): Shard[] {
    const out: Shard[] = [];
    for (let i = 0; i < n; i++) out.push(this.shard(t, i, n));
    return out;
  }

  /**
   * Puts shards back together (the inverse of `shardAll`): concatenation
   * along the axis, gate parts then up parts for concat gate_up, shard 0 for
   * replicate and leader.
   *
   * @example
   * ```ts
   * const s = ShardingStrategy.gateUp(3).shardAll(w);
   * ShardingStrategy.gateUp(3).unshard(s.map((x) => x.tensor)) // equals w
   * ```
   */
  unshard(shards: readonly HostTensor[]): HostTensor {
    if (shards.length === 0) throw new ShardingError('unshard', 'at least one shard', 0);
    switch (this.kind) {
      case 'replicate':
      case 'leader':
        return shards[0];
      case 'tensor_parallel':
        throw new ShardingError('ShardingStrategy.tensorParallel().unshard()', 'a per-weight strategy (gateUp, axiswise, leader, replicate)', 'tensor_parallel');
      default:
        break;
    }
    const rank = shards[0].shape.length;
    const axis = normalizeAxis(this.axis!, rank, `${this.kind} axis`);
    if (this.kind === 'gate_up' && this.layout === 'concat') {
      const gates: HostTensor[] = [];
      const ups: HostTensor[] = [];
      for (const s of shards) {
        const h = s.shape[axis] / 2;
        gates.push(takeRanges(s, axis, [[0, h]]));
        ups.push(takeRanges(s, axis, [[h, 2 * h]]));
      }
      return concatAxis([...gates, ...ups], axis);
    }
    return concatAxis(shards, axis);
  }

  toString(): string {
    const a = this.axis === null ? '' : `, axis=${this.axis}`;
    const u = this.unit === 1 ? '' : `, unit=${this.unit}`;
    const l = this.kind === 'gate_up' || this.kind === 'tensor_parallel' ? `, layout=${this.layout}` : '';
    return `ShardingStrategy.${this.kind}(${this.numDevices}${a}${u}${l})`;
  }
}
