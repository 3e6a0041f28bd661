import { WebMoEError } from '@webmoe/tensor';

/**
 * A sharding request that cannot be satisfied (a shard index out of range, a
 * dimension that must divide evenly and does not, a strategy applied to a
 * tensor of the wrong rank, collectives given mismatched inputs). The
 * message says what was expected and what came.
 *
 * @example
 * ```ts
 * try { ShardingStrategy.expertParallel(3).shard(w, 0); } catch (e) {
 *   if (e instanceof ShardingError) console.log(e.message); // "... expected divisible by 3, got 8"
 * }
 * ```
 */
export class ShardingError extends WebMoEError {
  constructor(what: string, expected: string, got: unknown) {
    super('SHARDING', `${what}: expected ${expected}, got ${typeof got === 'string' ? got : JSON.stringify(got)}`);
  }
}
