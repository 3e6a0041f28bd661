// Test helper: writes compressed-tensors pack-quantized int4 tensors from float weights, following
// docs/COMPRESSED-TENSORS.md (a port of scripts/fixtures/make-compressed-tensors.py; no code shared with
// the loader's unpacker), and builds checkpoints of them over the dense fixtures.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor, fromFloat32, serializeSafetensors, toFloat32, type SerializableTensor } from '@webmoe/tensor';
import type { MoECheckpoint } from '../src/index.js';
import { readTensorsF32 } from './helpers.js';

export interface CTTensors {
  packed: HostTensor; // int32 [rows, ceil(cols/8)]
  scale: HostTensor; // [rows, groups] in the scale dtype
  zeroPoint?: HostTensor; // int32 [ceil(rows/8), groups]
  /** (q - zp) * scale in f32, [rows, cols]. */
  deq: Float32Array;
}

/** compressed-tensors' min/max group quantizer, then pack_to_int32 of the codes (and of the zero points along rows). */
export function ctCompress(w: Float32Array, rows: number, cols: number, group: number, symmetric: boolean, scaleDtype: 'float32' | 'bfloat16' | 'float16', bits: 4 | 8 = 4): CTTensors {
  const qmin = -(2 ** (bits - 1));
  const qmax = 2 ** (bits - 1) - 1;
  const pf = 32 / bits;
  const G = Math.ceil(cols / group);
  const scales = new Float32Array(rows * G);
  const zps = new Int8Array(rows * G);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      let mn = 0;
      let mx = 0;
      for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) {
        mn = Math.min(mn, w[r * cols + c]);
        mx = Math.max(mx, w[r * cols + c]);
      }
      const raw = Math.max(symmetric ? Math.max(-mn, mx) / ((qmax - qmin) / 2) : (mx - mn) / (qmax - qmin), 2 ** -23);
      const s = toFloat32(scaleDtype, fromFloat32(scaleDtype, [raw]))[0];
      const zp = symmetric ? 0 : Math.round(Math.min(qmax, Math.max(qmin, qmin - mn / raw)));
      scales[r * G + g] = s;
      zps[r * G + g] = zp;
      for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) q[r * cols + c] = Math.min(qmax, Math.max(qmin, Math.round(w[r * cols + c] / s + zp)));
    }
  }
  const wpr = Math.ceil(cols / pf);
  const packed = new Int32Array(rows * wpr);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) packed[r * wpr + Math.floor(c / pf)] |= (q[r * cols + c] - qmin) << (bits * (c % pf));
  const deq = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) deq[r * cols + c] = Math.fround((q[r * cols + c] - zps[r * G + Math.floor(c / group)]) * scales[r * G + Math.floor(c / group)]);
  const out: CTTensors = { packed: new HostTensor('int32', [rows, wpr], packed), scale: HostTensor.fromFloat32([rows, G], scales, scaleDtype), deq };
  if (!symmetric) {
    const rb = Math.ceil(rows / pf);
    const zw = new Int32Array(rb * G);
    for (let r = 0; r < rows; r++) for (let g = 0; g < G; g++) zw[Math.floor(r / pf) * G + g] |= (zps[r * G + g] - qmin) << (bits * (r % pf));
    out.zeroPoint = new HostTensor('int32', [rb, G], zw);
  }
  return out;
}

/** int64 little-endian bytes of [a, b] (weight_shape as torch.tensor(weight.shape) writes it). */
export function int64Pair(a: number, b: number): Uint8Array {
  const v = new DataView(new ArrayBuffer(16));
  v.setBigInt64(0, BigInt(a), true);
  v.setBigInt64(8, BigInt(b), true);
  return new Uint8Array(v.buffer);
}

/**
 * A checkpoint over `ck` with its tensors renamed (`rename`: a stored name to the name this view shows), tensors
 * dropped / added by the names it shows (HostTensors or raw I64 bytes), and the config patched (merged), or replaced
 * (a function of the stored config).
 */
export function patchedCheckpoint(
  ck: MoECheckpoint,
  p: {
    rename?: (n: string) => string;
    drop?: (n: string) => boolean;
    add?: Map<string, HostTensor | { i64: Uint8Array; shape: number[] }>;
    config?: Record<string, unknown> | ((stored: Record<string, unknown>) => Record<string, unknown>);
  },
): MoECheckpoint {
  const add = p.add ?? new Map();
  const drop = p.drop ?? (() => false);
  const rename = p.rename ?? ((n: string) => n);
  // each name shown, and the stored name it reads
  const stored = new Map(ck.tensorNames.map((n) => [rename(n), n] as const).filter(([n]) => !drop(n) && !add.has(n)));
  const stored0 = ck.config as Record<string, unknown>;
  return {
    tensorNames: [...stored.keys(), ...add.keys()],
    config: typeof p.config === 'function' ? p.config(stored0) : { ...stored0, ...p.config },
    info: (n) => {
      const a = add.get(n);
      if (a) return a instanceof HostTensor ? { dtype: a.dtype, shape: a.shape } : { dtype: 'I64', shape: a.shape };
      const s = stored.get(n);
      return s === undefined ? undefined : ck.info(s);
    },
    read: async (n) => {
      const a = add.get(n);
      if (a instanceof HostTensor) return a;
      if (a) throw new Error(`test: ${n} is I64, read it raw`);
      const s = stored.get(n);
      if (s === undefined) throw new Error(`test: read of dropped tensor ${n}`);
      return ck.read(s);
    },
    readRaw: async (n) => {
      const a = add.get(n);
      if (a && !(a instanceof HostTensor)) return a.i64;
      const s = stored.get(n);
      if (!a && s !== undefined && ck.readRaw) return ck.readRaw(s);
      throw new Error(`test: readRaw of ${n}`);
    },
  };
}

