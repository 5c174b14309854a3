/**
 * A WebSocket client's calls sent as frames of their own, on the socket that @effect/rpc's client
 * keeps. That client spends about 43 µs of CPU a call above the socket and the JSON: a fiber forked
 * to send each request, a fiber per answer frame, the exit decoded as an Effect (docs/performance.md,
 * "The client's CPU per call, layer by layer"). Here a call is its payload encoded and one `send`;
 * its answer is decoded and resumed in the socket's own message callback. The wire is the same
 * (@effect/rpc's JSON messages), so the broker sees no difference.
 *
 * @effect/rpc's client still owns the socket: it opens and reopens it, pings it, and runs the
 * streams (`Watch`), whose chunks it acknowledges. These calls follow the socket as it does: they
 * wait while it first opens, fail at once (`RpcClientError`, read as `BrokerUnreachable`) while
 * it is down, and fail when the socket they were sent on closes, as its requests do.
 */
import type * as Socket from "@effect/platform/Socket"
import * as Rpc from "@effect/rpc/Rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import { OsqueueRpcs } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import type { OsqueueRpcClient } from "../Transport.js"

type AnyRpc = Rpc.Any & {
  readonly _tag: string
  readonly payloadSchema: Schema.Schema<unknown, unknown> & { readonly make?: (payload: unknown) => unknown }
}

interface Codec {
  readonly encode: (payload: unknown) => Either.Either<unknown, unknown>
  readonly decode: (exit: unknown) => Either.Either<Exit.Exit<unknown, unknown>, unknown>
}

/** Each call's payload encoder and exit decoder, compiled once: the same schemas @effect/rpc's client runs per call. */
const codecs: ReadonlyMap<string, Codec> = new Map(
  Array.from(OsqueueRpcs.requests.values() as Iterable<AnyRpc>, (rpc): [string, Codec] => {
    const encode = Schema.encodeUnknownEither(rpc.payloadSchema)
    const make = rpc.payloadSchema.make
    return [rpc._tag, {
      encode: make === undefined ? encode : (payload) => encode(make(payload)),
      decode: Schema.decodeUnknownEither(
        Rpc.exitSchema(rpc) as unknown as Schema.Schema<Exit.Exit<unknown, unknown>, unknown>
      )
    }]
  })
)

/** `WebSocket.OPEN`, in browsers and in `ws` alike. */
const open = 1

/**
 * Request ids of 19 digits from 8×10^18: @effect/rpc's client numbers its requests from 0 per
 * process and never reaches them, and the broker reads any id below 2^63.
 */
const idOf = (n: number): string => `8${String(n).padStart(18, "0")}`

/** An answer frame that can hold one of these calls' exits; a stream's chunks never do. */
const mayAnswer = (text: string): boolean => !text.startsWith(`{"_tag":"Chunk"`)

/** What `Socket.WebSocketConstructor` provides. */
type Construct = (url: string, protocols?: string | Array<string> | undefined) => globalThis.WebSocket

interface InFlight {
  readonly socket: globalThis.WebSocket
  readonly codec: Codec
  readonly resume: (effect: Effect.Effect<unknown, unknown>) => void
}

export interface SocketCalls {
  /** The WebSocket constructor, each socket it makes followed here. */
  readonly follow: (construct: Construct) => Construct
  /** The socket, its answers to these calls taken before @effect/rpc's protocol reads the rest. */
  readonly intercept: (socket: Socket.Socket) => Socket.Socket
  /** `rpc` with every call but its streams sent here; with `tracing`, each in a span as `rpc` makes them. */
  readonly client: (rpc: OsqueueRpcClient, tracing: boolean) => OsqueueRpcClient
}

