/**
 * The CPU device's layer: `@webmoe/moe`'s MoE on the host (`DeviceRef.CPU()`),
 * built from the same options as the GPU rows' layer and filled with the same
 * random bit patterns in each parameter's storage dtype (fill.ts); a forward is
 * the library's host path, `MoE.forwardHost` (the TypeScript references).
 */
import { MoE } from '@webmoe/moe';
import { DeviceRef, type HostTensor } from '@webmoe/tensor';
import type { ExpertWeightsHost } from '@webmoe/kernels-wgsl';
import type { Parameter } from '@webmoe/nn';
import { fillKindOf, type FillKind } from './fill.js';
import { benchMoEOptions, packedExpertSeeds, PACKED_FILL, randomHostTensor, seedOf } from './moe-run.js';
import type { BenchDtype, ModelSpec } from './models.js';
import type { StoredDtype, StoredExperts, StoredLayer, StoredTensor } from './stored.js';

/**
 * `spec`'s layer in `dtype` on the host with random weights of the GPU
 * rows' value kinds (the GPU rows generate theirs chunk by chunk on the GPU,
 * expert-gen.ts), loaded through `loadStateDict`.
 * @example `const moe = createHostLayer(TINY, 'bf16'); moe.forwardHost(x, T)`
 */
export function createHostLayer(spec: ModelSpec, dtype: BenchDtype): MoE {
  const moe = new MoE({ ...benchMoEOptions(spec, dtype), devices: [DeviceRef.CPU()] });
  const fills = new Map<Parameter, { seed: number; kind: FillKind }>();
  // packed routed experts, and shared experts packed like them: codes and scales of the format's value kinds
  const packed = [moe.stacked, ...(moe.shared?.kind === 'packed' ? [moe.shared.store] : [])];
  packed.forEach((ex, i) => {
    if (ex.format === 'dense') return;
    const kinds = PACKED_FILL[dtype as keyof typeof PACKED_FILL];
    const seeds = packedExpertSeeds(i);
    fills.set(ex.gateUpProj, { seed: seeds.gateUp, kind: kinds.codes });
    fills.set(ex.gateUpScale, { seed: seeds.gateUp + 1, kind: kinds.scales });
    fills.set(ex.downProj, { seed: seeds.down, kind: kinds.codes });
    fills.set(ex.downScale, { seed: seeds.down + 1, kind: kinds.scales });
  });
  const sd: Record<string, HostTensor> = {};
  for (const [name, p] of moe.namedParameters()) {
    const f = fills.get(p);
    sd[name] = randomHostTensor(p.dtype, p.shape, f?.seed ?? seedOf(name), f?.kind ?? fillKindOf(p.dtype));
  }
  moe.loadStateDict(sd);
  return moe;
}

/**
 * One forward of a host layer: the output [T, H] (`MoE.forwardHost`) and its
 * routing [T, k] (`MoE.routeHost`, the router stage that forward runs).
 * @example `const { out, idx } = hostForward(moe, x, T)`
 */
export function hostForward(moe: MoE, x: Float32Array, T: number): { out: Float32Array; idx: Uint32Array } {
  return { out: moe.forwardHost(x, T), idx: moe.routeHost(x, T).idx };
}

/** Bytes as a stored tensor. */
function storedBytes(dtype: StoredDtype, shape: readonly number[], bytes: Uint8Array): StoredTensor {
  return { dtype, shape, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A host tensor as the reference reads it: its own dtype, shape and bytes. */
function storedTensor(t: HostTensor): StoredTensor {
  return storedBytes(t.dtype as StoredDtype, t.shape, bytesOf(t));
}

function storedExperts(w: ExpertWeightsHost): StoredExperts {
  switch (w.kind) {
    case 'dense': return { kind: 'dense', w: storedTensor(w.w) };
    case 'fp8_block': return { kind: 'fp8_block', q: storedTensor(w.q), scaleInv: storedTensor(w.scaleInv), block: w.block };
    case 'int_block':
      if (w.zeros) throw new Error('bench check: int blocks with zero points are not read by the reference');
      return { kind: 'int_block', bits: w.bits, q: storedTensor(w.q), scales: storedTensor(w.scales), blockSize: w.blockSize };
    case 'mxfp4': return { kind: 'mxfp4', blocks: storedTensor(w.blocks), scales: storedTensor(w.scales) };
  }
}

/**
 * A host layer's weights as the check's reference reads them: the very
 * tensors `forwardHost` reads (the shared experts' gate and up rows
 * concatenated, [1, 2S, H], as the GPU layer packs them).
 * @example `await checkForward(spec, storedHostLayer(moe), x, out, idx)`
 */
export function storedHostLayer(moe: MoE): StoredLayer {
  const g = moe.gate;
  const opt = (p: Parameter | undefined) => (p ? storedTensor(p.value) : undefined);
  const w = moe.stacked.hostWeights();
  const se = moe.sharedExperts;
  let shared: StoredLayer['shared'];
  if (se) {
    const S = moe.sharedExpertsDim;
    const H = moe.hiddenDim;
    const gate = bytesOf(se.gateProj.weight.value);
    const up = bytesOf(se.upProj.weight.value);
    const gateUp = new Uint8Array(gate.length + up.length);
    gateUp.set(gate);
    gateUp.set(up, gate.length);
    const dtype = se.gateProj.weight.value.dtype as StoredDtype;
    shared = { gateUp: { kind: 'dense', w: storedBytes(dtype, [1, 2 * S, H], gateUp) }, down: { kind: 'dense', w: storedBytes(dtype, [1, H, S], bytesOf(se.downProj.weight.value)) } };
  } else if (moe.shared?.kind === 'packed') {
    const sw = moe.shared.store.hostWeights();
    shared = { gateUp: storedExperts(sw.gateUp), down: storedExperts(sw.down) };
  }
  return {
    router: storedTensor(g.weight.value),
    routerBias: opt(g.bias),
    correctionBias: opt(g.eScoreCorrectionBias),
    gateUp: storedExperts(w.gateUp),
    down: storedExperts(w.down),
    gateUpBias: opt(moe.stacked.gateUpBias),
    downBias: opt(moe.stacked.downBias),
    shared,
  };
}
