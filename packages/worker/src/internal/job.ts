/**
 * One leased job's life in the pool: it waits in line for a handler slot, its payload is
 * decoded, its handler runs under its time limit while its lease is renewed, and the first of
 * (handler ended, lease lost, shutdown gives it back) decides how the broker is told it ended.
 */
import type { OsqueueClient } from "@osqueue/client"
import { type ClaimedJob, defaultLeaseMs, type Job, JobTrace } from "@osqueue/types"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberSet from "effect/FiberSet"
import * as HashMap from "effect/HashMap"
import * as Metric from "effect/Metric"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import { type HandlerSpec, type JobContext, JobTimeout } from "../Handler.js"
import * as Metrics from "../Metrics.js"
import type { Renewals } from "./renewals.js"
import { type JobEnd, leaseGone, type Settlement } from "./settlement.js"
import type { Slots, SlotUse } from "./slots.js"

export interface JobsConfig<R> {
  readonly client: Context.Tag.Service<OsqueueClient>
  readonly workerId: string
  readonly specs: ReadonlyMap<string, HandlerSpec<R>>
  readonly slots: Slots
  readonly renewals: Renewals
  /** The jobs in hand by lease token, each with how to end it: lost leases and shutdown decide through it. */
  readonly jobsInHand: Map<string, (end: JobEnd) => void>
  readonly settlement: Settlement
  /** Lease length asked for on claims, if any: renewals follow the job's own lease first. */
  readonly leaseMs: number | undefined
  /** Every handler's timeout unless its own or the job's is set. */
  readonly defaultTimeout: Duration.Duration | undefined
  /** With spans exported, a job's span continues the trace its job carries (docs/tracing.md). */
  readonly tracing: boolean
  /** Where job fibers run: interrupted after shutdown's drain. */
  readonly fibers: FiberSet.FiberSet
}

