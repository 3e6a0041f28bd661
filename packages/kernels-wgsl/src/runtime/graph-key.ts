// The key under which a layer caches a captured forward in ForwardGraphs (graph-cache.ts): what the forward records
// depends on, with every GPU buffer it reads by identity.
import { objectId } from './kernel.js';

/**
 * The key of a recorded forward: everything that changes the work it
 * records. `T`, the expert-kernel choice and the identity of every GPU
 * buffer the forward reads (weights replaced by other buffers, as a load
 * or an assignment to a parameter's GPU tensor does, give another key).
 * @example `forwardGraphKey(4, 'auto', [w.buffer, b.buffer]) // '4|auto|1,2'`
 */
export function forwardGraphKey(T: number, kernels: string, buffers: Iterable<object>): string {
  const ids: number[] = [];
  for (const b of buffers) ids.push(objectId(b));
  return `${T}|${kernels}|${ids.join(',')}`;
}

/** Token counts whose keys GraphKeyMemo keeps at once. */
const KEYS_BY_T = 64;

/**
 * One layer's {@link forwardGraphKey}, remembered: the buffers are walked on every call (a weight replaced by a load
 * or an assignment to a parameter's GPU tensor must give another key) but compared by identity with the last walk's, and a key
 * is built only for a token count, kernel choice or set of buffers not seen since they last changed: a decode chain
 * builds no string per forward.
 * @example `keys.key(1, 'auto', recordedBuffers(layer, gw)) === keys.key(1, 'auto', recordedBuffers(layer, gw))`
 */
export class GraphKeyMemo {
  private buffers: object[] = [];
  private kernels = '';
  /** Keys by token count for `buffers` and `kernels`. */
  private byT = new Map<number, string>();

  key(T: number, kernels: string, buffers: Iterable<object>): string {
    let n = 0;
    let changed = false;
    for (const b of buffers) {
      if (!changed && this.buffers[n] !== b) {
        changed = true;
        this.buffers.length = n;
      }
      if (changed) this.buffers.push(b);
      n++;
    }
    if (n !== this.buffers.length) {
      changed = true;
      this.buffers.length = n;
    }
    if (changed || kernels !== this.kernels) {
      this.kernels = kernels;
      this.byT.clear();
    }
    let key = this.byT.get(T);
    if (key === undefined) {
      if (this.byT.size >= KEYS_BY_T) this.byT.clear(); // prompts of many lengths: a bounded memo, not one per length
      this.byT.set(T, (key = forwardGraphKey(T, kernels, this.buffers)));
    }
    return key;
  }
}
