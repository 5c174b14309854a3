/**
 * How the client reaches one broker URL over RPC. A connection is built in the scope the
 * caller gives it (pitfall: providing a protocol layer straight to `RpcClient.make` closes it
 * as soon as `make` returns, and a socket client then hangs).
 */
import * as WebSocketConstructor from "#webSocketConstructor"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Socket from "@effect/platform/Socket"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { JobTrace, OsqueueRpcs, WebSocketAuth } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as SocketCalls from "./internal/socketCalls.js"
import { type BrokerApi, fromRpcClient, type OsqueueRpcClient } from "./Transport.js"

/** Opens a client to one broker, living as long as the scope. */
export type Connect = (url: string) => Effect.Effect<BrokerApi, never, Scope.Scope>

export type Serialization = "json" | "ndjson" | "msgpack"

export const layerSerialization = (kind: Serialization): Layer.Layer<RpcSerialization.RpcSerialization> => {
  switch (kind) {
    case "json":
      return RpcSerialization.layerJson
    case "ndjson":
      return RpcSerialization.layerNdjson
    case "msgpack":
      return RpcSerialization.layerMsgPack
  }
}

export const trimUrl = (url: string): string => url.replace(/\/+$/, "")

/**
 * Only RPC answers go on to the RPC client: an error status whose body is not ndjson (a broker
 * starting or stopping answers 503, a proxy 502) fails as a transport error, which the router
 * retries elsewhere. Read as ndjson, such a body would kill the call with a defect. (The broker's
 * own refusals — 401, 413 — are ndjson RPC answers and pass.)
 */
const rpcAnswersOnly = <E, R>(client: HttpClient.HttpClient.With<E, R>): HttpClient.HttpClient.With<E, R> =>
  // The cast widens nothing the caller sees: the RPC protocol maps every failure of its HTTP
  // client, whatever its type, to an RpcClientError; `transformClient` only cannot say so.
  HttpClient.filterOrFail(
    client,
    (response) => response.status < 400 || (response.headers["content-type"] ?? "").includes("ndjson"),
    (response) =>
      new HttpClientError.ResponseError({
        request: response.request,
        response,
        reason: "StatusCode",
        description: `status ${response.status} without an RPC answer`
      })
  ) as unknown as HttpClient.HttpClient.With<E, R>

/** RPC over HTTP POST `<url>/rpc`, ndjson, bearer token in the Authorization header. */
export const httpProtocol = (
  url: string,
  options: { readonly token?: string | undefined; readonly path?: string | undefined } = {}
): Layer.Layer<RpcClient.Protocol> =>
  RpcClient.layerProtocolHttp({
    url: `${trimUrl(url)}${options.path ?? "/rpc"}`,
    transformClient: (client) =>
      rpcAnswersOnly(
        options.token === undefined
          ? client
          : HttpClient.mapRequest(client, HttpClientRequest.bearerToken(options.token))
      )
  }).pipe(Layer.provide([FetchHttpClient.layer, RpcSerialization.layerNdjson]))

/** The WebSocket URL for a broker's base URL: `ws(s)://…/rpc/ws` (the token goes in a subprotocol, `WebSocketAuth`). */
export const webSocketUrl = (url: string, options: { readonly path?: string | undefined } = {}): string =>
  `${trimUrl(url).replace(/^http/, "ws")}${options.path ?? "/rpc/ws"}`

/** How a broker's WebSocket endpoint is reached: its token, its path, the serialization it speaks. */
export interface WebSocketEndpoint {
  readonly token?: string | undefined
  readonly path?: string | undefined
  readonly serialization?: Serialization | undefined
}

/**
 * RPC over the socket to a broker's `<url>/rpc/ws`, reopened by @effect/rpc's client. The token
 * is offered as a subprotocol, never in the URL (which proxies and access logs keep). With
 * `calls`, they follow each socket it opens and take their answers from it.
 */
const socketProtocol = (
  url: string,
  options: WebSocketEndpoint,
  calls?: SocketCalls.SocketCalls
): Layer.Layer<RpcClient.Protocol> => {
  const socket = Socket.makeWebSocket(webSocketUrl(url, options), { protocols: WebSocketAuth.protocols(options.token) })
  const followed = calls === undefined ? socket : Effect.map(
    Effect.updateService(socket, Socket.WebSocketConstructor, calls.follow),
    calls.intercept
  )
  return RpcClient.layerProtocolSocket().pipe(
    Layer.provide([
      Layer.scoped(Socket.Socket, followed).pipe(Layer.provide(WebSocketConstructor.layer)),
      layerSerialization(options.serialization ?? "json")
    ])
  )
}

/** RPC over a WebSocket to `<url>/rpc/ws`, one socket per broker, every message through @effect/rpc's client. */
export const webSocketProtocol = (url: string, options: WebSocketEndpoint = {}): Layer.Layer<RpcClient.Protocol> =>
  socketProtocol(url, options)

/**
 * The typed RPC client over the protocol in context. Its span per request (and the trace ids in
 * each message) only where spans are exported (docs/tracing.md): otherwise they are made per
 * call and never read.
 */
export const makeRpcClient: Effect.Effect<OsqueueRpcClient, never, RpcClient.Protocol | Scope.Scope> = Effect
  .flatMap(JobTrace.exporting, (tracing) => RpcClient.make(OsqueueRpcs, { disableTracing: !tracing }))

/** A `Connect` from any RPC protocol layer per URL; with `queue`, each message names it (`fromRpcClient`). */
export const rpcConnect =
  (protocol: (url: string) => Layer.Layer<RpcClient.Protocol>, queue?: string): Connect => (url) =>
    Layer.build(protocol(url)).pipe(
      Effect.flatMap((context) => Effect.provide(makeRpcClient, context)),
      Effect.map((client) => fromRpcClient(url, client, queue))
    )

/**
 * A `Connect` over one WebSocket per broker. With JSON, the broker's serialization, every call but
 * a stream's is sent as frames of its own (`internal/socketCalls.ts`), which costs the client a
 * fraction of @effect/rpc's client's CPU; streams, pings and reconnects stay with that client, on
 * the same socket. Another serialization (for another server) goes through @effect/rpc's client alone.
 */
export const webSocketConnect = (options: WebSocketEndpoint, queue?: string): Connect => (url) => {
  if ((options.serialization ?? "json") !== "json") {
    return rpcConnect((at) => webSocketProtocol(at, options), queue)(url)
  }
  const calls = SocketCalls.make()
  return Layer.build(socketProtocol(url, options, calls)).pipe(
    Effect.flatMap((context) => Effect.provide(Effect.all([makeRpcClient, JobTrace.exporting]), context)),
    Effect.map(([rpc, tracing]) => fromRpcClient(url, calls.client(rpc, tracing), queue))
  )
}
