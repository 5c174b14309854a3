/**
 * Single enqueues and completions, made in one event-loop turn, handed to `Operations` together
 * (`enqueueEach`, `completeEach`, `completeAndClaimEach`: one fiber, one submit), each
 * answered and counted on its own: a fiber per request costs more broker CPU than the operation.
 * The edge's transports (REST, RPC over HTTP and over WebSocket) gather their single calls so.
 */
import { EventLoop, type OsqueueError } from "@osqueue/types"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Runtime from "effect/Runtime"

/** Called once with the outcome of one call. */
export type Respond = (exit: Exit.Exit<unknown, OsqueueError>) => void

type RunCallback = ReturnType<typeof Runtime.runCallback<never>>

/** Most calls gathered into one: a burst past it goes in several, never refused whole for its size. */
const maxGathered = 1_000

/**
 * Gathers the calls made in one event-loop turn into one call of `all` on the next (`afterIo`:
 * after the I/O that is ready now is read); each caller gets its own outcome. A gathered call is
 * submitted as it is: a client that hangs up meanwhile gets no answer.
 */
export const gather = <I>(
  runCallback: RunCallback,
  all: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Either.Either<unknown, OsqueueError>>, OsqueueError>
) => {
  let inputs: Array<I> = []
  let responders: Array<Respond> = []
  const flush = () => {
    if (inputs.length === 0) return
    const respond = responders
    const batch = inputs
    inputs = []
    responders = []
    runCallback(all(batch), {
      onExit: (exit) => {
        if (Exit.isFailure(exit)) return respond.forEach((one) => one(exit))
        exit.value.forEach((outcome, i) =>
          respond[i]!(Either.isRight(outcome) ? Exit.succeed(outcome.right) : Exit.fail(outcome.left))
        )
      }
    })
  }
  return (input: I, respond: Respond): void => {
    if (inputs.length === 0) EventLoop.afterIo(flush)
    inputs.push(input)
    responders.push(respond)
    if (inputs.length >= maxGathered) flush()
  }
}
