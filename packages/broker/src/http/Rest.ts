/**
 * REST: `OsqueueApi` (`/v1/…`, defined in `@osqueue/types`) over `Handlers`, its OpenAPI document
 * at `/v1/openapi.json` and a docs page at `/docs` (Swagger UI, bundled: no CDN).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type InvalidRequest, type JobId, type LeaseToken, OsqueueApi, type OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Access from "../Access.js"
import { Handlers } from "../Handlers.js"
import * as HttpChecks from "./HttpChecks.js"

export const restPaths = { openapi: "/v1/openapi.json", docs: "/docs" } as const

/** 429/503 answers carry `Retry-After`; HttpApi encodes only the body, so add the header here. */
const withRetryAfter = <A, R>(effect: Effect.Effect<A, OsqueueError, R>): Effect.Effect<A, OsqueueError, R> =>
  Effect.tapError(effect, (error) => {
    const seconds = HttpChecks.retryAfterSeconds(error)
    return seconds === undefined
      ? Effect.void
      : HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))
      )
  })

const checkToken = (id: JobId, token: LeaseToken): Effect.Effect<void, InvalidRequest> => {
  const mismatch = HttpChecks.tokenMismatch(id, token)
  return mismatch === undefined ? Effect.void : Effect.fail(mismatch)
}

/** The role `HttpGate` found for the request's token (`admin` when the broker has none). */
const whoami = Effect.map(HttpServerRequest.HttpServerRequest, (request) => ({
  // The gate lets no request to this route through without a role.
  role: Access.roleOf(request.headers) ?? "read"
}))

const JobsLive = HttpApiBuilder.group(OsqueueApi, "jobs", (handlers) =>
  Effect.gen(function*() {
    const h = yield* Handlers
    return handlers
      .handle("enqueue", ({ payload }) => withRetryAfter(h.enqueue(payload)))
      .handle("enqueueMany", ({ payload }) => withRetryAfter(h.enqueueMany(payload.jobs)))
      .handle("claim", ({ payload }) => withRetryAfter(h.claim(payload)))
      .handle("heartbeat", ({ path, payload }) =>
        withRetryAfter(Effect.zipRight(checkToken(path.id, payload.token), h.heartbeat(payload))))
      .handle("complete", ({ path, payload }) =>
        withRetryAfter(Effect.zipRight(checkToken(path.id, payload.token), h.complete(payload))))
      .handle("completeMany", ({ payload }) => withRetryAfter(h.completeMany(payload.items)))
      .handle("fail", ({ path, payload }) =>
        withRetryAfter(Effect.zipRight(checkToken(path.id, payload.token), h.fail(payload))))
      .handle("release", ({ path, payload }) =>
        withRetryAfter(Effect.zipRight(checkToken(path.id, payload.token), h.release(payload.token))))
      .handle("cancel", ({ path }) => withRetryAfter(h.cancel(path.id)))
      .handle("retry", ({ path }) => withRetryAfter(h.retry(path.id)))
      .handle("promote", ({ path }) => withRetryAfter(h.promote(path.id)))
      .handle("setPriority", ({ path, payload }) => withRetryAfter(h.setPriority(path.id, payload.priority)))
      .handle("delete", ({ path }) => withRetryAfter(h.delete(path.id)))
      .handle("purge", ({ payload }) => withRetryAfter(h.purge(payload.state, payload.type)))
      .handle("get", ({ path }) => h.get(path.id))
      .handle("list", ({ urlParams }) => h.list(urlParams))
  }))

const QueueLive = HttpApiBuilder.group(OsqueueApi, "queue", (handlers) =>
  Effect.gen(function*() {
    const h = yield* Handlers
    return handlers
      .handle("retryDead", ({ payload }) => withRetryAfter(h.retryDead(payload?.type)))
      .handle("pause", ({ payload }) => withRetryAfter(h.pause(payload?.type)))
      .handle("resume", ({ payload }) => withRetryAfter(h.resume(payload?.type)))
      .handle("stats", () => h.stats)
      .handle("workers", () => h.workers)
      .handle("leader", () => h.leader)
      .handle("whoami", () => whoami)
  }))

const ApiRoutes = HttpLayerRouter.addHttpApi(OsqueueApi, { openapiPath: restPaths.openapi }).pipe(
  Layer.provide([JobsLive, QueueLive])
)

const DocsRoute = HttpApiSwagger.layerHttpLayerRouter({ api: OsqueueApi, path: restPaths.docs })

export const layer = Layer.mergeAll(ApiRoutes, DocsRoute)
