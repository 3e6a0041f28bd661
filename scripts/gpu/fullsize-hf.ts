// A real-size DeepSeek-V3 fp8 MoE layer through MoE.fromHuggingFace, on one GPU:
//  1. writes a checkpoint of one MoE layer (layer 3, the first MoE layer of the real model) with the real model's
//     config.json and HF tensor names, shapes and dtypes (256 routed experts + 1 shared expert, e4m3 codes with f32
//     128x128 weight_scale_inv, bf16 router, f32 e_score_correction_bias), random data, sharded like the published
//     checkpoint (model-0000N-of-0000M.safetensors + model.safetensors.index.json): about 11.3 GB;
//  2. loads it with MoE.fromHuggingFace: the routed experts stream expert by expert into chunk-sized host buffers
//     (HFLoadOptions.streamExperts, automatic above 1 GiB per stack), no host array per stack;
//  3. runs T = 1 and T = 16 (weight-only: activationQuant 'none', so that the float64 reference below is exact maths),
//     and checks every output row against the bench's float64 reference (apps/bench/src/reference.ts) reading the
//     routed experts and the shared expert from the checkpoint files themselves (not through the loader), routed
//     like the GPU (ties within 1e-5 take the GPU's choice);
//  4. prints the load time, forward times, gpuBytes against the packed bytes + scales (must be within 2%), chunk counts.
//
//   node scripts/gpu/build-one.mjs scripts/gpu/fullsize-hf.ts .gpu-kit/fullsize-hf.mjs
//   bash .gpu-kit/enter.sh node .gpu-kit/fullsize-hf.mjs DIR [--reuse] [--small | --experts N]
// DIR: where the checkpoint goes (about 11.3 GB of disk; --reuse keeps a checkpoint already there). --small: the same
// code path on a small layer (E 16, H 256, I 256) with the binding limit lowered so that every gate_up expert is cut
// in pieces (what CI runs on lavapipe). --experts N: the real H and I with N routed experts (a smaller disk and host
// footprint, e.g. on lavapipe). Exit code 1 when a check fails.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DeviceRef, HostTensor } from '@webmoe/tensor';
import { createGpuContext, GpuTensor, linearGpu, Recorder, routerGpu, type ExpertStackGpu } from '@webmoe/kernels-wgsl';
import { MoE } from '@webmoe/moe';
import { referenceForward, readExpertBytes, runExpertJob, type ReferenceSpec, type StoredDtype, type StoredExperts, type StoredTensor } from '../../apps/bench/src/reference.js';
import { checkRunner } from '../../apps/bench/src/check-pool.js';
import { relErr64 } from '../../apps/bench/src/check.js';

const args = process.argv.slice(2);
const ei = args.indexOf('--experts');
const dir = args.find((a, i) => !a.startsWith('--') && !(ei >= 0 && i === ei + 1));
if (!dir) {
  console.error('usage: fullsize-hf.mjs DIR [--reuse] [--small | --experts N]');
  process.exit(2);
}
const small = args.includes('--small');
const reuse = args.includes('--reuse');
const experts = ei >= 0 ? Number(args[ei + 1]) : 256;
if (!(Number.isInteger(experts) && experts >= 16 && experts % 8 === 0)) throw new Error(`--experts: a multiple of 8 >= 16 expected, got ${args[ei + 1]}`);

