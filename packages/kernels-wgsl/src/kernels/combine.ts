/**
 * Combine: out[t,h] = sum over j = 0..k-1 (in that order, f32) of
 * w[t,j] * y[position[t*k+j], h] (or the unweighted sum), then
 * + shared[t,h] (times sigmoid(sharedGateLogit[t]) when given).
 * One thread per output element, or per 4 of them where H % 4 == 0 (16-byte
 * loads and stores; the same sums in the same order): deterministic, no atomics.
 */
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import type { GpuTensor } from '../runtime/tensor.js';
import type { BufferPool } from '../runtime/pool.js';
import { defineKernel, foldWorkgroups, uniformFields, type BindingDecl, type Recorder } from '../runtime/kernel.js';
import { allocOutput, expect2d, expectLive } from './op-util.js';
import type { GroupingGpu, GroupingRef } from './moe-types.js';

const WG = 256;

/** Variant of the combine kernel: `v4`, four outputs per thread (H % 4 == 0). */
export type CombineVariant = { weighted: boolean; shared: boolean; gate: boolean; v4?: boolean };

/** The combine kernel's storage bindings: Y, POS, then WT, SH, GL when the variant has them, then OUT (Y, SH, OUT of vec4 with v4). */
function combineBindings(v: CombineVariant): BindingDecl[] {
  const rows = v.v4 ? 'array<vec4<f32>>' : 'array<f32>';
  const read = (name: string, type = 'array<f32>'): BindingDecl => ({ name, type, access: 'read' });
  const b = [read('Y', rows), read('POS', 'array<u32>')];
  if (v.weighted) b.push(read('WT'));
  if (v.shared) b.push(read('SH', rows));
  if (v.gate) b.push(read('GL'));
  b.push({ name: 'OUT', type: rows, access: 'read_write' });
  return b;
}

