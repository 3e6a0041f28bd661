#!/usr/bin/env node
/**
 * moe-run: runs one MoE block of a HuggingFace checkpoint on a [T, H] tensor.
 *
 *   moe-run --checkpoint DIR --layer N --input IN.safetensors --output OUT.safetensors
 *           [--tensor NAME] [--dtype float32|bfloat16] [--device gpu|cpu|auto]
 *           [--activation-quant none|dynamic] [--verbose]
 *
 * Quantized checkpoints (DeepSeek-V3 block-scaled fp8, GPT-OSS MXFP4) keep
 * their packed experts; `--activation-quant` overrides the checkpoint's
 * activation scheme (fp8: `activation_scheme: dynamic` is the default).
 *
 * Writes `output` (float32 [T, H]) to OUT through a temporary file and a
 * rename: nothing is written on failure.
 *
 * `--ep N --transport mpi` under `mpiexec -n N`: one rank per process, each
 * reads only its experts (router and shared expert whole), routes its slice
 * of the tokens and exchanges them through MPI (`@webmoe/mpi`); rank 0 writes
 * OUT. `--tp N --transport mpi`: each rank keeps its tensor-parallel slice of
 * the layer, computes its partial output for all tokens, and one MPI
 * all-reduce sums the partials. A GPU rank sets `WEBMOE_GPU_INDEX` to its local rank unless set. An
 * error on any rank after MPI started ends every rank (`MPI_Abort`). Exits 0 on success, 2 on bad usage,
 * 1 on any other error, with a one-line message (the stack with --verbose).
 */
import { DeviceRef, HostTensor, SafetensorsFile, WebMoEError } from '@webmoe/tensor';
import { dirSource, fileSource, writeSafetensorsFile } from '@webmoe/tensor/node';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { MoE } from './moe.js';
import { DeviceGroup, ShardingStrategy } from '@webmoe/sharding';
import { ShardedMoE } from './sharded.js';

const USAGE =
  'usage: moe-run --checkpoint DIR --layer N --input IN.safetensors --output OUT.safetensors [--tensor NAME] [--dtype float32|bfloat16] [--device gpu|cpu|auto] [--activation-quant none|dynamic] [--verbose]\n' +
  '       --device auto: the GPU on a hardware adapter, else the CPU path (no adapter, or a software one: lavapipe, SwiftShader)';

class UsageError extends Error {}

const SHARD_USAGE =
  '       [--tp N | --ep N]  tensor / expert parallel over N devices (DeviceGroup.create(N): one device per distinct adapter, the rest on the first; CPU shards with --device cpu)\n' +
  '       [--transport local|mpi]  mpi: --ep N or --tp N over N processes, run under `mpiexec -n N` (needs @webmoe/mpi and an MPI library)';

interface Args {
  checkpoint: string;
  layer: number;
  input: string;
  output: string;
  tensor: string;
  dtype?: 'float32' | 'bfloat16';
  device: 'gpu' | 'cpu' | 'auto';
  /** --tp N: tensor parallel over N devices. */
  tp?: number;
  /** --ep N: expert parallel over N devices. */
  ep?: number;
  activationQuant?: 'none' | 'dynamic';
  /** 'local': all shards in this process; 'mpi': one rank per process (--ep or --tp). */
  transport: 'local' | 'mpi';
  verbose: boolean;
}

/** Parses the command line; throws UsageError with a one-line reason. */
export function parseArgs(argv: readonly string[]): Args | 'help' {
  const vals = new Map<string, string>();
  let verbose = false;
  const takes = new Set(['--checkpoint', '--layer', '--input', '--output', '--tensor', '--dtype', '--device', '--activation-quant']);
  takes.add('--tp');
  takes.add('--ep');
  takes.add('--transport');
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--verbose' || a === '-v') {
      verbose = true;
      continue;
    }
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (!takes.has(a)) throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
    if (v === undefined) {
      v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
    }
    if (vals.has(a)) throw new UsageError(`${a} given twice`);
    vals.set(a, v);
  }
  for (const r of ['--checkpoint', '--layer', '--input', '--output']) if (!vals.has(r)) throw new UsageError(`missing ${r}`);
  const layerS = vals.get('--layer')!;
  if (!/^\d+$/.test(layerS)) throw new UsageError(`--layer: expected a non-negative integer, got ${JSON.stringify(layerS)}`);
  const dtype = vals.get('--dtype');
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'bfloat16') throw new UsageError(`--dtype: expected float32 or bfloat16, got ${JSON.stringify(dtype)}`);
  const device = vals.get('--device') ?? 'gpu';
  if (device !== 'gpu' && device !== 'cpu' && device !== 'auto') throw new UsageError(`--device: expected gpu, cpu or auto, got ${JSON.stringify(device)}`);
  const aq = vals.get('--activation-quant');
  if (aq !== undefined && aq !== 'none' && aq !== 'dynamic') throw new UsageError(`--activation-quant: expected none or dynamic, got ${JSON.stringify(aq)}`);
  const transport = vals.get('--transport') ?? 'local';
  if (transport !== 'local' && transport !== 'mpi') throw new UsageError(`--transport: expected local or mpi, got ${JSON.stringify(transport)}`);
  const shard = parseShard(vals);
  if (device === 'auto' && (shard.ep !== undefined || shard.tp !== undefined)) throw new UsageError('--device auto: expected gpu or cpu with --tp / --ep (a sharded run names its devices), got auto');
  if (transport === 'mpi' && shard.ep === undefined && shard.tp === undefined) throw new UsageError('--transport mpi: expected --ep N or --tp N (expert / tensor parallel over N processes), got neither');
  return {
    transport,
    activationQuant: aq as Args['activationQuant'],
    checkpoint: vals.get('--checkpoint')!,
    layer: Number(layerS),
    input: vals.get('--input')!,
    output: vals.get('--output')!,
    tensor: vals.get('--tensor') ?? 'input',
    dtype: dtype as Args['dtype'],
    device,
    ...shard,
    verbose,
  };
}

