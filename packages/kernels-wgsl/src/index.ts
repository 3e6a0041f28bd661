/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
// The references above are kept in the emitted .d.ts so that consumers get the
// GPU* types and Symbol.dispose without configuring anything (see README "Install").
//
// The public API of @webmoe/kernels-wgsl (api/kernels-wgsl.api.md is its
// report): the runtime, each op's `xxxGpu` / `xxxRef` pair with its options
// and containers, and the kernel choices the layers above share. Kernel
// objects, variants, tile sizes, WGSL snippets and validation helpers stay
// inside the package (tests import them from their source files). Test
// support is in '@webmoe/kernels-wgsl/testing'.
export { VERSION } from './version.js';

// runtime: devices, memory, recording
export { NoAdapterError, GpuValidationError, GpuOutOfMemoryError, DeviceLostError, LimitError } from './runtime/errors.js';
export {
  createGpuContext,
  GpuContext,
  getGpu,
  requestAdapter,
  describeAdapter,
  gpuSelection,
  STAGING_KEEP,
  type GpuContextOptions,
  type GpuFeatures,
  type AdapterDescription,
} from './runtime/context.js';
export type { GpuSelection } from './runtime/gpu-select.js';
export { defaultDevice, type DefaultDevice, type DefaultDeviceOptions } from './runtime/default-device.js';
export { GpuTensor, readBuffer, mapForRead, type MappedRead, gpuByteLength, checkBufferSize, expectDType, type BufferOwner } from './runtime/tensor.js';
export { BufferPool, outputPool, sharedScratch, SHARED_SCRATCH_FLOOR_BYTES } from './runtime/pool.js';
export {
  Recorder,
  GpuGraph,
  type GraphBinding,
  type GraphCommand,
  type ReplayOptions,
  type SubmitPieces,
  defineKernel,
  uniformFields,
  Uniforms,
  foldWorkgroups,
  type Kernel,
  type KernelOptions,
  type KernelSignature,
  type BindingDecl,
  type UniformField,
  type UniformType,
  type Variant,
  type DispatchSpec,
  type KernelTiming,
} from './runtime/kernel.js';
export { ForwardGraphs, checkOutput, recordAndSubmit, type RecordForward } from './runtime/graph-cache.js';
export { forwardGraphKey, GraphKeyMemo } from './runtime/graph-key.js';
export { GraphScratch, graphScratchBytes, trimGraphScratch } from './runtime/graph-scratch.js';

// the ops and their containers
export type {
  RouterKind,
  RouterParams,
  RoutingRef,
  RoutingGpu,
  GroupingRef,
  GroupingGpu,
  ExpertActivation,
  ExpertWeightsGpu,
  ExpertWeightsHost,
  ExpertWeightsShape,
  TensorShape,
  ExpertRowLayout,
  ExpertChunk,
  ChunkedExpertWeightsGpu,
  ChunkedExpertWeightsHost,
  ExpertStackGpu,
  ExpertStackHost,
} from './kernels/moe-types.js';
export { castGpu, castRef } from './kernels/cast.js';
export { linearGpu, linearRef, LINEAR_KERNELS, LINEAR_PATHS, LINEAR_WEIGHT_DTYPES, type LinearKernel, type LinearOptions, type LinearWeightDType } from './kernels/linear.js';
export { SKINNY_TOKENS, type LinearPath, type SkinnyTokens } from './kernels/plan.js';
export { routerGpu, routerRef, type RouterOptions } from './kernels/router.js';
export { routeDecodeGpu, routeDecodeRef, type RouteDecodeOutputs, type RouterLinearInput } from './kernels/route-decode.js';
export { groupGpu, groupDecodeGpu, groupRef, denseGroupingGpu, denseGroupingRef, DENSE_GROUPING_CONST_MAX_T, GROUP_ONE_MAX_EXPERTS, uploadGrouping, type GroupOptions } from './kernels/grouping.js';
export { groupedGateUpGpu, groupedDownGpu, warmGroupedGemm, type GroupedGemmOptions, type GroupedGateUpOptions, type GroupedGemmWarmSpec } from './kernels/grouped-gemm.js';
export type { FastGemmOptions } from './kernels/grouped-gemm-fast.js';
export { groupedGateUpRef, groupedDownRef } from './kernels/grouped-gemm-ref.js';
export { groupedGateUpCpu, groupedDownCpu, linearCpu, cpuKernelPath } from './kernels/cpu-kernels.js';
export { cpuResident, isCpuResident } from './kernels/cpu-resident.js';
export { gemvGateUpGpu, gemvDownGpu, gemvSupports, activeExpertsGpu, type GemvOptions, type ActiveExperts } from './kernels/moe-gemv.js';
export { gemvDownCombineGpu, gemvCombineSupports, type GemvCombineOptions } from './kernels/moe-gemv-combine.js';
export { combineGpu, combineRef, type CombineOptions } from './kernels/combine.js';
export {
  expertDims,
  expertWeightBytes,
  expertTensors,
  planExpertChunks,
  chunkExpertWeightsHost,
  appendExpertStacks,
  tryAppendExpertStacks,
  destroyExpertWeights,
  type ExpertDims,
  type ExpertChunkRange,
} from './kernels/expert-weights.js';
export { uploadExpertWeights, uploadExpertStack, uploadExpertStackStreamed, createExpertStack, type UploadExpertStackOptions, type ExpertStackPlanOptions, type ExpertStreamPiece } from './kernels/expert-stack-upload.js';
export { ACT_QUANT_GROUP, quantizeExperts, decodeExpertRow, type ExpertQuantFormat, type ExpertActQuantOptions } from './kernels/quant-ref.js';

// the kernel choices that the layers above share (one place: kernels/plan.ts)
export { gatedActivationRef, type GatedActivationParams } from './kernels/activation-ref.js';
export { planExpertGemms, useExpertGemv, useSingleExpertGemv, useStackGraph, useFusedDecodeRouting, useRouterLinearInRouting, useCombinedDownGemv, useSharedExpertSlots, STACK_SUBMIT_PIECES, GRAPH_CAPTURE_AT, type CombinedDownOn, type DecodeSharedChoice, type DownCombineChoice, type ExpertGemmChoice, type ExpertGemmShape, type FastGemmKind, type GemvPackedKernel, type SgmatXRows } from './kernels/plan.js';
// the subgroup-matrix GEMM's tile shapes (GroupedGemmOptions.sgmatShape)
export { SGMAT_SHAPES, type SgmatShape, type SgmatShapeName } from './kernels/grouped-gemm-fast-shapes.js';
