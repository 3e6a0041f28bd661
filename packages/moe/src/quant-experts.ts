/**
 * Quantized expert weights of the MoE layer (MAX's `quantConfig`): the
 * configuration type, its HF `quantization_config` reader and the module that
 * holds packed expert weights with their scales. Weights stay packed on the
 * host and the GPU (fp8 four per u32, fp4/int4 eight per u32); they are
 * dequantised only inside the grouped GEMMs (and row by row in the CPU
 * reference path).
 */
import type { DType } from '@webmoe/tensor';
import type { ExpertQuantFormat, ExpertStackGpu, ExpertWeightsGpu, ExpertWeightsHost, ExpertWeightsShape, GpuContext } from '@webmoe/kernels-wgsl';
import { GpuExpertStacks, type StackParams, type UploadedStack } from './expert-stacks.js';
import { Module, type Parameter } from '@webmoe/nn';
import type { DeviceRef } from '@webmoe/tensor';
import { ConfigError, UnsupportedError } from './errors.js';

/** Activation quantisation of the expert matmuls: weight-only, or fp8 e4m3 dynamic per token per 128 channels (w8a8). @example `const a: ActivationQuant = 'dynamic';` */
export type ActivationQuant = 'none' | 'dynamic';

/** The expert weight formats of {@link MoEQuantConfig}. @example `const f: MoEQuantFormat = 'int4';` */
export type MoEQuantFormat = 'fp8_block' | 'mxfp4' | 'int4' | 'int8';

/**
 * Quantization of the routed experts (MAX's `quantConfig`, camelCase):
 * - `fp8_block`: float8_e4m3fn (or e5m2) codes [E, rows, cols] with f32
 *   `scale_inv` per `weightBlockSize` block (DeepSeek-V3: 128x128).
 * - `mxfp4`: e2m1 codes two per byte [E, rows, cols/32, 16] with one e8m0
 *   byte scale per 32 inputs (GPT-OSS).
 * - `int4` / `int8`: unsigned codes with zero point 8 / 128, one scale per
 *   output row per `blockSize` inputs (onnxruntime `QMoE`).
 *
 * @example
 * ```ts
 * const q: MoEQuantConfig = { format: 'fp8_block', weightBlockSize: [128, 128], activationQuant: 'dynamic', quantizeSharedExperts: true };
 * const moe = new MoE({ hiddenDim: 256, numExperts: 8, numExpertsPerToken: 2, moeDim: 128, quantConfig: q });
 * ```
 */
export interface MoEQuantConfig {
  /** Weight format of the routed experts. */
  format: MoEQuantFormat;
  /** fp8_block: the code dtype (default float8_e4m3fn). */
  fp8Dtype?: 'float8_e4m3fn' | 'float8_e5m2';
  /** fp8_block: [rows, cols] of one scale block (default [128, 128]). */
  weightBlockSize?: [number, number];
  /** int4 / int8: input channels per scale (default 32). */
  blockSize?: number;
  /** int4 / int8: dtype of the scales (default float16, as QMoE). */
  scaleDtype?: 'float32' | 'float16';
  /**
   * int4 / int8: asymmetric blocks with a zero-point code per scale block (compressed-tensors `symmetric: false`),
   * parameters `<weight>_zeros` uint8 [E, rows, ceil(cols/blockSize)]; a weight is (code - zero) * scale.
   * Default false: the fixed zero point 8 / 128.
   */
  zeroPoint?: boolean;
  /** Activations of the quantized expert matmuls: 'none' (weight-only, default) or 'dynamic' (fp8 e4m3 per token per 128 channels, scale = amax/448). */
  activationQuant?: ActivationQuant;
  /** Clamp amax to at most this before the dynamic scale (MAX uses 1200). Default: no clamp (the DeepSeek reference). */
  activationAmaxClamp?: number;
  /** Whether the shared experts are stored in the same format (DeepSeek-V3 fp8 checkpoints: true). Default false: they stay dense. */
  quantizeSharedExperts?: boolean;
  /** Dtype of the routed experts' biases (GPT-OSS; default float32). */
  biasDtype?: 'float32' | 'bfloat16' | 'float16';
}

