export const VERSION = '0.1.0';
export * from './errors.js';
export * from './module.js';
export * from './linear.js';
export * from './mlp.js';
export * from './shard.js';
