/**
 * Waiting for a job to finish, over the leader's event stream rather than by polling. The job
 * is read once each time the stream (re)connects, after the broker has subscribed it to events:
 * an outcome committed before that is in the read, one committed after is an event. So neither a
 * job that finished before the wait began nor one that finished while the stream was down
 * reconnecting is missed. Otherwise the job is read only when an event says it ended.
 */
import {
  DelayMs,
  InvalidRequest,
  type Job,
  type JobEventKind,
  type JobId,
  NotLeader,
  type WatchEvent
} from "@osqueue/types"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import {
  BrokerUnreachable,
  type ClientError,
  JobFailed,
  UnexpectedResult,
  type WaitError,
  WaitTimeout
} from "./Errors.js"
import { watchLeader } from "./internal/watchLeader.js"
import type * as JobDefinition from "./JobDefinition.js"
import type { Router } from "./Router.js"
import type { BrokerApi } from "./Transport.js"

/** Events after which the job may have nothing more to do. */
const endings: ReadonlySet<JobEventKind> = new Set<JobEventKind>(["completed", "dead", "cancelled", "deleted"])

/** The job once it has finished; none while it may still run. A deleted job fails the read with `JobNotFound`. */
const finished = (api: BrokerApi, id: JobId): Effect.Effect<Option.Option<Job>, ClientError> =>
  Effect.map(
    api.Get({ id }),
    (job) =>
      job.state === "completed" || job.state === "dead" || job.state === "cancelled" ? Option.some(job) : Option.none()
  )

const onEvent = (api: BrokerApi, id: JobId, event: WatchEvent): Effect.Effect<Option.Option<Job>, ClientError> => {
  switch (event._tag) {
    case "Leader":
      // Each connection's first events include one; a broker that stops leading sends another,
      // and its stream would go quiet: reconnect to the leader instead.
      return event.leader.role === "leader"
        ? finished(api, id)
        : Effect.fail(new NotLeader({ leaderUrl: event.leader.leaderUrl }))
    case "Job":
      return event.event.jobId === id && endings.has(event.event.kind)
        ? finished(api, id)
        : Effect.succeed(Option.none())
    default:
      return Effect.succeed(Option.none())
  }
}

/**
 * The job once it has completed; `JobFailed` once it is dead or cancelled. `id` is awaited before
 * any event is looked at, so the stream may be opened before the job exists (`enqueueAndWait`
 * subscribes, then enqueues); `connected` runs on every event, the first of which says the
 * broker's subscription is live. Reads go to the broker the stream comes from: the leader.
 */
export const outcome = (
  router: Router,
  id: Effect.Effect<JobId>,
  connected: Effect.Effect<void>
): Effect.Effect<Job, ClientError | JobFailed> =>
  router.stream((api) =>
    watchLeader(api, {}).pipe(
      // A stream the broker ends (it is shutting down) is reconnected like a broken one.
      Stream.concat(Stream.fail(new BrokerUnreachable({ url: api.url, reason: "the event stream ended" }))),
      Stream.tap(() => connected),
      Stream.mapEffect((event) => Effect.flatMap(id, (jobId) => onEvent(api, jobId, event))),
      Stream.filterMap((found) => found)
    )
  ).pipe(
    Stream.runHead,
    // The stream only ends by finding the job finished: its end without one is not reachable.
    Effect.flatMap(Option.match({
      onNone: () => Effect.dieMessage("the event stream ended without the job's outcome"),
      onSome: (job) =>
        job.state === "completed"
          ? Effect.succeed(job)
          : Effect.fail(
            new JobFailed({
              jobId: job.id,
              type: job.type,
              state: job.state === "cancelled" ? "cancelled" : "dead",
              attempts: job.attempts,
              lastError: job.lastError
            })
          )
    }))
  )

/** How long to wait for a job's outcome. */
export interface WaitSettings {
  /** Give up with `WaitTimeout` after this many ms (the job goes on); no limit when absent. */
  readonly waitMs?: number
}

const WaitRequest = Schema.Struct({ waitMs: Schema.optionalWith(DelayMs, { exact: true }) })

/** `waitMs` checked like any request's delay, so a bad one fails before anything is sent. */
export const waitLimit = (settings: WaitSettings | undefined): Effect.Effect<number | undefined, InvalidRequest> =>
  Schema.validate(WaitRequest)(settings?.waitMs === undefined ? {} : { waitMs: settings.waitMs }).pipe(
    Effect.map((request) => request.waitMs),
    Effect.mapError((error) =>
      new InvalidRequest({ message: `invalid wait: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })
    )
  )

/**
 * The completed job's result, decoded by `definition` when one is given, within `waitMs` of now.
 * A timeout interrupts only the waiting: the job is not touched.
 */
export const resultWithin = (
  waiting: Effect.Effect<Job, ClientError | JobFailed>,
  jobId: JobId,
  waitMs: number | undefined,
  definition: JobDefinition.Any | undefined
): Effect.Effect<unknown, WaitError> =>
  (waitMs === undefined
    ? waiting
    : Effect.timeoutFail(waiting, {
      duration: Duration.millis(waitMs),
      onTimeout: () => new WaitTimeout({ jobId, waitMs })
    }))
    .pipe(Effect.flatMap((job) =>
      definition === undefined
        ? Effect.succeed(job.result)
        : Schema.decodeUnknown(definition.result)(job.result).pipe(
          Effect.mapError((error) =>
            new UnexpectedResult({ jobId, type: job.type, reason: ParseResult.TreeFormatter.formatErrorSync(error) })
          )
        )
    ))
