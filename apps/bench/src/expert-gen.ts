/**
 * Random routed experts of a bench layer, generated on the GPU straight into
 * the buffers the forward reads: each stack is allocated as the device's
 * binding limit requires (`createExpertStack`: one buffer per tensor, or
 * chunks of whole experts / pieces of an expert) and every chunk tensor is
 * filled by the hash kernel of fill.ts (its own seed per chunk and tensor).
 * Nothing is staged on the host, so the full-size layers (DeepSeek-V3 bf16:
 * 22.5 GB of experts) are made in the time of a GPU memset. The row's check
 * reads the routed experts back from these chunks (check.ts), so the values
 * need no host twin.
 */
import { createExpertStack, destroyExpertWeights, type ExpertStackGpu, type ExpertWeightsShape, type GpuContext, type GpuTensor } from '@webmoe/kernels-wgsl';
import type { ExpertStore, MoE, MoEGpuBytes, UploadedStack } from '@webmoe/moe';
import { fillGpuTensor, fillKindOf, hash32, type FillKind } from './fill.js';
import { expertMatrixBytes, isPacked, packedSharedExperts, type BenchDtype, type ModelSpec } from './models.js';

/** The fill kind of each container field for a bench dtype: codes, then scales (the values the CPU path's words decode to). */
export function expertFillKind(dtype: BenchDtype, field: string, t: { dtype: GpuTensor['dtype'] }): FillKind {
  switch (field) {
    case 'q':
      return dtype === 'fp8' ? 'e4m3' : 'u8';
    case 'blocks':
      return 'u8';
    case 'scaleInv':
      return 'scale';
    case 'scales':
      return dtype === 'mxfp4' ? 'e8m0' : dtype === 'int4' ? 'i4scale' : 'i8scale';
    default: // dense weights, biases
      return fillKindOf(t.dtype);
  }
}

/** The tensors of a stack with their container field (chunk biases: 'bias'), in chunk order. */
function fields(w: ExpertStackGpu, bias: GpuTensor | undefined): { t: GpuTensor; field: string }[] {
  const plain = (c: Exclude<ExpertStackGpu, { kind: 'chunked' }>, b: GpuTensor | undefined) => [
    ...Object.entries(c).filter((e): e is [string, GpuTensor] => typeof e[1] === 'object' && e[1] !== null && 'buffer' in e[1]).map(([field, t]) => ({ t, field })),
    ...(b ? [{ t: b, field: 'bias' }] : []),
  ];
  return w.kind === 'chunked' ? w.chunks.flatMap((c) => plain(c.w, c.bias)) : plain(w, bias);
}

/**
 * One random stack of `shape` (a module's `stackShapes()` entry) for bench
 * dtype `dtype`: allocated (chunked where it exceeds a binding) and filled
 * on the GPU; `biasDtype` adds a bias [E, rows]. Submits; does not wait.
 * @example `const gu = randomExpertStack(ctx, 'fp8', moe.stacked.stackShapes().gateUp, 'concat', 21, 'experts.gate_up_proj')`
 */
export function randomExpertStack(ctx: GpuContext, dtype: BenchDtype, shape: ExpertWeightsShape, layout: 'rows' | 'concat' | 'interleaved', seed: number, label: string, biasDtype?: GpuTensor['dtype']): UploadedStack {
  const s = createExpertStack(ctx, shape, { layout, label, biasDtype });
  try {
    fields(s.weights, s.bias).forEach(({ t, field }, i) => fillGpuTensor(ctx, t, hash32(seed ^ hash32(i + 1)), expertFillKind(dtype, field, t)));
  } catch (e) {
    destroyExpertWeights(s.weights);
    s.bias?.destroy();
    throw e;
  }
  return s;
}

/**
 * Random routed experts for a layer's expert module, given to it
 * (`setGpuStacks`): gate_up in the activation's layout, down by rows,
 * biases where the module has them. `seed` varies per layer of a stack.
 * @example `randomExperts(ctx, moe.stacked, 'bf16', 21)`
 */
