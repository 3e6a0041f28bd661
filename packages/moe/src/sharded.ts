import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { BufferPool, GpuTensor, Recorder, uploadGrouping, type RoutingGpu } from '@webmoe/kernels-wgsl';
import {
  DeviceGroup,
  EPBatchManager,
  ShardingError,
  ShardingStrategy,
  createLocalTransports,
  shardRange,
  type EPRankStats,
  type HostTransport,
} from '@webmoe/sharding';
import { ShapeError } from '@webmoe/tensor';
import { buildShards, resolveShardGroup, shardInputRows, shardOutput, gpuPartialSum, type ShardDevices, type ShardInput, type ShardOutput } from '@webmoe/nn';
// moe.ts imports this file (MoE.shard), so the MoE class is not imported here: shards are
// built with the source layer's own class, and fromHuggingFace with the class moe.ts registers.
import type { MoELayer, MoELayerClass } from './layer.js';
import { loadHuggingFaceMoE } from './hf-loader.js';
import { gpuStages } from './forward/gpu.js';
import { addSharedHost } from './forward/host.js';
import { checkRankLayer, checkRankStrategy, epRankStep, recordRankExperts, tpRankStep } from './sharded-rank.js';
import { layerScratchPool } from './host-io.js';
import { UnsupportedError } from './errors.js';
import { epShardPlan, shardOptions, tpShardPlan, type ShardPlan } from './shard-plan.js';
import type { HFLoadOptions } from './hf-options.js';

/** The layer class {@link ShardedMoE.fromHuggingFace} reads the host layer with: `MoE`, registered by moe.ts when it loads (it imports this file, so this file cannot import it). */
let hostLayerClass: MoELayerClass | undefined;

/** Registers the class {@link ShardedMoE.fromHuggingFace} builds its host layer with (moe.ts registers `MoE`). @example `registerShardedHostLayer(MoE)` */
export function registerShardedHostLayer(cls: MoELayerClass): void {
  hostLayerClass = cls;
}


/** Options of {@link ShardedMoE.fromHuggingFace}: the loader's options (its `device`/`ctx` are ignored: the layer is read on the host), the devices and the strategy. @example `{ source: dir, layer: 0, devices: group, strategy: ShardingStrategy.expertParallel(2) }` */
export interface ShardedHFLoadOptions extends Omit<HFLoadOptions, 'device' | 'ctx'> {
  /** A DeviceGroup (GPU or CPU) or CPU DeviceRefs. */
  devices: ShardDevices;
  /** `ShardingStrategy.tensorParallel(n)` or `ShardingStrategy.expertParallel(n)`. */
  strategy: ShardingStrategy;
  /**
   * One rank of a multi-process run (e.g. `createMpiTransport()` from
   * `@webmoe/mpi`): `devices` is then this rank's one device, the strategy
   * `expertParallel(transport.size)` (only this rank's experts are read from
   * the checkpoint) or `tensorParallel(transport.size)` (the layer is read
   * and this rank keeps its slice).
   */
  transport?: HostTransport;
}

/** Options of the {@link ShardedMoE} constructor beyond the devices and strategy. @example `{ transport: createMpiTransport() }` */
export interface ShardedMoEOptions {
  /** Run as rank `transport.rank` of `transport.size` processes (expert or tensor parallel; see {@link ShardedHFLoadOptions.transport}). */
  transport?: HostTransport;
}

