import { DeviceRef, HostTensor, allocHost, shapeEquals, type DType, type HostArray } from '@webmoe/tensor';
import { destroyExpertWeights, uploadExpertStackStreamed, type ExpertWeightsHost, type GpuContext } from '@webmoe/kernels-wgsl';
import type { UploadedStack } from './expert-stacks.js';
import { concatRows } from '@webmoe/nn';
import { takeRanges } from '@webmoe/sharding';
import { CheckpointError, ConfigError, UnsupportedError } from './errors.js';
import { parseHFMoEConfig, type HFMoESpec } from './hf-config.js';
import type { MoECheckpoint } from './checkpoint.js';
import { FLOAT_DTYPES, isCheckpoint, resolveCheckpoint, streamDecision, type HFLoadOptions, type MoEWeightDType } from './hf-options.js';
import type { MoELayer } from './layer.js';
import type { MoEOptions } from './moe-options.js';
import { checkStackable, normalizeQuantConfig, type MoEQuantConfig, type ResolvedQuantConfig } from './quant-experts.js';
import { expertQuant, moeLayerConfig } from './layer-config.js';
import { checkCTWeightShapes, planCompressedTensors, readCTExperts, type CTPlan } from './compressed-tensors.js';

/** One tensor the block needs: its checkpoint name and shape. */
interface Need {
  name: string;
  shape: number[];
  /** Allowed dtypes (default float32 | bfloat16 | float16). */
  dtypes?: readonly string[];
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
 * {@link MoE.fromHuggingFace}, which calls it with `create = (o) => new MoE(o)`:
 * this file builds layers through `create` so that it does not import the
 * MoE class, which imports it). Every tensor name, shape and dtype is checked
 * against the config before any tensor is read or any GPU memory allocated.
 *
 * @example
 * ```ts
 * const moe = await loadHuggingFaceMoE({ source: '/models/mixtral-tiny', layer: 0, device: DeviceRef.CPU() }, (o) => new MoE(o));
 * ```
 */
export async function loadHuggingFaceMoE<L extends MoELayer>(opts: HFLoadOptions, create: (options: MoEOptions) => L): Promise<L> {
  const device = opts.device ?? DeviceRef.CPU();
  if (opts.dtype !== undefined && !FLOAT_DTYPES.includes(opts.dtype)) throw new ConfigError('dtype', FLOAT_DTYPES.join(' | '), opts.dtype);
  if (device.isGpu() && !opts.ctx) throw new ConfigError('ctx', `a GpuContext for device ${device}`, 'undefined');
  const ck = await resolveCheckpoint(opts.source);
  try {
    return await build(ck, opts, device, create);
  } finally {
    // Files opened here are closed here; a caller's MoECheckpoint is left open.
    if (!isCheckpoint(opts.source)) await ck.close?.();
  }
}

