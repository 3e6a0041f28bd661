/**
 * The MoE forward the bench times, behind one function: `runMoE(ctx, layer,
 * rec, x)` records one forward of the layer into a Recorder.
 *
 * The forward is `@webmoe/moe`'s `MoE.record` (router linear, router,
 * grouping, expert GEMVs or grouped GEMMs, shared experts, combine), its
 * parameters filled with random GPU tensors in their storage dtype; fp8,
 * int4, int8 and mxfp4 rows build the MoE with a `quantConfig` and fill its
 * packed routed experts (codes + scales, generated on the GPU), so that
 * `forwardGpuSync`, `MoEStack` and `forward` run the same layer.
 * `GpuLayer.stored` describes the very buffers that forward reads, for the
 * row's check (check.ts).
 */
import { DeepseekV2Gate, DeepseekV3Gate, Ernie45Gate, Llama4Gate, MoE, MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, gpuStages, type GateClass, type MoEOptions, type MoEQuantConfig } from '@webmoe/moe';
import {
  BufferPool,
  GpuOutOfMemoryError,
  GpuTensor,
  type ExpertWeightsGpu,
  type GpuContext,
  type Recorder,
  type RouterParams,
} from '@webmoe/kernels-wgsl';
import { DeviceRef, HostTensor, allocHost, numel, type DType, type HostArray } from '@webmoe/tensor';
import { fillKindOf, hash32, randomGpuTensor, randomWords, type FillKind } from './fill.js';
import { storedExpertBias, storedGpu, storedGpuExperts } from './check.js';
import { layerMemory, randomExperts, type LayerMemory } from './expert-gen.js';
import type { StoredLayer } from './stored.js';
import { INT_BLOCK, layerDtype, packedSharedExperts, storageDtype, type BenchDtype, type ModelSpec } from './models.js';

/** The `impl` of the bench's GPU rows: `@webmoe/moe`'s MoE (packed rows pass their experts to `MoE.record`). */
export const IMPL = 'moe';

/** A layer with random weights on the GPU, ready to time. */
export interface GpuLayer {
  spec: ModelSpec;
  dtype: BenchDtype;
  impl: typeof IMPL;
  pool: BufferPool;
  /** The weights the forward reads, as stored on the GPU (what the row's check reads back). */
  stored: StoredLayer;
  /** Bytes of all weights on the device. */
  weightBytes: number;
  /** The layer's GPU bytes against the packed bytes its shape implies, and the chunks of its routed stacks. */
  memory?: LayerMemory;
  /** The layer as `@webmoe/moe`'s MoE (impl 'moe'): what the chain and host-I/O timings call. */
  moe?: MoE;
  /** Records one forward; returns the output (caller-owned) and pushes scratch to `scratch`. */
  record(rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]): GpuTensor;
  /** Frees every weight and the pool. */
  destroy(): void;
}

