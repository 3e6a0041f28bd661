// One MPI rank: tensor-parallel MoE forward over the MPI transport (CPU shards) against the unsharded layer
// computed on the same rank (MoE.forwardHost, the TypeScript reference) and against the in-process CPU TP
// (MoE.shard over DeviceGroup.cpu(n): the same slices and sum order, so the same bits). Cases: every
// unquantized fixture with all its tokens and with one token; the quantized fixtures, whose I is one block
// (a ShardingError naming the unit on every rank, before any collective); a random layer quantize()d to
// every format with I = 96 (whole blocks for 2 and 3 ranks). Prints one JSON line per case; exit 1 if any is off.
import { ARCHS, FIXTURES, QUANT_ARCHS, TOL, lcg, relErr } from './common.mjs';
import { DeviceRef, HostTensor, SafetensorsFile } from '@webmoe/tensor';
import { fileSource } from '@webmoe/tensor/node';
import { DeviceGroup, ShardingError, ShardingStrategy, shardRange } from '@webmoe/sharding';
import { MoE, ShardedMoE, SoftmaxTopKGate, quantize } from '@webmoe/moe';
import { createMpiTransport } from '@webmoe/mpi';

const tr = createMpiTransport();
const n = tr.size;
let failed = false;

const sameBits = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

for (const arch of ARCHS) {
  const dir = `${FIXTURES}/${arch}`;
  const f = await SafetensorsFile.open(await fileSource(`${dir}/golden.safetensors`), 'golden');
  const xin = (await f.read('input')).toFloat32();
  await f.close();
  const full = await MoE.fromHuggingFace({ source: dir, layer: 0, dtype: 'float32', device: DeviceRef.CPU() });
  const H = full.hiddenDim;
  const tp = await ShardedMoE.fromHuggingFace({ source: dir, layer: 0, dtype: 'float32', devices: [DeviceRef.CPU()], strategy: ShardingStrategy.tensorParallel(n), transport: tr });
  full.shardingStrategy = ShardingStrategy.tensorParallel(n);
  const local = full.shard(DeviceGroup.cpu(n));
  // this rank holds its slice of the expert width (and of the shared expert's)
  const [i0, i1] = shardRange(full.moeDim, tr.rank, n, 1);
  const sh = tp.shards[0];
  const sliceOk = tp.shards.length === 1 && sh.moeDim === i1 - i0 && (!full.hasSharedExperts || sh.sharedExpertsDim === shardRange(full.sharedExpertsDim, tr.rank, n, 1)[1] - shardRange(full.sharedExpertsDim, tr.rank, n, 1)[0]);
  for (const T of [xin.length / H, 1]) {
    const x = xin.subarray(0, T * H);
    const y = await tp.forward(x);
    const want = full.forwardHost(x, T);
    const err = relErr(y, want);
    const identical = sameBits(y, await local.forward(x));
    const ok = y.length === want.length && err < TOL && identical && sliceOk;
    failed ||= !ok;
    console.log(JSON.stringify({ rank: tr.rank, size: n, case: T === 1 ? `${arch} T=1` : arch, T, H, moeDim: sh.moeDim, err, identical, sliceOk, ok }));
  }
  local.destroy();
  tp.destroy();
  full.destroy();
}
for (const arch of QUANT_ARCHS) {
  let err;
  try {
    await ShardedMoE.fromHuggingFace({ source: `${FIXTURES}/${arch}`, layer: 0, devices: [DeviceRef.CPU()], strategy: ShardingStrategy.tensorParallel(n), transport: tr });
  } catch (e) {
    err = e;
  }
  const ok = err instanceof ShardingError && /unit \d+ = (fp8_block|mxfp4) blocks.*would cut a block/.test(err.message);
  failed ||= !ok;
  console.log(JSON.stringify({ rank: tr.rank, size: n, case: `${arch} block unit`, ok, err: 0, error: String(err?.message) }));
}

// A random layer (H 32, E 4, k 2, I 96, dense shared expert S 12) in every format: I = 96 is 6 fp8 column blocks of
// 16, 3 MXFP4 blocks, 16 int4 blocks of 6, 12 int8 blocks of 8.
{
  const H = 32, E = 4, I = 96, S = 12, T = 7;
  const rand = lcg(4321);
  const dense = new MoE({ hiddenDim: H, numExperts: E, numExpertsPerToken: 2, moeDim: I, gateCls: SoftmaxTopKGate, gateOptions: { normTopkProb: true }, hasSharedExperts: true, sharedExpertsDim: S });
  dense.loadStateDict({
    'gate.weight': HostTensor.fromFloat32([E, H], rand(E * H, 0.3)),
    'experts.gate_up_proj': HostTensor.fromFloat32([E, 2 * I, H], rand(E * 2 * I * H, 0.3)),
    'experts.down_proj': HostTensor.fromFloat32([E, H, I], rand(E * H * I, 0.1)),
    'shared_experts.gate_proj.weight': HostTensor.fromFloat32([S, H], rand(S * H, 0.3)),
    'shared_experts.up_proj.weight': HostTensor.fromFloat32([S, H], rand(S * H, 0.3)),
    'shared_experts.down_proj.weight': HostTensor.fromFloat32([H, S], rand(H * S, 0.3)),
  });
  const x = rand(T * H, 1);
  for (const fmt of [{ format: 'fp8_block', weightBlockSize: [8, 16] }, { format: 'mxfp4' }, { format: 'int4', blockSize: 6 }, { format: 'int8', blockSize: 8 }]) {
    const q = quantize(dense, fmt);
    const tp = new ShardedMoE(q, [DeviceRef.CPU()], ShardingStrategy.tensorParallel(n), { transport: tr });
    q.shardingStrategy = ShardingStrategy.tensorParallel(n);
    const local = q.shard(DeviceGroup.cpu(n));
    const y = await tp.forward(x);
    const err = relErr(y, q.forwardHost(x, T));
    const identical = sameBits(y, await local.forward(x));
    const packed = tp.shards[0].gateUpProj.value.dtype === q.gateUpProj.value.dtype;
    const ok = err < TOL && identical && packed;
    failed ||= !ok;
    console.log(JSON.stringify({ rank: tr.rank, size: n, case: `random ${fmt.format}`, T, H, moeDim: tp.shards[0].moeDim, err, identical, sliceOk: packed, ok }));
    local.destroy();
    tp.destroy();
    q.destroy();
  }
}
process.exitCode = failed ? 1 : 0;
