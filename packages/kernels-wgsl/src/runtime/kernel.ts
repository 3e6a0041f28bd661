/**
 * The kernel runtime: the kernel contract (defineKernel; a signature gives the WGSL header, the pipeline layout, the
 * bind group and the uniform bytes), the Recorder that dispatches by it, and the GpuGraph that replays a recording.
 * Over ~400 lines on purpose: one mechanism; the graph replays the recorder's private command list.
 */
import type { GpuContext } from './context.js';
import { LimitError } from './errors.js';
import { sharedScratch, type BufferPool } from './pool.js';

/** A kernel variant: plain data (dtype, tile, vector width, features) that selects the WGSL. */
export type Variant = Readonly<Record<string, string | number | boolean>>;

/** Scalar type of a uniform field. */
export type UniformType = 'u32' | 'i32' | 'f32';

/** One field of a kernel's uniform block `u: U`. */
export interface UniformField {
  readonly name: string;
  readonly type: UniformType;
}

/** One storage binding of a kernel. */
export interface BindingDecl {
  readonly name: string;
  /** WGSL type, e.g. `array<f32>`. */
  readonly type: string;
  readonly access: 'read' | 'read_write';
}

/**
 * A kernel's interface, declared once: its storage bindings (binding order),
 * the fields of its uniform block `u: U` (in order), and whether its WGSL
 * uses f16. The WGSL header (bindings, struct U, `enable f16;`), the pipeline
 * layout, the bind group (buffers bound by name) and the uniform bytes
 * (values by name) are all generated from it.
 */
export interface KernelSignature {
  readonly bindings: readonly BindingDecl[];
  readonly uniforms?: readonly UniformField[];
  readonly f16?: boolean;
  /** Further global directives written first, after `enable f16;` (e.g. `enable subgroups;`, `diagnostic(off, ...);`). */
  readonly directives?: readonly string[];
}

/**
 * One op contract (after onnxruntime-web's ProgramInfo): a kernel is a name
 * plus a WGSL source per variant. Shapes and strides go in uniforms, so one
 * pipeline serves every shape; the pipeline cache key is built from the
 * typed variant, never a hand-built string.
 *
 * A kernel with a `signature` writes only its body: the header comes from
 * the signature, and it is dispatched with `bind` (buffers by binding name)
 * and `params` (uniform values by field name). A kernel without one declares
 * its own bindings: storage buffers at @binding(0..n-1) in the order
 * `buffers` lists them, the uniform block (if any) at @binding(n).
 *
 * @example
 * ```ts
 * const copy = defineKernel<{ n: number }>('copy', () => `...WGSL body...`, {
 *   signature: () => ({ bindings: [{ name: 'A', type: 'array<u32>', access: 'read' }, { name: 'B', type: 'array<u32>', access: 'read_write' }], uniforms: [{ name: 'n', type: 'u32' }] }),
 * });
 * rec.dispatch({ kernel: copy, variant: { n: 1 }, bind: { A: a, B: b }, params: { n: 1024 }, workgroups: [4] });
 * ```
 */
export interface Kernel<V extends Variant> {
  readonly name: string;
  source(variant: V, ctx: GpuContext): string;
  readonly entryPoint: string;
  /** The declared interface of a variant (kernels written against the contract). */
  signature?(variant: V): KernelSignature;
}

/** Options of {@link defineKernel}. */
export interface KernelOptions<V extends Variant> {
  entryPoint?: string;
  signature?: (variant: V) => KernelSignature;
}

export function defineKernel<V extends Variant>(name: string, source: (variant: V, ctx: GpuContext) => string, opts: KernelOptions<V> = {}): Kernel<V> {
  return { name, source, entryPoint: opts.entryPoint ?? 'main', signature: opts.signature };
}

