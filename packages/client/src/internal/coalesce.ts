/**
 * Sends the calls made during one turn of the event loop as one batch call. Sixteen producers
 * that each enqueue one job, or a worker pool completing sixteen jobs, then cost one request
 * and one answer instead of sixteen: per-call CPU on both sides, not the queue's work, is what
 * bounds throughput. Latency grows by at most one turn of the event loop; a call alone in its turn is
 * sent as it is.
 */
import { EventLoop } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

export interface CoalesceOptions<A, B, E> {
  /** Most items in one batch call; more calls in one turn make several batches. */
  readonly maxItems: number
  /** One call for one item. */
  readonly single: (item: A) => Effect.Effect<B, E>
  /** One call for many items, answering each in order; a failure fails every item. */
  readonly batch: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Exit.Exit<B, E>>, E>
  /**
   * Whether a batch that failed as a whole may have failed because of one of its items (a batch
   * too large for the broker, a job the broker refused): each item is then sent alone, so every
   * caller gets its own answer. Only for batches that are all-or-nothing on the broker.
   */
  readonly retryAlone: (error: E) => boolean
  /**
   * Whether an item that failed inside a batch that succeeded is sent again alone, through
   * `single` and its retries (a batch answers per item, so an item's retryable error would
   * otherwise end that call without the retry a single call gets).
   */
  readonly retryItem?: ((error: E) => boolean) | undefined
}

/** A caller waiting for its answer (its fiber's resume: a `Deferred` per call cost more than the call). */
interface Waiting<A, B, E> {
  readonly item: A
  readonly resume: (exit: Exit.Exit<B, E>) => void
}

/** A function with the signature of `single` that coalesces; its batches live as long as the scope. */
export const make = <A, B, E>(
  options: CoalesceOptions<A, B, E>
): Effect.Effect<(item: A) => Effect.Effect<B, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<never>()
    let waiting: Array<Waiting<A, B, E>> = []

    const alone = (entry: Waiting<A, B, E>) => Effect.map(Effect.exit(options.single(entry.item)), entry.resume)

    const answer = (entries: ReadonlyArray<Waiting<A, B, E>>, exitOf: (i: number) => Exit.Exit<B, E>) =>
      Effect.sync(() => entries.forEach((entry, i) => entry.resume(exitOf(i))))

    const send = (entries: ReadonlyArray<Waiting<A, B, E>>): Effect.Effect<void> =>
      entries.length === 1
        ? alone(entries[0]!)
        : options.batch(entries.map((entry) => entry.item)).pipe(
          Effect.matchCauseEffect({
            onSuccess: (exits) => {
              const again: Array<Waiting<A, B, E>> = []
              entries.forEach((entry, i) => {
                const exit = exits[i]!
                const retry = options.retryItem !== undefined && Exit.isFailure(exit) &&
                  Option.exists(Cause.failureOption(exit.cause), options.retryItem)
                if (retry) again.push(entry)
                else entry.resume(exit)
              })
              return Effect.forEach(again, alone, { concurrency: "unbounded", discard: true })
            },
            onFailure: (cause) => {
              const error = Cause.failureOption(cause)
              return error._tag === "Some" && options.retryAlone(error.value)
                ? Effect.forEach(entries, alone, { concurrency: "unbounded" })
                : answer(entries, () => Exit.failCause(cause))
            }
          }),
          Effect.asVoid
        )

    const flush = () => {
      const entries = waiting
      waiting = []
      for (let from = 0; from < entries.length; from += options.maxItems) {
        const part = entries.slice(from, from + options.maxItems)
        // A batch cut short (the client closing) must not leave its callers waiting forever.
        run(Effect.onInterrupt(send(part), () => answer(part, () => Exit.interrupt(FiberId.none))))
      }
    }

    return (item: A) =>
      Effect.async<B, E>((resume) => {
        // A caller interrupted meanwhile is not resumed (Effect.async ignores a late resume).
        if (waiting.push({ item, resume }) === 1) EventLoop.afterIo(flush)
      })
  })

/** Each answer of a batch call as an `Exit`, for `CoalesceOptions.batch`. */
export const succeedEach = <B, E>(answers: ReadonlyArray<B>): ReadonlyArray<Exit.Exit<B, E>> =>
  answers.map((answer) => Exit.succeed(answer))
