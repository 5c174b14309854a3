/**
 * A timer that calls back on the engine's clock, without a fiber where it can: on the live clock
 * a plain `setTimeout`, where a fiber that slept and was interrupted cost more than the work it
 * timed (docs/performance.md, "A held claim's timer without a fiber", "A wait for company
 * without a fiber"); on any other clock (a test's `TestClock`) a sleep on that clock, the only
 * timer that sees its time move.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"

/** Calls `wake` in `ms`; what it returns stops it. */
export type After = (ms: number, wake: () => void) => () => void

/** `After` on the clock of the fiber that makes it. */
export const make: Effect.Effect<After> = Effect.map(
  Effect.zip(Effect.clock, Effect.runtime<never>()),
  ([clock, runtime]): After => {
    if (clock === Context.get(DefaultServices.liveServices, Clock.Clock)) {
      return (ms, wake) => {
        const timer = setTimeout(wake, ms)
        return () => clearTimeout(timer)
      }
    }
    const runFork = Runtime.runFork(runtime)
    return (ms, wake) => {
      const fiber = runFork(Effect.zipRight(Effect.sleep(Duration.millis(ms)), Effect.sync(wake)))
      return () => fiber.unsafeInterruptAsFork(FiberId.none)
    }
  }
)
