// The key under which MoE caches a captured forward (kernels-wgsl's ForwardGraphs holds the graphs).

let nextBufferId = 1;
const bufferIds = new WeakMap<object, number>();

/** A stable id of a GPU buffer (for cache keys; buffers are never compared by value). */
function bufferId(b: object): number {
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
export function forwardGraphKey(T: number, kernels: string, buffers: Iterable<object>): string {
  const ids: number[] = [];
  for (const b of buffers) ids.push(bufferId(b));
  return `${T}|${kernels}|${ids.join(',')}`;
}
