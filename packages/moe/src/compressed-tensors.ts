/**
 * compressed-tensors `pack-quantized` int4 / int8 checkpoints (what
 * llm-compressor writes and vLLM serves): the `quantization_config` reader,
 * the per-module scheme lookup (`config_groups` targets, `ignore`), the
 * tensors each quantized Linear must have, and the repacking into the `int4`
 * / `int8` expert formats (codes stay packed: int32 words -> bytes, no float
 * expansion).
 * The format is written down in docs/COMPRESSED-TENSORS.md.
 */
import { HostTensor, type DType } from '@webmoe/tensor';
import { concatRows } from '@webmoe/nn';
import { CheckpointError, ConfigError, UnsupportedError } from './errors.js';
import type { MoECheckpoint } from './checkpoint.js';
import type { MoEQuantConfig } from './quant-experts.js';
import type { HFMoESpec } from './hf-config.js';
import { ctSchemeOf, type CompressedTensorsConfig, type CTConfigGroup, type CTWeightScheme } from './compressed-tensors-config.js';

/** One quantized Linear of the block: its module name and weight shape [rows (out), cols (in)]. */
export interface CTModule {
  name: string;
  rows: number;
  cols: number;
}

/** A tensor of a quantized module: name, shape, allowed dtypes (table dtypes or raw safetensors strings such as `I64`). */
export interface CTTensorNeed {
  name: string;
  shape: number[];
  dtypes: readonly string[];
}

/** Inputs per scale of a scheme on a weight with `cols` inputs. */
function groupOf(s: CTWeightScheme, cols: number): number {
  return s.groupSize === 'channel' ? cols : s.groupSize;
}

/**
 * The tensors of one pack-quantized Linear [rows, cols] with p = 32 /
 * num_bits codes per int32: `weight_packed` int32 [rows, ceil(cols/p)],
 * `weight_scale` [rows, ceil(cols/group)] (float32 | bfloat16 | float16),
 * `weight_shape` [2] (int32 or int64) and, for asymmetric schemes,
 * `weight_zero_point` int32 [ceil(rows/p), ceil(cols/group)]. A group size
 * that does not divide the input channels (and is not above them) is a
 * CheckpointError naming the weight; odd input channels in int4 an
 * UnsupportedError.
 *
 * @example `ctTensorNeeds({ name: 'm.experts.0.gate_proj', rows: 32, cols: 64 }, { numBits: 4, groupSize: 32, symmetric: true })`
 */
export function ctTensorNeeds(m: CTModule, s: CTWeightScheme): CTTensorNeed[] {
  const g = groupOf(s, m.cols);
  // compressed-tensors' group quantizer raises on columns >= group_size that it does not divide.
  if (m.cols >= g && m.cols % g !== 0) throw new CheckpointError(`${m.name}.weight_packed`, `input channels divisible by group_size ${g}`, `${m.cols} input channels`);
  if (s.numBits === 4 && m.cols % 2 !== 0) throw new UnsupportedError(`${m.name}.weight_packed`, `${m.cols} input channels (odd) in int4`, 'an even count (two codes per byte in the int4 expert format)');
  const ng = Math.ceil(m.cols / g);
  const pf = 32 / s.numBits;
  const needs: CTTensorNeed[] = [
    { name: `${m.name}.weight_packed`, shape: [m.rows, Math.ceil(m.cols / pf)], dtypes: ['int32'] },
    { name: `${m.name}.weight_scale`, shape: [m.rows, ng], dtypes: ['float32', 'bfloat16', 'float16'] },
    { name: `${m.name}.weight_shape`, shape: [2], dtypes: ['int32', 'I64'] },
  ];
  if (!s.symmetric) needs.push({ name: `${m.name}.weight_zero_point`, shape: [Math.ceil(m.rows / pf), ng], dtypes: ['int32'] });
  return needs;
}

/**
 * The `int4` / `int8` quant config of a set of quantized modules sharing one scheme:
 * block size = group size, zero points for asymmetric schemes, scale dtype
 * float16 when every `weight_scale` is float16, else float32 (bfloat16 ->
 * float32 is exact). Mixed scale dtypes: CheckpointError naming the first
 * tensor that differs.
 *
 * @example `ctQuantConfig(ck, modules, scheme) // { format: 'int4', blockSize: 32, scaleDtype: 'float32', zeroPoint: false }`
 */
