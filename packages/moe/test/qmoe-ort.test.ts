// Independent check of the int4 / int8 experts: onnxruntime-node's CPU execution provider runs com.microsoft.QMoE
// (block-wise int weights with zero point 2^(bits-1), f16 activations, top-k-then-softmax routing, interleaved
// SwiGLU with limit 7 and alpha 1.702 = GPT-OSS's swigluoai) on the same packed codes, scales and biases as our layer.
//
// Tolerance (relative L2 of the [T, H] output): 2e-3. QMoE computes with float16 activations: the input and router
// logits it gets, fc1's output, the activation, fc2's output and the weighted sum are each rounded to f16 (unit
// roundoff u = 2^-11 = 4.9e-4), while our layer keeps f32 throughout (the input is the same f16-rounded x; weights,
// scales and biases are bit-identical). Those few independent roundings give about u in relative L2 (measured here:
// 3.0e-4 int4, 3.6e-4 int8); 2e-3 = 4u bounds it, while a wrong weight layout, nibble order, zero point or scale block
// gives errors of order 1, and skipping quantisation altogether (the dense f32 layer) is also rejected (checked below).
import { describe, it, expect, beforeAll } from 'vitest';
import { createRequire } from 'node:module';
import { DeviceRef, HostTensor, fromFloat32, toFloat32 } from '@webmoe/tensor';
import { GpuTensor, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, peerRequired, initializer, model, node, valueInfo } from '@webmoe/kernels-wgsl/testing';
import { MoE, TopKSoftmaxGate, quantize, type MoEQuantConfig } from '../src/index.js';
import { relErr } from './helpers.js';

interface OrtApi {
  InferenceSession: { create(b: Uint8Array, o: unknown): Promise<{ run(f: Record<string, unknown>): Promise<Record<string, { data: ArrayLike<number> }>>; release(): Promise<void> }> };
  Tensor: new (t: string, d: ArrayBufferView, dims: number[]) => unknown;
}
let ort: OrtApi | undefined;
let ortError = '';
try {
  ort = createRequire(import.meta.url)('onnxruntime-node') as OrtApi;
} catch (e) {
  ortError = (e as Error).message.split('\n')[0];
}

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s / 4294967296) * 2 - 1;
  };
}
const rand = (r: () => number, n: number, scale: number) => Float32Array.from({ length: n }, () => r() * scale);
const f16 = (a: Float32Array) => fromFloat32('float16', a) as Uint16Array;
const viaF16 = (a: Float32Array) => toFloat32('float16', f16(a)) as Float32Array;

const T0 = 48, H = 64, I = 64, E = 8, K = 2, BLOCK = 32;
const ALPHA = 1.702, LIMIT = 7;

/** A GPT-OSS-style dense f32 layer (biases f16-representable) and f16-rounded tokens with a clear top-k margin. */
function setup(seed: number) {
  const r = rng(seed);
  const wr = rand(r, E * H, 0.6);
  const br = rand(r, E, 0.3);
  const gu = rand(r, E * 2 * I * H, 1 / Math.sqrt(H));
  const dn = rand(r, E * H * I, 1 / Math.sqrt(I));
  const b1 = viaF16(rand(r, E * 2 * I, 0.1));
  const b2 = viaF16(rand(r, E * H, 0.1));
  const xs = viaF16(rand(r, T0 * H, 1));
  // Keep tokens whose k-th and (k+1)-th logits differ by > 0.05 (f16 rounding of the logits is < 0.01 here).
  const keep: number[] = [];
  for (let t = 0; t < T0; t++) {
    const l = Array.from({ length: E }, (_, e) => {
      let s = br[e];
      for (let h = 0; h < H; h++) s += xs[t * H + h] * wr[e * H + h];
      return s;
    }).sort((a, b) => b - a);
    if (l[K - 1] - l[K] > 0.05) keep.push(t);
  }
  const T = keep.length;
  const x = new Float32Array(T * H);
  keep.forEach((t, i) => x.set(xs.subarray(t * H, t * H + H), i * H));
  const logits = new Float32Array(T * E);
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) {
    let s = br[e];
    for (let h = 0; h < H; h++) s += x[t * H + h] * wr[e * H + h];
    logits[t * E + e] = s;
  }
  const opts = {
    hiddenDim: H, numExperts: E, numExpertsPerToken: K, moeDim: I, gateCls: TopKSoftmaxGate, hasExpertBias: true,
    expertActivation: { kind: 'swigluoai', limit: LIMIT, alpha: ALPHA, layout: 'interleaved' } as const,
  };
  const sd = {
    'gate.weight': HostTensor.fromFloat32([E, H], wr),
    'gate.bias': HostTensor.fromFloat32([E], br),
    'experts.gate_up_proj': HostTensor.fromFloat32([E, 2 * I, H], gu),
    'experts.down_proj': HostTensor.fromFloat32([E, H, I], dn),
    'experts.gate_up_proj_bias': HostTensor.fromFloat32([E, 2 * I], b1),
    'experts.down_proj_bias': HostTensor.fromFloat32([E, H], b2),
  };
  return { T, x, logits, b1, b2, opts, sd };
}

