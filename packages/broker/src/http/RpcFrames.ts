/**
 * Every RPC message a client sends passes here before it is run (`RpcSession`): each line of an
 * HTTP body (ndjson) and each WebSocket frame (JSON) is checked — nesting depth before parsing,
 * the message's shape, its id, its operation, its payload against that operation's schema — and
 * a bad one becomes a request for `Refused`, an operation the server alone knows, which fails
 * with the tagged error naming the problem. So a client's
 * mistake is answered as a typed failure of its own request on both transports (never a Defect,
 * which fails everything the connection has in flight), and only well-formed requests reach the
 * handlers. A message whose request id cannot be read is answered for request id -1 (a client
 * never uses it), as JSON-RPC answers a parse error for id null. Answers are capped in bytes: one
 * HTTP body's answers together, and each WebSocket answer alone (docs/architecture.md,
 * "Hostile input").
 */
import * as Rpc from "@effect/rpc/Rpc"
import type * as RpcMessage from "@effect/rpc/RpcMessage"
import { clipped, InvalidRequest, Json, OsqueueError, OsqueueRpcs, PayloadTooLarge } from "@osqueue/types"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** The operation a refused message becomes: it fails with the error it carries. */
export const Refused = Rpc.make("osqueue.Refused", { payload: { error: OsqueueError }, error: OsqueueError })

/** `OsqueueRpcs` and `Refused`: what the broker serves. Clients know only `OsqueueRpcs`. */
export const ServerRpcs = OsqueueRpcs.add(Refused)

export interface FrameLimits {
  /** Most levels of arrays and objects in one line or frame. */
  readonly maxJsonDepth: number
  /** Most bytes of answers to one HTTP body, or of one WebSocket answer (stream chunks aside). */
  readonly maxAnswerBytes: number
}

/** Most lines (requests) in one HTTP body: the gate refuses a longer body whole (`countLines`). */
export const maxRequestsPerBody = 1_000

/** Non-blank lines of an ndjson body, counted without parsing them. */
export const countLines = (text: string): number => {
  let lines = 0
  let blank = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) {
      if (!blank) lines++
      blank = true
    } else if (c !== 32 && c !== 13 && c !== 9) {
      blank = false
    }
  }
  return blank ? lines : lines + 1
}

/** The request id a refusal is sent under when the message's own cannot be read. */
export const unreadableId = "-1"

/** Longest error message sent back: a schema's account of a large value is cut here. */
const maxMessageLength = 2_000

const encodeError = Schema.encodeSync(OsqueueError)

const refusal = (id: string, error: OsqueueError): RpcMessage.RequestEncoded => ({
  _tag: "Request",
  id,
  tag: Refused._tag,
  payload: { error: encodeError(error) },
  headers: []
})

const invalid = (id: string, message: string): RpcMessage.RequestEncoded =>
  refusal(
    id,
    new InvalidRequest({
      message: message.length > maxMessageLength ? `${message.slice(0, maxMessageLength)}…` : message
    })
  )

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Request ids are decimal integers (the server reads them as BigInt). */
const isRequestId = (u: unknown): u is string => typeof u === "string" && /^\d{1,20}$/.test(u)

const isHeaderPair = (u: unknown): u is [string, string] =>
  Array.isArray(u) && u.length === 2 && typeof u[0] === "string" && typeof u[1] === "string"

const decoders: ReadonlyMap<string, (u: unknown) => Either.Either<unknown, ParseResult.ParseError>> = new Map(
  Array.from(
    OsqueueRpcs.requests.values(),
    (rpc) => [rpc._tag, Schema.decodeUnknownEither(rpc.payloadSchema as Schema.Schema<unknown, unknown>)]
  )
)

/**
 * The message's own headers, checked for their shape. Only two are read, by the session: the
 * queue (`osqueue-queue`) and a preference for a minimal answer (`prefer: return=minimal`). A
 * frame cannot stand in for the credentials its connection or body was let in with, nor claim a
 * role (the edge's admission gives the role).
 */
const checkHeaders = (headers: unknown): ReadonlyArray<[string, string]> | string => {
  if (headers === undefined) return []
  if (!Array.isArray(headers) || !headers.every(isHeaderPair)) {
    return "`headers` must be an array of [name, value] string pairs"
  }
  return headers
}

/** A checked message, with a request's payload as its schema decoded it (the refusals' too). */
export interface Checked {
  readonly message: RpcMessage.FromClientEncoded
  readonly payload?: unknown
}

const decodeRefusal = Schema.decodeUnknownSync(Refused.payloadSchema)

const refused = (message: RpcMessage.RequestEncoded): Checked => ({ message, payload: decodeRefusal(message.payload) })