async function build<L extends MoELayer>(ck: MoECheckpoint, opts: HFLoadOptions, device: DeviceRef, create: (options: MoEOptions) => L): Promise<L> {
  const spec = parseHFMoEConfig(ck.config, opts.layer);
  const { prefix, needs, ct } = plan(ck, spec);
  const E = spec.numExperts;
  const H = spec.hiddenDim;
  const I = spec.moeDim;

  // Validate presence, shape and dtype of every tensor, and that nothing else sits under the block's prefix.
  for (const n of needs) {
    const info = ck.info(n.name);
    if (!info) throw new CheckpointError(n.name, `a tensor of shape [${n.shape.join(', ')}]`, 'none (missing from the checkpoint)');
    if (!shapeEquals(info.shape, n.shape)) throw new CheckpointError(n.name, `shape [${n.shape.join(', ')}]`, `[${info.shape.join(', ')}]`);
    const allowed = n.dtypes ?? FLOAT_DTYPES;
    if (!allowed.includes(info.dtype as DType)) throw new CheckpointError(n.name, `dtype ${allowed.join(' | ')}`, info.dtype);
  }
  const known = new Set(needs.map((n) => n.name));
  // the block's name spaces: the prefix, or (a layer-level prefix: Granite) the block's own modules under it
  const owned = (spec.ownedNames ?? ['']).map((o) => prefix + o);
  const extra = ck.tensorNames.filter((n) => owned.some((o) => n.startsWith(o)) && !known.has(n));
  if (extra.length) {
    throw new CheckpointError(extra[0], `no other tensors under ${owned.join(' or ')} for ${spec.modelType}`, `unexpected tensor(s) ${extra.slice(0, 6).join(', ')}${extra.length > 6 ? ` (${extra.length} in all)` : ''}`);
  }
  // compressed-tensors: each module's weight_shape against the config (small reads, still before any allocation)
  if (ct) await checkCTWeightShapes(ck, ct.modules);
  const routerName = prefix + spec.router.weight;
  const dtype: DType = opts.dtype ?? (ck.info(routerName)!.dtype as DType);
  if (opts.activationQuant !== undefined && opts.activationQuant !== 'none' && opts.activationQuant !== 'dynamic') throw new ConfigError('activationQuant', 'none | dynamic', opts.activationQuant);
  let quantConfig: MoEQuantConfig | undefined = ct?.quant ?? spec.quant;
  if (quantConfig && spec.experts.kind === 'fused_in_out' && spec.experts.bias) {
    // Biases stay in the checkpoint's dtype (bf16/f32), or the requested float dtype.
    quantConfig = { ...quantConfig, biasDtype: (opts.dtype ?? ck.info(`${prefix}experts.gate_up_proj_bias`)!.dtype) as MoEWeightDType };
  }
  if (!quantConfig && opts.activationQuant === 'dynamic') throw new ConfigError('activationQuant', "'none' for an unquantized checkpoint (dynamic fp8 activations need quantized experts)", opts.activationQuant);

  const options: MoEOptions = {
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
    quantConfig,
    activationQuant: quantConfig ? opts.activationQuant : undefined,
    epSize: opts.expertShard?.epSize,
    shardIndex: opts.expertShard?.shardIndex,
    isSharding: !!opts.expertShard,
  };
  // the layer config the constructor builds from these options (the same function): what to read and whether to stream
  const quant = expertQuant(moeLayerConfig(options).experts);
  const stream = streamDecision(opts, device, spec, quant, !!ct, dtype);
  const moe = create(options);
  // the experts this layer holds: all, or its expert-parallel shard's range
  const e0 = moe.shardIndex * moe.numLocalExperts;
  const e1 = e0 + moe.numLocalExperts;
  const ownExperts = (t: HostTensor) => (moe.epSize === 1 ? t : takeRanges(t, 0, [[e0, e1]]));
  try {
    const read = async (name: string, dt: DType = dtype) => toDType(await ck.read(name), dt);
    const sd = new Map<string, HostTensor>();
    sd.set('gate.weight', await read(routerName));
    if (spec.router.bias) sd.set('gate.bias', await read(prefix + spec.router.bias));
    if (spec.router.correctionBias) {
      // [E] as the gate holds it, whatever shape it is stored in (checked by plan: [E] values)
      const cb = await read(prefix + spec.router.correctionBias, 'float32');
      sd.set('gate.e_score_correction_bias', new HostTensor(cb.dtype, [spec.numExperts], cb.data));
    }
    if (ct) {
      await readCTExperts(ck, ct.experts, ct.quant, 'experts', sd);
      // expert parallel: this rank keeps its own experts [e0, e1) (the containers are [E, ...])
      if (moe.epSize > 1) for (const [name, t] of sd) if (name.startsWith('experts.')) sd.set(name, ownExperts(t));
    } else if (stream) {
      // the routed experts go straight to the GPU below, one expert at a time
    } else if (spec.experts.kind === 'per_expert') {
      if (quant && quant.format !== 'fp8_block') throw new UnsupportedError('quantization_config', `${quant.format} experts in a per-expert layout`, 'per-expert fp8, fused mxfp4');
      for (const [which, base] of [['gateUp', 'experts.gate_up_proj'], ['down', 'experts.down_proj']] as const) {
        const pieces: ExpertWeightsHost[] = [];
        for (let e = e0; e < e1; e++) pieces.push(await readExpertPiece(ck, spec, prefix, quant, read, e, which));
        for (const [field, suffix] of Object.entries(PIECE_FIELDS)) {
          const parts = pieces.map((p) => (p as unknown as Record<string, HostTensor | undefined>)[field]).filter((t): t is HostTensor => !!t);
          if (parts.length) sd.set(base + suffix, concatRows(parts, [e1 - e0, ...parts[0].shape.slice(1)]));
        }
      }
    } else if (quant) {
      await readQuantizedExperts(ck, spec, prefix, quant, sd, (n, dt) => read(n, dt), ownExperts);
    } else if (spec.experts.kind === 'fused_out_in') {
      // [E, 2I, H] and [E, H, I] are the layer's own layouts
      sd.set('experts.gate_up_proj', ownExperts(await read(prefix + spec.experts.gateUp)));
      sd.set('experts.down_proj', ownExperts(await read(prefix + spec.experts.down)));
    } else {
      // [E, H, 2I] and [E, I, H] are [in, out]: transpose on the host, in the storage type.
      // Fused tensors are read whole and cut to this layer's experts (a safetensors tensor is one byte range).
      sd.set('experts.gate_up_proj', transposeLast2(ownExperts(await read(`${prefix}experts.gate_up_proj`))));
      sd.set('experts.down_proj', transposeLast2(ownExperts(await read(`${prefix}experts.down_proj`))));
      if (spec.experts.bias) {
        sd.set('experts.gate_up_proj_bias', ownExperts(await read(`${prefix}experts.gate_up_proj_bias`)));
        sd.set('experts.down_proj_bias', ownExperts(await read(`${prefix}experts.down_proj_bias`)));
      }
    }
    if (spec.shared && quant?.quantizeSharedExperts) {
      if (ct) await readCTExperts(ck, [ct.shared!], ct.quant, 'shared_experts', sd);
      else await readQuantizedShared(ck, spec, prefix, quant, sd);
      if (spec.shared.gate) sd.set('shared_expert_gate.weight', await read(prefix + spec.shared.gate));
    } else if (spec.shared?.fused) {
      // input_linear [2S, H]: the gate's S rows, then the up projection's
      const sp = prefix + spec.shared.prefix;
      const S = spec.shared.dim;
      const gateUp = await read(`${sp}input_linear.weight`);
      sd.set('shared_experts.gate_proj.weight', takeRanges(gateUp, 0, [[0, S]]));
      sd.set('shared_experts.up_proj.weight', takeRanges(gateUp, 0, [[S, 2 * S]]));
      sd.set('shared_experts.down_proj.weight', await read(`${sp}output_linear.weight`));
    } else if (spec.shared) {
      const sp = prefix + spec.shared.prefix;
      for (const p of ['gate_proj', 'up_proj', 'down_proj']) sd.set(`shared_experts.${p}.weight`, await read(`${sp}${p}.weight`));
      if (spec.shared.gate) sd.set('shared_expert_gate.weight', await read(prefix + spec.shared.gate));
    }
    if (!stream) {
      moe.loadStateDict(sd);
      return moe;
    }
    // every module but the routed experts from the state dict; the experts streamed to their GPU stacks
    for (const [name, child] of moe.namedChildren()) {
      if (name === 'experts') continue;
      child.loadStateDict(new Map([...sd].filter(([k]) => k.startsWith(`${name}.`)).map(([k, t]) => [k.slice(name.length + 1), t])));
    }
    await streamRoutedExperts(moe, opts.ctx!, (e, which) => readExpertPiece(ck, spec, prefix, quant, read, e0 + e, which));
    return moe;
  } catch (e) {
    moe.destroy();
    throw e;
  }
}