/**
 * A MoE layer cut over the devices of a {@link DeviceGroup} (MAX
 * `MoE.shard(devices)`), built from an unsharded layer with loaded weights
 * ({@link MoE.shard}) or straight from a checkpoint
 * ({@link ShardedMoE.fromHuggingFace}). `shards[i]` is the MoE of device i
 * (`shardIndex`, `shardDevices`, `shardingStrategy` set); weights keep their
 * storage dtype (host slicing copies bits).
 *
 * - **Tensor parallel** (`ShardingStrategy.tensorParallel(n)`): shard i holds
 *   `I_i` of every expert's gate rows AND the matching up rows (concat or
 *   GPT-OSS interleaved layout, taken from the layer's activation), the
 *   matching down columns, the gate_up bias sliced like its rows and the
 *   down bias on shard 0 only; the shared expert is split the same way; the
 *   router is replicated. Every shard routes all T tokens and returns a
 *   partial sum; an all-reduce (f32, fixed order 0 + 1 + ...) gives the
 *   output. Uneven I (32 over 3 = 11, 11, 10) works. With a transport
 *   (one process per rank) the process builds shard `transport.rank` only
 *   and the all-reduce runs over the transport.
 * - **Expert parallel** (`ShardingStrategy.expertParallel(n)`, shards have
 *   `epSize = n`): shard i owns experts `[i*E/n, (i+1)*E/n)` (E not divisible
 *   by n: ShardingError); the T tokens are split over the devices
 *   (`shardRange(T, s, n)`), each device routes its tokens with the
 *   replicated router, the {@link EPBatchManager} exchanges the counts and
 *   sends every (token, slot) row to the owner of its expert, the owner runs
 *   the grouped GEMMs on what it received, combine brings the rows back and
 *   sums `w * y` in slot order in f32; the (replicated) shared expert is
 *   added once, on the token's device.
 * - **Quantized experts** (fp8 blocks, MXFP4, int4 / int8) stay packed:
 *   EP moves whole experts with their scales; TP cuts I only on whole
 *   blocks (the unit of `quantTPUnit`: every block along I and, with
 *   dynamic fp8 activations, the 128-channel activation groups) and slices
 *   each code / scale tensor in its own index units. A split that would cut
 *   a block is a ShardingError naming the unit and the sizes
 *   (docs/DISTRIBUTED.md, "Quantised experts").
 *
 * `forward(x)` takes x f32 [T, H] on the host (Float32Array / HostTensor)
 * or as a GpuTensor on device 0, and returns f32 [T, H] of the same kind.
 * A CPU group (`DeviceGroup.cpu(n)`) runs the same algorithms on host
 * arrays (the TypeScript references and the `cpu*` collectives).
 *
 * @example
 * ```ts
 * const group = await DeviceGroup.create(2);
 * const moe = await MoE.fromHuggingFace({ source: dir, layer: 0 });   // on the host
 * moe.shardingStrategy = ShardingStrategy.tensorParallel(2);
 * const tp = moe.shard(group);
 * const y = await tp.forward(x);                                      // Float32Array [T, H]
 * tp.destroy();
 * group.destroy();
 * ```
 */
export class ShardedMoE {
  /** One MoE per device (MAX `shard()`'s list). */
  readonly shards: readonly MoELayer[];
  readonly group: DeviceGroup;
  readonly strategy: ShardingStrategy;
  /** 'tp' (tensor parallel) or 'ep' (expert parallel). */
  readonly mode: 'tp' | 'ep';
  /** The EP dispatch/combine (EP only). */
  readonly epBatchManager: EPBatchManager | undefined;
  readonly hiddenDim: number;
  /** The multi-process transport (one rank per process): `shards` then holds this rank's shard only. */
  readonly transport: HostTransport | undefined;
  /** What the last forward's EP step moved on this rank (transport and CPU-group EP runs). */
  lastEPStats: EPRankStats[] | undefined;
  private pools: BufferPool[] = [];