/** A host tensor of random values in its storage dtype (the fill kernel's bit patterns; `kind` overrides the values as in randomGpuTensor). */
export function randomHostTensor(dtype: DType, shape: readonly number[], seed: number, kind: FillKind = fillKindOf(dtype)): HostTensor {
  const n = numel(shape);
  const words = randomWords(kind, n, seed);
  const data = allocHost(dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(new Uint8Array(words.buffer, 0, data.byteLength));
  return new HostTensor(dtype, shape, data as HostArray);
}

/** `seed` for layer 0 of a stack, another seed for each other layer. */
function salted(seed: number, salt: number): number {
  return salt ? (seed ^ hash32(salt)) >>> 0 : seed;
}

/** The seed of a (non-packed) parameter of a bench layer: the GPU and the CPU layers fill the same values. */
export function seedOf(name: string, salt = 0): number {
  let h = salted(17, salt);
  for (let i = 0; i < name.length; i++) h = hash32(h ^ name.charCodeAt(i));
  return h;
}

/** Seeds of the packed routed experts' codes (their scales: seed + 1), as randomExpertWeights fills them. */
export function packedExpertSeeds(salt = 0): { gateUp: number; down: number } {
  return { gateUp: salted(21, salt), down: salted(31, salt) };
}

const GATE_CLASS: Record<RouterParams['kind'], GateClass> = {
  raw_topk: MoEGate,
  softmax_topk: SoftmaxTopKGate,
  topk_softmax: TopKSoftmaxGate,
  sigmoid_grouped: DeepseekV3Gate,
  sigmoid_topk: Llama4Gate,
  softmax_grouped: DeepseekV2Gate,
  softmax_biased: Ernie45Gate,
};

/** The quantConfig of a packed bench dtype (the formats randomExpertWeights generates). */
function quantConfigOf(dtype: BenchDtype): MoEQuantConfig | undefined {
  switch (dtype) {
    case 'fp8':
      return { format: 'fp8_block', weightBlockSize: [128, 128], quantizeSharedExperts: packedSharedExperts(dtype) };
    case 'int4':
    case 'int8':
      return { format: dtype, blockSize: INT_BLOCK, scaleDtype: 'float16', biasDtype: 'bfloat16' };
    case 'mxfp4':
      return { format: 'mxfp4', biasDtype: 'bfloat16' };
    default:
      return undefined;
  }
}

/**
 * The options of a bench layer's MoE (shapes, router, activation, dtype and
 * quantConfig of `spec` in `dtype`), without its device: the GPU rows and the
 * CPU rows (host-layer.ts) build the same layer.
 * @example `new MoE({ ...benchMoEOptions(TINY, 'bf16'), devices: [DeviceRef.CPU()] })`
 */
export function benchMoEOptions(spec: ModelSpec, dtype: BenchDtype): Omit<MoEOptions, 'devices' | 'ctx'> {
  const r = spec.router;
  return {
    hiddenDim: spec.H,
    numExperts: spec.E,
    numExpertsPerToken: spec.k,
    moeDim: spec.I,
    gateCls: GATE_CLASS[r.kind],
    gateOptions: { hasBias: spec.bias, normTopkProb: r.normTopkProb, nGroup: r.nGroup, topkGroup: r.topkGroup, routedScalingFactor: r.routedScalingFactor },
    hasSharedExperts: spec.shared > 0,
    sharedExpertsDim: spec.shared * spec.I || undefined,
    dtype: layerDtype(dtype),
    expertActivation: spec.act,
    hasExpertBias: spec.bias,
    applyRouterWeightFirst: spec.routerWeightFirst,
    quantConfig: quantConfigOf(dtype),
  };
}

/** The value of environment variable `name` where it is one of `choices` (Node only; else undefined). */
function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const v = typeof process !== 'undefined' ? process.env[name] : undefined;
  return choices.find((c) => c === v);
}

/**
 * `MoE` with random parameters generated on the GPU: a layer as a user
 * builds it, so that `record`, `forwardGpu` and `forward` all run it.
 * bf16/f16/f32 rows fill the stacked experts in that dtype; packed rows
 * (fp8, int4, int8, mxfp4) build the layer with a `quantConfig` (router
 * and biases in bf16, shared experts too unless packedSharedExperts) and
 * fill its packed experts (codes + scales) on the GPU. `salt` varies the
 * seeds (the layers of a stack).
 */
