/**
 * The commands waiting for the commit loop's next batch, and the loop's one wait for them
 * (docs/architecture.md, "The commit path"). Plain values and callbacks, not a queue, a timeout
 * and a race of fibers: those cost more per commit than a batch of small commands costs to apply.
 */
import type { OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Command } from "../Command.js"

/**
 * What a command's caller is answered: its result or its error. An `Either` is an `Effect` too,
 * so `submit` resumes its caller with it as it stands (no `Exit` made per command and turned back).
 */
export type Outcome = Either.Either<unknown, OsqueueError>

/** A command and how to answer it (a callback: a `Deferred` per command cost more than applying it). */
export interface Pending {
  readonly command: Command
  readonly answer: (outcome: Outcome) => void
  /** Set once answered: a batch failed after a defect is never answered twice. */
  answered?: true
  /** When it was queued (the leader's clock, ms); a held long poll joins its batch without queueing. */
  readonly queuedAt?: number
}

/** Answers each command of `batch` not yet answered with its `outcome`. */
export const answerEach = (batch: ReadonlyArray<Pending>, outcome: (p: Pending, i: number) => Outcome): void =>
  batch.forEach((p, i) => {
    if (p.answered) return
    p.answered = true
    p.answer(outcome(p, i))
  })

export const failAll = (batch: ReadonlyArray<Pending>, error: OsqueueError) =>
  Effect.sync(() => {
    const failed = Either.left(error)
    answerEach(batch, () => failed)
  })

/** Told when the loop begins and ends a wait with nothing in flight (`internal/idleRenewal.ts`). */
export interface IdleWatch {
  readonly begin: () => void
  readonly end: () => void
}

export interface CommandQueue {
  /** Queues a command (and wakes the loop if it waits for one); false when `maxPending` are waiting. */
  readonly offer: (command: Command, answer: Pending["answer"]) => boolean
  /** The oldest commands waiting, at most `max`. */
  readonly take: (max: number) => Array<Pending>
  /** How many commands wait. */
  readonly size: () => number
  /** When the oldest command waiting was queued (the leader's clock, ms), if one waits. */
  readonly oldest: () => number | undefined
  /** Resumes the loop's wait as a command would: the renewal's empty batch. */
  readonly wake: () => void
  /**
   * Resumes once `count` commands are queued (at once if they are), or `also` calls back (a
   * registration that calls back at once if its moment has come). `idle`: nothing is in flight,
   * and it is told when the wait begins and ends.
   */
  readonly arrival: (options: ArrivalOptions) => Effect.Effect<void>
}

/** What a wait for commands also heeds (`CommandQueue.arrival`). */
export interface ArrivalOptions {
  readonly idle?: IdleWatch
  readonly also?: (callback: () => void) => void
  /** Commands to wait for (1 when absent). */
  readonly count?: number
}

/** `now`: the leader's clock, ms. */
export const make = (maxPending: number, now: () => number): CommandQueue => {
  /** Commands waiting for the next batch, oldest first (at most `maxPending`). */
  let pending: Array<Pending> = []
  /** Set while the loop waits for commands: the renewal, or the command that makes them `wakeAt`, resumes it. */
  let wakeup: (() => void) | undefined
  let wakeAt = 1

  const wake = () => {
    const resume = wakeup
    wakeup = undefined
    resume?.()
  }

  const take = (max: number): Array<Pending> => {
    if (pending.length <= max) {
      const all = pending
      pending = []
      return all
    }
    return pending.splice(0, max)
  }

  const offer = (command: Command, answer: Pending["answer"]): boolean => {
    if (pending.length >= maxPending) return false
    pending.push({ command, answer, queuedAt: now() })
    if (pending.length >= wakeAt) wake()
    return true
  }

  const arrival = ({ also, count = 1, idle }: ArrivalOptions): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      let done = false
      const stop = () => {
        done = true
        if (wakeup === go) wakeup = undefined
        idle?.end()
      }
      const go = () => {
        if (done) return
        stop()
        resume(Effect.void)
      }
      if (pending.length >= Math.max(1, count)) return resume(Effect.void)
      wakeup = go
      wakeAt = Math.max(1, count)
      idle?.begin()
      also?.(go)
      return Effect.sync(stop)
    })

  return { offer, take, size: () => pending.length, oldest: () => pending[0]?.queuedAt, wake, arrival }
}
