/**
 * A pool of supervised fibers over `OsqueueClient`. One claim loop leases at most as many jobs
 * as there are free slots plus `prefetch` (never more than `concurrency` handlers run at once;
 * prefetched jobs wait in line for a slot); one renewal fiber heartbeats every job in hand every
 * third of its lease and interrupts the handler when the lease is gone (expired, cancelled,
 * taken over). Shutdown stops claiming, gives back the jobs still in line, lets running jobs
 * finish for a while, then interrupts and releases the rest.
 */
import { BrokerUnreachable, type ClientError, OsqueueClient } from "@osqueue/client"
import { type ClaimedJob, EventLoop, type InvalidRequest, type Job, JobTrace, type Unauthorized } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { processName } from "#processName"
import { type Handlers, type HandlersContext, type HandlerSpec, type JobContext, JobTimeout, toSpec } from "./Handler.js"
import { firstOf } from "./internal/firstOf.js"
import { Renewals } from "./internal/renewals.js"
import { type Counts, Slots, type Turn } from "./internal/slots.js"
import * as Metrics from "./Metrics.js"

export interface WorkerOptions<H extends Handlers> {
  /** One handler per job type; the worker claims only these types. */
  readonly handlers: H
  /**
   * Most handlers running at once (default 1). A slot frees when its handler ends, while the
   * outcome is still being acknowledged, so up to as many more jobs may be leased meanwhile.
   */
  readonly concurrency?: number | undefined
  /**
   * Jobs leased ahead of a free slot, waiting in line for one (default: `concurrency`). With
   * short jobs, a pool that claims only for free slots can take at most `concurrency` jobs per
   * commit of the broker, and falls behind producers that add as many; the line lets it catch
   * up. Set 0 for long jobs shared by several workers: a prefetched job waits for this pool's
   * slots while another pool may be idle.
   */
  readonly prefetch?: number | undefined
  /** Names this worker on leases (default `host:pid:random`). */
  readonly workerId?: string | undefined
  /** Lease length asked for on each claim (the broker's default when absent). */
  readonly leaseMs?: number | undefined
  /** Long poll: a claim waits up to this long for a job (default 5000). */
  readonly pollWaitMs?: number | undefined
  /** Pause after a claim that found nothing, reset by a claim that found some (default: 10 ms doubling to 500 ms, jittered). */
  readonly idleSchedule?: Schedule.Schedule<unknown, void> | undefined
  /** Pause after a failed claim, reset by a successful one (default: 200 ms doubling to 5 s, jittered). */
  readonly errorSchedule?: Schedule.Schedule<unknown, ClientError> | undefined
  /** Every handler's timeout unless its own is set (default none); a job's `timeoutMs` wins over both. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long shutdown lets running jobs finish before it interrupts and releases them (default 30 s). */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

export interface Worker {
  readonly workerId: string
  /** Jobs leased now: in line for a slot, being handled, or handled and waiting for the broker to acknowledge the outcome. */
  readonly inHand: Effect.Effect<number>
  /** Stops claiming, drains, then releases what is left. Runs when the worker's scope closes. */
  readonly shutdown: Effect.Effect<void>
  /**
   * Completes when the worker stops claiming: after `shutdown`, or failing when the broker
   * refuses its claims for good (`Unauthorized`: a wrong token; `InvalidRequest`: bad options).
   */
  readonly join: Effect.Effect<void, WorkerRefused>
}

/** Claim errors that retrying cannot fix: the worker stops claiming. */
export type WorkerRefused = Unauthorized | InvalidRequest

const refused = (error: ClientError): error is WorkerRefused =>
  error._tag === "Unauthorized" || error._tag === "InvalidRequest"

export const defaultIdleSchedule: Schedule.Schedule<unknown, void> = Schedule.exponential("10 millis").pipe(
  Schedule.union(Schedule.spaced("500 millis")),
  Schedule.jittered
)

export const defaultErrorSchedule: Schedule.Schedule<unknown, ClientError> = Schedule.exponential("200 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

/** The broker no longer lets us hold the job: stop working on it. */
const leaseGone = (error: ClientError): boolean =>
  error._tag === "LeaseLost" || error._tag === "JobNotFound" || error._tag === "InvalidTransition"

/** The broker caps an error at 10 000 characters. */
const maxErrorLength = 4_000

const describe = (error: unknown): string => {
  const text = typeof error === "string"
    ? error
    : typeof error === "object" && error !== null && "_tag" in error && "message" in error
    ? `${String(error._tag)}: ${String(error.message)}`
    : error instanceof Error
    ? `${error.name}: ${error.message}`
    : JSON.stringify(error) ?? String(error)
  return text.length > maxErrorLength ? `${text.slice(0, maxErrorLength)}…` : text
}

type Outcome =
  | { readonly _tag: "Handled"; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "Lost"; readonly error: ClientError }
  | { readonly _tag: "Stopped" }

export const make = <const H extends Handlers>(
  options: WorkerOptions<H>
): Effect.Effect<Worker, never, OsqueueClient | Scope.Scope | HandlersContext<H>> =>
  Effect.gen(function*() {
    const client = yield* OsqueueClient
    const concurrency = options.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      return yield* Effect.dieMessage(`concurrency must be a positive integer, got ${concurrency}`)
    }
    const prefetch = options.prefetch ?? concurrency
    if (!Number.isInteger(prefetch) || prefetch < 0) {
      return yield* Effect.dieMessage(`prefetch must be an integer of 0 or more, got ${prefetch}`)
    }
    const specs = new Map<string, HandlerSpec<HandlersContext<H>>>()
    for (const [type, entry] of Object.entries(options.handlers)) {
      const spec = toSpec(entry)
      if (spec.definition !== undefined && spec.definition.type !== type) {
        return yield* Effect.dieMessage(`handler for "${type}" is given the definition of "${spec.definition.type}"`)
      }
      specs.set(type, spec)
    }
    const types = Array.from(specs.keys())
    if (types.length === 0) return yield* Effect.dieMessage("a worker needs at least one handler")
    const workerId = options.workerId ?? `${processName()}:${crypto.randomUUID().slice(0, 8)}`
    const pollWaitMs = options.pollWaitMs ?? 5_000
    const defaultTimeout = options.timeout === undefined ? undefined : Duration.decode(options.timeout)
    const shutdownTimeout = Duration.decode(options.shutdownTimeout ?? "30 seconds")
    /** With spans exported, a job's span continues the trace its job carries (docs/tracing.md). */
    const tracing = yield* JobTrace.exporting

    /**
     * `handling` is at most `concurrency`, `waiting` (prefetched) at most `prefetch` beyond the free
     * slots; a slot is free again when the handler ends, so the next claim overlaps the
     * acknowledgement of the outcome. At most `concurrency` acknowledgements wait at once
     * (`inHand` ≤ 2 × `concurrency` + `prefetch`).
     */
    const slots = new Slots(concurrency)
    const stopping = yield* Deferred.make<void>()
    /** How to end each job in hand, by lease token: shutdown and lost leases decide its outcome. */
    const running = new Map<string, (outcome: Outcome) => void>()
    const scope = yield* Effect.scope
    // Created before the shutdown finalizer, so they close after the drain (finalizers run LIFO).
    const jobsScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)
    const renewals = new Renewals()
    yield* renewals.run((lease) =>
      client.heartbeat(lease.token).pipe(
        Effect.asVoid,
        Effect.catchAll((error) => {
          if (leaseGone(error)) return Effect.sync(() => running.get(lease.token)?.({ _tag: "Lost", error }))
          return Effect.logWarning("heartbeat failed; retrying at the next renewal", error).pipe(
            Effect.annotateLogs({ jobId: lease.token.slice(0, lease.token.indexOf("/")), workerId })
          )
        })
      )
    ).pipe(Effect.forkIn(scope))

    const freeSlots = ({ handling, inHand, waiting }: Counts) =>
      Math.min(concurrency + prefetch - handling - waiting, 2 * concurrency + prefetch - inHand)

    const release = (claimed: ClaimedJob) =>
      client.release(claimed.token).pipe(
        Effect.timeout("10 seconds"),
        Effect.tapError((error) => Effect.logWarning("could not release a job; its lease will expire", error)),
        Effect.ignore
      )

    const finish = (outcome: Metrics.Outcome, started: number) =>
      Effect.gen(function*() {
        yield* Metric.increment(Metrics.processed(outcome))
        yield* Metric.update(Metrics.jobDuration, ((yield* Clock.currentTimeMillis) - started) / 1000)
        yield* Effect.annotateCurrentSpan("outcome", outcome)
      })

    /** Acknowledges a failure; the outcome follows what the broker did with the job. */
    const failJob = (claimed: ClaimedJob, message: string, retryable: boolean, outcome?: Metrics.Outcome) =>
      client.fail(claimed.token, message, { retryable }).pipe(
        Effect.map((job: Job): Metrics.Outcome => outcome ?? (job.state === "dead" ? "dead" : "failed")),
        Effect.tap((o) => Effect.logWarning("job failed").pipe(Effect.annotateLogs({ error: message, outcome: o }))),
        Effect.catchAll((error) => acknowledgeFailed(error))
      )

    const acknowledgeFailed = (error: ClientError): Effect.Effect<Metrics.Outcome> =>
      leaseGone(error)
        ? Effect.as(Effect.logWarning("lease lost before the outcome was acknowledged", error), "lease_lost" as const)
        : Effect.as(
          Effect.logError("could not acknowledge the outcome; the job will run again after its lease expires", error),
          "unacknowledged" as const
        )

    const settle = (
      claimed: ClaimedJob,
      spec: HandlerSpec<HandlersContext<H>>,
      outcome: Outcome
    ): Effect.Effect<Metrics.Outcome> => {
      switch (outcome._tag) {
        case "Lost":
          return Effect.as(
            Effect.logWarning("lease lost: handler interrupted").pipe(Effect.annotateLogs("reason", outcome.error.message)),
            "lease_lost"
          )
        case "Stopped":
          return Effect.as(
            Effect.zipRight(Effect.logInfo("released at shutdown"), release(claimed)),
            "released"
          )
        case "Handled": {
          const exit = outcome.exit
          if (Exit.isSuccess(exit)) {
            const encoded = spec.definition === undefined
              ? Effect.succeed(exit.value)
              : Schema.encode(spec.definition.result)(exit.value)
            return encoded.pipe(
              Effect.matchEffect({
                onFailure: (error) =>
                  failJob(
                    claimed,
                    `the handler's result does not match the ${claimed.job.type} result schema: ${
                      ParseResult.TreeFormatter.formatErrorSync(error)
                    }`,
                    false
                  ),
                onSuccess: (result) =>
                  client.complete(claimed.token, result).pipe(
                    Effect.as("completed" as const),
                    // A result the client or broker refuses (not JSON, too large) would be
                    // refused again on every attempt.
                    Effect.catchAll((error) =>
                      error._tag === "InvalidRequest" || error._tag === "PayloadTooLarge"
                        ? failJob(claimed, `the handler's result was refused: ${error.message}`, false)
                        : acknowledgeFailed(error)
                    )
                  )
              })
            )
          }
          const failure = Cause.failureOption(exit.cause)
          if (Option.isSome(failure)) {
            const error = failure.value
            if (error instanceof JobTimeout) return failJob(claimed, describe(error), true, "timeout")
            const nonRetryable = typeof error === "object" && error !== null && "_tag" in error &&
              error._tag === "NonRetryable"
            return failJob(claimed, describe(error), !nonRetryable)
          }
          const message = Cause.isInterruptedOnly(exit.cause)
            ? "the handler was interrupted"
            : `the handler died: ${describe(Cause.squash(exit.cause))}`
          return failJob(claimed, message, true)
        }
      }
    }

    /** A defect while acknowledging (a bug) is logged: the job runs again after its lease expires. */
    const settleLogged = (claimed: ClaimedJob, spec: HandlerSpec<HandlersContext<H>>, outcome: Outcome) =>
      Effect.catchAllDefect(settle(claimed, spec, outcome), (defect) =>
        Effect.as(
          Effect.logError(
            "could not acknowledge the outcome (a defect); the job will run again after its lease expires",
            Cause.die(defect)
          ),
          "unacknowledged" as const
        ))

    /** Where a job in hand is: in line for a handler slot, in one, or done with it. */
    interface Hold {
      at: "line" | "slot" | "out"
      turn?: Turn
    }

    /** The job leaves its slot (to the next job in line) or its place in line. */
    const leaveSlot = (hold: Hold) => {
      if (hold.at === "slot") slots.release()
      else if (hold.at === "line") {
        hold.turn?.cancel()
        slots.add(0, -1, 0)
      }
      hold.at = "out"
    }

    const runJob = (claimed: ClaimedJob, hold: Hold) =>
      Effect.gen(function*() {
        const { job, token } = claimed
        const claimedAt = yield* Clock.currentTimeMillis
        const spec = specs.get(job.type)
        if (spec === undefined) {
          // Only our types are claimed; a broker that sent another is answered with a release.
          yield* Effect.logWarning("claimed a job type this worker has no handler for")
          yield* release(claimed)
          return yield* finish("released", claimedAt)
        }
        const payload = spec.definition === undefined
          ? Either.right(job.payload)
          : yield* Effect.either(Schema.decodeUnknown(spec.definition.payload)(job.payload))
        if (Either.isLeft(payload)) {
          const reason = `payload does not match the ${job.type} schema: ${
            ParseResult.TreeFormatter.formatErrorSync(payload.left)
          }`
          return yield* finish(yield* failJob(claimed, reason, false, "invalid_payload"), claimedAt)
        }

        const outcome = firstOf<Outcome>()
        let started = claimedAt
        const turn = hold.turn = slots.turn(() => {
          hold.at = "slot"
        })
        // A lost lease or shutdown also takes the job out of line, if it is still there.
        running.set(token, (decided) => {
          outcome.decide(decided)
          turn.cancel()
        })
        const lease = renewals.add(token, job.lease?.ttlMs ?? options.leaseMs ?? 30_000, claimedAt)
        const progress = (value: unknown) =>
          client.heartbeat(token, value === undefined ? {} : { progress: value }).pipe(
            Effect.asVoid,
            Effect.catchAll((error) =>
              leaseGone(error)
                ? Effect.sync(() => outcome.decide({ _tag: "Lost", error }))
                : Effect.logWarning("progress report failed", error)
            )
          )
        const ctx: JobContext = { job, token, workerId, attempt: job.attempts, progress }
        // The job's own limit (its enqueue's `timeoutMs`) wins over the type's and the worker's.
        const timeout = job.timeoutMs === undefined ? spec.timeout ?? defaultTimeout : Duration.millis(job.timeoutMs)
        const handled = timeout === undefined
          ? spec.handle(payload.right, ctx)
          : Effect.timeoutFail(spec.handle(payload.right, ctx), {
            duration: timeout,
            onTimeout: () => new JobTimeout({ type: job.type, timeout })
          })
        // The first of: the handler ends, the lease is gone, shutdown asks for the job back. One
        // fiber for the handler (interrupted when it loses) and one signal, instead of a race of
        // three fibers: per-job fibers were most of the worker's CPU.
        yield* Effect.gen(function*() {
          let handler: Fiber.RuntimeFiber<unknown, unknown> | undefined
          if (yield* turn.granted) {
            started = yield* Clock.currentTimeMillis
            handler = yield* Effect.fork(handled)
            handler.addObserver((exit) => outcome.decide({ _tag: "Handled", exit }))
          } else {
            // Out of line before its turn: the lease is gone, or shutdown gives the job back.
            outcome.decide({ _tag: "Stopped" })
          }
          const decided = yield* outcome.await
          if (decided._tag !== "Handled" && handler !== undefined) yield* Fiber.interrupt(handler)
          leaveSlot(hold)
          yield* finish(yield* settleLogged(claimed, spec, decided), started)
        }).pipe(
          Effect.ensuring(Effect.sync(() => {
            running.delete(token)
            renewals.remove(lease)
          }))
        )
      }).pipe(
        Effect.onInterrupt(() => release(claimed)),
        Effect.annotateLogs({ jobId: claimed.job.id, type: claimed.job.type, attempt: claimed.job.attempts, workerId }),
        Effect.withSpan("Worker.job", jobSpan(claimed.job))
      )

    const jobSpan = (job: Job): Tracer.SpanOptions => {
      const attributes = { "job.id": job.id, "job.type": job.type }
      if (!tracing) return { attributes, captureStackTrace: false }
      const parent = JobTrace.parentOf(job.traceparent)
      return {
        attributes: { ...attributes, "job.attempt": job.attempts, "worker.id": workerId },
        kind: "consumer",
        captureStackTrace: false,
        ...(parent === undefined ? {} : { parent })
      }
    }

    const start = (claimed: ClaimedJob) =>
      Effect.suspend(() => {
        const hold: Hold = { at: "line" }
        slots.add(0, 1, 1)
        return Metric.incrementBy(Metrics.inHand, 1).pipe(
          // Forked from the claim loop's uninterruptible section: the job's fiber must be
          // interruptible again, or its handler could never be interrupted.
          Effect.zipRight(
            runJob(claimed, hold).pipe(
              Effect.interruptible,
              Effect.ensuring(
                Effect.zipRight(
                  Effect.sync(() => {
                    leaveSlot(hold)
                    slots.add(0, 0, -1)
                  }),
                  Metric.incrementBy(Metrics.inHand, -1)
                )
              ),
              Effect.forkIn(jobsScope)
            )
          )
        )
      })

    const idle = yield* Schedule.driver(options.idleSchedule ?? defaultIdleSchedule)
    const backoff = yield* Schedule.driver(options.errorSchedule ?? defaultErrorSchedule)
    const pause = <In>(driver: Schedule.ScheduleDriver<unknown, In>, input: In) =>
      Effect.catchAll(driver.next(input), () => driver.reset) // a schedule that ends starts over

    /**
     * A claim runs in a fiber of its own. Stopping the claim loop must not wait for a long poll
     * (or for the client's retries while no broker answers), yet jobs that a claim leased must
     * not be dropped: whoever takes the claim's result first — the loop, or shutdown when the
     * loop was stopped — starts or releases them.
     */
    interface PendingClaim {
      readonly fiber: Fiber.RuntimeFiber<ReadonlyArray<ClaimedJob>, ClientError>
      taken: boolean
    }
    let pendingClaim: PendingClaim | undefined
    const take = (pending: PendingClaim) =>
      Effect.sync(() => {
        if (pending.taken) return false
        pending.taken = true
        return true
      })

    const claimOnce = Effect.gen(function*() {
      yield* slots.waitUntil((n) => freeSlots(n) > 0)
      // Two turns of the event loop first. A slot frees just before its job's outcome is handed
      // to the client, which sends the outcomes of one turn as one call at the end of that turn.
      // After one turn the claim would leave ahead of that call, and an idle broker would commit
      // it alone, the outcomes a commit later: with prefetch, 0.081 writes per job instead of
      // 0.049, and behind 100,000 queued jobs 126 instead of 202 jobs/s. After two, the outcomes
      // are on their way, the broker commits both at once, and the claim asks for every slot
      // they freed rather than the first one.
      yield* EventLoop.nextTurn
      yield* EventLoop.nextTurn
      const free = freeSlots(slots.current)
      const fiber = yield* Effect.forkDaemon(client.claim({
        workerId,
        types,
        max: free,
        waitMs: pollWaitMs,
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs })
      }))
      const pending: PendingClaim = { fiber, taken: false }
      pendingClaim = pending
      const exit = yield* Fiber.await(fiber)
      // From here on the result is ours: starting its jobs must not be cut short.
      yield* Effect.uninterruptible(Effect.gen(function*() {
        if (!(yield* take(pending))) return
        if (Exit.isFailure(exit)) {
          const error = Option.getOrElse(
            Cause.failureOption(exit.cause),
            () => new BrokerUnreachable({ url: "(claim)", reason: Cause.pretty(exit.cause) })
          )
          yield* Metric.increment(Metrics.claimErrors)
          if (refused(error)) {
            yield* Effect.logError("the broker refuses this worker's claims: it stops claiming", error)
            return yield* Effect.fail(error)
          }
          yield* Effect.logWarning("claim failed; backing off", error)
          return yield* Effect.interruptible(pause(backoff, error))
        }
        yield* backoff.reset
        const claimed = exit.value
        if (yield* Deferred.isDone(stopping)) {
          return yield* Effect.forEach(claimed, release, { concurrency: "unbounded", discard: true })
        }
        yield* Effect.forEach(claimed, start, { discard: true })
        if (claimed.length === 0) yield* Effect.interruptible(pause(idle, undefined))
        else yield* idle.reset
      }))
    })

    const claimFiber = yield* Effect.forever(claimOnce).pipe(
      Effect.raceFirst(Deferred.await(stopping)),
      Effect.annotateLogs({ module: "Worker", workerId }),
      Effect.forkIn(scope)
    )

    /**
     * At shutdown: the claim the loop was waiting on, if any. Waiting for a long poll would hold
     * shutdown for up to `pollWaitMs`, so it is interrupted (the broker drops a claim still
     * waiting); jobs it had already leased are given back.
     */
    const settlePendingClaim = Effect.suspend(() => {
      const pending = pendingClaim
      if (pending === undefined) return Effect.void
      return Fiber.interrupt(pending.fiber).pipe(
        Effect.flatMap((exit) =>
          Effect.flatMap(take(pending), (ours) =>
            ours && Exit.isSuccess(exit)
              ? Effect.forEach(exit.value, release, { concurrency: "unbounded", discard: true })
              : Effect.void)
        )
      )
    })

    const drainThenRelease = Effect.gen(function*() {
      yield* Deferred.succeed(stopping, undefined)
      yield* Fiber.await(claimFiber)
      // Prefetched jobs go back to the broker at once, for other workers: draining lets only
      // running handlers finish.
      slots.cancelLine()
      yield* Effect.logInfo("worker stopping: draining").pipe(Effect.annotateLogs("inHand", running.size))
      const drained = yield* Effect.all([settlePendingClaim, slots.waitUntil((n) => n.inHand === 0)], {
        concurrency: "unbounded"
      }).pipe(Effect.timeout(shutdownTimeout), Effect.option)
      if (Option.isNone(drained)) {
        yield* Effect.logWarning("drain timed out: interrupting and releasing running jobs").pipe(
          Effect.annotateLogs("inHand", running.size)
        )
        for (const decide of running.values()) decide({ _tag: "Stopped" })
        yield* slots.waitUntil((n) => n.inHand === 0).pipe(Effect.timeout("15 seconds"), Effect.ignore)
      }
      yield* Effect.logInfo("worker stopped")
    }).pipe(Effect.annotateLogs({ module: "Worker", workerId }))

    // Shutdown usually runs as a finalizer of an interrupted fiber, where nothing can be
    // interrupted (so no timeout could fire): it runs in a fiber of its own, which it awaits.
    const shutdown = yield* Effect.cached(
      Effect.forkDaemon(Effect.interruptible(drainThenRelease)).pipe(Effect.flatMap(Fiber.join))
    )
    yield* Effect.addFinalizer(() => shutdown)
    yield* Effect.logInfo("worker started").pipe(
      Effect.annotateLogs({ module: "Worker", workerId, concurrency, types: types.join(",") })
    )

    return {
      workerId,
      inHand: Effect.sync(() => slots.current.inHand),
      shutdown,
      join: Fiber.join(claimFiber)
    }
  })

/**
 * Runs a worker until interrupted; interruption (e.g. SIGINT under `runMain`) shuts it down
 * gracefully. Fails (after draining) when the broker refuses its claims for good.
 */
export const run = <const H extends Handlers>(
  options: WorkerOptions<H>
): Effect.Effect<never, WorkerRefused, OsqueueClient | HandlersContext<H>> =>
  Effect.scoped(Effect.flatMap(make(options), (worker) => Effect.zipRight(worker.join, Effect.never)))

/** A worker for the life of the layer (a refused claim is logged; the layer cannot fail once built). */
export const layer = <const H extends Handlers>(
  options: WorkerOptions<H>
): Layer.Layer<never, never, OsqueueClient | HandlersContext<H>> => Layer.scopedDiscard(make(options))