/** The layer: DeepSeek-V3 (config.json of deepseek-ai/DeepSeek-V3; --experts N keeps N of its 256 routed experts), or the small stand-in of --small. */
const S = small ? { H: 256, I: 256, E: 16, k: 4, nGroup: 4, topkGroup: 2 } : { H: 7168, I: 2048, E: experts, k: 8, nGroup: 8, topkGroup: 4 };
/** Streamed always (the full layer would be by default: 'auto' streams stacks over 1 GiB). */
const streamExperts = S.E === 256 ? 'auto' : true;
const LAYER = 3;
const BLOCK = 128;
const PREFIX = `model.layers.${LAYER}.mlp.`;
const CONFIG = {
  architectures: ['DeepseekV3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  auto_map: { AutoConfig: 'configuration_deepseek.DeepseekV3Config', AutoModel: 'modeling_deepseek.DeepseekV3Model', AutoModelForCausalLM: 'modeling_deepseek.DeepseekV3ForCausalLM' },
  aux_loss_alpha: 0.001,
  bos_token_id: 0,
  eos_token_id: 1,
  ep_size: 1,
  first_k_dense_replace: 3,
  hidden_act: 'silu',
  hidden_size: S.H,
  initializer_range: 0.02,
  intermediate_size: 18432,
  kv_lora_rank: 512,
  max_position_embeddings: 163840,
  model_type: 'deepseek_v3',
  moe_intermediate_size: S.I,
  moe_layer_freq: 1,
  n_group: S.nGroup,
  n_routed_experts: S.E,
  n_shared_experts: 1,
  norm_topk_prob: true,
  num_attention_heads: 128,
  num_experts_per_tok: S.k,
  num_hidden_layers: 61,
  num_key_value_heads: 128,
  num_nextn_predict_layers: 1,
  q_lora_rank: 1536,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [BLOCK, BLOCK] },
  rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 1.0, mscale_all_dim: 1.0, original_max_position_embeddings: 4096, type: 'yarn' },
  rope_theta: 10000,
  routed_scaling_factor: 2.5,
  scoring_func: 'sigmoid',
  seq_aux: true,
  tie_word_embeddings: false,
  topk_group: S.topkGroup,
  topk_method: 'noaux_tc',
  torch_dtype: 'bfloat16',
  transformers_version: '4.46.3',
  use_cache: true,
  v_head_dim: 128,
  vocab_size: 129280,
};

// ---- the checkpoint: tensors, their bytes (generated on demand), shards ----

type StDtype = 'F8_E4M3' | 'F32' | 'BF16';
interface TensorSpec {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Fills the tensor's bytes (little-endian) into `out`. */
  fill(out: Uint8Array): void;
}
const ST_BYTES: Record<StDtype, number> = { F8_E4M3: 1, F32: 4, BF16: 2 };
const bytesOf = (t: { dtype: StDtype; shape: number[] }) => t.shape.reduce((a, b) => a * b, 1) * ST_BYTES[t.dtype];

/** xorshift32 words seeded per tensor (the data is random; the reference reads it back from the files). */
function words(out: Uint8Array, seed: number, mask: number): void {
  const n = out.byteLength >>> 2;
  const u = new Uint32Array(out.buffer, out.byteOffset, n);
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    u[i] = (x & mask) >>> 0;
  }
  for (let i = n * 4; i < out.byteLength; i++) out[i] = (i * 37 + seed) & mask & 0xff;
}
/** e4m3 codes with bit 6 clear: |v| < 2, never NaN. */
const fp8 = (seed: number) => (out: Uint8Array) => words(out, seed, 0xbfbfbfbf | 0);
/** f32 values from `f(i)`. */
const f32 = (f: (i: number) => number) => (out: Uint8Array) => {
  const v = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
  for (let i = 0; i < v.length; i++) v[i] = f(i);
};
/** bf16 (truncated f32) values from `f(i)`. */
const bf16 = (f: (i: number) => number) => (out: Uint8Array) => {
  const v = new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2);
  const t = new Float32Array(1);
  const tu = new Uint32Array(t.buffer);
  for (let i = 0; i < v.length; i++) {
    t[0] = f(i);
    v[i] = tu[0] >>> 16;
  }
};
/** A uniform [0, 1) generator (xorshift32, then a murmur3 finaliser) seeded by `seed`: independent streams per seed. */
function uniform(seed: number): () => number {
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
  };
}

/** An fp8 linear [rows, cols] and its block scales (2^-9 .. 2^-6: outputs of order one for inputs of order one). */
function fp8Linear(name: string, rows: number, cols: number, seed: number): TensorSpec[] {
  const sr = Math.ceil(rows / BLOCK);
  const sc = Math.ceil(cols / BLOCK);
  return [
    { name: `${name}.weight`, dtype: 'F8_E4M3', shape: [rows, cols], fill: fp8(seed) },
    { name: `${name}.weight_scale_inv`, dtype: 'F32', shape: [sr, sc], fill: (out) => { const u = uniform(seed); f32(() => 2 ** (-9 + Math.floor(u() * 4)))(out); } },
  ];
}

