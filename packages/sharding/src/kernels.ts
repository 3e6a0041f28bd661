import { combineGpu, defineKernel, foldWorkgroups, uniformFields, Recorder, GpuTensor, expectDType, type GpuContext, type BufferPool } from '@webmoe/kernels-wgsl';
import { ShapeError } from '@webmoe/tensor';
import { ShardingError } from './errors.js';
import type { EPDispatchPlan } from './ep.js';

const WG = 256;

/** Variant of the row gather: whether rows are scaled. */
export type GatherRowsVariant = { scaled: boolean };

/** `Y[r, c] = X[rows[r], c] (* scale[r])`; a row index >= T gives a zero row. One thread per output element. */
export const gatherRowsKernel = defineKernel<GatherRowsVariant>(
  'ep.gatherRows',
  ({ scaled }) => /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= u.n) { return; }
  let r = i / u.H;
  let c = i - r * u.H;
  let t = rows[r];
  if (t >= u.T) { Y[i] = 0.0; return; }
  ${scaled ? 'Y[i] = X[t * u.H + c] * scale[r];' : 'Y[i] = X[t * u.H + c];'}
}
`,
  {
    signature: ({ scaled }) => ({
      bindings: [
        { name: 'X', type: 'array<f32>', access: 'read' },
        { name: 'rows', type: 'array<u32>', access: 'read' },
        ...(scaled ? [{ name: 'scale', type: 'array<f32>', access: 'read' } as const] : []),
        { name: 'Y', type: 'array<f32>', access: 'read_write' },
      ],
      uniforms: uniformFields('u32', 'R', 'H', 'T', 'n'),
    }),
  },
);

/**
 * Builds an EP send buffer on the GPU: `Y[r] = x[rows[r]]` (times
 * `scale[r]`, the router weight, when applyRouterWeightFirst). Records into
 * `rec`, never submits. `rows` = the plan's `sendTokens` uploaded as uint32.
 * TypeScript reference: {@link gatherRowsRef}.
 *
 * @example
 * ```ts
 * const send = gatherRowsGpu(ctx, rec, x, sendTokens); // [T*k, H] in send order
 * ```
 */
export function gatherRowsGpu(ctx: GpuContext, rec: Recorder, x: GpuTensor, rows: GpuTensor, opts: { scale?: GpuTensor; pool?: BufferPool } = {}): GpuTensor {
  expectDType('gatherRowsGpu x', x, ['float32']);
  expectDType('gatherRowsGpu rows', rows, ['uint32']);
  if (x.shape.length !== 2) throw new ShapeError('gatherRowsGpu x', ['T', 'H'], x.shape);
  if (rows.shape.length !== 1) throw new ShapeError('gatherRowsGpu rows', ['R'], rows.shape);
  const [T, H] = x.shape;
  const R = rows.shape[0];
  if (opts.scale) {
    expectDType('gatherRowsGpu scale', opts.scale, ['float32']);
    if (opts.scale.size !== R) throw new ShapeError('gatherRowsGpu scale', [R], opts.scale.shape);
  }
  for (const t of [x, rows, opts.scale]) if (t && t.ctx.device !== ctx.device) throw new ShardingError('gatherRowsGpu input', 'tensors on ctx.device', 'a tensor on another device');
  const y = opts.pool ? opts.pool.tensor('float32', [R, H], 'ep.send') : GpuTensor.empty(ctx, 'float32', [R, H], 'ep.send');
  const n = R * H;
  if (n > 0) {
    rec.dispatch({
      kernel: gatherRowsKernel,
      variant: { scaled: !!opts.scale },
      bind: opts.scale ? { X: x.buffer, rows: rows.buffer, scale: opts.scale.buffer, Y: y.buffer } : { X: x.buffer, rows: rows.buffer, Y: y.buffer },
      params: { R, H, T, n },
      workgroups: foldWorkgroups(ctx, Math.ceil(n / WG)),
    });
  }
  return y;
}

/**
 * The EP combine on the GPU: the expert outputs came back in send order
 * (`yBack` [T*k, H]); `out[t] = sum_j w[t,j] * yBack[position[t*k+j]]` in
 * slot order, f32, no atomics (the layer's `combineGpu`). `position` = the plan's
 * `combine.position` as uint32 [T*k]; `weights` null for
 * applyRouterWeightFirst. Reference: {@link epCombineRef}.
 *
 * @example
 * ```ts
 * const out = epCombineGpu(ctx, rec, yBack, position, routing.weights, { k }); // [T, H]
 * ```
 */
export function epCombineGpu(ctx: GpuContext, rec: Recorder, yBack: GpuTensor, position: GpuTensor, weights: GpuTensor | null, opts: { k: number; pool?: BufferPool }): GpuTensor {
  expectDType('epCombineGpu yBack', yBack, ['float32']);
  expectDType('epCombineGpu position', position, ['uint32']);
  const k = opts.k;
  if (!Number.isInteger(k) || k < 1) throw new ShardingError('epCombineGpu k', 'a positive integer', k);
  if (yBack.shape.length !== 2) throw new ShapeError('epCombineGpu yBack', ['T*k', 'H'], yBack.shape);
  const rows = yBack.shape[0];
  if (rows % k !== 0) throw new ShapeError('epCombineGpu yBack rows', `a multiple of k=${k}`, yBack.shape);
  const T = rows / k;
  if (position.size !== rows) throw new ShapeError('epCombineGpu position', [rows], position.shape);
  if (weights) {
    expectDType('epCombineGpu weights', weights, ['float32']);
    if (weights.size !== rows) throw new ShapeError('epCombineGpu weights', [T, k], weights.shape);
  }
  for (const t of [yBack, position, weights]) if (t && t.ctx.device !== ctx.device) throw new ShardingError('epCombineGpu input', 'tensors on ctx.device', 'a tensor on another device');
  // the layer's combine, over the send order's positions
  return combineGpu(ctx, rec, yBack, { T, k, position }, weights, { pool: opts.pool });
}

/**
 * The GPU side of an EP dispatch plan: `sendTokens` and `position` as
 * uint32 tensors on ctx. Owns them: destroy() frees them.
 *
 * @example
 * ```ts
 * using t = EPPlanTensors.upload(ctx, plan);
 * const send = gatherRowsGpu(ctx, rec, x, t.sendTokens);
 * ```
 */
export class EPPlanTensors {
  private constructor(
    readonly sendTokens: GpuTensor,
    readonly position: GpuTensor,
  ) {}
  static upload(ctx: GpuContext, plan: EPDispatchPlan): EPPlanTensors {
    const up = (a: Uint32Array, label: string) => {
      const t = GpuTensor.empty(ctx, 'uint32', [a.length], label);
      if (a.length) ctx.writeBuffer(t.buffer, 0, a.buffer, a.byteOffset, a.byteLength);
      return t;
    };
    return new EPPlanTensors(up(plan.sendTokens, 'ep.sendTokens'), up(plan.combine.position, 'ep.position'));
  }
  destroy(): void {
    this.sendTokens.destroy();
    this.position.destroy();
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
