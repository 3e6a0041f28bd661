/**
 * The MoE forward the bench times, behind one function: `runMoE(ctx, layer,
 * rec, x)` records one forward of the layer into a Recorder.
 *
 * Implementations, best first (the first whose pieces exist is used; the
 * row's `impl` says which):
 * - `kernels`: the layer's kernel chain per docs/KERNEL-API.md (linearGpu
 *   router logits, routerGpu, groupGpu, groupedGateUpGpu, groupedDownGpu,
 *   combineGpu, shared experts through denseGroupingGpu).
 * - `gemv-standin`: until routing and grouping kernels exist: routing drawn
 *   uniformly at random on the host (seeded), grouped on the host, the
 *   expert GEMVs (gemvGateUpGpu, gemvDownGpu) on the GPU; no router matmul,
 *   no combine. Labelled as such in every output.
 */
import * as K from '@webmoe/kernels-wgsl';
import {
  BufferPool,
  GpuTensor,
  type ExpertActivation,
  type ExpertWeightsGpu,
  type GpuContext,
  type GroupingGpu,
  type Recorder,
  type RouterParams,
  type RoutingGpu,
} from '@webmoe/kernels-wgsl';
import { randomGpuTensor } from './fill.js';
import { storageDtype, type BenchDtype, type ModelSpec } from './models.js';
import { hash32 } from './fill.js';

type Opts = { pool?: BufferPool };
/** The kernel chain of docs/KERNEL-API.md, looked up by name so the bench builds before every kernel has landed. */
interface KernelOps {
  linearGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, w: GpuTensor, bias: GpuTensor | undefined, opts: Opts): GpuTensor;
  routerGpu(ctx: GpuContext, rec: Recorder, logits: GpuTensor, params: RouterParams, opts: Opts & { correctionBias?: GpuTensor }): RoutingGpu;
  groupGpu(ctx: GpuContext, rec: Recorder, idx: GpuTensor, E: number, opts: Opts): GroupingGpu;
  groupedGateUpGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, g: GroupingGpu, w: ExpertWeightsGpu, bias: GpuTensor | undefined, act: ExpertActivation, opts: Opts): GpuTensor;
  groupedDownGpu(ctx: GpuContext, rec: Recorder, h: GpuTensor, g: GroupingGpu, w: ExpertWeightsGpu, bias: GpuTensor | undefined, opts: Opts): GpuTensor;
  combineGpu(ctx: GpuContext, rec: Recorder, y: GpuTensor, g: GroupingGpu, weights: GpuTensor | null, opts: Opts & { shared?: GpuTensor }): GpuTensor;
  denseGroupingGpu(ctx: GpuContext, rec: Recorder, T: number, opts: Opts): GroupingGpu;
}

const CHAIN = ['linearGpu', 'routerGpu', 'groupGpu', 'groupedGateUpGpu', 'groupedDownGpu', 'combineGpu', 'denseGroupingGpu'] as const;

/** Which kernel-chain functions are missing from @webmoe/kernels-wgsl (empty when the full chain has landed). */
export function missingKernels(): string[] {
  const k = K as unknown as Record<string, unknown>;
  return CHAIN.filter((n) => typeof k[n] !== 'function');
}

/** The implementation `createLayer` will use. */
export function chosenImpl(): 'kernels' | 'gemv-standin' {
  return missingKernels().length === 0 ? 'kernels' : 'gemv-standin';
}

/** A layer with random weights on the GPU, ready to time. */
export interface GpuLayer {
  spec: ModelSpec;
  dtype: BenchDtype;
  impl: 'kernels' | 'gemv-standin';
  pool: BufferPool;
  /** Bytes of all weights on the device. */
  weightBytes: number;
  /** Frees every weight and the pool. */
  destroy(): void;
  /** @internal */
  w: LayerWeights;
}

interface LayerWeights {
  router: GpuTensor;
  routerBias?: GpuTensor;
  correctionBias?: GpuTensor;
  gateUp: ExpertWeightsGpu;
  down: ExpertWeightsGpu;
  gateUpBias?: GpuTensor;
  downBias?: GpuTensor;
  sharedGateUp?: ExpertWeightsGpu;
  sharedDown?: ExpertWeightsGpu;
  all: GpuTensor[];
}

