// Shared pieces of the sharded-MoE tests: a random layer whose router sends every token to experts of shard 0.
import { HostTensor } from '@webmoe/tensor';
import { rng } from '@webmoe/kernels-wgsl/testing';
import { MoE, TopKSoftmaxGate } from '../src/index.js';

export const TOL = 1e-4;

/**
 * E = 8, k = 2, H = 16, I = 12: the router bias (+50 on expert 0, +40 on expert 1) sends every
 * (token, slot) to experts 0 and 1 (shard 0 under EP 2 and EP 4): experts 2..7 get no tokens and
 * every device but 0 receives no rows.
 */
export function skewedLayer(): { moe: MoE; x: Float32Array; T: number } {
  const H = 16;
  const E = 8;
  const I = 12;
  const T = 7;
  const r = rng(1234);
  const rand = (n: number, s = 0.3) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
  const moe = new MoE({ hiddenDim: H, numExperts: E, numExpertsPerToken: 2, moeDim: I, gateCls: TopKSoftmaxGate, hasSharedExperts: true, sharedExpertsDim: 8 });
  const bias = new Float32Array(E);
  bias[0] = 50;
  bias[1] = 40;
  moe.loadStateDict({
    'gate.weight': HostTensor.fromFloat32([E, H], rand(E * H, 0.1)),
    'gate.bias': HostTensor.fromFloat32([E], bias),
    'experts.gate_up_proj': HostTensor.fromFloat32([E, 2 * I, H], rand(E * 2 * I * H)),
    'experts.down_proj': HostTensor.fromFloat32([E, H, I], rand(E * H * I)),
    'shared_experts.gate_proj.weight': HostTensor.fromFloat32([8, H], rand(8 * H)),
    'shared_experts.up_proj.weight': HostTensor.fromFloat32([8, H], rand(8 * H)),
    'shared_experts.down_proj.weight': HostTensor.fromFloat32([H, 8], rand(H * 8)),
  });
  return { moe, x: rand(T * H, 1), T };
}
