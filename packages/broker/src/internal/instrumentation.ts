/**
 * How each broker operation is measured: a count of calls by outcome (`osqueue_requests_total`)
 * and a span per call; gathered single calls counted each as its own; and with spans exported,
 * a span per enqueued job that the job carries on (docs/tracing.md).
 */
import type { EnqueueOptions, Job, OsqueueError } from "@osqueue/types"
import { JobTrace } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as BrokerMetrics from "../BrokerMetrics.js"

/** Counts every call by operation and outcome (`ok`, the error's tag, or `defect`). */
const requestCounter = BrokerMetrics.requestSeries

export const counted = (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
  Effect.onExit(effect, (exit) => Metric.increment(requestCounter(operation, BrokerMetrics.outcomeOf(exit))))

export const instrument = (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
  counted(operation)(effect).pipe(Effect.withSpan(`Broker.${operation}`, { captureStackTrace: false }))

/**
 * With spans exported, each job an enqueue creates gets a `Broker.enqueue` span, from the request
 * until the commit that holds the job is durable: a child of the producer's span that the job
 * carried, and the span the job carries from then on, so that the worker's span for it is its
 * child (docs/tracing.md). `enqueue` is given the jobs with their new traceparents and answers
 * each job's outcome, in order.
 */
export const withJobSpans = <E>(
  jobs: ReadonlyArray<EnqueueOptions>,
  enqueue: (jobs: ReadonlyArray<EnqueueOptions>) => Effect.Effect<ReadonlyArray<Either.Either<Job, OsqueueError>>, E>
): Effect.Effect<ReadonlyArray<Either.Either<Job, OsqueueError>>, E> =>
  Effect.flatMap(
    Effect.forEach(jobs, (options) => {
      const parent = JobTrace.parentOf(options.traceparent)
      return Effect.makeSpan("Broker.enqueue", {
        kind: "server",
        attributes: { "job.type": options.type },
        captureStackTrace: false,
        ...(parent === undefined ? {} : { parent })
      })
    }),
    (spans) =>
      enqueue(jobs.map((options, i) => {
        const traceparent = JobTrace.traceparentOf(spans[i]!)
        return traceparent === undefined ? options : { ...options, traceparent }
      })).pipe(
        // Ended however the enqueue ends (interrupted too), each with its job's own outcome.
        Effect.onExit((exit) =>
          Effect.map(Clock.currentTimeNanos, (now) =>
            spans.forEach((span, i) => {
              const outcome = Exit.isSuccess(exit) ? exit.value[i]! : undefined
              if (outcome !== undefined && Either.isRight(outcome)) span.attribute("job.id", outcome.right.id)
              span.end(
                now,
                outcome === undefined ? exit : Either.match(outcome, { onLeft: Exit.fail, onRight: Exit.succeed })
              )
            }))
        )
      )
  )

/** Counts each outcome as a call of `operation` (in one step: an effect per item costs more than its count). */
export const countOutcomes =
  (operation: string) => <A>(effect: Effect.Effect<ReadonlyArray<Either.Either<A, OsqueueError>>, OsqueueError>) =>
    Effect.tap(effect, (outcomes) =>
      FiberRef.getWith(FiberRef.currentMetricLabels, (labels) =>
        Effect.sync(() => {
          for (const outcome of outcomes) {
            requestCounter(operation, Either.isRight(outcome) ? "ok" : outcome.left._tag).unsafeUpdate(1, labels)
          }
        })))

/** Gathered single calls: each counted as its own call of `operation`, a refusal of all of them too. */
export const countEach =
  (operation: string, items: number) =>
  <A>(effect: Effect.Effect<ReadonlyArray<Either.Either<A, OsqueueError>>, OsqueueError>) =>
    countOutcomes(operation)(effect).pipe(
      Effect.tapError((error) => Metric.incrementBy(requestCounter(operation, error._tag), items))
    )