function layerTensors(): TensorSpec[] {
  const { H, I, E } = S;
  const out: TensorSpec[] = [
    { name: `${PREFIX}gate.weight`, dtype: 'BF16', shape: [E, H], fill: (out) => { const u = uniform(1); bf16(() => (u() * 2 - 1) * (2 / Math.sqrt(H)))(out); } },
    { name: `${PREFIX}gate.e_score_correction_bias`, dtype: 'F32', shape: [E], fill: (out) => { const u = uniform(2); f32(() => u() * 0.1)(out); } },
  ];
  for (let e = 0; e < E; e++) {
    const p = `${PREFIX}experts.${e}.`;
    out.push(...fp8Linear(`${p}gate_proj`, I, H, 100 + 3 * e), ...fp8Linear(`${p}up_proj`, I, H, 101 + 3 * e), ...fp8Linear(`${p}down_proj`, H, I, 102 + 3 * e));
  }
  const sp = `${PREFIX}shared_experts.`;
  out.push(...fp8Linear(`${sp}gate_proj`, I, H, 7), ...fp8Linear(`${sp}up_proj`, I, H, 8), ...fp8Linear(`${sp}down_proj`, H, I, 9));
  return out;
}

/** Where each tensor's bytes sit: file and byte offset. */
type Located = Map<string, { file: string; offset: number; dtype: StDtype; shape: number[] }>;

/** Writes the tensors as safetensors shards of at most `shardBytes` (streamed tensor by tensor) and the index. */
function writeCheckpoint(out: string, tensors: TensorSpec[], shardBytes: number): void {
  mkdirSync(out, { recursive: true });
  const shards: TensorSpec[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + bytesOf(t) > shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytesOf(t);
  }
  const n = shards.length;
  const weightMap: Record<string, string> = {};
  let total = 0;
  let buf = new Uint8Array(0);
  shards.forEach((list, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    for (const t of list) {
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytesOf(t)] };
      off += bytesOf(t);
      weightMap[t.name] = file;
    }
    total += off;
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const fd = openSync(join(out, file), 'w');
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeSync(fd, len);
      writeSync(fd, Buffer.from(json, 'utf8'));
      for (const t of list) {
        const b = bytesOf(t);
        if (buf.byteLength < b) buf = new Uint8Array(b);
        const view = buf.subarray(0, b);
        t.fill(view);
        for (let w = 0; w < b; ) w += writeSync(fd, view, w, b - w);
      }
    } finally {
      closeSync(fd);
    }
  });
  writeFileSync(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  writeFileSync(join(out, 'config.json'), JSON.stringify(CONFIG, null, 2));
}

/** The tensors' locations, from the files' own headers (independent of the loader's reader). */
function locate(out: string): Located {
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const m: Located = new Map();
  for (const file of new Set(Object.values(index.weight_map))) {
    const path = join(out, file);
    const fd = openSync(path, 'r');
    try {
      const len = Buffer.alloc(8);
      readSync(fd, len, 0, 8, 0);
      const n = Number(len.readBigUInt64LE());
      const hb = Buffer.alloc(n);
      readSync(fd, hb, 0, n, 8);
      const header = JSON.parse(hb.toString('utf8')) as Record<string, { dtype: StDtype; shape: number[]; data_offsets: [number, number] }>;
      for (const [name, h] of Object.entries(header)) if (name !== '__metadata__') m.set(name, { file: path, offset: 8 + n + h.data_offsets[0], dtype: h.dtype, shape: h.shape });
    } finally {
      closeSync(fd);
    }
  }
  return m;
}

function readFileRange(file: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const fd = openSync(file, 'r');
  try {
    for (let r = 0; r < length; ) r += readSync(fd, out, r, length - r, offset + r);
  } finally {
    closeSync(fd);
  }
  return out;
}

const STORED: Record<StDtype, StoredDtype> = { F8_E4M3: 'float8_e4m3fn', F32: 'float32', BF16: 'bfloat16' };