const checkRequest = (message: Record<string, unknown>): Checked => {
  const id = message.id
  if (!isRequestId(id)) return refused(invalid(unreadableId, "a request's `id` must be a string of decimal digits"))
  const tag = message.tag
  const decode = typeof tag === "string" ? decoders.get(tag) : undefined
  if (decode === undefined) {
    return refused(
      invalid(
        id,
        `unknown operation ${JSON.stringify(tag)}; the operations are ${Array.from(decoders.keys()).join(", ")}`
      )
    )
  }
  const headers = checkHeaders(message.headers)
  if (typeof headers === "string") return refused(invalid(id, headers))
  const decoded = decode(message.payload)
  if (Either.isLeft(decoded)) {
    return refused(
      invalid(id, clipped(`invalid ${tag} payload: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`))
    )
  }
  const checked: RpcMessage.RequestEncoded = {
    _tag: "Request",
    id,
    tag: tag as string,
    payload: message.payload,
    headers,
    ...(typeof message.traceId === "string" && typeof message.spanId === "string"
      ? { traceId: message.traceId, spanId: message.spanId, sampled: message.sampled === true }
      : {})
  }
  return { message: checked, payload: decoded.right }
}

const refusedEof = invalid(
  unreadableId,
  "a client does not send Eof: the end of the body (or the socket's close) ends it"
)

/** The message to hand to the server for one parsed line or frame. */
export const check = (message: unknown): Checked => {
  if (!isRecord(message)) return refused(invalid(unreadableId, "an RPC message must be a JSON object with a `_tag`"))
  switch (message._tag) {
    case "Request":
      return checkRequest(message)
    case "Ack":
    case "Interrupt":
      return isRequestId(message.requestId)
        ? { message: { _tag: message._tag, requestId: message.requestId } }
        : refused(invalid(unreadableId, `an ${message._tag}'s \`requestId\` must be a string of decimal digits`))
    case "Ping":
      return { message: { _tag: "Ping" } }
    case "Eof":
      // Only the server ends a client: over HTTP its body's end does, over WebSocket the close.
      // A client's own Eof ended its HTTP answer before the requests beside it were answered.
      return refused(refusedEof)
    default:
      return refused(
        invalid(
          unreadableId,
          `unknown message ${JSON.stringify(message._tag)}; expected Request, Ack, Interrupt, Ping or Eof`
        )
      )
  }
}

/** One line or frame of text: checked for depth before it is parsed, then `check`ed. */
export const checkLine = (text: string, limits: FrameLimits): Checked => {
  if (Json.textNestsDeeperThan(text, limits.maxJsonDepth)) {
    const id = /"id"\s*:\s*"(\d{1,20})"/.exec(text)?.[1] ?? unreadableId
    return refused(invalid(id, Json.tooDeepMessage("the message", limits.maxJsonDepth)))
  }
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch (error) {
    return refused(
      invalid(unreadableId, `the message is not JSON: ${error instanceof Error ? error.message : String(error)}`)
    )
  }
  return check(message)
}

/** What the broker sends a client: an `Exit`, a `Chunk` or a `Pong`. */
export type Answer = RpcMessage.ResponseExitEncoded | RpcMessage.ResponseChunkEncoded | RpcMessage.Pong

/** `answer`, or when its JSON is past `room` bytes, its request's failure with `PayloadTooLarge`. */
const fit = (answer: Answer, json: string, room: number): string => {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most answers are known to fit without counting.
  if (json.length * 3 <= room || answer._tag !== "Exit") return json
  const bytes = Buffer.byteLength(json)
  if (bytes <= room) return json
  const error = new PayloadTooLarge({
    what: "the answer (ask for less: a smaller `limit`, fewer requests per body)",
    bytes,
    limit: room
  })
  return JSON.stringify({
    _tag: "Exit",
    requestId: answer.requestId,
    exit: { _tag: "Failure", cause: { _tag: "Fail", error: encodeError(error) } }
  })
}

/**
 * The answers to one HTTP body, each an ndjson line; their bytes together are capped. A stream
 * (Watch) runs as long as the client keeps it: its chunks do not use up the body's room.
 */
export const bodyEncoder = (limits: FrameLimits) => {
  let answered = 0
  return (answer: Answer): string => {
    const json = JSON.stringify(answer)
    if (answer._tag === "Chunk") return json + "\n"
    const line = fit(answer, json, Math.max(0, limits.maxAnswerBytes - answered)) + "\n"
    answered += Buffer.byteLength(line)
    return line
  }
}

/** One WebSocket answer: one JSON message per frame, each capped alone (a stream's chunks aside). */
export const frameEncoder = (limits: FrameLimits) => (answer: Answer): string => {
  const json = JSON.stringify(answer)
  return answer._tag === "Chunk" ? json : fit(answer, json, limits.maxAnswerBytes)
}
