/**
 * The request path of the API: a plain Node listener in the server's `FrontDoor` that serves every
 * REST route (`RestRoutes`), RPC over HTTP (`POST /rpc`, `RpcOverHttp`) and RPC over WebSocket
 * (the upgrade of `GET /rpc/ws`, `RpcOverWebSocket`) from the request line to the answer — the
 * gate's checks of a served route (`HttpChecks.admitter`: origin, token, role), the body (its
 * limit, chunked or not, its type, its JSON), the decode, the operation, the encode — with no
 * router, HttpApi, RPC server, fiber or span of its own per request (the operation's fiber is the
 * only one). What is not an API route (a path or method nothing serves, OPTIONS and CORS
 * preflights, other upgrades, the operator routes, the dashboard, the docs) goes on to the
 * Effect app and its gate (`HttpGate`). docs/architecture.md, "The request path".
 */
import { httpStatus, InvalidRequest, OsqueueError, type Role } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Http from "node:http"
import type { Duplex } from "node:stream"
import { BrokerConfig } from "../BrokerConfig.js"
import type { Queues } from "../Queues.js"
import * as CrossSite from "./CrossSite.js"
import { type Front, FrontDoor } from "./FrontDoor.js"
import * as HttpChecks from "./HttpChecks.js"
import * as NodeServer from "./NodeServer.js"
import * as RestRoutes from "./RestRoutes.js"
import { rpcPaths } from "./Rpc.js"
import * as RpcFrames from "./RpcFrames.js"
import * as RpcOverHttp from "./RpcOverHttp.js"
import * as RpcOverWebSocket from "./RpcOverWebSocket.js"
import * as RpcSession from "./RpcSession.js"

type Headers = Readonly<Record<string, string>> | undefined

const encodeError = Schema.encodeSync(OsqueueError)

/** A JSON answer: the body, its type and length, and `headers` (CORS, Retry-After, …). */
const json = (response: Http.ServerResponse, status: number, value: unknown, headers: Headers, more?: Headers) => {
  const body = JSON.stringify(value)
  const head = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
  response.writeHead(status, headers === undefined && more === undefined ? head : { ...head, ...headers, ...more })
  response.end(body)
}

const failure = (response: Http.ServerResponse, error: OsqueueError, headers: Headers) => {
  const seconds = HttpChecks.retryAfterSeconds(error)
  json(
    response,
    httpStatus(error),
    encodeError(error),
    headers,
    seconds === undefined ? undefined : { "retry-after": String(seconds) }
  )
}

const refuse = (response: Http.ServerResponse, reason: string, error: OsqueueError, headers: Headers) => {
  HttpChecks.refusedCounter(reason).unsafeUpdate(1, [])
  json(response, httpStatus(error), encodeError(error), headers)
}

/** Bytes of an oversize RPC body kept to find its request ids; the rest is read and dropped. */
const rpcPrefixBytes = 4096

/** The ids of the RPC requests in an ndjson body (or in the start of one, cut short). */
const rpcRequestIds = (body: Body): Array<string> => {
  if (body.complete) {
    const ids: Array<string> = []
    for (const line of body.text.split("\n")) {
      try {
        const message: unknown = JSON.parse(line)
        if (
          typeof message === "object" && message !== null && "_tag" in message && message._tag === "Request" &&
          "id" in message
        ) {
          ids.push(String(message.id))
        }
      } catch {
        // not a message: nothing to answer
      }
    }
    return ids
  }
  const match = /"id"\s*:\s*"([^"]+)"/.exec(body.text)
  return match?.[1] === undefined ? [] : [match[1]]
}

/**
 * A refused RPC body: an ndjson answer failing each of its requests with `error`, so that typed
 * RPC clients get `Unauthorized` / `PayloadTooLarge` instead of waiting on an answer that never
 * comes (they read the body whatever the status).
 */
