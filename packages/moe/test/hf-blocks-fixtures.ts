// The transformers goldens of fixtures/hf-blocks (scripts/fixtures/make-hf-blocks.py): MoE blocks that the shared
// fixtures lack (DeepSeek-V2 greedy and group-limited, MiniMax-M2, ERNIE 4.5, Granite 4.0 with its shared MLP).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readTensorsF32, type GoldenSet } from './helpers.js';

/** The folder of the fixtures. */
export const HF_BLOCKS = fileURLToPath(new URL('./fixtures/hf-blocks', import.meta.url));

/** Each fixture with the gate class its routing needs (checked by name: the tests import the classes). */
export const HF_BLOCK_FIXTURES = [
  { name: 'deepseek_v2_lite', gate: 'DeepseekV2Gate', shared: true },
  { name: 'deepseek_v2_grouped', gate: 'DeepseekV2Gate', shared: true },
  { name: 'minimax_m2', gate: 'DeepseekV3Gate', shared: false },
  { name: 'ernie4_5_moe', gate: 'Ernie45Gate', shared: true },
  { name: 'granitemoehybrid', gate: 'TopKSoftmaxGate', shared: true },
] as const;

export interface HFBlockGolden {
  T: number;
  H: number;
  input: Float32Array;
  output: Float32Array;
  /** golden.json's f32_rel_tol. */
  tol: number;
  /** Row t of the input / output (a one-token forward: the decode path). */
  row(which: 'input' | 'output', t: number): Float32Array;
}

/**
 * Golden set `set` of fixture `name` (input and output [T, H] f32, checked for shape); every fixture holds both of
 * GOLDEN_SETS (`golden`, T = 16: the decode kernels; `golden-large`, T = 600: the prefill kernels).
 */
export function loadHFBlockGolden(name: string, set: GoldenSet = 'golden'): HFBlockGolden {
  const dir = `${HF_BLOCKS}/${name}`;
  const g = readTensorsF32(`${dir}/${set}.safetensors`);
  const meta = JSON.parse(readFileSync(`${dir}/${set}.json`, 'utf8')) as { f32_rel_tol: number };
  const input = g.get('input');
  const output = g.get('output');
  if (!input || !output || input.shape.length !== 2 || String(output.shape) !== String(input.shape)) throw new Error(`${name} ${set}: golden input / output shapes ${input?.shape} / ${output?.shape}`);
  const [T, H] = input.shape;
  const vals = { input: input.values, output: output.values };
  return { T, H, input: input.values, output: output.values, tol: meta.f32_rel_tol, row: (which, t) => vals[which].subarray(t * H, (t + 1) * H) };
}
