/**
 * A job's trace context (docs/tracing.md). A job carries a W3C `traceparent`: the producer's
 * span when it is enqueued, the broker's once the enqueue is committed; the worker's span for
 * the job is that span's child. So one trace follows a job from the producer's enqueue through
 * the broker's commit to the worker's handler, across processes and across a broker failover
 * (the field is stored with the job).
 *
 * Nothing is done unless spans are exported (`exporting`): with Effect's built-in tracer, or the
 * tracer disabled, jobs carry no trace context and no span is added for them.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Tracer from "effect/Tracer"
import { isTraceparent } from "./Job.js"

/** `span` as a W3C `traceparent`, or `undefined` when its ids are not W3C ids (a tracer of another kind). */
export const traceparentOf = (span: Tracer.AnySpan): string | undefined => {
  const traceparent = `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
  return isTraceparent(traceparent) ? traceparent : undefined
}

/** The span a `traceparent` names, as the parent of a span here; `undefined` when absent or not one. */
export const parentOf = (traceparent: string | undefined): Tracer.ExternalSpan | undefined =>
  isTraceparent(traceparent)
    ? Tracer.externalSpan({
      traceId: traceparent.slice(3, 35),
      spanId: traceparent.slice(36, 52),
      sampled: (Number.parseInt(traceparent.slice(53, 55), 16) & 1) === 1
    })
    : undefined

/** Effect's own tracer, which keeps spans in memory only: the one every runtime has unless another is set. */
let builtIn: Tracer.Tracer | undefined

/**
 * Whether spans go anywhere: the tracer is enabled and is not Effect's built-in one (an exporter,
 * such as `@effect/opentelemetry`'s, was set). The client, the worker and the broker read it once,
 * when they are built, so that with tracing off no work is done per job.
 */
export const exporting: Effect.Effect<boolean> = Effect.flatMap(
  FiberRef.get(FiberRef.currentTracerEnabled),
  (enabled) =>
    enabled
      ? Effect.tracerWith((tracer) => {
        builtIn ??= Effect.runSync(Effect.tracer)
        return Effect.succeed(tracer !== builtIn)
      })
      : Effect.succeed(false)
)
