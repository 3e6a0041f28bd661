export const VERSION = '0.1.0';
export * from './errors.js';
export * from './gates.js';
export * from './moe.js';
export * from './checkpoint.js';
export * from './hf-config.js';
export * from './hf-loader.js';
export * from './sharded.js';