/** The WGSL header of a signature: `enable f16;` and the other directives, struct U, the storage bindings in order and `u: U` after them. */
export function signatureWgsl(sig: KernelSignature): string {
  const lines: string[] = [];
  if (sig.f16) lines.push('enable f16;');
  lines.push(...(sig.directives ?? []));
  const fields = sig.uniforms ?? [];
  if (fields.length) lines.push(`struct U { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }`);
  sig.bindings.forEach((b, i) => lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: ${b.type};`));
  if (fields.length) lines.push(`@group(0) @binding(${sig.bindings.length}) var<uniform> u: U;`);
  return lines.join('\n');
}

/** Shorthand for uniform fields: `uniformFields('u32', 'T', 'E')`. */
export function uniformFields(type: UniformType, ...names: string[]): UniformField[] {
  return names.map((name) => ({ name, type }));
}

/** A stable key for a variant: sorted keys, typed values. */
export function variantKey(name: string, v: Variant): string {
  const keys = Object.keys(v).sort();
  return name + '{' + keys.map((k) => `${k}:${typeof v[k]}:${String(v[k])}`).join(',') + '}';
}

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const pending = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

function perDevice<T>(m: WeakMap<GPUDevice, Map<string, T>>, d: GPUDevice): Map<string, T> {
  let x = m.get(d);
  if (!x) {
    x = new Map();
    m.set(d, x);
  }
  return x;
}

/** The whole WGSL module of a kernel variant as its pipeline compiles it: the signature's header (or the `enable f16;` the source needs) and the source. */
export function kernelModuleCode<V extends Variant>(ctx: GpuContext, kernel: Kernel<V>, variant: V): string {
  const sig = kernel.signature?.(variant);
  const code = kernel.source(variant, ctx);
  if (sig) return signatureWgsl(sig) + '\n' + code;
  return /\bf16\b/.test(code) && !/enable f16;/.test(code) ? 'enable f16;\n' + code : code;
}

function moduleFor(ctx: GpuContext, kernel: Kernel<Variant>, variant: Variant): { module: GPUShaderModule; layout: GPUPipelineLayout } {
  const code = kernelModuleCode(ctx, kernel, variant);
  const module = ctx.device.createShaderModule({ label: kernel.name, code });
  const sig = kernel.signature?.(variant);
  return { module, layout: sig ? signatureLayout(ctx, kernel.name, sig) : explicitLayout(ctx, kernel.name, code) };
}

/** The pipeline layout of a signature: its storage bindings, then the uniform block when it has fields. */
function signatureLayout(ctx: GpuContext, name: string, sig: KernelSignature): GPUPipelineLayout {
  const entries: GPUBindGroupLayoutEntry[] = sig.bindings.map((b, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' } }));
  if (sig.uniforms?.length) entries.push({ binding: sig.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
  const bgl = ctx.device.createBindGroupLayout({ label: name, entries });
  return ctx.device.createPipelineLayout({ label: name, bindGroupLayouts: [bgl] });
}

/**
 * An explicit pipeline layout from the module's group-0 declarations, so a
 * binding the shader happens not to use (which 'auto' layouts drop) can still
 * be bound: every kernel keeps one binding list whatever its variant.
 */
function explicitLayout(ctx: GpuContext, name: string, code: string): GPUPipelineLayout {
  const re = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(storage|uniform)\s*(?:,\s*(read_write|read))?\s*>/g;
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of code.matchAll(re)) {
    const type: GPUBufferBindingType = m[2] === 'uniform' ? 'uniform' : m[3] === 'read_write' ? 'storage' : 'read-only-storage';
    entries.push({ binding: Number(m[1]), visibility: GPUShaderStage.COMPUTE, buffer: { type } });
  }
  const bgl = ctx.device.createBindGroupLayout({ label: name, entries });
  return ctx.device.createPipelineLayout({ label: name, bindGroupLayouts: [bgl] });
}

/** The pipeline for (kernel, variant) on this device, created on first use and cached per device. */
export function getPipeline<V extends Variant>(ctx: GpuContext, kernel: Kernel<V>, variant: V): GPUComputePipeline {
  const m = perDevice(cache, ctx.device);
  const key = variantKey(kernel.name, variant);
  let p = m.get(key);
  if (!p) {
    const { module, layout } = moduleFor(ctx, kernel as Kernel<Variant>, variant);
    p = ctx.device.createComputePipeline({ label: key, layout, compute: { module, entryPoint: kernel.entryPoint } });
    m.set(key, p);
  }
  return p;
}

/** Creates the pipeline ahead of the first forward with createComputePipelineAsync (compile errors throw here). */
export async function warmPipeline<V extends Variant>(ctx: GpuContext, kernel: Kernel<V>, variant: V): Promise<void> {
  const m = perDevice(cache, ctx.device);
  const key = variantKey(kernel.name, variant);
  if (m.has(key)) return;
  const pm = perDevice(pending, ctx.device);
  let pr = pm.get(key);
  if (!pr) {
    const { module, layout } = moduleFor(ctx, kernel as Kernel<Variant>, variant);
    pr = ctx.device.createComputePipelineAsync({ label: key, layout, compute: { module, entryPoint: kernel.entryPoint } });
    pm.set(key, pr);
  }
  try {
    m.set(key, await pr);
  } finally {
    pm.delete(key);
  }
}

/** Number of pipelines cached on a device (for tests). */
export function pipelineCount(ctx: GpuContext): number {
  return cache.get(ctx.device)?.size ?? 0;
}

/**
 * Folds `n` workgroups into a grid within maxComputeWorkgroupsPerDimension.
 * Kernels recover the linear id as `wid.x + wid.y * nwg.x` and return when
 * it is >= n (n goes in their uniforms).
 */
export function foldWorkgroups(ctx: GpuContext, n: number): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (n <= max) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / max);
  if (y > max) throw new LimitError('maxComputeWorkgroupsPerDimension^2', n, max * max, 'dispatch');
  return [Math.ceil(n / y), y, 1];
}

/** One dispatch. */
export interface DispatchSpec<V extends Variant> {
  kernel: Kernel<V>;
  variant: V;
  /** Kernels without a signature: storage buffers at bindings 0..n-1. */
  buffers?: readonly GPUBuffer[];
  /** Kernels without a signature: uniform block at binding n (u32/i32/f32 words; pack with `Uniforms`). */
  uniforms?: ArrayBuffer | ArrayBufferView;
  /** Kernels with a signature: every declared binding's buffer, by name. */
  bind?: Readonly<Record<string, GPUBuffer>>;
  /** Kernels with a signature: every declared uniform field's value, by name. */
  params?: Readonly<Record<string, number>>;
  /** Workgroup counts, or an indirect-args buffer (3 x u32 at offset). */
  workgroups: readonly [number, number?, number?] | { indirect: GPUBuffer; offset?: number };
}

/**
 * The ordered buffers and uniform bytes of a dispatch of a kernel with a
 * signature, from its `bind` and `params` by name. A missing or unknown name
 * throws (a programming error in the op, not a user input).
 */
export function bindBySignature(kernelName: string, sig: KernelSignature, bind: Readonly<Record<string, GPUBuffer>>, params: Readonly<Record<string, number>> = {}): { buffers: GPUBuffer[]; uniforms?: ArrayBuffer } {
  const names = new Set(sig.bindings.map((b) => b.name));
  for (const k of Object.keys(bind)) if (!names.has(k)) throw new Error(`${kernelName}: no binding named ${k} (declared: ${[...names].join(', ')})`);
  const buffers = sig.bindings.map((b) => {
    const buf = bind[b.name];
    if (!buf) throw new Error(`${kernelName}: binding ${b.name} not given`);
    return buf;
  });
  const fields = sig.uniforms ?? [];
  const fieldNames = new Set(fields.map((f) => f.name));
  for (const k of Object.keys(params)) if (!fieldNames.has(k)) throw new Error(`${kernelName}: no uniform named ${k} (declared: ${[...fieldNames].join(', ')})`);
  if (!fields.length) return { buffers };
  const u = new Uniforms();
  for (const f of fields) {
    const v = params[f.name];
    if (v === undefined) throw new Error(`${kernelName}: uniform ${f.name} not given`);
    u[f.type](v);
  }
  return { buffers, uniforms: u.finish() };
}

/** Packs uniform values: numbers are u32 unless wrapped with `f32()` or `i32()`. */
export class Uniforms {
  private words: { t: 'u' | 'i' | 'f'; v: number }[] = [];
  u32(...v: number[]): this {
    for (const x of v) this.words.push({ t: 'u', v: x });
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) this.words.push({ t: 'i', v: x });
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) this.words.push({ t: 'f', v: x });
    return this;
  }
  finish(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const dv = new DataView(buf);
    this.words.forEach((w, i) => {
      if (w.t === 'u') dv.setUint32(i * 4, w.v >>> 0, true);
      else if (w.t === 'i') dv.setInt32(i * 4, w.v | 0, true);
      else dv.setFloat32(i * 4, w.v, true);
    });
    return buf;
  }
}

const ARENA_BYTES = 16384;
const arenaFree = new WeakMap<GPUDevice, GPUBuffer[]>();
function perDeviceList(m: WeakMap<GPUDevice, GPUBuffer[]>, d: GPUDevice): GPUBuffer[] {
  let l = m.get(d);
  if (!l) {
    l = [];
    m.set(d, l);
  }
  return l;
}

/** Most free uniform arenas kept per device. */
const ARENAS_KEPT = 16;

/** Gives uniform arenas back to the device's free list (reused by later recorders), destroying those past ARENAS_KEPT. */
function releaseArenas(device: GPUDevice, bufs: readonly GPUBuffer[]): void {
  const free = perDeviceList(arenaFree, device);
  for (const b of bufs) {
    if (free.length < ARENAS_KEPT) free.push(b);
    else b.destroy();
  }
}

/** Most bind groups kept per device by cachedBindGroup (the least recently used leave first). */
export const BIND_GROUP_CACHE_MAX = 4096;
const bindGroupCaches = new WeakMap<GPUDevice, Map<string, GPUBindGroup>>();
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
/** A stable number for an object (cache keys name pipelines and buffers by identity, never by value). */
export function objectId(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(o, id);
  }
  return id;
}

/**
 * The bind group of `pipeline` over these buffer ranges, made once per device: a forward recorded again on the same
 * buffers (pooled scratch, the shared scratch cache, reused uniform arenas) takes its bind groups from here instead of
 * creating them (each ~35 us of host time on the H200's host, 2026-12-04; a prefill forward creates ~25). Keyed by
 * object identity of the pipeline and buffers (a new buffer is a new key), at most BIND_GROUP_CACHE_MAX per device.
 */
export function cachedBindGroup(device: GPUDevice, pipeline: GPUComputePipeline, entries: readonly GPUBindGroupEntry[]): GPUBindGroup {
  let key = String(objectId(pipeline));
  for (const e of entries) {
    const r = e.resource as GPUBufferBinding;
    key += `|${e.binding}:${objectId(r.buffer)}:${r.offset ?? 0}:${r.size ?? -1}`;
  }
  const cache = perDevice(bindGroupCaches, device);
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  cache.set(key, bg);
  if (cache.size > BIND_GROUP_CACHE_MAX) cache.delete(cache.keys().next().value!);
  return bg;
}

/** Timing of one dispatch, in ns, when a Recorder was created with timestamps. */
export interface KernelTiming {
  name: string;
  ns: number;
}

/**
 * Records dispatches into one command encoder and submits them together (few
 * submits, no host round trip). Owns the uniform buffers it creates; they are
 * freed after submit. With `timestamps` (and the feature), each dispatch gets
 * its own pass with timestamp writes, for a per-kernel breakdown.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx);
 * rec.dispatch({ kernel, variant, buffers: [a, b], uniforms, workgroups: [n] });
 * rec.submit();
 * ```
 */
export class Recorder {
  readonly ctx: GpuContext;
  readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  private temps: GPUBuffer[] = [];
  /** Temps from the shared scratch cache (temp with `reuse`), given back after submit. */
  private reused: GPUBuffer[] = [];
  private readonly timestamps: boolean;
  private readonly totalOnly: boolean;
  private querySet: GPUQuerySet | undefined;
  private queryNames: string[] = [];
  private readonly maxQueries = 512;
  private submitted = false;
  private readonly capture: boolean;
  /** A capture's transient scratch (GraphScratch), where `temp` with `reuse` comes from while capturing. */
  private readonly transient: BufferPool | undefined;
  private commands: GraphCommand[] = [];

  /**
   * @param opts.capture keep what is recorded (pipelines, bind groups,
   *   uniforms, temps) so that `toGraph()` can replay it without re-recording.
   * @param opts.timestamps true: one pass per dispatch with timestamps (a
   *   per-kernel breakdown; each pass boundary adds a barrier). 'total': all
   *   dispatches in one pass, timed as a whole.
   * @param opts.transient with `capture`: the capture's GraphScratch, where
   *   `temp(..., { reuse: true })` comes from (the graph binds it, shared with other graphs) instead of a buffer
   *   the graph owns.
   */
  constructor(ctx: GpuContext, opts: { timestamps?: boolean | 'total'; label?: string; capture?: boolean; transient?: BufferPool } = {}) {
    ctx.assertAlive();
    this.ctx = ctx;
    this.capture = !!opts.capture;
    this.transient = this.capture ? opts.transient : undefined;
    this.encoder = ctx.device.createCommandEncoder({ label: opts.label ?? 'recorder' });
    this.timestamps = !!opts.timestamps && ctx.features.timestampQuery;
    this.totalOnly = opts.timestamps === 'total';
    if (this.timestamps) this.querySet = ctx.device.createQuerySet({ type: 'timestamp', count: this.maxQueries });
  }

  private getPass(name: string): GPUComputePassEncoder {
    if (this.timestamps && this.totalOnly) {
      if (this.pass) return this.pass;
      if (this.queryNames.length === 0) {
        this.queryNames.push('total');
        return (this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } }));
      }
    }
    if (this.timestamps && !this.totalOnly && this.queryNames.length * 2 < this.maxQueries) {
      this.endPass();
      const i = this.queryNames.length;
      this.queryNames.push(name);
      return (this.pass = this.encoder.beginComputePass({
        timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      }));
    }
    return (this.pass ??= this.encoder.beginComputePass());
  }

  private arenas: { buf: GPUBuffer; host: Uint8Array<ArrayBuffer>; used: number }[] = [];

  /**
   * Places one uniform block in the recorder's uniform arena (16 KiB chunks
   * reused across recorders of a device; written with one writeBuffer per
   * chunk at submit, which the queue orders before the submitted commands).
   * Creating a mapped buffer per dispatch costs ~100 us in Dawn.
   */
  private uniformSlot(data: Uint8Array): GPUBufferBinding {
    const align = this.ctx.limits.minUniformBufferOffsetAlignment ?? 256;
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    let a = this.arenas[this.arenas.length - 1];
    if (!a || a.used + size > ARENA_BYTES) {
      if (size > ARENA_BYTES) throw new LimitError('uniform block bytes', size, ARENA_BYTES);
      const free = perDeviceList(arenaFree, this.ctx.device);
      const buf = free.pop() ?? this.ctx.device.createBuffer({ label: 'uniform-arena', size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      a = { buf, host: new Uint8Array(ARENA_BYTES), used: 0 };
      this.arenas.push(a);
    }
    const offset = a.used;
    a.host.set(data, offset);
    a.used = Math.ceil((offset + size) / align) * align;
    return { buffer: a.buf, offset, size };
  }

  /** Ends the current compute pass (so that copies can be recorded). */
  endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  /**
   * A temporary storage buffer owned by this recorder, zero-filled, destroyed after submit. With `reuse` (for a buffer
   * the recorded work writes in full before reading it; its contents are undefined, its size at least `bytes`) and
   * not capturing: taken from the context's shared scratch cache (sharedScratch) and given back after submit, so
   * that large per-call buffers (f16 x rows, split-K partials of the prefill GEMMs) are not allocated every call;
   * capturing with a `transient` scratch: taken from it.
   */
  temp(bytes: number, label = 'temp', opts: { reuse?: boolean } = {}): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    if (opts.reuse && this.transient) return this.transient.acquire(size, label);
    if (opts.reuse && !this.capture) {
      const b = sharedScratch(this.ctx).acquire(size, label);
      this.reused.push(b);
      return b;
    }
    const b = this.ctx.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.INDIRECT });
    this.temps.push(b);
    return b;
  }

  dispatch<V extends Variant>(d: DispatchSpec<V>): void {
    const pipeline = getPipeline(this.ctx, d.kernel, d.variant);
    const sig = d.kernel.signature?.(d.variant);
    if (sig && (d.buffers || d.uniforms)) throw new Error(`${d.kernel.name}: a kernel with a signature is dispatched with bind / params, not buffers / uniforms`);
    if (!sig && (d.bind || d.params)) throw new Error(`${d.kernel.name}: bind / params need a kernel signature`);
    const { buffers, uniforms } = sig ? bindBySignature(d.kernel.name, sig, d.bind ?? {}, d.params) : { buffers: d.buffers ?? [], uniforms: d.uniforms };
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));
    if (uniforms) {
      const data = uniforms instanceof ArrayBuffer ? new Uint8Array(uniforms) : new Uint8Array(uniforms.buffer, uniforms.byteOffset, uniforms.byteLength);
      entries.push({ binding: buffers.length, resource: this.uniformSlot(data) });
    }
    const bg = cachedBindGroup(this.ctx.device, pipeline, entries);
    const pass = this.getPass(d.kernel.name);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    const w = d.workgroups;
    if (this.capture) {
      // the buffers the dispatch may write: its read_write bindings (every buffer of a kernel without a signature)
      const writes = sig ? buffers.filter((_, i) => sig.bindings[i].access === 'read_write') : buffers;
      this.commands.push('indirect' in w ? { kind: 'dispatch', pipeline, bg, entries, writes, indirect: w.indirect, offset: w.offset ?? 0 } : { kind: 'dispatch', pipeline, bg, entries, writes, wg: [w[0], w[1] ?? 1, w[2] ?? 1] });
    }
    if ('indirect' in w) pass.dispatchWorkgroupsIndirect(w.indirect, w.offset ?? 0);
    else {
      const [x, y = 1, z = 1] = w as readonly [number, number?, number?];
      const max = this.ctx.limits.maxComputeWorkgroupsPerDimension;
      for (const [k, v] of [['x', x], ['y', y], ['z', z]] as const) {
        if (v > max) throw new LimitError('maxComputeWorkgroupsPerDimension', v, max, `${d.kernel.name} dispatch ${k}`);
      }
      if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    }
  }

  /** Records a buffer copy (ends the current pass first). `capture: false` keeps it out of a captured graph (e.g. this call's input copy). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number, opts: { capture?: boolean } = {}): void {
    this.endPass();
    if (this.capture && opts.capture !== false) this.commands.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  private resolveBuf: GPUBuffer | undefined;
  private readBuf: GPUBuffer | undefined;

  /** Finishes and submits. Returns once submitted (not completed). */
  submit(): void {
    if (this.submitted) throw new Error('Recorder: submitted twice');
    this.submitted = true;
    this.endPass();
    if (this.timestamps && this.queryNames.length) {
      const n = this.queryNames.length * 2;
      this.resolveBuf = this.ctx.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.readBuf = this.ctx.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.encoder.resolveQuerySet(this.querySet!, 0, n, this.resolveBuf, 0);
      this.encoder.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * 8);
    }
    for (const a of this.arenas) this.ctx.writeBuffer(a.buf, 0, a.host, 0, Math.min(ARENA_BYTES, a.used));
    this.ctx.submit([this.encoder.finish()]);
    this.releaseReused();
    if (this.capture) return; // temps and uniform arenas now belong to the graph
    for (const t of this.temps) t.destroy();
    this.temps = [];
    releaseArenas(this.ctx.device, this.arenas.map((a) => a.buf));
    this.arenas = [];
  }

  /**
   * Drops a recording that will not be submitted (an error while recording): its temps are destroyed and those from
   * the shared scratch cache given back. The recorder cannot be used afterwards.
   */
  discard(): void {
    if (this.submitted) return;
    this.submitted = true;
    this.endPass();
    this.releaseReused();
    for (const t of this.temps) t.destroy();
    this.temps = [];
  }

  /** Gives the temps taken from the shared scratch cache back to it (after submit, or on discard). */
  private releaseReused(): void {
    if (this.reused.length === 0) return;
    const cache = sharedScratch(this.ctx);
    for (const b of this.reused) cache.release(b);
    this.reused = [];
  }

  /**
   * After submit of a capturing recorder: a graph that replays the same
   * dispatches and copies on the same buffers (the caller keeps every buffer
   * it bound alive for the graph's lifetime). The graph owns the recorder's
   * temps and uniforms.
   */
  toGraph(): GpuGraph {
    if (!this.capture || !this.submitted) throw new Error('Recorder.toGraph: needs a recorder created with { capture: true } and submitted');
    const g = new GpuGraph(this.ctx, this.commands, this.temps, this.arenas.map((a) => a.buf));
    this.commands = [];
    this.temps = [];
    this.arenas = [];
    return g;
  }

  /** After submit: the per-dispatch GPU times (empty without timestamps). */
  async timings(): Promise<KernelTiming[]> {
    if (!this.readBuf) return [];
    await this.readBuf.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.readBuf.getMappedRange().slice(0));
    this.readBuf.unmap();
    const out = this.queryNames.map((name, i) => ({ name, ns: Number(t[2 * i + 1] - t[2 * i]) }));
    this.readBuf.destroy();
    this.resolveBuf?.destroy();
    this.querySet?.destroy();
    this.readBuf = this.resolveBuf = this.querySet = undefined;
    return out;
  }
}

