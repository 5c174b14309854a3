/**
 * Long-poll claims held by the commit loop (docs/architecture.md, "Long-poll claims"). A claim
 * with a wait that finds nothing claimable is held here: an entry in a set and one sleeping
 * timer, no command and no work per commit beyond a lookup per list of types. Each batch, once
 * its commands are applied, takes the held claims a job is claimable for now (`claimInto`), so
 * they are answered with the very commit that made the job claimable. A held claim also goes in
 * the next batch when a delayed job, a lease or a rate limit's window comes due, and is answered
 * `[]` at its deadline.
 */
import type { OsqueueError } from "@osqueue/types"
import * as Either from "effect/Either"
import type { Command, ResultOf } from "../Command.js"
import * as LeaseSecret from "../LeaseSecret.js"
import type { QueueState } from "../QueueState.js"
import type { Pending } from "./commandQueue.js"
import type * as Timers from "./timers.js"

export type ClaimCommand = Extract<Command, { readonly _tag: "Claim" }>
type Claimed = ResultOf<ClaimCommand>
type Answer = Pending["answer"]

/** A claim that waits. */
interface Held {
  readonly command: ClaimCommand
  /** Its types as one string: claims for the same types share one check per batch. */
  readonly key: string
  /** The leader's clock, ms. */
  readonly deadline: number
  readonly resume: (outcome: Either.Either<Claimed, OsqueueError>) => void
  /** Stops the timer that wakes it at its deadline, or its next wake-up before it. */
  timer: (() => void) | undefined
  /** The wake-up it last went to a batch for: one try per wake-up. */
  triedWake: number | undefined
  /** Answered, or its caller is gone: nothing more is done for it. */
  done: boolean
}

/** A claim whose wake-up came but found nothing waits at least this long before it looks again. */
const minRecheckMs = 25

export interface LongPolls {
  /**
   * The claim, answered (`answer`, once) when a batch claims a job for it, or `[]` at `waitMs`:
   * in the next batch when a job is claimable for it now, else held. What it returns drops it,
   * its caller gone. A callback, not an effect: a held claim needs no fiber of its caller's.
   */
  readonly wait: (
    command: ClaimCommand,
    waitMs: number,
    answer: (outcome: Either.Either<Claimed, OsqueueError>) => void
  ) => () => void
  /**
   * Applies, after a batch's commands, each held claim a job is claimable for (oldest first);
   * each joins the batch, with its outcome, and is answered with it.
   */
  readonly claimInto: (
    state: QueueState,
    now: number,
    batch: Array<Pending>,
    results: Array<Either.Either<unknown, OsqueueError>>
  ) => void
  /** Answers every held claim with `error` (the broker stops leading, or hands over). */
  readonly refuseAll: (error: OsqueueError) => void
}

export const make = (options: {
  /** The state as it stands (with the batches in flight). */
  readonly current: () => QueueState
  /** The leader's clock, ms. */
  readonly now: () => number
  /** Queues a command for the next batch; false when the queue is full. */
  readonly offer: (command: Command, answer: Answer) => boolean
  /** Whether a claim that found nothing may be held again (the loop still takes commands). */
  readonly accepting: () => boolean
  /** The error for a claim the queue has no room for. */
  readonly overloaded: () => OsqueueError
  /** The timer of a held claim, on the leader's clock. */
  readonly after: Timers.After
  /** Told of a claim held as it comes (no command queued for it): the commit loop's `claimHeld`. */
  readonly heldOnArrival: () => void
}): LongPolls => {
  const { after, current, now } = options
  const held = new Set<Held>()

  const stopTimer = (h: Held) => {
    h.timer?.()
    h.timer = undefined
  }

  const finish = (h: Held, outcome: Either.Either<Claimed, OsqueueError>) => {
    if (h.done) return
    h.done = true
    held.delete(h)
    stopTimer(h)
    h.resume(outcome)
  }

  /** Its answer as a command of a batch: a claim that found nothing, with time left, is held again. */
  const answerOf = (h: Held): Answer => (outcome) => {
    if (h.done) return
    if (
      Either.isRight(outcome) && (outcome.right as Claimed).length === 0 && options.accepting() && now() < h.deadline
    ) {
      return hold(h)
    }
    finish(h, outcome as Either.Either<Claimed, OsqueueError>)
  }

  /** Sends the claim in the next batch. */
  const send = (h: Held) => {
    held.delete(h)
    stopTimer(h)
    if (!options.offer(h.command, answerOf(h))) finish(h, Either.left(options.overloaded()))
  }

  /** Holds the claim until a batch finds it a job, its next wake-up, or its deadline. */
  const hold = (h: Held) => {
    const at = now()
    if (at >= h.deadline) return finish(h, Either.right([]))
    const wake = current().nextWakeup(at)
    // A wake-up due now (a delayed job, an expired lease, a rate limit's window): the next
    // batch's tick makes its job claimable.
    if (wake !== undefined && wake <= at && wake !== h.triedWake) {
      h.triedWake = wake
      return send(h)
    }
    held.add(h)
    const until = wake !== undefined && wake > at ? Math.min(wake, h.deadline) : h.deadline
    h.timer = after(Math.max(until - at, Math.min(minRecheckMs, h.deadline - at)), () => {
      h.timer = undefined
      if (held.has(h)) hold(h)
    })
  }

  const wait: LongPolls["wait"] = (command, waitMs, answer) => {
    const at = now()
    const h: Held = {
      command,
      key: command.types === undefined ? "\u0001any" : command.types.join("\u0000"),
      deadline: at + waitMs,
      resume: answer,
      timer: undefined,
      triedWake: undefined,
      done: false
    }
    if (current().hasClaimable(command.types, at)) send(h)
    else {
      hold(h)
      if (held.has(h)) options.heldOnArrival()
    }
    return () => {
      h.done = true
      held.delete(h)
      stopTimer(h)
    }
  }

  const claimInto: LongPolls["claimInto"] = (state, at, batch, results) => {
    if (held.size === 0) return
    const claimable = new Map<string, boolean>()
    for (const h of held) {
      let can = claimable.get(h.key)
      if (can === undefined) claimable.set(h.key, can = state.hasClaimable(h.command.types, at))
      if (!can) continue
      held.delete(h)
      stopTimer(h)
      results.push(state.apply(h.command, at, LeaseSecret.random))
      batch.push({ command: h.command, answer: answerOf(h) })
      // What this claim took, the next may not find.
      claimable.clear()
    }
  }

  const refuseAll = (error: OsqueueError) => {
    const refused = Either.left(error)
    for (const h of Array.from(held)) finish(h, refused)
  }

  return { wait, claimInto, refuseAll }
}
