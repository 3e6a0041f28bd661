/**
 * GPU upload of a layer's stacked expert weights (StackedExperts,
 * QuantizedExperts): each stack (gate_up, down) with its scales and bias goes
 * into its parameters' GPU values when every tensor fits one binding of the
 * context (`ctx.maxBindingBytes`), else it is split over several buffers
 * (a chunked stack, owned here) that the expert GEMMs address chunk by chunk.
 */
import { destroyExpertWeights, expertDims, expertTensors, uploadExpertStack, type ChunkedExpertWeightsGpu, type ExpertRowLayout, type ExpertStackGpu, type ExpertWeightsGpu, type ExpertWeightsHost, type ExpertWeightsShape, type GpuContext, type GpuTensor } from '@webmoe/kernels-wgsl';
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { Parameter } from '@webmoe/nn';

/** One stack of a module: its host container, the parameters of its tensors (codes, then scales), its bias and the row layout a split keeps together. */
export interface StackParams {
  host: ExpertWeightsHost;
  /** The stack's tensors without data (the parameters' dtypes and shapes). */
  shape: ExpertWeightsShape;
  tensors: readonly Parameter[];
  bias: Parameter | undefined;
  layout: ExpertRowLayout;
  label: string;
}

/**
 * The GPU side of a module's two expert stacks. `upload` fills the
 * parameters' GPU values (one buffer per tensor) or keeps chunked stacks;
 * a failed upload frees whatever it made.
 */
export class GpuExpertStacks {
  private chunked: { gateUp?: ChunkedExpertWeightsGpu; down?: ChunkedExpertWeightsGpu } = {};

  /** Uploads both stacks (freeing the previous chunked ones). Nothing stays half-uploaded on failure. */
  upload(ctx: GpuContext, gateUp: StackParams, down: StackParams): void {
    this.destroy();
    const made: { destroy(): void }[] = [];
    try {
      this.chunked.gateUp = uploadOne(ctx, gateUp, made);
      this.chunked.down = uploadOne(ctx, down, made);
    } catch (e) {
      for (const m of made) m.destroy();
      for (const p of [...gateUp.tensors, ...down.tensors, gateUp.bias, down.bias]) if (p) p.gpu = undefined;
      this.chunked = {};
      throw e;
    }
  }

  /**
   * Takes GPU stacks made elsewhere (`uploadExpertStackStreamed`,
   * `createExpertStack`: plain or chunked, biases in the chunks or beside a
   * plain container) after checking them against the parameters (kind,
   * [E, rows, cols], dtypes, bias); frees the previous GPU values. The
   * parameters keep no host value. On a mismatch (typed error) nothing is
   * taken and the caller still owns the stacks.
   */
  adopt(ctx: GpuContext | undefined, gateUp: StackParams, down: StackParams, given: { gateUp: UploadedStack; down: UploadedStack }): void {
    if (!ctx) throw new ValueError('setGpuStacks', 'a module on a GPU device', 'a CPU module');
    checkAdopted(ctx, gateUp, given.gateUp);
    checkAdopted(ctx, down, given.down);
    this.destroy();
    for (const s of [gateUp, down]) for (const p of [...s.tensors, s.bias]) p?.destroy();
    this.chunked.gateUp = take(gateUp, given.gateUp);
    this.chunked.down = take(down, given.down);
  }

  /** The stacks as the GEMMs take them: each the chunked stack, or a plain container of the parameters' GPU values (`plain`, made only for a stack that is not split). */
  weights(plain: { gateUp: () => ExpertStackGpu; down: () => ExpertStackGpu }): { gateUp: ExpertStackGpu; down: ExpertStackGpu } {
    return { gateUp: this.chunked.gateUp ?? plain.gateUp(), down: this.chunked.down ?? plain.down() };
  }

  /** Whether a stack is split (its parameters then have no GPU values). */
  isChunked(which: 'gateUp' | 'down'): boolean {
    return !!this.chunked[which];
  }

  /** Frees the chunked stacks (the parameters free their own GPU values). */
  destroy(): void {
    for (const w of [this.chunked.gateUp, this.chunked.down]) if (w) destroyExpertWeights(w);
    this.chunked = {};
  }
}

