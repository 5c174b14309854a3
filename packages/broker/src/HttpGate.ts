/**
 * What every HTTP request passes before it reaches a route: the bearer token (when
 * OSQUEUE_TOKEN is set) and the body limits. It runs for RPC over HTTP, the WebSocket upgrade
 * and REST alike, so a transport cannot skip it. Refusals are JSON bodies of the wire errors.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { InvalidRequest, PayloadTooLarge, Unauthorized } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash, timingSafeEqual } from "node:crypto"
import { BrokerConfig } from "./BrokerConfig.js"
import * as BrokerMetrics from "./BrokerMetrics.js"
import { rpcPaths } from "./Rpc.js"

/** Reachable without the token: probes, and the API's description (it holds no data). */
export const publicPaths: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/docs", "/v1/openapi.json"])

const digest = (token: string): Buffer => createHash("sha256").update(token).digest()

const errorResponse = <A, I>(schema: Schema.Schema<A, I>, error: A, status: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(Schema.encodeSync(schema)(error), { status, headers })

const refused = (reason: string, response: HttpServerResponse.HttpServerResponse) =>
  Effect.as(Metric.increment(Metric.tagged(BrokerMetrics.httpRequests, "refused", reason)), response)

const presentedToken = (request: HttpServerRequest.HttpServerRequest, url: URL): string | undefined => {
  const header = request.headers["authorization"]
  if (header !== undefined) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim())
    return match?.[1]
  }
  // Browsers cannot set headers on a WebSocket: the upgrade may carry the token in the query.
  return url.pathname === rpcPaths.websocket ? (url.searchParams.get("token") ?? undefined) : undefined
}

const isJson = (request: HttpServerRequest.HttpServerRequest): boolean => {
  // HttpApi reads a body without a content type as JSON, so check those too.
  const type = request.headers["content-type"]?.toLowerCase()
  return type === undefined || type.includes("application/json")
}

const tooLarge = (bytes: number, limit: number) =>
  refused(
    "too_large",
    errorResponse(PayloadTooLarge, new PayloadTooLarge({ what: "the request body", bytes, limit }), 413)
  )

export const layer = HttpLayerRouter.middleware(
  Effect.gen(function*() {
    const config = yield* BrokerConfig
    const expected = Option.map(config.token, (token) => digest(Redacted.value(token)))
    const limit = config.maxBodyBytes

    return (httpApp) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const url = new URL(request.url, "http://broker")

        if (Option.isSome(expected) && !publicPaths.has(url.pathname)) {
          const token = presentedToken(request, url)
          if (token === undefined || !timingSafeEqual(digest(token), expected.value)) {
            const reason = token === undefined ? "no bearer token was sent" : "the bearer token is wrong"
            return yield* refused(
              "unauthorized",
              errorResponse(Unauthorized, new Unauthorized({ reason }), 401, { "www-authenticate": "Bearer" })
            )
          }
        }

        if (HttpMethod.hasBody(request.method) && url.pathname !== rpcPaths.websocket) {
          const declared = Number(request.headers["content-length"] ?? Number.NaN)
          // Refuse a declared oversize body before reading a byte of it.
          if (declared > limit) return yield* tooLarge(declared, limit)
          // Routes read the body later from this cached copy, so it is read (and bounded) once.
          const body = yield* request.text.pipe(
            HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
            Effect.either
          )
          if (Either.isLeft(body)) {
            // Only the limit fails a read we started; a chunked body has no declared size.
            if (String(body.left.cause).includes("maxBytes")) return yield* tooLarge(limit + 1, limit)
            return yield* refused(
              "unreadable",
              errorResponse(InvalidRequest, new InvalidRequest({ message: "the request body could not be read" }), 400)
            )
          }
          if (url.pathname.startsWith("/v1/") && isJson(request) && body.right.trim() !== "") {
            const problem = jsonProblem(body.right)
            if (problem !== undefined) {
              return yield* refused(
                "malformed_json",
                errorResponse(InvalidRequest, new InvalidRequest({ message: `the body is not valid JSON: ${problem}` }), 400)
              )
            }
          }
        }
        return yield* httpApp
      })
  }),
  { global: true }
)

const jsonProblem = (text: string): string | undefined => {
  try {
    JSON.parse(text)
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}
