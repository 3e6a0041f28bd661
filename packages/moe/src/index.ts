/// <reference lib="esnext.disposable" preserve="true" />
// The reference above is kept in the emitted .d.ts so that consumers get
// Symbol.dispose without configuring anything (see README "Install").
export { VERSION } from './version.js';
export * from './errors.js';
export * from './gates.js';
export * from './moe.js';
export * from './checkpoint.js';
export * from './hf-config.js';
export * from './hf-loader.js';
export * from './sharded.js';
export * from './quant-experts.js';
export * from './quant.js';
export * from './compressed-tensors.js';
export * from './stack.js';