/** One checkpoint tensor as the reference reads it. */
function storedFile(loc: Located, name: string): StoredTensor {
  const t = loc.get(name);
  if (!t) throw new Error(`checkpoint: no tensor ${name}`);
  return { dtype: STORED[t.dtype], shape: t.shape, read: async (o, l) => readFileRange(t.file, t.offset + o, l) };
}

/**
 * Per-expert tensors as one stacked [E, rows, ...] stored tensor: expert e is the concatenation (along rows) of the
 * tensors `names(e)` (gate then up for gate_up). Reads of whole experts.
 */
function storedStack(loc: Located, E: number, names: (e: number) => string[], dtype: StoredDtype, shape: number[]): StoredTensor {
  const per = shape.slice(1).reduce((a, b) => a * b, 1) * (dtype === 'float32' ? 4 : dtype === 'bfloat16' ? 2 : 1);
  return {
    dtype,
    shape,
    read: async (offset, length) => {
      if (offset % per || length !== per) throw new Error(`reference: read [${offset}, +${length}) of a per-expert stack: one whole expert (${per} bytes) expected`);
      const parts = names(offset / per).map((n) => {
        const t = loc.get(n)!;
        return readFileRange(t.file, t.offset, bytesOf(t));
      });
      const out = new Uint8Array(per);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      return out;
    },
  };
}

function fp8Experts(loc: Located, E: number, rows: number, cols: number, names: (e: number) => string[]): StoredExperts {
  return {
    kind: 'fp8_block',
    q: storedStack(loc, E, (e) => names(e).map((n) => `${n}.weight`), 'float8_e4m3fn', [E, rows, cols]),
    scaleInv: storedStack(loc, E, (e) => names(e).map((n) => `${n}.weight_scale_inv`), 'float32', [E, Math.ceil(rows / BLOCK), Math.ceil(cols / BLOCK)]),
    block: [BLOCK, BLOCK],
  };
}

// ---- run ----

const chunks = (w: ExpertStackGpu) => (w.kind === 'chunked' ? w.chunks.length : 1);
const gb = (b: number) => `${(b / 1e9).toFixed(3)} GB`;

