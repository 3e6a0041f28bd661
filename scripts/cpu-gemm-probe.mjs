// The CPU path's expert GEMMs alone (groupedGateUpCpu then groupedDownCpu, bf16, random weights), the weights as the
// loaded tensors give them (the kernels copy each block of rows into the SIMD memory) and kept where the kernels read
// them in place (cpuResident), alternating, best of three per T; every token routed to experts (t + j) % E.
//   pnpm build; node scripts/cpu-gemm-probe.mjs [T list, default 1,4,16,128] [H,I,E,k, default 2048,768,8,8 (Qwen3-30B's experts)]
import { groupedGateUpCpu, groupedDownCpu, groupRef, cpuResident } from '../packages/kernels-wgsl/dist/index.js';
import { HostTensor } from '../packages/tensor/dist/index.js';

const [H, I, E, k] = (process.argv[3] ?? '2048,768,8,8').split(',').map(Number);
const tokens = (process.argv[2] ?? '1,4,16,128').split(',').map(Number);
// bf16 patterns of values in +-[1, 1.5): finite, no subnormals
const bf16 = (n) => {
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = (0x3f80 + ((Math.random() * 0x40) | 0)) | (Math.random() < 0.5 ? 0x8000 : 0);
  return a;
};
const gu = new HostTensor('bfloat16', [E, 2 * I, H], bf16(E * 2 * I * H));
const dn = new HostTensor('bfloat16', [E, H, I], bf16(E * H * I));
const [rgu, rdn] = cpuResident([gu, dn]);
const act = { kind: 'silu', layout: 'concat' };
for (const T of tokens) {
  const idx = new Int32Array(T * k);
  for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) idx[t * k + j] = (t + j) % E;
  const g = groupRef(idx, T, k, E);
  const x = Float32Array.from({ length: T * H }, () => Math.random() - 0.5);
  const best = {};
  for (let rep = 0; rep < 3; rep++)
    for (const [name, a, b] of [['copied', gu, dn], ['resident', rgu, rdn]]) {
      const t0 = performance.now();
      groupedDownCpu(groupedGateUpCpu(x, g, { kind: 'dense', w: a }, undefined, act), g, { kind: 'dense', w: b });
      best[name] = Math.min(best[name] ?? Infinity, performance.now() - t0);
    }
  console.log(`H ${H} I ${I} E ${E} k ${k} T=${T}: copied ${best.copied.toFixed(2)} ms, resident ${best.resident.toFixed(2)} ms (${(best.copied / best.resident).toFixed(2)}x)`);
}
