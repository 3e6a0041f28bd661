import { DeviceRef, HostTensor, Checkpoint, allocHost, shapeEquals, type CheckpointSource, type DType, type HostArray } from '@webmoe/tensor';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { concatRows } from '@webmoe/nn';
import { CheckpointError, ConfigError, UnsupportedError } from './errors.js';
import { parseHFMoEConfig, type HFMoESpec } from './hf-config.js';
import { openHFCheckpoint, type MoECheckpoint } from './checkpoint.js';
import { MoE } from './moe.js';

/** Storage dtypes the loader builds layers in. @example `const d: MoEWeightDType = 'bfloat16';` */
export type MoEWeightDType = 'float32' | 'bfloat16' | 'float16';
const FLOAT_DTYPES: readonly DType[] = ['float32', 'bfloat16', 'float16'];

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
  ctx?: GpuContext;
}

function isCheckpoint(s: unknown): s is MoECheckpoint {
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

/** One tensor the block needs: its checkpoint name and shape. */
interface Need {
  name: string;
  shape: number[];
}

/** A transposed copy of the last two axes of [E, A, B] -> [E, B, A], in the storage type. @example `transposeLast2(gateUpInOut) // [E, H, 2I] -> [E, 2I, H]` */
export function transposeLast2(t: HostTensor): HostTensor {
  const [E, A, B] = t.shape;
  const src = t.data;
  const dst = allocHost(t.dtype, t.size);
  for (let e = 0; e < E; e++) {
    const o = e * A * B;
    for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) dst[o + b * A + a] = src[o + a * B + b];
  }
  return new HostTensor(t.dtype, [E, B, A], dst as HostArray);
}

function toDType(t: HostTensor, dtype: DType): HostTensor {
  return t.dtype === dtype ? t : t.cast(dtype);
}

/**
 * Builds layer `layer`'s MoE block from a HuggingFace checkpoint (see
 * {@link MoE.fromHuggingFace}). Every tensor name, shape and dtype is checked
 * against the config before any tensor is read or any GPU memory allocated.
 *
 * @example
 * ```ts
 * const moe = await loadHuggingFaceMoE({ source: '/models/mixtral-tiny', layer: 0, device: DeviceRef.CPU() });
 * ```
 */
export async function loadHuggingFaceMoE(opts: HFLoadOptions): Promise<MoE> {
  const device = opts.device ?? DeviceRef.CPU();
  if (opts.dtype !== undefined && !FLOAT_DTYPES.includes(opts.dtype)) throw new ConfigError('dtype', FLOAT_DTYPES.join(' | '), opts.dtype);
  if (device.isGpu() && !opts.ctx) throw new ConfigError('ctx', `a GpuContext for device ${device}`, 'undefined');
  const ck = await resolveCheckpoint(opts.source);
  try {
    return await build(ck, opts, device);
  } finally {
    // Files opened here are closed here; a caller's MoECheckpoint is left open.
    if (!isCheckpoint(opts.source)) await ck.close?.();
  }
}