  /**
   * Use {@link MoE.shard} or {@link ShardedMoE.fromHuggingFace}. Validates everything (typed errors) before allocating.
   * With `opts.transport` this process is one rank: `devices` is its one device, `source` the unsharded layer or
   * its own expert shard (`epSize = transport.size`, `shardIndex = transport.rank`).
   */
  constructor(source: MoELayer, devices: ShardDevices, strategy: ShardingStrategy, opts: ShardedMoEOptions = {}) {
    if (!(strategy instanceof ShardingStrategy) || (strategy.kind !== 'tensor_parallel' && strategy.kind !== 'expert_parallel')) {
      throw new ShardingError('MoE.shard shardingStrategy', 'tensorParallel(n) or expertParallel(n)', strategy instanceof ShardingStrategy ? strategy.kind : String(strategy));
    }
    const tr = opts.transport;
    if (tr) checkRankLayer(source, strategy, tr);
    else if (source.epSize !== 1) throw new ShardingError('MoE.shard source epSize', '1 (an unsharded layer)', source.epSize);
    const group = resolveShardGroup('MoE.shard', devices, tr ? ShardingStrategy.expertParallel(1) : strategy);
    const n = tr ? tr.size : group.size;
    const E = source.numExperts;
    const sd = source.stateDict(); // NotLoadedError below if empty
    for (const [name] of source.namedParameters()) if (!sd.has(name)) throw new ShardingError(`MoE.shard parameter ${name}`, 'loaded weights (call loadStateDict or fromHuggingFace first)', 'none');
    let perShard: ShardPlan;
    if (tr && strategy.kind === 'expert_parallel') {
      // this rank's shard only: sliced from the unsharded layer, or the layer is that shard already
      const plan = epShardPlan(source, n, source.epSize === 1);
      perShard = () => plan(tr.rank);
      this.mode = 'ep';
      this.epBatchManager = undefined;
    } else if (strategy.kind === 'expert_parallel') {
      if (E % n !== 0) throw new ShardingError(`MoE.shard expertParallel(${n}): numExperts`, `divisible by epSize ${n}`, E);
      perShard = epShardPlan(source, n);
      this.mode = 'ep';
      this.epBatchManager = new EPBatchManager({ numExperts: E, epSize: n, topK: source.numExpertsPerToken });
    } else {
      // (with a transport: only shard tr.rank is built, on this rank's one device)
      perShard = tpShardPlan(source, strategy, n);
      this.mode = 'tp';
      this.epBatchManager = undefined;
    }
    const indexOf = (i: number) => (tr ? tr.rank : i);
    const shards = buildShards<MoELayer>(
      group.size,
      strategy,
      group.devices,
      (i) => new (source.constructor as MoELayerClass)(shardOptions(source, group, i, perShard(indexOf(i)).opts)),
      (i) => {
        const { take } = perShard(indexOf(i));
        return new Map([...sd].map(([name, t]) => [name, take(name, t)]));
      },
      indexOf,
    );
    this.shards = shards;
    this.group = group;
    this.strategy = strategy;
    this.hiddenDim = source.hiddenDim;
    this.transport = tr;
  }

  /**
   * Loads layer `layer` of a HuggingFace checkpoint on the host (weights in
   * their storage dtype, or `dtype`) and shards it over `devices`.
   *
   * @example
   * ```ts
   * const ep = await ShardedMoE.fromHuggingFace({ source: dir, layer: 0, devices: await DeviceGroup.create(2), strategy: ShardingStrategy.expertParallel(2) });
   * ```
   */
  static async fromHuggingFace(opts: ShardedHFLoadOptions): Promise<ShardedMoE> {
    const { devices, strategy, transport, ...load } = opts;
    // one rank of several processes: read this rank's experts only (the E % n check comes before any read)
    // (tensor parallel: the whole layer is read, the constructor keeps this rank's slice)
    if (transport) checkRankStrategy('ShardedMoE.fromHuggingFace', strategy, transport);
    const expertShard = transport && strategy.kind === 'expert_parallel' ? { epSize: strategy.numDevices, shardIndex: transport.rank } : undefined;
    const Layer = hostLayerClass;
    if (!Layer) throw new UnsupportedError('ShardedMoE.fromHuggingFace', 'no layer class registered', 'the package entry (@webmoe/moe), which registers MoE');
    const host = await loadHuggingFaceMoE({ ...load, device: DeviceRef.CPU(), expertShard }, (o) => new Layer(o));
    try {
      return new ShardedMoE(host, devices, strategy, { transport });
    } finally {
      host.destroy();
    }
  }

  /** x f32 [T, H] on the host or on device 0 -> f32 [T, H] (same kind): the unsharded layer's output to f32 rounding. */
  async forward<X extends ShardInput>(x: X): Promise<ShardOutput<X>> {
    const H = this.hiddenDim;
    const { T, xs } = await shardInputRows('MoE sharded input', x, H, this.group);
    let y: Float32Array;
    if (this.transport) y = await this.forwardRank(this.transport, xs, T);
    else if (T === 0) y = new Float32Array(0);
    else if (this.group.kind === 'cpu') y = this.mode === 'tp' ? await this.forwardTPHost(xs, T) : await this.forwardEPHost(xs, T);
    else {
      // Inside validation / out-of-memory error scopes on every device: a GPU error is a typed GpuValidationError / GpuOutOfMemoryError.
      const run = () => (this.mode === 'tp' ? this.forwardTPGpu(xs, T) : this.forwardEPGpu(xs, T));
      y = await this.group.contexts.reduce<() => Promise<Float32Array>>((f, c) => () => c.checked(`ShardedMoE.forward (${this.mode})`, f), run)();
    }
    return shardOutput(x, y, T, H, this.group);
  }

