export const VERSION = '0.1.0';
export * from './errors.js';
export * from './range.js';
export * from './host-ops.js';
export * from './strategy.js';
export * from './device-group.js';
export * from './collectives.js';
export * from './ep.js';
export * from './kernels.js';
