/**
 * RPC: the `OsqueueRpcs` group over HTTP (`POST /rpc`, ndjson: `RpcOverHttp`) and over WebSocket
 * (`GET /rpc/ws`, JSON text frames: `RpcOverWebSocket`), both served by the edge on the broker's
 * one port, both running `operations` (`RpcSession`), each once the token's role may run it
 * (`Access`; 403 `Forbidden` otherwise); every message is checked by `RpcFrames` on its way in,
 * so a malformed one is answered as a typed failure of its own request.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type CompleteOutcomes, InvalidRequest, type Job, OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import type { BrokerSettings } from "../BrokerConfig.js"
import type { OperationsShape } from "../Operations.js"
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

/** Each RPC's operation over `Operations`, by tag, its payload passed on as decoded: what RPC over HTTP (`RpcOverHttp`) and over WebSocket run. */
export const operations = (h: OperationsShape) =>
  RpcFrames.ServerRpcs.of({
    Enqueue: h.enqueue,
    EnqueueMany: h.enqueueMany,
    EnqueueFlow: h.enqueueFlow,
    Claim: h.claim,
    Heartbeat: h.heartbeat,
    Complete: h.complete,
    CompleteAndClaim: h.completeAndClaim,
    CompleteMany: h.completeMany,
    Fail: h.fail,
    Release: h.release,
    Cancel: h.cancel,
    Retry: h.retry,
    RetryDead: h.retryDead,
    Promote: h.promote,
    SetPriority: h.setPriority,
    Delete: h.delete,
    Purge: h.purge,
    Pause: h.pause,
    Resume: h.resume,
    UpsertSchedule: h.upsertSchedule,
    RemoveSchedule: h.removeSchedule,
    ListSchedules: () => h.listSchedules,
    SetLimit: h.setLimit,
    ClearLimit: h.clearLimit,
    Limits: () => h.limits,
    Get: h.get,
    List: h.list,
    Stats: () => h.stats,
    Workers: () => h.workers,
    Leader: () => h.leader,
    State: () => h.state,
    Watch: h.watch,
    "osqueue.Refused": ({ error }) => Effect.fail(error)
  })

export type Operations = ReturnType<typeof operations>

/**
 * What an operation answers to a request that asks for a minimal answer (`prefersMinimal`: the
 * message's `prefer: return=minimal` header), by tag: `EnqueueMany` each job's id alone
 * (`JobOrIdOnWire`), `CompleteMany` each completed job's id (`CompletedOnWire`). The operation
 * runs as it does for any request; only its answer is less.
 */
export const minimalAnswers: Readonly<Record<string, (answer: unknown) => unknown>> = {
  EnqueueMany: (jobs) => (jobs as ReadonlyArray<Job>).map((job) => job.id),
  CompleteMany: (outcomes) => (outcomes as CompleteOutcomes).map(Either.map((job) => job.id))
}

/** One untyped operation: a payload decoded by its RPC's schema in, an effect or a stream out. */
export type AnyOperation = (
  payload: unknown
) => Effect.Effect<unknown, OsqueueError> | Stream.Stream<unknown, OsqueueError>

/** The frame limits of the settings: every RPC message's nesting and the answers' bytes. */
export const frameLimits = (settings: BrokerSettings): RpcFrames.FrameLimits => ({
  maxJsonDepth: settings.maxJsonDepth,
  maxAnswerBytes: settings.maxAnswerBytes
})

const encodeError = Schema.encodeSync(OsqueueError)

const notAnUpgrade = new InvalidRequest({
  message:
    `${rpcPaths.http} takes no Upgrade: POST the ndjson body without it, or open the WebSocket at ${rpcPaths.websocket}`
})

/** As the server answers a request that comes before the routes are up or after they are down (`NodeServer`). */
const notServing = {
  error: `the broker is starting or stopping: open the WebSocket at ${rpcPaths.websocket} again, or on another broker`
}

/**
 * `POST /rpc` and `GET /rpc/ws` are the edge's (`Edge`); they are added here too, so that
 * `RouteTable` knows them (404, 405, OPTIONS), and answer what alone reaches the app on them: an
 * upgrade of `POST /rpc`, and an upgrade of `GET /rpc/ws` while the edge is not open (a plain GET
 * of it is refused by the gate, `HttpGate`).
 */
export const layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter> = HttpLayerRouter.use((router) =>
  Effect.zipRight(
    router.add(
      "POST",
      rpcPaths.http,
      Effect.succeed(HttpServerResponse.unsafeJson(encodeError(notAnUpgrade), { status: 400 }))
    ),
    router.add(
      "GET",
      rpcPaths.websocket,
      Effect.succeed(HttpServerResponse.unsafeJson(notServing, { status: 503, headers: { "retry-after": "1" } }))
    )
  )
)