/** Returns `start`, which takes a claimed job into the pool and runs it in a fiber of its own. */
export const makeJobs = <R>(config: JobsConfig<R>): (claimed: ClaimedJob) => Effect.Effect<void, never, R> => {
  const { client, jobsInHand, renewals, settlement, slots, specs, workerId } = config

  const jobSpan = (job: Job): Tracer.SpanOptions => {
    const parent = JobTrace.parentOf(job.traceparent)
    return {
      attributes: { "job.id": job.id, "job.type": job.type, "job.attempt": job.attempts, "worker.id": workerId },
      kind: "consumer",
      captureStackTrace: false,
      ...(parent === undefined ? {} : { parent })
    }
  }

  /**
   * The job's log annotations (`workerId` comes from the claim loop, whose fiber starts the
   * job's), set for the rest of its fiber, which is the job's own: nothing to restore after it,
   * where `Effect.annotateLogs` would compare and put back the fiber's whole annotation map on
   * every job.
   */
  const annotated = (job: Job) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.zipRight(
      FiberRef.update(FiberRef.currentLogAnnotations, (annotations) =>
        HashMap.set(HashMap.set(HashMap.set(annotations, "jobId", job.id), "type", job.type), "attempt", job.attempts)),
      self
    )

  const run = (claimed: ClaimedJob, use: SlotUse) => {
    let acknowledged = false
    return Effect.gen(function*() {
      const { job, token } = claimed
      const claimedAt = yield* Clock.currentTimeMillis
      const spec = specs.get(job.type)
      if (spec === undefined) {
        // Only our types are claimed; a broker that sent another is answered with a release.
        yield* Effect.logWarning("claimed a job type this worker has no handler for")
        yield* settlement.release(claimed)
        return yield* settlement.record("released", claimedAt)
      }
      const payload = spec.definition === undefined
        ? Either.right(job.payload)
        : yield* Effect.either(Schema.decodeUnknown(spec.definition.payload)(job.payload))
      if (Either.isLeft(payload)) {
        const reason = `payload does not match the ${job.type} schema: ${
          ParseResult.TreeFormatter.formatErrorSync(payload.left)
        }`
        return yield* settlement.record(yield* settlement.fail(claimed, reason, false, "invalid_payload"), claimedAt)
      }

      // How the job ended: the first of the handler ending, the lease being lost, shutdown asking
      // for the job back. The handler runs in the job's own fiber (a fiber of its own per job
      // was a good part of the pool's CPU); a lost lease or shutdown interrupts that fiber while
      // the handler runs, and only then: what follows the handler is uninterruptible by them.
      let ended: JobEnd | undefined
      let handling = false
      let started = claimedAt
      const turn = slots.queue(use)
      const fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((self) => Effect.succeed(self))
      const decide = (decided: JobEnd) => {
        if (ended !== undefined) return
        ended = decided
        // Out of line too, if it is still there; the handler is stopped if it runs.
        turn.cancel()
        if (handling) fiber.unsafeInterruptAsFork(fiber.id())
      }
      jobsInHand.set(token, decide)
      const lease = renewals.add(token, job.lease?.ttlMs ?? config.leaseMs ?? defaultLeaseMs, claimedAt)
      const progress = (value: unknown) =>
        client.heartbeat(token, value === undefined ? {} : { progress: value }).pipe(
          Effect.asVoid,
          Effect.catchAll((error) =>
            leaseGone(error)
              ? Effect.sync(() => decide({ _tag: "LeaseLost", error }))
              : Effect.logWarning("progress report failed", error)
          )
        )
      const ctx: JobContext = {
        job,
        token,
        workerId,
        attempt: job.attempts,
        progress,
        childResults: job.childResults ?? {}
      }
      // The job's own limit (its enqueue's `timeoutMs`) wins over the type's and the worker's.
      const timeout = job.timeoutMs === undefined
        ? spec.timeout ?? config.defaultTimeout
        : Duration.millis(job.timeoutMs)
      const handled = timeout === undefined
        ? spec.handle(payload.right, ctx)
        : Effect.timeoutFail(spec.handle(payload.right, ctx), {
          duration: timeout,
          onTimeout: () => new JobTimeout({ type: job.type, timeout })
        })
      yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          if (yield* restore(turn.granted)) {
            started = yield* Clock.currentTimeMillis
            handling = true
            const exit = yield* Effect.exit(restore(handled))
            handling = false
            decide({ _tag: "Handled", exit })
          } else {
            // Out of line before its turn: the lease is gone, or shutdown gives the job back.
            decide({ _tag: "GivenBack" })
          }
          slots.leave(use)
          const decided = ended!
          // A handled job's acknowledgement may be cut short by shutdown's last interrupt (the job
          // is then released, below); a lost or given-back job's fiber was interrupted already.
          const acknowledge = settlement.acknowledge(claimed, spec, decided)
          const outcome = yield* (decided._tag === "Handled" ? restore(acknowledge) : acknowledge)
          acknowledged = true
          yield* settlement.record(outcome, started)
        })
      ).pipe(
        Effect.ensuring(Effect.sync(() => {
          jobsInHand.delete(token)
          renewals.remove(lease)
        }))
      )
    }).pipe(
      // Interrupted before its outcome reached the broker (shutdown's last interrupt): given back.
      Effect.onInterrupt(() => acknowledged ? Effect.void : settlement.release(claimed)),
      annotated(claimed.job),
      // A span only where spans are exported (docs/tracing.md): otherwise one per job, never read.
      (self) => config.tracing ? Effect.withSpan(self, "Worker.job", jobSpan(claimed.job)) : self
    )
  }

  return (claimed) =>
    Effect.suspend(() => {
      const use = slots.enter()
      return Metric.incrementBy(Metrics.inHand, 1).pipe(
        // Forked from the claim loop's uninterruptible section: the job's fiber must be
        // interruptible again, or its handler could never be interrupted.
        Effect.zipRight(
          run(claimed, use).pipe(
            Effect.interruptible,
            Effect.ensuring(
              Effect.zipRight(Effect.sync(() => slots.exit(use)), Metric.incrementBy(Metrics.inHand, -1))
            ),
            FiberSet.run(config.fibers)
          )
        ),
        Effect.asVoid
      )
    })
}