const refuseRpc = (
  response: Http.ServerResponse,
  reason: string,
  error: OsqueueError,
  body: Body,
  headers: Headers
) => {
  HttpChecks.refusedCounter(reason).unsafeUpdate(1, [])
  const encoded = encodeError(error)
  const ids = rpcRequestIds(body)
  const lines = ids.length > 0
    ? ids.map((requestId) =>
      JSON.stringify({ _tag: "Exit", requestId, exit: { _tag: "Failure", cause: { _tag: "Fail", error: encoded } } })
    )
    // No request to answer: a protocol-level defect fails whatever the client has in flight.
    : [JSON.stringify({ _tag: "Defect", defect: error.message })]
  const text = lines.join("\n") + "\n"
  response.writeHead(httpStatus(error), {
    "content-type": "application/ndjson",
    "content-length": String(Buffer.byteLength(text)),
    ...headers
  })
  response.end(text)
}

interface Body {
  /** The body, or its first bytes when it was longer than what was kept. */
  readonly text: string
  /** Bytes sent, all read; past what was kept only counted. */
  readonly total: number
  readonly complete: boolean
}

const noBody: Body = { text: "", total: 0, complete: true }

/**
 * Reads the body to its end, keeping at most `keep` bytes (the rest is counted and dropped, so
 * that the connection survives to carry the 413). Without Content-Length or Transfer-Encoding a
 * request has no body (RFC 9112 §6.3): Node ends its stream at once.
 */
const readBody = (request: Http.IncomingMessage, keep: number, onBody: (body: Body) => void, onError: () => void) => {
  const chunks: Array<Buffer> = []
  let kept = 0
  let total = 0
  request.on("data", (chunk: Buffer) => {
    if (kept < keep) {
      const part = kept + chunk.length <= keep ? chunk : chunk.subarray(0, keep - kept)
      chunks.push(part)
      kept += part.length
    }
    total += chunk.length
  })
  request.on("end", () => {
    const text = chunks.length === 0
      ? ""
      : chunks.length === 1
      ? chunks[0]!.toString("utf8")
      : Buffer.concat(chunks).toString("utf8")
    onBody({ text, total, complete: kept === total })
  })
  request.on("error", onError)
}

/** Whether the request target is `path`, a query aside. */
const isPath = (url: string, path: string) =>
  url.startsWith(path) && (url.length === path.length || url[path.length] === "?")

export interface Edge {
  readonly front: Front
  /** Closes the WebSockets it serves: the broker is stopping. */
  readonly closeSockets: () => void
}