/** The block's prefix and the tensors it needs (with shapes from the config); for compressed-tensors checkpoints also their plan. */
function plan(ck: MoECheckpoint, spec: HFMoESpec): { prefix: string; needs: Need[]; ct?: CTPlan } {
  const prefix = spec.prefixes.find((p) => ck.info(p + spec.router.weight)) ?? spec.prefixes[0];
  const { numExperts: E, hiddenDim: H, moeDim: I } = spec;
  const needs: Need[] = [{ name: prefix + spec.router.weight, shape: [E, H] }];
  if (spec.router.bias) needs.push({ name: prefix + spec.router.bias, shape: [E] });
  if (spec.router.correctionBias) needs.push({ name: prefix + spec.router.correctionBias, shape: spec.router.correctionBiasShape ?? [E] });
  const ct = spec.compressedTensors ? planCompressedTensors(ck, spec, prefix) : undefined;
  // the checkpoint's quant config resolved for its tensor names and shapes, before the layer's options exist (the layer's is moeLayerConfig's, in build)
  const quant = ct ? normalizeQuantConfig(ct.quant) : spec.quant ? normalizeQuantConfig(spec.quant) : undefined;
  if (ct) {
    needs.push(...ct.needs);
  } else if (quant) {
    needs.push(...quantizedNeeds(spec, prefix, quant));
  } else if (spec.experts.kind === 'per_expert') {
    for (let e = 0; e < E; e++) {
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.gate}.weight`, shape: [I, H] });
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.up}.weight`, shape: [I, H] });
      needs.push({ name: `${prefix}experts.${e}.${spec.experts.down}.weight`, shape: [H, I] });
    }
  } else if (spec.experts.kind === 'fused_out_in') {
    needs.push({ name: prefix + spec.experts.gateUp, shape: [E, 2 * I, H] }, { name: prefix + spec.experts.down, shape: [E, H, I] });
  } else {
    needs.push({ name: `${prefix}experts.gate_up_proj`, shape: [E, H, 2 * I] }, { name: `${prefix}experts.down_proj`, shape: [E, I, H] });
    if (spec.experts.bias) needs.push({ name: `${prefix}experts.gate_up_proj_bias`, shape: [E, 2 * I] }, { name: `${prefix}experts.down_proj_bias`, shape: [E, H] });
  }
  if (spec.shared) {
    const sp = prefix + spec.shared.prefix;
    const S = spec.shared.dim;
    if (spec.shared.fused) needs.push({ name: `${sp}input_linear.weight`, shape: [2 * S, H] }, { name: `${sp}output_linear.weight`, shape: [H, S] });
    else if (!quant?.quantizeSharedExperts) needs.push({ name: `${sp}gate_proj.weight`, shape: [S, H] }, { name: `${sp}up_proj.weight`, shape: [S, H] }, { name: `${sp}down_proj.weight`, shape: [H, S] });
    if (spec.shared.gate) needs.push({ name: prefix + spec.shared.gate, shape: [1, H] });
  }
  // Quantized checkpoints without a quantization_config still fail: their extra tensors (scales) are unexpected.
  if (spec.experts.kind !== 'fused_in_out' && ck.info(prefix + 'experts.gate_up_proj')) {
    throw new UnsupportedError(`${prefix}experts.gate_up_proj`, `a fused expert layout for ${spec.modelType}`, 'per-expert gate/up/down tensors');
  }
  return { prefix, needs, ct };
}

