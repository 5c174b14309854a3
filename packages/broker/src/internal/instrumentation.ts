/**
 * How each broker operation is measured: a count of calls by outcome (`osqueue_requests_total`);
 * gathered single calls counted each as its own; and with spans exported, a span per call and
 * per enqueued job, which the job carries on (docs/tracing.md). With spans not exported no span
 * is made at all: even a no-op span costs a call more than its count (a context, a fiber ref
 * set and restored, a finalizer).
 */
import type { EnqueueOptions, Job, OsqueueError } from "@osqueue/types"
import { JobTrace } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import type * as MetricLabel from "effect/MetricLabel"
import * as BrokerMetrics from "../BrokerMetrics.js"

/** Counts every call by operation and outcome (`ok`, the error's tag, or `defect`). */
const requestCounter = BrokerMetrics.requestSeries

export const counted = (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
  Effect.onExit(effect, (exit) => Metric.increment(requestCounter(operation, BrokerMetrics.outcomeOf(exit))))

/** A call's span, `Broker.<operation>`: for when spans are exported. */
export const spanned = (operation: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.withSpan(effect, `Broker.${operation}`, { captureStackTrace: false })

/** Counts each call of `operation` and, when spans are exported (`tracing`), spans it. */
export const instrumenter = (tracing: boolean) =>
  tracing
    ? (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
      counted(operation)(effect).pipe(spanned(operation))
    : counted

/** Spans a gathered batch (`Broker.enqueueEach`, …) when spans are exported (`tracing`). */
export const batchSpanner =
  (tracing: boolean) =>
  (name: string, attributes: Record<string, number>) =>
  <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    tracing ? Effect.withSpan(effect, name, { captureStackTrace: false, attributes }) : effect

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

type Outcomes<A> = ReadonlyArray<Either.Either<A, OsqueueError>>

/** The metric labels of the running fiber: a named queue's `queue` (`Queues`), none for the default queue. */
const labelsOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => fiber.getFiberRef(FiberRef.currentMetricLabels)

const countAll = (operation: string, outcomes: Outcomes<unknown>, labels: ReadonlyArray<MetricLabel.MetricLabel>) => {
  for (const outcome of outcomes) {
    requestCounter(operation, Either.isRight(outcome) ? "ok" : outcome.left._tag).unsafeUpdate(1, labels)
  }
}

/** Counts each outcome as a call of `operation` (in one step: an effect per item costs more than its count). */
export const countOutcomes =
  (operation: string) =>
  <A>(effect: Effect.Effect<Outcomes<A>, OsqueueError>): Effect.Effect<Outcomes<A>, OsqueueError> =>
    Effect.withFiberRuntime<Outcomes<A>, OsqueueError>((fiber) =>
      Effect.map(effect, (outcomes) => {
        countAll(operation, outcomes, labelsOf(fiber))
        return outcomes
      })
    )

/**
 * Gathered single calls: each counted as its own call of `operation`, a refusal of all of them
 * too; in one step either way.
 */
export const countEach =
  (operation: string, items: number) =>
  <A>(effect: Effect.Effect<Outcomes<A>, OsqueueError>): Effect.Effect<Outcomes<A>, OsqueueError> =>
    Effect.withFiberRuntime<Outcomes<A>, OsqueueError>((fiber) =>
      Effect.matchEffect(effect, {
        onFailure: (error) => {
          requestCounter(operation, error._tag).unsafeUpdate(items, labelsOf(fiber))
          return Effect.fail(error)
        },
        onSuccess: (outcomes) => {
          countAll(operation, outcomes, labelsOf(fiber))
          return Effect.succeed(outcomes)
        }
      })
    )
