// One MPI rank: expert-parallel MoE forward over the MPI transport (CPU shards) against the unsharded layer
// computed on the same rank (MoE.forwardHost, the TypeScript reference). Cases: every fixture, unquantized and
// quantized (this rank reads only its experts; fp8 codes and scales, MXFP4 blocks), one token (ranks without
// tokens), and a router that sends every token to experts 0 and 1 (ranks that receive nothing). Prints one JSON
// line per case; exit 1 if any is off.
import { ARCHS, FIXTURES, QUANT_ARCHS, TOL, relErr } from './common.mjs';
import { DeviceRef, HostTensor, SafetensorsFile } from '@webmoe/tensor';
import { fileSource } from '@webmoe/tensor/node';
import { ShardingError, ShardingStrategy } from '@webmoe/sharding';
import { MoE, ShardedMoE, TopKSoftmaxGate, quantize } from '@webmoe/moe';
import { createMpiTransport } from '@webmoe/mpi';

const tr = createMpiTransport();
const n = tr.size;
let failed = false;

async function report(name, ep, x, T, want) {
  const y = await ep.forward(x);
  const err = relErr(y, want);
  const ok = y.length === want.length && err < TOL;
  failed ||= !ok;
  console.log(JSON.stringify({ rank: tr.rank, size: n, case: name, T, H: ep.hiddenDim, k: ep.shards[0].numExpertsPerToken, err, ok, localExperts: ep.shards[0].numLocalExperts, stats: ep.lastEPStats[0] }));
}

for (const arch of [...ARCHS, ...QUANT_ARCHS]) {
  const dir = `${FIXTURES}/${arch}`;
  const f = await SafetensorsFile.open(await fileSource(`${dir}/golden.safetensors`), 'golden');
  const xin = (await f.read('input')).toFloat32();
  await f.close();
  const full = await MoE.fromHuggingFace({ source: dir, layer: 0, dtype: 'float32', device: DeviceRef.CPU() });
  if (full.numExperts % n !== 0) {
    // a bad launch: every rank fails with a ShardingError before reading experts (no collective is entered)
    let err;
    try {
      await ShardedMoE.fromHuggingFace({ source: dir, layer: 0, dtype: 'float32', devices: [DeviceRef.CPU()], strategy: ShardingStrategy.expertParallel(n), transport: tr });
    } catch (e) {
      err = e;
    }
    const ok = err instanceof ShardingError;
    failed ||= !ok;
    console.log(JSON.stringify({ rank: tr.rank, size: n, case: `${arch} bad launch`, ok, error: String(err?.message) }));
    full.destroy();
    continue;
  }
  const H = full.hiddenDim;
  const T = xin.length / H;
  const want = full.forwardHost(xin, T);
  const ep = await ShardedMoE.fromHuggingFace({ source: dir, layer: 0, dtype: 'float32', devices: [DeviceRef.CPU()], strategy: ShardingStrategy.expertParallel(n), transport: tr });
  await report(arch, ep, xin, T, want);
  // one token: every rank but 0 routes nothing
  await report(`${arch} T=1`, ep, xin.subarray(0, H), 1, full.forwardHost(xin.subarray(0, H), 1));
  ep.destroy();
  full.destroy();
}

// A random layer with E = 6 (the fixtures' E = 8 and 16 do not split over 3 ranks). With `skew`, experts 0
// and 1 get every (token, slot): under EP n every rank but 0 receives no rows.
for (const skew of 6 % n === 0 ? [false, true] : []) {
  const H = 16, E = 6, I = 12, T = 9;
  let s = 1234 + (skew ? 1 : 0);
  const rand = (len, scale) => Float32Array.from({ length: len }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 * 2 - 1) * scale);
  const moe = new MoE({ hiddenDim: H, numExperts: E, numExpertsPerToken: 2, moeDim: I, gateCls: TopKSoftmaxGate, hasSharedExperts: true, sharedExpertsDim: 8 });
  const bias = new Float32Array(E);
  if (skew) {
    bias[0] = 50;
    bias[1] = 40;
  }
  moe.loadStateDict({
    'gate.weight': HostTensor.fromFloat32([E, H], rand(E * H, 0.1)),
    'gate.bias': HostTensor.fromFloat32([E], bias),
    'experts.gate_up_proj': HostTensor.fromFloat32([E, 2 * I, H], rand(E * 2 * I * H, 0.3)),
    'experts.down_proj': HostTensor.fromFloat32([E, H, I], rand(E * H * I, 0.3)),
    'shared_experts.gate_proj.weight': HostTensor.fromFloat32([8, H], rand(8 * H, 0.3)),
    'shared_experts.up_proj.weight': HostTensor.fromFloat32([8, H], rand(8 * H, 0.3)),
    'shared_experts.down_proj.weight': HostTensor.fromFloat32([H, 8], rand(H * 8, 0.3)),
  });
  const x = rand(T * H, 1);
  const ep = new ShardedMoE(moe, [DeviceRef.CPU()], ShardingStrategy.expertParallel(n), { transport: tr });
  await report(skew ? 'skewed router' : 'random E=6', ep, x, T, moe.forwardHost(x, T));
  ep.destroy();
  // the same layer with int4 experts (blocks of 4): codes and scales go with their expert
  const q = quantize(moe, { format: 'int4', blockSize: 4 });
  const epq = new ShardedMoE(q, [DeviceRef.CPU()], ShardingStrategy.expertParallel(n), { transport: tr });
  await report(skew ? 'skewed router int4' : 'random E=6 int4', epq, x, T, q.forwardHost(x, T));
  epq.destroy();
}
process.exitCode = failed ? 1 : 0;
