/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
// The references above are kept in the emitted .d.ts so that consumers get the
// GPU* types and Symbol.dispose without configuring anything (see README "Install").
export { VERSION } from './version.js';
export * from './errors.js';
export * from './range.js';
export * from './host-ops.js';
export * from './strategy.js';
export * from './device-group.js';
export * from './collectives.js';
export * from './ep.js';
export * from './kernels.js';
export * from './transport.js';
export * from './ep-manager.js';
export * from './ep-rank.js';