function expertWeights(ctx: GpuContext, dtype: BenchDtype, E: number, rows: number, cols: number, seed: number, all: GpuTensor[], label: string): ExpertWeightsGpu {
  if (dtype === 'fp8') {
    const q = randomGpuTensor(ctx, 'float8_e4m3fn', [E, rows, cols], seed, 'e4m3', label);
    const scaleInv = randomGpuTensor(ctx, 'float32', [E, Math.ceil(rows / 128), Math.ceil(cols / 128)], seed + 1, 'scale', `${label}.scale_inv`);
    all.push(q, scaleInv);
    return { kind: 'fp8_block', q, scaleInv, block: [128, 128] };
  }
  const w = randomGpuTensor(ctx, storageDtype(dtype), [E, rows, cols], seed, undefined, label);
  all.push(w);
  return { kind: 'dense', w };
}

/**
 * Allocates the layer's weights on the GPU (random, generated on the GPU in
 * their storage dtype) and waits until they are written.
 * @example `const layer = await createLayer(ctx, findModel('qwen3-30b-a3b'), 'bf16')`
 */
export async function createLayer(ctx: GpuContext, spec: ModelSpec, dtype: BenchDtype): Promise<GpuLayer> {
  const { H, I, E, shared } = spec;
  const all: GpuTensor[] = [];
  const wd = dtype === 'fp8' ? 'bfloat16' : storageDtype(dtype);
  try {
    const w: LayerWeights = await ctx.checked(`weights of ${spec.name} ${dtype}`, () => {
      const router = randomGpuTensor(ctx, wd, [E, H], 11, undefined, 'router');
      all.push(router);
      const lw: LayerWeights = {
        router,
        gateUp: expertWeights(ctx, dtype, E, 2 * I, H, 21, all, 'experts.gate_up'),
        down: expertWeights(ctx, dtype, E, H, I, 31, all, 'experts.down'),
        all,
      };
      if (spec.bias) {
        all.push((lw.routerBias = randomGpuTensor(ctx, 'float32', [E], 12, 'f32', 'router.bias')));
        all.push((lw.gateUpBias = randomGpuTensor(ctx, 'bfloat16', [E, 2 * I], 22, 'bf16', 'experts.gate_up.bias')));
        all.push((lw.downBias = randomGpuTensor(ctx, 'bfloat16', [E, H], 32, 'bf16', 'experts.down.bias')));
      }
      if (spec.router.kind === 'sigmoid_grouped') all.push((lw.correctionBias = randomGpuTensor(ctx, 'float32', [E], 13, 'f32', 'router.correction_bias')));
      if (shared) {
        lw.sharedGateUp = expertWeights(ctx, dtype, 1, 2 * shared * I, H, 41, all, 'shared.gate_up');
        lw.sharedDown = expertWeights(ctx, dtype, 1, H, shared * I, 51, all, 'shared.down');
      }
      return lw;
    });
    await ctx.sync();
    const pool = new BufferPool(ctx, { maxFreeBytes: 1 << 30 });
    return {
      spec,
      dtype,
      impl: chosenImpl(),
      pool,
      weightBytes: all.reduce((s, t) => s + t.byteLength, 0),
      w,
      destroy() {
        for (const t of all) t.destroy();
        pool.destroy();
      },
    };
  } catch (e) {
    for (const t of all) t.destroy();
    throw e;
  }
}

/** One recorded forward: the output, the routing indices, and the intermediates to free after submit. */
export interface Forward {
  out: GpuTensor;
  /** uint32 [T, k] routing indices (for counting the experts hit). */
  idx: GpuTensor;
  /** Frees intermediates and the output (call after submit, once the output is no longer needed). */
  release(): void;
}

/** Host grouping of routing indices (counting sort by expert). */
function hostGrouping(idx: Uint32Array, T: number, k: number, E: number) {
  const counts = new Uint32Array(E);
  for (const e of idx) counts[e]++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const fill = offsets.slice(0, E);
  const order = new Uint32Array(T * k);
  const position = new Uint32Array(T * k);
  for (let p = 0; p < T * k; p++) {
    const r = fill[idx[p]]++;
    order[r] = p;
    position[p] = r;
  }
  return { counts, offsets, order, position };
}

/**
 * Uniform random routing: each token picks k distinct experts (seeded).
 * @example `uniformRouting(4, 2, 8, 1).length // 8`
 */
