import { GpuTensor, Recorder, type BufferPool, type GpuContext } from '@webmoe/kernels-wgsl';
import { ShardingError } from './errors.js';
import { expertPlacement, planEP, type ExpertPlacement, type EPDispatchPlan, type EPReceivePlan } from './ep.js';
import { allToAllv } from './collectives.js';
import { gatherRowsGpu, epCombineGpu, EPPlanTensors } from './kernels.js';

/** Options of {@link EPBatchManager}. */
export interface EPBatchManagerOptions {
  numExperts: number;
  /** Number of devices (E must be divisible by it). */
  epSize: number;
  /** k: experts per token. */
  topK: number;
}

/** One EP step in flight: the plans, their GPU tensors, and what each device received. Owns its GPU tensors: destroy(). */
export class EPStep {
  constructor(
    readonly dispatch: readonly EPDispatchPlan[],
    readonly receive: readonly EPReceivePlan[],
    /** Per source device: sendTokens / position as uint32 tensors. */
    readonly planTensors: readonly EPPlanTensors[],
    /** Per destination device: received rows [rows, H] in received order (sources in rank order). */
    readonly recv: readonly GpuTensor[],
    /** Per destination: `grouping.position` as uint32 (received row -> grouped row), for the return trip. */
    readonly positions: readonly GpuTensor[],
  ) {}
  destroy(): void {
    for (const p of this.planTensors) p.destroy();
    for (const t of this.recv) t.destroy();
    for (const t of this.positions) t.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}

function u32Tensor(ctx: GpuContext, a: Uint32Array, label: string): GpuTensor {
  const t = GpuTensor.empty(ctx, 'uint32', [a.length], label);
  if (a.length) ctx.writeBuffer(t.buffer, 0, a.buffer, a.byteOffset, a.byteLength);
  return t;
}

/**
 * The EP dispatch/combine of a MoE layer over the devices of one process
 * (MAX's `epBatchManager`), built from the planning functions, the
 * collectives and the EP kernels, and independent of the MoE class:
 *
 * 1. `dispatch(xs, idxs)`: per device routing idx [T_d, k] (host) and
 *    activations x [T_d, H] (GPU) -> each device's received rows, plus the
 *    `receive[d].grouping` (k = 1, E/n local experts) for its grouped GEMMs;
 * 2. the caller runs its experts and gets outputs in grouped order;
 * 3. `combine(step, yGrouped, weights)`: back to the token's device and
 *    `out[t] = sum_j w[t,j] * y` in slot order, f32.
 *
 * @example
 * ```ts
 * const ep = new EPBatchManager({ numExperts: 8, epSize: 2, topK: 2 });
 * const step = await ep.dispatch(xs, idxs);
 * const ys = step.recv.map((x, d) => runExperts(x, step.receive[d].grouping)); // grouped order
 * const outs = await ep.combine(step, ys, weights);
 * step.destroy();
 * ```
 */
export class EPBatchManager {
  readonly numExperts: number;
  readonly epSize: number;
  readonly topK: number;
  readonly placement: ExpertPlacement;

  constructor(opts: EPBatchManagerOptions) {
    this.placement = expertPlacement(opts.numExperts, opts.epSize);
    if (!Number.isInteger(opts.topK) || opts.topK < 1 || opts.topK > opts.numExperts) throw new ShardingError('EPBatchManager topK', `an integer in [1, ${opts.numExperts}]`, opts.topK);
    this.numExperts = opts.numExperts;
    this.epSize = opts.epSize;
    this.topK = opts.topK;
  }

