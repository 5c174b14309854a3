/**
 * Lease renewal for every job a pool holds, from one fiber: each lease is renewed every third of
 * its length. A renewal fiber per job (forked, scheduled, interrupted) cost more CPU than a
 * short job's whole handling; most jobs end before their first renewal is due.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"

export interface Lease {
  readonly token: string
  /** Renew this often (ms). */
  readonly every: number
  /** When the next renewal is due (ms since epoch, on the Effect clock). */
  due: number
}

/** Renewals due this close together go out in one wake-up. */
const slackMs = 20
/** With nothing held, the loop still looks this often. */
const idleMs = 1_000

export class Renewals {
  private readonly leases = new Set<Lease>()
  private plannedWake = Number.POSITIVE_INFINITY
  private wake = Deferred.unsafeMake<void>(FiberId.none)

  /** Starts renewing `token` (a lease of `ttlMs`, granted at `now`) until `remove`. */
  add(token: string, ttlMs: number, now: number): Lease {
    const every = Math.max(10, Math.floor(ttlMs / 3))
    const lease: Lease = { token, every, due: now + every }
    this.leases.add(lease)
    if (lease.due < this.plannedWake) Deferred.unsafeDone(this.wake, Effect.void)
    return lease
  }

  remove(lease: Lease): void {
    this.leases.delete(lease)
  }

  /** Runs until interrupted, starting `renew` in a fiber of its own for each lease that is due. */
  run(renew: (lease: Lease) => Effect.Effect<void>): Effect.Effect<never> {
    return Effect.gen(this, function*() {
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        let next = now + idleMs
        for (const lease of this.leases) {
          if (lease.due <= now + slackMs) {
            lease.due = now + lease.every
            yield* Effect.fork(renew(lease))
          }
          if (lease.due < next) next = lease.due
        }
        this.plannedWake = next
        this.wake = Deferred.unsafeMake<void>(FiberId.none)
        yield* Effect.raceFirst(Effect.sleep(Duration.millis(next - now)), Deferred.await(this.wake))
      }
    })
  }
}