/** One command of a captured {@link GpuGraph} (a dispatch or a buffer copy), as `Recorder.toGraph()` records it. */
export type GraphCommand =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bg: GPUBindGroup; entries: readonly GPUBindGroupEntry[]; writes: readonly GPUBuffer[]; wg?: [number, number, number]; indirect?: GPUBuffer; offset?: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

/**
 * Submits a long replay in pieces: the first after `first` dispatches, each
 * next one twice as many, up to `max` (see {@link GpuGraph.replay}).
 * @example `graph.replay({ pieces: { first: 8, max: 64 } })`
 */
export interface SubmitPieces {
  /** Dispatches in the first piece. */
  first: number;
  /** The most dispatches in one piece. */
  max: number;
}

/** Options of {@link GpuGraph.replay}. */
export interface ReplayOptions {
  /** Copies recorded before the graph (e.g. the input into the graph's input buffer). */
  pre?: (enc: GPUCommandEncoder) => void;
  /** Copies recorded after the graph (e.g. its output out). */
  post?: (enc: GPUCommandEncoder) => void;
  /** Time the replay (one submit): the promise gives its GPU time in ns. */
  timestamps?: boolean;
  /**
   * Append to the context's deferred encoder (`GpuContext.deferredEncoder`: one submit for the replays of one
   * task) instead of a submit of its own (untimed only). Not the default: on an H200, a chain of 16 decode
   * layers deferred to one submit ran slower (Qwen3-30B T = 1: 0.151 vs 0.084 ms per layer, 2026-12-04),
   * because the GPU waits for the whole chain to be issued instead of starting on the first layer.
   */
  defer?: boolean;
  /**
   * Submit in pieces of growing size (untimed, not deferred): the GPU starts on the first piece while the
   * host issues the rest, instead of waiting for the whole replay (a long graph, e.g. a stack of layers,
   * takes longer to issue than its first layers take to run). Each extra piece costs one submit.
   */
  pieces?: SubmitPieces;
  /** Replay this graph's commands on other buffers ({@link GpuGraph.rebound}) instead of the captured ones. */
  binding?: GraphBinding;
}

