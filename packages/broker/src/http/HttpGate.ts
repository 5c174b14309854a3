/**
 * What every request the edge (`Edge`) does not serve passes before it reaches a route of the
 * Effect app, in this order: a route for its path (404 `NoSuchRoute`) and method (405
 * `MethodNotAllowed` with `Allow`; OPTIONS answers the methods, and CORS preflights, for every
 * route, the edge's included), then the admission the edge applies too (`HttpChecks.admitter`:
 * origin for WebSocket upgrades, the bearer token, what its role may run). What reaches the app
 * is the operator routes, the docs, the dashboard, a plain GET of the WebSocket path (refused
 * here: the edge takes its upgrades), all without a body, and an upgrade sent to another route
 * (which that route refuses or answers as a plain request): so the gate reads no body.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { httpStatus, InvalidRequest, MethodNotAllowed, NoSuchRoute, OsqueueError } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { BrokerConfig } from "../BrokerConfig.js"
import * as CrossSite from "./CrossSite.js"
import * as HttpChecks from "./HttpChecks.js"
import * as RestOperations from "./RestOperations.js"
import { RouteTable } from "./RouteTable.js"
import { rpcPaths } from "./Rpc.js"

export { publicPaths } from "./HttpChecks.js"

const encodeError = Schema.encodeSync(OsqueueError)

const refuse = (
  reason: string,
  request: HttpServerRequest.HttpServerRequest,
  error: OsqueueError,
  headers?: Readonly<Record<string, string>>
) =>
  Effect.gen(function*() {
    yield* Metric.increment(HttpChecks.refusedCounter(reason))
    const response = HttpServerResponse.unsafeJson(encodeError(error), { status: httpStatus(error) })
    // A refused WebSocket upgrade leaves the socket unusable for another request: say so.
    const close: Record<string, string> = request.headers["upgrade"] !== undefined ? { connection: "close" } : {}
    return HttpServerResponse.setHeaders(response, { ...headers, ...close })
  })

/** Longest method or path repeated in an error: the rest is cut. */
const shown = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text)

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
          return yield* refuse("no_route", request, error)
        }

        const site = crossSite(request.headers["origin"], request.headers["host"])
        if (site._tag === "Allowed") {
          const cors = CrossSite.corsHeaders(site.origin)
          yield* HttpApp.appendPreResponseHandler((_request, response) =>
            Effect.succeed(HttpServerResponse.setHeaders(response, cors))
          )
        }
        const allow = { allow: methods.join(", ") }

        if (method === "OPTIONS" && !methods.includes("OPTIONS")) {
          // A CORS preflight, or a client asking what the path takes.
          if (site._tag === "Refused") return yield* refuse("origin", request, site.error)
          const headers = site._tag === "Allowed"
            ? {
              ...allow,
              ...CrossSite.preflightHeaders(site.origin, methods, request.headers["access-control-request-headers"])
            }
            : allow
          return HttpServerResponse.empty({ status: 204, headers })
        }
        if (!methods.includes(method)) {
          const error = new MethodNotAllowed({ method: shown(method, 20), path, allowed: methods })
          return yield* refuse("method", request, error, allow)
        }

        // Reads from another site are the browser's to keep from its page (no CORS headers);
        // what changes something, or opens a WebSocket, is refused. An operator route is one
        // operation, checked here.
        const upgrade = request.headers["upgrade"] !== undefined
        const admission = admit({
          method,
          pathname: url.pathname,
          upgrade,
          site,
          authorization: request.headers["authorization"],
          // The WebSocket path's token may come as an upgrade's does: a plain GET with it is told to open a WebSocket.
          socketToken: url.pathname === rpcPaths.websocket
            ? HttpChecks.socketToken(request.headers["sec-websocket-protocol"], url.searchParams)
            : undefined,
          operation: operationOf(method, request.url)
        })
        if (admission._tag === "Refused") {
          return yield* refuse(admission.reason, request, admission.error, admission.headers)
        }
        if (url.pathname === rpcPaths.websocket && !upgrade) {
          const error = new InvalidRequest({
            message:
              `${rpcPaths.websocket} speaks RPC over WebSocket only: open a WebSocket (Connection: Upgrade, Upgrade: websocket), or POST ndjson to ${rpcPaths.http}`
          })
          return yield* refuse("not_websocket", request, error)
        }
        return yield* httpApp
      })
  }),
  { global: true }
)
