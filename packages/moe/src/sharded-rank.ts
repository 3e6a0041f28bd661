/**
 * One rank's step of a sharded MoE forward: what every process of a
 * multi-process run and the in-process CPU group run (expert parallel:
 * {@link epRankStep}; tensor parallel: {@link tpRankStep}), the shard's
 * experts on received rows, and the checks of a transport-backed layer.
 * {@link ShardedMoE} (sharded.ts) drives them.
 */
import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, uploadGrouping, type GroupingGpu, type GroupingRef } from '@webmoe/kernels-wgsl';
import { ShardingError, rankAllReduceHost, rankEPForward, type EPRankStats, type HostTransport, type ShardingStrategy } from '@webmoe/sharding';
import type { MoELayer } from './layer.js';
import { gpuStages, type GpuStageRun } from './forward/gpu.js';
import { addSharedHost, hostStages } from './forward/host.js';

/** The strategy of a transport-backed ShardedMoE: expertParallel(size) or tensorParallel(size). */
export function checkRankStrategy(what: string, strategy: ShardingStrategy, tr: HostTransport): void {
  const n = tr.size;
  if ((strategy.kind !== 'expert_parallel' && strategy.kind !== 'tensor_parallel') || strategy.numDevices !== n) {
    throw new ShardingError(`${what} strategy (with a transport)`, `expertParallel(${n}) or tensorParallel(${n}) (the transport's size)`, `${strategy.kind}(${strategy.numDevices})`);
  }
}

/** A layer given to a transport-backed ShardedMoE: the unsharded layer (or, expert parallel, this rank's expert shard). */
export function checkRankLayer(source: MoELayer, strategy: ShardingStrategy, tr: HostTransport): void {
  const n = tr.size;
  checkRankStrategy('MoE.shard', strategy, tr);
  if (strategy.kind === 'tensor_parallel') {
    if (source.epSize !== 1) throw new ShardingError(`MoE.shard tensorParallel(${n}) source epSize (rank ${tr.rank})`, '1 (the unsharded layer)', source.epSize);
    return;
  }
  if (source.numExperts % n !== 0) throw new ShardingError(`MoE.shard expertParallel(${n}): numExperts`, `divisible by ${n} (the number of ranks)`, source.numExperts);
  if (source.epSize !== 1 && (source.epSize !== n || source.shardIndex !== tr.rank)) {
    throw new ShardingError(`MoE.shard source (rank ${tr.rank} of ${n})`, `the unsharded layer or expert shard ${tr.rank} of ${n}`, `shard ${source.shardIndex} of ${source.epSize}`);
  }
}

/**
 * One expert-parallel rank's MoE step (the in-process CPU EP and every
 * process of a multi-process run run this): routes its T tokens with the
 * replicated router on the host, {@link rankEPForward} (each token sent once
 * per destination rank; the experts run on the shard's device: the grouped
 * GEMM references on the CPU, the grouped GEMM kernels on a GPU), then adds
 * the replicated shared expert.
 */
export async function epRankStep(tr: HostTransport, sh: MoELayer, x: Float32Array, T: number): Promise<{ out: Float32Array; stats: EPRankStats }> {
  const H = sh.hiddenDim;
  const k = sh.numExpertsPerToken;
  const host = hostStages(sh);
  const routing = T === 0 ? { idx: new Uint32Array(0), weights: new Float32Array(0) } : host.route(x);
  const { out, stats } = await rankEPForward(tr, {
    x,
    T,
    H,
    idx: routing.idx,
    weights: routing.weights,
    k,
    numExperts: sh.numExperts,
    applyRouterWeightFirst: sh.applyRouterWeightFirst,
    experts: (xp, grouping) => (sh.ctx ? expertsGpu(sh, xp, grouping) : host.routedExperts(xp, grouping, undefined)),
  });
  if (T === 0) return { out, stats };
  return { out: addSharedHost(out, T, host.sharedExperts(x)), stats };
}

/**
 * One tensor-parallel rank's MoE step (the in-process CPU TP and every
 * process of a multi-process run run this): the rank's shard computes its
 * partial output for all T tokens (host reference, or its GPU), then one
 * all-reduce of the [T, H] f32 partials over the transport (fixed order
 * 0 + 1 + ...; the down biases are on shard 0 only, so added once).
 */
export async function tpRankStep(tr: HostTransport, sh: MoELayer, x: Float32Array, T: number): Promise<Float32Array> {
  const partial = sh.ctx ? await sh.forward(x) : sh.forwardHost(x, T);
  return rankAllReduceHost(tr, partial);
}

/**
 * Records a shard's local experts (the routed-experts stage) on rows `x` that
 * arrive grouped by `g`: the grouped GEMMs (the decode GEMVs' active-expert
 * list comes from the decode grouping, which these rows do not go through).
 * Output in grouped order; it and the intermediate go to `run.scratch`.
 */
export function recordRankExperts(sh: MoELayer, run: GpuStageRun, x: GpuTensor, g: GroupingGpu): GpuTensor {
  return gpuStages(sh, run).routedExperts(x, { grouping: g, gemms: 'grouped' }, undefined);
}

export async function expertsGpu(sh: MoELayer, xp: Float32Array, grouping: GroupingRef): Promise<Float32Array> {
  const ctx = sh.ctx!;
  const H = sh.hiddenDim;
  const own: { destroy(): void }[] = [];
  const keep = <G extends { destroy(): void }>(t: G): G => (own.push(t), t);
  try {
    return await ctx.checked('ShardedMoE rank experts', async () => {
      const x = keep(GpuTensor.upload(ctx, new HostTensor('float32', [xp.length / H, H], xp), 'ep.rank.x'));
      const g = keep(uploadGrouping(ctx, grouping));
      const rec = new Recorder(ctx, { label: 'ep.rank.experts' });
      const y = recordRankExperts(sh, { rec, scratch: own }, x, g);
      rec.submit();
      return (await y.download()).data as Float32Array;
    });
  } finally {
    for (const t of own.reverse()) t.destroy();
  }
}
