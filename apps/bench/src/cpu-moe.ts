/**
 * The CPU device: the MoE forward in plain TypeScript (the reference path,
 * used where no WebGPU adapter exists). Weights are random, generated in
 * their storage type (the same bit patterns as on the GPU) and decoded row
 * by row while the forward runs; activations are f32.
 */
import { randomWords, type FillKind } from './fill.js';
import { INT_BLOCK, isPacked, type BenchDtype, type ModelSpec } from './models.js';

/** A layer on the host. */
export interface CpuLayer {
  spec: ModelSpec;
  dtype: BenchDtype;
  router: Float32Array;
  /** Routed experts in their storage words (codes of packed dtypes). */
  gateUp: Uint32Array;
  down: Uint32Array;
  /** Scale words of fp8 (f32 per 128x128 block), int4/int8 (f16) and mxfp4 (e8m0) experts. */
  gateUpScales?: Uint32Array;
  downScales?: Uint32Array;
  sharedGateUp?: Uint32Array;
  sharedDown?: Uint32Array;
  routerBias?: Float32Array;
  correctionBias?: Float32Array;
  /** [E, 2I] and [E, H] (GPT-OSS), decoded to f32. */
  gateUpBias?: Float32Array;
  downBias?: Float32Array;
}

function decodeAll(kind: FillKind, n: number, seed: number): Float32Array {
  const w = randomWords(kind, n, seed);
  const dec = decoder(kind, w);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dec(i);
  return out;
}

/** Packed rows keep the router and shared experts in bf16 (as the GPU paths). */
function sharedKind(d: BenchDtype): FillKind {
  return isPacked(d) ? 'bf16' : (d as FillKind);
}

/** Fill kinds of a dtype's routed-expert codes and scales (the GPU's, moe-run.ts randomExpertWeights). */
function expertKinds(d: BenchDtype): { codes: FillKind; scales?: FillKind } {
  switch (d) {
    case 'fp8': return { codes: 'e4m3', scales: 'scale' };
    case 'int4': return { codes: 'u8', scales: 'i4scale' };
    case 'int8': return { codes: 'u8', scales: 'i8scale' };
    case 'mxfp4': return { codes: 'u8', scales: 'e8m0' };
    default: return { codes: d };
  }
}

/** Storage bytes of the codes of [E, rows, cols] and the number of scales. */
function expertSizes(d: BenchDtype, E: number, rows: number, cols: number): { codes: number; scales: number } {
  const n = E * rows * cols;
  switch (d) {
    case 'int4': return { codes: n / 2, scales: E * rows * Math.ceil(cols / INT_BLOCK) };
    case 'int8': return { codes: n, scales: E * rows * Math.ceil(cols / INT_BLOCK) };
    case 'mxfp4': return { codes: n / 2, scales: n / 32 };
    case 'fp8': return { codes: n, scales: E * Math.ceil(rows / FP8_BLOCK) * Math.ceil(cols / FP8_BLOCK) };
    default: return { codes: n, scales: 0 };
  }
}

/** fp8 experts: one f32 scale per FP8_BLOCK x FP8_BLOCK block of each expert matrix (as the GPU rows, `fp8_block`). */
export const FP8_BLOCK = 128;

/**
 * Random host weights of `spec` in `dtype`, the same words as the GPU's
 * (fp8 experts hold their 128x128 block scales, 2^-7 as on the GPU;
 * int4/int8/mxfp4 codes and scales from the same seeds as randomExpertWeights).
 * @example `const layer = createCpuLayer(TINY, 'bf16')`
 */
export function createCpuLayer(spec: ModelSpec, dtype: BenchDtype): CpuLayer {
  const { H, I, E, shared } = spec;
  const ek = expertKinds(dtype);
  const small = sharedKind(dtype);
  const router = decodeAll(small, E * H, 11);
  const gu = expertSizes(dtype, E, 2 * I, H);
  const dn = expertSizes(dtype, E, H, I);
  const l: CpuLayer = { spec, dtype, router, gateUp: randomWords(ek.codes, gu.codes, 21), down: randomWords(ek.codes, dn.codes, 31) };
  if (ek.scales) {
    l.gateUpScales = randomWords(ek.scales, gu.scales, 22);
    l.downScales = randomWords(ek.scales, dn.scales, 32);
  }
  if (shared) {
    l.sharedGateUp = randomWords(small, 2 * shared * I * H, 41);
    l.sharedDown = randomWords(small, H * shared * I, 51);
  }
  // the same seeds and value kinds as the GPU kernel chain (moe-run.ts), so both compute the same layer
  if (spec.bias) {
    l.routerBias = decodeAll(small, E, 12);
    l.gateUpBias = decodeAll(small, E * 2 * I, 22);
    l.downBias = decodeAll(small, E * H, 32);
  }
  if (spec.router.kind === 'sigmoid_grouped') l.correctionBias = new Float32Array(randomWords('f32', E, 13).buffer);
  return l;
}

