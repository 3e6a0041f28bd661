// MoE.decodeShared = 'routed': a decode forward runs the shared expert as an always-selected expert of the routed
// GEMVs (route_decode appends its slot, expert E at weight 1; the GEMVs read the routed stacks with the shared one
// appended, appendExpertStacks), instead of GEMVs of its own. On the HF fixtures whose shared expert qualifies
// (DeepSeek-V3 bf16 and its fp8 checkpoint, Llama 4: one shared expert as wide as the routed ones, SiLU, no gate)
// against the transformers goldens (the first T rows of the T = 16 golden: each token's output is its own) and the
// separate path at T = 1, 3, 4 (route_decode) and 8, 16 (the router kernel, then group_decode), through the captured
// graphs; the grouped GEMMs and Qwen2-MoE (a gated shared expert four times as wide) keep the shared expert's own
// GEMMs. The dispatch log shows which path ran.
import { describe, it, expect, beforeAll } from 'vitest';
import { DeviceRef } from '@webmoe/tensor';
import { useSharedExpertSlots, type DecodeSharedChoice, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, rng, randomArray } from '@webmoe/kernels-wgsl/testing';
import { MoE } from '../src/index.js';
import { FIXTURES, forwardLogged, goldenTensors, relErr } from './helpers.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

type Log = readonly { kernel: string; variant: Record<string, unknown> }[];
/** The path a decode forward's dispatch log shows: the shared slot in route_decode or the router ('routed'), else 'separate'. */
function sharedPath(log: Log): 'routed' | 'separate' {
  return log.some((d) => (d.kernel === 'route_decode' || d.kernel === 'router') && d.variant.ns === 1) ? 'routed' : 'separate';
}

/** The layer's forward on x [T, H] with decodeShared = choice: output, path and the GEMV dispatches. */
async function withChoice(c: GpuContext, moe: MoE, x: Float32Array, T: number, choice: DecodeSharedChoice) {
  moe.decodeShared = choice;
  const { y, dispatched } = await forwardLogged(c, moe, x, T, moe.hiddenDim);
  moe.decodeShared = 'auto';
  return { y, path: sharedPath(dispatched), gemvs: dispatched.filter((d) => d.kernel === 'moe_gemv').length, dispatched };
}

const CASES = [
  { arch: 'deepseek_v3', load: { dtype: 'bfloat16' as const }, golden: 'output_bf16', tol: 2e-2 },
  { arch: 'llama4_text', load: { dtype: 'bfloat16' as const }, golden: 'output_bf16', tol: 2e-2 },
  // fp8 routed and shared experts; the weight-only golden (activations not quantized)
  { arch: 'deepseek_v3_fp8', load: { activationQuant: 'none' as const }, golden: 'output_weight_only', tol: 1e-4 },
];

describe("MoE.decodeShared = 'routed' (the shared expert as an always-selected routed expert)", () => {
  for (const cs of CASES) {
    it(`${cs.arch}: the golden's first T rows and the separate path's output at T = 1, 3, 4, 8 and 16; graphs replay it`, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      const c = ctx;
      const g = goldenTensors(cs.arch);
      const input = g.get(cs.load.dtype === 'bfloat16' ? 'input_bf16' : 'input') ?? g.get('input')!;
      const want = g.get(cs.golden)!.values;
      const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/${cs.arch}`, layer: 0, device: DeviceRef.GPU(), ctx: c, ...cs.load });
      try {
        const H = moe.hiddenDim;
        const r = rng(17);
        for (const T of [1, 3, 4, 8, 16]) {
          for (const x of [input.values.subarray(0, T * H), randomArray(r, T * H)]) {
            const golden = x.buffer === input.values.buffer;
            const routed = await withChoice(c, moe, x, T, 'routed');
            const separate = await withChoice(c, moe, x, T, 'separate');
            const msg = `${cs.arch} T=${T}${golden ? ' golden rows' : ' random x'}`;
            expect([routed.path, separate.path], msg).toEqual(['routed', 'separate']);
            // no GEMVs of the shared expert's own: gate_up and down read both stacks (one dispatch per chunk on a
            // software adapter, both chunks in one dispatch on a GPU)
            expect(routed.gemvs, `${msg}: GEMV dispatches`).toBeLessThan(separate.gemvs + (c.adapterInfo.software ? 1 : 0));
            expect(relErr(routed.y, separate.y), `${msg}: routed vs separate`).toBeLessThan(1e-5);
            if (golden) expect(relErr(routed.y, want.subarray(0, T * H)), `${msg}: golden`).toBeLessThan(cs.tol);
          }
        }
        // the captured graph replays the routed path bit for bit; 'auto' follows the planner
        moe.decodeShared = 'routed';
        const x = randomArray(r, H);
        const first = await forwardLogged(c, moe, x, 1, H);
        const again = await forwardLogged(c, moe, x, 1, H);
        expect(again.y).toEqual(first.y);
        moe.decodeShared = 'auto';
        const auto = await forwardLogged(c, moe, x, 1, H);
        expect(sharedPath(auto.dispatched)).toBe(useSharedExpertSlots(1, moe.numExpertsPerToken, moe.numExperts, 1, 'auto', c.adapterInfo.software) ? 'routed' : 'separate');
        // on the grouped GEMMs the shared expert keeps its own GEMMs whatever the choice
        moe.expertKernels = 'grouped';
        expect((await withChoice(c, moe, randomArray(r, 16 * H), 16, 'routed')).path).toBe('separate');
        moe.expertKernels = 'auto';
      } finally {
        moe.destroy();
      }
    }, 600_000);
  }

  it("qwen2_moe (a gated shared expert, 4x the routed width) keeps its own GEMVs with 'routed'; an unknown choice is a ValueError", async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const moe = await MoE.fromHuggingFace({ source: `${FIXTURES}/qwen2_moe`, layer: 0, dtype: 'bfloat16', device: DeviceRef.GPU(), ctx: c });
    try {
      const x = randomArray(rng(2), moe.hiddenDim);
      const routed = await withChoice(c, moe, x, 1, 'routed');
      const separate = await withChoice(c, moe, x, 1, 'separate');
      expect(routed.path).toBe('separate');
      expect(routed.y).toEqual(separate.y);
      expect(() => (moe.decodeShared = 'fused' as DecodeSharedChoice)).toThrow(/decodeShared/);
    } finally {
      moe.destroy();
    }
  });
});
