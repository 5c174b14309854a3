/**
 * The operations behind the REST fast path (`FastRest`): each hot route's body and path decoded
 * by its endpoint's own schemas (taken from `OsqueueApi`), run through `Handlers`, its success
 * encoded by its endpoint's schema. Single enqueues and completions made in one event-loop turn
 * go to `Handlers` together (`enqueueEach`, `completeEach`: one fiber, one submit), each answered
 * on its own, as a fiber per request costs more broker CPU than the operation.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { type EnqueueOptions, EventLoop, type JobId, OsqueueApi, type OsqueueError, Roles } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as ParseResult from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import { type CompleteInput, Handlers } from "../Handlers.js"
import * as HttpChecks from "./HttpChecks.js"

/** Called once with the outcome of a request's operation. */
export type Respond = (exit: Exit.Exit<unknown, OsqueueError>) => void

type Start = (respond: Respond) => void

export interface Route {
  /** What a token's role must allow (`Roles`), as for the HttpApi route. */
  readonly operation: Roles.Operation
  readonly status: number
  /** Decodes the path's `id` (if the route has one) and the body as HttpApi does: the operation, ready to start. */
  readonly prepare: (id: string | undefined, body: unknown) => Either.Either<Start, ParseResult.ParseError>
  readonly encode: (value: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

/**
 * A route over endpoint `name` of `OsqueueApi`'s jobs group. `Path` and `Payload` restate what its
 * schemas decode to (HttpApi's records are not typed per endpoint); the comparison tests hold them
 * to the HttpApi route's answers.
 */
const route = <Path, Payload>(name: string, start: (path: Path, payload: Payload) => Start): Route => {
  const endpoint = OsqueueApi.groups["jobs"]?.endpoints[name]
  // Through the schemas' ASTs: the record's union of every endpoint's types has no common schema type.
  const payload = endpoint?.payloadSchema
  if (endpoint === undefined || payload?._tag !== "Some") throw new Error(`OsqueueApi has no jobs.${name} endpoint with a payload`)
  const operation = Roles.ofEndpoint(name)
  if (operation === undefined) throw new Error(`jobs.${name} is no operation Roles knows`)
  const path = endpoint.pathSchema
  const decodePath = path._tag === "Some" ? Schema.decodeUnknownEither(Schema.make<unknown>(path.value.ast)) : undefined
  const decodePayload = Schema.decodeUnknownEither(Schema.make<unknown>(payload.value.ast))
  const success = Schema.make<unknown>(endpoint.successSchema.ast)
  return {
    operation,
    status: HttpApiSchema.getStatusSuccess(success),
    encode: Schema.encodeUnknownEither(success),
    prepare: (id, body) => {
      const params = decodePath === undefined ? Either.right(undefined) : decodePath({ id })
      if (Either.isLeft(params)) return Either.left(params.left)
      const decoded = decodePayload(body)
      if (Either.isLeft(decoded)) return Either.left(decoded.left)
      return Either.right(start(params.right as Path, decoded.right as Payload))
    }
  }
}

type RunCallback = ReturnType<typeof Runtime.runCallback<never>>

/** Most calls gathered into one: a burst past it goes in several, never refused whole for its size. */
const maxGathered = 1_000

/**
 * Gathers the calls made in one event-loop turn into one call of `all` on the next (`afterIo`:
 * after the I/O that is ready now is read); each caller gets its own outcome.
 */
const gather = <I>(
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
        exit.value.forEach((outcome, i) => respond[i]!(Either.isRight(outcome) ? Exit.succeed(outcome.right) : Exit.fail(outcome.left)))
      }
    })
  }
  return (input: I): Start => (respond) => {
    if (inputs.length === 0) EventLoop.afterIo(flush)
    inputs.push(input)
    responders.push(respond)
    if (inputs.length >= maxGathered) flush()
  }
}

export const make = Effect.gen(function*() {
  const h = yield* Handlers
  const runCallback: RunCallback = Runtime.runCallback(yield* Effect.runtime<never>())
  const alone = (operation: Effect.Effect<unknown, OsqueueError>): Start => (respond) =>
    void runCallback(operation, { onExit: respond })
  const enqueue = gather(runCallback, h.enqueueEach)
  const complete = gather(runCallback, h.completeEach)
  return {
    enqueue: route<void, EnqueueOptions>("enqueue", (_, payload) => enqueue(payload)),
    enqueueMany: route<void, { readonly jobs: ReadonlyArray<EnqueueOptions> }>(
      "enqueueMany",
      (_, payload) => alone(h.enqueueMany(payload.jobs))
    ),
    complete: route<{ readonly id: JobId }, CompleteInput>("complete", (path, payload) => {
      const mismatch = HttpChecks.tokenMismatch(path.id, payload.token)
      return mismatch === undefined ? complete(payload) : (respond) => respond(Exit.fail(mismatch))
    }),
    completeMany: route<void, { readonly items: ReadonlyArray<CompleteInput> }>(
      "completeMany",
      (_, payload) => alone(h.completeMany(payload.items))
    )
  }
})

export type Routes = Effect.Effect.Success<typeof make>