const f32v = new Float32Array(1);
const u32v = new Uint32Array(f32v.buffer);
function bitsToF32(b: number): number {
  u32v[0] = b;
  return f32v[0];
}
function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}
function e4m3ToF32(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}

const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/**
 * Element decoder of a routed-expert tensor [E, rows, cols] in `dtype`:
 * value of flat element i = (e*rows + r)*cols + c, from the storage words of
 * its codes and scales.
 * - int4: nibble i (low nibble = even column), (code - 8) * f16 scale[e, r, c/32]
 * - int8: byte i, (code - 128) * f16 scale[e, r, c/32]
 * - mxfp4: nibble i as e2m1, * 2^(scale byte[i/32] - 127)
 * @example `expertDecoder('int4', codes, scales, cols)(0)`
 */
export function expertDecoder(dtype: BenchDtype, codes: Uint32Array, scales: Uint32Array | undefined, cols: number, rows = 0): (i: number) => number {
  const nb = Math.ceil(cols / INT_BLOCK);
  const rb = Math.ceil(rows / FP8_BLOCK);
  const cb = Math.ceil(cols / FP8_BLOCK);
  const fp8Scale = (i: number) => {
    const er = Math.floor(i / cols); // e * rows + r
    return bitsToF32(scales![Math.floor(er / rows) * rb * cb + Math.floor((er % rows) / FP8_BLOCK) * cb + Math.floor((i % cols) / FP8_BLOCK)]);
  };
  const f16At = (j: number) => f16ToF32((scales![j >>> 1] >>> ((j & 1) * 16)) & 0xffff);
  const intScale = (i: number) => f16At(Math.floor(i / cols) * nb + Math.floor((i % cols) / INT_BLOCK));
  switch (dtype) {
    case 'int4': return (i) => (((codes[i >>> 3] >>> ((i & 7) * 4)) & 15) - 8) * intScale(i);
    case 'int8': return (i) => (((codes[i >>> 2] >>> ((i & 3) * 8)) & 255) - 128) * intScale(i);
    case 'mxfp4': return (i) => FP4[(codes[i >>> 3] >>> ((i & 7) * 4)) & 15] * 2 ** (((scales![i >>> 7] >>> (((i >>> 5) & 3) * 8)) & 255) - 127);
    case 'fp8': {
      if (!(rows > 0)) throw new Error('cpu: the fp8 decoder needs the expert matrix rows (block scales)');
      const q = decoder('e4m3', codes);
      return (i) => q(i) * fp8Scale(i);
    }
    default: return decoder(expertKinds(dtype).codes, codes);
  }
}

/** Element decoder of packed words. */
function decoder(kind: FillKind, w: Uint32Array): (i: number) => number {
  switch (kind) {
    case 'f32': return (i) => bitsToF32(w[i]);
    case 'bf16': return (i) => bitsToF32(((w[i >>> 1] >>> ((i & 1) * 16)) & 0xffff) << 16);
    case 'f16': return (i) => f16ToF32((w[i >>> 1] >>> ((i & 1) * 16)) & 0xffff);
    case 'e4m3': return (i) => e4m3ToF32((w[i >>> 2] >>> ((i & 3) * 8)) & 0xff);
    case 'scale': return (i) => bitsToF32(w[i]);
    default: throw new Error(`cpu: no element decoder for ${kind}`);
  }
}

/** y[r] = sum_c x[c] * W[row0 + r, c] for r < rows; weights decoded one row at a time. */
function matvecRows(dec: (i: number) => number, base: number, rows: number, cols: number, x: Float32Array, xo: number, y: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    const o = base + r * cols;
    for (let c = 0; c < cols; c++) acc += x[xo + c] * dec(o + c);
    y[r] = acc;
  }
}

function act(spec: ModelSpec, gu: Float32Array, I: number, h: Float32Array): void {
  const a = spec.act;
  for (let i = 0; i < I; i++) {
    let g = a.layout === 'interleaved' ? gu[2 * i] : gu[i];
    let u = a.layout === 'interleaved' ? gu[2 * i + 1] : gu[I + i];
    if (a.kind === 'silu') h[i] = (g / (1 + Math.exp(-g))) * u;
    else if (a.kind === 'swiglu_limit') {
      const L = a.limit ?? 7;
      h[i] = Math.min(g / (1 + Math.exp(-g)), L) * Math.min(L, Math.max(-L, u));
    } else {
      const L = a.limit ?? 7;
      g = Math.min(g, L);
      u = Math.min(L, Math.max(-L, u));
      h[i] = (u + 1) * g * (1 / (1 + Math.exp(-(a.alpha ?? 1.702) * g)));
    }
  }
}

/** Top-k of scores (ties: lower index), in descending order. */
function topk(s: ArrayLike<number>, k: number, allowed?: (e: number) => boolean): number[] {
  const ids = Array.from({ length: s.length }, (_, i) => i).filter((e) => !allowed || allowed(e));
  ids.sort((a, b) => s[b] - s[a] || a - b);
  return ids.slice(0, k);
}

