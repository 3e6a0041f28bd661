// Environment detection, the GPU smoke check and one checkpoint's run.
import { castGpu, castRef, cpuKernelPath, createGpuContext, GpuContext, GpuTensor, Recorder } from '@webmoe/kernels-wgsl';
import { relErr } from '@webmoe/kernels-wgsl/testing';
import { HostTensor as HT, readConfig, SafetensorsFile, type HostTensor } from '@webmoe/tensor';
import { moeAvailable, runMoe } from './moe-runner.js';
import { readWhole, type PageSource } from './sources.js';
import { sumTimings } from './timing.js';
import type { CaseResult, EnvInfo, SmokeResult } from './types.js';

/** Probes WebGPU: navigator.gpu, an adapter, a device with the kernels' features. */
export async function detectEnv(): Promise<{ env: EnvInfo; ctx: GpuContext | null }> {
  const env: EnvInfo = {
    webgpu: typeof navigator !== 'undefined' && !!navigator.gpu,
    adapterFound: false,
    adapter: null,
    features: [],
    shaderF16: false,
    timestampQuery: false,
    subgroups: false,
    userAgent: navigator.userAgent,
    cpuKernels: cpuKernelPath(),
  };
  if (!env.webgpu) {
    env.reason = 'navigator.gpu is missing: this browser has no WebGPU (or it is disabled; Chromium on Linux needs --enable-unsafe-webgpu)';
    return { env, ctx: null };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      env.reason = 'navigator.gpu.requestAdapter() returned null: no usable GPU adapter';
      return { env, ctx: null };
    }
    env.features = [...adapter.features].map(String).sort();
    const ctx = await createGpuContext({ adapter, label: 'webmoe-web' });
    env.adapterFound = true;
    env.adapter = ctx.adapterName;
    env.shaderF16 = ctx.features.shaderF16;
    env.timestampQuery = ctx.features.timestampQuery;
    env.subgroups = ctx.features.subgroups;
    return { env, ctx };
  } catch (e) {
    env.reason = `WebGPU device creation failed: ${errText(e)}`;
    return { env, ctx: null };
  }
}

export function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * A check of the GPU runtime that needs no MoE: random f32 values go to the
 * GPU, through the cast kernel to bfloat16 and back to float32 (one Recorder,
 * timestamps where available), and must equal the TypeScript reference bit
 * for bit.
 */
export async function smokeCheck(ctx: GpuContext, n = 4099): Promise<SmokeResult> {
  const vals = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    vals[i] = ((s / 2 ** 32) * 2 - 1) * 8;
  }
  const x = HT.fromFloat32([n], vals, 'float32');
  const want = castRef(castRef(x, 'bfloat16'), 'float32').data as Float32Array;
  const got = await ctx.checked('smoke cast round trip', async () => {
    const g = GpuTensor.upload(ctx, x, 'smoke.x');
    const rec = new Recorder(ctx, { timestamps: true, label: 'smoke' });
    const h = castGpu(ctx, g, 'bfloat16', { recorder: rec });
    const y = castGpu(ctx, h, 'float32', { recorder: rec });
    rec.submit();
    const out = await y.download();
    const t = await rec.timings();
    for (const b of [g, h, y]) b.destroy();
    return { data: out.data as Float32Array, t };
  });
  let bad = 0;
  for (let i = 0; i < n; i++) if (!Object.is(got.data[i], want[i])) bad++;
  return {
    ok: bad === 0,
    detail: bad === 0 ? `cast f32→bf16→f32 of ${n} values on the GPU equals the reference bit for bit` : `${bad} of ${n} values differ from the reference`,
    kernels: sumTimings(got.t),
  };
}

async function readJson(src: PageSource, name: string): Promise<Record<string, unknown> | null> {
  const b = await readWhole(src.source, name);
  return b ? (JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>) : null;
}

/** Weight dtypes the page can ask the loader for (default: the checkpoint's). */
export type WeightDType = 'float32' | 'bfloat16' | 'float16';

/**
 * Which golden tensors and tolerance check a run: float32 weights against
 * `output` (f32_rel_tol); bfloat16 weights on `input_bf16` against
 * `output_bf16` (the block run in bfloat16; bf16_rel_tol); float16 weights
 * against `output` with the bf16 tolerance (no f16 golden exists).
 */