  /**
   * Plans and performs the dispatch. `xs[d]` f32 [T_d, H] on device d,
   * `idxs[d]` its routing [T_d * k]. With `rowScale[d]` (f32 [T_d, k], the
   * router weights) each sent row is scaled first (applyRouterWeightFirst).
   */
  async dispatch(xs: readonly GpuTensor[], idxs: readonly Uint32Array[], opts: { rowScale?: readonly GpuTensor[]; pools?: readonly (BufferPool | undefined)[] } = {}): Promise<EPStep> {
    const n = this.epSize;
    if (xs.length !== n || idxs.length !== n) throw new ShardingError('EPBatchManager.dispatch', `activations and routing for ${n} devices`, `${xs.length} and ${idxs.length}`);
    const H = xs[0].shape[1];
    for (const [d, x] of xs.entries()) {
      if (x.dtype !== 'float32' || x.shape.length !== 2 || x.shape[1] !== H) throw new ShardingError(`EPBatchManager.dispatch xs[${d}]`, `float32 [T, ${H}]`, `${x.dtype} [${x.shape.join(', ')}]`);
    }
    const { dispatch, receive } = planEP(idxs, xs.map((x) => x.shape[0]), this.topK, this.numExperts, n);
    const planTensors = dispatch.map((p, s) => EPPlanTensors.upload(xs[s].ctx, p));
    const sends = dispatch.map((p, s) => {
      const ctx = xs[s].ctx;
      const rec = new Recorder(ctx);
      let scale: GpuTensor | undefined;
      if (opts.rowScale) {
        // the weight of each send row = w[order[r]]: gather the [T*k, 1] weights by pair id
        const order = u32Tensor(ctx, p.order, 'ep.order');
        const w = opts.rowScale[s];
        if (w.dtype !== 'float32' || w.size !== p.T * this.topK) throw new ShardingError(`EPBatchManager.dispatch rowScale[${s}]`, `float32 [${p.T}, ${this.topK}]`, `${w.dtype} [${w.shape.join(', ')}]`);
        const wCol = new GpuTensor(ctx, 'float32', [w.size, 1], w.buffer); // a view: not destroyed here, w owns the buffer
        scale = gatherRowsGpu(ctx, rec, wCol, order);
        const y = gatherRowsGpu(ctx, rec, xs[s], planTensors[s].sendTokens, { scale, pool: opts.pools?.[s] });
        rec.submit();
        order.destroy();
        scale.destroy();
        return y;
      }
      const y = gatherRowsGpu(ctx, rec, xs[s], planTensors[s].sendTokens, { pool: opts.pools?.[s] });
      rec.submit();
      return y;
    });
    const there = await allToAllv(sends, dispatch.map((p) => p.sendCounts), { pools: opts.pools });
    for (const t of sends) t.destroy();
    const positions = receive.map((r, d) => u32Tensor(xs[d].ctx, r.grouping.position, 'ep.recvPosition'));
    return new EPStep(dispatch, receive, planTensors, there.recv, positions);
  }

  /**
   * Sends the expert outputs back and combines them on each token's device.
   * `yGrouped[d]` f32 [rows_d, H] in `step.receive[d].grouping` order;
   * `weights[s]` f32 [T_s, k] (null: plain sum, for applyRouterWeightFirst).
   * Returns `out[s]` f32 [T_s, H].
   */
  async combine(step: EPStep, yGrouped: readonly GpuTensor[], weights: readonly (GpuTensor | null)[], opts: { pools?: readonly (BufferPool | undefined)[] } = {}): Promise<GpuTensor[]> {
    const n = this.epSize;
    if (yGrouped.length !== n || weights.length !== n) throw new ShardingError('EPBatchManager.combine', `outputs and weights for ${n} devices`, `${yGrouped.length} and ${weights.length}`);
    const back = yGrouped.map((y, d) => {
      if (y.shape[0] !== step.receive[d].rows) throw new ShardingError(`EPBatchManager.combine yGrouped[${d}] rows`, `${step.receive[d].rows} (rows received)`, y.shape[0]);
      const rec = new Recorder(y.ctx);
      const t = gatherRowsGpu(y.ctx, rec, y, step.positions[d], { pool: opts.pools?.[d] }); // received order
      rec.submit();
      return t;
    });
    const res = await allToAllv(back, step.receive.map((r) => r.recvCounts), { pools: opts.pools });
    for (const t of back) t.destroy();
    return res.recv.map((yb, s) => {
      const rec = new Recorder(yb.ctx);
      const out = epCombineGpu(yb.ctx, rec, yb, step.planTensors[s].position, weights[s], { k: this.topK, pool: opts.pools?.[s] });
      rec.submit();
      yb.destroy();
      return out;
    });
  }
}
