/**
 * RPC over HTTP as the edge (`Edge`) serves it: one ndjson body of messages, each line checked by
 * `RpcFrames` (depth, shape, id, operation, payload: a bad line is a typed failure of its own
 * request), each request run by its operation (`Rpc.operations`) once the role the edge found
 * may run it, each answer encoded by its RPC's own exit schema (compiled once) and sent in the
 * order they finish, as @effect/rpc's server answers and its clients read. A body whose requests
 * are all answered at once goes out in one write; one with a stream (`Watch`) streams its lines.
 * No @effect/rpc server, client record, mailbox or span per body: a fiber per request.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import type { OsqueueError, Role, Roles } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import type * as Http from "node:http"
import * as Access from "../Access.js"
import { BrokerConfig } from "../BrokerConfig.js"
import * as Queues from "../Queues.js"
import { type AnyOperation, frameLimits, operations } from "./Rpc.js"
import * as Gather from "./Gather.js"
import * as RpcFrames from "./RpcFrames.js"

interface Schemas {
  readonly stream: boolean
  readonly encodeExit: (exit: Exit.Exit<unknown, unknown>) => Either.Either<unknown, unknown>
  readonly encodeChunk: (values: ReadonlyArray<unknown>) => Either.Either<unknown, unknown>
}

const schemasOf = (rpc: Rpc.Any): Schemas => {
  const streamSchemas = RpcSchema.getStreamSchemas((rpc as unknown as Rpc.AnyWithProps).successSchema.ast)
  return {
    stream: Option.isSome(streamSchemas),
    encodeExit: Schema.encodeUnknownEither(Rpc.exitSchema(rpc) as unknown as Schema.Schema<Exit.Exit<unknown, unknown>, unknown>),
    encodeChunk: Schema.encodeUnknownEither(
      Schema.Array(Option.isSome(streamSchemas) ? streamSchemas.value.success : Schema.Any) as unknown as Schema.Schema<ReadonlyArray<unknown>, unknown>
    )
  }
}

/** The answer to a request whose answer could not be encoded: a defect of that request alone. */
const dieAnswer = (requestId: string, defect: string) => ({
  _tag: "Exit",
  requestId,
  exit: { _tag: "Failure", cause: { _tag: "Die", defect } }
})

