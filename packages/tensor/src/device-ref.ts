/**
 * Where a layer lives, as MAX's `DeviceRef`: the CPU (kernels-wgsl's CPU
 * kernels, WebAssembly SIMD) or GPU `id` (a WebGPU device). kernels-wgsl's
 * `defaultDevice()` picks one for the machine.
 *
 * @example
 * ```ts
 * const d = DeviceRef.GPU(0); d.isGpu() // true
 * ```
 */
export class DeviceRef {
  private constructor(readonly deviceType: 'cpu' | 'gpu', readonly id: number) {}
  /** The host CPU. */
  static CPU(): DeviceRef {
    return new DeviceRef('cpu', 0);
  }
  /** GPU number `id` (default 0). */
  static GPU(id = 0): DeviceRef {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`DeviceRef.GPU: expected a non-negative integer id, got ${id}`);
    return new DeviceRef('gpu', id);
  }
  isCpu(): boolean {
    return this.deviceType === 'cpu';
  }
  isGpu(): boolean {
    return this.deviceType === 'gpu';
  }
  equals(o: DeviceRef): boolean {
    return o.deviceType === this.deviceType && o.id === this.id;
  }
  toString(): string {
    return this.deviceType === 'cpu' ? 'cpu' : `gpu:${this.id}`;
  }
}
