// GpuContext.openErrorScopes on a stub device: which typed error a scope's errors give. A failed allocation (out of
// memory) leaves an invalid buffer whose every use fails validation, so the out-of-memory error comes first and the
// validation errors ride along in its message; no adapter needed.
import { describe, it, expect } from 'vitest';
import { GpuContext, GpuOutOfMemoryError, GpuValidationError, type GpuFeatures } from '@webmoe/kernels-wgsl';

/** A context over a device whose next popped scopes (innermost first: validation, then out-of-memory) give `errors`. */
function contextPopping(errors: (GPUError | null)[]): GpuContext {
  const device = {
    limits: {},
    lost: new Promise<GPUDeviceLostInfo>(() => undefined),
    pushErrorScope: () => undefined,
    popErrorScope: async () => errors.shift() ?? null,
  } as unknown as GPUDevice;
  return new GpuContext({ info: { vendor: 'stub' } } as unknown as GPUAdapter, device, {} as GpuFeatures);
}
const err = (message: string) => ({ message }) as GPUError;

describe('GpuContext error scopes', () => {
  it('out of memory with the validation errors it caused: GpuOutOfMemoryError naming both and the way back', async () => {
    const close = contextPopping([err('[Invalid Buffer "w"] is invalid due to a previous error'), err('allocation of 3 GB failed')]).openErrorScopes('weights');
    const e = await close().then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(GpuOutOfMemoryError);
    expect(String((e as Error).message)).toMatch(/weights: GPU out of memory: allocation of 3 GB failed; then: \[Invalid Buffer "w"\].*reclaimMemory/);
  });

  it('validation alone: GpuValidationError; out of memory alone: GpuOutOfMemoryError; neither: resolves', async () => {
    await expect(contextPopping([err('bad binding'), null]).openErrorScopes('op')()).rejects.toBeInstanceOf(GpuValidationError);
    await expect(contextPopping([null, err('no memory')]).openErrorScopes('op')()).rejects.toBeInstanceOf(GpuOutOfMemoryError);
    await expect(contextPopping([null, null]).openErrorScopes('op')()).resolves.toBeUndefined();
  });
});