/** A stack on the GPU: a plain container with its bias, or a chunked one (biases inside). */
export interface UploadedStack {
  weights: ExpertStackGpu;
  bias: GpuTensor | undefined;
}

function uploadOne(ctx: GpuContext, s: StackParams, made: { destroy(): void }[]): ChunkedExpertWeightsGpu | undefined {
  const up = uploadExpertStack(ctx, s.host, { layout: s.layout, bias: s.bias?.value, label: s.label });
  made.push({ destroy: () => destroyExpertWeights(up.weights) });
  if (up.bias) made.push(up.bias);
  return take(s, up);
}

/** Keeps a stack: a chunked one as it is; a plain one's tensors as the parameters' GPU values. */
function take(s: StackParams, up: UploadedStack): ChunkedExpertWeightsGpu | undefined {
  if (up.weights.kind === 'chunked') return up.weights;
  const ts: GpuTensor[] = expertTensors(up.weights);
  ts.forEach((t, i) => (s.tensors[i].gpu = t));
  if (s.bias) s.bias.gpu = up.bias;
  return undefined;
}

/** Checks a GPU stack against a module's stack: kind, [E, rows, cols], each tensor's dtype, the bias. */
function checkAdopted(ctx: GpuContext, s: StackParams, up: UploadedStack): void {
  const what = `${s.label} (GPU stack)`;
  for (const t of [...expertTensors(up.weights), ...(up.bias ? [up.bias] : [])]) {
    // the module's context (a context made with withMaxBindingBytes shares its device)
    if (t.ctx.device !== ctx.device) throw new ValueError(`${what} tensors`, "GPU tensors on the module's device", `a tensor (${t.dtype} [${t.shape.join(', ')}]) of another device`);
  }
  const want = expertDims(s.shape, s.label);
  const got = expertDims(up.weights, what);
  if (got.E !== want.E || got.rows !== want.rows || got.cols !== want.cols) throw new ShapeError(what, [want.E, want.rows, want.cols], [got.E, got.rows, got.cols]);
  const first: ExpertWeightsGpu = up.weights.kind === 'chunked' ? up.weights.chunks[0].w : up.weights;
  if (first.kind !== s.shape.kind) throw new ValueError(`${what} kind`, s.shape.kind, first.kind);
  for (const [field, t] of Object.entries(s.shape)) {
    if (typeof t !== 'object' || t === null || !('dtype' in t)) continue;
    const g = (first as unknown as Record<string, { dtype: string } | undefined>)[field];
    const dt = (t as { dtype: string }).dtype;
    if (g?.dtype !== dt) throw new DTypeError(`${what} ${field}`, dt, g?.dtype ?? 'none');
  }
  const hasBias = up.weights.kind === 'chunked' ? !!up.weights.chunks[0].bias : !!up.bias;
  if (hasBias !== !!s.bias) throw new ValueError(`${what} bias`, s.bias ? `a ${s.bias.dtype} bias` : 'no bias', hasBias ? 'a bias' : 'none');
  if (up.weights.kind === 'chunked' && up.bias) throw new ValueError(`${what} bias`, 'undefined beside a chunked stack (its biases travel in the chunks)', 'a tensor');
  if (s.bias && up.weights.kind !== 'chunked') {
    const b = up.bias!;
    if (b.dtype !== s.bias.dtype) throw new DTypeError(`${what} bias`, [s.bias.dtype], b.dtype);
    if (b.shape.join() !== s.bias.shape.join()) throw new ShapeError(`${what} bias`, s.bias.shape, b.shape);
  }
}

/**
 * The bias to pass with GPU expert weights `w` to the expert GEMMs: the
 * parameter's GPU value, or undefined for a chunked stack (its biases
 * travel in its chunks).
 * @example `groupedDownGpu(ctx, rec, h, g, w.down, expertBiasGpu(w.down, experts.downBias))`
 */
export function expertBiasGpu(w: ExpertStackGpu, bias: Parameter | undefined): GpuTensor | undefined {
  return w.kind === 'chunked' ? undefined : bias?.gpuValue;
}
