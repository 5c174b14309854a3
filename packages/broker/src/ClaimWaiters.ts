/**
 * Long-poll claims while they wait (docs/architecture.md, "Long-poll claims"): a waiting claim
 * is an entry in a set, not a fiber woken by every commit. After each durable commit one fiber
 * asks the state, once per distinct list of types, whether a claim could find a job, and wakes
 * only the claims that could. A thousand idle workers cost a set lookup per commit.
 */
import type { GroupCommit } from "@osqueue/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

interface Waiter {
  readonly types: ReadonlyArray<string> | undefined
  /** The types as one string: waiters for the same types share one check. */
  readonly key: string
  readonly wake: () => void
}

export interface ClaimWaiters {
  /**
   * Completes when a commit after `seq` may have made a job claimable for `types`, or after
   * `waitMs`, or when the broker closes.
   */
  readonly wait: (types: ReadonlyArray<string> | undefined, seq: number, waitMs: number) => Effect.Effect<void>
  /** Wakes every waiter, and from now on answers every wait at once (the broker is closing). */
  readonly wakeAll: Effect.Effect<void>
}

export const make = (commit: GroupCommit.GroupCommitShape): Effect.Effect<ClaimWaiters, never, Scope.Scope> =>
  Effect.gen(function*() {
    const waiters = new Set<Waiter>()
    /** The seq of the last commit whose check has run: a waiter that read an older one missed it. */
    let checked = yield* commit.read((state) => state.seq)
    let closed = false

    // A job that ends frees a slot of a concurrency limit: its commit wakes the claims it concerns.
    // A rate limit's window frees one with no commit: the waiting claim wakes at `nextWakeup`.
    const check = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      commit.read((state) => {
        const claimable = new Map<string, boolean>()
        for (const waiter of waiters) {
          let can = claimable.get(waiter.key)
          if (can === undefined) claimable.set(waiter.key, can = state.hasClaimable(waiter.types, now))
          if (can) {
            waiters.delete(waiter)
            waiter.wake()
          }
        }
        checked = state.seq
      }))

    yield* Effect.suspend(() => commit.commitAfter(checked)).pipe(
      Effect.zipRight(check),
      Effect.forever,
      Effect.forkScoped,
      Effect.interruptible
    )

    const wait = (types: ReadonlyArray<string> | undefined, seq: number, waitMs: number) =>
      Effect.async<void>((resume) => {
        // A commit checked since `seq` was read: this waiter missed its wake-up, so it looks again now.
        if (checked > seq || closed) return resume(Effect.void)
        const waiter: Waiter = {
          types,
          key: types === undefined ? "\u0001any" : types.join("\u0000"),
          wake: () => resume(Effect.void)
        }
        waiters.add(waiter)
        return Effect.sync(() => waiters.delete(waiter))
      }).pipe(
        Effect.timeoutTo({ duration: Duration.millis(waitMs), onTimeout: () => undefined, onSuccess: () => undefined })
      )

    const wakeAll = Effect.sync(() => {
      closed = true
      for (const waiter of waiters) waiter.wake()
      waiters.clear()
    })

    return { wait, wakeAll }
  })
