/**
 * What every HTTP request passes before it reaches a route: the bearer token (when
 * OSQUEUE_TOKEN is set) and the body limits. It runs for RPC over HTTP, the WebSocket upgrade
 * and REST alike, so a transport cannot skip it. Refusals carry the wire errors: a JSON body for
 * REST, and for `POST /rpc` an ndjson RPC answer failing each request with that error, so typed
 * RPC clients get `Unauthorized` / `PayloadTooLarge` instead of waiting on an answer that never
 * comes (they read the body whatever the status).
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { httpStatus, OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { BrokerConfig } from "./BrokerConfig.js"
import * as HttpChecks from "./HttpChecks.js"
import { rpcPaths } from "./Rpc.js"

export { publicPaths } from "./HttpChecks.js"

const encodeError = Schema.encodeSync(OsqueueError)

/** Bytes of a refused RPC body kept to find its request ids; the rest is read and dropped. */
const rpcPrefixBytes = 4096

interface Body {
  /** The body, or its first bytes when it was longer than what was kept. */
  readonly text: string
  readonly total: number
  readonly complete: boolean
}

/** Reads the body to its end, keeping at most `keep` bytes: the rest is dropped, not buffered. */
const drain = (request: HttpServerRequest.HttpServerRequest, keep: number): Effect.Effect<Body> =>
  request.stream.pipe(
    Stream.runFold({ kept: [] as Array<Uint8Array>, keptBytes: 0, total: 0 }, (acc, chunk) => {
      if (acc.keptBytes < keep) {
        const part = chunk.subarray(0, keep - acc.keptBytes)
        acc.kept.push(part)
        acc.keptBytes += part.length
      }
      acc.total += chunk.length
      return acc
    }),
    Effect.map(({ kept, keptBytes, total }) => ({
      text: Buffer.concat(kept).toString("utf8"),
      total,
      complete: keptBytes === total
    })),
    Effect.orElseSucceed(() => ({ text: "", total: 0, complete: false }))
  )

/** The ids of the RPC requests in an ndjson body (or in the start of one, cut short). */
const rpcRequestIds = (text: string, complete: boolean): Array<string> => {
  if (complete) {
    const ids: Array<string> = []
    for (const line of text.split("\n")) {
      try {
        const message: unknown = JSON.parse(line)
        if (typeof message === "object" && message !== null && "_tag" in message && message._tag === "Request" && "id" in message) {
          ids.push(String(message.id))
        }
      } catch {
        // not a message: nothing to answer
      }
    }
    return ids
  }
  const match = /"id"\s*:\s*"([^"]+)"/.exec(text)
  return match?.[1] === undefined ? [] : [match[1]]
}

const rpcRefusal = (request: HttpServerRequest.HttpServerRequest, status: number, error: OsqueueError, read: Body | undefined) =>
  Effect.gen(function*() {
    const body = read ?? (yield* drain(request, rpcPrefixBytes))
    const ids = rpcRequestIds(body.text, body.complete)
    const encoded = encodeError(error)
    const lines = ids.length > 0
      ? ids.map((requestId) =>
        JSON.stringify({ _tag: "Exit", requestId, exit: { _tag: "Failure", cause: { _tag: "Fail", error: encoded } } })
      )
      // No request to answer: a protocol-level defect fails whatever the client has in flight.
      : [JSON.stringify({ _tag: "Defect", defect: error.message })]
    return HttpServerResponse.text(lines.join("\n") + "\n", { status, contentType: "application/ndjson" })
  })