/** --tp N / --ep N (at most one of them), N a positive integer. */
function parseShard(vals: ReadonlyMap<string, string>): { tp?: number; ep?: number } {
  const out: { tp?: number; ep?: number } = {};
  for (const k of ['tp', 'ep'] as const) {
    const v = vals.get(`--${k}`);
    if (v === undefined) continue;
    if (!/^[1-9]\d*$/.test(v)) throw new UsageError(`--${k}: expected a positive integer number of devices, got ${JSON.stringify(v)}`);
    out[k] = Number(v);
  }
  if (out.tp !== undefined && out.ep !== undefined) throw new UsageError('--tp and --ep: expected one of them, got both');
  return out;
}

/** The layer sharded over N devices (--tp / --ep): loaded on the host, cut, run; output f32 [T, H]. */
async function runSharded(args: Args, x: HostTensor): Promise<void> {
  const n = (args.tp ?? args.ep)!;
  const strategy = args.tp !== undefined ? ShardingStrategy.tensorParallel(n) : ShardingStrategy.expertParallel(n);
  const group = args.device === 'gpu' ? await DeviceGroup.create(n, { context: { label: 'moe-run' } }) : DeviceGroup.cpu(n);
  let sharded: ShardedMoE | undefined;
  try {
    if (args.verbose) process.stderr.write(`moe-run: ${strategy.kind} over ${n} devices: ${group.adapterNames().join(' | ')}\n`);
    sharded = await ShardedMoE.fromHuggingFace({ source: dirSource(args.checkpoint), layer: args.layer, dtype: args.dtype, activationQuant: args.activationQuant, devices: group, strategy });
    const y = await sharded.forward(new HostTensor('float32', x.shape, x.toFloat32()));
    await writeSafetensorsFile(args.output, { output: y }, { producer: 'moe-run', layer: String(args.layer), device: args.device, dtype: sharded.shards[0].dtype, sharding: `${strategy.kind}:${n}` });
  } finally {
    sharded?.destroy();
    group.destroy();
  }
}

/** Set once MPI is up: an error after that ends every rank (MPI_Abort), never leaves the others waiting. */
let mpiRank: { rank: number; abort(code?: number): never } | undefined;