/** The combine kernel. */
export const combineKernel = defineKernel<CombineVariant>(
  'combine',
  (v) => {
    // u.n and u.H count the elements of OUT and of a row (vec4s with v4)
    const term = v.weighted ? 'WT[p] * Y[POS[p] * u.H + h]' : 'Y[POS[p] * u.H + h]';
    const shared = v.shared ? (v.gate ? `acc = acc + SH[i] * (1.0 / (1.0 + exp(-GL[t])));` : `acc = acc + SH[i];`) : '';
    const zero = v.v4 ? 'vec4<f32>(0.0)' : '0.0';
    return /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= u.n) { return; }
  let t = i / u.H;
  let h = i % u.H;
  var acc = ${zero};
  for (var j = 0u; j < u.k; j++) {
    let p = t * u.k + j;
    acc = acc + ${term};
  }
  ${shared}
  OUT[i] = acc;
}
`;
  },
  { signature: (v) => ({ bindings: combineBindings(v), uniforms: uniformFields('u32', 'n', 'H', 'k') }) },
);

/** Options of {@link combineGpu}. */
export interface CombineOptions {
  /** Shared-expert output, float32 [T,H], added to every token. */
  shared?: GpuTensor;
  /** Qwen2-MoE shared expert gate logit, float32 [T] (or [T,1]): adds sigmoid(l) * shared. Needs `shared`. */
  sharedGateLogit?: GpuTensor;
  /** Allocate the output from this pool. */
  pool?: BufferPool;
}

/**
 * Records the combine of the expert outputs `y` (float32 [T*k, H], in the
 * row order of `g`: row `g.position[t*k+j]` holds token t's slot j; a
 * GroupingGpu, or any T, k and position, e.g. an expert-parallel send order)
 * into a new float32 [T,H] tensor owned by the caller.
 * `weights` float32 [T,k], or null for the unweighted sum
 * (applyRouterWeightFirst).
 *
 * @example
 * ```ts
 * const out = combineGpu(ctx, rec, y, g, routing.weights, { shared });
 * ```
 */
export function combineGpu(ctx: GpuContext, rec: Recorder, y: GpuTensor, g: Pick<GroupingGpu, 'T' | 'k' | 'position'>, weights: GpuTensor | null, opts: CombineOptions = {}): GpuTensor {
  const { T, k } = g;
  expectLive('combineGpu', { y, 'g.position': g.position, weights, shared: opts.shared, sharedGateLogit: opts.sharedGateLogit });
  if (y.dtype !== 'float32') throw new DTypeError('combineGpu y', 'float32', y.dtype);
  const [rows, H] = expect2d('combineGpu y [T*k, H]', y.shape);
  if (rows !== T * k) throw new ShapeError('combineGpu y [T*k, H]', [T * k, H], y.shape);
  checkCombineInputs('combineGpu', T, k, H, g.position, weights, opts);
  const { shared, sharedGateLogit: gate } = opts;
  const out = allocOutput(ctx, opts.pool, 'float32', [T, H], 'combine.out');
  if (T * H === 0) return out;
  // four outputs per thread where a row is whole vec4s
  const v4 = H % 4 === 0;
  const lanes = v4 ? 4 : 1;
  const n = (T * H) / lanes;
  const bind: Record<string, GPUBuffer> = { Y: y.buffer, POS: g.position.buffer, OUT: out.buffer };
  if (weights) bind.WT = weights.buffer;
  if (shared) bind.SH = shared.buffer;
  if (gate) bind.GL = gate.buffer;
  try {
    rec.dispatch({
      kernel: combineKernel,
      variant: { weighted: !!weights, shared: !!shared, gate: !!gate, ...(v4 ? { v4 } : {}) },
      bind,
      params: { n, H: H / lanes, k },
      workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)),
    });
  } catch (e) {
    out.destroy();
    throw e;
  }
  return out;
}

/**
 * The combine's inputs beside the expert outputs, checked for T tokens of k slots over H outputs (`op` names the
 * caller in the errors): `position` uint32 [T*k], `weights` float32 [T, k] (or null), `shared` float32 [T, H] and
 * its gate logit float32 [T] or [T, 1] (only with `shared`). combineGpu's and the combined down GEMV's checks.
 * @example `checkCombineInputs('combineGpu', T, k, H, g.position, weights, opts)`
 */
export function checkCombineInputs(op: string, T: number, k: number, H: number, position: GpuTensor, weights: GpuTensor | null, opts: Pick<CombineOptions, 'shared' | 'sharedGateLogit'>): void {
  if (position.dtype !== 'uint32') throw new DTypeError(`${op} g.position`, 'uint32', position.dtype);
  if (position.size !== T * k) throw new ShapeError(`${op} g.position`, [T * k], position.shape);
  if (weights) {
    if (weights.dtype !== 'float32') throw new DTypeError(`${op} weights`, 'float32', weights.dtype);
    const [wt, wk] = expect2d(`${op} weights [T, k]`, weights.shape);
    if (wt !== T || wk !== k) throw new ShapeError(`${op} weights [T, k]`, [T, k], weights.shape);
  }
  const { shared, sharedGateLogit: gate } = opts;
  if (shared) {
    if (shared.dtype !== 'float32') throw new DTypeError(`${op} shared`, 'float32', shared.dtype);
    const [st, sh] = expect2d(`${op} shared [T, H]`, shared.shape);
    if (st !== T || sh !== H) throw new ShapeError(`${op} shared [T, H]`, [T, H], shared.shape);
  }
  if (gate) {
    if (!shared) throw new ValueError(`${op} sharedGateLogit`, 'to come with `shared`', 'sharedGateLogit without shared');
    if (gate.dtype !== 'float32') throw new DTypeError(`${op} sharedGateLogit`, 'float32', gate.dtype);
    if (gate.size !== T || gate.shape.length > 2 || (gate.shape.length === 2 && gate.shape[1] !== 1)) throw new ShapeError(`${op} sharedGateLogit`, `[${T}] or [${T}, 1]`, gate.shape);
  }
}

/**
 * The TypeScript reference of {@link combineGpu} (f32 sums in slot order).
 *
 * @example
 * ```ts
 * const out = combineRef(y, groupRef(idx, T, k, E), weights);
 * ```
 */
export function combineRef(y: Float32Array, g: GroupingRef, weights: Float32Array | null, shared?: Float32Array, sharedGateLogit?: Float32Array): Float32Array {
  const { T, k } = g;
  const rows = T * k;
  if (rows === 0) return new Float32Array(0);
  const H = y.length / rows;
  if (!Number.isInteger(H)) throw new ShapeError('combineRef y', `a multiple of T*k = ${rows} values`, `${y.length} values`);
  if (g.position.length !== rows) throw new ShapeError('combineRef g.position', [rows], [g.position.length]);
  if (weights && weights.length !== rows) throw new ShapeError('combineRef weights', [T, k], [weights.length]);
  if (shared && shared.length !== T * H) throw new ShapeError('combineRef shared', [T, H], [shared.length]);
  if (sharedGateLogit && !shared) throw new ValueError('combineRef sharedGateLogit', 'to come with `shared`', 'sharedGateLogit without shared');
  if (sharedGateLogit && sharedGateLogit.length !== T) throw new ShapeError('combineRef sharedGateLogit', [T], [sharedGateLogit.length]);
  const out = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const gate = sharedGateLogit ? Math.fround(1 / (1 + Math.exp(-sharedGateLogit[t]))) : 1;
    for (let h = 0; h < H; h++) {
      let acc = 0;
      for (let j = 0; j < k; j++) {
        const p = t * k + j;
        const v = y[g.position[p] * H + h];
        acc = Math.fround(acc + (weights ? Math.fround(weights[p] * v) : v));
      }
      if (shared) acc = Math.fround(acc + Math.fround(shared[t * H + h] * gate));
      out[t * H + h] = acc;
    }
  }
  return out;
}
