/// <reference lib="esnext.disposable" preserve="true" />
// The reference above is kept in the emitted .d.ts so that consumers get
// Symbol.dispose without configuring anything (see README "Install").
//
// The public API of @webmoe/nn (api/nn.api.md is its report): the modules,
// their sharded forms, and the sharding helpers that @webmoe/moe's
// ShardedMoE shares with them.
export { VERSION } from './version.js';
export { StateDictError, NotLoadedError } from './errors.js';
export { Module, Parameter, LayerList, type ModuleOptions, type StateDict } from './module.js';
export { Linear, ShardedLinear, type LinearOptions, type RecordOptions } from './linear.js';
export { MLP, ShardedMLP, concatRows, type MLPOptions, type MLPActivation } from './mlp.js';
export { resolveShardGroup, shardInputRows, shardOutput, gpuPartialSum, buildShards, type ShardDevices, type ShardInput, type ShardOutput } from './shard.js';