/** The compressed-tensors quantization_config of one weight scheme. */
export function ctConfig(w: { group_size?: number; symmetric: boolean; num_bits?: number; strategy?: string }, targets: string[], ignore: string[], format = 'pack-quantized'): Record<string, unknown> {
  return {
    quant_method: 'compressed-tensors',
    format,
    quantization_status: 'compressed',
    config_groups: { group_0: { targets, weights: { num_bits: 4, type: 'int', strategy: 'group', dynamic: false, actorder: null, observer: 'minmax', ...w }, input_activations: null, output_activations: null } },
    ignore,
    kv_cache_scheme: null,
  };
}

/**
 * Turns the dense checkpoint `ck` into a compressed-tensors one: every 2-D `.weight` under `prefix` whose
 * module `quantized(name)` selects is replaced by weight_packed / weight_scale / weight_shape (int64) /
 * weight_zero_point; returns it with `deq`, the same checkpoint with those weights dequantized (f32).
 */
export async function toCompressedTensors(
  ck: MoECheckpoint,
  prefix: string,
  quantized: (module: string) => boolean,
  /** group 'row': one group per row (strategy channel). */
  scheme: { group: number | 'row'; symmetric: boolean; scaleDtype: 'float32' | 'bfloat16' | 'float16'; bits?: 4 | 8 },
  config: Record<string, unknown>,
): Promise<{ ct: MoECheckpoint; deq: MoECheckpoint }> {
  const add = new Map<string, HostTensor | { i64: Uint8Array; shape: number[] }>();
  const deqAdd = new Map<string, HostTensor | { i64: Uint8Array; shape: number[] }>();
  const replaced = new Set<string>();
  for (const n of ck.tensorNames) {
    const info = ck.info(n)!;
    if (!n.startsWith(prefix) || !n.endsWith('.weight') || info.shape.length !== 2) continue;
    const m = n.slice(0, -'.weight'.length);
    if (!quantized(m)) continue;
    const [rows, cols] = info.shape;
    const t = ctCompress((await ck.read(n)).toFloat32(), rows, cols, scheme.group === 'row' ? cols : scheme.group, scheme.symmetric, scheme.scaleDtype, scheme.bits);
    add.set(`${m}.weight_packed`, t.packed).set(`${m}.weight_scale`, t.scale).set(`${m}.weight_shape`, { i64: int64Pair(rows, cols), shape: [2] });
    if (t.zeroPoint) add.set(`${m}.weight_zero_point`, t.zeroPoint);
    deqAdd.set(n, new HostTensor('float32', [rows, cols], t.deq));
    replaced.add(n);
  }
  return {
    ct: patchedCheckpoint(ck, { drop: (n) => replaced.has(n), add, config: { quantization_config: config } }),
    deq: patchedCheckpoint(ck, { add: deqAdd }),
  };
}

/** The ignore list llm-compressor writes for Qwen2-MoE (router and shared-expert gate dense). */
export const QWEN_IGNORE = ['lm_head', 're:.*mlp.gate$', 're:.*mlp.shared_expert_gate$'];