const refuse = (
  reason: string,
  request: HttpServerRequest.HttpServerRequest,
  url: URL,
  error: OsqueueError,
  options: { readonly body: Body | undefined; readonly headers?: Record<string, string> }
) =>
  Effect.gen(function*() {
    yield* Metric.increment(HttpChecks.refusedCounter(reason))
    const status = httpStatus(error)
    const response = url.pathname === rpcPaths.http && request.method === "POST"
      ? yield* rpcRefusal(request, status, error, options.body)
      : HttpServerResponse.unsafeJson(encodeError(error), { status })
    // A refused WebSocket upgrade leaves the socket unusable for another request: say so.
    const close: Record<string, string> = request.headers["upgrade"] !== undefined ? { connection: "close" } : {}
    return HttpServerResponse.setHeaders(response, { ...options.headers, ...close })
  })

// Browsers cannot set headers on a WebSocket: the upgrade may carry the token in the query.
const queryToken = (url: URL): string | undefined =>
  url.pathname === rpcPaths.websocket ? (url.searchParams.get("token") ?? undefined) : undefined

const tooLarge = (request: HttpServerRequest.HttpServerRequest, url: URL, bytes: number, limit: number, body: Body | undefined) =>
  refuse("too_large", request, url, HttpChecks.tooLarge(bytes, limit), { body })

/** A request like `request` whose body is the buffered `text`. */
const rebuilt = (request: HttpServerRequest.HttpServerRequest, url: URL, text: string) => {
  const headers = new globalThis.Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    // Hop-by-hop framing described the original transfer, not this buffered copy.
    if (name !== "transfer-encoding" && name !== "content-length" && name !== "connection") headers.set(name, value)
  }
  return HttpServerRequest.fromWeb(new Request(url, { method: request.method, headers, body: text }))
}

export const layer = HttpLayerRouter.middleware(
  Effect.gen(function*() {
    const config = yield* BrokerConfig
    const authorize = HttpChecks.authorizer(config)
    const limit = config.maxBodyBytes

    return (httpApp) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const url = new URL(request.url, "http://broker")

        const unauthorized = authorize(url.pathname, request.headers["authorization"], queryToken(url))
        if (unauthorized !== undefined) {
          return yield* refuse("unauthorized", request, url, unauthorized, {
            body: HttpMethod.hasBody(request.method) ? undefined : { text: "", total: 0, complete: true },
            headers: HttpChecks.unauthorizedHeaders
          })
        }

        if (!HttpMethod.hasBody(request.method) || url.pathname === rpcPaths.websocket) return yield* httpApp

        const declared = Number(request.headers["content-length"] ?? Number.NaN)
        // Refuse a declared oversize body before reading a byte of it.
        if (declared > limit) return yield* tooLarge(request, url, declared, limit, undefined)

        let text: string
        let replacement: HttpServerRequest.HttpServerRequest | undefined
        if (Number.isNaN(declared)) {
          // Chunked: read it ourselves, dropping what is past the limit, so the connection
          // survives to carry the 413 (a bounded platform read would destroy it). The routes
          // then get a request over the buffered copy.
          const body = yield* drain(request, limit)
          if (!body.complete) return yield* tooLarge(request, url, body.total, limit, body)
          text = body.text
          replacement = rebuilt(request, url, text)
        } else {
          // Routes read the body later from this cached copy, so it is read once.
          const body = yield* request.text.pipe(HttpIncomingMessage.withMaxBodySize(Option.some(limit)), Effect.either)
          if (Either.isLeft(body)) {
            return yield* refuse("unreadable", request, url, HttpChecks.unreadable(), {
              body: { text: "", total: 0, complete: true }
            })
          }
          text = body.right
        }

        if (url.pathname.startsWith("/v1/") && text.trim() !== "") {
          const parsed = HttpChecks.parseJsonBody(text, request.headers["content-type"], config.maxJsonDepth)
          if ("problem" in parsed) {
            return yield* refuse("malformed_json", request, url, parsed.problem, {
              body: { text, total: text.length, complete: true }
            })
          }
        }
        return yield* replacement === undefined
          ? httpApp
          : Effect.provideService(httpApp, HttpServerRequest.HttpServerRequest, replacement)
      })
  }),
  { global: true }
)
