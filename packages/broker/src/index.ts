/**
 * What a deployment composes: `Broker` (the server layers and the engine), `BrokerConfig` (its
 * settings), `Operations` (every operation once, for a transport of your own) and the paths and
 * serializations clients must match. The HTTP edge itself (`src/http/`) is internal.
 */
export * as Broker from "./Broker.js"
export * as BrokerConfig from "./BrokerConfig.js"
export { dashboardPaths } from "./http/Dashboard.js"
export { operatorPaths } from "./http/OperatorRoutes.js"
export { restPaths } from "./http/Rest.js"
export { rpcPaths, rpcSerialization } from "./http/Rpc.js"
export * as Operations from "./Operations.js"
export * as Queues from "./Queues.js"