async function runQMoE(bits: 4 | 8, layer: MoE, s: ReturnType<typeof setup>): Promise<Float32Array> {
  const st = layer.stacked;
  const w1 = (st as unknown as { gateUpProj: { value: HostTensor } }).gateUpProj.value;
  const w2 = st.downProj.value;
  const s1 = (st as unknown as { gateUpScale: { value: HostTensor } }).gateUpScale.value;
  const s2 = (st as unknown as { downScale: { value: HostTensor } }).downScale.value;
  expect(w1.dtype).toBe('uint8');
  expect(s1.dtype).toBe('float16');
  expect(w1.shape).toEqual([E, 2 * I, (H * bits) / 8]);
  expect(s1.shape).toEqual([E, 2 * I, H / BLOCK]);
  const bytes = model({
    opsets: { '': 17, 'com.microsoft': 1 },
    nodes: [
      node('QMoE', ['input', 'router_probs', 'fc1_w', 'fc1_s', 'fc1_b', 'fc2_w', 'fc2_s', 'fc2_b'], ['output'], {
        activation_type: 'swiglu', swiglu_fusion: 1, k: K, normalize_routing_weights: 1, expert_weight_bits: bits, block_size: BLOCK,
        activation_alpha: { float: ALPHA }, activation_beta: { float: 1 }, swiglu_limit: { float: LIMIT },
      }, 'com.microsoft'),
    ],
    inputs: [valueInfo('input', 'float16', [s.T, H]), valueInfo('router_probs', 'float16', [s.T, E])],
    outputs: [valueInfo('output', 'float16', [s.T, H])],
    initializers: [
      initializer('fc1_w', 'uint8', w1.shape as number[], w1.data), initializer('fc1_s', 'float16', s1.shape as number[], s1.data), initializer('fc1_b', 'float16', [E, 2 * I], f16(s.b1)),
      initializer('fc2_w', 'uint8', w2.shape as number[], w2.data), initializer('fc2_s', 'float16', s2.shape as number[], s2.data), initializer('fc2_b', 'float16', [E, H], f16(s.b2)),
    ],
  });
  const sess = await ort!.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const out = await sess.run({ input: new ort!.Tensor('float16', f16(s.x), [s.T, H]), router_probs: new ort!.Tensor('float16', f16(s.logits), [s.T, E]) });
    const y = out.output.data as unknown as Uint16Array;
    return toFloat32('float16', y instanceof Uint16Array ? y : Uint16Array.from(y)) as Float32Array;
  } finally {
    await sess.release();
  }
}

describe('int4 / int8 experts vs onnxruntime-node QMoE (CPU EP)', () => {
  for (const bits of [4, 8] as const) {
    it(`int${bits}, block ${BLOCK}: our CPU and GPU layers match QMoE within 2e-3 (f16 activations)`, async (c) => {
      if (!ort) {
        if (await peerRequired('onnxruntime-node', import.meta.url)) throw new Error(`onnxruntime-node is installed but cannot load (it is a devDependency of @webmoe/moe): ${ortError}`);
        return c.skip(`onnxruntime-node cannot load: ${ortError}`);
      }
      const s = setup(100 + bits);
      expect(s.T).toBeGreaterThanOrEqual(16);
      const fmt: MoEQuantConfig = { format: bits === 4 ? 'int4' : 'int8', blockSize: BLOCK, scaleDtype: 'float16' };
      const dense = new MoE(s.opts);
      dense.loadStateDict(s.sd);
      const q = quantize(dense, fmt);
      const yOrt = await runQMoE(bits, q, s);
      const yCpu = await q.forward(s.x);
      const errCpu = relErr(yCpu, yOrt);
      console.log(`[qmoe-ort] int${bits} T=${s.T}: CPU vs QMoE rel L2 ${errCpu.toExponential(2)}`);
      expect(errCpu, `CPU vs QMoE rel err ${errCpu}`).toBeLessThan(2e-3);
      // The check has teeth: the dense f32 layer (no quantisation) is far from QMoE's int result.
      const yDense = await dense.forward(s.x);
      expect(relErr(yDense, yOrt)).toBeGreaterThan(bits === 4 ? 2e-2 : 4e-3);
      if (!ctx) return c.skip('GPU half: no WebGPU adapter (CPU half passed)');
      const g = new MoE({ ...s.opts, devices: [DeviceRef.GPU()], ctx, quantConfig: fmt });
      try {
        g.loadStateDict(q.stateDict()); // the same packed codes and f16 scales, uploaded as they are
        const yGpu = await gpuChecked(ctx, async () => {
          const xg = GpuTensor.upload(ctx!, new HostTensor('float32', [s.T, H], s.x));
          const out = await g.forward(xg);
          const h = (await out.download()).data as Float32Array;
          xg.destroy();
          out.destroy();
          return h;
        });
        const errGpu = relErr(yGpu, yOrt);
        console.log(`[qmoe-ort] int${bits}: GPU vs QMoE rel L2 ${errGpu.toExponential(2)}`);
        expect(errGpu, `GPU vs QMoE rel err ${errGpu}`).toBeLessThan(2e-3);
        expect(relErr(yGpu, yCpu)).toBeLessThan(1e-5);
      } finally {
        g.destroy();
      }
    });
  }
});
