/**
 * Telling the broker how a job in hand ended: complete it, fail it (retryable or not), or give
 * it back; and what the worker counts it as (`Metrics.Outcome`). A refusal that shows the lease
 * is gone is no error of ours: the broker has moved the job on.
 */
import type { ClientError, OsqueueClient } from "@osqueue/client"
import { type ClaimedJob, type Job, maxErrorLength } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { type HandlerSpec, JobTimeout } from "../Handler.js"
import * as Metrics from "../Metrics.js"

/** How a job in hand ended, decided by whichever came first. */
export type JobEnd =
  | { readonly _tag: "Handled"; readonly exit: Exit.Exit<unknown, unknown> }
  /** The broker no longer lets us hold the job (expired, cancelled, taken over). */
  | { readonly _tag: "LeaseLost"; readonly error: ClientError }
  /** Shutdown gives the job back to the broker, for another worker. */
  | { readonly _tag: "GivenBack" }

/** The broker no longer lets us hold the job: stop working on it. */
export const leaseGone = (error: ClientError): boolean =>
  error._tag === "LeaseLost" || error._tag === "JobNotFound" || error._tag === "InvalidTransition"

/**
 * Most characters of an error the worker reports. The broker takes up to `maxErrorLength`;
 * the head of a message or a stack says what went wrong, and the job keeps it in its history.
 */
const reportedErrorLength = Math.min(4_000, maxErrorLength)

const describe = (error: unknown): string => {
  const text = typeof error === "string"
    ? error
    : typeof error === "object" && error !== null && "_tag" in error && "message" in error
    ? `${String(error._tag)}: ${String(error.message)}`
    : error instanceof Error
    ? `${error.name}: ${error.message}`
    : JSON.stringify(error) ?? String(error)
  return text.length > reportedErrorLength ? `${text.slice(0, reportedErrorLength)}…` : text
}

export interface Settlement {
  /** Gives the job back (its attempt does not count); if that fails, its lease expires. */
  readonly release: (claimed: ClaimedJob) => Effect.Effect<void>
  /** Fails the job with `message`; the outcome follows what the broker did with it, unless given. */
  readonly fail: (
    claimed: ClaimedJob,
    message: string,
    retryable: boolean,
    outcome?: Metrics.Outcome
  ) => Effect.Effect<Metrics.Outcome>
  /**
   * Tells the broker how the job ended. A defect on the way (a bug) is logged: the job runs
   * again after its lease expires.
   */
  readonly acknowledge: <R>(claimed: ClaimedJob, spec: HandlerSpec<R>, end: JobEnd) => Effect.Effect<Metrics.Outcome>
  /** Counts a finished job: its outcome and its time since `started` (ms on the Effect clock). */
  readonly record: (outcome: Metrics.Outcome, started: number) => Effect.Effect<void>
}

/**
 * `tracing`: spans are exported (`JobTrace.exporting`), so the job's span is there to take the
 * outcome. Without one, `Effect.annotateCurrentSpan` fails inside (an error object, stack trace
 * included) before it is ignored, on every job.
 */
export const makeSettlement = (client: Context.Tag.Service<OsqueueClient>, tracing: boolean): Settlement => {
  const release = (claimed: ClaimedJob) =>
    client.release(claimed.token).pipe(
      Effect.timeout("10 seconds"),
      Effect.tapError((error) => Effect.logWarning("could not release a job; its lease will expire", error)),
      Effect.ignore
    )

  const acknowledgeFailed = (error: ClientError): Effect.Effect<Metrics.Outcome> =>
    leaseGone(error)
      ? Effect.as(Effect.logWarning("lease lost before the outcome was acknowledged", error), "lease_lost" as const)
      : Effect.as(
        Effect.logError("could not acknowledge the outcome; the job will run again after its lease expires", error),
        "unacknowledged" as const
      )

  const fail = (claimed: ClaimedJob, message: string, retryable: boolean, outcome?: Metrics.Outcome) =>
    client.fail(claimed.token, message, { retryable }).pipe(
      Effect.map((job: Job): Metrics.Outcome => outcome ?? (job.state === "dead" ? "dead" : "failed")),
      Effect.tap((o) => Effect.logWarning("job failed").pipe(Effect.annotateLogs({ error: message, outcome: o }))),
      Effect.catchAll((error) => acknowledgeFailed(error))
    )

  const complete = <R>(claimed: ClaimedJob, spec: HandlerSpec<R>, value: unknown): Effect.Effect<Metrics.Outcome> => {
    const encoded = spec.definition === undefined ? Effect.succeed(value) : Schema.encode(spec.definition.result)(value)
    return encoded.pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          fail(
            claimed,
            `the handler's result does not match the ${claimed.job.type} result schema: ${
              ParseResult.TreeFormatter.formatErrorSync(error)
            }`,
            false
          ),
        onSuccess: (result) =>
          // The job the broker answers with is not needed: its id will do (`completeId`).
          client.completeId(claimed.token, result).pipe(
            Effect.as("completed" as const),
            // A result the client or broker refuses (not JSON, too large) would be
            // refused again on every attempt.
            Effect.catchAll((error) =>
              error._tag === "InvalidRequest" || error._tag === "PayloadTooLarge"
                ? fail(claimed, `the handler's result was refused: ${error.message}`, false)
                : acknowledgeFailed(error)
            )
          )
      })
    )
  }

  const handled = <R>(claimed: ClaimedJob, spec: HandlerSpec<R>, exit: Exit.Exit<unknown, unknown>) => {
    if (Exit.isSuccess(exit)) return complete(claimed, spec, exit.value)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (error instanceof JobTimeout) return fail(claimed, describe(error), true, "timeout")
      const nonRetryable = typeof error === "object" && error !== null && "_tag" in error &&
        error._tag === "NonRetryable"
      return fail(claimed, describe(error), !nonRetryable)
    }
    const message = Cause.isInterruptedOnly(exit.cause)
      ? "the handler was interrupted"
      : `the handler died: ${describe(Cause.squash(exit.cause))}`
    return fail(claimed, message, true)
  }

  const acknowledgeEnd = <R>(
    claimed: ClaimedJob,
    spec: HandlerSpec<R>,
    end: JobEnd
  ): Effect.Effect<Metrics.Outcome> => {
    switch (end._tag) {
      case "LeaseLost":
        return Effect.as(
          Effect.logWarning("lease lost: handler interrupted").pipe(Effect.annotateLogs("reason", end.error.message)),
          "lease_lost"
        )
      case "GivenBack":
        return Effect.as(Effect.zipRight(Effect.logInfo("released at shutdown"), release(claimed)), "released")
      case "Handled":
        return handled(claimed, spec, end.exit)
    }
  }

  const acknowledge = <R>(claimed: ClaimedJob, spec: HandlerSpec<R>, end: JobEnd) =>
    Effect.catchAllDefect(acknowledgeEnd(claimed, spec, end), (defect) =>
      Effect.as(
        Effect.logError(
          "could not acknowledge the outcome (a defect); the job will run again after its lease expires",
          Cause.die(defect)
        ),
        "unacknowledged" as const
      ))

  const record = (outcome: Metrics.Outcome, started: number) =>
    Effect.gen(function*() {
      yield* Metric.increment(Metrics.processed(outcome))
      yield* Metric.update(Metrics.jobDuration, ((yield* Clock.currentTimeMillis) - started) / 1000)
      if (tracing) yield* Effect.annotateCurrentSpan("outcome", outcome)
    })

  return { release, fail, acknowledge, record }
}
