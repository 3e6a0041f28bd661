import { fileURLToPath } from 'node:url';
// Test helpers: an independent safetensors reader (not the package's) and the fixture list.
import { readFileSync, existsSync } from 'node:fs';
import { afterAll, expect } from 'vitest';
import { join } from 'node:path';
import { HostTensor, toFloat32, type DType } from '@webmoe/tensor';
import { GpuTensor, type ExpertStackGpu, type GpuContext } from '@webmoe/kernels-wgsl';
import { gpuChecked, stagedTol, withDispatchLog, type Dispatched } from '@webmoe/kernels-wgsl/testing';

export { stagedTol, withDispatchLog, type Dispatched };
import { openHFCheckpoint, type MoE, type MoECheckpoint, type MoELayer, type QuantizedExperts } from '../src/index.js';
import { dirSource } from '@webmoe/tensor/node';

/** The fixtures beside the checkout (../shared/fixtures/hf-moe), or $WEBMOE_FIXTURES/hf-moe. */
export const FIXTURES = (process.env.WEBMOE_FIXTURES ? process.env.WEBMOE_FIXTURES + '/hf-moe' : fileURLToPath(new URL('../../../../shared/fixtures/hf-moe', import.meta.url)));
/** Every unquantized fixture (deepseek_v3_fp8 and gpt_oss_mxfp4 belong to the quantized-experts issue). */
export const ARCHS = ['mixtral', 'qwen3_moe', 'qwen2_moe', 'olmoe', 'deepseek_v3', 'gpt_oss', 'llama4_text'] as const;

const DT: Record<string, DType> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/** Reads a safetensors file's tensors as f32 values with their shapes (independent of @webmoe/moe). */
export function readTensorsF32(path: string): Map<string, { shape: number[]; values: Float32Array; dtype: DType }> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; values: Float32Array; dtype: DType }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const dtype = DT[v.dtype];
    if (!dtype) throw new Error(`test reader: dtype ${v.dtype} of ${k}`);
    const raw = new Uint8Array(b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1])).slice();
    const arr = dtype === 'float32' ? new Float32Array(raw.buffer) : new Uint16Array(raw.buffer);
    out.set(k, { shape: v.shape, values: toFloat32(dtype, arr), dtype });
  }
  return out;
}

/**
 * The golden sets in each fixture folder: `golden` (T = 16, which reaches the
 * decode kernels) and `golden-large` (T = 600, enough (token, expert) rows for
 * the prefill kernels; every folder but gpt_oss_mxfp4). Same keys and
 * tolerances (../shared/fixtures/README.md).
 */
export const GOLDEN_SETS = ['golden', 'golden-large'] as const;
export type GoldenSet = (typeof GOLDEN_SETS)[number];

/** The raw tensors of one golden set (`input`, `output`, ... as the fixture names them). */
export function goldenTensors(arch: string, set: GoldenSet = 'golden'): ReturnType<typeof readTensorsF32> {
  const path = join(FIXTURES, arch, `${set}.safetensors`);
  if (!existsSync(path)) throw new Error(`fixture ${path} is missing`);
  return readTensorsF32(path);
}

export interface Golden {
  set: GoldenSet;
  T: number;
  H: number;
  input: Float32Array;
  /** All T rows of the block's output, [T, H]. */
  output: Float32Array;
  inputBf16: Float32Array;
  outputBf16: Float32Array;
  f32Tol: number;
  bf16Tol: number;
}

export function loadGolden(arch: string, set: GoldenSet = 'golden'): Golden {
  const g = goldenTensors(arch, set);
  const meta = JSON.parse(readFileSync(join(FIXTURES, arch, `${set}.json`), 'utf8'));
  const input = g.get('input')!;
  const [T, H] = input.shape;
  // Every output holds all T rows (llama4_text's fixtures once kept only token 0's: a stale copy fails here).
  const tensor = (name: string) => {
    const t = g.get(name);
    if (!t || t.shape.length !== 2 || t.shape[0] !== T || t.shape[1] !== H) throw new Error(`${arch} ${set}: ${name} shape ${t?.shape} (expected [${T}, ${H}])`);
    return t.values;
  };
  return {
    set,
    T,
    H,
    input: input.values,
    output: tensor('output'),
    inputBf16: tensor('input_bf16'),
    outputBf16: tensor('output_bf16'),
    f32Tol: meta.f32_rel_tol,
    bf16Tol: meta.bf16_rel_tol,
  };
}

import { relErr } from '@webmoe/kernels-wgsl/testing';
export { relErr };

/**
 * `moe` (a layer whose output is fixture `arch`'s block, e.g. the fixture under another model type's names) gives each
 * golden set of `arch` (its f32 input to its output) within the golden's f32 tolerance; with `ctx`, on the GPU, where
 * f16-staged kernels that ran widen it (stagedTol).
 */
export async function expectGoldenSets(moe: MoE, arch: string, ctx?: GpuContext): Promise<void> {
  for (const set of GOLDEN_SETS) {
    const g = loadGolden(arch, set);
    const { result: y, dispatched } = ctx ? await gpuChecked(ctx, () => withDispatchLog(() => moe.forward(g.input))) : { result: await moe.forward(g.input), dispatched: [] };
    const err = relErr(y, g.output);
    expect(err, `${arch} ${set} rel err ${err}`).toBeLessThan(stagedTol(dispatched, g.f32Tol));
  }
}

