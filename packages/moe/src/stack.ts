import { DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import { BufferPool, ForwardGraphs, GpuTensor, Recorder, STACK_SUBMIT_PIECES, checkOutput, recordAndSubmit, useStackGraph, GRAPH_CAPTURE_AT, type GpuContext } from '@webmoe/kernels-wgsl';
import { forwardHostArray, forwardHostData, layerScratchPool, noHostOutput } from './host-io.js';
import { LayerList } from '@webmoe/nn';
import { MoE, type MoEGpuForwardOptions, type MoEHostForwardOptions, type MoEOutput } from './moe.js';

/**
 * A stack of MoE layers run one after another (`y = layers[n-1](...layers[0](x))`,
 * no residual or norm in between): a decode step through every MoE block of
 * a model issued as one recording. On a GPU, for T <= 64 (`useGraphs`,
 * useStackGraph) the whole stack is one captured graph: a step is the input
 * copied in, every layer's dispatches, the output copied out, submitted in a
 * few pieces of growing size (STACK_SUBMIT_PIECES: the GPU starts on the first
 * layers while the rest is issued), with nothing created or written on the
 * host per step. Past 64 tokens each layer replays its own graph (one submit
 * per layer; their scratch is shared, where a whole-stack graph would hold
 * every layer's at once).
 * It is a `LayerList` (state-dict names `0.gate.weight`, ...; `destroy()`
 * frees the layers too).
 *
 * @example
 * ```ts
 * const layers = await Promise.all([0, 1, 2].map((layer) => MoE.fromHuggingFace({ source, layer, device: DeviceRef.GPU(), ctx })));
 * const stack = new MoEStack(layers);
 * const y = stack.forwardGpuSync(x); // == layers[2].forward(layers[1].forward(layers[0].forward(x))), one submit
 * stack.destroy();
 * ```
 */
export class MoEStack extends LayerList<MoE> {
  readonly hiddenDim: number;
  /** Replay one captured graph of the whole stack for T <= 64 (up to 4 token counts cached), and the layers' own graphs past it. */
  useGraphs = true;
  private pool: BufferPool | undefined;
  private graphs: ForwardGraphs | undefined;

  /** Whether `destroy()` also destroys the layers. */
  readonly ownsLayers: boolean;

  /** @param opts.ownsLayers `destroy()` also destroys the layers (default true; false for a stack over layers used elsewhere, or one layer repeated). */
  constructor(layers: readonly MoE[], opts: { ownsLayers?: boolean } = {}) {
    if (!Array.isArray(layers) || layers.length === 0) throw new ValueError('MoEStack layers', 'at least one MoE', Array.isArray(layers) ? '[]' : typeof layers);
    layers.forEach((m, i) => {
      if (!(m instanceof MoE)) throw new ValueError(`MoEStack layers[${i}]`, 'an MoE', m?.constructor?.name ?? typeof m);
      if (m.hiddenDim !== layers[0].hiddenDim) throw new ShapeError(`MoEStack layers[${i}] hiddenDim`, [layers[0].hiddenDim], [m.hiddenDim]);
      if (String(m.device) !== String(layers[0].device) || m.ctx !== layers[0].ctx) {
        throw new ValueError(`MoEStack layers[${i}] device`, `the device (and GpuContext) of layers[0] (${layers[0].device})`, String(m.device));
      }
    });
    super(layers);
    this.hiddenDim = layers[0].hiddenDim;
    this.ownsLayers = opts.ownsLayers ?? true;
  }

  private get gpuCtx(): GpuContext {
    return this.at(0).ctx!;
  }

  /**
   * Records every layer into `rec` (no submit); scratch (intermediate
   * activations included) comes from `pool` and is pushed to `scratch`.
   * Returns the last layer's output [T, H], not from the pool.
   */
  record(rec: Recorder, x: GpuTensor, pool: BufferPool, scratch: { destroy(): void }[]): GpuTensor {
    let cur = x;
    for (let i = 0; i < this.length; i++) {
      const y = this.at(i).record(rec, cur, pool, scratch);
      if (cur !== x) scratch.push(cur);
      cur = y;
    }
    return cur;
  }

  /** The stack on the GPU, as a promise (see {@link forwardGpuSync}). */
  async forwardGpu(x: GpuTensor, opts: MoEGpuForwardOptions = {}): Promise<GpuTensor> {
    return this.forwardGpuSync(x, opts);
  }

  /**
   * The stack on the GPU for x f32 [T, H], issued synchronously with one
   * submit. Output as {@link MoE.forwardGpuSync}: `opts.out`, or a tensor
   * from the stack's output pool that the caller owns.
   */
  forwardGpuSync(x: GpuTensor, opts: MoEGpuForwardOptions = {}): GpuTensor {
    if (!this.at(0).device.isGpu()) throw new ValueError('MoEStack.forwardGpu', 'GPU layers', String(this.at(0).device));
    const ctx = this.gpuCtx;
    if (!(x instanceof GpuTensor) || x.ctx !== ctx) throw new ValueError('MoEStack.forward input', "a GpuTensor on the layers' GpuContext", 'another value');
    if (x.shape.length !== 2 || x.shape[1] !== this.hiddenDim) throw new ShapeError('MoEStack.forward input', ['T', this.hiddenDim], x.shape);
    if (x.dtype !== 'float32') throw new DTypeError('MoEStack.forward input', 'float32', x.dtype);
    const T = x.shape[0];
    const shape = [T, this.hiddenDim];
    if (opts.out) checkOutput('MoEStack.forward out', ctx, opts.out, shape);
    // the layers' own checks (weights loaded, buffer limits) before anything is recorded
    if (T === 0) return this.at(0).forwardGpuSync(x, opts);
    for (const m of this) m.checkForward(T);
    const pool = (this.pool ??= layerScratchPool(ctx));
    if (this.useGraphs && useStackGraph(T)) {
      // submitted in pieces: the GPU starts on the first layers while the host issues the rest
      this.graphs ??= new ForwardGraphs(ctx, 'moe-stack', { pieces: STACK_SUBMIT_PIECES, captureAt: GRAPH_CAPTURE_AT });
      return this.graphs.run(String(T), x, shape, (rec, xIn, scratch) => this.record(rec, xIn, pool, scratch), opts.out);
    }
    if (this.useGraphs) return this.layerByLayer(x, opts.out);
    return recordAndSubmit(ctx, 'moe-stack.forward', (rec, scratch) => this.record(rec, x, pool, scratch), opts.out);
  }

  /** Each layer's own forward (its graph replayed), each intermediate output given back once the next layer consumed it; the last writes `out` when given. */
  private layerByLayer(x: GpuTensor, out: GpuTensor | undefined): GpuTensor {
    let cur = x;
    for (let i = 0; i < this.length; i++) {
      const y = this.at(i).forwardGpuSync(cur, i === this.length - 1 && out ? { out } : {});
      if (cur !== x) cur.destroy();
      cur = y;
    }
    return cur;
  }

  /**
   * Runs the stack: a GpuTensor gives a GpuTensor (see forwardGpuSync); a
   * HostTensor or Float32Array [T, H] gives the same kind back, on either
   * device (GPU layers: one upload, one submit, one read-back), written into
   * `opts.out` where given (host inputs only; see MoEHostForwardOptions).
   */
  async forward<X extends GpuTensor | HostTensor | Float32Array>(x: X, opts: MoEHostForwardOptions = {}): Promise<MoEOutput<X>> {
    if (x instanceof GpuTensor) {
      noHostOutput('MoEStack.forward', opts, 'forwardGpuSync');
      return this.forwardGpuSync(x) as MoEOutput<X>;
    }
    const H = this.hiddenDim;
    return forwardHostData('MoEStack.forward', x, H, opts, (xs, T, out) => {
      if (!this.at(0).device.isGpu()) {
        let y = xs;
        for (const m of this) y = m.forwardHost(y, T);
        return y;
      }
      for (const m of this) m.checkForward(T);
      const pool = (this.pool ??= layerScratchPool(this.gpuCtx));
      return forwardHostArray(this.gpuCtx, pool, xs, [T, H], 'MoEStack.forward', (xg) => this.forwardGpuSync(xg), out);
    });
  }

  /** Frees the stack's cached graphs (the layers' weights stay). Call after reloading a layer's weights through the layer itself. */
  clearGraphs(): void {
    this.graphs?.clear();
  }

  /** A load through the stack (`stack.loadStateDict`) drops the graphs, which bound the old weights. */
  protected override afterLoad(): void {
    this.clearGraphs();
    super.afterLoad();
  }

  /** Frees the graphs, the scratch pool and (with `ownsLayers`) the layers. */
  override destroy(): void {
    this.graphs?.destroy();
    this.graphs = undefined;
    this.pool?.destroy();
    this.pool = undefined;
    if (this.ownsLayers) super.destroy();
  }
}