/** fp8 block-scaled per-expert tensors: `name.weight` (codes) and `name.weight_scale_inv` (f32 [ceil(rows/br), ceil(cols/bc)]). */
function fp8Needs(name: string, rows: number, cols: number, q: ResolvedQuantConfig): Need[] {
  const [br, bc] = q.weightBlockSize;
  return [
    { name: `${name}.weight`, shape: [rows, cols], dtypes: [q.fp8Dtype] },
    { name: `${name}.weight_scale_inv`, shape: [Math.ceil(rows / br), Math.ceil(cols / bc)], dtypes: ['float32'] },
  ];
}

/** The tensors of quantized experts (and quantized shared experts) with shapes and dtypes from the config. */
function quantizedNeeds(spec: HFMoESpec, prefix: string, q: ResolvedQuantConfig): Need[] {
  const { numExperts: E, hiddenDim: H, moeDim: I } = spec;
  const needs: Need[] = [];
  if (q.format === 'fp8_block') {
    if (spec.experts.kind !== 'per_expert') throw new UnsupportedError(`${prefix}experts`, `fused fp8 experts for ${spec.modelType}`, 'per-expert fp8 weights with weight_scale_inv (DeepSeek-V3, Kimi-K2, Qwen3-MoE FP8)');
    const { gate, up, down } = spec.experts;
    for (let e = 0; e < E; e++) {
      const p = `${prefix}experts.${e}.`;
      needs.push(...fp8Needs(p + gate, I, H, q), ...fp8Needs(p + up, I, H, q), ...fp8Needs(p + down, H, I, q));
    }
    if (spec.shared && q.quantizeSharedExperts) {
      const sp = prefix + spec.shared.prefix;
      const S = spec.shared.dim;
      needs.push(...fp8Needs(sp + 'gate_proj', S, H, q), ...fp8Needs(sp + 'up_proj', S, H, q), ...fp8Needs(sp + 'down_proj', H, S, q));
    }
    return needs;
  }
  if (q.format === 'mxfp4') {
    if (spec.experts.kind !== 'fused_in_out') throw new UnsupportedError(`${prefix}experts`, `per-expert mxfp4 experts for ${spec.modelType}`, 'fused experts.*_blocks / *_scales (GPT-OSS)');
    for (const [n, rows, cols] of [['gate_up_proj', 2 * I, H], ['down_proj', H, I]] as const) {
      if (cols % 32 !== 0) throw new CheckpointError(`${prefix}experts.${n}_blocks`, `input channels a multiple of 32 for mxfp4`, String(cols));
      needs.push(
        { name: `${prefix}experts.${n}_blocks`, shape: [E, rows, cols / 32, 16], dtypes: ['uint8'] },
        { name: `${prefix}experts.${n}_scales`, shape: [E, rows, cols / 32], dtypes: ['uint8'] },
      );
    }
    if (spec.experts.bias) needs.push({ name: `${prefix}experts.gate_up_proj_bias`, shape: [E, 2 * I] }, { name: `${prefix}experts.down_proj_bias`, shape: [E, H] });
    return needs;
  }
  throw new UnsupportedError('quantization_config', `${q.format} checkpoints`, 'fp8 blocks (per-expert layouts: DeepSeek-V3, Kimi-K2, Qwen3-MoE FP8) and mxfp4 (GPT-OSS); quantize() other layers after loading');
}