export function ctQuantConfig(ck: MoECheckpoint, modules: readonly CTModule[], s: CTWeightScheme): MoEQuantConfig {
  // Missing scales are reported by the loader's tensor check; here only the dtypes of those present.
  const present = modules.filter((m) => ck.info(`${m.name}.weight_scale`));
  const first = present.length ? ck.info(`${present[0].name}.weight_scale`)!.dtype : 'float32';
  for (const m of present) {
    const d = ck.info(`${m.name}.weight_scale`)!.dtype;
    if (d !== first) throw new CheckpointError(`${m.name}.weight_scale`, `dtype ${first} (as ${present[0].name}.weight_scale)`, String(d));
  }
  const cols = Math.max(...modules.map((m) => m.cols));
  return {
    format: s.numBits === 4 ? 'int4' : 'int8',
    blockSize: groupOf(s, cols),
    scaleDtype: first === 'float16' ? 'float16' : 'float32',
    zeroPoint: !s.symmetric,
    activationQuant: 'none',
  };
}

/** The little-endian bytes of a tensor's data. */
function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * `weight_packed` (int32 [rows, ceil(cols/p)] as bytes, p = 32 / bits) to
 * the `int4` / `int8` codes [rows, cols * bits / 8] (int4: two codes per
 * byte, even column in the low nibble; int8: one per byte).
 * compressed-tensors puts element i of each group of p in bits
 * bits*i..bits*(i+1)-1 of its word (unsigned, + 2^(bits-1)); read as
 * little-endian bytes that is the same order, so each row is a copy of its
 * first cols * bits / 8 bytes (the padding of the last word dropped). int4
 * needs even cols.
 *
 * @example `ctPackedToCodes(new Uint8Array([0x70, 0x98, 0xbf, 0xd6, 0x5a, 0, 0, 0]), 1, 10, 4) // [0x70, 0x98, 0xbf, 0xd6, 0x5a]`
 */
export function ctPackedToCodes(packed: Uint8Array, rows: number, cols: number, bits: 4 | 8): Uint8Array {
  if (bits === 4 && cols % 2 !== 0) throw new UnsupportedError('int4 weight input channels', `${cols} (odd)`, 'an even count (two codes per byte)');
  const inRow = Math.ceil((cols * bits) / 32) * 4;
  if (packed.length !== rows * inRow) throw new CheckpointError('weight_packed', `${rows * inRow} bytes (${rows} x ${inRow / 4} int32)`, `${packed.length} bytes`);
  const outRow = (cols * bits) / 8;
  if (inRow === outRow) return packed.slice();
  const out = new Uint8Array(rows * outRow);
  for (let r = 0; r < rows; r++) out.set(packed.subarray(r * inRow, r * inRow + outRow), r * outRow);
  return out;
}

/**
 * `weight_zero_point` (int32 [ceil(rows/p), groups] as bytes, p = 32 /
 * bits, packed along rows: word (rb, g) holds rows p*rb..p*rb+p-1 of group
 * g, row p*rb+i in bits bits*i..bits*(i+1)-1, unsigned + 2^(bits-1)) to one
 * code per (row, group): uint8 [rows, groups], the unsigned zero point
 * (signed zero point + 8 / + 128) that the int formats subtract from the
 * unsigned codes.
 *
 * @example `ctUnpackZeroPoints(new Uint8Array([0x80, 0x0b, 0, 0, 0x7f, 0x03, 0, 0]), 3, 2, 4) // [0, 15, 8, 7, 11, 3]`
 */
export function ctUnpackZeroPoints(packed: Uint8Array, rows: number, groups: number, bits: 4 | 8): Uint8Array {
  const pf = 32 / bits;
  const rb = Math.ceil(rows / pf);
  if (packed.length !== rb * groups * 4) throw new CheckpointError('weight_zero_point', `${rb * groups * 4} bytes (${rb} x ${groups} int32)`, `${packed.length} bytes`);
  const words = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(rows * groups);
  for (let r = 0; r < rows; r++)
    for (let g = 0; g < groups; g++) out[r * groups + g] = (words.getUint32((Math.floor(r / pf) * groups + g) * 4, true) >>> (bits * (r % pf))) & mask;
  return out;
}

