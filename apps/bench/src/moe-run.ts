/**
 * The MoE forward the bench times, behind one function: `runMoE(ctx, layer,
 * rec, x)` records one forward of the layer into a Recorder.
 *
 * The forward is `@webmoe/moe`'s `MoE.record` (router linear, router,
 * grouping, expert GEMVs or grouped GEMMs, shared experts, combine), its
 * parameters filled with random GPU tensors in their storage dtype; fp8,
 * int4, int8 and mxfp4 rows pass packed routed experts (codes + scales,
 * generated on the GPU) to `record`. `GpuLayer.stored` describes the very
 * buffers that forward reads, for the row's check (check.ts).
 */
import { DeepseekV3Gate, Llama4Gate, MoE, MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, type GateClass } from '@webmoe/moe';
import {
  BufferPool,
  GpuTensor,
  linearGpu,
  routerGpu,
  type ExpertWeightsGpu,
  type GpuContext,
  type Recorder,
  type RouterParams,
} from '@webmoe/kernels-wgsl';
import { DeviceRef, HostTensor, allocHost, numel, type DType, type HostArray } from '@webmoe/tensor';
import { fillKindOf, hash32, randomGpuTensor, randomWords, type FillKind } from './fill.js';
import { storedGpu, storedGpuExperts } from './check.js';
import type { StoredLayer } from './reference.js';
import { INT_BLOCK, isPacked, layerDtype, storageDtype, type BenchDtype, type ModelSpec } from './models.js';

/** The `impl` of the bench's GPU rows: `@webmoe/moe`'s MoE (packed rows pass their experts to `MoE.record`). */
export const IMPL = 'moe';

/** The router of a layer (to count the experts hit, outside the timed loop). */
interface RouterWeights {
  w: GpuTensor;
  bias?: GpuTensor;
  correctionBias?: GpuTensor;
  params: RouterParams;
}

/** A layer with random weights on the GPU, ready to time. */
export interface GpuLayer {
  spec: ModelSpec;
  dtype: BenchDtype;
  impl: typeof IMPL;
  pool: BufferPool;
  /** The weights the forward reads, as stored on the GPU (what the row's check reads back). */
  stored: StoredLayer;
  router: RouterWeights;
  /** Bytes of all weights on the device. */
  weightBytes: number;
  /** Records one forward; returns the output (caller-owned) and pushes scratch to `scratch`. */
  record(rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]): GpuTensor;
  /** Frees every weight and the pool. */
  destroy(): void;
}

