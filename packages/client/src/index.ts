export type { WaitSettings } from "./Awaiting.js"
export type {
  EnqueueAndWaitSettings,
  EnqueueSettings,
  JobInput,
  NextClaim,
  OsqueueClientShape
} from "./ClientShape.js"
export * from "./Errors.js"
export * as JobDefinition from "./JobDefinition.js"
export { type ConnectionOptions, OsqueueClient, type ProtocolOptions, type WebSocketOptions } from "./OsqueueClient.js"
export { createClient, type PromiseClientOptions, type Transport as PromiseTransport } from "./promise.js"
export * as Protocols from "./Protocols.js"
export { defaultRetry, isRetryableClientError } from "./Router.js"
export type { BrokerApi } from "./Transport.js"
