/**
 * The checks an HTTP request passes before and around an operation — the bearer token, the body
 * limits and JSON, the job a lease token names, `Retry-After` — as plain functions, so that the
 * edge (`Edge`) and the Effect app's gate (`HttpGate`) decide alike.
 */
import {
  InvalidRequest,
  type JobId,
  Json,
  type LeaseToken,
  type OsqueueError,
  parseLeaseToken,
  PayloadTooLarge,
  type Role,
  type Roles,
  type Unauthorized,
  WebSocketAuth
} from "@osqueue/types"
import * as Access from "../Access.js"
import type { BrokerSettings } from "../BrokerConfig.js"
import * as BrokerMetrics from "../BrokerMetrics.js"
import * as CrossSite from "./CrossSite.js"
import { isDashboardPath } from "./Dashboard.js"
import { rpcPaths } from "./Rpc.js"

/** Reachable without the token: probes, the API's description and the dashboard's files (they hold no data). */
export const publicPaths: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/docs", "/v1/openapi.json"])

/** Headers of a 401: the scheme the client should use. */
export const unauthorizedHeaders: Readonly<Record<string, string>> = { "www-authenticate": "Bearer" }

/**
 * For a request to `pathname`: `undefined` when the path is public (no token needed, no role),
 * else the role of the token it presented (the `authorization` header, or `socketToken`, the token a WebSocket upgrade offers, where a
 * browser cannot set headers), or `Unauthorized` when it presented none or an unknown one. What
 * the role may run is `Access.permit`'s to say.
 */
export type Authorize = (
  pathname: string,
  authorization: string | undefined,
  socketToken: string | undefined
) => Role | Unauthorized | undefined

export const authorizer = (settings: BrokerSettings): Authorize => {
  const authenticate = Access.authenticator(Access.tokensOf(settings))
  return (pathname, authorization, socketToken) =>
    publicPaths.has(pathname) || isDashboardPath(pathname) ? undefined : authenticate(authorization, socketToken)
}

/**
 * The token a WebSocket upgrade offers where it cannot set headers (browsers): as a subprotocol
 * (`WebSocketAuth`), or, from clients older than that, in the query (`?token=`, which proxies log).
 */
export const socketToken = (protocols: string | undefined, query: URLSearchParams): string | undefined =>
  WebSocketAuth.tokenOf(protocols) ?? query.get("token") ?? undefined

/** Whether a request of `method` may carry a body (and so change something). */
export const hasBody = (method: string): boolean =>
  method !== "GET" && method !== "HEAD" && method !== "OPTIONS" && method !== "TRACE"

export type Admission =
  | { readonly _tag: "Admitted"; readonly role: Role | undefined }
  | {
    readonly _tag: "Refused"
    /** The `reason` label of `osqueue_http_refused_total`. */
    readonly reason: string
    readonly error: OsqueueError
    readonly headers?: Readonly<Record<string, string>>
  }

export interface Knock {
  readonly method: string
  readonly pathname: string
  readonly upgrade: boolean
  /** What `CrossSite.judge` made of its `Origin`. */
  readonly site: CrossSite.Verdict
  readonly authorization: string | undefined
  readonly socketToken: string | undefined
  /** The operation of a REST or operator route; none for RPC (each message is checked by its handler). */
  readonly operation: Roles.Operation | undefined
}

/**
 * What a request for a route it may use (path and method served) passes, in this order, on the
 * edge and the gate alike: a mutation or WebSocket upgrade from a refused origin (403
 * `Forbidden`, `CrossSite`), the bearer token (401 `Unauthorized`), what its role may run (403
 * `Forbidden`, `Access`).
 */
export const admitter = (settings: BrokerSettings) => {
  const authorize = authorizer(settings)
  return (knock: Knock): Admission => {
    if (knock.site._tag === "Refused" && (hasBody(knock.method) || knock.upgrade)) {
      return { _tag: "Refused", reason: "origin", error: knock.site.error }
    }
    const role = authorize(knock.pathname, knock.authorization, knock.socketToken)
    if (typeof role === "object") {
      return { _tag: "Refused", reason: "unauthorized", error: role, headers: unauthorizedHeaders }
    }
    const forbidden = knock.operation === undefined ? undefined : Access.permit(role, knock.operation)
    if (forbidden !== undefined) return { _tag: "Refused", reason: "forbidden", error: forbidden }
    return { _tag: "Admitted", role }
  }
}

