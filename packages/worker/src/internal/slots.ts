/**
 * The pool's two counters and whoever waits on them (the claim loop for a free slot, shutdown
 * for an empty hand). Plain numbers with a short waiter list: a `SubscriptionRef` stream here
 * cost more CPU per job than the queue's own work.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"

export interface Counts {
  /** Handlers running, at most `concurrency`. */
  readonly handling: number
  /** Jobs leased: being handled, or handled and waiting for the broker to acknowledge the outcome. */
  readonly inHand: number
}

interface Waiter {
  readonly until: (counts: Counts) => boolean
  readonly done: Deferred.Deferred<void>
}

export class Slots {
  private counts: Counts = { handling: 0, inHand: 0 }
  private waiters: Array<Waiter> = []

  get current(): Counts {
    return this.counts
  }

  /** Adds to the counters (negative to take away) and wakes the waiters whose condition now holds. */
  add(handling: number, inHand: number): void {
    this.counts = { handling: this.counts.handling + handling, inHand: this.counts.inHand + inHand }
    if (this.waiters.length === 0) return
    const counts = this.counts
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.until(counts)) return true
      Deferred.unsafeDone(waiter.done, Effect.void)
      return false
    })
  }

  /** Completes once `until` holds (at once if it does now). */
  waitUntil(until: (counts: Counts) => boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (until(this.counts)) return Effect.void
      const done = Deferred.unsafeMake<void>(FiberId.none)
      this.waiters.push({ until, done })
      return Effect.onInterrupt(Deferred.await(done), () =>
        Effect.sync(() => {
          this.waiters = this.waiters.filter((waiter) => waiter.done !== done)
        }))
    })
  }
}