/** Routing of one token: expert ids and weights. */
export function routeToken(spec: ModelSpec, logits: Float32Array, correctionBias?: Float32Array): { idx: number[]; w: number[] } {
  const p = spec.router;
  const k = p.topK;
  switch (p.kind) {
    case 'softmax_topk': {
      const m = Math.max(...logits);
      const ex = Array.from(logits, (v) => Math.exp(v - m));
      const z = ex.reduce((a, b) => a + b, 0);
      const probs = ex.map((v) => v / z);
      const idx = topk(probs, k);
      let w = idx.map((e) => probs[e]);
      if (p.normTopkProb) {
        const s = w.reduce((a, b) => a + b, 0);
        w = w.map((v) => v / s);
      }
      return { idx, w };
    }
    case 'topk_softmax': {
      const idx = topk(logits, k);
      const m = Math.max(...idx.map((e) => logits[e]));
      const ex = idx.map((e) => Math.exp(logits[e] - m));
      const z = ex.reduce((a, b) => a + b, 0);
      return { idx, w: ex.map((v) => v / z) };
    }
    case 'sigmoid_grouped': {
      const E = logits.length;
      const s = Array.from(logits, (v) => 1 / (1 + Math.exp(-v)));
      const c = s.map((v, e) => v + (correctionBias ? correctionBias[e] : 0));
      const G = p.nGroup ?? 1;
      const per = E / G;
      const gscore = Array.from({ length: G }, (_, g) => topk(c.slice(g * per, (g + 1) * per), 2).reduce((a, i) => a + c[g * per + i], 0));
      const keep = new Set(topk(gscore, p.topkGroup ?? G));
      const idx = topk(c, k, (e) => keep.has(Math.floor(e / per)));
      let w = idx.map((e) => s[e]);
      if (p.normTopkProb) {
        const sum = w.reduce((a, b) => a + b, 0) + 1e-20;
        w = w.map((v) => v / sum);
      }
      return { idx, w: w.map((v) => v * (p.routedScalingFactor ?? 1)) };
    }
    default: {
      const idx = topk(logits, k);
      const w = idx.map((e) => (p.kind === 'sigmoid_topk' ? 1 / (1 + Math.exp(-logits[e])) : logits[e]));
      return { idx, w };
    }
  }
}

/**
 * One forward of T tokens on the host. Returns the output [T, H] and the routing indices [T, k].
 * @example `const { out } = cpuForward(layer, x, T)`
 */
export function cpuForward(l: CpuLayer, x: Float32Array, T: number): { out: Float32Array; idx: Uint32Array } {
  const { H, I, E, k, shared } = l.spec;
  const dGU = expertDecoder(l.dtype, l.gateUp, l.gateUpScales, H, 2 * I);
  const dD = expertDecoder(l.dtype, l.down, l.downScales, I, H);
  const out = new Float32Array(T * H);
  const idxAll = new Uint32Array(T * k);
  const logits = new Float32Array(E);
  const gu = new Float32Array(2 * Math.max(I, shared * I));
  const h = new Float32Array(Math.max(I, shared * I));
  const y = new Float32Array(H);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      let acc = l.routerBias ? l.routerBias[e] : 0;
      for (let c = 0; c < H; c++) acc += x[t * H + c] * l.router[e * H + c];
      logits[e] = acc;
    }
    const r = routeToken(l.spec, logits, l.correctionBias);
    for (let j = 0; j < k; j++) {
      const e = r.idx[j];
      idxAll[t * k + j] = e;
      // Llama 4: the routing weight scales the expert's input, the output is added unweighted
      const xin = l.spec.routerWeightFirst ? x.slice(t * H, (t + 1) * H).map((v) => v * r.w[j]) : x;
      matvecRows(dGU, e * 2 * I * H, 2 * I, H, xin, l.spec.routerWeightFirst ? 0 : t * H, gu);
      if (l.gateUpBias) for (let i = 0; i < 2 * I; i++) gu[i] += l.gateUpBias[e * 2 * I + i];
      act(l.spec, gu, I, h);
      matvecRows(dD, e * H * I, H, I, h, 0, y);
      if (l.downBias) for (let c = 0; c < H; c++) y[c] += l.downBias[e * H + c];
      const wOut = l.spec.routerWeightFirst ? 1 : r.w[j];
      for (let c = 0; c < H; c++) out[t * H + c] += wOut * y[c];
    }
    if (shared && l.sharedGateUp && l.sharedDown) {
      const S = shared * I;
      matvecRows(decoder(sharedKind(l.dtype), l.sharedGateUp), 0, 2 * S, H, x, t * H, gu);
      act({ ...l.spec, act: { kind: 'silu', layout: 'concat' } }, gu, S, h);
      matvecRows(decoder(sharedKind(l.dtype), l.sharedDown), 0, H, S, h, 0, y);
      for (let c = 0; c < H; c++) out[t * H + c] += y[c];
    }
  }
  return { out, idx: idxAll };
}
