/**
 * RPC: the `OsqueueRpcs` group over HTTP (`POST /rpc`, ndjson) and over WebSocket (`GET /rpc/ws`,
 * JSON text frames), both on the broker's one port. Each handler delegates to `Handlers`; every
 * message is checked by `RpcFrames` on its way in, so a malformed one is answered as a typed
 * failure of its own request.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { BrokerConfig, type BrokerSettings } from "./BrokerConfig.js"
import { Handlers } from "./Handlers.js"
import * as RpcFrames from "./RpcFrames.js"

/** Where the RPC endpoints are: clients append these to the broker's URL. */
export const rpcPaths = { http: "/rpc", websocket: "/rpc/ws" } as const

/**
 * The serialization of each endpoint; a client must use the same (`RpcSerialization.layerNdjson`
 * over HTTP, `RpcSerialization.layerJson` over WebSocket). ndjson streams `Watch` over HTTP as it
 * happens; JSON over WebSocket keeps frames readable in a browser's dev tools and needs no
 * msgpack decoder in the dashboard.
 */
export const rpcSerialization = { http: "ndjson", websocket: "json" } as const

export const RpcHandlers = RpcFrames.ServerRpcs.toLayer(
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
      Watch: (input) => h.watch(input),
      "osqueue.Refused": ({ error }) => Effect.fail(error)
    }
  })
)

const frameLimits = (settings: BrokerSettings): RpcFrames.FrameLimits => ({
  ...RpcFrames.defaultFrameLimits,
  maxJsonDepth: settings.maxJsonDepth,
  maxAnswerBytes: settings.maxAnswerBytes
})

const serialization = (make: (limits: RpcFrames.FrameLimits) => RpcSerialization.RpcSerialization["Type"]) =>
  Layer.effect(RpcSerialization.RpcSerialization, Effect.map(BrokerConfig, (settings) => make(frameLimits(settings))))

// A handler's defect fails its own request, not every request of its connection.
const RpcOverHttp = RpcServer.layerHttpRouter({
  group: RpcFrames.ServerRpcs,
  path: rpcPaths.http,
  protocol: "http",
  spanPrefix: "Rpc",
  disableFatalDefects: true
}).pipe(Layer.provide(serialization(RpcFrames.ndjson)))

const RpcOverWebsocket = RpcServer.layerHttpRouter({
  group: RpcFrames.ServerRpcs,
  path: rpcPaths.websocket,
  protocol: "websocket",
  spanPrefix: "Rpc",
  disableFatalDefects: true
}).pipe(Layer.provide(serialization(RpcFrames.json)))

/** Both RPC routes; the handlers are built once and shared by the two. */
export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Handlers> = Layer.mergeAll(
  RpcOverHttp,
  RpcOverWebsocket
).pipe(Layer.provide(RpcHandlers))