/** Reads `weight_shape` ([2], int32 or int64) as two numbers. */
async function readWeightShape(ck: MoECheckpoint, name: string): Promise<number[]> {
  const info = ck.info(name)!;
  if (info.dtype === 'int32') return Array.from((await ck.read(name)).data as Int32Array);
  if (!ck.readRaw) throw new UnsupportedError(name, `dtype ${info.dtype} through a checkpoint without readRaw`, 'int32, or a checkpoint with readRaw (openHFCheckpoint)');
  const b = await ck.readRaw(name);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return [0, 1].map((i) => Number(v.getBigInt64(i * 8, true)));
}

/**
 * Checks every module's `weight_shape` against the shape the config gives
 * (CheckpointError naming the tensor otherwise). Reads only those [2]
 * tensors; call before anything is allocated.
 *
 * @example `await checkCTWeightShapes(ck, modules)`
 */
export async function checkCTWeightShapes(ck: MoECheckpoint, modules: readonly CTModule[]): Promise<void> {
  for (const m of modules) {
    const got = await readWeightShape(ck, `${m.name}.weight_shape`);
    if (got[0] !== m.rows || got[1] !== m.cols) throw new CheckpointError(`${m.name}.weight_shape`, `[${m.rows}, ${m.cols}] (the config's [out, in])`, `[${got.join(', ')}]`);
  }
}

/** The codes, scales and zero points of one module, in the int4 / int8 expert format. */
interface IntParts {
  q: HostTensor;
  scales: HostTensor;
  zeros: HostTensor | undefined;
}

function bitsOf(quant: MoEQuantConfig): 4 | 8 {
  return quant.format === 'int4' ? 4 : 8;
}

async function readModule(ck: MoECheckpoint, m: CTModule, quant: MoEQuantConfig): Promise<IntParts> {
  const ng = Math.ceil(m.cols / quant.blockSize!);
  const bits = bitsOf(quant);
  const q = new HostTensor('uint8', [m.rows, (m.cols * bits) / 8], ctPackedToCodes(bytesOf(await ck.read(`${m.name}.weight_packed`)), m.rows, m.cols, bits));
  const s = await ck.read(`${m.name}.weight_scale`);
  const sdt: DType = quant.scaleDtype ?? 'float32';
  const scales = s.dtype === sdt ? s : s.cast(sdt);
  const zeros = quant.zeroPoint ? new HostTensor('uint8', [m.rows, ng], ctUnpackZeroPoints(bytesOf(await ck.read(`${m.name}.weight_zero_point`)), m.rows, ng, bits)) : undefined;
  return { q, scales, zeros };
}

/**
 * Reads gate/up/down Linears of E experts (E = 1: the shared experts) into
 * the stacked `int4` / `int8` parameters of a QuantizedExperts named `${into}.*`
 * (`gate_up_proj_qweight` [E, 2I, H*bits/8], `_scales`, `_zeros`; `down_proj_*`),
 * gate rows before up rows. Codes are copied as bytes; scales cast to the
 * config's scale dtype (bfloat16 -> float32 exactly).
 *
 * @example `await readCTExperts(ck, experts, quant, 'experts', sd)`
 */
export async function readCTExperts(ck: MoECheckpoint, experts: readonly { gate: CTModule; up: CTModule; down: CTModule }[], quant: MoEQuantConfig, into: string, sd: Map<string, HostTensor>): Promise<void> {
  const E = experts.length;
  const I = experts[0].gate.rows;
  const H = experts[0].gate.cols;
  const gu: IntParts[] = [];
  const dn: IntParts[] = [];
  for (const e of experts) {
    gu.push(await readModule(ck, e.gate, quant), await readModule(ck, e.up, quant));
    dn.push(await readModule(ck, e.down, quant));
  }
  const put = (base: string, parts: IntParts[], rows: number, cols: number) => {
    const ng = Math.ceil(cols / quant.blockSize!);
    sd.set(`${into}.${base}_qweight`, concatRows(parts.map((p) => p.q), [E, rows, (cols * bitsOf(quant)) / 8]));
    sd.set(`${into}.${base}_scales`, concatRows(parts.map((p) => p.scales), [E, rows, ng]));
    if (quant.zeroPoint) sd.set(`${into}.${base}_zeros`, concatRows(parts.map((p) => p.zeros!), [E, rows, ng]));
  };
  put('gate_up_proj', gu, 2 * I, H);
  put('down_proj', dn, H, I);
}