  private pool(i: number): BufferPool {
    return (this.pools[i] ??= layerScratchPool(this.group.context(i)));
  }

  private forwardTPGpu(xs: Float32Array, T: number): Promise<Float32Array> {
    const H = this.hiddenDim;
    return gpuPartialSum(this.group, xs, T, H, H, (i, _ctx, rec, xg, scratch) => this.shards[i].record(rec, xg, this.pool(i), scratch));
  }

  /** TP on a CPU group: one rank per device over in-process transports, each running {@link tpRankStep} (as a multi-process rank does). */
  private async forwardTPHost(xs: Float32Array, T: number): Promise<Float32Array> {
    const trs = createLocalTransports(this.group.size);
    return (await Promise.all(this.shards.map((s, i) => tpRankStep(trs[i], s, xs, T))))[0];
  }

  /** Token rows of device s: `shardRange(T, s, n)`. */
  private tokenRanges(T: number): [number, number][] {
    return Array.from({ length: this.group.size }, (_, s) => shardRange(T, s, this.group.size));
  }

  private async forwardEPGpu(xs: Float32Array, T: number): Promise<Float32Array> {
    const n = this.group.size;
    const H = this.hiddenDim;
    const first = this.shards[0];
    const k = first.numExpertsPerToken;
    const arwf = first.applyRouterWeightFirst;
    const ep = this.epBatchManager!;
    const ranges = this.tokenRanges(T);
    const own: { destroy(): void }[] = [];
    const keep = <G extends { destroy(): void }>(t: G): G => (own.push(t), t);
    try {
      // 1. each device routes its own tokens (router replicated)
      const xg: GpuTensor[] = [];
      const routing: RoutingGpu[] = [];
      for (let s = 0; s < n; s++) {
        const ctx = this.group.context(s);
        const sh = this.shards[s];
        const [a, b] = ranges[s];
        if (b === a) {
          xg.push(keep(GpuTensor.empty(ctx, 'float32', [0, H], 'ep.x')));
          routing.push({ idx: keep(GpuTensor.empty(ctx, 'uint32', [0, k], 'ep.idx')), weights: keep(GpuTensor.empty(ctx, 'float32', [0, k], 'ep.w')) });
          continue;
        }
        const x = keep(GpuTensor.upload(ctx, new HostTensor('float32', [b - a, H], xs.subarray(a * H, b * H)), 'ep.x'));
        xg.push(x);
        const rec = new Recorder(ctx, { label: `ep.route${s}` });
        routing.push(gpuStages(sh, { rec, scratch: own }).route(x));
        rec.submit();
      }
      const idxs = await Promise.all(routing.map((r, s) => (ranges[s][1] === ranges[s][0] ? new Uint32Array(0) : r.idx.download().then((h) => h.data as Uint32Array))));
      // 2. counts, then rows to the owner of each expert
      const step = keep(await ep.dispatch(xg, idxs, { rowScale: arwf ? routing.map((r) => r.weights) : undefined }));
      // 3. each owner runs its experts on what it received (grouped order)
      const ys = step.recv.map((recv, d) => {
        const ctx = this.group.context(d);
        const rows = step.receive[d].rows;
        if (rows === 0) return keep(GpuTensor.empty(ctx, 'float32', [0, H], 'ep.y'));
        const sh = this.shards[d];
        const g = keep(uploadGrouping(ctx, step.receive[d].grouping));
        const rec = new Recorder(ctx, { label: `ep.experts${d}` });
        const y = recordRankExperts(sh, { rec, scratch: own }, recv, g);
        rec.submit();
        return y;
      });
      // 4. rows back, sum_j w * y in slot order (f32)
      const outs = (await ep.combine(step, ys, routing.map((r) => (arwf ? null : r.weights)))).map(keep);
      // 5. the shared expert, once, on the token's device
      const shared: (GpuTensor | undefined)[] = [];
      const gateLogits: (GpuTensor | undefined)[] = [];
      for (let s = 0; s < n; s++) {
        const sh = this.shards[s];
        if (!sh.hasSharedExperts || ranges[s][1] === ranges[s][0]) continue;
        const rec = new Recorder(sh.ctx!, { label: `ep.shared${s}` });
        const se = gpuStages(sh, { rec, pool: this.pool(s), scratch: own }).sharedExperts(xg[s])!;
        shared[s] = se.shared;
        gateLogits[s] = se.gateLogit;
        rec.submit();
      }
      const down = (t: GpuTensor | undefined) => (t && t.size > 0 ? t.download().then((h) => h.data as Float32Array) : Promise.resolve(undefined));
      const [o, sv, gv] = await Promise.all([Promise.all(outs.map(down)), Promise.all(shared.map(down)), Promise.all(gateLogits.map(down))]);
      const y = new Float32Array(T * H);
      for (let s = 0; s < n; s++) {
        const [a, b] = ranges[s];
        if (b === a) continue;
        const se = sv[s] ? { shared: sv[s]!, gateLogit: gv[s] } : undefined;
        y.set(addSharedHost(o[s]!, b - a, se), a * H);
      }
      return y;
    } finally {
      for (const t of own.reverse()) t.destroy();
    }
  }