async function build(ck: MoECheckpoint, opts: HFLoadOptions, device: DeviceRef): Promise<MoE> {
  const spec = parseHFMoEConfig(ck.config, opts.layer);
  const { prefix, needs } = plan(ck, spec);
  const E = spec.numExperts;
  const H = spec.hiddenDim;
  const I = spec.moeDim;

  // Validate presence, shape and dtype of every tensor, and that nothing else sits under the block's prefix.
  for (const n of needs) {
    const info = ck.info(n.name);
    if (!info) throw new CheckpointError(n.name, `a tensor of shape [${n.shape.join(', ')}]`, 'none (missing from the checkpoint)');
    if (!shapeEquals(info.shape, n.shape)) throw new CheckpointError(n.name, `shape [${n.shape.join(', ')}]`, `[${info.shape.join(', ')}]`);
    if (!FLOAT_DTYPES.includes(info.dtype as DType)) throw new CheckpointError(n.name, `dtype ${FLOAT_DTYPES.join(' | ')}`, info.dtype);
  }
  const known = new Set(needs.map((n) => n.name));
  const extra = ck.tensorNames.filter((n) => n.startsWith(prefix) && !known.has(n));
  if (extra.length) {
    throw new CheckpointError(extra[0], `no other tensors under ${prefix} for ${spec.modelType}`, `unexpected tensor(s) ${extra.slice(0, 6).join(', ')}${extra.length > 6 ? ` (${extra.length} in all)` : ''}`);
  }
  const routerName = prefix + spec.router.weight;
  const dtype: DType = opts.dtype ?? (ck.info(routerName)!.dtype as DType);

  const moe = new MoE({
    devices: [device],
    ctx: opts.ctx,
    hiddenDim: H,
    numExperts: E,
    numExpertsPerToken: spec.topK,
    moeDim: I,
    gateCls: spec.gateCls,
    gateOptions: spec.gateOptions,
    hasSharedExperts: !!spec.shared,
    sharedExpertsDim: spec.shared?.dim,
    hasSharedExpertGate: !!spec.shared?.gate,
    dtype,
    applyRouterWeightFirst: spec.applyRouterWeightFirst,
    expertActivation: spec.activation,
    hasExpertBias: spec.experts.kind === 'fused_in_out' && spec.experts.bias,
  });
  try {
    const read = async (name: string, dt: DType = dtype) => toDType(await ck.read(name), dt);
    const sd = new Map<string, HostTensor>();
    sd.set('gate.weight', await read(routerName));
    if (spec.router.bias) sd.set('gate.bias', await read(prefix + spec.router.bias));
    if (spec.router.correctionBias) sd.set('gate.e_score_correction_bias', await read(prefix + spec.router.correctionBias, 'float32'));
    if (spec.experts.kind === 'per_expert') {
      const { gate, up, down } = spec.experts;
      const gu: HostTensor[] = [];
      const dn: HostTensor[] = [];
      for (let e = 0; e < E; e++) {
        gu.push(await read(`${prefix}experts.${e}.${gate}.weight`), await read(`${prefix}experts.${e}.${up}.weight`));
        dn.push(await read(`${prefix}experts.${e}.${down}.weight`));
      }
      sd.set('experts.gate_up_proj', concatRows(gu, [E, 2 * I, H]));
      sd.set('experts.down_proj', concatRows(dn, [E, H, I]));
    } else {
      // [E, H, 2I] and [E, I, H] are [in, out]: transpose on the host, in the storage type.
      sd.set('experts.gate_up_proj', transposeLast2(await read(`${prefix}experts.gate_up_proj`)));
      sd.set('experts.down_proj', transposeLast2(await read(`${prefix}experts.down_proj`)));
      if (spec.experts.bias) {
        sd.set('experts.gate_up_proj_bias', await read(`${prefix}experts.gate_up_proj_bias`));
        sd.set('experts.down_proj_bias', await read(`${prefix}experts.down_proj_bias`));
      }
    }
    if (spec.shared) {
      const sp = prefix + spec.shared.prefix;
      for (const p of ['gate_proj', 'up_proj', 'down_proj']) sd.set(`shared_experts.${p}.weight`, await read(`${sp}${p}.weight`));
      if (spec.shared.gate) sd.set('shared_expert_gate.weight', await read(prefix + spec.shared.gate));
    }
    moe.loadStateDict(sd);
    return moe;
  } catch (e) {
    moe.destroy();
    throw e;
  }
}

/** The block's prefix and the tensors it needs (with shapes from the config). */
function plan(ck: MoECheckpoint, spec: HFMoESpec): { prefix: string; needs: Need[] } {
  const prefix = spec.prefixes.find((p) => ck.info(p + spec.router.weight)) ?? spec.prefixes[0];
  const { numExperts: E, hiddenDim: H, moeDim: I } = spec;
  const needs: Need[] = [{ name: prefix + spec.router.weight, shape: [E, H] }];
  if (spec.router.bias) needs.push({ name: prefix + spec.router.bias, shape: [E] });
  if (spec.router.correctionBias) needs.push({ name: prefix + spec.router.correctionBias, shape: [E] });
  if (spec.experts.kind === 'per_expert') {
    for (let e = 0; e < E; e++) {
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.gate}.weight`, shape: [I, H] });
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.up}.weight`, shape: [I, H] });
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.down}.weight`, shape: [H, I] });
    }
  } else {
    needs.push({ name: `${prefix}experts.gate_up_proj`, shape: [E, H, 2 * I] }, { name: `${prefix}experts.down_proj`, shape: [E, I, H] });
    if (spec.experts.bias) needs.push({ name: `${prefix}experts.gate_up_proj_bias`, shape: [E, 2 * I] }, { name: `${prefix}experts.down_proj_bias`, shape: [E, H] });
  }
  if (spec.shared) {
    const sp = prefix + spec.shared.prefix;
    const S = spec.shared.dim;
    needs.push({ name: `${sp}gate_proj.weight`, shape: [S, H] }, { name: `${sp}up_proj.weight`, shape: [S, H] }, { name: `${sp}down_proj.weight`, shape: [H, S] });
    if (spec.shared.gate) needs.push({ name: prefix + spec.shared.gate, shape: [1, H] });
  }
  // Quantized checkpoints without a quantization_config still fail: their extra tensors (scales) are unexpected.
  if (spec.modelType !== 'gpt_oss' && spec.modelType !== 'llama4_text' && ck.info(prefix + 'experts.gate_up_proj')) {
    throw new UnsupportedError(`${prefix}experts.gate_up_proj`, `a fused expert layout for ${spec.modelType}`, 'per-expert gate/up/down tensors');
  }
  return { prefix, needs };
}