export function goldenPlan(dtype: WeightDType | undefined): { input: string; output: string; tolKey: 'f32_rel_tol' | 'bf16_rel_tol' } {
  if (dtype === 'bfloat16') return { input: 'input_bf16', output: 'output_bf16', tolKey: 'bf16_rel_tol' };
  if (dtype === 'float16') return { input: 'input', output: 'output', tolKey: 'bf16_rel_tol' };
  return { input: 'input', output: 'output', tolKey: 'f32_rel_tol' };
}

/**
 * Runs one checkpoint: reads config.json, golden.json and golden.safetensors
 * (input, output), runs the MoE layer and compares its output with the
 * golden output (see {@link goldenPlan}).
 */
export async function runCase(src: PageSource, ctx: GpuContext | null, opts: { layer?: number; dtype?: WeightDType } = {}): Promise<CaseResult> {
  const plan = goldenPlan(opts.dtype);
  const r: CaseResult = {
    seq: 0,
    name: src.label,
    origin: src.origin,
    arch: null,
    dtype: opts.dtype ?? 'checkpoint',
    path: ctx ? 'gpu' : 'cpu',
    status: 'error',
    relErr: null,
    tol: null,
    tokens: null,
    hidden: null,
    timing: 'wall',
    kernels: [],
    forwardMs: 0,
    firstForwardMs: 0,
    loadMs: 0,
    repeatMatches: null,
  };
  try {
    const t0 = performance.now();
    const config = await readConfig(src.source);
    r.arch = typeof config.model_type === 'string' ? config.model_type : null;
    const golden = await readJson(src, 'golden.json');
    const tol = golden?.[plan.tolKey];
    r.tol = typeof tol === 'number' ? tol : null;
    let input: HostTensor;
    let want: HostTensor | undefined;
    if (await src.source.exists('golden.safetensors')) {
      const g = await SafetensorsFile.open(await src.source.open('golden.safetensors'), `${src.origin}/golden.safetensors`);
      try {
        input = await g.read(g.has(plan.input) ? plan.input : 'input');
        // Block-scaled fp8 fixtures name the f32-math output of the dequantised weights output_weight_only.
        const outName = !g.has(plan.output) && plan.output === 'output' && g.has('output_weight_only') ? 'output_weight_only' : plan.output;
        if (g.has(outName)) want = await g.read(outName);
        else r.message = `golden.safetensors has no "${plan.output}" (has ${g.keys().join(', ')})`;
      } finally {
        await g.close();
      }
    } else {
      const H = Number(config.hidden_size);
      if (!Number.isInteger(H) || H <= 0) throw new Error('config.json has no hidden_size');
      const T = 4;
      const v = new Float32Array(T * H);
      for (let k = 0; k < v.length; k++) v[k] = Math.sin(k * 12.9898) * 0.5;
      input = HT.fromFloat32([T, H], v);
    }
    r.tokens = input.shape[0];
    r.hidden = input.shape[1];
    r.loadMs = performance.now() - t0;
    if (!moeAvailable) throw new Error('the MoE layer (@webmoe/moe MoE) is not available; only the GPU smoke check ran');
    const run = await runMoe(src, input.dtype === 'float32' ? input : HT.fromFloat32(input.shape, input.toFloat32()), ctx, opts);
    r.firstForwardMs = run.firstForwardMs;
    r.loadMs += run.loadMs;
    r.forwardMs = run.forwardMs;
    r.kernels = run.kernels;
    r.timing = run.timing;
    if (run.output.length <= 65536) r.output = Array.from(run.output);
    r.repeatMatches = run.repeatMatches;
    if (want) {
      let got = run.output;
      if (want.size === input.shape[1] && want.size !== run.output.length) {
        // Some goldens (llama4_text) hold only token 0's output, [H]: compare that row.
        got = run.output.subarray(0, want.size);
        r.message = `the golden "${plan.output}" holds token 0 only ([${want.shape.join(', ')}]): compared with row 0`;
      }
      r.relErr = relErr(got, want.toFloat32());
      r.tol ??= plan.tolKey === 'f32_rel_tol' ? 1e-4 : 2e-2;
      r.status = r.relErr < r.tol ? 'pass' : 'fail';
      if (!run.repeatMatches) {
        r.status = 'fail';
        r.message = `${r.message ? r.message + '; ' : ''}a second forward gave a different output (not deterministic)`;
      }
    } else {
      r.status = 'unchecked';
      r.message ??= 'no golden output: nothing to compare with';
    }
  } catch (e) {
    r.status = 'error';
    r.message = errText(e);
  }
  return r;
}
