/**
 * The request path of the API: a plain Node listener in the server's `FrontDoor` that serves every
 * REST route (`RestRoutes`) from the request line to the answer — the gate's checks of a served
 * route (`HttpChecks.admitter`: origin, token, role), the body (its limit, chunked or not, its
 * type, its JSON), the decode, the operation, the encode — with no router, HttpApi, fiber or span
 * of its own per request (the operation's fiber is `Handlers`'). What is not an API route (a path
 * or method nothing serves, OPTIONS and CORS preflights, WebSocket upgrades, the operator routes,
 * the dashboard, the docs) goes on to the Effect app and its gate (`HttpGate`).
 * docs/architecture.md, "The request path".
 */
import { httpStatus, OsqueueError, type Role } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Http from "node:http"
import { BrokerConfig } from "../BrokerConfig.js"
import type { Handlers } from "../Handlers.js"
import * as CrossSite from "./CrossSite.js"
import { FrontDoor, type Listener } from "./FrontDoor.js"
import * as HttpChecks from "./HttpChecks.js"
import * as RestRoutes from "./RestRoutes.js"

type Headers = Readonly<Record<string, string>> | undefined

const encodeError = Schema.encodeSync(OsqueueError)

/** A JSON answer: the body, its type and length, and `headers` (CORS, Retry-After, …). */
const json = (response: Http.ServerResponse, status: number, value: unknown, headers: Headers, more?: Headers) => {
  const body = JSON.stringify(value)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    ...headers,
    ...more
  })
  response.end(body)
}

const failure = (response: Http.ServerResponse, error: OsqueueError, headers: Headers) => {
  const seconds = HttpChecks.retryAfterSeconds(error)
  json(response, httpStatus(error), encodeError(error), headers, seconds === undefined ? undefined : { "retry-after": String(seconds) })
}

const refuse = (response: Http.ServerResponse, reason: string, error: OsqueueError, headers: Headers) => {
  HttpChecks.refusedCounter(reason).unsafeUpdate(1, [])
  json(response, httpStatus(error), encodeError(error), headers)
}

interface Body {
  readonly text: string
  /** Bytes sent, all read; past the limit only counted. */
  readonly total: number
}

/**
 * Reads the body to its end, keeping at most `limit` bytes (the rest is counted and dropped, so
 * that the connection survives to carry the 413). Without Content-Length or Transfer-Encoding a
 * request has no body (RFC 9112 §6.3): Node ends its stream at once.
 */
const readBody = (request: Http.IncomingMessage, limit: number, onBody: (body: Body) => void, onError: () => void) => {
  const chunks: Array<Buffer> = []
  let total = 0
  request.on("data", (chunk: Buffer) => {
    if (total + chunk.length <= limit) chunks.push(chunk)
    total += chunk.length
  })
  request.on("end", () => {
    const text = chunks.length === 0 ? "" : chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
    onBody({ text, total })
  })
  request.on("error", onError)
}

export const make: Effect.Effect<Listener, never, Handlers> = Effect.gen(function*() {
  const routes = yield* RestRoutes.make
  const settings = yield* BrokerConfig
  const admit = HttpChecks.admitter(settings)
  const crossSite = CrossSite.judge(settings.allowedOrigins)
  const limit = settings.maxBodyBytes

  // A client that hung up gets no answer; what it asked for was submitted and commits anyway
  // (only a claim's wait is cut short).
  const answer = (response: Http.ServerResponse, route: RestRoutes.Route, exit: Exit.Exit<unknown, OsqueueError>, headers: Headers) => {
    if (response.writableEnded || response.destroyed) return
    if (Exit.isSuccess(exit)) {
      const encoded = route.encode(exit.value)
      return Either.isRight(encoded)
        ? json(response, route.status, encoded.right, headers)
        : json(response, 400, RestRoutes.decodeError(encoded.left), headers)
    }
    const error = Cause.failureOption(exit.cause)
    if (Option.isSome(error)) return failure(response, error.value, headers)
    // A defect: the status alone, as the platform answers one.
    response.writeHead(500, headers)
    response.end()
  }

  const run = (
    request: Http.IncomingMessage,
    response: Http.ServerResponse,
    found: NonNullable<ReturnType<RestRoutes.Routes["find"]>>,
    role: Role | undefined,
    body: Body,
    headers: Headers
  ) => {
    if (body.total > limit) return refuse(response, "too_large", HttpChecks.tooLarge(body.total, limit), headers)
    const contentType = request.headers["content-type"]
    let value: unknown = null
    // An empty body may come without a type (`curl -X POST …/v1/pause`) and reads as JSON null;
    // one typed as something else is refused too.
    if (body.text !== "" || contentType !== undefined) {
      const wrongType = HttpChecks.bodyTypeProblem("/v1/", contentType)
      if (wrongType !== undefined) return refuse(response, "content_type", wrongType, headers)
      if (body.text !== "") {
        const parsed = HttpChecks.parseJsonBody(body.text, settings.maxJsonDepth)
        if ("problem" in parsed) return refuse(response, "malformed_json", parsed.problem, headers)
        value = parsed.value
      }
    }
    const route = found.handler
    const prepared = route.prepare(found.params as Record<string, string>, found.searchParams, value, role)
    if (Either.isLeft(prepared)) return json(response, 400, RestRoutes.decodeError(prepared.left), headers)
    const interrupt = prepared.right((exit) => answer(response, route, exit, headers))
    response.once("close", () => {
      if (!response.writableFinished) interrupt()
    })
  }

  return (request, response) => {
    const url = request.url
    const method = request.method
    if (url === undefined || method === undefined) return false
    const found = routes.find(method, url)
    if (found === undefined) return false
    const requestHeaders = request.headers
    const site = crossSite(requestHeaders["origin"], requestHeaders["host"])
    const headers = site._tag === "Allowed" ? CrossSite.corsHeaders(site.origin) : undefined
    const admission = admit({
      method,
      pathname: url,
      upgrade: requestHeaders["upgrade"] !== undefined,
      site,
      authorization: requestHeaders["authorization"],
      socketToken: undefined,
      operation: found.handler.operation
    })
    if (admission._tag === "Refused") {
      refuse(response, admission.reason, admission.error, { ...headers, ...admission.headers })
      return true
    }
    if (!HttpChecks.hasBody(method)) {
      run(request, response, found, admission.role, { text: "", total: 0 }, headers)
      return true
    }
    // Refuse a declared oversize body before reading a byte of it.
    const declared = Number(requestHeaders["content-length"] ?? 0)
    if (declared > limit) {
      refuse(response, "too_large", HttpChecks.tooLarge(declared, limit), headers)
      return true
    }
    readBody(
      request,
      limit,
      (body) => run(request, response, found, admission.role, body, headers),
      () => refuse(response, "unreadable", HttpChecks.unreadable(), headers)
    )
    return true
  }
})

/** Opens the edge on the server's `FrontDoor` (`Broker.nodeServer` has one) for the life of the layer. */
export const layer: Layer.Layer<never, never, Handlers | FrontDoor> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const door = yield* FrontDoor
    const close = door.open(yield* make)
    yield* Effect.addFinalizer(() => Effect.sync(close))
  })
)
