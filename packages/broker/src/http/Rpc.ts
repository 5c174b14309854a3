/**
 * RPC: the `OsqueueRpcs` group over HTTP (`POST /rpc`, ndjson) and over WebSocket (`GET /rpc/ws`,
 * JSON text frames), both on the broker's one port. Each handler delegates to `Handlers` once the
 * token's role may run it (`Access`; 403 `Forbidden` otherwise); every message is checked by
 * `RpcFrames` on its way in, so a malformed one is answered as a typed failure of its own request.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import type { Forbidden, Roles } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Access from "../Access.js"
import { BrokerConfig, type BrokerSettings } from "../BrokerConfig.js"
import { Handlers } from "../Handlers.js"
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

/**
 * What refuses `operation` to the role `HttpGate` set on the request (the upgrade's, over
 * WebSocket): `RpcFrames` drops a frame's own role header, so only the gate's is read.
 */
const may = (operation: Roles.Operation, headers: Headers.Headers): Effect.Effect<void, Forbidden> => {
  const forbidden = Access.permit(Access.roleOf(headers), operation)
  return forbidden === undefined ? Effect.void : Effect.fail(forbidden)
}

export const RpcHandlers = RpcFrames.ServerRpcs.toLayer(
  Effect.gen(function*() {
    const h = yield* Handlers
    return {
      Enqueue: (options, { headers }) => Effect.zipRight(may("Enqueue", headers), h.enqueue(options)),
      EnqueueMany: ({ jobs }, { headers }) => Effect.zipRight(may("EnqueueMany", headers), h.enqueueMany(jobs)),
      Claim: (request, { headers }) => Effect.zipRight(may("Claim", headers), h.claim(request)),
      Heartbeat: (input, { headers }) => Effect.zipRight(may("Heartbeat", headers), h.heartbeat(input)),
      Complete: (input, { headers }) => Effect.zipRight(may("Complete", headers), h.complete(input)),
      CompleteMany: ({ items }, { headers }) => Effect.zipRight(may("CompleteMany", headers), h.completeMany(items)),
      Fail: (input, { headers }) => Effect.zipRight(may("Fail", headers), h.fail(input)),
      Release: ({ token }, { headers }) => Effect.zipRight(may("Release", headers), h.release(token)),
      Cancel: ({ id }, { headers }) => Effect.zipRight(may("Cancel", headers), h.cancel(id)),
      Retry: ({ id }, { headers }) => Effect.zipRight(may("Retry", headers), h.retry(id)),
      RetryDead: ({ type }, { headers }) => Effect.zipRight(may("RetryDead", headers), h.retryDead(type)),
      Promote: ({ id }, { headers }) => Effect.zipRight(may("Promote", headers), h.promote(id)),
      SetPriority: ({ id, priority }, { headers }) => Effect.zipRight(may("SetPriority", headers), h.setPriority(id, priority)),
      Delete: ({ id }, { headers }) => Effect.zipRight(may("Delete", headers), h.delete(id)),
      Purge: ({ state, type }, { headers }) => Effect.zipRight(may("Purge", headers), h.purge(state, type)),
      Pause: ({ type }, { headers }) => Effect.zipRight(may("Pause", headers), h.pause(type)),
      Resume: ({ type }, { headers }) => Effect.zipRight(may("Resume", headers), h.resume(type)),
      Get: ({ id }, { headers }) => Effect.zipRight(may("Get", headers), h.get(id)),
      List: (query, { headers }) => Effect.zipRight(may("List", headers), h.list(query)),
      Stats: (_, { headers }) => Effect.zipRight(may("Stats", headers), h.stats),
      Workers: (_, { headers }) => Effect.zipRight(may("Workers", headers), h.workers),
      Leader: (_, { headers }) => Effect.zipRight(may("Leader", headers), h.leader),
      State: (_, { headers }) => Effect.zipRight(may("State", headers), h.state),
      Watch: (input, { headers }) => Stream.unwrap(Effect.as(may("Watch", headers), h.watch(input))),
      "osqueue.Refused": ({ error }) => Effect.fail(error)
    }
  })
)

const frameLimits = (settings: BrokerSettings): RpcFrames.FrameLimits => ({
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
