/**
 * Test helpers of the grouped-GEMM tests: a host grouping (stable sort of
 * pair ids by expert, written here independently of kernels/grouping.ts),
 * its upload as a GroupingGpu, one subgroup-matrix GEMM call on host inputs,
 * and a bitwise comparison of outputs.
 */
import { HostTensor } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  destroyExpertWeights,
  foldWorkgroups,
  readBuffer,
  uploadExpertWeights,
  type ExpertActivation,
  type ExpertWeightsGpu,
  type ExpertWeightsHost,
  type GpuContext,
  type GroupingGpu,
  type GroupingRef,
} from '@webmoe/kernels-wgsl';
import { gpuChecked } from '@webmoe/kernels-wgsl/testing';
import { recordFastGemm, type FastGemmPlan, type SgmatShapeName } from '../src/kernels/grouped-gemm-fast.js';
import { SGMAT_SHAPES } from '../src/kernels/grouped-gemm-fast-shapes.js';

/** Random routing idx [T*k]: k distinct experts per token, drawn from a subset so that some experts get no rows. */
export function randomIdx(r: () => number, T: number, k: number, E: number): Uint32Array {
  const active: number[] = [];
  for (let e = 0; e < E; e++) if (E < 3 || e % 3 !== 1) active.push(e);
  while (active.length < k) {
    for (let e = 0; e < E && active.length < k; e++) if (!active.includes(e)) active.push(e);
  }
  const idx = new Uint32Array(T * k);
  for (let t = 0; t < T; t++) {
    const pool = active.slice();
    for (let j = 0; j < k; j++) {
      const i = Math.floor(r() * pool.length);
      idx[t * k + j] = pool[i];
      pool.splice(i, 1);
    }
  }
  return idx;
}

/** Groups pair ids by expert (stable sort). */
export function hostGrouping(idx: Uint32Array, T: number, k: number, E: number): GroupingRef {
  const n = T * k;
  const counts = new Uint32Array(E);
  for (let p = 0; p < n; p++) counts[idx[p]]++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const cursor = offsets.slice(0, E);
  const order = new Uint32Array(n);
  const position = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const at = cursor[idx[p]]++;
    order[at] = p;
    position[p] = at;
  }
  return { T, k, E, counts, offsets, order, position };
}

/** Uploads a host grouping as uint32 GPU tensors. */
export function uploadGrouping(ctx: GpuContext, g: GroupingRef): GroupingGpu {
  const up = (a: Uint32Array) => GpuTensor.upload(ctx, new HostTensor('uint32', [a.length], a));
  const t = { counts: up(g.counts), offsets: up(g.offsets), order: up(g.order), position: up(g.position) };
  return {
    T: g.T,
    k: g.k,
    E: g.E,
    ...t,
    destroy() {
      for (const x of Object.values(t)) x.destroy();
    },
  };
}

/** A random integer in [lo, hi]. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Plain, independent reference of one grouped row (no shared code with groupedGateUpRef): float64 dot of the rounded weights. */
export function naiveGateUp(x: Float32Array, g: GroupingRef, wf: Float32Array, bf: Float32Array | undefined, act: ExpertActivation, rs: Float32Array | undefined, H: number, I: number): Float32Array {
  const out = new Float32Array(g.T * g.k * I);
  const L = act.limit ?? 7;
  const al = act.alpha ?? 1.702;
  for (let e = 0; e < g.E; e++)
    for (let p = g.offsets[e]; p < g.offsets[e + 1]; p++) {
      const pair = g.order[p];
      const t = Math.floor(pair / g.k);
      for (let i = 0; i < I; i++) {
        const rg = act.layout === 'interleaved' ? 2 * i : i;
        const ru = act.layout === 'interleaved' ? 2 * i + 1 : I + i;
        let gs = bf ? bf[e * 2 * I + rg] : 0;
        let us = bf ? bf[e * 2 * I + ru] : 0;
        for (let c = 0; c < H; c++) {
          const xv = rs ? Math.fround(x[t * H + c] * rs[pair]) : x[t * H + c];
          gs += xv * wf[(e * 2 * I + rg) * H + c];
          us += xv * wf[(e * 2 * I + ru) * H + c];
        }
        const sig = (z: number) => 1 / (1 + Math.exp(-z));
        let h: number;
        if (act.kind === 'silu') h = gs * sig(gs) * us;
        else if (act.kind === 'swiglu_limit') h = Math.min(gs * sig(gs), L) * Math.max(-L, Math.min(L, us));
        else {
          const gc = Math.min(gs, L);
          const uc = Math.max(-L, Math.min(L, us));
          h = (uc + 1) * gc * sig(al * gc);
        }
        out[p * I + i] = h;
      }
    }
  return out;
}

/** Plain, independent reference of the grouped down projection: y[p] = h[p] @ W[e]^T (+ b[e]) for every grouped row p of expert e; W [E, N, K]. */
export function naiveDown(h: Float32Array, g: GroupingRef, wf: Float32Array, bf: Float32Array | undefined, N: number, K: number): Float32Array {
  const out = new Float32Array(g.T * g.k * N);
  for (let e = 0; e < g.E; e++)
    for (let p = g.offsets[e]; p < g.offsets[e + 1]; p++)
      for (let o = 0; o < N; o++) {
        let s = bf ? bf[e * N + o] : 0;
        for (let c = 0; c < K; c++) s += h[p * K + c] * wf[(e * N + o) * K + c];
        out[p * N + o] = s;
      }
  return out;
}

