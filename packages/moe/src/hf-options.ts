/**
 * The options of the HuggingFace loader (`MoE.fromHuggingFace`,
 * hf-loader.ts) and the decisions taken from them before anything is read:
 * the checkpoint to open and whether the routed experts stream.
 */
import { DTYPES, Checkpoint, type CheckpointSource, type DeviceRef, type DType } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { ConfigError, UnsupportedError } from './errors.js';
import type { HFMoESpec } from './hf-config.js';
import { openHFCheckpoint, type MoECheckpoint } from './checkpoint.js';
import type { ActivationQuant, ResolvedQuantConfig } from './quant-experts.js';

/** Storage dtypes of a layer's dense weights (MoELayerConfig.dtype; what the loader builds layers in). @example `const d: MoEWeightDType = 'bfloat16';` */
export type MoEWeightDType = 'float32' | 'bfloat16' | 'float16';
/** The storage dtypes the loader builds layers in, as a list. */
export const FLOAT_DTYPES: readonly DType[] = ['float32', 'bfloat16', 'float16'];

/** Options of `MoE.fromHuggingFace`. @example `{ source: urlDirSource(url), layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx }` */
export interface HFLoadOptions {
  /** A `CheckpointSource` (`memorySource`, `urlDirSource`, Node `dirSource`), an opened `Checkpoint`, an {@link MoECheckpoint}, or (Node only) a directory path. */
  source: CheckpointSource | Checkpoint | MoECheckpoint | string;
  /** The decoder layer whose MoE block to build. */
  layer: number;
  /** Storage dtype of the weights on the device (default: the checkpoint's). float32 weights cast to bfloat16 round to nearest even, on the host. */
  dtype?: MoEWeightDType;
  /** Where the layer runs (default `DeviceRef.CPU()`). */
  device?: DeviceRef;
  /** The WebGPU context for a GPU device. */
  ctx?: GpuContext | undefined;
  /**
   * Read only expert shard `shardIndex` of `epSize` (experts `[i*E/n, (i+1)*E/n)`): the layer
   * is that expert-parallel shard (`epSize`, `shardIndex`; router and shared expert whole).
   * E must be divisible by epSize (ShardingError before anything is read). Dense and quantized experts
   * (per-expert fp8 tensors: only this shard's are read; fused MXFP4 tensors are read whole and cut).
   */
  expertShard?: { epSize: number; shardIndex: number };
  /** Quantized checkpoints: overrides the activation scheme of `quantization_config` ('none' weight-only, 'dynamic' fp8 w8a8). */
  activationQuant?: ActivationQuant;
  /**
   * Stream the routed experts (GPU layers of per-expert checkpoints: dense, fp8 blocks): each
   * expert is read and copied into host buffers of one chunk of the stack (at most the binding
   * limit), which is uploaded and released before the next, so no host array holds a whole stack
   * (DeepSeek-V3's gate_up is 15 GB in bf16, beyond one typed array). The layer then keeps no host
   * copy of its routed experts: `forwardHost`, `quantize()` and sharding of it need a non-streamed
   * load. Default `'auto'`: streamed on a GPU when a routed stack exceeds {@link STREAM_EXPERTS_BYTES}.
   * `true` elsewhere (CPU device, fused or compressed-tensors experts) is a ConfigError / UnsupportedError.
   */
  streamExperts?: boolean | 'auto';
}

/** Routed-expert stacks above this many bytes are streamed by default (`HFLoadOptions.streamExperts`). @example `STREAM_EXPERTS_BYTES // 1 GiB` */
export const STREAM_EXPERTS_BYTES = 2 ** 30;

export function isCheckpoint(s: unknown): s is MoECheckpoint {
  return typeof s === 'object' && s !== null && 'tensorNames' in s && 'read' in s && 'info' in s;
}

/** Opens `source` as a checkpoint (a directory path needs Node). @example `const ck = await resolveCheckpoint(memorySource(files))` */
export async function resolveCheckpoint(source: HFLoadOptions['source']): Promise<MoECheckpoint> {
  if (isCheckpoint(source)) return source;
  if (source instanceof Checkpoint) return openHFCheckpoint(source);
  if (typeof source === 'string') {
    // Node only; the specifier is a variable so that browser bundles do not pull in node:fs.
    const spec = '@webmoe/tensor/node';
    const node = (await import(/* @vite-ignore */ spec)) as typeof import('@webmoe/tensor/node');
    return openHFCheckpoint(node.dirSource(source));
  }
  if (typeof source === 'object' && source !== null && 'exists' in source && 'open' in source && 'readText' in source) return openHFCheckpoint(source);
  throw new ConfigError('source', 'a CheckpointSource, Checkpoint, MoECheckpoint or directory path', typeof source);
}

/**
 * Whether the routed experts stream (`HFLoadOptions.streamExperts`): 'auto'
 * streams GPU layers of per-expert checkpoints whose gate_up stack exceeds
 * STREAM_EXPERTS_BYTES; `true` where streaming is not possible is a typed error.
 */
export function streamDecision(opts: HFLoadOptions, device: DeviceRef, spec: HFMoESpec, quant: ResolvedQuantConfig | undefined, ct: boolean, dtype: DType): boolean {
  const want = opts.streamExperts ?? 'auto';
  if (want !== true && want !== false && want !== 'auto') throw new ConfigError('streamExperts', "true | false | 'auto'", want);
  if (want === false) return false;
  const possible = device.isGpu() && !ct && spec.experts.kind === 'per_expert' && (!quant || quant.format === 'fp8_block');
  if (want === true) {
    if (!device.isGpu()) throw new ConfigError('streamExperts', 'false on a CPU device (the CPU path reads host stacks)', true);
    if (!possible) throw new UnsupportedError('streamExperts', `${ct ? 'compressed-tensors' : spec.experts.kind} experts`, 'per-expert dense or fp8 experts');
    return true;
  }
  const local = spec.numExperts / (opts.expertShard?.epSize ?? 1);
  const bytes = local * 2 * spec.moeDim * spec.hiddenDim * (quant ? 1 : DTYPES[dtype].bytes);
  return possible && bytes > STREAM_EXPERTS_BYTES;
}
