// Shared by the MPI rank scripts (moe-ep.mjs, moe-tp.mjs): the fixtures, the tolerance against the unsharded layer, relErr.
import { fileURLToPath } from 'node:url';

export const FIXTURES = process.env.WEBMOE_FIXTURES ? `${process.env.WEBMOE_FIXTURES}/hf-moe` : fileURLToPath(new URL('../../../../../shared/fixtures/hf-moe', import.meta.url));
export const ARCHS = ['mixtral', 'qwen3_moe', 'qwen2_moe', 'olmoe', 'deepseek_v3', 'gpt_oss', 'llama4_text'];
/** The quantized fixtures (fp8 blocks with a quantized shared expert, MXFP4): one block of I each, so no TP split. */
export const QUANT_ARCHS = ['deepseek_v3_fp8', 'gpt_oss_mxfp4'];

/** A deterministic LCG in [-scale, scale) (every rank draws the same numbers). */
export function lcg(seed) {
  let s = seed;
  return (len, scale) => Float32Array.from({ length: len }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 * 2 - 1) * scale);
}
export const TOL = 1e-5;

/** L2 relative error of a against b: kernels-wgsl's testing helper. */
export { relErr } from '@webmoe/kernels-wgsl/testing';
