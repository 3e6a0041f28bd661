/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
// The references above are kept in the emitted .d.ts so that consumers get the
// GPU* types and Symbol.dispose without configuring anything (see README "Install").
export { VERSION } from './version.js';
export * from './runtime/errors.js';
export * from './runtime/context.js';
export * from './runtime/gpu-select.js';
export * from './runtime/tensor.js';
export * from './runtime/pool.js';
export * from './runtime/kernel.js';
export * from './runtime/graph-cache.js';
export * from './wgsl.js';
export * from './kernels/cast.js';
export * from './kernels/moe-types.js';
export * from './kernels/moe-gemv.js';
export * from './kernels/op-util.js';
export * from './kernels/linear.js';
export * from './kernels/expert-weights.js';
export * from './kernels/quant-ref.js';
export * from './kernels/grouped-gemm-wgsl.js';
export * from './kernels/grouped-gemm.js';
export * from './kernels/router.js';
export * from './kernels/grouping.js';
export * from './kernels/combine.js';
export { KERNEL_CROSSOVERS, useExpertGemv, useSingleExpertGemv, useGraphReplay, tiledGemmTile, useFastGemm } from './kernels/plan.js';