export function createMoELayer(ctx: GpuContext, spec: ModelSpec, dtype: BenchDtype, pool: BufferPool, salt = 0): { moe: MoE; record: GpuLayer['record']; stored: StoredLayer } {
  const moe = new MoE({ ...benchMoEOptions(spec, dtype), devices: [DeviceRef.GPU(0)], ctx });
  // A/B knobs from the environment, each set only where given (default auto):
  // WEBMOE_EXPERT_KERNELS=gemv|grouped|auto picks the layer's expert GEMMs, to time both paths;
  // WEBMOE_DOWN_COMBINE=fused|separate|auto how its decode forwards end (MoE.downCombine);
  // WEBMOE_PREFILL_DEQUANT=on|off|auto how its subgroup-matrix prefill GEMMs read packed / bf16 experts (MoE.prefillDequant)
  // WEBMOE_DECODE_SHARED=routed|separate|auto how its decode forwards run the shared experts (MoE.decodeShared)
  const ek = envChoice('WEBMOE_EXPERT_KERNELS', ['gemv', 'grouped', 'auto'] as const);
  if (ek) moe.expertKernels = ek;
  const dc = envChoice('WEBMOE_DOWN_COMBINE', ['fused', 'separate', 'auto'] as const);
  if (dc) moe.downCombine = dc;
  const pd = envChoice('WEBMOE_PREFILL_DEQUANT', ['on', 'off', 'auto'] as const);
  if (pd) moe.prefillDequant = pd;
  const ds = envChoice('WEBMOE_DECODE_SHARED', ['routed', 'separate', 'auto'] as const);
  if (ds) moe.decodeShared = ds;
  try {
    // the shared-expert MLP packs its GPU weights when loaded, so it is loaded from host tensors (it is small)
    const se = moe.sharedExperts;
    if (se) {
      const sd: Record<string, HostTensor> = {};
      for (const [name, p] of se.namedParameters()) sd[name] = randomHostTensor(p.dtype, p.shape, seedOf(`shared_experts.${name}`, salt));
      se.loadStateDict(sd);
    }
    // routed experts (dense, or packed codes + scales; biases): generated on the GPU in chunks where a stack exceeds a binding (expert-gen.ts)
    randomExperts(ctx, moe.stacked, dtype, salted(21, salt));
    if (moe.shared?.kind === 'packed') randomExperts(ctx, moe.shared.store, dtype, salted(51, salt));
    for (const [name, p] of moe.namedParameters()) {
      if (name.startsWith('shared_experts.') || name.startsWith('experts.')) continue;
      p.gpu?.destroy();
      p.gpu = randomGpuTensor(ctx, p.dtype, p.shape, seedOf(name, salt), fillKindOf(p.dtype), name);
    }
    const g = moe.gate;
    const experts = moe.stacked.gpuWeights();
    const opt = (t: GpuTensor | undefined) => (t ? storedGpu(t) : undefined);
    const sharedW = moe.sharedExperts?.packedGpu;
    const sharedPacked = moe.shared?.kind === 'packed' ? moe.shared.store.gpuWeights() : undefined;
    return {
      moe,
      record: (rec, x, scratch) => moe.record(rec, x, pool, scratch),
      stored: {
        router: storedGpu(g.weight.gpuValue),
        routerBias: opt(g.bias?.gpuValue),
        correctionBias: opt(g.eScoreCorrectionBias?.gpuValue),
        gateUp: storedGpuExperts(experts.gateUp),
        down: storedGpuExperts(experts.down),
        gateUpBias: storedExpertBias(experts.gateUp, moe.stacked.gateUpBias?.gpu),
        downBias: storedExpertBias(experts.down, moe.stacked.downBias?.gpu),
        shared: sharedPacked
          ? { gateUp: storedGpuExperts(sharedPacked.gateUp), down: storedGpuExperts(sharedPacked.down) }
          : sharedW
            ? { gateUp: { kind: 'dense', w: storedGpu(sharedW.gateUp) }, down: { kind: 'dense', w: storedGpu(sharedW.down) } }
            : undefined,
      },
    };
  } catch (e) {
    moe.destroy();
    throw e;
  }
}

/** The value kinds of packed routed experts' codes and scales, by bench dtype (GPU and CPU layers alike). */
export const PACKED_FILL: Readonly<Record<'fp8' | 'int4' | 'int8' | 'mxfp4', { codes: FillKind; scales: FillKind }>> = {
  fp8: { codes: 'e4m3', scales: 'scale' },
  int4: { codes: 'u8', scales: 'i4scale' },
  int8: { codes: 'u8', scales: 'i8scale' },
  mxfp4: { codes: 'u8', scales: 'e8m0' },
};

/**
 * Random expert weights [E, rows, cols] in `dtype`, generated on the GPU in
 * their storage type (codes and scales; no host copy). The tensors are also
 * pushed to `all` (the caller frees them). Scales use seed + 1.
 * - fp8: `fp8_block`, e4m3 codes, 128x128 f32 scales 2^-7
 * - int4 / int8: `int_block` (zero point 8 / 128), random bytes, f16 scales per INT_BLOCK inputs
 * - mxfp4: `mxfp4`, random e2m1 nibbles, e8m0 scales 2^-10..2^-7 per 32 inputs
 * - bf16 / f16 / f32: `dense`
 * @example `const gu = randomExpertWeights(ctx, 'int4', E, 2 * I, H, 21, owned, 'experts.gate_up_proj')`
 */