/**
 * A graph's commands with some of its buffers replaced by others (bind groups made once, through the bind-group
 * cache), for `replay({ binding })`: e.g. a forward replayed on the caller's input and output buffers instead of
 * copies into and out of the captured ones. Made by {@link GpuGraph.rebound}.
 */
export interface GraphBinding {
  readonly graph: GpuGraph;
  readonly commands: readonly GraphCommand[];
}

/**
 * A captured recording that replays without re-recording: one encoder, the
 * cached pipelines and bind groups, one submit (the WebGPU analogue of a CUDA
 * graph; decode is host-bound otherwise). Made by `Recorder.toGraph()`.
 *
 * @example
 * ```ts
 * const rec = new Recorder(ctx, { capture: true }); record(rec); rec.submit();
 * const graph = rec.toGraph();
 * graph.replay(); graph.destroy();
 * ```
 */
export class GpuGraph {
  readonly ctx: GpuContext;
  private commands: GraphCommand[];
  private owned: GPUBuffer[];
  /** The uniform arenas the graph's dispatches bind (its own; back to the device's free arenas when it is freed). */
  private uniforms: GPUBuffer[];
  private querySet: GPUQuerySet | undefined;
  private resolve: GPUBuffer | undefined;

  /**
   * @param owned buffers the graph owns (destroyed with it)
   * @param uniforms uniform arenas (ARENA_BYTES) the graph owns: given back to the device's free arenas with it, so that
   *   the next recording or capture binds the same buffers and finds its bind groups in the cache
   */
  constructor(ctx: GpuContext, commands: GraphCommand[], owned: GPUBuffer[], uniforms: GPUBuffer[] = []) {
    this.ctx = ctx;
    this.commands = commands;
    this.owned = owned;
    this.uniforms = uniforms;
  }