/**
 * Reads fused quantized routed experts into `sd` as they are stored: mxfp4
 * blocks/scales read whole, then `own` cuts them to the layer's experts.
 * (Per-expert fp8 experts are read by {@link readExpertPiece}.)
 */
async function readQuantizedExperts(
  ck: MoECheckpoint,
  spec: HFMoESpec,
  prefix: string,
  q: ResolvedQuantConfig,
  sd: Map<string, HostTensor>,
  readFloat: (name: string, dt: DType) => Promise<HostTensor>,
  own: (t: HostTensor) => HostTensor,
): Promise<void> {
  if (q.format === 'mxfp4') {
    for (const n of ['gate_up_proj', 'down_proj']) {
      sd.set(`experts.${n}_blocks`, own(await ck.read(`${prefix}experts.${n}_blocks`)));
      sd.set(`experts.${n}_scales`, own(await ck.read(`${prefix}experts.${n}_scales`)));
    }
    if (spec.experts.kind === 'fused_in_out' && spec.experts.bias) {
      sd.set('experts.gate_up_proj_bias', own(await readFloat(`${prefix}experts.gate_up_proj_bias`, q.biasDtype)));
      sd.set('experts.down_proj_bias', own(await readFloat(`${prefix}experts.down_proj_bias`, q.biasDtype)));
    }
    return;
  }
  throw new UnsupportedError('quantization_config', `${q.format} experts in a ${spec.experts.kind} layout`, 'per-expert fp8, fused mxfp4');
}

/** The state-dict suffix of each field of a stack container (dense `w`, fp8 `q` and `scaleInv`). */
const PIECE_FIELDS = { w: '', q: '', scaleInv: '_scale_inv' } as const;

/**
 * Reads one stack of expert `e` of a per-expert checkpoint as a container of
 * one expert: gate_up [1, 2I, H] (gate rows, then up rows) or down [1, H, I];
 * dense in the layer's dtype, or fp8 codes and scale_inv as stored (gate and
 * up stacked without splitting a scale block).
 */
