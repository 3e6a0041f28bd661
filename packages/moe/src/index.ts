/// <reference lib="esnext.disposable" preserve="true" />
// The reference above is kept in the emitted .d.ts so that consumers get
// Symbol.dispose without configuring anything (see README "Install").
//
// The public API of @webmoe/moe (api/moe.api.md is its report). The loader's
// and the quantization config's internal steps stay inside the package.
export { VERSION } from './version.js';
export { ConfigError, CheckpointError, UnsupportedError } from './errors.js';
export { MoEGate, SoftmaxTopKGate, TopKSoftmaxGate, GroupedGate, DeepseekV3Gate, DeepseekV2Gate, Ernie45Gate, Llama4Gate, type GateOptions, type GateClass } from './gates.js';
export { MoE, StackedExperts, type MoEOptions, type ExpertWeightSet, type MoEGpuBytes, type MoEGpuForwardOptions, type MoEHostForwardOptions, type MoEOutput } from './moe.js';
export type { ExpertStore, SharedExperts } from './expert-store.js';
export { moeLayerConfig, type MoELayerConfig, type ExpertStorage, type SharedExpertsConfig } from './layer-config.js';
export { expertBiasGpu, type UploadedStack } from './expert-stacks.js';
export { MoEStack } from './stack.js';
export type { MoELayer, MoELayerClass, PrefillDequantChoice } from './layer.js';
export { runMoEForward, SHARED_EXPERT_ACTIVATION, FORWARD_STEPS, type ForwardStep, type MoEStages, type SharedExpertsOut } from './forward/stages.js';
export { gpuStages, type GpuStageRun, type GroupedRowsGpu } from './forward/gpu.js';
export { hostStages, addSharedHost } from './forward/host.js';
export { ShardedMoE, type ShardedHFLoadOptions, type ShardedMoEOptions } from './sharded.js';
export { openHFCheckpoint, type MoECheckpoint, type CheckpointTensorInfo } from './checkpoint.js';
export { parseHFMoEConfig, hfMoELayers, HF_MOE_MODEL_TYPES, HF_MOE_MODEL_TYPE_ALIASES, type HFMoEModelType, type HFExpertLayout, type HFMoESpec } from './hf-config.js';
export { STREAM_EXPERTS_BYTES, type HFLoadOptions, type MoEWeightDType } from './hf-options.js';
export {
  QuantizedExperts,
  parseHFQuantConfig,
  type MoEQuantConfig,
  type MoEQuantFormat,
  type ActivationQuant,
  type ResolvedQuantConfig,
  type QuantizedExpertsOptions,
} from './quant-experts.js';
export { quantize } from './quant.js';
export type { CompressedTensorsConfig, CTConfigGroup, CTWeightScheme } from './compressed-tensors-config.js';