export function randomExperts(ctx: GpuContext, ex: ExpertStore, dtype: BenchDtype, seed: number): void {
  const shapes = ex.stackShapes();
  const made: UploadedStack[] = [];
  try {
    made.push(randomExpertStack(ctx, dtype, shapes.gateUp, ex.gateUpLayout, seed, 'experts.gate_up_proj', ex.gateUpBias?.dtype));
    made.push(randomExpertStack(ctx, dtype, shapes.down, 'rows', hash32(seed + 10), 'experts.down_proj', ex.downBias?.dtype));
    ex.setGpuStacks({ gateUp: made[0], down: made[1] });
  } catch (e) {
    for (const m of made) {
      destroyExpertWeights(m.weights);
      m.bias?.destroy();
    }
    throw e;
  }
}

/** Chunks of a stack (1: one buffer per tensor). @example `stackChunks(moe.stacked.gpuWeights().gateUp) // 6` */
export function stackChunks(w: ExpertStackGpu): number {
  return w.kind === 'chunked' ? w.chunks.length : 1;
}

/** A layer's GPU memory (MoE.gpuBytes), the packed bytes its shape implies, and the chunks of its routed stacks. */
export interface LayerMemory {
  gpu: MoEGpuBytes;
  /** Routed experts (codes + scales, expertMatrixBytes) and shared experts (packed with fp8, else dense in the layer's dtype) as stored: what `gpu.expertWeights + gpu.expertScales` must be. */
  packed: number;
  chunks: { gateUp: number; down: number };
}

/** gpuBytes of the experts may exceed the packed bytes by this fraction (each chunk pads its tensors to whole words). */
export const GPU_BYTES_SLACK = 0.02;

/**
 * The layer's memory, checked: its experts' GPU bytes within
 * GPU_BYTES_SLACK of the packed bytes plus scales (an Error otherwise, which
 * fails the model's rows).
 * @example `layerMemory(findModel('deepseek-v3'), 'fp8', moe).chunks // { gateUp: 6, down: 3 }`
 */
export function layerMemory(spec: ModelSpec, dtype: BenchDtype, moe: MoE): LayerMemory {
  const gu = expertMatrixBytes(dtype, 2 * spec.I, spec.H);
  const dn = expertMatrixBytes(dtype, spec.H, spec.I);
  const S = spec.shared * spec.I;
  // the shared experts' storage: packed like the routed ones (fp8), else the dense parts' bf16 (other packed rows), else the row's dtype
  const sdt: BenchDtype = packedSharedExperts(dtype) ? dtype : isPacked(dtype) ? 'bf16' : dtype;
  const sgu = expertMatrixBytes(sdt, 2 * S, spec.H);
  const sdn = expertMatrixBytes(sdt, spec.H, S);
  const sharedBytes = S ? sgu.weights + sgu.scales + sdn.weights + sdn.scales : 0;
  const packed = spec.E * (gu.weights + gu.scales + dn.weights + dn.scales) + sharedBytes;
  const gpu = moe.gpuBytes();
  const experts = gpu.expertWeights + gpu.expertScales;
  if (!(experts >= packed && experts <= (1 + GPU_BYTES_SLACK) * packed)) {
    throw new Error(`${spec.name} ${dtype}: the experts hold ${experts} GPU bytes, expected the packed ${packed} (+${GPU_BYTES_SLACK * 100}% at most)`);
  }
  const w = moe.stacked.gpuWeights();
  return { gpu, packed, chunks: { gateUp: stackChunks(w.gateUp), down: stackChunks(w.down) } };
}

/** One line of a layer's memory: `22.55 GB on the GPU (packed 22.55 GB), gate_up 12 + down 6 chunks`. */
export function memoryLine(m: LayerMemory): string {
  return `${(m.gpu.total / 1e9).toFixed(2)} GB on the GPU (experts packed ${(m.packed / 1e9).toFixed(2)} GB), gate_up ${m.chunks.gateUp} + down ${m.chunks.down} chunks`;
}