export function randomExpertWeights(ctx: GpuContext, dtype: BenchDtype, E: number, rows: number, cols: number, seed: number, all: GpuTensor[], label: string): ExpertWeightsGpu {
  const make = (dt: DType, shape: number[], s: number, kind: FillKind | undefined, l: string): GpuTensor => {
    const t = randomGpuTensor(ctx, dt, shape, s, kind, l);
    all.push(t);
    return t;
  };
  switch (dtype) {
    case 'fp8': {
      const q = make('float8_e4m3fn', [E, rows, cols], seed, PACKED_FILL.fp8.codes, label);
      const scaleInv = make('float32', [E, Math.ceil(rows / 128), Math.ceil(cols / 128)], seed + 1, PACKED_FILL.fp8.scales, `${label}.scale_inv`);
      return { kind: 'fp8_block', q, scaleInv, block: [128, 128] };
    }
    case 'int4':
    case 'int8': {
      const bits = dtype === 'int4' ? 4 : 8;
      if (bits === 4 && cols % 2) throw new Error(`int4 experts need an even number of input channels (${label}: cols = ${cols})`);
      const q = make('uint8', [E, rows, (cols * bits) / 8], seed, PACKED_FILL[dtype].codes, label);
      const scales = make('float16', [E, rows, Math.ceil(cols / INT_BLOCK)], seed + 1, PACKED_FILL[dtype].scales, `${label}.scales`);
      return { kind: 'int_block', bits, q, scales, blockSize: INT_BLOCK };
    }
    case 'mxfp4': {
      if (cols % 32) throw new Error(`mxfp4 experts need input channels in multiples of 32 (${label}: cols = ${cols})`);
      const blocks = make('uint8', [E, rows, cols / 32, 16], seed, PACKED_FILL.mxfp4.codes, label);
      const scales = make('uint8', [E, rows, cols / 32], seed + 1, PACKED_FILL.mxfp4.scales, `${label}.scales`);
      return { kind: 'mxfp4', blocks, scales };
    }
    default:
      return { kind: 'dense', w: make(storageDtype(dtype), [E, rows, cols], seed, undefined, label) };
  }
}

/**
 * Allocates the layer's weights on the GPU (random, generated on the GPU in
 * their storage dtype) and waits until they are written.
 * @example `const layer = await createLayer(ctx, findModel('qwen3-30b-a3b'), 'bf16')`
 */
export async function createLayer(ctx: GpuContext, spec: ModelSpec, dtype: BenchDtype): Promise<GpuLayer> {
  const all: GpuTensor[] = [];
  let moe: MoE | undefined;
  const pool = new BufferPool(ctx, { maxFreeBytes: 1 << 30 });
  try {
    const made = await ctx.checked(`weights of ${spec.name} ${dtype}`, () => {
      const m = createMoELayer(ctx, spec, dtype, pool);
      moe = m.moe;
      return m;
    });
    await ctx.sync();
    const m = moe as MoE | undefined;
    const tensors = new Set([...all, ...(m ? m.namedParameters().map(([, p]) => p.gpu).filter((t): t is GpuTensor => !!t) : [])]);
    const memory = m ? layerMemory(spec, dtype, m) : undefined;
    return {
      spec,
      dtype,
      impl: IMPL,
      pool,
      record: made.record,
      stored: made.stored,
      weightBytes: memory?.gpu.total ?? [...tensors].reduce((s, t) => s + t.byteLength, 0),
      memory,
      moe: m,
      destroy() {
        m?.destroy();
        for (const t of all) t.destroy();
        pool.destroy();
      },
    };
  } catch (e) {
    (moe as MoE | undefined)?.destroy();
    for (const t of all) t.destroy();
    pool.destroy();
    throw e;
  }
}

/** One recorded forward: the output and the scratch to free after submit. */
export interface Forward {
  out: GpuTensor;
  /** Frees the scratch and the output (call after submit, once the output is no longer needed). */
  release(): void;
}