/** --ep N / --tp N --transport mpi: this process is one rank of N. */
async function runMpiRank(args: Args, x: HostTensor): Promise<void> {
  const n = (args.ep ?? args.tp)!;
  const flag = args.ep !== undefined ? '--ep' : '--tp';
  const spec = '@webmoe/mpi';
  let mpi: typeof import('@webmoe/mpi');
  try {
    mpi = (await import(/* @vite-ignore */ spec)) as typeof import('@webmoe/mpi');
  } catch (e) {
    throw new Error(`--transport mpi: expected the @webmoe/mpi package beside @webmoe/moe (npm install @webmoe/mpi), got ${(e as Error).message.split('\n')[0]}`);
  }
  const tr = mpi.createMpiTransport();
  // every rank sees the same size: a mismatch is a usage error on all of them, before anything is allocated
  if (tr.size !== n) {
    tr.finalize(); // every rank gets here: a clean MPI exit (status 2) instead of the exit hook's abort
    throw new UsageError(`${flag} ${n} --transport mpi: expected ${n} ranks (mpiexec -n ${n}), got ${tr.size}`);
  }
  mpiRank = tr;
  let ctx: GpuContext | undefined;
  let group: DeviceGroup | undefined;
  let sharded: ShardedMoE | undefined;
  try {
    if (args.device === 'gpu') {
      process.env.WEBMOE_GPU_INDEX ??= String(tr.localRank); // read before Dawn loads (kernels-wgsl selectGpuFromEnv)
      const { createGpuContext, gpuSelection } = await import('@webmoe/kernels-wgsl');
      ctx = await createGpuContext({ label: `moe-run rank ${tr.rank}` });
      const sel = gpuSelection();
      if (args.verbose) process.stderr.write(`moe-run: rank ${tr.rank} (local ${tr.localRank}): ${ctx.adapterInfo.name}; ${sel?.set ?? sel?.note ?? 'no GPU selection'}\n`);
      group = DeviceGroup.fromContexts([ctx]);
    } else group = DeviceGroup.cpu(1);
    const strategy = args.ep !== undefined ? ShardingStrategy.expertParallel(n) : ShardingStrategy.tensorParallel(n);
    sharded = await ShardedMoE.fromHuggingFace({ source: dirSource(args.checkpoint), layer: args.layer, dtype: args.dtype, activationQuant: args.activationQuant, devices: group, strategy, transport: tr });
    const y = await sharded.forward(new HostTensor('float32', x.shape, x.toFloat32()));
    if (args.verbose && sharded.lastEPStats) process.stderr.write(`moe-run: rank ${tr.rank}: ${JSON.stringify(sharded.lastEPStats[0])}\n`);
    if (tr.rank === 0) {
      await writeSafetensorsFile(args.output, { output: y }, { producer: 'moe-run', layer: String(args.layer), device: args.device, dtype: sharded.shards[0].dtype, sharding: `${strategy.kind}:${n}`, transport: `mpi:${tr.implementation}` });
    }
  } finally {
    sharded?.destroy();
    group?.destroy();
    ctx?.destroy();
  }
}

async function run(args: Args): Promise<void> {
  const file = await SafetensorsFile.open(await fileSource(args.input), args.input);
  let x: HostTensor;
  try {
    if (!file.has(args.tensor)) throw new Error(`--input ${args.input}: expected a tensor named ${JSON.stringify(args.tensor)}, got ${file.keys().join(', ') || 'no tensors'}`);
    x = await file.read(args.tensor);
  } finally {
    await file.close();
  }
  if (x.shape.length !== 2) throw new Error(`--input tensor ${args.tensor}: expected shape [T, H], got [${x.shape.join(', ')}]`);
  if (!['float32', 'bfloat16', 'float16'].includes(x.dtype)) throw new Error(`--input tensor ${args.tensor}: expected dtype float32 | bfloat16 | float16, got ${x.dtype}`);
  if (args.transport === 'mpi') return runMpiRank(args, x);
  if (args.tp !== undefined || args.ep !== undefined) return runSharded(args, x);
  let ctx: GpuContext | undefined;
  let moe: MoE | undefined;
  try {
    let device = args.device === 'gpu' ? DeviceRef.GPU() : DeviceRef.CPU();
    if (args.device === 'gpu') {
      const { createGpuContext } = await import('@webmoe/kernels-wgsl');
      ctx = await createGpuContext({ label: 'moe-run' });
    } else if (args.device === 'auto') {
      const { defaultDevice } = await import('@webmoe/kernels-wgsl');
      const chosen = await defaultDevice({ label: 'moe-run' });
      ({ device, ctx } = chosen);
      if (args.verbose) process.stderr.write(`moe-run: --device auto: ${device.toString()}: ${chosen.reason}\n`);
    }
    moe = await MoE.fromHuggingFace({
      source: dirSource(args.checkpoint),
      layer: args.layer,
      dtype: args.dtype,
      device,
      ctx,
      activationQuant: args.activationQuant,
    });
    const xf = new HostTensor('float32', x.shape, x.toFloat32());
    const y = await moe.forward(xf);
    // A temporary file renamed into place: nothing half-written on failure.
    await writeSafetensorsFile(args.output, { output: y }, { producer: 'moe-run', layer: String(args.layer), device: device.deviceType, dtype: moe.dtype, experts: moe.config.experts.format, activation_quant: moe.activationQuant });
  } finally {
    moe?.destroy();
    ctx?.destroy();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  try {
    const args = parseArgs(argv);
    if (args === 'help') {
      process.stdout.write(USAGE + '\n' + SHARD_USAGE + '\n');
      return 0;
    }
    await run(args);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      process.stderr.write(`moe-run: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    const name = err instanceof WebMoEError ? `${err.name}: ` : '';
    const where = mpiRank ? ` (rank ${mpiRank.rank})` : '';
    process.stderr.write(`moe-run${where}: ${name}${String(err?.message ?? err).split('\n')[0]}\n`);
    if (verbose && err?.stack) process.stderr.write(err.stack + '\n');
    // other ranks may be waiting in a collective for this one: end them all
    if (mpiRank) mpiRank.abort(1);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