/** A validated {@link MoEQuantConfig} with every default filled in. @example `normalizeQuantConfig({ format: 'int4' }).blockSize // 32` */
export interface ResolvedQuantConfig {
  format: MoEQuantFormat;
  fp8Dtype: 'float8_e4m3fn' | 'float8_e5m2';
  weightBlockSize: [number, number];
  blockSize: number;
  scaleDtype: 'float32' | 'float16';
  zeroPoint: boolean;
  activationQuant: ActivationQuant;
  activationAmaxClamp: number | undefined;
  quantizeSharedExperts: boolean;
  biasDtype: 'float32' | 'bfloat16' | 'float16';
}

const FORMATS: readonly MoEQuantFormat[] = ['fp8_block', 'mxfp4', 'int4', 'int8'];

/**
 * Validates a quant config and fills in the defaults; ConfigError naming the
 * field otherwise.
 *
 * @example
 * ```ts
 * normalizeQuantConfig({ format: 'fp8_block' }).weightBlockSize // [128, 128]
 * ```
 */
export function normalizeQuantConfig(q: MoEQuantConfig): ResolvedQuantConfig {
  if (typeof q !== 'object' || q === null) throw new ConfigError('quantConfig', 'an object { format, ... }', q);
  if (!FORMATS.includes(q.format)) throw new ConfigError('quantConfig.format', FORMATS.join(' | '), q.format);
  const fp8Dtype = q.fp8Dtype ?? 'float8_e4m3fn';
  if (fp8Dtype !== 'float8_e4m3fn' && fp8Dtype !== 'float8_e5m2') throw new ConfigError('quantConfig.fp8Dtype', 'float8_e4m3fn | float8_e5m2', fp8Dtype);
  const wb = q.weightBlockSize ?? [128, 128];
  if (!Array.isArray(wb) || wb.length !== 2 || !wb.every((b) => Number.isInteger(b) && b > 0)) throw new ConfigError('quantConfig.weightBlockSize', 'two positive integers [rows, cols]', wb);
  const blockSize = q.blockSize ?? 32;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ConfigError('quantConfig.blockSize', 'a positive integer', blockSize);
  const scaleDtype = q.scaleDtype ?? 'float16';
  if (scaleDtype !== 'float32' && scaleDtype !== 'float16') throw new ConfigError('quantConfig.scaleDtype', 'float32 | float16', scaleDtype);
  const activationQuant = q.activationQuant ?? 'none';
  if (activationQuant !== 'none' && activationQuant !== 'dynamic') throw new ConfigError('quantConfig.activationQuant', 'none | dynamic', activationQuant);
  const clamp = q.activationAmaxClamp;
  if (clamp !== undefined && !(typeof clamp === 'number' && clamp > 0)) throw new ConfigError('quantConfig.activationAmaxClamp', 'a number > 0', clamp);
  const zeroPoint = q.zeroPoint ?? false;
  if (typeof zeroPoint !== 'boolean') throw new ConfigError('quantConfig.zeroPoint', 'true | false', zeroPoint);
  if (zeroPoint && q.format !== 'int4' && q.format !== 'int8') throw new ConfigError('quantConfig.zeroPoint', `false for ${q.format} (zero points are for int4 / int8 blocks)`, zeroPoint);
  const biasDtype = q.biasDtype ?? 'float32';
  if (!['float32', 'bfloat16', 'float16'].includes(biasDtype)) throw new ConfigError('quantConfig.biasDtype', 'float32 | bfloat16 | float16', biasDtype);
  return {
    format: q.format,
    fp8Dtype,
    weightBlockSize: [wb[0], wb[1]],
    blockSize,
    scaleDtype,
    zeroPoint,
    activationQuant,
    activationAmaxClamp: clamp,
    quantizeSharedExperts: !!q.quantizeSharedExperts,
    biasDtype,
  };
}

