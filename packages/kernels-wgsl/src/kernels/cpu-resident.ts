/**
 * Host tensors whose data the CPU kernels read where it lies. The CPU kernels' WebAssembly SIMD dot products
 * (cpu-simd.ts) read their operands from the module's memory, so a dense 16-bit weight row is first copied there
 * (~64 KiB of rows at a time, cpu-kernels.ts): at one token that copy costs as much as the dot products themselves
 * (a Qwen3-30B-sized expert stack on this project's 2-core host: 4.5 ms of copies and 4.5 ms of dots per layer).
 * {@link cpuResident} copies tensors once into the memory of an instance of the SIMD module of their own (grown once to
 * hold them and a scratch area for the kernels' input rows, never again); the CPU kernels then read dense float32,
 * bfloat16 and float16 weights of such a tensor in place (the same dot functions on the same bit patterns: the same
 * results, bit for bit). nn's modules on `DeviceRef.CPU()` keep their float parameters this way.
 */
import { HostTensor } from '@webmoe/tensor';
import { cpuSimd, simdInstance, type CpuSimd } from './cpu-simd.js';

/** A memory cpuResident made: the SIMD functions over it, its scratch area (byte offset and size) and its row dots' results. */
export interface ResidentMemory {
  simd: CpuSimd;
  /** Byte offset of the scratch area (the input rows of a kernel's block), past every tensor's data. */
  scratch: number;
  scratchBytes: number;
  /** Byte offset of two arrays of ROW_DOTS f64 (the row dots' results of a kernel's two weight slots), past the scratch. */
  results: number;
}

/** The most weight rows one row-dots call over a resident memory takes (the results arrays' length). */
export const ROW_DOTS = 256;

/** The memories cpuResident made, by their buffer (a memory that is not grown again keeps its buffer). */
const residents = new WeakMap<ArrayBufferLike, ResidentMemory>();

/** Bytes of a WebAssembly page, and the most pages of a 32-bit memory. */
const PAGE_BYTES = 65536;
const MAX_PAGES = 65536;
/**
 * The scratch holds this many input rows of the widest tensor's rows (a prefill block), within SCRATCH_MAX_BYTES: each
 * block streams every weight row once more (Qwen3-30B-sized experts, T = 128 on this host, 2026-12-08: 64-row blocks
 * 5% slower than the copying path's 4 MiB blocks, 256-row blocks level; T = 512 level).
 */
const SCRATCH_ROWS = 256;
const SCRATCH_MAX_BYTES = 2 << 20;

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * Copies `tensors` into one new WebAssembly memory (each 16-byte aligned, then a scratch area for at least one f32
 * row of the widest: 256 rows, at most 2 MiB past one, and 4 KiB for the kernels' row-dot results) that the CPU
 * kernels read in place, and returns the copies (same dtypes, shapes and values; the inputs are left as they are). Tensors that together exceed one 32-bit memory (4 GiB)
 * get a memory each; a tensor that alone exceeds it, and every tensor where WebAssembly SIMD is missing or turned off
 * or the memory cannot be had, comes back as it was given: the kernels then copy its rows as before. Give one call the
 * tensors a module reads together (one memory for them).
 * @example `const [gateUp, down] = cpuResident([gateUp0, down0]); isCpuResident(gateUp) // true with WebAssembly SIMD`
 */
export function cpuResident(tensors: readonly HostTensor[]): HostTensor[] {
  return residentCopies(tensors, MAX_PAGES);
}

/** {@link cpuResident} with memories of at most `maxPages` pages (the tests' way to reach the per-tensor split). */
export function residentCopies(tensors: readonly HostTensor[], maxPages: number): HostTensor[] {
  if (tensors.length === 0 || !cpuSimd()) return [...tensors];
  const offsets: number[] = [];
  let end = 0;
  let widest = 1;
  for (const t of tensors) {
    offsets.push(end);
    end = align16(end + t.data.byteLength);
    widest = Math.max(widest, t.shape[t.shape.length - 1] ?? 1);
  }
  const scratchBytes = align16(Math.max(4 * widest, Math.min(SCRATCH_MAX_BYTES, 4 * widest * SCRATCH_ROWS)));
  const results = end + scratchBytes;
  const pages = Math.ceil((results + 2 * 8 * ROW_DOTS) / PAGE_BYTES);
  // past one memory: a memory for each tensor (those that fit one)
  if (pages > maxPages) return tensors.length > 1 ? tensors.flatMap((t) => residentCopies([t], maxPages)) : [...tensors];
  const simd = simdInstance(pages);
  if (!simd) return [...tensors]; // no memory of that size here: the copying path
  const buf = simd.memory.buffer;
  const out = tensors.map((t, i) => {
    const d = t.data;
    new Uint8Array(buf, offsets[i], d.byteLength).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    const View = d.constructor as new (b: ArrayBuffer, o: number, n: number) => typeof d;
    return new HostTensor(t.dtype, t.shape, new View(buf, offsets[i], d.length));
  });
  residents.set(buf, { simd, scratch: end, scratchBytes, results });
  return out;
}

/**
 * Whether `t`'s data lies in a memory {@link cpuResident} made (the CPU kernels read it in place).
 * @example `isCpuResident(moe.stacked.gateUpProj.value) // true for a layer on DeviceRef.CPU() with WebAssembly SIMD`
 */
export function isCpuResident(t: HostTensor): boolean {
  return residents.has(t.data.buffer);
}

/** The memory {@link cpuResident} made that holds `data`, or undefined. */
export function residentMemoryOf(data: ArrayBufferView): ResidentMemory | undefined {
  return residents.get(data.buffer);
}