async function readExpertPiece(ck: MoECheckpoint, spec: HFMoESpec, prefix: string, q: ResolvedQuantConfig | undefined, read: (name: string, dt?: DType) => Promise<HostTensor>, e: number, which: 'gateUp' | 'down'): Promise<ExpertWeightsHost> {
  if (spec.experts.kind !== 'per_expert') throw new UnsupportedError(`${prefix}experts`, `${spec.experts.kind} experts read one at a time`, 'per-expert gate/up/down tensors');
  const { hiddenDim: H, moeDim: I } = spec;
  const { gate, up, down } = spec.experts;
  const p = `${prefix}experts.${e}.`;
  if (!q) {
    if (which === 'down') return { kind: 'dense', w: (await read(`${p}${down}.weight`)).reshape([1, H, I]) };
    return { kind: 'dense', w: concatRows([await read(`${p}${gate}.weight`), await read(`${p}${up}.weight`)], [1, 2 * I, H]) };
  }
  if (q.format !== 'fp8_block') throw new UnsupportedError('quantization_config', `${q.format} experts in a per-expert layout`, 'per-expert fp8, fused mxfp4');
  const [br, bc] = q.weightBlockSize;
  const block: [number, number] = [br, bc];
  if (which === 'down') {
    return {
      kind: 'fp8_block',
      q: (await ck.read(`${p}${down}.weight`)).reshape([1, H, I]),
      scaleInv: (await ck.read(`${p}${down}.weight_scale_inv`)).reshape([1, Math.ceil(H / br), Math.ceil(I / bc)]),
      block,
    };
  }
  checkStackable(`${p}${gate}.weight_scale_inv`, I, br);
  return {
    kind: 'fp8_block',
    q: concatRows([await ck.read(`${p}${gate}.weight`), await ck.read(`${p}${up}.weight`)], [1, 2 * I, H]),
    scaleInv: concatRows([await ck.read(`${p}${gate}.weight_scale_inv`), await ck.read(`${p}${up}.weight_scale_inv`)], [1, (2 * I) / br, Math.ceil(H / bc)]),
    block,
  };
}

/** Streams the routed experts (`read(e)`: local expert e) into GPU stacks (chunked where they exceed a binding) and gives them to the layer; nothing stays allocated on failure. */
async function streamRoutedExperts(moe: MoELayer, ctx: GpuContext, read: (e: number, which: 'gateUp' | 'down') => Promise<ExpertWeightsHost>): Promise<void> {
  const ex = moe.stacked;
  const shapes = ex.stackShapes();
  const made: UploadedStack[] = [];
  const free = () => {
    for (const m of made) {
      destroyExpertWeights(m.weights);
      m.bias?.destroy();
    }
  };
  try {
    // gate_up, then down: one chunk of one stack is all the host holds
    made.push(await uploadExpertStackStreamed(ctx, shapes.gateUp, { layout: ex.gateUpLayout, label: 'experts.gate_up_proj' }, async (e) => ({ w: await read(e, 'gateUp') })));
    made.push(await uploadExpertStackStreamed(ctx, shapes.down, { layout: 'rows', label: 'experts.down_proj' }, async (e) => ({ w: await read(e, 'down') })));
    ex.setGpuStacks({ gateUp: made[0], down: made[1] });
  } catch (e) {
    free();
    throw e;
  }
}

/** Reads fp8 shared experts into `sd` as one [1, 2S, H] / [1, H, S] quantized expert (bytes copied). */
async function readQuantizedShared(ck: MoECheckpoint, spec: HFMoESpec, prefix: string, q: ResolvedQuantConfig, sd: Map<string, HostTensor>): Promise<void> {
  if (q.format !== 'fp8_block' || !spec.shared) throw new UnsupportedError('quantization_config', `${q.format} shared experts`, 'fp8 shared experts');
  const H = spec.hiddenDim;
  const S = spec.shared.dim;
  const [br, bc] = q.weightBlockSize;
  const sp = prefix + spec.shared.prefix;
  checkStackable(`${sp}gate_proj.weight_scale_inv`, S, br);
  const r = (n: string) => ck.read(sp + n);
  sd.set('shared_experts.gate_up_proj', concatRows([await r('gate_proj.weight'), await r('up_proj.weight')], [1, 2 * S, H]));
  sd.set('shared_experts.gate_up_proj_scale_inv', concatRows([await r('gate_proj.weight_scale_inv'), await r('up_proj.weight_scale_inv')], [1, (2 * S) / br, Math.ceil(H / bc)]));
  sd.set('shared_experts.down_proj', (await r('down_proj.weight')).reshape([1, H, S]));
  sd.set('shared_experts.down_proj_scale_inv', (await r('down_proj.weight_scale_inv')).reshape([1, Math.ceil(H / br), Math.ceil(S / bc)]));
}
