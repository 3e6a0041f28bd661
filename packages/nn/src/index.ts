/// <reference lib="esnext.disposable" preserve="true" />
// The reference above is kept in the emitted .d.ts so that consumers get
// Symbol.dispose without configuring anything (see README "Install").
export { VERSION } from './version.js';
export * from './errors.js';
export * from './module.js';
export * from './linear.js';
export * from './mlp.js';
export * from './shard.js';
