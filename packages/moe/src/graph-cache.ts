import type { GpuGraph, GpuTensor } from '@webmoe/kernels-wgsl';

/** One captured forward: the graph, its input and output tensors and the scratch it holds. */
export interface ForwardGraph {
  graph: GpuGraph;
  xIn: GpuTensor;
  out: GpuTensor;
  scratch: { destroy(): void }[];
}

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();

/** A stable id of a GPU buffer (for cache keys; buffers are never compared by value). */
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/**
 * The key of a recorded forward: everything that changes the work it
 * records. `T`, the expert-kernel choice and the identity of every GPU
 * buffer the forward reads (weights replaced by other buffers, as a load
 * or an assignment to `Parameter.gpu` does, give another key).
 * @example `forwardGraphKey(4, 'auto', [w.buffer, b.buffer]) // '4|auto|1,2'`
 */
export function forwardGraphKey(T: number, kernels: string, buffers: Iterable<GPUBuffer>): string {
  const ids: number[] = [];
  for (const b of buffers) ids.push(bufferId(b));
  return `${T}|${kernels}|${ids.join(',')}`;
}

/**
 * A least-recently-used cache of captured forwards (at most `capacity`);
 * evicted and cleared entries free their graph, output and scratch.
 * @example `const g = new ForwardGraphCache(4); g.get(key) ?? g.put(key, captured)`
 */
export class ForwardGraphCache {
  private readonly entries = new Map<string, ForwardGraph>();
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `key`, now the most recently used; undefined when absent. */
  get(key: string): ForwardGraph | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  /** Stores `entry` under `key`, freeing the least recently used entries beyond the capacity. */
  put(key: string, entry: ForwardGraph): void {
    const old = this.entries.get(key);
    if (old && old !== entry) free(old);
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.capacity) {
      const [k, e] = this.entries.entries().next().value!;
      this.entries.delete(k);
      free(e);
    }
  }

  /** Frees every entry. */
  clear(): void {
    for (const e of this.entries.values()) free(e);
    this.entries.clear();
  }
}

function free(e: ForwardGraph): void {
  e.graph.destroy();
  e.out.destroy();
  for (const s of e.scratch) s.destroy();
}
