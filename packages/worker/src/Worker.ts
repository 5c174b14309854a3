/**
 * A pool of supervised fibers over `OsqueueClient`. One claim loop leases at most as many jobs
 * as there are free slots plus `prefetch` (never more than `concurrency` handlers run at once;
 * prefetched jobs wait in line for a slot); one renewal fiber heartbeats every job in hand every
 * third of its lease and interrupts the handler when the lease is gone (expired, cancelled,
 * taken over). Shutdown stops claiming, gives back the jobs still in line, lets running jobs
 * finish for a while, then interrupts and releases the rest.
 */
import { processName } from "#processName"
import { type ClientError, OsqueueClient } from "@osqueue/client"
import { type InvalidRequest, JobTrace, type Unauthorized } from "@osqueue/types"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { type Handlers, type HandlersContext, type HandlerSpec, toSpec } from "./Handler.js"
import { makeClaimLoop } from "./internal/claimLoop.js"
import { makeJobs } from "./internal/job.js"
import { Renewals } from "./internal/renewals.js"
import { type JobEnd, leaseGone, makeSettlement } from "./internal/settlement.js"
import { makeShutdown } from "./internal/shutdown.js"
import { type Counts, Slots } from "./internal/slots.js"

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
  /** The queue to work on (default: the client's own, `OsqueueClient`'s `queue` option). */
  readonly queue?: string | undefined
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

export const defaultIdleSchedule: Schedule.Schedule<unknown, void> = Schedule.exponential("10 millis").pipe(
  Schedule.union(Schedule.spaced("500 millis")),
  Schedule.jittered
)

export const defaultErrorSchedule: Schedule.Schedule<unknown, ClientError> = Schedule.exponential("200 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

export const make = <const H extends Handlers>(
  options: WorkerOptions<H>
): Effect.Effect<Worker, never, OsqueueClient | Scope.Scope | HandlersContext<H>> =>
  Effect.gen(function*() {
    const given = yield* OsqueueClient
    const client = options.queue === undefined || options.queue === given.queue
      ? given
      : yield* given.forQueue(options.queue).pipe(Effect.orDieWith((error) => new Error(error.message)))
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

    /**
     * `handling` is at most `concurrency`, `waiting` (prefetched) at most `prefetch` beyond the free
     * slots; a slot is free again when the handler ends, so the next claim overlaps the
     * acknowledgement of the outcome. At most `concurrency` acknowledgements wait at once
     * (`inHand` ≤ 2 × `concurrency` + `prefetch`).
     */
    const slots = new Slots(concurrency)
    const room = ({ handling, inHand, waiting }: Counts) =>
      Math.min(concurrency + prefetch - handling - waiting, 2 * concurrency + prefetch - inHand)
    const stopping = yield* Deferred.make<void>()
    const jobsInHand = new Map<string, (end: JobEnd) => void>()
    const tracing = yield* JobTrace.exporting
    const settlement = makeSettlement(client, tracing)
    const scope = yield* Effect.scope
    // Made before the shutdown finalizer, so its fibers are interrupted after the drain
    // (finalizers run LIFO), all at once. A set, not a scope per job: `forkIn` made and closed a
    // child scope for every job.
    const jobFibers = yield* FiberSet.make()
    const renewals = new Renewals()
    yield* renewals.run((lease) =>
      client.heartbeat(lease.token).pipe(
        Effect.asVoid,
        Effect.catchAll((error) => {
          if (leaseGone(error)) return Effect.sync(() => jobsInHand.get(lease.token)?.({ _tag: "LeaseLost", error }))
          return Effect.logWarning("heartbeat failed; retrying at the next renewal", error).pipe(
            Effect.annotateLogs({ jobId: lease.token.slice(0, lease.token.indexOf("/")), workerId })
          )
        })
      )
    ).pipe(Effect.forkIn(scope))

    const start = makeJobs({
      client,
      workerId,
      specs,
      slots,
      renewals,
      jobsInHand,
      settlement,
      leaseMs: options.leaseMs,
      defaultTimeout: options.timeout === undefined ? undefined : Duration.decode(options.timeout),
      tracing,
      fibers: jobFibers
    })
    const claims = yield* makeClaimLoop({
      client,
      workerId,
      types,
      pollWaitMs: options.pollWaitMs ?? 5_000,
      leaseMs: options.leaseMs,
      idleSchedule: options.idleSchedule ?? defaultIdleSchedule,
      errorSchedule: options.errorSchedule ?? defaultErrorSchedule,
      slots,
      room,
      stopping,
      start,
      release: settlement.release
    })
    const claimFiber = yield* claims.loop.pipe(
      Effect.annotateLogs({ module: "Worker", workerId }),
      Effect.forkIn(scope)
    )

    const shutdown = yield* makeShutdown({
      workerId,
      stopping,
      claimFiber,
      givePendingBack: claims.givePendingBack,
      slots,
      jobsInHand,
      shutdownTimeout: Duration.decode(options.shutdownTimeout ?? "30 seconds")
    })
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
