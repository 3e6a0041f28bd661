import { WebMoEError } from '@webmoe/tensor';

/** No WebGPU adapter could be obtained. @example `catch (e) { if (e instanceof NoAdapterError) useCpu(); }` */
export class NoAdapterError extends WebMoEError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('NO_ADAPTER', `no WebGPU adapter: ${detail}`, options);
  }
}
/** A GPU validation error caught by an error scope. @example `new GpuValidationError('matmul', msg)` */
export class GpuValidationError extends WebMoEError {
  constructor(where: string, detail: string) {
    super('GPU_VALIDATION', `${where}: GPU validation error: ${detail}`);
  }
}
/** The GPU ran out of memory. @example `new GpuOutOfMemoryError('upload w', msg)` */
export class GpuOutOfMemoryError extends WebMoEError {
  constructor(where: string, detail: string) {
    super('GPU_OUT_OF_MEMORY', `${where}: GPU out of memory: ${detail}`);
  }
}
/** The device was lost (driver reset, destroy, ...). The layer can be rebuilt on a new device. @example `new DeviceLostError('destroyed', msg)` */
export class DeviceLostError extends WebMoEError {
  readonly reason: string;
  constructor(reason: string, detail: string) {
    super('DEVICE_LOST', `WebGPU device lost (${reason}): ${detail}`);
    this.reason = reason;
  }
}
/** A request that exceeds a device limit, checked before dispatch. @example `new LimitError('maxStorageBufferBindingSize', 2**31, 2**27)` */
export class LimitError extends WebMoEError {
  constructor(limit: string, requested: number, allowed: number, what = '') {
    super('LIMIT_EXCEEDED', `${what ? what + ': ' : ''}${limit} exceeded: requested ${requested}, the device allows ${allowed}`);
  }
}
