/**
 * The peer: onnxruntime-node's WebGPU execution provider running
 * `com.microsoft.QMoE` (int4 block-wise experts, f16 activations, softmax
 * top-k routing, SwiGLU) on the same shapes. onnxruntime-node is not a
 * dependency of the project: it is imported dynamically, and a missing
 * package gives a clear message instead of a result.
 */
import { randomWords } from './fill.js';
import { expectedDistinctExperts, gbps, tflops } from './metrics.js';
import { findModel, type ModelSpec } from './models.js';
import { initializer, model, node, valueInfo } from '@webmoe/kernels-wgsl/testing';
import type { ResultRow } from './schema.js';
import { summarize, warmUp } from './stats.js';

/** The part of onnxruntime-node's API the peer uses. */
interface Ort {
  InferenceSession: { create(bytes: Uint8Array, opts: unknown): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>; release(): Promise<void> }> };
  Tensor: new (type: string, data: ArrayBufferView, dims: number[]) => unknown;
}

/** Thrown when onnxruntime-node cannot be imported. */
export class PeerMissingError extends Error {
  constructor(cause: string) {
    super(
      `--peer onnxruntime: could not import 'onnxruntime-node' (${cause}). It is not a dependency of this project; ` +
        `install it next to the bench (npm install --no-save onnxruntime-node@1.30.0), or on the GPU machine build the kit with WITH_ORT=1 (see apps/bench/README.md).`,
    );
    this.name = 'PeerMissingError';
  }
}

/** Imports onnxruntime-node, or throws PeerMissingError. */
export async function loadOrt(): Promise<Ort> {
  const name = 'onnxruntime-node';
  try {
    const m = (await import(/* @vite-ignore */ name)) as Ort & { default?: Ort };
    return m.InferenceSession ? m : (m.default as Ort);
  } catch (e) {
    throw new PeerMissingError((e as Error).message.split('\n')[0]);
  }
}

const BITS = 4;
const BLOCK = 32;
const F16_SCALE = 0x1419; // ~0.001

/** Bytes of the int4 QMoE weights (codes + f16 scales) of `hit` experts. */
export function qmoeWeightBytes(spec: ModelSpec, hit: number): number {
  const { H, I } = spec;
  const codes = (3 * H * I * BITS) / 8;
  const scales = (2 * I * Math.ceil(H / BLOCK) + H * Math.ceil(I / BLOCK)) * 2;
  return hit * (codes + scales + (2 * I + H) * 2);
}

function qmoeModel(spec: ModelSpec): Uint8Array {
  const { H, I, E, k } = spec;
  if (H % BLOCK || I % BLOCK) throw new Error(`QMoE needs H and I multiples of ${BLOCK} (H=${H}, I=${I})`);
  const codes1 = E * 2 * I * (H / 2);
  const codes2 = E * H * (I / 2);
  if (codes1 + codes2 > 1.9e9) throw new Error(`the int4 graph of ${spec.name} (${((codes1 + codes2) / 1e9).toFixed(1)} GB) exceeds the 2 GB protobuf limit`);
  const u8 = (n: number, seed: number) => new Uint8Array(randomWords('e4m3', n, seed).buffer, 0, n).map((b, i) => b ^ (i * 0x45));
  const f16s = (n: number, v: number) => new Uint16Array(n).fill(v);
  const attrs = {
    activation_type: 'swiglu', swiglu_fusion: 1, k, normalize_routing_weights: 1, expert_weight_bits: BITS, block_size: BLOCK,
    activation_alpha: { float: 1.702 }, activation_beta: { float: 1.0 }, swiglu_limit: { float: 7.0 },
  };
  return model({
    opsets: { '': 17, 'com.microsoft': 1 },
    nodes: [node('QMoE', ['input', 'router_probs', 'fc1_w', 'fc1_s', 'fc1_b', 'fc2_w', 'fc2_s', 'fc2_b'], ['output'], attrs, 'com.microsoft')],
    inputs: [valueInfo('input', 'float16', ['T', H]), valueInfo('router_probs', 'float16', ['T', E])],
    outputs: [valueInfo('output', 'float16', ['T', H])],
    initializers: [
      initializer('fc1_w', 'uint8', [E, 2 * I, H / 2], u8(codes1, 3)),
      initializer('fc1_s', 'float16', [E, 2 * I, H / BLOCK], f16s(E * 2 * I * (H / BLOCK), F16_SCALE)),
      initializer('fc1_b', 'float16', [E, 2 * I], f16s(E * 2 * I, 0)),
      initializer('fc2_w', 'uint8', [E, H, I / 2], u8(codes2, 6)),
      initializer('fc2_s', 'float16', [E, H, I / BLOCK], f16s(E * H * (I / BLOCK), F16_SCALE)),
      initializer('fc2_b', 'float16', [E, H], f16s(E * H, 0)),
    ],
  });
}

