/**
 * What a caller of the public API gets, beside the device time: a chain of
 * layers with GPU-resident activations (per-layer `forwardGpuSync` calls,
 * and the same chain as one `MoEStack` step), and `forward(Float32Array)`
 * with host input and output.
 */
import { MoEStack, type MoE } from '@webmoe/moe';
import { GRAPH_CAPTURE_AT, type GpuContext, type GpuTensor } from '@webmoe/kernels-wgsl';
import { hostTime } from './host-cpu.js';
import { median } from './stats.js';

/** Wall and host time per layer of a chain. */
export interface ChainTimes {
  /** Wall ms per layer, issue to drain, median over the chains. */
  wallMs: number;
  /** Host us per layer to issue (no drain), median over the chains. */
  hostUs: number;
  hostClock: 'thread-cpu' | 'wall';
}

/**
 * Times `chains` chains (after GRAPH_CAPTURE_AT warm-up chains: the layers' graphs captured) of `step`, which issues
 * the whole chain from `x` and returns its output; each chain is drained
 * once at its end. `layersPerChain` divides the times.
 */
async function timeChains(ctx: GpuContext, x: GpuTensor, chains: number, layersPerChain: number, step: (x: GpuTensor) => GpuTensor): Promise<ChainTimes> {
  for (let i = 0; i < GRAPH_CAPTURE_AT; i++) step(x).destroy();
  await ctx.sync();
  const walls: number[] = [];
  const hosts: number[] = [];
  let clock: ChainTimes['hostClock'] = 'wall';
  for (let c = 0; c < chains; c++) {
    let y: GpuTensor | undefined;
    const t0 = performance.now();
    const h = hostTime(() => {
      y = step(x);
    });
    await ctx.sync();
    walls.push(performance.now() - t0);
    hosts.push(h.ms);
    clock = h.clock;
    y!.destroy();
  }
  return { wallMs: median(walls) / layersPerChain, hostUs: (median(hosts) * 1000) / layersPerChain, hostClock: clock };
}

/**
 * A chain of `n` layers (cycling over `layers`) as separate
 * `forwardGpuSync` calls (one submit each), each output destroyed once the
 * next layer has consumed it (so its buffer goes back to the output pool).
 * @example `const t = await perLayerChain(ctx, layers, 48, x, 5)`
 */
export function perLayerChain(ctx: GpuContext, layers: readonly MoE[], n: number, x: GpuTensor, chains: number): Promise<ChainTimes> {
  return timeChains(ctx, x, chains, n, (x0) => {
    let cur = x0;
    for (let i = 0; i < n; i++) {
      const y = layers[i % layers.length].forwardGpuSync(cur);
      if (cur !== x0) cur.destroy();
      cur = y;
    }
    return cur;
  });
}

/**
 * The same chain as one `MoEStack` (one captured graph, one submit per step).
 * @example `const t = await stackChain(ctx, layers, 48, x, 5)`
 */
export async function stackChain(ctx: GpuContext, layers: readonly MoE[], n: number, x: GpuTensor, chains: number): Promise<ChainTimes> {
  const stack = new MoEStack(Array.from({ length: n }, (_, i) => layers[i % layers.length]), { ownsLayers: false });
  try {
    return await timeChains(ctx, x, chains, n, (x0) => stack.forwardGpuSync(x0));
  } finally {
    stack.destroy();
  }
}

/**
 * `moe.forward(Float32Array)` (host in, host out): median wall ms per call after GRAPH_CAPTURE_AT warm-up calls; a new
 * output array per call, or (`'out'`) one the caller keeps (`forward(x, { out })`). `y`: the last call's output, for
 * the caller to check.
 * @example `const { ms, y } = await hostForwardMs(moe, x, 10, 'out')`
 */
export async function hostForwardMs(moe: MoE, x: Float32Array, iters: number, into?: 'out'): Promise<{ ms: number; y: Float32Array }> {
  const out = into ? new Float32Array(x.length) : undefined;
  let y: Float32Array = new Float32Array(0);
  for (let i = 0; i < GRAPH_CAPTURE_AT; i++) y = await moe.forward(x, { out });
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    y = await moe.forward(x, { out });
    ts.push(performance.now() - t0);
  }
  return { ms: median(ts), y };
}

/**
 * Throws unless `got` (a host forward's output) holds the bits of `want` (the same forward on GPU-resident data): the
 * wall columns are published only for a host path whose output was checked.
 * @example `sameBits('forward(Float32Array)', y, want)`
 */
export function sameBits(what: string, got: Float32Array, want: Float32Array): void {
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} values, the device path ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${what}: value ${i} is ${got[i]}, the device path's ${want[i]}`);
  }
}
