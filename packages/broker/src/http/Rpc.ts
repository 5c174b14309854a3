/**
 * RPC: the `OsqueueRpcs` group over HTTP (`POST /rpc`, ndjson: the edge's, `RpcOverHttp`) and over
 * WebSocket (`GET /rpc/ws`, JSON text frames: @effect/rpc's server), both on the broker's one
 * port, both running `operations`, each once the token's role may run it (`Access`; 403
 * `Forbidden` otherwise); every message is checked by `RpcFrames` on its way in, so a malformed
 * one is answered as a typed failure of its own request.
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { InvalidRequest, OsqueueError, type Roles } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Access from "../Access.js"
import { BrokerConfig, type BrokerSettings } from "../BrokerConfig.js"
import type { HandlersShape } from "../Handlers.js"
import * as Queues from "../Queues.js"
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

/** Each RPC's operation over `Handlers`, by tag: what RPC over HTTP (`RpcOverHttp`) and over WebSocket run. */
export const operations = (h: HandlersShape) =>
  RpcFrames.ServerRpcs.of({
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
    Promote: ({ id }) => h.promote(id),
    SetPriority: ({ id, priority }) => h.setPriority(id, priority),
    Delete: ({ id }) => h.delete(id),
    Purge: ({ state, type }) => h.purge(state, type),
    Pause: ({ type }) => h.pause(type),
    Resume: ({ type }) => h.resume(type),
    UpsertSchedule: (spec) => h.upsertSchedule(spec),
    RemoveSchedule: ({ id }) => h.removeSchedule(id),
    ListSchedules: () => h.listSchedules,
    Get: ({ id }) => h.get(id),
    List: (query) => h.list(query),
    Stats: () => h.stats,
    Workers: () => h.workers,
    Leader: () => h.leader,
    State: () => h.state,
    Watch: (input) => h.watch(input),
    "osqueue.Refused": ({ error }) => Effect.fail(error)
  })

export type Operations = ReturnType<typeof operations>

/** One untyped operation: a payload decoded by its RPC's schema in, an effect or a stream out. */
export type AnyOperation = (payload: unknown) => Effect.Effect<unknown, OsqueueError> | Stream.Stream<unknown, OsqueueError>

/**
 * Each served queue's operations, by the name a message gives (`Queues.nameIn`): one table per
 * queue, built once; a name no queue has is `UnknownQueue`.
 */
export const queueOperations = (queues: Queues.QueuesShape) => {
  const tables = new Map(queues.all.map((queue) => [queue.name, operations(queue.handlers) as unknown as Record<string, AnyOperation>]))
  return (name: string | undefined) => Either.map(queues.resolve(name), (queue) => tables.get(queue.name)!)
}

/** `Refused` fails with the error it carries, whatever queue its message named. */
const refused: AnyOperation = (payload) => Effect.fail((payload as { readonly error: OsqueueError }).error)

/**
 * The operations over WebSocket, each run on the queue its message names (`Queues.nameIn`) and
 * refused with 403 `Forbidden` unless the role `HttpGate` set on the upgrade may run it
 * (`Access`); `RpcFrames` drops a frame's own role header, so only the gate's is read. `Refused`
 * needs no role: it only fails.
 */
export const RpcHandlers = RpcFrames.ServerRpcs.toLayer(
  Effect.map(Queues.Queues, (queues) => {
    const tableOf = queueOperations(queues)
    const tags = Array.from(RpcFrames.ServerRpcs.requests.keys())
    const guarded = Object.fromEntries(
      tags.map((tag) => [
        tag,
        (payload: unknown, { headers }: { readonly headers: Headers.Headers }) => {
          if (tag === RpcFrames.Refused._tag) return refused(payload)
          const fail = (error: OsqueueError) => (tag === "Watch" ? Stream.fail(error) : Effect.fail(error))
          const forbidden = Access.permit(Access.roleOf(headers), tag as Roles.Operation)
          if (forbidden !== undefined) return fail(forbidden)
          return Either.match(tableOf(Queues.nameIn(headers)), { onLeft: fail, onRight: (table) => table[tag]!(payload) })
        }
      ])
    )
    // The same keys and results as `operations`, each behind its check.
    return guarded as unknown as Operations
  })
)

/** The frame limits of the settings: every RPC message's nesting and the answers' bytes. */
export const frameLimits = (settings: BrokerSettings): RpcFrames.FrameLimits => ({
  maxJsonDepth: settings.maxJsonDepth,
  maxAnswerBytes: settings.maxAnswerBytes
})

// A handler's defect fails its own request, not every request of its connection.
const RpcOverWebsocket = RpcServer.layerHttpRouter({
  group: RpcFrames.ServerRpcs,
  path: rpcPaths.websocket,
  protocol: "websocket",
  spanPrefix: "Rpc",
  disableFatalDefects: true
}).pipe(
  Layer.provide(Layer.effect(RpcSerialization.RpcSerialization, Effect.map(BrokerConfig, (settings) => RpcFrames.json(frameLimits(settings))))),
  Layer.provide(RpcHandlers)
)

const notAnUpgrade = new InvalidRequest({
  message: `${rpcPaths.http} takes no Upgrade: POST the ndjson body without it, or open the WebSocket at ${rpcPaths.websocket}`
})

/**
 * `POST /rpc` is the edge's (`Edge`, `RpcOverHttp`); it is added here too, so that `RouteTable`
 * knows it (404, 405, OPTIONS), and answers what alone reaches the app on it: an upgrade.
 */
const RpcOverHttpRoute = HttpLayerRouter.use((router) =>
  router.add(
    "POST",
    rpcPaths.http,
    Effect.succeed(HttpServerResponse.unsafeJson(Schema.encodeSync(OsqueueError)(notAnUpgrade), { status: 400 }))
  )
)

/** The RPC routes of the Effect app: RPC over WebSocket, and `POST /rpc`'s place in the route table. */
export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Queues.Queues> = Layer.mergeAll(
  RpcOverWebsocket,
  RpcOverHttpRoute
)