/** The kernels' quantiser format of a resolved config. @example `expertQuantFormat(normalizeQuantConfig({ format: 'int8' }))` */
export function expertQuantFormat(q: ResolvedQuantConfig): ExpertQuantFormat {
  switch (q.format) {
    case 'fp8_block':
      return { kind: 'fp8_block', dtype: q.fp8Dtype, block: q.weightBlockSize };
    case 'mxfp4':
      return { kind: 'mxfp4' };
    case 'int4':
    case 'int8':
      return { kind: 'int_block', bits: q.format === 'int4' ? 4 : 8, blockSize: q.blockSize, scaleDtype: q.scaleDtype, zeroPoint: q.zeroPoint };
  }
}

/**
 * Reads an HF `quantization_config` (config.json) into a {@link MoEQuantConfig}:
 * `quant_method: fp8` (DeepSeek-V3: `fmt` e4m3|e5m2, `weight_block_size`,
 * `activation_scheme` dynamic -> w8a8; shared experts quantized too) and
 * `quant_method: mxfp4` (GPT-OSS; weight-only). Others: UnsupportedError.
 *
 * @example
 * ```ts
 * parseHFQuantConfig({ quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] })
 * // { format: 'fp8_block', fp8Dtype: 'float8_e4m3fn', weightBlockSize: [128, 128], activationQuant: 'dynamic', quantizeSharedExperts: true }
 * ```
 */
export function parseHFQuantConfig(qc: unknown): MoEQuantConfig {
  if (typeof qc !== 'object' || qc === null || Array.isArray(qc)) throw new ConfigError('quantization_config', 'a JSON object', qc);
  const q = qc as Record<string, unknown>;
  const method = q.quant_method;
  if (method === 'fp8') {
    const fmt = q.fmt ?? 'e4m3';
    if (fmt !== 'e4m3' && fmt !== 'e5m2') throw new ConfigError('quantization_config.fmt', 'e4m3 | e5m2', fmt);
    const wb = q.weight_block_size;
    if (!Array.isArray(wb) || wb.length !== 2 || !wb.every((b) => Number.isInteger(b) && (b as number) > 0)) {
      throw new UnsupportedError('quantization_config.weight_block_size', JSON.stringify(wb), 'two positive integers (block-scaled fp8, e.g. [128, 128]); per-tensor fp8 is not supported');
    }
    const scheme = q.activation_scheme ?? 'dynamic';
    if (scheme !== 'dynamic' && scheme !== 'none') throw new UnsupportedError('quantization_config.activation_scheme', JSON.stringify(scheme), '"dynamic" (w8a8) or "none"');
    return {
      format: 'fp8_block',
      fp8Dtype: fmt === 'e4m3' ? 'float8_e4m3fn' : 'float8_e5m2',
      weightBlockSize: [wb[0] as number, wb[1] as number],
      activationQuant: scheme === 'dynamic' ? 'dynamic' : 'none',
      quantizeSharedExperts: true,
    };
  }
  if (method === 'mxfp4') return { format: 'mxfp4', activationQuant: 'none' };
  throw new UnsupportedError('config quantization_config', `quant_method ${JSON.stringify(method)}`, '"fp8" (block-scaled, DeepSeek-V3), "mxfp4" (GPT-OSS) and "compressed-tensors" (int4 pack-quantized, read by MoE.fromHuggingFace)');
}

/**
 * One parameter of a quantized expert container [E, rows, cols]: its role,
 * name, shape and dtype, and how many of the weight's rows / input channels
 * one index along its axis 1 / axis 2 covers (its block along each axis: a
 * shard boundary must fall on a multiple of it).
 */
export interface QuantParamSpec {
  role: 'weight' | 'scale' | 'zero';
  name: string;
  shape: number[];
  dtype: DType;
  /** Weight rows per index along axis 1 (1, or the fp8 scale block rows). */
  rowsPerIndex: number;
  /** Input channels per index along axis 2 (1 for fp8 / int8 codes, 2 for int4 codes, 32 for MXFP4, the scale block for scales). */
  colsPerIndex: number;
}

