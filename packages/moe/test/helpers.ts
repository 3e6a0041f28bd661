import { fileURLToPath } from 'node:url';
// Test helpers: an independent safetensors reader (not the package's) and the fixture list.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { toFloat32, type DType } from '@webmoe/tensor';

/** The fixtures beside the checkout (../shared/fixtures/hf-moe), or $WEBMOE_FIXTURES/hf-moe. */
export const FIXTURES = (process.env.WEBMOE_FIXTURES ? process.env.WEBMOE_FIXTURES + '/hf-moe' : fileURLToPath(new URL('../../../../shared/fixtures/hf-moe', import.meta.url)));
/** Every unquantized fixture (deepseek_v3_fp8 and gpt_oss_mxfp4 belong to the quantized-experts issue). */
export const ARCHS = ['mixtral', 'qwen3_moe', 'qwen2_moe', 'olmoe', 'deepseek_v3', 'gpt_oss', 'llama4_text'] as const;

const DT: Record<string, DType> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

/** Reads a safetensors file's tensors as f32 values with their shapes (independent of @webmoe/moe). */
export function readTensorsF32(path: string): Map<string, { shape: number[]; values: Float32Array; dtype: DType }> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; values: Float32Array; dtype: DType }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const dtype = DT[v.dtype];
    if (!dtype) throw new Error(`test reader: dtype ${v.dtype} of ${k}`);
    const raw = new Uint8Array(b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1])).slice();
    const arr = dtype === 'float32' ? new Float32Array(raw.buffer) : new Uint16Array(raw.buffer);
    out.set(k, { shape: v.shape, values: toFloat32(dtype, arr), dtype });
  }
  return out;
}

export interface Golden {
  T: number;
  H: number;
  input: Float32Array;
  output: Float32Array;
  inputBf16: Float32Array;
  outputBf16: Float32Array;
  /** Rows of the golden outputs (T, or 1 where the fixture stored only token 0, see `note`). */
  outRows: number;
  note?: string;
  f32Tol: number;
  bf16Tol: number;
}

export function loadGolden(arch: string): Golden {
  const dir = join(FIXTURES, arch);
  if (!existsSync(join(dir, 'golden.safetensors'))) throw new Error(`fixture ${dir} is missing`);
  const g = readTensorsF32(join(dir, 'golden.safetensors'));
  const meta = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
  const input = g.get('input')!;
  const [T, H] = input.shape;
  const out = g.get('output')!;
  // llama4_text: gen_goldens.py takes `y[0]` of Llama4TextMoe's already-flattened [T, H] output, so the
  // fixture holds token 0's output only ([H]). We compare that row; every other fixture compares all T rows.
  const outRows = out.shape.length === 1 ? 1 : out.shape[0];
  if (out.shape[out.shape.length - 1] !== H) throw new Error(`${arch}: golden output shape ${out.shape}`);
  return {
    T,
    H,
    input: input.values,
    output: out.values,
    inputBf16: g.get('input_bf16')!.values,
    outputBf16: g.get('output_bf16')!.values,
    outRows,
    note: outRows !== T ? `${arch}: golden output holds ${outRows} of ${T} token rows (fixture stores y[0]); comparing those rows` : undefined,
    f32Tol: meta.f32_rel_tol,
    bf16Tol: meta.bf16_rel_tol,
  };
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / den);
}
