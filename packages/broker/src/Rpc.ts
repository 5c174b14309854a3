/**
 * RPC: the `OsqueueRpcs` group over HTTP (`POST /rpc`, ndjson) and over WebSocket (`GET /rpc/ws`,
 * JSON text frames), both on the broker's one port. Each handler delegates to `Handlers`.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { OsqueueRpcs } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Handlers } from "./Handlers.js"

/** Where the RPC endpoints are: clients append these to the broker's URL. */
export const rpcPaths = { http: "/rpc", websocket: "/rpc/ws" } as const

/**
 * The serialization of each endpoint; a client must use the same (`RpcSerialization.layerNdjson`
 * over HTTP, `RpcSerialization.layerJson` over WebSocket). ndjson streams `Watch` over HTTP as it
 * happens; JSON over WebSocket keeps frames readable in a browser's dev tools and needs no
 * msgpack decoder in the dashboard.
 */
export const rpcSerialization = { http: "ndjson", websocket: "json" } as const

export const RpcHandlers = OsqueueRpcs.toLayer(
  Effect.gen(function*() {
    const h = yield* Handlers
    return {
      Enqueue: (options) => h.enqueue(options),
      EnqueueMany: ({ jobs }) => h.enqueueMany(jobs),
      Claim: (request) => h.claim(request),
      Heartbeat: (input) => h.heartbeat(input),
      Complete: (input) => h.complete(input),
      CompleteMany: ({ items }) => h.completeMany(items),
      Fail: (input) => h.fail(input),
      Release: ({ token }) => h.release(token),
      Cancel: ({ id }) => h.cancel(id),
      Retry: ({ id }) => h.retry(id),
      RetryDead: ({ type }) => h.retryDead(type),
      Pause: ({ type }) => h.pause(type),
      Resume: ({ type }) => h.resume(type),
      Get: ({ id }) => h.get(id),
      List: (query) => h.list(query),
      Stats: () => h.stats,
      Leader: () => h.leader,
      State: () => h.state,
      Watch: (input) => h.watch(input)
    }
  })
)

const RpcOverHttp = RpcServer.layerHttpRouter({
  group: OsqueueRpcs,
  path: rpcPaths.http,
  protocol: "http",
  spanPrefix: "Rpc"
}).pipe(Layer.provide(RpcSerialization.layerNdjson))

const RpcOverWebsocket = RpcServer.layerHttpRouter({
  group: OsqueueRpcs,
  path: rpcPaths.websocket,
  protocol: "websocket",
  spanPrefix: "Rpc"
}).pipe(Layer.provide(RpcSerialization.layerJson))

/** Both RPC routes; the handlers are built once and shared by the two. */
export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Handlers> = Layer.mergeAll(
  RpcOverHttp,
  RpcOverWebsocket
).pipe(Layer.provide(RpcHandlers))
