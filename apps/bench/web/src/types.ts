// What the page shows and exposes on window.__results (read by the browser test).

/** What the page found out about WebGPU. */
export interface EnvInfo {
  /** navigator.gpu exists. */
  webgpu: boolean;
  /** An adapter and a device were obtained. */
  adapterFound: boolean;
  /** One-line adapter name (vendor / architecture / device / description), null without one. */
  adapter: string | null;
  /** Adapter features. */
  features: string[];
  shaderF16: boolean;
  timestampQuery: boolean;
  subgroups: boolean;
  /** Why there is no GPU path, when there is none. */
  reason?: string;
  userAgent: string;
  /** How the CPU path's kernels compute their dot products in this browser (kernels-wgsl's cpuKernelPath). */
  cpuKernels: 'wasm-simd' | 'js';
}

/** Time of one kernel (summed over its dispatches), in milliseconds. */
export interface KernelTime {
  name: string;
  ms: number;
  count: number;
}

/** The result of one checkpoint. */
export interface CaseResult {
  /** Order of completion on this page (1, 2, ...). */
  seq: number;
  name: string;
  origin: string;
  /** HF model_type from config.json. */
  arch: string | null;
  /** Weight dtype the layer was built in ('checkpoint': as stored). */
  dtype: 'checkpoint' | 'float32' | 'bfloat16' | 'float16';
  /** Which path computed it: the WebGPU kernels, or the CPU path (kernels-wgsl's CPU kernels). */
  path: 'gpu' | 'cpu' | 'none';
  /** pass: rel error below tol; fail: above; error: it threw; unchecked: no golden output to compare with. */
  status: 'pass' | 'fail' | 'error' | 'unchecked';
  relErr: number | null;
  tol: number | null;
  tokens: number | null;
  hidden: number | null;
  /** 'gpu-timestamps': kernels timed by timestamp queries; 'wall': only the total wall time. */
  timing: 'gpu-timestamps' | 'wall';
  kernels: KernelTime[];
  /** Wall time of the forward (upload of the input to read-back of the output), ms. */
  forwardMs: number;
  /** Wall time of the first forward (pipeline compilation included), ms. */
  firstForwardMs: number;
  /** Whether a second forward gave the same output bit for bit (null when not run). */
  repeatMatches: boolean | null;
  /** The layer's output (first forward), row-major [T, H], when it has at most 65536 values (for tests). */
  output?: number[];
  /** Time to fetch/read and load the checkpoint, ms. */
  loadMs: number;
  message?: string;
}

/** A check of the GPU runtime that needs no MoE: a cast round trip f32 -> bf16 -> f32. */
export interface SmokeResult {
  ok: boolean;
  detail: string;
  kernels: KernelTime[];
}

/** window.__results */
export interface PageResults {
  /** The page has initialised (env known, fixtures listed). */
  ready: boolean;
  /** A run (started by ?run= or a button) has finished. */
  done: boolean;
  running: boolean;
  env: EnvInfo | null;
  /** Whether @webmoe/moe exports the MoE layer the page runs. */
  moeAvailable: boolean;
  smoke: SmokeResult | null;
  fixtures: string[];
  cases: CaseResult[];
  error?: string;
}
