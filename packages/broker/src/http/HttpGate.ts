/**
 * What every HTTP request passes before it reaches a route, in this order: a route for its path
 * (404 `NoSuchRoute`) and method (405 `MethodNotAllowed` with `Allow`; OPTIONS answers the
 * methods, and CORS preflights), its `Origin` for mutations and WebSocket upgrades (403
 * `Forbidden`, `CrossSite`), the bearer token (401; when a token is set) and what its role may run
 * (403 `Forbidden`, `Access`; RPC is checked per message), the body limits and a
 * JSON content type and body. It runs for RPC over HTTP, the WebSocket upgrade
 * and REST alike, so a transport cannot skip it. Refusals carry the wire errors: a JSON body for
 * REST, and for `POST /rpc` an ndjson RPC answer failing each request with that error, so typed
 * RPC clients get `Unauthorized` / `PayloadTooLarge` instead of waiting on an answer that never
 * comes (they read the body whatever the status).
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { httpStatus, InvalidRequest, MethodNotAllowed, NoSuchRoute, OsqueueError, WebSocketAuth } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Access from "../Access.js"
import { BrokerConfig } from "../BrokerConfig.js"
import * as CrossSite from "./CrossSite.js"
import * as HttpChecks from "./HttpChecks.js"
import * as RestOperations from "./RestOperations.js"
import { RouteTable } from "./RouteTable.js"
import { rpcPaths } from "./Rpc.js"
import * as RpcFrames from "./RpcFrames.js"

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

/**
 * Browsers cannot set headers on a WebSocket: the upgrade carries the token as a subprotocol
 * (`WebSocketAuth`), or, from clients older than that, in the query (`?token=`, which proxies log).
 */
const socketToken = (url: URL, request: HttpServerRequest.HttpServerRequest): string | undefined =>
  url.pathname === rpcPaths.websocket
    ? (WebSocketAuth.tokenOf(request.headers["sec-websocket-protocol"]) ?? url.searchParams.get("token") ?? undefined)
    : undefined

const tooLarge = (request: HttpServerRequest.HttpServerRequest, url: URL, bytes: number, limit: number, body: Body | undefined) =>
  refuse("too_large", request, url, HttpChecks.tooLarge(bytes, limit), { body })

/**
 * A request like `request` whose body is the buffered `text`, read by the routes as the original
 * would be: an empty REST body as JSON `null` (the Node request's `json` reads "" so; the web
 * one's would fail), and given as bytes, since a string body would gain a `text/plain` type the
 * client never sent.
 */
const rebuilt = (request: HttpServerRequest.HttpServerRequest, url: URL, text: string) => {
  const headers = new globalThis.Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    // Hop-by-hop framing described the original transfer, not this buffered copy.
    if (name !== "transfer-encoding" && name !== "content-length" && name !== "connection") headers.set(name, value)
  }
  const body = text === "" && url.pathname.startsWith("/v1/") ? "null" : text
  return HttpServerRequest.fromWeb(new Request(url, { method: request.method, headers, body: Buffer.from(body, "utf8") }))
}

/** Longest method or path repeated in an error: the rest is cut. */
const shown = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text)

const noBody: Body = { text: "", total: 0, complete: true }

const base = "http://broker"

/** The request target as a URL; `undefined` when it is none (`///` is no path: `new URL` throws on it). */
const parseTarget = (target: string): URL | undefined => {
  try {
    return new URL(target, base)
  } catch {
    return undefined
  }
}