  /** Number of dispatches. */
  get dispatchCount(): number {
    return this.commands.filter((c) => c.kind === 'dispatch').length;
  }

  /** Whether a command of the graph may write `buffer` (a read_write binding of a dispatch, or a copy's destination). */
  writes(buffer: GPUBuffer): boolean {
    return this.commands.some((c) => (c.kind === 'copy' ? c.dst === buffer : c.writes.includes(buffer)));
  }

  /**
   * The graph's commands with every use of a buffer in `swap`'s keys (bound whole, or copied) moved to its value:
   * the caller keeps the new buffers alive while it replays the binding, and they must be usable where the old ones
   * were (same usages, at least their size, no buffer bound twice in one dispatch where one binding writes).
   * @example `graph.replay({ binding: graph.rebound(new Map([[xIn.buffer, x.buffer]])) })`
   */
  rebound(swap: ReadonlyMap<GPUBuffer, GPUBuffer>): GraphBinding {
    const d = this.ctx.device;
    const commands = this.commands.map((c): GraphCommand => {
      if (c.kind === 'copy') return { ...c, src: swap.get(c.src) ?? c.src, dst: swap.get(c.dst) ?? c.dst };
      if (!c.entries.some((e) => swap.has((e.resource as GPUBufferBinding).buffer))) return c;
      const entries = c.entries.map((e) => {
        const r = e.resource as GPUBufferBinding;
        const to = swap.get(r.buffer);
        return to ? { binding: e.binding, resource: { ...r, buffer: to } } : e;
      });
      return { ...c, entries, writes: c.writes.map((b) => swap.get(b) ?? b), bg: cachedBindGroup(d, c.pipeline, entries) };
    });
    return { graph: this, commands };
  }

