export * from './errors.js';
export * from './dtype.js';
export * from './convert.js';
export * from './host-tensor.js';
export * from './device-ref.js';