export const layer = HttpLayerRouter.middleware(
  Effect.gen(function*() {
    const config = yield* BrokerConfig
    const routes = yield* RouteTable
    const admit = HttpChecks.admitter(config)
    const operationOf = RestOperations.make()
    const crossSite = CrossSite.judge(config.allowedOrigins)
    const limit = config.maxBodyBytes

    return (httpApp) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const target = parseTarget(request.url)
        const url = target ?? new URL(base)
        const method = request.method as string

        // As sent (before URL normalization), so the client recognizes it.
        const path = shown(request.url.split("?", 1)[0] ?? "", 200)
        const methods = target === undefined ? [] : routes.allowed(request.url)
        if (methods.length === 0) {
          const error = new NoSuchRoute({ method: shown(method, 20), path })
          return yield* refuse("no_route", request, url, error, { body: noBody })
        }

        const site = crossSite(request.headers["origin"], request.headers["host"])
        if (site._tag === "Allowed") {
          const cors = CrossSite.corsHeaders(site.origin)
          yield* HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeaders(response, cors)))
        }
        const allow = { allow: methods.join(", ") }

        if (method === "OPTIONS" && !methods.includes("OPTIONS")) {
          // A CORS preflight, or a client asking what the path takes.
          if (site._tag === "Refused") return yield* refuse("origin", request, url, site.error, { body: noBody })
          const headers = site._tag === "Allowed"
            ? { ...allow, ...CrossSite.preflightHeaders(site.origin, methods, request.headers["access-control-request-headers"]) }
            : allow
          return HttpServerResponse.empty({ status: 204, headers })
        }
        if (!methods.includes(method)) {
          const error = new MethodNotAllowed({ method: shown(method, 20), path, allowed: methods })
          return yield* refuse("method", request, url, error, { body: noBody, headers: allow })
        }

        // Reads from another site are the browser's to keep from its page (no CORS headers);
        // what changes something, or opens a WebSocket, is refused. A REST or operator route is
        // one operation, checked here; an RPC body or socket carries several, each checked by its
        // handler against the role set below.
        const upgrade = request.headers["upgrade"] !== undefined
        const admission = admit({
          method,
          pathname: url.pathname,
          upgrade,
          site,
          authorization: request.headers["authorization"],
          socketToken: socketToken(url, request),
          operation: operationOf(method, request.url)
        })
        if (admission._tag === "Refused") {
          // A refused RPC body is read for its request ids (`rpcRefusal`).
          const body = HttpMethod.hasBody(request.method) ? undefined : noBody
          return yield* refuse(admission.reason, request, url, admission.error, { body, ...(admission.headers ? { headers: admission.headers } : {}) })
        }
        const role = admission.role
        // The routes behind learn the role from the broker alone: a client's header is replaced.
        const passed = request.modify({
          headers: role === undefined
            ? Headers.remove(request.headers, Access.roleHeader)
            : Headers.set(request.headers, Access.roleHeader, role)
        })
        const pass = Effect.provideService(httpApp, HttpServerRequest.HttpServerRequest, passed)

        if (url.pathname === rpcPaths.websocket && !upgrade) {
          const error = new InvalidRequest({
            message: `${rpcPaths.websocket} speaks RPC over WebSocket only: open a WebSocket (Connection: Upgrade, Upgrade: websocket), or POST ndjson to ${rpcPaths.http}`
          })
          return yield* refuse("not_websocket", request, url, error, { body: noBody })
        }
        if (!HttpMethod.hasBody(request.method) || url.pathname === rpcPaths.websocket) return yield* pass

        const length = request.headers["content-length"]
        // Without Content-Length or Transfer-Encoding a request has no body (RFC 9112 §6.3), as
        // `curl -X POST …/v1/pause` sends it: read it as the empty body it is.
        const chunked = length === undefined && request.headers["transfer-encoding"] !== undefined
        const declared = length === undefined ? 0 : Number(length)
        // Refuse a declared oversize body before reading a byte of it.
        if (declared > limit) return yield* tooLarge(passed, url, declared, limit, undefined)

        let text: string
        let replacement: HttpServerRequest.HttpServerRequest | undefined
        if (chunked) {
          // Chunked: read it ourselves, dropping what is past the limit, so the connection
          // survives to carry the 413 (a bounded platform read would destroy it). The routes
          // then get a request over the buffered copy.
          const body = yield* drain(passed, limit)
          if (!body.complete) return yield* tooLarge(passed, url, body.total, limit, body)
          text = body.text
          replacement = rebuilt(passed, url, text)
        } else {
          // Routes read the body later from this cached copy, so it is read once.
          const body = yield* passed.text.pipe(HttpIncomingMessage.withMaxBodySize(Option.some(limit)), Effect.either)
          if (Either.isLeft(body)) return yield* refuse("unreadable", request, url, HttpChecks.unreadable(), { body: noBody })
          text = body.right
        }

        // An empty body may come without a type (`curl -X POST …/v1/pause`); one typed as something
        // else is refused too: HttpApi would wait for a multipart body that never comes.
        const contentType = request.headers["content-type"]
        if (text !== "" || contentType !== undefined) {
          const read: Body = { text, total: text.length, complete: true }
          const wrongType = HttpChecks.bodyTypeProblem(url.pathname, contentType)
          if (wrongType !== undefined) return yield* refuse("content_type", request, url, wrongType, { body: read })
          if (url.pathname.startsWith("/v1/") && text !== "") {
            const parsed = HttpChecks.parseJsonBody(text, config.maxJsonDepth)
            if ("problem" in parsed) return yield* refuse("malformed_json", request, url, parsed.problem, { body: read })
          }
          if (url.pathname === rpcPaths.http) {
            // Refused whole and cheaply: past the cap, each request would cost a fiber to refuse.
            const requests = RpcFrames.countLines(text)
            if (requests > RpcFrames.maxRequestsPerBody) {
              const error = new InvalidRequest({
                message: `one body carries at most ${RpcFrames.maxRequestsPerBody} requests, this one ${requests}: send them in several; none was run`
              })
              return yield* refuse("too_many_requests", request, url, error, { body: read })
            }
          }
        }
        return yield* replacement === undefined
          ? pass
          : Effect.provideService(httpApp, HttpServerRequest.HttpServerRequest, replacement)
      })
  }),
  { global: true }
)