  /**
   * Replays (see {@link ReplayOptions}). With `timestamps`, the returned promise gives the GPU time of the
   * replay in ns; else it resolves to -1 at once.
   */
  replay(opts: ReplayOptions = {}): Promise<number> {
    this.ctx.assertAlive();
    const d = this.ctx.device;
    const timed = !!opts.timestamps && this.ctx.features.timestampQuery;
    const deferred = !!opts.defer && !timed;
    const pieces = !timed && !deferred ? opts.pieces : undefined;
    let enc = deferred ? this.ctx.deferredEncoder() : d.createCommandEncoder({ label: 'graph' });
    opts.pre?.(enc);
    if (timed && !this.querySet) {
      this.querySet = d.createQuerySet({ type: 'timestamp', count: 2 });
      this.resolve = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    }
    let pass: GPUComputePassEncoder | undefined;
    let first = true;
    // with `pieces`: dispatches left in this piece, and the size of the next one
    let left = pieces ? pieces.first : Infinity;
    let next = pieces ? Math.min(2 * pieces.first, pieces.max) : Infinity;
    if (opts.binding && opts.binding.graph !== this) throw new Error('GpuGraph.replay: a binding of another graph');
    for (const c of opts.binding?.commands ?? this.commands) {
      if (c.kind === 'copy') {
        pass?.end();
        pass = undefined;
        enc.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
        continue;
      }
      if (left === 0) {
        // this piece is full: submit it so that the GPU starts while the rest is issued
        pass?.end();
        pass = undefined;
        this.ctx.submit([enc.finish()]);
        enc = d.createCommandEncoder({ label: 'graph' });
        left = next;
        next = Math.min(2 * next, pieces!.max);
      }
      if (!pass) {
        pass = enc.beginComputePass(timed && first ? { timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined);
        first = false;
      }
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bg);
      if (c.indirect) pass.dispatchWorkgroupsIndirect(c.indirect, c.offset ?? 0);
      else if (c.wg![0] > 0 && c.wg![1] > 0 && c.wg![2] > 0) pass.dispatchWorkgroups(c.wg![0], c.wg![1], c.wg![2]);
      left--;
    }
    pass?.end();
    let read: GPUBuffer | undefined;
    if (timed) {
      read = d.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.resolveQuerySet(this.querySet!, 0, 2, this.resolve!, 0);
      enc.copyBufferToBuffer(this.resolve!, 0, read, 0, 16);
    }
    opts.post?.(enc);
    if (deferred) return Promise.resolve(-1);
    this.ctx.submit([enc.finish()]);
    if (!timed) return Promise.resolve(-1);
    const r = read!;
    return r.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigUint64Array(r.getMappedRange().slice(0));
      r.unmap();
      r.destroy();
      return Number(t[1] - t[0]);
    });
  }

  /** Frees the graph's temps and uniforms (not the buffers its user bound). */
  destroy(): void {
    if (this.owned.length) this.ctx.flush(); // deferred replays may still use them
    for (const b of this.owned) b.destroy();
    this.owned = [];
    // the queue orders a later recorder's uniform writes after the replays already submitted
    releaseArenas(this.ctx.device, this.uniforms);
    this.uniforms = [];
    this.commands = [];
    this.querySet?.destroy();
    this.resolve?.destroy();
    this.querySet = this.resolve = undefined;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
