// Koala's public API: define interfaces (Avro protocols) and actors, and call a running cluster.
export { Actor, type Session } from './runtime/actor/actor.ts';
export { definePlugin, type ActorPlugin, type PluginDefinition } from './runtime/actor/plugin.ts';
export { defineInterface, interfaceFromIdl, type ActorImplementation, type ActorInterface, type ActorProxy, type InterfaceOptions } from './runtime/interface/interface.ts';
export type { AvroProtocol, AvroSchema, Infer, MethodArgs, MethodResult } from './runtime/interface/avro-types.ts';
export { ClusterClient, type ClusterClientOptions } from './runtime/client/cluster-client.ts';
export { KoalaError, TimeoutError, ERROR_CODES, type ErrorCode } from './runtime/errors/errors.ts';
export { defineConfig, type ManifestInput } from './runtime/config/manifest.ts';
export { defineGatewayPlugin, type GatewayCluster, type GatewayPlugin } from './runtime/gateway/plugin.ts';
export { defineStrategy, type ChooseHost, type PlacementStrategy, type StrategyCall, type StrategyHost } from './runtime/placement/strategy-plugin.ts';
