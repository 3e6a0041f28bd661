// One MPI rank: tensor-parallel MoE forward over the MPI transport (CPU shards) against the unsharded layer
// computed on the same rank (MoE.forwardHost, the TypeScript reference) and against the in-process CPU TP
// (MoE.shard over DeviceGroup.cpu(n): the same slices and sum order, so the same bits). Cases: every
// unquantized fixture with all its tokens and with one token. Prints one JSON line per case; exit 1 if any is off.
import { ARCHS, FIXTURES, TOL, relErr } from './common.mjs';
import { DeviceRef, SafetensorsFile } from '@webmoe/tensor';
import { fileSource } from '@webmoe/tensor/node';
import { DeviceGroup, ShardingStrategy, shardRange } from '@webmoe/sharding';
import { MoE, ShardedMoE } from '@webmoe/moe';
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
process.exitCode = failed ? 1 : 0;
