/**
 * Shapes and validation of expert weight containers (`ExpertWeightsGpu` /
 * `ExpertWeightsHost`), shared by the grouped GEMMs and their references.
 */
import type { DType, HostTensor } from '@webmoe/tensor';
import { DTypeError, ShapeError, ValueError } from '@webmoe/tensor';
import type { GpuContext } from '../runtime/context.js';
import { GpuTensor } from '../runtime/tensor.js';
import type { ExpertWeightsGpu, ExpertWeightsHost } from './moe-types.js';

/** What the checks need of a tensor (GpuTensor and HostTensor both have it). */
interface Shaped {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** The logical dimensions of an expert weight container: E experts of [rows, cols] (rows = output channels). @example `const { E, rows, cols }: ExpertDims = expertDims(w)` */
export interface ExpertDims {
  E: number;
  rows: number;
  cols: number;
}

function expectRank(what: string, t: Shaped, rank: number, expected: string): void {
  if (t.shape.length !== rank) throw new ShapeError(what, expected, t.shape);
}
function expectDt(what: string, t: Shaped, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) throw new DTypeError(what, allowed, t.dtype);
}
function expectDims(what: string, t: Shaped, want: readonly number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) throw new ShapeError(what, want, t.shape);
}

/**
 * Validates an expert weight container (GPU or host) and returns its logical
 * [E, rows, cols]. Throws DTypeError / ShapeError / ValueError saying what
 * was expected and what came.
 *
 * @example
 * ```ts
 * const { E, rows, cols } = expertDims({ kind: 'dense', w }); // w: [E, 2I, H]
 * ```
 */
export function expertDims(w: ExpertWeightsGpu | ExpertWeightsHost, what = 'expert weights'): ExpertDims {
  switch (w.kind) {
    case 'dense': {
      expectDt(`${what} (dense) w`, w.w, ['float32', 'bfloat16', 'float16']);
      expectRank(`${what} (dense) w`, w.w, 3, '[E, rows, cols]');
      const [E, rows, cols] = w.w.shape;
      return { E, rows, cols };
    }
    case 'fp8_block': {
      expectDt(`${what} (fp8_block) q`, w.q, ['float8_e4m3fn', 'float8_e5m2']);
      expectRank(`${what} (fp8_block) q`, w.q, 3, '[E, rows, cols]');
      expectDt(`${what} (fp8_block) scaleInv`, w.scaleInv, ['float32']);
      const [E, rows, cols] = w.q.shape;
      if (!Array.isArray(w.block) || w.block.length !== 2 || !w.block.every((b) => Number.isInteger(b) && b > 0))
        throw new ValueError(`${what} (fp8_block) block`, 'two positive integers [blockRows, blockCols]', w.block);
      const [br, bc] = w.block;
      expectDims(`${what} (fp8_block) scaleInv`, w.scaleInv, [E, Math.ceil(rows / br), Math.ceil(cols / bc)]);
      return { E, rows, cols };
    }
    case 'mxfp4': {
      expectDt(`${what} (mxfp4) blocks`, w.blocks, ['uint8']);
      expectRank(`${what} (mxfp4) blocks`, w.blocks, 4, '[E, rows, cols/32, 16]');
      expectDt(`${what} (mxfp4) scales`, w.scales, ['uint8']);
      const [E, rows, nb, sixteen] = w.blocks.shape;
      if (sixteen !== 16) throw new ShapeError(`${what} (mxfp4) blocks`, `[E, rows, cols/32, 16]`, w.blocks.shape);
      expectDims(`${what} (mxfp4) scales`, w.scales, [E, rows, nb]);
      return { E, rows, cols: nb * 32 };
    }
    case 'int_block': {
      if (w.bits !== 4 && w.bits !== 8) throw new ValueError(`${what} (int_block) bits`, '4 or 8', w.bits);
      if (!Number.isInteger(w.blockSize) || w.blockSize < 1) throw new ValueError(`${what} (int_block) blockSize`, 'a positive integer', w.blockSize);
      expectDt(`${what} (int_block) q`, w.q, ['uint8']);
      expectRank(`${what} (int_block) q`, w.q, 3, `[E, rows, cols*${w.bits}/8]`);
      expectDt(`${what} (int_block) scales`, w.scales, ['float32', 'float16']);
      const [E, rows, bytes] = w.q.shape;
      const cols = w.bits === 4 ? bytes * 2 : bytes;
      expectDims(`${what} (int_block) scales`, w.scales, [E, rows, Math.ceil(cols / w.blockSize)]);
      if (w.zeros !== undefined) {
        expectDt(`${what} (int_block) zeros`, w.zeros, ['uint8']);
        expectDims(`${what} (int_block) zeros`, w.zeros, [E, rows, Math.ceil(cols / w.blockSize)]);
      }
      return { E, rows, cols };
    }
    default:
      throw new ValueError(`${what} kind`, "'dense' | 'fp8_block' | 'mxfp4' | 'int_block'", (w as { kind: unknown }).kind);
  }
}