export const make = Effect.gen(function*() {
  const settings = yield* BrokerConfig
  const limits = frameLimits(settings)
  const runCallback = Runtime.runCallback(yield* Effect.runtime<never>())
  const queues = yield* Queues.Queues
  // Each queue's operations, and its single enqueues and completions gathered (`Gather`), as on REST.
  const tables = new Map(queues.all.map(({ handlers: h, name }) => [name, {
    all: operations(h) as unknown as Record<string, AnyOperation>,
    gathered: {
      Enqueue: Gather.gather(runCallback, h.enqueueEach) as (payload: unknown, respond: Gather.Respond) => void,
      Complete: Gather.gather(runCallback, h.completeEach) as (payload: unknown, respond: Gather.Respond) => void
    } as Record<string, (payload: unknown, respond: Gather.Respond) => void>
  }]))
  const schemas = new Map<string, Schemas>(Array.from(RpcFrames.ServerRpcs.requests.values(), (rpc) => [rpc._tag, schemasOf(rpc)]))
  const serialization = RpcFrames.ndjson(limits)

  /** What refuses a request to `role` (`Access`); `Refused` needs no role: it only fails. */
  const forbiddenTo = (request: RpcMessage, role: Role | undefined) =>
    request.tag === RpcFrames.Refused._tag ? undefined : Access.permit(role, request.tag as Roles.Operation)

  /** Runs a request's operation; `onExit` gets its outcome (a stream's chunks go to `onChunk`). Answers the interrupt. */
  const run = (
    request: RpcMessage,
    rpc: Schemas,
    operation: ReturnType<AnyOperation>,
    onChunk: (values: ReadonlyArray<unknown>) => void,
    onExit: (exit: Exit.Exit<unknown, unknown>) => void
  ) => {
    const effect: Effect.Effect<unknown, OsqueueError> = rpc.stream
      ? Stream.runForEachChunk(operation as Stream.Stream<unknown, OsqueueError>, (chunk) => Effect.sync(() => onChunk(Chunk.toReadonlyArray(chunk))))
      : operation as Effect.Effect<unknown, OsqueueError>
    // The client's span, when it sent one, is the parent of the operation's.
    const traced = request.traceId === undefined || request.spanId === undefined
      ? effect
      : Effect.withParentSpan(effect, Tracer.externalSpan({ traceId: request.traceId, spanId: request.spanId, sampled: request.sampled ?? true }))
    return runCallback(traced, { onExit })
  }

  /** Answers the ndjson body `text`, sent with `role`, on `response` (with `headers`: CORS). */
  return (text: string, role: Role | undefined, response: Http.ServerResponse, headers: Readonly<Record<string, string>> | undefined) => {
    const parser = serialization.unsafeMake()
    const checked: Array<RpcFrames.Checked> = []
    for (const raw of text.split("\n")) {
      const line = raw.trim()
      if (line !== "") checked.push(RpcFrames.checkLine(line, limits))
    }
    const streaming = checked.some(({ message }) => message._tag === "Request" && schemas.get(message.tag)?.stream === true)
    const lines: Array<string> = []
    const running = new Map<string, () => void>()
    let pending = 0
    let launching = true
    let done = false

    const send = (answer: object) => {
      if (done) return
      const line = parser.encode(answer)
      if (line === undefined) return
      const text = typeof line === "string" ? line : new TextDecoder().decode(line)
      if (streaming) response.write(text)
      else lines.push(text)
    }
    const finish = () => {
      if (done || launching || pending > 0) return
      done = true
      if (response.writableEnded || response.destroyed) return
      if (streaming) return response.end()
      const body = lines.join("")
      response.writeHead(200, { "content-type": "application/ndjson", "content-length": String(Buffer.byteLength(body)), ...headers })
      response.end(body)
    }

    // A stream's lines go out as they come; other answers together, once all are in.
    if (streaming) response.writeHead(200, { "content-type": "application/ndjson", ...headers })
    for (const { message, payload } of checked) {
      switch (message._tag) {
        case "Request": {
          const id = message.id
          const rpc = schemas.get(message.tag)!
          let answered = false
          pending++
          const onExit = (exit: Exit.Exit<unknown, unknown>) => {
            answered = true
            pending--
            running.delete(id)
            if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return finish()
            const encoded = rpc.encodeExit(rpc.stream ? Exit.asVoid(exit) : exit)
            send(Either.isRight(encoded) ? { _tag: "Exit", requestId: id, exit: encoded.right } : dieAnswer(id, String(encoded.left)))
            finish()
          }
          // The queue the message names; `Refused` only fails, on any queue's table.
          const queue = queues.resolve(Queues.nameIn(message.headers))
          const unknown = Either.isLeft(queue) && message.tag !== RpcFrames.Refused._tag ? queue.left : undefined
          const forbidden = forbiddenTo(message, role) ?? unknown
          const table = tables.get(Either.isRight(queue) ? queue.right.name : queues.all[0]!.name)!
          const gatheredCall = forbidden === undefined ? table.gathered[message.tag] : undefined
          if (gatheredCall !== undefined) {
            gatheredCall(payload, onExit)
            break
          }
          const cancel = run(
            message,
            rpc,
            forbidden === undefined ? table.all[message.tag]!(payload) : Effect.fail(forbidden),
            (chunk) => {
              const values = rpc.encodeChunk(chunk)
              if (Either.isRight(values)) send({ _tag: "Chunk", requestId: id, values: values.right })
            },
            onExit
          )
          if (!answered) running.set(id, () => cancel())
          break
        }
        case "Interrupt":
          running.get(message.requestId)?.()
          break
        case "Ping":
          send({ _tag: "Pong" })
          break
        // Acks are for streams over WebSocket; HTTP has none (the client does not send them).
      }
    }
    response.once("close", () => {
      if (response.writableFinished) return
      done = true
      for (const cancel of running.values()) cancel()
    })
    launching = false
    finish()
  }
})

type RpcMessage = Extract<RpcFrames.Checked["message"], { readonly _tag: "Request" }>
