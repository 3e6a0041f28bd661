// Plain float64 references of the nn modules, written from their definitions (y = x W^T + b; MLP
// down(act(gate x, up x))); they share no code with @webmoe/nn or @webmoe/kernels-wgsl.
import { HostTensor, type DType } from '@webmoe/tensor';
import { rng } from '@webmoe/kernels-wgsl/testing';

/** y [T, N] = x [T, K] @ W^T (W [N, K]) + b. */
export function linear64(x: ArrayLike<number>, T: number, W: ArrayLike<number>, N: number, K: number, b?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[t * K + k] * W[n * K + k];
      y[t * N + n] = s;
    }
  return y;
}

export type Act = { kind: 'silu' } | { kind: 'swiglu_limit'; limit: number };

/** The gated activation. */
export function act64(a: Act, g: number, u: number): number {
  const s = g / (1 + Math.exp(-g));
  if (a.kind === 'silu') return s * u;
  return Math.min(s, a.limit) * Math.min(Math.max(u, -a.limit), a.limit);
}

export interface MlpWeights {
  gate: Float32Array; // [I, H]
  up: Float32Array; // [I, H]
  down: Float32Array; // [H, I]
  gateB?: Float32Array;
  upB?: Float32Array;
  downB?: Float32Array;
}

/** down(act(gate x + bg, up x + bu)) + bd for x [T, H]. */
export function mlp64(x: ArrayLike<number>, T: number, H: number, I: number, w: MlpWeights, a: Act): Float64Array {
  const g = linear64(x, T, w.gate, I, H, w.gateB);
  const u = linear64(x, T, w.up, I, H, w.upB);
  const h = g.map((v, i) => act64(a, v, u[i]));
  return linear64(h, T, w.down, H, I, w.downB);
}

/** Relative L2 error (float64 sums): kernels-wgsl's testing helper. */
export { relErr as relErr64 } from '@webmoe/kernels-wgsl/testing';

/** Random values in [-1, 1) rounded to `dtype`: the tensor and its exact values. */
export function randomTensor(r: () => number, shape: number[], dtype: DType, scale = 1): { t: HostTensor; v: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = HostTensor.fromFloat32(shape, Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), dtype);
  return { t, v: t.toFloat32() };
}

/** Random MLP weights (state dict and values) for [H, I] with optional biases. */
export function randomMlp(seed: number, H: number, I: number, dtype: DType, bias: boolean): { sd: Record<string, HostTensor>; w: MlpWeights } {
  const r = rng(seed);
  const sd: Record<string, HostTensor> = {};
  const put = (name: string, shape: number[], scale: number) => {
    const { t, v } = randomTensor(r, shape, dtype, scale);
    sd[name] = t;
    return v;
  };
  const w: MlpWeights = {
    gate: put('gate_proj.weight', [I, H], 2 / Math.sqrt(H)),
    up: put('up_proj.weight', [I, H], 2 / Math.sqrt(H)),
    down: put('down_proj.weight', [H, I], 2 / Math.sqrt(I)),
  };
  if (bias) {
    w.gateB = put('gate_proj.bias', [I], 0.3);
    w.upB = put('up_proj.bias', [I], 0.3);
    w.downB = put('down_proj.bias', [H], 0.3);
  }
  return { sd, w };
}

/** Odd and edge sizes for randomized tests. */
export const ODD_SIZES: readonly [T: number, K: number, N: number][] = [[1, 1, 1], [1, 7, 3], [3, 5, 11], [13, 33, 17], [2, 64, 9]];