export const tooLarge = (bytes: number, limit: number): PayloadTooLarge =>
  new PayloadTooLarge({ what: "the request body", bytes, limit })

export const unreadable = (): InvalidRequest => new InvalidRequest({ message: "the request body could not be read" })

/**
 * Why a request target is refused before any route sees it, or `undefined`: a raw `;` in its path.
 * The router (find-my-way) reads `;` as the start of the query, so `/v1/jobs/a;b` would act on job
 * `a`; a `;` that belongs to an id or name comes percent-encoded (`encodeURIComponent` does it).
 */
export const targetProblem = (url: string): InvalidRequest | undefined => {
  const semicolon = url.indexOf(";")
  if (semicolon === -1) return undefined
  const query = url.indexOf("?")
  if (query !== -1 && query < semicolon) return undefined
  const path = url.slice(0, query === -1 ? undefined : query)
  return new InvalidRequest({
    message: `the path ${clippedPath(path)} holds a raw ";": percent-encode it as %3B (encodeURIComponent does)`
  })
}

/** Longest path repeated in an error: the rest is cut. */
const clippedPath = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}…` : path)

/** The media type of a `content-type` header, without its parameters (`application/json; charset=utf-8` → `application/json`). */
const mediaType = (contentType: string | undefined): string | undefined =>
  contentType?.split(";", 1)[0]?.trim().toLowerCase()

/** The body types each transport reads: REST reads JSON; RPC over HTTP reads ndjson (JSON, one message per line). */
const restTypes: ReadonlyArray<string> = ["application/json"]
const rpcTypes: ReadonlyArray<string> = ["application/ndjson", "application/json"]

/**
 * Why a non-empty body sent to `pathname` with `contentType` is refused, or `undefined`. Bodies
 * must say they are JSON: no other type would be read right, and none a plain HTML form or a
 * cross-site "simple" request can send, so a page of another site cannot slip a mutation past
 * the browser's CORS checks (`CrossSite`). An empty body may go without a type. A type sent as
 * it is listed needs no parsing of its parameters or case: every call of a client carries one.
 */
export const bodyTypeProblem = (pathname: string, contentType: string | undefined): InvalidRequest | undefined => {
  const accepted = pathname === rpcPaths.http ? rpcTypes : restTypes
  if (contentType !== undefined && accepted.includes(contentType)) return undefined
  const type = mediaType(contentType)
  if (type !== undefined && accepted.includes(type)) return undefined
  return new InvalidRequest({
    message: `the body must be sent as content-type: ${accepted.join(" or ")}, not ${
      contentType === undefined ? "without a content type" : contentType.slice(0, 100)
    }`
  })
}

/**
 * Why a non-empty `/v1/` body cannot be read as JSON, or the parsed value. The nesting is checked
 * on the text, before anything parses or walks it (`Json`).
 */
export const parseJsonBody = (
  text: string,
  maxDepth: number
): { readonly problem: InvalidRequest } | { readonly value: unknown } => {
  if (Json.textNestsDeeperThan(text, maxDepth)) {
    return { problem: new InvalidRequest({ message: Json.tooDeepMessage("the body", maxDepth) }) }
  }
  try {
    return { value: JSON.parse(text) }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return { problem: new InvalidRequest({ message: `the body is not valid JSON: ${reason}` }) }
  }
}

/**
 * The path names the job; the token must be for that job, or the request is confused. The answer
 * names the token's job, not the token: its secret has no business in an error (or a log).
 */
export const tokenMismatch = (id: JobId, token: LeaseToken): InvalidRequest | undefined => {
  const tokenFor = parseLeaseToken(token)?.jobId
  return tokenFor === id
    ? undefined
    : new InvalidRequest({
      message: tokenFor === undefined
        ? "the lease token is not one a claim returned"
        : `the lease token is for job ${tokenFor}, not job ${id}`
    })
}

/** Seconds a client should wait before retrying, for the errors that say "later". */
export const retryAfterSeconds = (error: OsqueueError): number | undefined => {
  switch (error._tag) {
    case "Overloaded":
      return Math.max(1, Math.ceil(error.retryAfterMs / 1000))
    case "QueueFull":
      // How long until space may free (`QueueFull`); a broker that predates it sent none.
      return Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000))
    case "CommitFailed":
      return 1
    default:
      return undefined
  }
}

/** Requests answered before reaching an operation, by reason. */
export const refusedCounter = BrokerMetrics.refusedSeries