/**
 * The parameters of one quantized weight [E, rows, cols] named `base`:
 * fp8_block `base` + `base_scale_inv`; mxfp4 `base_blocks` + `base_scales`;
 * int4/int8 `base_qweight` + `base_scales` (+ `base_zeros` with `zeroPoint`).
 *
 * @example
 * ```ts
 * quantParamSpecs(normalizeQuantConfig({ format: 'mxfp4' }), 'down_proj', 8, 64, 32).map((p) => p.name) // ['down_proj_blocks', 'down_proj_scales']
 * ```
 */
export function quantParamSpecs(q: ResolvedQuantConfig, base: string, E: number, rows: number, cols: number): QuantParamSpec[] {
  switch (q.format) {
    case 'fp8_block': {
      const [br, bc] = q.weightBlockSize;
      return [
        { role: 'weight', name: base, shape: [E, rows, cols], dtype: q.fp8Dtype, rowsPerIndex: 1, colsPerIndex: 1 },
        { role: 'scale', name: `${base}_scale_inv`, shape: [E, Math.ceil(rows / br), Math.ceil(cols / bc)], dtype: 'float32', rowsPerIndex: br, colsPerIndex: bc },
      ];
    }
    case 'mxfp4':
      if (cols % 32 !== 0) throw new ConfigError(`${base} input channels`, 'a multiple of 32 for mxfp4', cols);
      return [
        { role: 'weight', name: `${base}_blocks`, shape: [E, rows, cols / 32, 16], dtype: 'uint8', rowsPerIndex: 1, colsPerIndex: 32 },
        { role: 'scale', name: `${base}_scales`, shape: [E, rows, cols / 32], dtype: 'uint8', rowsPerIndex: 1, colsPerIndex: 32 },
      ];
    case 'int4':
    case 'int8': {
      const bits = q.format === 'int4' ? 4 : 8;
      if (bits === 4 && cols % 2 !== 0) throw new ConfigError(`${base} input channels`, 'an even number for int4 (two codes per byte)', cols);
      const nb = Math.ceil(cols / q.blockSize);
      const specs: QuantParamSpec[] = [
        { role: 'weight', name: `${base}_qweight`, shape: [E, rows, (cols * bits) / 8], dtype: 'uint8', rowsPerIndex: 1, colsPerIndex: 8 / bits },
        { role: 'scale', name: `${base}_scales`, shape: [E, rows, nb], dtype: q.scaleDtype, rowsPerIndex: 1, colsPerIndex: q.blockSize },
      ];
      if (q.zeroPoint) specs.push({ role: 'zero', name: `${base}_zeros`, shape: [E, rows, nb], dtype: 'uint8', rowsPerIndex: 1, colsPerIndex: q.blockSize });
      return specs;
    }
  }
}

/** Options of {@link QuantizedExperts}. @example `{ numExperts: 8, hiddenDim: 256, moeDim: 128, quant: normalizeQuantConfig({ format: 'fp8_block' }) }` */
export interface QuantizedExpertsOptions {
  numExperts: number;
  hiddenDim: number;
  /** Width of each expert (gate_up has 2*moeDim rows). */
  moeDim: number;
  quant: ResolvedQuantConfig;
  /** Biases [E, 2I] and [E, H] in `quant.biasDtype` (GPT-OSS). */
  hasBias?: boolean;
  device?: DeviceRef;
  ctx?: GpuContext;
  /** How gate_up's rows pair into outputs (the activation's layout; default 'concat'): what a split inside an expert keeps together. */
  gateUpLayout?: 'concat' | 'interleaved';
}

