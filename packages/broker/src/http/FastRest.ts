/**
 * The REST fast path: the hot routes (`POST /v1/jobs`, `/v1/jobs/batch`, `/v1/jobs/:id/complete`,
 * `/v1/jobs/batch/complete`) answered by a plain Node listener in front of the HttpApi app, as the
 * router, HttpApi and its per-request Schema work cost more broker CPU than the operation. It runs
 * the same `Handlers` (`FastRoutes`), the same checks (`HttpChecks`), the endpoints' own schemas
 * and answers with the same status, headers and bytes. A request it does not take in one piece
 * (chunked, not JSON, an upgrade, from a browser page, an escaped id…) goes on to the app untouched.
 */
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { httpStatus, OsqueueError } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Http from "node:http"
import * as Access from "../Access.js"
import { BrokerConfig } from "../BrokerConfig.js"
import * as FastRoutes from "./FastRoutes.js"
import { FrontDoor, type Listener } from "./FrontDoor.js"
import type { Handlers } from "../Handlers.js"
import * as HttpChecks from "./HttpChecks.js"

const maxParamLength = 100

/** The route of a request line, matched exactly: anything unusual is the router's to judge. */
const match = (
  routes: FastRoutes.Routes,
  url: string
): { readonly route: FastRoutes.Route; readonly id?: string } | undefined => {
  switch (url) {
    case "/v1/jobs":
      return { route: routes.enqueue }
    case "/v1/jobs/batch":
      return { route: routes.enqueueMany }
    case "/v1/jobs/batch/complete":
      return { route: routes.completeMany }
  }
  const prefix = "/v1/jobs/"
  const suffix = "/complete"
  if (!url.startsWith(prefix) || !url.endsWith(suffix)) return undefined
  const id = url.slice(prefix.length, url.length - suffix.length)
  // The router would percent-decode the id, split it, or refuse a long one (find-my-way's
  // maxParamLength): leave those to it.
  return id === "" || id.length > maxParamLength || /[/%?#]/.test(id) ? undefined : { route: routes.complete, id }
}

const encodeError = Schema.encodeSync(OsqueueError)
const encodeDecodeError = Schema.encodeSync(HttpApiDecodeError)

const decodeError = (error: ParseResult.ParseError) =>
  encodeDecodeError(
    new HttpApiDecodeError({
      issues: ParseResult.ArrayFormatter.formatErrorSync(error),
      message: ParseResult.TreeFormatter.formatErrorSync(error)
    })
  )

/** A JSON answer as HttpApi's `HttpServerResponse.json` writes it. */
const json = (response: Http.ServerResponse, status: number, value: unknown, extra?: Readonly<Record<string, string>>) => {
  const body = JSON.stringify(value)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    ...extra
  })
  response.end(body)
}

/** What the platform answers for a request it could not decode or a defect: the status, no body. */
const bare = (response: Http.ServerResponse, status: number) => {
  response.writeHead(status)
  response.end()
}

const failure = (response: Http.ServerResponse, error: OsqueueError) => {
  const seconds = HttpChecks.retryAfterSeconds(error)
  json(response, httpStatus(error), encodeError(error), seconds === undefined ? undefined : { "retry-after": String(seconds) })
}

const refuse = (
  response: Http.ServerResponse,
  reason: string,
  error: OsqueueError,
  headers?: Readonly<Record<string, string>>
) => {
  HttpChecks.refusedCounter(reason).unsafeUpdate(1, [])
  json(response, httpStatus(error), encodeError(error), headers)
}

const readBody = (request: Http.IncomingMessage, onText: (text: string) => void, onError: () => void) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => onText(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")))
  request.on("error", onError)
}

export const make: Effect.Effect<Listener, never, Handlers> = Effect.gen(function*() {
  const table = yield* FastRoutes.make
  const settings = yield* BrokerConfig
  const authorize = HttpChecks.authorizer(settings)
  const limit = settings.maxBodyBytes

  // A client that hung up gets no answer; what it asked for was submitted and commits anyway, as
  // on the HttpApi path (whose interrupt only stops the wait).
  const answer = (response: Http.ServerResponse, route: FastRoutes.Route, exit: Exit.Exit<unknown, OsqueueError>) => {
    if (response.writableEnded || response.destroyed) return
    if (Exit.isSuccess(exit)) {
      const encoded = route.encode(exit.value)
      return Either.isRight(encoded) ? json(response, route.status, encoded.right) : json(response, 400, decodeError(encoded.left))
    }
    const error = Cause.failureOption(exit.cause)
    return Option.isSome(error) ? failure(response, error.value) : bare(response, 500)
  }

  const run = (response: Http.ServerResponse, route: FastRoutes.Route, id: string | undefined, text: string) => {
    let body: unknown = null
    if (text !== "") {
      const parsed = HttpChecks.parseJsonBody(text, settings.maxJsonDepth)
      if ("problem" in parsed) return refuse(response, "malformed_json", parsed.problem)
      body = parsed.value
    }
    const prepared = route.prepare(id, body)
    if (Either.isLeft(prepared)) return json(response, 400, decodeError(prepared.left))
    prepared.right((exit) => answer(response, route, exit))
  }

  return (request, response) => {
    const url = request.url
    if (request.method !== "POST" || url === undefined) return false
    const found = match(table, url)
    const headers = request.headers
    const declared = headers["content-length"]
    // A browser's request (it has an Origin) goes to the gate, which checks it and answers CORS.
    if (
      found === undefined || declared === undefined || headers["upgrade"] !== undefined ||
      headers["origin"] !== undefined || !HttpChecks.isJsonType(headers["content-type"])
    ) return false

    const role = authorize(url, headers["authorization"], undefined)
    if (typeof role === "object") {
      refuse(response, "unauthorized", role, HttpChecks.unauthorizedHeaders)
      return true
    }
    const forbidden = Access.permit(role, found.route.operation)
    if (forbidden !== undefined) {
      refuse(response, "forbidden", forbidden)
      return true
    }
    const bytes = Number(declared)
    if (bytes > limit) {
      refuse(response, "too_large", HttpChecks.tooLarge(bytes, limit))
      return true
    }
    readBody(
      request,
      (text) => run(response, found.route, found.id, text),
      () => refuse(response, "unreadable", HttpChecks.unreadable())
    )
    return true
  }
})

/**
 * Opens the fast path on the server's `FrontDoor` for the life of the layer, when the server has
 * one (`Broker.nodeServer`) and `BrokerConfig.fastRest` is on; otherwise every request goes
 * through HttpApi.
 */
export const layer: Layer.Layer<never, never, Handlers> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const door = yield* Effect.serviceOption(FrontDoor)
    const settings = yield* BrokerConfig
    if (Option.isNone(door) || !settings.fastRest) return
    const close = door.value.open(yield* make)
    yield* Effect.addFinalizer(() => Effect.sync(close))
  })
)

