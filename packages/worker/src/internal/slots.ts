/**
 * The pool's counters, its handler slots, and whoever waits on them (the claim loop for room to
 * claim, shutdown for an empty hand, leased jobs for a handler slot). Plain numbers with short
 * waiter lists: a `SubscriptionRef` stream here cost more CPU per job than the queue's own work.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"

export interface Counts {
  /** Handlers running, at most `concurrency`. */
  readonly handling: number
  /** Jobs leased and waiting for a handler slot (prefetched). */
  readonly waiting: number
  /**
   * Jobs leased: waiting for a slot, being handled, or handled and waiting for the broker to
   * acknowledge the outcome.
   */
  readonly inHand: number
}

interface Waiter {
  readonly until: (counts: Counts) => boolean
  readonly done: Deferred.Deferred<void>
}

/** A leased job's place in line for a handler slot. */
export interface Turn {
  /** Resolves true once the job holds a slot; false if `cancel` came first. */
  readonly granted: Effect.Effect<boolean>
  /** Gives up the place in line (no effect once the slot is granted). */
  readonly cancel: () => void
}

/**
 * Where a leased job stands with the slots: waiting in line for one, handling in one, or past
 * both (its outcome may still be on its way to the broker).
 */
export interface SlotUse {
  stage: "waiting" | "handling" | "past"
  /** Its place in line, once it has asked for a slot (`queue`). */
  turn: Turn | undefined
}

export class Slots {
  private counts: Counts = { handling: 0, waiting: 0, inHand: 0 }
  private waiters: Array<Waiter> = []
  /** Jobs waiting for a handler slot, first come first served. */
  private readonly line: Array<(granted: boolean) => void> = []

  constructor(readonly concurrency: number) {}

  get current(): Counts {
    return this.counts
  }

  /** Adds to the counters (negative to take away) and wakes the waiters whose condition now holds. */
  private add(handling: number, waiting: number, inHand: number): void {
    const { counts } = this
    this.counts = {
      handling: counts.handling + handling,
      waiting: counts.waiting + waiting,
      inHand: counts.inHand + inHand
    }
    if (this.waiters.length === 0) return
    const now = this.counts
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.until(now)) return true
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

  /** A leased job joins the pool: counted in hand, waiting for a slot. */
  enter(): SlotUse {
    this.add(0, 1, 1)
    return { stage: "waiting", turn: undefined }
  }

  /** The job asks for a handler slot (`turn`); holding one, it is `handling`. */
  queue(use: SlotUse): Turn {
    return use.turn = this.turn(() => {
      use.stage = "handling"
    })
  }

  /** The job leaves its slot (to the next job in line) or its place in line; nothing the second time. */
  leave(use: SlotUse): void {
    if (use.stage === "handling") this.release()
    else if (use.stage === "waiting") {
      use.turn?.cancel()
      this.add(0, -1, 0)
    }
    use.stage = "past"
  }

  /** The job leaves the pool: out of its slot or line if still there, and out of hand. */
  exit(use: SlotUse): void {
    this.leave(use)
    this.add(0, 0, -1)
  }

  /**
   * A job counted as waiting takes a handler slot: at once when one is free and nobody is ahead
   * of it, otherwise when a handler ends (`release`). Taking the slot moves the job from
   * `waiting` to `handling` and calls `onGranted` in the same step, so that neither the claim
   * loop nor the job's own bookkeeping ever sees it in both places.
   */
  private turn(onGranted: () => void): Turn {
    if (this.line.length === 0 && this.counts.handling < this.concurrency) {
      this.add(1, -1, 0)
      onGranted()
      return { granted: Effect.succeed(true), cancel: () => {} }
    }
    let settled: boolean | undefined
    let resume: ((effect: Effect.Effect<boolean>) => void) | undefined
    const decide = (granted: boolean) => {
      if (granted) onGranted()
      settled = granted
      resume?.(Effect.succeed(granted))
    }
    this.line.push(decide)
    return {
      granted: Effect.async<boolean>((cb) => {
        if (settled !== undefined) return cb(Effect.succeed(settled))
        resume = cb
      }),
      cancel: () => {
        const at = this.line.indexOf(decide)
        if (at === -1) return
        this.line.splice(at, 1)
        decide(false)
      }
    }
  }

  /** A handler ended: its slot goes to the first job in line, or is free. */
  private release(): void {
    const next = this.line.shift()
    if (next === undefined) return this.add(-1, 0, 0)
    this.add(0, -1, 0)
    next(true)
  }

  /** Every job in line gives up its place (shutdown gives them back to the broker). */
  cancelLine(): void {
    for (const decide of this.line.splice(0)) decide(false)
  }
}
