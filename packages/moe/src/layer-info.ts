/** What {@link MoE} reports about itself beyond its forward: its options, the GPU buffers a forward reads and their bytes, its routed experts as per-expert MLPs. */
import { HostTensor, type HostArray } from '@webmoe/tensor';
import { expertTensors, expertWeightBytes, type ExpertStackGpu } from '@webmoe/kernels-wgsl';
import { LayerList, NotLoadedError, type MLP, type MLPActivation, type Parameter } from '@webmoe/nn';
import { UnsupportedError } from './errors.js';
import { configOptions } from './layer-config.js';
import type { MoELayer } from './layer.js';
import type { MoEGpuBytes, MoEOptions } from './moe-options.js';
import type { GateClass } from './gates.js';
import type { ExpertWeightSet } from './stacked-experts.js';

/** {@link MoE.gpuBytes}: the GPU bytes `layer` holds, by kind (scratch buffers and cached graphs not counted; all 0 on the CPU). */
export function layerGpuBytes(layer: MoELayer): MoEGpuBytes {
  let expertWeights = 0;
  let expertScales = 0;
  let other = 0;
  const seen = new Set<Parameter>();
  const count = (p: Parameter | undefined, to: 'w' | 's' | 'o') => {
    if (!p?.gpu || seen.has(p)) return;
    seen.add(p);
    if (to === 'w') expertWeights += p.gpu.byteLength;
    else if (to === 's') expertScales += p.gpu.byteLength;
    else other += p.gpu.byteLength;
  };
  const sh = layer.shared;
  for (const ex of [layer.stacked, sh?.kind === 'packed' ? sh.store : undefined]) {
    if (!ex) continue;
    for (const p of ex.parameters()) seen.add(p);
    let w: ExpertWeightSet<ExpertStackGpu>;
    try {
      w = ex.gpuWeights();
    } catch (e) {
      if (e instanceof NotLoadedError) continue; // not on the GPU (yet)
      throw e;
    }
    for (const s of [w.gateUp, w.down]) {
      const b = expertWeightBytes(s);
      expertWeights += b.weights;
      expertScales += b.scales;
      if (s.kind === 'chunked') for (const c of s.chunks) other += c.bias?.byteLength ?? 0;
    }
    for (const p of [ex.gateUpBias, ex.downBias]) other += p?.gpu?.byteLength ?? 0;
  }
  if (sh?.kind === 'mlp' && layer.device.isGpu()) {
    try {
      const pk = sh.mlp.packedGpu;
      expertWeights += pk.gateUp.byteLength + pk.down.byteLength;
      other += (pk.gateUpBias?.byteLength ?? 0) + (pk.downBias?.byteLength ?? 0);
    } catch {
      // not loaded yet: nothing on the GPU
    }
  }
  for (const p of layer.parameters()) count(p, 'o');
  return { expertWeights, expertScales, other, total: expertWeights + expertScales + other };
}

/** {@link MoE.experts}: the routed experts of `layer` as host MLPs of its `mlpCls` (copies of the loaded dense stacks; concat-layout SiLU / swiglu_limit experts without bias). */
export function expertMLPs(layer: MoELayer): LayerList<MLP> {
  const st = layer.stacked;
  if (st.format !== 'dense') {
    throw new UnsupportedError('MoE.experts', `per-expert MLPs of ${st.format} experts`, 'dense experts (quantized weights stay packed; use hostWeights()/gpuWeights())');
  }
  if (layer.activation.layout !== 'concat' || layer.activation.kind === 'swigluoai' || st.gateUpBias) {
    throw new UnsupportedError('MoE.experts', `per-expert MLPs for ${layer.activation.kind}/${layer.activation.layout} experts with bias=${!!st.gateUpBias}`, 'concat-layout silu / swiglu_limit experts without bias');
  }
  const E = layer.numLocalExperts;
  const H = layer.hiddenDim;
  const I = layer.moeDim;
  const gu = st.gateUpProj.value;
  const dn = st.downProj.value;
  const act: MLPActivation = layer.activation.kind === 'swiglu_limit' ? { kind: 'swiglu_limit', limit: layer.activation.limit ?? layer.swigluLimit } : { kind: 'silu' };
  const slice = (t: HostTensor, start: number, n: number, shape: number[]) => new HostTensor(t.dtype, shape, t.data.slice(start, start + n) as HostArray);
  const list: MLP[] = [];
  for (let e = 0; e < E; e++) {
    const m = new layer.mlpCls({ dtype: layer.dtype, hiddenDim: H, feedForwardLength: I, activation: act });
    m.loadStateDict({
      'gate_proj.weight': slice(gu, e * 2 * I * H, I * H, [I, H]),
      'up_proj.weight': slice(gu, e * 2 * I * H + I * H, I * H, [I, H]),
      'down_proj.weight': slice(dn, e * H * I, H * I, [H, I]),
    });
    list.push(m);
  }
  return new LayerList(list);
}

/**
 * {@link MoE.layerOptions}: the constructor options that describe `layer`'s shape and maths (not its devices, gate
 * options, quantization or sharding), from its config ({@link configOptions}) and its router and MLP classes.
 */
export function layerOptionsOf(layer: MoELayer): Omit<MoEOptions, 'devices'> {
  // what a derived layer chooses itself: expert parallelism, quantization, isSharding
  const { epSize: _ep, shardIndex: _shard, quantConfig: _quant, isSharding: _sharding, ...shapeAndMaths } = configOptions(layer.config);
  return { ...shapeAndMaths, gateCls: layer.gate.constructor as GateClass, mlpCls: layer.mlpCls };
}

/** Every GPU buffer a forward of `layer` with routed-expert weights `gw` reads (parameters, packed shared experts, gw's tensors): part of a graph's key. */
export function* recordedBuffers(layer: MoELayer, gw: ExpertWeightSet<ExpertStackGpu>): Generator<GPUBuffer> {
  for (const p of layer.parameters()) if (p.gpu) yield p.gpu.buffer;
  const sh = layer.shared;
  if (sh?.kind === 'mlp') for (const t of Object.values(sh.mlp.packedGpu)) if (t) yield t.buffer;
  for (const w of [gw.gateUp, gw.down]) for (const t of expertTensors(w)) yield t.buffer;
  if (sh?.kind === 'packed') for (const w of Object.values(sh.store.gpuWeights())) for (const t of expertTensors(w)) yield t.buffer;
}
