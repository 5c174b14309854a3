/**
 * The leader's renewal (docs/architecture.md, "The commit path"; docs/ha.md, "Roles"): a leader
 * with nothing to commit still commits an empty batch once its loop has waited TTL/3, and that
 * entry is what tells its followers it is alive. One fiber for the loop's whole life, not a timer
 * per wait: it sleeps until the renewal of the wait under way is due (a wait that starts later is
 * due later still, so it never oversleeps one), and while the loop is busy it waits for the
 * loop's next wait.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { IdleWatch } from "./commandQueue.js"

export interface IdleRenewal extends IdleWatch {
  /** The renewal's fiber, for the loop's whole life: calls `wake` once the loop has waited `renewMs` with nothing in flight. */
  readonly run: Effect.Effect<never>
}

/** The loop tells it when a wait with nothing in flight begins and ends (`IdleWatch`); `clock` is the leader's. */
export const make = (renewMs: number, clock: Clock.Clock, wake: () => void): IdleRenewal => {
  /** When the loop began waiting with nothing in flight (the leader's clock, ms): its renewal is due `renewMs` later. */
  let idleSince: number | undefined
  /** Set while the renewal waits for the loop to wait with nothing in flight. */
  let parked: (() => void) | undefined

  const begin = () => {
    idleSince = clock.unsafeCurrentTimeMillis()
    const renew = parked
    parked = undefined
    renew?.()
  }
  const end = () => {
    idleSince = undefined
  }

  const renewal = Effect.suspend(() => {
    if (idleSince === undefined) {
      return Effect.async<void>((resume) => {
        if (idleSince !== undefined) return resume(Effect.void)
        const resumeRenewal = () => resume(Effect.void)
        parked = resumeRenewal
        return Effect.sync(() => {
          if (parked === resumeRenewal) parked = undefined
        })
      })
    }
    const left = idleSince + renewMs - clock.unsafeCurrentTimeMillis()
    if (left > 0) return Effect.sleep(Duration.millis(left))
    wake()
    return Effect.void
  })

  return { begin, end, run: Effect.forever(renewal) }
}
