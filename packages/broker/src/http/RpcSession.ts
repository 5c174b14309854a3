/**
 * The RPC requests of one client, whatever carries them: one ndjson body over HTTP
 * (`RpcOverHttp`), one connection over WebSocket (`RpcOverWebSocket`). Each message, checked by
 * `RpcFrames` (a bad one is a typed failure of its own request), is run by its operation
 * (`Rpc.operations`) on the queue it names (`Queues`) once the role the edge found may run it,
 * and answered with its RPC's own exit schema (compiled once), as @effect/rpc's server answers and its clients read: an `Exit`
 * per request, a `Chunk` per batch of a stream (`Watch`), a `Pong` per `Ping`. An `Interrupt`
 * ends its request, which is answered as interrupted. Over WebSocket a stream waits for the
 * client's `Ack` of each chunk before it sends the next, as @effect/rpc's clients expect (they
 * ack every chunk): a watcher that reads slowly holds its stream, not the broker's memory.
 * No @effect/rpc server, client record, mailbox or span: one fiber per request, the operation's.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import { type OsqueueError, prefersMinimal, type Role, type Roles } from "@osqueue/types"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as Access from "../Access.js"
import * as Queues from "../Queues.js"
import * as Gather from "./Gather.js"
import { type AnyOperation, minimalAnswers, operations } from "./Rpc.js"
import * as RpcFrames from "./RpcFrames.js"

interface Schemas {
  readonly stream: boolean
  /** An answer's exit as the RPC's exit schema encodes it. */
  readonly encodeExit: (exit: Exit.Exit<unknown, unknown>) => Either.Either<ExitEncoded, unknown>
  readonly encodeChunk: (values: ReadonlyArray<unknown>) => Either.Either<unknown, unknown>
}

type ExitEncoded = Schema.ExitEncoded<unknown, unknown, unknown>

const schemasOf = (rpc: Rpc.Any): Schemas => {
  const successSchema = (rpc as unknown as Rpc.AnyWithProps).successSchema
  const streamSchemas = RpcSchema.getStreamSchemas(successSchema.ast)
  const stream = Option.isSome(streamSchemas)
  const encodeAnyExit = Schema.encodeUnknownEither(
    Rpc.exitSchema(rpc) as unknown as Schema.Schema<Exit.Exit<unknown, unknown>, ExitEncoded>
  )
  // A success is encoded as `Schema.Exit` encodes it, `{ _tag: "Success", value }`, by the success
  // schema alone: the walk of the exit's schema (its union, its cause) is for failures. A stream's
  // exit is void: the general path.
  const encodeValue = Schema.encodeUnknownEither(successSchema as Schema.Schema<unknown, unknown>)
  const success = (value: unknown): ExitEncoded => ({ _tag: "Success", value })
  return {
    stream,
    encodeExit: stream
      ? (exit) => encodeAnyExit(Exit.asVoid(exit))
      : (exit) => Exit.isSuccess(exit) ? Either.map(encodeValue(exit.value), success) : encodeAnyExit(exit),
    encodeChunk: Schema.encodeUnknownEither(
      Schema.Array(Option.isSome(streamSchemas) ? streamSchemas.value.success : Schema.Any) as unknown as Schema.Schema<
        ReadonlyArray<unknown>,
        unknown
      >
    )
  }
}

/** The answer to a request whose answer could not be encoded: a defect of that request alone. */
const dieAnswer = (requestId: string, defect: string): RpcFrames.Answer => ({
  _tag: "Exit",
  requestId,
  exit: { _tag: "Failure", cause: { _tag: "Die", defect } }
})

const pong: RpcFrames.Answer = { _tag: "Pong" }

type Request = Extract<RpcFrames.Checked["message"], { readonly _tag: "Request" }>

type Gathered = (payload: unknown, respond: Gather.Respond) => void

/** An operation started by callback: what it returns drops it (nothing: it cannot be dropped). */
type ByCallback = (payload: unknown, respond: Gather.Respond) => (() => void) | undefined

export interface SessionOptions {
  /** The role of the client's token (`HttpChecks.admitter`): what each request is checked against (`Access`). */
  readonly role: Role | undefined
  /** The queue of a message that names none (over WebSocket, the upgrade's `osqueue-queue` header); none: the default queue. */
  readonly queue: string | undefined
  /** Sends one answer; called until the session ends. */
  readonly send: (answer: RpcFrames.Answer) => void
  /** Whether each chunk of a stream waits for the client's `Ack` (WebSocket) or not (HTTP, which has none). */
  readonly acks: boolean
  /** Called after each request's `Exit` was sent. */
  readonly onAnswered?: () => void
}

export interface Session {
  /** Runs a request, interrupts one, acks a chunk or answers a ping. */
  readonly receive: (checked: RpcFrames.Checked) => void
  /** Requests not answered yet. */
  readonly pending: () => number
  /**
   * Whether the client's leaving would cut something short: a request that runs on its own (a
   * long poll, a stream, any call not gathered). Gathered calls commit whatever the client does.
   */
  readonly interruptible: () => boolean
  /** The client is gone: what runs is interrupted, nothing more is sent. */
  readonly end: () => void
}