/** Downloads a GPU grouping's four tensors (uint32). */
export async function downloadGrouping(g: GroupingGpu): Promise<{ counts: Uint32Array; offsets: Uint32Array; order: Uint32Array; position: Uint32Array }> {
  const u = async (t: GpuTensor) => (await t.download()).data as Uint32Array;
  return { counts: await u(g.counts), offsets: await u(g.offsets), order: await u(g.order), position: await u(g.position) };
}

/**
 * Submits `rec` (which recorded a decode grouping) with copies of the active-expert list and its indirect args
 * (the recorder's temps, freed with it), and downloads all of it.
 */
export async function downloadDecodeGrouping(ctx: GpuContext, rec: Recorder, g: GroupingGpu, active: { active: GPUBuffer; args: GPUBuffer }) {
  const keepActive = ctx.device.createBuffer({ size: 4 * g.E, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const keepArgs = ctx.device.createBuffer({ size: 24, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  rec.copy(active.active, 0, keepActive, 0, 4 * g.E);
  rec.copy(active.args, 0, keepArgs, 0, 24);
  rec.submit();
  const d = await downloadGrouping(g);
  const out = { ...d, active: new Uint32Array((await readBuffer(ctx, keepActive, 4 * g.E)).buffer), args: new Uint32Array((await readBuffer(ctx, keepArgs, 24)).buffer) };
  keepActive.destroy();
  keepArgs.destroy();
  return out;
}

/** The inputs of one subgroup-matrix case: x rows, weights, bias, row scales, grouping. */
export interface SgmatInputs {
  x: Float32Array;
  w: ExpertWeightsHost;
  b: HostTensor | undefined;
  rs: Float32Array | undefined;
  g: GroupingRef;
}

/** One subgroup-matrix GEMM call of a test: op, tile shape, sizes, activation, split and x rows. */
export interface SgmatCase {
  op: 'gate_up' | 'down';
  shape: SgmatShapeName;
  T: number;
  k: number;
  E: number;
  K: number;
  N: number;
  act: ExpertActivation;
  splitK: number;
  xh?: 'staged' | 'direct';
}

/**
 * Records and runs one case of the subgroup-matrix kernel (emulated or real builtins) on `inp`; its output [T * k, N].
 * `plan`: the plan fields a test varies (FastGemmPlan's band, wide, valueDecode, rowSkip, tail); `onWeights` sees the uploaded weights.
 */
export function runSgmatCase(
  c: GpuContext,
  cs: SgmatCase,
  emulate: boolean,
  inp: SgmatInputs,
  plan: Pick<FastGemmPlan, 'band' | 'wide' | 'valueDecode' | 'rowSkip' | 'tail'> = {},
  onWeights?: (gw: ExpertWeightsGpu) => void,
): Promise<Float32Array> {
  const { op, shape, T, k, E, K, N, act } = cs;
  const { tm, tn } = SGMAT_SHAPES[shape];
  const { x, w, b, rs, g } = inp;
  const wRows = op === 'gate_up' ? 2 * N : N;
  const xRows = op === 'gate_up' ? T : T * k;
  return gpuChecked(c, async () => {
    const gx = GpuTensor.upload(c, HostTensor.fromFloat32([xRows, K], x));
    const gw = uploadExpertWeights(c, w);
    onWeights?.(gw);
    const gb = b ? GpuTensor.upload(c, b) : undefined;
    const grs = rs ? GpuTensor.upload(c, HostTensor.fromFloat32([T, k], rs)) : undefined;
    const gg = uploadGrouping(c, g);
    const y = GpuTensor.empty(c, 'float32', [T * k, N]);
    const rec = new Recorder(c);
    const nTilesN = Math.ceil(N / (op === 'gate_up' ? tn / 2 : tn));
    const nWork = (Math.ceil((T * k) / tm) + Math.min(E, T * k)) * nTilesN;
    const call = {
      op,
      act: op === 'gate_up' ? { kind: act.kind, limit: act.limit ?? 0, alpha: act.alpha ?? 0, interleaved: act.layout === 'interleaved' } : undefined,
      x: gx.buffer,
      xmode: op === 'gate_up' ? ('token' as const) : ('grouped' as const),
      rowScale: grs?.buffer, g: gg, w: gw, d: { rows: wRows }, bias: gb, biasDt: b ? ('float32' as const) : ('none' as const), K, N, y,
    };
    recordFastGemm(rec, call, { kind: 'subgroup-matrix', tm, shape, splitK: cs.splitK, xh: cs.xh, ...plan, nTilesN, nWork, grid: foldWorkgroups(c, nWork * cs.splitK) }, { emulateSubgroupMatrix: emulate });
    rec.submit();
    const out = (await y.download()).data as Float32Array;
    for (const t of [gx, gb, grs, y]) t?.destroy();
    destroyExpertWeights(gw);
    gg.destroy();
    return out;
  });
}

/** The first index where two f32 arrays differ in their bits (-1: bit for bit equal; NaN compares by its bits). */
export function firstBitDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ab = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bb = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ab.findIndex((v, i) => v !== bb[i]);
}