const tensors = layerTensors();
const packedExperts = tensors.filter((t) => t.name.includes('experts.')).reduce((s, t) => s + bytesOf(t), 0);
if (reuse && existsSync(join(dir, 'model.safetensors.index.json'))) {
  console.log(`reusing the checkpoint in ${dir}`);
} else {
  const t0 = performance.now();
  writeCheckpoint(dir, tensors, small ? 4 << 20 : 4.3e9);
  console.log(`wrote ${tensors.length} tensors (${gb(tensors.reduce((s, t) => s + bytesOf(t), 0))}) to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const loc = locate(dir);

const ctx = await createGpuContext(small ? { maxBindingBytes: Math.floor((0.6 * 2 * S.I * S.H) / 4) * 4 } : {});
console.log(`adapter ${ctx.adapterName}, ${ctx.maxBindingBytes} bytes per binding`);
const t0 = performance.now();
const moe = await MoE.fromHuggingFace({ source: dir, layer: LAYER, device: DeviceRef.GPU(), ctx, activationQuant: 'none', streamExperts });
const loadS = (performance.now() - t0) / 1000;
const w = moe.stacked.gpuWeights();
const bytes = moe.gpuBytes();
const expertBytes = bytes.expertWeights + bytes.expertScales;
const within = expertBytes >= packedExperts && expertBytes <= 1.02 * packedExperts;
console.log(`loaded in ${loadS.toFixed(1)} s: streamed ${moe.stacked.gateUpProj.host === undefined}, gate_up ${chunks(w.gateUp)} + down ${chunks(w.down)} chunks`);
console.log(`gpuBytes: experts ${expertBytes} (weights ${bytes.expertWeights} + scales ${bytes.expertScales}) vs packed + scales ${packedExperts} (x${(expertBytes / packedExperts).toFixed(5)}, ${within ? 'within' : 'NOT within'} 2%); total ${gb(bytes.total)}`);

const spec: ReferenceSpec = {
  H: S.H,
  I: S.I,
  E: S.E,
  k: S.k,
  router: { kind: 'sigmoid_grouped', numExperts: S.E, topK: S.k, normTopkProb: true, nGroup: S.nGroup, topkGroup: S.topkGroup, routedScalingFactor: 2.5 },
  act: { kind: 'silu', layout: 'concat' },
};
const ep = (e: number) => `${PREFIX}experts.${e}.`;
const stored = {
  router: storedFile(loc, `${PREFIX}gate.weight`),
  correctionBias: storedFile(loc, `${PREFIX}gate.e_score_correction_bias`),
  gateUp: fp8Experts(loc, S.E, 2 * S.I, S.H, (e) => [`${ep(e)}gate_proj`, `${ep(e)}up_proj`]),
  down: fp8Experts(loc, S.E, S.H, S.I, (e) => [`${ep(e)}down_proj`]),
};
const sp = `${PREFIX}shared_experts.`;
const sharedGu = fp8Experts(loc, 1, 2 * S.I, S.H, () => [`${sp}gate_proj`, `${sp}up_proj`]);
const sharedDn = fp8Experts(loc, 1, S.H, S.I, () => [`${sp}down_proj`]);

/** The GPU layer's routing [T, k] for x (the reference takes it where scores tie within 1e-5). */
async function gpuRouting(x: Float32Array, T: number): Promise<Uint32Array> {
  const xg = GpuTensor.upload(ctx, new HostTensor('float32', [T, S.H], x));
  const rec = new Recorder(ctx);
  const g = moe.gate;
  const logits = linearGpu(ctx, rec, xg, g.weight.gpuValue, { bias: g.bias?.gpuValue });
  const r = routerGpu(ctx, rec, logits, g.routerParams(), { correctionBias: g.eScoreCorrectionBias?.gpuValue });
  rec.submit();
  const idx = (await r.idx.download()).data as Uint32Array;
  for (const t of [xg, logits, r.idx, r.weights]) t.destroy();
  return idx;
}

let failed = !within;
for (const T of [1, 16]) {
  const x = new Float32Array(T * S.H);
  const u = uniform(1000 + T);
  for (let i = 0; i < x.length; i++) x[i] = (u() * 2 - 1) * Math.sqrt(3); // unit variance
  const y = await moe.forward(x);
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const a = performance.now();
    await moe.forward(x);
    times.push(performance.now() - a);
  }
  times.sort((a, b) => a - b);
  const idx = await gpuRouting(x, T);
  const r0 = performance.now();
  const tokens = Array.from({ length: T }, (_, t) => t);
  const ref = await referenceForward(spec, stored, x, tokens, idx, 1e-5, checkRunner());
  // the shared expert (fp8, on every token): the reference's expert maths on its bytes from the files
  const ys = runExpertJob({ gu: await readExpertBytes(sharedGu, 0, 2 * S.I, S.H), dn: await readExpertBytes(sharedDn, 0, S.H, S.I), act: spec.act, xs: tokens.map((t) => Float64Array.from(x.subarray(t * S.H, (t + 1) * S.H))), I: S.I, H: S.H });
  ys.forEach((v, t) => {
    for (let c = 0; c < S.H; c++) ref.out[t * S.H + c] += v[c];
  });
  const err = relErr64(y, ref.out);
  const ok = err <= 1e-4 && ref.routingMismatches === 0;
  failed ||= !ok;
  console.log(
    `T=${T}: forward(Float32Array) median ${times[5].toFixed(3)} ms (min ${times[0].toFixed(3)}); float64 reference (${ref.experts.size} routed experts + shared, ${((performance.now() - r0) / 1000).toFixed(1)} s): rel err ${err.toExponential(2)} ${ok ? 'ok' : 'FAIL'}` +
      (ref.ties ? `, ${ref.ties} tie(s) took the GPU's routing` : '') +
      (ref.routingMismatches ? `, ${ref.routingMismatches} token(s) routed differently` : ''),
  );
}
moe.destroy();
ctx.destroy();
console.log(failed ? 'FAILED' : 'all checks passed');
process.exit(failed ? 1 : 0);