function f16Inputs(n: number, seed: number): Uint16Array {
  return new Uint16Array(randomWords('f16', n, seed).buffer, 0, n);
}

/**
 * Times QMoE on each model and token count with the WebGPU EP (no CPU
 * fallback). Rows have dtype 'int4', impl 'ort-qmoe', wall timing of
 * session.run (host transfers of x and y included).
 * @example `const rows = await runOrtPeer(['qwen3-30b-a3b'], [1, 16], 10, 2, 4000)`
 */
export async function runOrtPeer(models: string[], tokens: number[], iters: number, warmup: number, warmupMs: number, copyGBps: number, log: (s: string) => void = () => {}): Promise<ResultRow[]> {
  const ort = await loadOrt();
  const rows: ResultRow[] = [];
  const device = 'onnxruntime-node WebGPU EP';
  for (const id of models) {
    const spec = findModel(id);
    const fail = (T: number, e: unknown): ResultRow => ({ model: spec.name, tokens: T, dtype: 'int4', device, impl: 'ort-qmoe', medianMs: NaN, p10Ms: NaN, p90Ms: NaN, gbps: NaN, tflops: NaN, kernels: [], error: String((e as Error)?.message ?? e).slice(0, 300) });
    let sess: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
    try {
      log(`ort peer: building ${spec.name}`);
      const bytes = qmoeModel(spec);
      sess = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'], logSeverityLevel: 3, extra: { session: { disable_cpu_ep_fallback: '1' } } });
    } catch (e) {
      for (const T of tokens) rows.push(fail(T, e));
      continue;
    }
    for (const T of tokens) {
      try {
        const feeds = {
          input: new ort.Tensor('float16', f16Inputs(T * spec.H, 9 + T), [T, spec.H]),
          router_probs: new ort.Tensor('float16', f16Inputs(T * spec.E, 10 + T), [T, spec.E]),
        };
        await warmUp(Math.max(1, warmup), warmupMs, async () => { await sess.run(feeds); });
        const ts: number[] = [];
        for (let i = 0; i < iters; i++) {
          const t0 = performance.now();
          await sess.run(feeds);
          ts.push(performance.now() - t0);
        }
        const s = summarize(ts);
        const hit = expectedDistinctExperts(spec.E, spec.k, T);
        const bytes = qmoeWeightBytes(spec, hit) + 2 * T * spec.H * 2 + T * spec.E * 2;
        const flops = 2 * T * spec.k * 3 * spec.H * spec.I;
        rows.push({
          model: spec.name, tokens: T, dtype: 'int4', device, impl: 'ort-qmoe', medianMs: s.median, p10Ms: s.p10, p90Ms: s.p90, minMs: s.min, maxMs: s.max,
          timing: 'wall', wallHostMs: s.median, gbps: gbps(bytes, s.median), tflops: tflops(flops, s.median), copyRatio: gbps(bytes, s.median) / copyGBps, bytes, flops, intensity: flops / bytes,
          expertsHit: hit, expertsHitSource: 'expected-uniform', floorMs: bytes / copyGBps / 1e6, kernels: [],
          note: `onnxruntime-node QMoE int4 (block 32), softmax top-k routing, swiglu${spec.shared ? ', no shared experts' : ''}; wall time of session.run including host I/O (wallHostMs; GPU-resident I/O binding not measured)`,
        });
      } catch (e) {
        rows.push(fail(T, e));
      }
    }
    await sess.release();
  }
  return rows;
}