export const make = Effect.gen(function*() {
  const runCallback = Runtime.runCallback(yield* Effect.runtime<never>())
  const queues = yield* Queues.Queues
  // Each queue's operations, and its single enqueues and completions (claiming next or not) of one
  // event-loop turn in one submit (`Gather`), as on REST.
  const tables = new Map(queues.all.map(({ operations: h, name }) => [name, {
    all: operations(h) as unknown as Record<string, AnyOperation>,
    gathered: {
      Enqueue: Gather.gather(runCallback, h.enqueueEach),
      Complete: Gather.gather(runCallback, h.completeEach),
      CompleteAndClaim: Gather.gather(runCallback, h.completeAndClaimEach)
    } as Record<string, Gathered>,
    // A claim, by callback (`Operations.claimWith`): no fiber of its own.
    byCallback: { Claim: h.claimWith } as Record<string, ByCallback>
  }]))
  const schemas = new Map<string, Schemas>(
    Array.from(RpcFrames.ServerRpcs.requests.values(), (rpc) => [rpc._tag, schemasOf(rpc)])
  )

  /** What refuses a request to `role` (`Access`); `Refused` needs no role: it only fails. */
  const forbiddenTo = (request: Request, role: Role | undefined) =>
    request.tag === RpcFrames.Refused._tag ? undefined : Access.permit(role, request.tag as Roles.Operation)

  /** Whether the operation `tag` answers with a stream (a checked request's tag is always known). */
  const isStream = (tag: string): boolean => schemas.get(tag)?.stream === true

  const start = (options: SessionOptions): Session => {
    const { acks, role, send } = options
    /**
     * Interrupts a running request, by id. Made with the first such request: a body of RPC over
     * HTTP is a session of its own, and most hold gathered calls alone.
     */
    let running: Map<string, () => void> | undefined
    const keep = (id: string, stop: () => void) => (running ??= new Map()).set(id, stop)
    /** Resumes a stream whose last chunk awaits the client's `Ack`, by id (with acks alone). */
    const unacked = acks ? new Map<string, () => void>() : undefined
    let pending = 0
    let ended = false

    /** A stream's chunk: sent, then (with acks) the next waits for the client's `Ack`. */
    const chunkSender = (id: string, rpc: Schemas) => (chunk: Chunk.Chunk<unknown>): Effect.Effect<void> => {
      const values = rpc.encodeChunk(Chunk.toReadonlyArray(chunk))
      if (Either.isLeft(values) || ended) return Effect.void
      const answer = { _tag: "Chunk", requestId: id, values: values.right } as RpcFrames.Answer
      if (!acks) return Effect.sync(() => send(answer))
      return Effect.async<void>((resume) => {
        unacked!.set(id, () => resume(Effect.void))
        send(answer)
        return Effect.sync(() => unacked!.delete(id))
      })
    }

    const run = (request: Request, payload: unknown) => {
      const id = request.id
      const rpc = schemas.get(request.tag)!
      pending++
      let answered = false
      const onExit = (exit: Exit.Exit<unknown, unknown>) => {
        answered = true
        pending--
        running?.delete(id)
        if (ended) return
        const encoded = rpc.encodeExit(exit)
        send(
          Either.isRight(encoded)
            ? { _tag: "Exit", requestId: id, exit: encoded.right }
            : dieAnswer(id, String(encoded.left))
        )
        options.onAnswered?.()
      }
      // The queue the message names, else the session's; `Refused` only fails, on any queue's table.
      const queue = queues.resolve(Queues.nameIn(request.headers) ?? options.queue)
      const unknown = Either.isLeft(queue) && request.tag !== RpcFrames.Refused._tag ? queue.left : undefined
      const forbidden = forbiddenTo(request, role) ?? unknown
      const table = tables.get(Either.isRight(queue) ? queue.right.name : queues.all[0]!.name)!
      const gatheredCall = forbidden === undefined ? table.gathered[request.tag] : undefined
      if (gatheredCall !== undefined) return gatheredCall(payload, onExit)
      // With the client's span to parent it, the operation runs as an effect (below).
      const byCallback = forbidden === undefined && request.traceId === undefined
        ? table.byCallback[request.tag]
        : undefined
      if (byCallback !== undefined) {
        const drop = byCallback(payload, onExit)
        if (!answered && drop !== undefined) keep(id, drop)
        return
      }
      const operation = forbidden === undefined ? table.all[request.tag]!(payload) : Effect.fail(forbidden)
      const minimal = minimalAnswers[request.tag]
      const effect: Effect.Effect<unknown, OsqueueError> = rpc.stream
        ? Stream.runForEachChunk(operation as Stream.Stream<unknown, OsqueueError>, chunkSender(id, rpc))
        : minimal !== undefined && prefersMinimal(request.headers)
        ? Effect.map(operation as Effect.Effect<unknown, OsqueueError>, minimal)
        : operation as Effect.Effect<unknown, OsqueueError>
      // The client's span, when it sent one, is the parent of the operation's.
      const traced = request.traceId === undefined || request.spanId === undefined
        ? effect
        : Effect.withParentSpan(
          effect,
          Tracer.externalSpan({ traceId: request.traceId, spanId: request.spanId, sampled: request.sampled ?? true })
        )
      const cancel = runCallback(traced, { onExit })
      if (!answered) keep(id, () => cancel())
    }

    return {
      receive: ({ message, payload }) => {
        switch (message._tag) {
          case "Request":
            return run(message, payload)
          case "Interrupt":
            return running?.get(message.requestId)?.()
          case "Ack": {
            const resume = unacked?.get(message.requestId)
            unacked?.delete(message.requestId)
            return resume?.()
          }
          case "Ping":
            return send(pong)
            // `RpcFrames` turns a client's Eof into a refused request: none reaches here.
        }
      },
      pending: () => pending,
      interruptible: () => running !== undefined && running.size > 0,
      end: () => {
        if (ended) return
        ended = true
        if (running !== undefined) { for (const cancel of Array.from(running.values())) cancel() }
      }
    }
  }

  return { start, isStream } as const
})

/** Sessions over one set of operations and gathered calls: see `make`. */
export type Sessions = Effect.Effect.Success<typeof make>