export const make = (): SocketCalls => {
  let current: globalThis.WebSocket | undefined
  /** Why the current socket is down, until it opens again. */
  let down: RpcClientError | undefined
  let sent = 0
  const inFlight = new Map<string, InFlight>()
  const waiting = new Set<(ready: RpcClientError | undefined) => void>()

  const failSentOn = (socket: globalThis.WebSocket, error: Effect.Effect<never, unknown>) => {
    for (const [id, call] of inFlight) {
      if (call.socket !== socket) continue
      inFlight.delete(id)
      call.resume(error)
    }
  }

  const closed = (socket: globalThis.WebSocket, error: RpcClientError) => {
    failSentOn(socket, Effect.fail(error))
    if (socket !== current) return
    down = error
    for (const wait of waiting) wait(error)
    waiting.clear()
  }

  const follow: SocketCalls["follow"] = (construct) => (url, protocols) => {
    const socket = construct(url, protocols)
    // Calls sent on an earlier socket can no longer be answered: they fail as its close would.
    const replaced = current
    current = socket
    if (replaced !== undefined) {
      failSentOn(replaced, Effect.fail(new RpcClientError({ reason: "Protocol", message: "the socket was replaced" })))
    }
    socket.addEventListener("open", () => {
      if (socket !== current) return
      down = undefined
      for (const wait of waiting) wait(undefined)
      waiting.clear()
    })
    // A refused upgrade is an error, then a close (1006): the error says why (a 401 is read as
    // `Unauthorized`), so the socket's first failure is the one its calls are given.
    let failed = false
    const fail = (cause: unknown, message: string) => {
      if (failed) return
      failed = true
      closed(socket, new RpcClientError({ reason: "Protocol", message, cause }))
    }
    socket.addEventListener("error", (event) => fail(event, "Error in socket"))
    socket.addEventListener("close", (event) => fail(event, `the socket closed (${event.code})`))
    return socket
  }

  const answer = (message: unknown): void => {
    if (typeof message !== "object" || message === null) return
    const { _tag, requestId } = message as { readonly _tag?: unknown; readonly requestId?: unknown }
    if (_tag === "Defect") {
      if (current !== undefined) failSentOn(current, Effect.die((message as { readonly defect?: unknown }).defect))
      return
    }
    if (_tag !== "Exit" || typeof requestId !== "string") return
    const call = inFlight.get(requestId)
    if (call === undefined) return
    inFlight.delete(requestId)
    const exit = call.codec.decode((message as { readonly exit?: unknown }).exit)
    call.resume(Either.isRight(exit) ? exit.right : Effect.die(exit.left))
  }

  /** Returns whether the frame held only answers of these calls, which @effect/rpc's protocol must not see. */
  const taken = (data: unknown): boolean => {
    if (typeof data !== "string" || !mayAnswer(data) || inFlight.size === 0) return false
    let message: unknown
    try {
      message = JSON.parse(data)
    } catch {
      return false
    }
    if (Array.isArray(message)) {
      message.forEach(answer)
      return false
    }
    const id = (message as { readonly requestId?: unknown } | null)?.requestId
    const ours = typeof id === "string" && inFlight.has(id)
    answer(message)
    return ours
  }

  const intercept: SocketCalls["intercept"] = (socket) => ({
    ...socket,
    runRaw: (handler, options) => socket.runRaw((data) => (taken(data) ? undefined : handler(data)), options)
  })

  const call = (tag: string, payload: unknown, headers: unknown, span: Tracer.Span | undefined) =>
    Effect.withFiberRuntime<unknown, unknown>((fiber) =>
      Effect.async((resume) => {
        const codec = codecs.get(tag)!
        const encoded = codec.encode(payload)
        if (Either.isLeft(encoded)) return resume(Effect.die(encoded.left))
        const id = idOf(++sent)
        const text = JSON.stringify({
          _tag: "Request",
          id,
          tag,
          payload: encoded.right,
          headers: headers === undefined ? [] : Object.entries(headers as Record<string, string>),
          ...(span === undefined ? {} : { traceId: span.traceId, spanId: span.spanId, sampled: span.sampled })
        })
        let written = false
        const write = () => {
          const call = inFlight.get(id)
          if (call === undefined) return
          written = true
          call.socket.send(text)
        }
        const send = (error: RpcClientError | undefined) => {
          if (error !== undefined) return resume(Effect.fail(error))
          inFlight.set(id, { socket: current!, codec, resume })
          // Written when the fibers run now have run, as @effect/rpc's client writes from a fiber
          // of its own: the calls of one turn then reach the broker together, and its batch with them.
          fiber.currentScheduler.scheduleTask(write, 0)
        }
        if (down !== undefined) return resume(Effect.fail(down))
        if (current?.readyState === open) send(undefined)
        else waiting.add(send)
        return Effect.sync(() => {
          waiting.delete(send)
          const call = inFlight.get(id)
          if (call === undefined) return
          inFlight.delete(id)
          // The broker stops the request's work, as for @effect/rpc's client's interrupted calls.
          if (written && call.socket.readyState === open) {
            call.socket.send(JSON.stringify({ _tag: "Interrupt", requestId: id }))
          }
        })
      })
    )

  const client: SocketCalls["client"] = (rpc, tracing) => {
    const calls: Record<string, unknown> = {}
    for (const { _tag, successSchema } of OsqueueRpcs.requests.values()) {
      calls[_tag] = RpcSchema.isStreamSchema(successSchema)
        ? rpc[_tag as keyof OsqueueRpcClient]
        : (payload: unknown, options?: { readonly headers?: unknown }) =>
          tracing
            ? Effect.useSpan(`RpcClient.${_tag}`, { captureStackTrace: false }, (span) =>
              call(_tag, payload, options?.headers, span))
            : call(_tag, payload, options?.headers, undefined)
    }
    // Each entry is the call `rpc` has under that tag, with its payload, success and error types:
    // only the generic walk above cannot say so.
    return calls as unknown as OsqueueRpcClient
  }

  return { follow, intercept, client }
}