  /**
   * EP on a CPU group: one rank per device over in-process transports, each
   * running {@link epRankStep} (the same code a multi-process rank runs).
   */
  private async forwardEPHost(xs: Float32Array, T: number): Promise<Float32Array> {
    const n = this.group.size;
    const H = this.hiddenDim;
    const ranges = this.tokenRanges(T);
    const trs = createLocalTransports(n);
    const res = await Promise.all(ranges.map(([a, b], s) => epRankStep(trs[s], this.shards[s], xs.subarray(a * H, b * H), b - a)));
    this.lastEPStats = res.map((r) => r.stats);
    const y = new Float32Array(T * H);
    for (let s = 0; s < n; s++) y.set(res[s].out, ranges[s][0] * H);
    return y;
  }

  /**
   * One rank of a multi-process run: every rank holds the same x [T, H]
   * (shapes checked across ranks first). Tensor parallel: {@link tpRankStep}
   * on all T rows. Expert parallel: takes its rows `shardRange(T, rank, n)`,
   * runs {@link epRankStep} and all-gathers the outputs. Every rank returns
   * the whole [T, H].
   */
  private async forwardRank(tr: HostTransport, xs: Float32Array, T: number): Promise<Float32Array> {
    const H = this.hiddenDim;
    const heads = (await tr.allGatherv(new Uint8Array(Int32Array.of(T, H).buffer))).map((b) => new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
    for (const [r, h] of heads.entries()) {
      if (h.length !== 2 || h[0] !== T || h[1] !== H) throw new ShapeError(`ShardedMoE.forward input on rank ${r} (seen from rank ${tr.rank}; every rank passes the same x)`, [T, H], Array.from(h));
    }
    if (this.mode === 'tp') return T === 0 ? new Float32Array(0) : tpRankStep(tr, this.shards[0], xs, T);
    const [a, b] = shardRange(T, tr.rank, tr.size);
    const { out, stats } = await epRankStep(tr, this.shards[0], xs.subarray(a * H, b * H), b - a);
    this.lastEPStats = [stats];
    const parts = await tr.allGatherv(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    const y = new Float32Array(T * H);
    let w = 0;
    for (const p of parts) {
      y.set(new Float32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength)), w);
      w += p.byteLength / 4;
    }
    if (w !== T * H) throw new ShapeError(`ShardedMoE.forward output on rank ${tr.rank}`, [T, H], [w / H, H]);
    return y;
  }

  /** Frees every shard's GPU weights and scratch (the group stays the caller's). */
  destroy(): void {
    for (const s of this.shards) s.destroy();
    for (const p of this.pools) p?.destroy();
    this.pools = [];
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * MAX `MoE.shard(devices)` (see {@link ShardedMoE}); `MoE.shard` calls it.
 *
 * @example
 * ```ts
 * const ep = shardMoE(moe, DeviceGroup.cpu(2), ShardingStrategy.expertParallel(2));
 * ```
 */
export function shardMoE(moe: MoELayer, devices: ShardDevices, strategy: ShardingStrategy): ShardedMoE {
  return new ShardedMoE(moe, devices, strategy);
}