/**
 * Records one forward of `layer` on `x` (f32 [T, H]) into `rec`.
 * `release()` after submit.
 * @example
 * ```ts
 * const rec = new Recorder(ctx); const f = runMoE(ctx, layer, rec, x); rec.submit(); await ctx.sync(); f.release();
 * ```
 */
export function runMoE(ctx: GpuContext, layer: GpuLayer, rec: Recorder, x: GpuTensor): Forward {
  ctx.assertAlive();
  const scratch: { destroy(): void }[] = [];
  let out: GpuTensor;
  try {
    out = layer.record(rec, x, scratch);
  } catch (e) {
    for (const s of scratch) s.destroy();
    throw e;
  }
  return {
    out,
    release: () => {
      for (const s of scratch) s.destroy();
      out.destroy();
    },
  };
}

/**
 * The routing indices [T, k] the layer's router gives for `x` (its MoE's
 * route stage run on its own, outside the timed forwards), to count the
 * experts a batch hits.
 * @example `const idx = await routingOf(ctx, layer, x)`
 */
export async function routingOf(ctx: GpuContext, layer: GpuLayer, x: GpuTensor, rec: Recorder): Promise<Uint32Array> {
  if (!layer.moe) throw new Error(`the ${layer.impl} forward has no MoE layer to route with`);
  ctx.assertAlive();
  const scratch: { destroy(): void }[] = [];
  try {
    const routing = gpuStages(layer.moe, { rec, pool: layer.pool, scratch }).route(x);
    rec.submit();
    return (await routing.idx.download()).data as Uint32Array;
  } finally {
    for (const t of scratch) t.destroy();
  }
}

/**
 * Device memory a `--stack` chain stopped by an out-of-memory error gives back (whole layers, the last made first) for
 * the rows that run beside it: their scratch (the largest, a T = 4096 prefill of Mixtral-8x7B: ~1.4 GB of f32
 * activations) and their graphs' scratch.
 */
export const STACK_HEADROOM_BYTES = 4 * 2 ** 30;

/**
 * The layers of a `--stack` chain: `layer`'s own MoE, then more layers of
 * the same shape and dtype with other random weights (distinct buffers),
 * as many as `budgetBytes` of weights allow, at most `n`; creation also
 * stops at the first out-of-memory error, and then gives back layers until
 * `headroomBytes` (STACK_HEADROOM_BYTES) are free again. The chain cycles over them.
 * `destroy()` frees the extra layers (not `layer`).
 * @example `const st = await createStackLayers(ctx, layer, 48, STACK_BUDGET_GIB.gpu * 2 ** 30); st.layers.length`
 */
export async function createStackLayers(ctx: GpuContext, layer: GpuLayer, n: number, budgetBytes: number, headroomBytes = STACK_HEADROOM_BYTES): Promise<{ layers: MoE[]; destroy(): void }> {
  if (!layer.moe) throw new Error(`the ${layer.impl} forward has no MoE layer to chain`);
  // the layers made here; the chain is the row's layer, then these
  const extra: MoE[] = [];
  const destroy = () => {
    for (const m of extra) m.destroy();
  };
  const fit = Math.max(1, Math.min(n, Math.floor(budgetBytes / Math.max(1, layer.weightBytes))));
  try {
    while (1 + extra.length < fit) {
      const index = 1 + extra.length;
      let m: MoE | undefined;
      try {
        await ctx.checked(`stack layer ${index}`, () => {
          m = createMoELayer(ctx, layer.spec, layer.dtype, layer.pool, index).moe;
        });
        await ctx.sync();
      } catch (e) {
        (m as MoE | undefined)?.destroy();
        if (e instanceof GpuOutOfMemoryError) {
          // as many as fit, less the headroom the rows need; the memory given back before they allocate
          for (let freed = 0; freed < headroomBytes && extra.length; freed += layer.weightBytes) extra.pop()!.destroy();
          await ctx.reclaimMemory();
          break;
        }
        throw e;
      }
      extra.push(m!);
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return { layers: [layer.moe, ...extra], destroy };
}
