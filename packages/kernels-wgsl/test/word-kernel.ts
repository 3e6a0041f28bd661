import { HostTensor } from '@webmoe/tensor';
import { GpuTensor, Recorder, type GpuContext, type Kernel, type Variant } from '@webmoe/kernels-wgsl';
import { gpuChecked } from '@webmoe/kernels-wgsl/testing';

/**
 * Runs a test kernel that reads the u32 words IN and writes `outWords` u32 words OUT (bindings of those names) over
 * `workgroups`, checked for GPU errors; OUT's words.
 * @example `await runWordKernel(ctx, pairs, { n }, words, n, [n / 64])`
 */
export function runWordKernel<V extends Variant>(c: GpuContext, kernel: Kernel<V>, variant: V, input: Uint32Array, outWords: number, workgroups: [number, number?]): Promise<Uint32Array> {
  return gpuChecked(c, async () => {
    const inp = GpuTensor.upload(c, new HostTensor('uint32', [input.length], input));
    const out = GpuTensor.empty(c, 'uint32', [outWords]);
    const rec = new Recorder(c);
    rec.dispatch({ kernel, variant, bind: { IN: inp.buffer, OUT: out.buffer }, workgroups });
    rec.submit();
    const d = (await out.download()).data as Uint32Array;
    inp.destroy();
    out.destroy();
    return d;
  });
}