/** A host tensor of random values in its storage dtype (the fill kernel's bit patterns). */
function randomHostTensor(dtype: DType, shape: readonly number[], seed: number): HostTensor {
  const n = numel(shape);
  const words = randomWords(fillKindOf(dtype), n, seed);
  const data = allocHost(dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(new Uint8Array(words.buffer, 0, data.byteLength));
  return new HostTensor(dtype, shape, data as HostArray);
}

function seedOf(name: string): number {
  let h = 17;
  for (let i = 0; i < name.length; i++) h = hash32(h ^ name.charCodeAt(i));
  return h;
}

const GATE_CLASS: Record<RouterParams['kind'], GateClass> = {
  raw_topk: MoEGate,
  softmax_topk: SoftmaxTopKGate,
  topk_softmax: TopKSoftmaxGate,
  sigmoid_grouped: DeepseekV3Gate,
  sigmoid_topk: Llama4Gate,
};

/**
 * `MoE` with random parameters generated on the GPU. bf16/f16/f32 rows fill
 * the stacked experts in that dtype; packed rows (fp8, int4, int8, mxfp4)
 * build the layer in bf16 (router, shared experts, biases), leave its
 * stacked experts empty and pass packed experts to `record`.
 */
function createMoELayer(ctx: GpuContext, spec: ModelSpec, dtype: BenchDtype, pool: BufferPool, own: GpuTensor[]): { moe: MoE; router: RouterWeights; record: GpuLayer['record']; stored: StoredLayer } {
  const r = spec.router;
  const moe = new MoE({
    devices: [DeviceRef.GPU(0)],
    ctx,
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
  });
  // WEBMOE_EXPERT_KERNELS=gemv|grouped|auto picks the layer's expert GEMMs (default auto), to time both paths
  const ek = typeof process !== 'undefined' ? process.env.WEBMOE_EXPERT_KERNELS : undefined;
  if (ek === 'gemv' || ek === 'grouped' || ek === 'auto') moe.expertKernels = ek;
  try {
    // the shared-expert MLP packs its GPU weights when loaded, so it is loaded from host tensors (it is small)
    const se = moe.sharedExperts;
    if (se) {
      const sd: Record<string, HostTensor> = {};
      for (const [name, p] of se.namedParameters()) sd[name] = randomHostTensor(p.dtype, p.shape, seedOf(`shared_experts.${name}`));
      se.loadStateDict(sd);
    }
    for (const [name, p] of moe.namedParameters()) {
      if (name.startsWith('shared_experts.')) continue;
      if (isPacked(dtype) && (name === 'experts.gate_up_proj' || name === 'experts.down_proj')) continue;
      p.gpu?.destroy();
      p.gpu = randomGpuTensor(ctx, p.dtype, p.shape, seedOf(name), fillKindOf(p.dtype), name);
    }
    const packed = isPacked(dtype)
      ? { gateUp: randomExpertWeights(ctx, dtype, spec.E, 2 * spec.I, spec.H, 21, own, 'experts.gate_up_proj'), down: randomExpertWeights(ctx, dtype, spec.E, spec.H, spec.I, 31, own, 'experts.down_proj') }
      : undefined;
    const g = moe.gate;
    const experts = packed ?? moe.stacked.gpuWeights();
    const opt = (t: GpuTensor | undefined) => (t ? storedGpu(t) : undefined);
    const sharedW = moe.sharedExperts?.packedGpu;
    return {
      moe,
      router: { w: g.weight.gpuValue, bias: g.bias?.gpuValue, correctionBias: g.eScoreCorrectionBias?.gpuValue, params: g.routerParams() },
      record: (rec, x, scratch) => moe.record(rec, x, pool, scratch, experts),
      stored: {
        router: storedGpu(g.weight.gpuValue),
        routerBias: opt(g.bias?.gpuValue),
        correctionBias: opt(g.eScoreCorrectionBias?.gpuValue),
        gateUp: storedGpuExperts(experts.gateUp),
        down: storedGpuExperts(experts.down),
        gateUpBias: opt(moe.stacked.gateUpBias?.gpuValue),
        downBias: opt(moe.stacked.downBias?.gpuValue),
        shared: sharedW ? { gateUp: storedGpu(sharedW.gateUp), down: storedGpu(sharedW.down) } : undefined,
      },
    };
  } catch (e) {
    moe.destroy();
    throw e;
  }
}

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
      const q = make('float8_e4m3fn', [E, rows, cols], seed, 'e4m3', label);
      const scaleInv = make('float32', [E, Math.ceil(rows / 128), Math.ceil(cols / 128)], seed + 1, 'scale', `${label}.scale_inv`);
      return { kind: 'fp8_block', q, scaleInv, block: [128, 128] };
    }
    case 'int4':
    case 'int8': {
      const bits = dtype === 'int4' ? 4 : 8;
      if (bits === 4 && cols % 2) throw new Error(`int4 experts need an even number of input channels (${label}: cols = ${cols})`);
      const q = make('uint8', [E, rows, (cols * bits) / 8], seed, 'u8', label);
      const scales = make('float16', [E, rows, Math.ceil(cols / INT_BLOCK)], seed + 1, bits === 4 ? 'i4scale' : 'i8scale', `${label}.scales`);
      return { kind: 'int_block', bits, q, scales, blockSize: INT_BLOCK };
    }
    case 'mxfp4': {
      if (cols % 32) throw new Error(`mxfp4 experts need input channels in multiples of 32 (${label}: cols = ${cols})`);
      const blocks = make('uint8', [E, rows, cols / 32, 16], seed, 'u8', label);
      const scales = make('uint8', [E, rows, cols / 32], seed + 1, 'e8m0', `${label}.scales`);
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
      const m = createMoELayer(ctx, spec, dtype, pool, all);
      moe = m.moe;
      return m;
    });
    await ctx.sync();
    const m = moe as MoE | undefined;
    const tensors = [...all, ...(m ? m.namedParameters().map(([, p]) => p.gpu).filter((t): t is GpuTensor => !!t) : [])];
    return {
      spec,
      dtype,
      impl: IMPL,
      pool,
      router: made.router,
      record: made.record,
      stored: made.stored,
      weightBytes: tensors.reduce((s, t) => s + t.byteLength, 0),
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
 * The routing indices [T, k] the layer's router gives for `x` (run on its
 * own, outside the timed forwards), to count the experts a batch hits.
 * @example `const idx = await routingOf(ctx, layer, x)`
 */
export async function routingOf(ctx: GpuContext, layer: GpuLayer, x: GpuTensor, rec: Recorder): Promise<Uint32Array> {
  const r = layer.router;
  const logits = linearGpu(ctx, rec, x, r.w, { bias: r.bias, pool: layer.pool });
  const routing = routerGpu(ctx, rec, logits, r.params, { pool: layer.pool, correctionBias: r.correctionBias });
  rec.submit();
  try {
    const t = await routing.idx.download();
    return t.data as Uint32Array;
  } finally {
    logits.destroy();
    routing.idx.destroy();
    routing.weights.destroy();
  }
}
