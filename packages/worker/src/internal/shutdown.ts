/**
 * Shutdown: stop claiming, give the prefetched jobs back at once (for other workers), let the
 * running handlers finish for up to `shutdownTimeout`, then interrupt and give back the rest.
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { JobEnd } from "./settlement.js"
import type { Slots } from "./slots.js"

export interface ShutdownConfig {
  readonly workerId: string
  readonly stopping: Deferred.Deferred<void>
  readonly claimFiber: Fiber.Fiber<unknown, unknown>
  /** Gives back the jobs of a claim the stopped loop was still waiting on. */
  readonly givePendingBack: Effect.Effect<void>
  readonly slots: Slots
  readonly jobsInHand: ReadonlyMap<string, (end: JobEnd) => void>
  readonly shutdownTimeout: Duration.Duration
}

/**
 * The worker's `shutdown`: runs once, however often it is asked for. It usually runs as a
 * finalizer of an interrupted fiber, where nothing can be interrupted (so no timeout could fire):
 * it runs in a fiber of its own, which it awaits.
 */
export const makeShutdown = (config: ShutdownConfig): Effect.Effect<Effect.Effect<void>> => {
  const { jobsInHand, slots } = config
  const drainThenRelease = Effect.gen(function*() {
    yield* Deferred.succeed(config.stopping, undefined)
    yield* Fiber.await(config.claimFiber)
    // Prefetched jobs go back to the broker at once, for other workers: draining lets only
    // running handlers finish.
    slots.cancelLine()
    yield* Effect.logInfo("worker stopping: draining").pipe(Effect.annotateLogs("inHand", jobsInHand.size))
    const drained = yield* Effect.all([config.givePendingBack, slots.waitUntil((n) => n.inHand === 0)], {
      concurrency: "unbounded"
    }).pipe(Effect.timeout(config.shutdownTimeout), Effect.option)
    if (Option.isNone(drained)) {
      yield* Effect.logWarning("drain timed out: interrupting and releasing running jobs").pipe(
        Effect.annotateLogs("inHand", jobsInHand.size)
      )
      for (const end of jobsInHand.values()) end({ _tag: "GivenBack" })
      yield* slots.waitUntil((n) => n.inHand === 0).pipe(Effect.timeout("15 seconds"), Effect.ignore)
    }
    yield* Effect.logInfo("worker stopped")
  }).pipe(Effect.annotateLogs({ module: "Worker", workerId: config.workerId }))

  return Effect.cached(Effect.forkDaemon(Effect.interruptible(drainThenRelease)).pipe(Effect.flatMap(Fiber.join)))
}