/**
 * Stacked expert weights in a quantized format: gate_up [E, 2I, H] and down
 * [E, H, I] as packed codes plus scales (names from {@link quantParamSpecs},
 * e.g. `gate_up_proj` + `gate_up_proj_scale_inv` for fp8), optional biases.
 * The same surface as `StackedExperts` (`gateUpProj`, `downProj`,
 * `gateUpBias`, `downBias`, `hostWeights()`, `gpuWeights()`); `gateUpProj`
 * is the packed weight parameter. Also used with E = 1 for quantized shared
 * experts (run through the grouped GEMMs with a dense grouping).
 *
 * @example
 * ```ts
 * const ex = new QuantizedExperts({ numExperts: 8, hiddenDim: 64, moeDim: 32, quant: normalizeQuantConfig({ format: 'mxfp4' }) });
 * ex.gateUpProj.shape // [8, 64, 2, 16]
 * ```
 */
export class QuantizedExperts extends Module {
  readonly quant: ResolvedQuantConfig;
  /** The store's format (the `ExpertStore` discriminator): `quant.format`. */
  get format(): MoEQuantFormat {
    return this.quant.format;
  }
  readonly gateUpProj: Parameter;
  readonly gateUpScale: Parameter;
  readonly downProj: Parameter;
  readonly downScale: Parameter;
  /** int4 / int8 with `zeroPoint`: the zero-point codes of gate_up and down (uint8 [E, rows, blocks]). */
  readonly gateUpZeros: Parameter | undefined;
  readonly downZeros: Parameter | undefined;
  readonly gateUpBias: Parameter | undefined;
  readonly downBias: Parameter | undefined;
  readonly gateUpLayout: 'concat' | 'interleaved';
  private readonly gpuStacks = new GpuExpertStacks();
  constructor(opts: QuantizedExpertsOptions) {
    super({ dtype: 'float32', device: opts.device, ctx: opts.ctx });
    const { numExperts: E, hiddenDim: H, moeDim: I, quant } = opts;
    this.quant = quant;
    const [guW, guS, guZ] = quantParamSpecs(quant, 'gate_up_proj', E, 2 * I, H).map((s) => this.addParameter(s.name, s.shape, s.dtype));
    const [dnW, dnS, dnZ] = quantParamSpecs(quant, 'down_proj', E, H, I).map((s) => this.addParameter(s.name, s.shape, s.dtype));
    this.gateUpProj = guW;
    this.gateUpScale = guS;
    this.gateUpZeros = guZ;
    this.downProj = dnW;
    this.downScale = dnS;
    this.downZeros = dnZ;
    this.gateUpBias = opts.hasBias ? this.addParameter('gate_up_proj_bias', [E, 2 * I], quant.biasDtype) : undefined;
    this.downBias = opts.hasBias ? this.addParameter('down_proj_bias', [E, H], quant.biasDtype) : undefined;
    this.gateUpLayout = opts.gateUpLayout ?? 'concat';
  }
  /** The packed weight parameters (codes). */
  weightParameters(): Parameter[] {
    return [this.gateUpProj, this.downProj];
  }
  /** The scale parameters (and int zero points). */
  scaleParameters(): Parameter[] {
    return [this.gateUpScale, this.downScale, ...(this.gateUpZeros ? [this.gateUpZeros, this.downZeros!] : [])];
  }
  private container<T>(w: Parameter, s: Parameter, z: Parameter | undefined, get: (p: Parameter) => T): { kind: string } & Record<string, unknown> {
    const q = this.quant;
    switch (q.format) {
      case 'fp8_block':
        return { kind: 'fp8_block', q: get(w), scaleInv: get(s), block: [q.weightBlockSize[0], q.weightBlockSize[1]] };
      case 'mxfp4':
        return { kind: 'mxfp4', blocks: get(w), scales: get(s) };
      case 'int4':
      case 'int8':
        return { kind: 'int_block', bits: q.format === 'int4' ? 4 : 8, q: get(w), scales: get(s), blockSize: q.blockSize, ...(z ? { zeros: get(z) } : {}) };
    }
  }
  /** Host containers for the reference GEMMs (codes and scales as stored; decoded row by row inside the GEMM). */
  hostWeights(): { gateUp: ExpertWeightsHost; down: ExpertWeightsHost } {
    return {
      gateUp: this.container(this.gateUpProj, this.gateUpScale, this.gateUpZeros, (p) => p.value) as ExpertWeightsHost,
      down: this.container(this.downProj, this.downScale, this.downZeros, (p) => p.value) as ExpertWeightsHost,
    };
  }
  /**
   * GPU containers for the expert GEMMs: the parameters' GPU values, or, for
   * a stack over the context's maxBindingBytes, the stack split over several
   * buffers (codes with their scales and biases; see `expertBiasGpu`).
   */
  gpuWeights(): { gateUp: ExpertStackGpu; down: ExpertStackGpu } {
    return this.gpuStacks.weights({
      gateUp: () => this.container(this.gateUpProj, this.gateUpScale, this.gateUpZeros, (p) => p.gpuValue) as ExpertWeightsGpu,
      down: () => this.container(this.downProj, this.downScale, this.downZeros, (p) => p.gpuValue) as ExpertWeightsGpu,
    });
  }
  /** The stacks without data: each tensor's dtype and shape (what `createExpertStack` / `uploadExpertStackStreamed` take). */
  stackShapes(): { gateUp: ExpertWeightsShape; down: ExpertWeightsShape } {
    return {
      gateUp: this.container(this.gateUpProj, this.gateUpScale, this.gateUpZeros, (p) => p) as ExpertWeightsShape,
      down: this.container(this.downProj, this.downScale, this.downZeros, (p) => p) as ExpertWeightsShape,
    };
  }
  private stackParams(host: { gateUp: ExpertWeightsHost; down: ExpertWeightsHost } | undefined): [StackParams, StackParams] {
    const sh = this.stackShapes();
    return [
      { host: host?.gateUp as ExpertWeightsHost, shape: sh.gateUp, tensors: [this.gateUpProj, this.gateUpScale, ...(this.gateUpZeros ? [this.gateUpZeros] : [])], bias: this.gateUpBias, layout: this.gateUpLayout, label: 'experts.gate_up_proj' },
      { host: host?.down as ExpertWeightsHost, shape: sh.down, tensors: [this.downProj, this.downScale, ...(this.downZeros ? [this.downZeros] : [])], bias: this.downBias, layout: 'rows', label: 'experts.down_proj' },
    ];
  }
  /** Uploads the stacks as they are stored (split where they exceed a binding). */
  protected override afterLoad(): void {
    if (!this.device.isGpu()) return super.afterLoad();
    this.gpuStacks.upload(this.ctx!, ...this.stackParams(this.hostWeights()));
  }
  /**
   * Takes GPU stacks built outside `loadStateDict` (streamed from a
   * checkpoint expert by expert, or generated on the GPU; see
   * `uploadExpertStackStreamed` / `createExpertStack` with {@link stackShapes}),
   * checked against the parameters (typed error, nothing taken, on a
   * mismatch). The layer then owns them; its routed experts have no host
   * copy (the CPU path, `quantize()` and sharding need `loadStateDict`).
   */
  setGpuStacks(given: { gateUp: UploadedStack; down: UploadedStack }): void {
    const [gu, dn] = this.stackParams(undefined);
    this.gpuStacks.adopt(this.device.isGpu() ? this.ctx : undefined, gu, dn, given);
  }
  override destroy(): void {
    super.destroy();
    this.gpuStacks.destroy();
  }
}

/**
 * Checks that per-expert fp8 tensors of `rows` rows stack along rows (gate
 * and up into gate_up) without splitting a scale block; UnsupportedError
 * naming the tensor otherwise.
 *
 * @example
 * ```ts
 * checkStackable('experts.0.gate_proj.weight_scale_inv', 2048, 128); // ok
 * ```
 */
export function checkStackable(what: string, rows: number, blockRows: number): void {
  if (rows % blockRows !== 0) {
    throw new UnsupportedError(what, `${rows} rows with ${blockRows}-row scale blocks`, `row counts that are a multiple of the block rows, so gate and up stack without requantizing`);
  }
}