/** gate / up / down Linears of one expert. */
export interface CTExpertModules {
  gate: CTModule;
  up: CTModule;
  down: CTModule;
}

/** What the loader needs of a compressed-tensors block: the int4 quant config, the tensors to check, the modules to read. */
export interface CTPlan {
  quant: MoEQuantConfig;
  needs: CTTensorNeed[];
  /** Every quantized module (their `weight_shape` is checked before anything is allocated). */
  modules: CTModule[];
  experts: CTExpertModules[];
  /** The shared experts when they are quantized too (same scheme), else undefined (dense). */
  shared: CTExpertModules | undefined;
}

/**
 * Resolves a compressed-tensors checkpoint's `config_groups` / `ignore`
 * against layer `spec.layer`'s block at `prefix`: every routed expert Linear
 * must be quantized with one scheme (int4 experts), the shared experts are
 * quantized with that scheme or dense, the router and the shared-expert gate
 * must be dense. UnsupportedError / ConfigError / CheckpointError naming the
 * module otherwise; nothing is read.
 *
 * @example `const p = planCompressedTensors(ck, spec, 'model.layers.0.mlp.'); p.quant // { format: 'int4', blockSize: 128, ... }`
 */
export function planCompressedTensors(ck: MoECheckpoint, spec: HFMoESpec, prefix: string): CTPlan {
  const ct = spec.compressedTensors!;
  if (spec.experts.kind !== 'per_expert') throw new UnsupportedError(`${prefix}experts`, `compressed-tensors experts in the fused layout of ${spec.modelType}`, 'per-expert Linear experts (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3, minimax_m2)');
  const { numExperts: E, hiddenDim: H, moeDim: I } = spec;
  const dense = [prefix + spec.router.weight.replace(/\.weight$/, ''), ...(spec.shared?.gate ? [prefix + spec.shared.gate.replace(/\.weight$/, '')] : [])];
  for (const m of dense) {
    if (ctSchemeOf(ct, m)) throw new UnsupportedError(`quantization_config: ${m}`, 'a quantized router / shared-expert gate', 'dense ones (llm-compressor lists them in ignore)');
  }
  const mlp = (base: string, inner: number, names: { gate: string; up: string; down: string }): CTExpertModules => ({
    gate: { name: base + names.gate, rows: inner, cols: H },
    up: { name: base + names.up, rows: inner, cols: H },
    down: { name: base + names.down, rows: H, cols: inner },
  });
  const experts = Array.from({ length: E }, (_, e) => mlp(`${prefix}experts.${e}.`, I, spec.experts as { gate: string; up: string; down: string }));
  const routed = experts.flatMap((x) => [x.gate, x.up, x.down]);
  const scheme = ctSchemeOf(ct, routed[0].name);
  for (const m of routed) {
    const s = ctSchemeOf(ct, m.name);
    if (!s) throw new UnsupportedError(`quantization_config: ${m.name}`, scheme ? 'a dense routed expert beside quantized ones' : 'dense routed experts in a compressed-tensors checkpoint', 'every routed expert Linear in one scheme');
    if (JSON.stringify(s.weights) !== JSON.stringify(scheme!.weights)) throw new UnsupportedError(`quantization_config: ${m.name}`, `scheme ${s.name} beside ${scheme!.name} on the other experts`, 'one scheme for every routed expert');
  }
  let shared: CTExpertModules | undefined;
  if (spec.shared) {
    const sm = mlp(prefix + spec.shared.prefix, spec.shared.dim, { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' });
    const ss = [sm.gate, sm.up, sm.down].map((m) => ctSchemeOf(ct, m.name));
    if (ss.every((s) => s && JSON.stringify(s.weights) === JSON.stringify(scheme!.weights))) shared = sm;
    else if (ss.some((s) => s)) throw new UnsupportedError(`quantization_config: ${sm.gate.name.replace(/gate_proj$/, '*')}`, 'shared experts partly quantized or in another scheme', "the routed experts' scheme on all three, or none");
  }
  const modules = [...routed, ...(shared ? [shared.gate, shared.up, shared.down] : [])];
  const needs = modules.flatMap((m) => ctTensorNeeds(m, scheme!.weights));
  return { quant: { ...ctQuantConfig(ck, modules, scheme!.weights), quantizeSharedExperts: !!shared }, needs, modules, experts, shared };
}