/**
 * Which kernel ran each expert GEMM of a dispatch log, as `op:kind` (sorted, unique):
 * 'gemv' (the decode GEMVs, moe-gemv.ts), 'tiled-decode' / 'tiled-prefill' (the
 * tiled grouped GEMM with grouped-gemm.ts's decode tile of 4 rows or its larger
 * prefill tile), 'fast' (the register-blocked FMA prefill kernel) or
 * 'subgroup-matrix' (grouped-gemm-fast.ts).
 */
export function expertGemmPaths(log: readonly Dispatched[]): string[] {
  const paths = new Set<string>();
  for (const { kernel, variant: v } of log) {
    if (kernel === 'moe_gemv') paths.add(`${v.mode}:gemv`);
    else if (kernel === 'grouped_gemm') paths.add(`${v.op}:${v.tm === 4 ? 'tiled-decode' : 'tiled-prefill'}`);
    else if (kernel === 'grouped_gemm_fast') paths.add(`${v.op}:fast`);
    else if (kernel === 'grouped_gemm_sgmat') paths.add(`${v.op}:subgroup-matrix`);
  }
  return [...paths].sort();
}

/** The prefill kinds of {@link expertGemmPaths}. */
export const PREFILL_GEMMS = ['tiled-prefill', 'fast', 'subgroup-matrix'] as const;

/**
 * Checks that a forward's expert GEMMs all ran on prefill kernels (no decode GEMV,
 * no decode tile), both gate_up and down; `dense` (dense weights, T*k >= 64E)
 * further requires the fast kernels (FMA or subgroup-matrix), not the tiled one.
 * Returns the paths (for the test's message); throws naming them otherwise.
 */
export function expectPrefillPaths(log: readonly Dispatched[], opts: { dense: boolean }): string[] {
  const paths = expertGemmPaths(log);
  const allowed: readonly string[] = opts.dense ? ['fast', 'subgroup-matrix'] : PREFILL_GEMMS;
  const ok = paths.every((p) => allowed.includes(p.split(':')[1])) && ['gate_up', 'down'].every((op) => paths.some((p) => p.startsWith(op + ':')));
  if (!ok) throw new Error(`expert GEMMs ran on ${JSON.stringify(paths)}; expected gate_up and down on ${allowed.join(' | ')} only`);
  return paths;
}

/** moe.forward on x [T, H] as a caller runs it (upload, forward, download), with the kernels it dispatched. */
export async function forwardLogged(c: GpuContext, moe: MoE, x: Float32Array, T: number, H: number): Promise<{ y: Float32Array; dispatched: Dispatched[] }> {
  const { result, dispatched } = await withDispatchLog(() =>
    gpuChecked(c, async () => {
      const xg = GpuTensor.upload(c, new HostTensor('float32', [T, H], x));
      const out = await moe.forward(xg);
      const h = await out.download();
      xg.destroy();
      out.destroy();
      expect(h.shape).toEqual([T, H]);
      expect(h.dtype).toBe('float32');
      return h.data as Float32Array;
    }),
  );
  return { y: result, dispatched };
}

/** The first element whose f32 bits differ between `a` and `b` (0 when the lengths differ), or -1 when they are the same bits. @example `expect(firstBitDiff(streamed, whole)).toBe(-1)` */
export function firstBitDiff(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (ua.length !== ub.length) return 0;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** Chunks of a stack (1 when it is in one buffer per tensor) and whether an expert is cut in pieces. @example `expect(chunking(w)).toEqual({ chunks: 3, split: true })` */
export function chunking(w: ExpertStackGpu): { chunks: number; split: boolean } {
  return w.kind === 'chunked' ? { chunks: w.chunks.length, split: w.chunks.some((c) => c.experts === 1 && c.outputs < (w.layout === 'rows' ? w.rows : w.rows / 2)) } : { chunks: 1, split: false };
}

/** Opens fixture checkpoints (`FIXTURES/<arch>`) for a test file; every one opened is closed after the file's tests. @example `const open = fixtureCheckpoints(); const ck = await open('mixtral')` */
export function fixtureCheckpoints(): (arch: string) => Promise<MoECheckpoint> {
  const opened: MoECheckpoint[] = [];
  afterAll(async () => {
    for (const ck of opened) await ck.close?.();
  });
  return async (arch) => {
    const ck = await openHFCheckpoint(dirSource(`${FIXTURES}/${arch}`));
    opened.push(ck);
    return ck;
  };
}

/** The packed shared experts of `moe` (`shared.kind === 'packed'`); an Error naming what it found otherwise. @example `packedShared(moe).gateUpProj.value.dtype` */
export function packedShared(moe: MoELayer): QuantizedExperts {
  const sh = moe.shared;
  if (sh?.kind !== 'packed') throw new Error(`shared experts: expected packed (quantized), got ${sh?.kind ?? 'none'}`);
  return sh.store;
}
