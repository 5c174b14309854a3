/**
 * The claim loop: while there is room in the pool it claims as many jobs as there is room for
 * (a long poll), starts them, and pauses on the idle schedule after a claim that found nothing or
 * on the error schedule after one that failed. It ends when `stopping` completes, or fails when
 * the broker refuses this worker's claims for good.
 */
import { BrokerUnreachable, type ClientError, type OsqueueClient } from "@osqueue/client"
import { type ClaimedJob, EventLoop } from "@osqueue/types"
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Metrics from "../Metrics.js"
import type { WorkerRefused } from "../Worker.js"
import type { Counts, Slots } from "./slots.js"

const refused = (error: ClientError): error is WorkerRefused =>
  error._tag === "Unauthorized" || error._tag === "InvalidRequest"

export interface ClaimLoopConfig<R> {
  readonly client: Context.Tag.Service<OsqueueClient>
  readonly workerId: string
  readonly types: ReadonlyArray<string>
  readonly pollWaitMs: number
  readonly leaseMs: number | undefined
  readonly idleSchedule: Schedule.Schedule<unknown, void>
  readonly errorSchedule: Schedule.Schedule<unknown, ClientError>
  readonly slots: Slots
  /** How many more jobs the pool takes now. */
  readonly room: (counts: Counts) => number
  readonly stopping: Deferred.Deferred<void>
  readonly start: (claimed: ClaimedJob) => Effect.Effect<void, never, R>
  readonly release: (claimed: ClaimedJob) => Effect.Effect<void>
}

export interface ClaimLoop<R> {
  /** Claims until `stopping` completes; fails when the broker refuses the claims for good. */
  readonly loop: Effect.Effect<void, WorkerRefused, R>
  /**
   * At shutdown, once the loop has stopped: the claim it was waiting on, if any, is interrupted
   * (waiting for a long poll would hold shutdown for up to `pollWaitMs`; the broker drops a
   * claim still waiting), and the jobs it had already leased are given back.
   */
  readonly givePendingBack: Effect.Effect<void>
}

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

const take = (pending: PendingClaim) =>
  Effect.sync(() => {
    if (pending.taken) return false
    pending.taken = true
    return true
  })

export const makeClaimLoop = <R>(config: ClaimLoopConfig<R>): Effect.Effect<ClaimLoop<R>> =>
  Effect.gen(function*() {
    const { client, release, slots, stopping } = config
    const idle = yield* Schedule.driver(config.idleSchedule)
    const backoff = yield* Schedule.driver(config.errorSchedule)
    const pause = <In>(driver: Schedule.ScheduleDriver<unknown, In>, input: In) =>
      Effect.catchAll(driver.next(input), () => driver.reset) // a schedule that ends starts over
    let pendingClaim: PendingClaim | undefined

    const claimOnce = Effect.gen(function*() {
      yield* slots.waitUntil((n) => config.room(n) > 0)
      // Two turns of the event loop first, so that the outcomes of the jobs that just freed
      // slots (sent by the client at the end of a turn) reach the broker ahead of this claim and
      // share its commit, and the claim asks for every slot they freed (docs/architecture.md,
      // "Event-loop turns"; figures in docs/performance.md).
      yield* EventLoop.nextTurn
      yield* EventLoop.nextTurn
      const fiber = yield* Effect.forkDaemon(client.claim({
        workerId: config.workerId,
        types: config.types,
        max: config.room(slots.current),
        waitMs: config.pollWaitMs,
        ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs })
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
        yield* Effect.forEach(claimed, config.start, { discard: true })
        if (claimed.length === 0) yield* Effect.interruptible(pause(idle, undefined))
        else yield* idle.reset
      }))
    })

    const givePendingBack = Effect.suspend(() => {
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

    return {
      loop: Effect.forever(claimOnce).pipe(Effect.raceFirst(Deferred.await(stopping))),
      givePendingBack
    }
  })