/**
 * GPU bytes an expert weight container holds: packed weight codes and
 * (for quantized kinds) their scales (int_block zero points count as scales).
 *
 * @example
 * ```ts
 * const { weights, scales } = expertWeightBytes(gpuWeights);
 * console.log(`${(weights + scales) / 2 ** 20} MiB`);
 * ```
 */
export function expertWeightBytes(w: ExpertWeightsGpu): { weights: number; scales: number } {
  switch (w.kind) {
    case 'dense':
      return { weights: w.w.byteLength, scales: 0 };
    case 'fp8_block':
      return { weights: w.q.byteLength, scales: w.scaleInv.byteLength };
    case 'mxfp4':
      return { weights: w.blocks.byteLength, scales: w.scales.byteLength };
    case 'int_block':
      return { weights: w.q.byteLength, scales: w.scales.byteLength + (w.zeros?.byteLength ?? 0) };
    default:
      throw new ValueError('expertWeightBytes kind', "'dense' | 'fp8_block' | 'mxfp4' | 'int_block'", (w as { kind: unknown }).kind);
  }
}

/**
 * Uploads host expert weights to the GPU in their storage type (codes and
 * scales as they are; nothing is dequantised). The caller owns the result:
 * free it with {@link destroyExpertWeights}.
 *
 * @example
 * ```ts
 * const wg = uploadExpertWeights(ctx, quantizeExperts(f32, E, 2 * I, H, { kind: 'mxfp4' }));
 * destroyExpertWeights(wg);
 * ```
 */
export function uploadExpertWeights(ctx: GpuContext, w: ExpertWeightsHost, label = 'experts'): ExpertWeightsGpu {
  expertDims(w);
  const up = (t: HostTensor, s: string) => GpuTensor.upload(ctx, t, `${label}.${s}`);
  switch (w.kind) {
    case 'dense':
      return { kind: 'dense', w: up(w.w, 'w') };
    case 'fp8_block':
      return { kind: 'fp8_block', q: up(w.q, 'q'), scaleInv: up(w.scaleInv, 'scaleInv'), block: [w.block[0], w.block[1]] };
    case 'mxfp4':
      return { kind: 'mxfp4', blocks: up(w.blocks, 'blocks'), scales: up(w.scales, 'scales') };
    case 'int_block': {
      const g: ExpertWeightsGpu = { kind: 'int_block', bits: w.bits, blockSize: w.blockSize, q: up(w.q, 'q'), scales: up(w.scales, 'scales') };
      if (w.zeros) g.zeros = up(w.zeros, 'zeros');
      return g;
    }
  }
}

/**
 * Frees the GPU tensors of an expert weight container.
 * @example `destroyExpertWeights(wg)`
 */
export function destroyExpertWeights(w: ExpertWeightsGpu): void {
  switch (w.kind) {
    case 'dense':
      w.w.destroy();
      return;
    case 'fp8_block':
      w.q.destroy();
      w.scaleInv.destroy();
      return;
    case 'mxfp4':
      w.blocks.destroy();
      w.scales.destroy();
      return;
    case 'int_block':
      w.q.destroy();
      w.scales.destroy();
      w.zeros?.destroy();
      return;
  }
}
