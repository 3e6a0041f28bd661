export * from './runtime/errors.js';
export * from './runtime/context.js';
export * from './runtime/tensor.js';
export * from './runtime/pool.js';
export * from './runtime/kernel.js';
export * from './wgsl.js';
export * from './kernels/cast.js';
