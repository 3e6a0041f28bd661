/// <reference types="@webgpu/types" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
// The references above are kept in the emitted .d.ts so that consumers get the
// GPU* types and Symbol.dispose without configuring anything (see README "Install").
//
// The public API of @webmoe/sharding (api/sharding.api.md is its report).
// Kernel objects and their variants, and the index/axis checks, stay inside.
export { VERSION } from './version.js';
export { ShardingError } from './errors.js';
export { shardRange, shardSizes, type IndexRange } from './range.js';
export { takeRanges, concatAxis } from './host-ops.js';
export { ShardingStrategy, type ShardingKind, type GateUpLayout, type SplitOptions, type GateUpOptions, type Shard } from './strategy.js';
export { DeviceGroup, type DevicePlacement, type DeviceGroupOptions } from './device-group.js';
export {
  allReduce,
  allGather,
  allToAll,
  allToAllv,
  allToAllCounts,
  cpuAllReduce,
  cpuAllGather,
  cpuAllToAll,
  cpuAllToAllv,
  type CollectiveOptions,
  type AllToAllvResult,
} from './collectives.js';
export { createLocalTransports, rankAllReduce, rankAllReduceHost, rankAllGather, rankAllToAllv, type HostTransport } from './transport.js';
export {
  expertPlacement,
  planEPDispatch,
  planEPReceive,
  planEP,
  gatherRowsRef,
  epCombineRef,
  type ExpertPlacement,
  type EPDispatchPlan,
  type EPReceivePlan,
} from './ep.js';
export { gatherRowsGpu, epCombineGpu, EPPlanTensors } from './kernels.js';
export { EPBatchManager, EPStep, type EPBatchManagerOptions } from './ep-manager.js';
export {
  rankEPForward,
  planEPRankDispatch,
  epRankRecordBytes,
  NO_LOCAL_EXPERT,
  type EPRankDispatchPlan,
  type EPRankStats,
  type RankEPForwardOptions,
} from './ep-rank.js';
