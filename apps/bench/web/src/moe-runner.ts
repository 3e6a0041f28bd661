// Runs the MoE layer of @webmoe/moe on one checkpoint. Until the layer
// exists this reports that it is missing (the page then only runs the GPU
// runtime's smoke check).
import * as moe from '@webmoe/moe';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import type { HostTensor } from '@webmoe/tensor';
import type { PageSource } from './sources.js';
import type { KernelTime } from './types.js';

/** True when @webmoe/moe exports the MoE layer. */
export const moeAvailable = typeof (moe as Record<string, unknown>).MoE === 'function';

export interface MoeRun {
  output: Float32Array;
  kernels: KernelTime[];
  timing: 'gpu-timestamps' | 'wall';
  forwardMs: number;
  loadMs: number;
}

/**
 * Loads the MoE block of `src` and runs it on `input` [T, H]: on the GPU
 * when `ctx` is given, else with the CPU reference path.
 */
export async function runMoe(_src: PageSource, _input: HostTensor, _ctx: GpuContext | null): Promise<MoeRun> {
  throw new Error('@webmoe/moe does not export the MoE layer yet (nothing to run)');
}