/** The synthetic cases: compressed-tensors checkpoints written over the dense fixtures (test/ct-writer.ts). */
export interface CTCase {
  name: string;
  arch: 'qwen2_moe' | 'mixtral';
  prefix: string;
  scheme: { group: number | 'row'; symmetric: boolean; scaleDtype: 'float32' | 'bfloat16' | 'float16'; bits?: 4 | 8 };
  weights: Record<string, unknown>;
  targets: string[];
  ignore: string[];
  /** Which modules the writer quantizes (what targets/ignore select). */
  quantized: (m: string) => boolean;
  sharedQuantized: boolean;
}
export const CT_CASES: CTCase[] = [
  {
    name: 'qwen2_moe symmetric, group 32, bf16 scales, shared expert quantized too',
    arch: 'qwen2_moe', prefix: 'model.layers.0.mlp.', scheme: { group: 32, symmetric: true, scaleDtype: 'bfloat16' },
    weights: { group_size: 32, symmetric: true }, targets: ['Linear'], ignore: QWEN_IGNORE,
    quantized: (m) => !/mlp\.gate$|shared_expert_gate$/.test(m), sharedQuantized: true,
  },
  {
    name: 'qwen2_moe asymmetric, group 16, f16 scales, routed experts only',
    arch: 'qwen2_moe', prefix: 'model.layers.0.mlp.', scheme: { group: 16, symmetric: false, scaleDtype: 'float16' },
    weights: { group_size: 16, symmetric: false }, targets: ['re:.*mlp\\.experts\\.'], ignore: [],
    quantized: (m) => /mlp\.experts\./.test(m), sharedQuantized: false,
  },
  {
    name: 'mixtral asymmetric, channel strategy (one group per row), f32 scales',
    arch: 'mixtral', prefix: 'model.layers.0.block_sparse_moe.', scheme: { group: 'row', symmetric: false, scaleDtype: 'float32' },
    weights: { strategy: 'channel', symmetric: false }, targets: ['Linear'], ignore: ['lm_head', 're:.*block_sparse_moe.gate$'],
    quantized: (m) => !/gate$/.test(m), sharedQuantized: false,
  },
  {
    name: 'qwen2_moe int8 (W8A16) asymmetric, group 32, bf16 scales, shared expert quantized too',
    arch: 'qwen2_moe', prefix: 'model.layers.0.mlp.', scheme: { group: 32, symmetric: false, scaleDtype: 'bfloat16', bits: 8 },
    weights: { group_size: 32, symmetric: false, num_bits: 8 }, targets: ['Linear'], ignore: QWEN_IGNORE,
    quantized: (m) => !/mlp\.gate$|shared_expert_gate$/.test(m), sharedQuantized: true,
  },
];

/** Builds a case's compressed-tensors checkpoint and the dense one with the dequantized weights. */
export async function ctCase(c: CTCase, open: (arch: string) => Promise<MoECheckpoint>): Promise<{ ct: MoECheckpoint; deq: MoECheckpoint }> {
  return toCompressedTensors(await open(c.arch), c.prefix, c.quantized, c.scheme, ctConfig(c.weights, c.targets, c.ignore));
}


/**
 * The compressed-tensors fixtures written by scripts/fixtures/make-compressed-tensors.py (HF transformers block
 * with the dequantized weights as golden; weight-only): test/fixtures/compressed-tensors/<name>/ with
 * config.json, model.safetensors (layer 0's block only), <set>.safetensors (`input`, `output` [T, H] f32)
 * and <set>.json (`f32_rel_tol` 1e-4).
 */
export const CT_FIXTURE_DIR = fileURLToPath(new URL('./fixtures/compressed-tensors', import.meta.url));
export const CT_FIXTURES = [
  { name: 'qwen2_moe_w4a16_sym', symmetric: true, sharedQuantized: true, sets: ['golden'] },
  { name: 'mixtral_w4a16_asym', symmetric: false, sharedQuantized: false, sets: ['golden', 'golden-large'] },
] as const;
/**
 * Whether the generated fixtures are in the tree. They are not yet: the generator's first run on the GPU machine
 * (2026-12-03) wrote qwen2_moe_w4a16_sym but failed on mixtral_w4a16_asym (transformers 5.17 names Mixtral's block
 * `mlp`, fixed since) and the session's device time ran out. Until they are committed, the two fixture suites are
 * skipped (the synthetic compressed-tensors tests, checkpoints written by this file, still run everywhere).
 */

/** A compressed-tensors fixture's golden set; a missing fixture fails naming the generator to run. */
export function loadCTGolden(name: string, set: string): { dir: string; T: number; H: number; input: Float32Array; output: Float32Array; tol: number } {
  const dir = join(CT_FIXTURE_DIR, name);
  const path = join(dir, `${set}.safetensors`);
  if (!existsSync(path)) throw new Error(`fixture ${path} is missing: run python3 scripts/fixtures/make-compressed-tensors.py packages/moe/test/fixtures/compressed-tensors (torch + transformers)`);
  const g = readTensorsF32(path);
  const meta = JSON.parse(readFileSync(join(dir, `${set}.json`), 'utf8')) as { f32_rel_tol: number; format: string };
  if (meta.format !== 'pack-quantized') throw new Error(`${name}/${set}.json: format ${meta.format}`);
  const x = g.get('input')!;
  const y = g.get('output')!;
  const [T, H] = x.shape;
  if (y.shape[0] !== T || y.shape[1] !== H) throw new Error(`${name} ${set}: output shape ${y.shape} (expected [${T}, ${H}])`);
  return { dir, T, H, input: x.values, output: y.values, tol: meta.f32_rel_tol };
}

/** Writes a checkpoint (config.json + one model.safetensors, raw I64 tensors kept raw) into `dir`. */
export async function writeCheckpointDir(dir: string, ck: MoECheckpoint): Promise<void> {
  const tensors: Record<string, SerializableTensor> = {};
  for (const n of ck.tensorNames) {
    const info = ck.info(n)!;
    tensors[n] = info.dtype === 'I64' ? { stDtype: 'I64', shape: info.shape, bytes: await ck.readRaw!(n) } : await ck.read(n);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(ck.config));
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
}
