import type { GpuContext } from '@webmoe/kernels-wgsl';

/**
 * The same device seen through a context whose maxComputeWorkgroupsPerDimension
 * is `maxPerDim`, so that small tests exercise the folded (2-D) grids that
 * only huge T would need on the real limit.
 */
export function withSmallGrid(ctx: GpuContext, maxPerDim: number): GpuContext {
  const limits = new Proxy(ctx.limits, {
    get: (t, p) => (p === 'maxComputeWorkgroupsPerDimension' ? maxPerDim : (t as unknown as Record<string | symbol, unknown>)[p]),
  });
  return Object.create(ctx, { limits: { value: limits } }) as GpuContext;
}