export function uniformRouting(T: number, k: number, E: number, seed: number): Uint32Array {
  const idx = new Uint32Array(T * k);
  let s = seed >>> 0;
  for (let t = 0; t < T; t++) {
    const picked = new Set<number>();
    while (picked.size < k) {
      s = hash32(s + 0x9e3779b9);
      picked.add(s % E);
    }
    idx.set([...picked], t * k);
  }
  return idx;
}

function u32Tensor(ctx: GpuContext, data: Uint32Array, label: string): GpuTensor {
  const t = GpuTensor.empty(ctx, 'uint32', [data.length], label);
  ctx.device.queue.writeBuffer(t.buffer, 0, data as Uint32Array<ArrayBuffer>);
  return t;
}

const standinGroupings = new WeakMap<GpuLayer, Map<number, { g: GroupingGpu; idx: GpuTensor }>>();

function standinGrouping(ctx: GpuContext, layer: GpuLayer, T: number): { g: GroupingGpu; idx: GpuTensor } {
  let m = standinGroupings.get(layer);
  if (!m) standinGroupings.set(layer, (m = new Map()));
  let r = m.get(T);
  if (!r) {
    const { k, E } = layer.spec;
    const idxHost = uniformRouting(T, k, E, 1234 + T);
    const h = hostGrouping(idxHost, T, k, E);
    const parts = [u32Tensor(ctx, h.counts, 'counts'), u32Tensor(ctx, h.offsets, 'offsets'), u32Tensor(ctx, h.order, 'order'), u32Tensor(ctx, h.position, 'position')];
    const idx = u32Tensor(ctx, idxHost, 'idx');
    const g: GroupingGpu = { T, k, E, counts: parts[0], offsets: parts[1], order: parts[2], position: parts[3], destroy: () => parts.forEach((p) => p.destroy()) };
    r = { g, idx };
    m.set(T, r);
    const prev = layer.destroy;
    layer.destroy = () => {
      g.destroy();
      idx.destroy();
      prev();
    };
  }
  return r;
}

/**
 * Records one forward of `layer` on `x` (f32 [T, H]) into `rec`. The
 * returned output belongs to the caller: `release()` after submit.
 * @example
 * ```ts
 * const rec = new Recorder(ctx); const f = runMoE(ctx, layer, rec, x); rec.submit(); await ctx.sync(); f.release();
 * ```
 */
export function runMoE(ctx: GpuContext, layer: GpuLayer, rec: Recorder, x: GpuTensor): Forward {
  const T = x.shape[0];
  const { spec, w, pool } = layer;
  const opts = { pool };
  if (layer.impl === 'gemv-standin') {
    const { g, idx } = standinGrouping(ctx, layer, T);
    const h = K.gemvGateUpGpu(ctx, rec, x, g, w.gateUp, spec.act, { pool, bias: w.gateUpBias });
    const y = K.gemvDownGpu(ctx, rec, h, g, w.down, { pool, bias: w.downBias });
    return { out: y, idx, release: () => { h.destroy(); y.destroy(); } };
  }
  const ops = K as unknown as KernelOps;
  const temps: { destroy(): void }[] = [];
  const logits = ops.linearGpu(ctx, rec, x, w.router, w.routerBias, opts);
  const routing = ops.routerGpu(ctx, rec, logits, spec.router, { pool, correctionBias: w.correctionBias });
  const g = ops.groupGpu(ctx, rec, routing.idx, spec.E, opts);
  const h = ops.groupedGateUpGpu(ctx, rec, x, g, w.gateUp, w.gateUpBias, spec.act, opts);
  const y = ops.groupedDownGpu(ctx, rec, h, g, w.down, w.downBias, opts);
  temps.push(logits, routing.weights, g, h, y);
  let shared: GpuTensor | undefined;
  if (w.sharedGateUp && w.sharedDown) {
    const gs = ops.denseGroupingGpu(ctx, rec, T, opts);
    const hs = ops.groupedGateUpGpu(ctx, rec, x, gs, w.sharedGateUp, undefined, { kind: 'silu', layout: 'concat' }, opts);
    shared = ops.groupedDownGpu(ctx, rec, hs, gs, w.sharedDown, undefined, opts);
    temps.push(gs, hs, shared);
  }
  const out = ops.combineGpu(ctx, rec, y, g, routing.weights, { pool, shared });
  return {
    out,
    idx: routing.idx,
    release: () => {
      for (const t of temps) t.destroy();
      routing.idx.destroy();
      out.destroy();
    },
  };
}
