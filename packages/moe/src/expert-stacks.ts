/**
 * GPU upload of a layer's stacked expert weights (StackedExperts,
 * QuantizedExperts): each stack (gate_up, down) with its scales and bias goes
 * into its parameters' GPU values when every tensor fits one binding of the
 * context (`ctx.maxBindingBytes`), else it is split over several buffers
 * (a chunked stack, owned here) that the expert GEMMs address chunk by chunk.
 */
import { destroyExpertWeights, expertTensors, uploadExpertStack, type ChunkedExpertWeightsGpu, type ExpertRowLayout, type ExpertStackGpu, type ExpertWeightsHost, type GpuContext, type GpuTensor } from '@webmoe/kernels-wgsl';
import type { Parameter } from '@webmoe/nn';

/** One stack of a module: its host container, the parameters of its tensors (codes, then scales), its bias and the row layout a split keeps together. */
export interface StackParams {
  host: ExpertWeightsHost;
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

function uploadOne(ctx: GpuContext, s: StackParams, made: { destroy(): void }[]): ChunkedExpertWeightsGpu | undefined {
  const { weights, bias } = uploadExpertStack(ctx, s.host, { layout: s.layout, bias: s.bias?.value, label: s.label });
  made.push({ destroy: () => destroyExpertWeights(weights) });
  if (bias) made.push(bias);
  if (weights.kind === 'chunked') return weights;
  const ts: GpuTensor[] = expertTensors(weights);
  ts.forEach((t, i) => (s.tensors[i].gpu = t));
  if (s.bias) s.bias.gpu = bias;
  return undefined;
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