export const make: Effect.Effect<Edge, never, Queues> = Effect.gen(function*() {
  const routes = yield* RestRoutes.make
  const sessions = yield* RpcSession.make
  const rpc = yield* RpcOverHttp.make(sessions)
  const webSocket = yield* RpcOverWebSocket.make(sessions)
  const settings = yield* BrokerConfig
  const admit = HttpChecks.admitter(settings)
  const crossSite = CrossSite.judge(settings.allowedOrigins)
  const limit = settings.maxBodyBytes

  // A client that hung up gets no answer; what it asked for was submitted and commits anyway
  // (only a claim's wait is cut short).
  const answer = (
    response: Http.ServerResponse,
    route: RestRoutes.Route,
    exit: Exit.Exit<unknown, OsqueueError>,
    headers: Headers
  ) => {
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
    if (interrupt !== undefined && !response.writableFinished) {
      response.once("close", () => {
        if (!response.writableFinished) interrupt()
      })
    }
  }

  /** RPC over HTTP: the body is read before any refusal, whose answer names its requests. */
  const serveRpc = (request: Http.IncomingMessage, response: Http.ServerResponse, url: string) => {
    const requestHeaders = request.headers
    const site = crossSite(requestHeaders["origin"], requestHeaders["host"])
    const headers = site._tag === "Allowed" ? CrossSite.corsHeaders(site.origin) : undefined
    const declared = Number(requestHeaders["content-length"] ?? 0)
    const onBody = (body: Body) => {
      const admission = admit({
        method: "POST",
        pathname: url,
        upgrade: requestHeaders["upgrade"] !== undefined,
        site,
        authorization: requestHeaders["authorization"],
        socketToken: undefined,
        operation: undefined
      })
      if (admission._tag === "Refused") {
        return refuseRpc(response, admission.reason, admission.error, body, { ...headers, ...admission.headers })
      }
      if (body.total > limit) {
        return refuseRpc(response, "too_large", HttpChecks.tooLarge(body.total, limit), body, headers)
      }
      const contentType = requestHeaders["content-type"]
      if (body.text !== "" || contentType !== undefined) {
        const wrongType = HttpChecks.bodyTypeProblem(rpcPaths.http, contentType)
        if (wrongType !== undefined) return refuseRpc(response, "content_type", wrongType, body, headers)
      }
      // Refused whole and cheaply: past the cap, each request would cost a fiber to refuse.
      const requests = RpcFrames.countLines(body.text)
      if (requests > RpcFrames.maxRequestsPerBody) {
        const error = new InvalidRequest({
          message:
            `one body carries at most ${RpcFrames.maxRequestsPerBody} requests, this one ${requests}: send them in several; none was run`
        })
        return refuseRpc(response, "too_many_requests", error, body, headers)
      }
      rpc(body.text, admission.role, response, headers)
    }
    // A declared oversize body is kept only as far as its first request ids.
    readBody(
      request,
      declared > limit ? rpcPrefixBytes : limit,
      onBody,
      () => refuseRpc(response, "unreadable", HttpChecks.unreadable(), noBody, headers)
    )
  }

  /**
   * RPC over WebSocket: the upgrade is admitted as a request of its own (the token may come as a
   * subprotocol or in the query, `HttpChecks.socketToken`), refused with a tagged error that
   * closes the connection, or handed over with its role.
   */
  const upgrade = (request: Http.IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const url = request.url
    const targetProblem = url === undefined ? undefined : HttpChecks.targetProblem(url)
    if (targetProblem !== undefined) {
      HttpChecks.refusedCounter("target").unsafeUpdate(1, [])
      socket.end(NodeServer.rawAnswer(httpStatus(targetProblem), targetProblem, {}), () => socket.destroy())
      return true
    }
    if (request.method !== "GET" || url === undefined || !isPath(url, rpcPaths.websocket)) return false
    NodeServer.guardUpgrade(socket, limit)
    const requestHeaders = request.headers
    const site = crossSite(requestHeaders["origin"], requestHeaders["host"])
    const admission = admit({
      method: "GET",
      pathname: rpcPaths.websocket,
      upgrade: true,
      site,
      authorization: requestHeaders["authorization"],
      socketToken: HttpChecks.socketToken(
        requestHeaders["sec-websocket-protocol"],
        new URLSearchParams(url.slice(rpcPaths.websocket.length))
      ),
      operation: undefined
    })
    if (admission._tag === "Refused") {
      HttpChecks.refusedCounter(admission.reason).unsafeUpdate(1, [])
      const cors = site._tag === "Allowed" ? CrossSite.corsHeaders(site.origin) : undefined
      socket.end(
        NodeServer.rawAnswer(httpStatus(admission.error), admission.error, { ...cors, ...admission.headers }),
        () => socket.destroy()
      )
      return true
    }
    webSocket.upgrade(request, socket, head, admission.role)
    return true
  }

  const serve = (request: Http.IncomingMessage, response: Http.ServerResponse): boolean => {
    const url = request.url
    const method = request.method
    if (url === undefined || method === undefined) return false
    const targetProblem = HttpChecks.targetProblem(url)
    if (targetProblem !== undefined) {
      const site = crossSite(request.headers["origin"], request.headers["host"])
      refuse(
        response,
        "target",
        targetProblem,
        site._tag === "Allowed" ? CrossSite.corsHeaders(site.origin) : undefined
      )
      return true
    }
    if (method === "POST" && isPath(url, rpcPaths.http)) {
      serveRpc(request, response, url)
      return true
    }
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
      run(request, response, found, admission.role, noBody, headers)
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

  return { front: { request: serve, upgrade }, closeSockets: webSocket.close }
})

/** Opens the edge on the server's `FrontDoor` (`Broker.nodeServer` has one) for the life of the layer. */
export const layer: Layer.Layer<never, never, Queues | FrontDoor> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const door = yield* FrontDoor
    const edge = yield* make
    const close = door.open(edge.front)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        close()
        edge.closeSockets()
      })
    )
  })
)
