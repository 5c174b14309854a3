/**
 * The REST transport: `OsqueueApi` (`/v1/…`) through a typed `HttpApiClient`, adapted to the
 * same `BrokerApi` as RPC so that leader discovery and retries do not care which is used.
 * REST has no streaming endpoint, so `watch` needs an RPC transport, as does the raw state.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  InvalidRequest,
  isOsqueueError,
  type JobId,
  type LeaseToken,
  OsqueueApi,
  parseLeaseToken,
  QueueNames
} from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { BrokerUnreachable, type ClientError } from "./Errors.js"
import { type Connect, trimUrl } from "./Protocols.js"
import type { BrokerApi } from "./Transport.js"

/** REST routes name the job a lease token is for (a malformed token goes as it is, for the broker to refuse). */
const jobOf = (token: LeaseToken): JobId => parseLeaseToken(token)?.jobId ?? (token as string as JobId)

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

/** Maps whatever the HTTP client failed with onto the client's errors. */
const toClientError = (url: string) => (error: unknown): Effect.Effect<never, ClientError> => {
  if (isOsqueueError(error)) return Effect.fail(error)
  if (typeof error === "object" && error !== null && "_tag" in error) {
    switch (error._tag) {
      case "HttpApiDecodeError":
        return Effect.fail(new InvalidRequest({ message: describe(error) }))
      case "RequestError":
      case "ResponseError":
        // No connection, or an answer that is not the broker's (a proxy's 502, a closed socket).
        return Effect.fail(new BrokerUnreachable({ url, reason: describe(error), cause: error }))
    }
  }
  // A body that does not decode: client and broker disagree on the contract; retrying cannot help.
  return Effect.die(error)
}

/** REST to each broker; with `queue`, under its route prefix (`/queues/<name>/v1/…`; none: the default queue's `/v1/…`). */
export const restConnect =
  (options: { readonly token?: string | undefined; readonly queue?: string | undefined } = {}): Connect => (url) =>
    HttpApiClient.make(OsqueueApi, {
      baseUrl: `${trimUrl(url)}${options.queue === undefined ? "" : QueueNames.restPrefix(options.queue)}`,
      transformClient: (client) =>
        options.token === undefined
          ? client
          : HttpClient.mapRequest(client, HttpClientRequest.bearerToken(options.token))
    }).pipe(
      Effect.provide(FetchHttpClient.layer),
      Effect.map((api): BrokerApi => {
        const lift = <A>(effect: Effect.Effect<A, unknown>): Effect.Effect<A, ClientError> =>
          Effect.catchAll(effect, toClientError(url))
        const typeBody = (
          request: { readonly type?: string }
        ) => (request.type === undefined ? null : { type: request.type })
        return {
          url,
          Enqueue: (payload) => lift(api.jobs.enqueue({ payload })),
          EnqueueMany: (payload) => lift(api.jobs.enqueueMany({ payload })),
          // REST answers whole jobs: their ids are kept.
          EnqueueManyIds: (payload) =>
            lift(Effect.map(api.jobs.enqueueMany({ payload }), (jobs) => jobs.map((job) => job.id))),
          EnqueueFlow: (payload) => lift(api.jobs.enqueueFlow({ payload })),
          Claim: (payload) => lift(api.jobs.claim({ payload })),
          Heartbeat: (payload) => lift(api.jobs.heartbeat({ path: { id: jobOf(payload.token) }, payload })),
          Complete: (payload) => lift(api.jobs.complete({ path: { id: jobOf(payload.token) }, payload })),
          CompleteAndClaim: (payload) =>
            lift(api.jobs.completeAndClaim({ path: { id: jobOf(payload.token) }, payload })),
          CompleteMany: (payload) => lift(api.jobs.completeMany({ payload })),
          // REST answers whole jobs: their ids are kept.
          CompleteManyIds: (payload) =>
            lift(
              Effect.map(api.jobs.completeMany({ payload }), (outcomes) => outcomes.map(Either.map((job) => job.id)))
            ),
          Fail: (payload) => lift(api.jobs.fail({ path: { id: jobOf(payload.token) }, payload })),
          Release: (payload) => lift(api.jobs.release({ path: { id: jobOf(payload.token) }, payload })),
          Cancel: ({ id }) => lift(api.jobs.cancel({ path: { id } })),
          Retry: ({ id }) => lift(api.jobs.retry({ path: { id } })),
          RetryDead: (request) => lift(api.queue.retryDead({ payload: typeBody(request) })),
          Promote: ({ id }) => lift(api.jobs.promote({ path: { id } })),
          SetPriority: ({ id, priority }) => lift(api.jobs.setPriority({ path: { id }, payload: { priority } })),
          Delete: ({ id }) => lift(api.jobs.delete({ path: { id } })),
          Purge: (payload) => lift(api.jobs.purge({ payload })),
          Pause: (request) => lift(api.queue.pause({ payload: typeBody(request) })),
          Resume: (request) => lift(api.queue.resume({ payload: typeBody(request) })),
          UpsertSchedule: (payload) => lift(api.schedules.upsertSchedule({ payload })),
          RemoveSchedule: ({ id }) => lift(api.schedules.removeSchedule({ path: { id } })),
          ListSchedules: lift(api.schedules.listSchedules()),
          SetLimit: (payload) => lift(api.queue.setLimit({ payload })),
          ClearLimit: (request) => lift(api.queue.clearLimit({ payload: typeBody(request) })),
          Limits: lift(api.queue.limits()),
          Get: ({ id }) => lift(api.jobs.get({ path: { id } })),
          List: (query) => lift(api.jobs.list({ urlParams: query })),
          Stats: lift(api.queue.stats()),
          Workers: lift(api.queue.workers()),
          Leader: lift(api.queue.leader()),
          State: Effect.fail(
            new InvalidRequest({
              message: "the raw state is read over RPC (or GET /state): use the http or ws transport"
            })
          ),
          Watch: () =>
            Stream.fail(new InvalidRequest({ message: "watch streams over RPC only: use the http or ws transport" }))
        }
      })
    )
