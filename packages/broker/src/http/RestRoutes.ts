/**
 * Every REST route of `OsqueueApi`, as the edge (`Edge`) serves it: matched by find-my-way (the
 * router HttpApi itself uses, same configuration, so `RouteTable`'s 404/405 agree), its path,
 * query and body decoded by the endpoint's own schemas (compiled once, here), handed to
 * `Operations`, its success encoded by the endpoint's schema with the endpoint's status. HttpApi's
 * definition stays the one source of the routes and of the OpenAPI document; no HttpApi server
 * runs (docs/architecture.md, "The request path"). Single enqueues and completions (claiming
 * next or not) are gathered (`Gather`); a claim is started by callback (`Operations.claimWith`).
 * Each route is served twice: at its own path for the default queue, and under `/queues/:queue`
 * for the queue it names (`Queues`).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import {
  type ClaimLimit,
  type ClaimRequest,
  clipped,
  type CompleteAndClaimRequest,
  type CompleteManyRequest,
  type CompleteRequest,
  type EnqueueManyRequest,
  type EnqueueOptions,
  type FailRequest,
  type FlowRequest,
  type HeartbeatRequest,
  type IdRequest,
  type JobId,
  type LeaseToken,
  type ListQuery,
  OsqueueApi,
  type OsqueueError,
  type PurgeRequest,
  QueueNames,
  type Role,
  Roles,
  type ScheduleIdRequest,
  type ScheduleSpec,
  type TokenRequest,
  type TypeRequest
} from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as ParseResult from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type { OperationsShape } from "../Operations.js"
import { Queues } from "../Queues.js"
import { gather, type Respond } from "./Gather.js"
import * as HttpChecks from "./HttpChecks.js"

/** Starts the operation; the returned function, if any, interrupts it (the client hung up). */
export type Start = (respond: Respond) => (() => void) | undefined

/** What a request brings to its operation, decoded. */
interface Input {
  readonly path: { readonly id: JobId }
  readonly payload: never
  readonly query: ListQuery
  /** The role the edge found for the request's token. */
  readonly role: Role | undefined
}

export interface Route {
  readonly name: string
  /** What a token's role must allow (`Roles`). */
  readonly operation: Roles.Operation
  readonly status: number
  /** Decodes the path parameters, the query and the body as HttpApi does: the operation, ready to start. */
  readonly prepare: (
    params: Readonly<Record<string, string>>,
    query: Readonly<Record<string, string | ReadonlyArray<string>>>,
    body: unknown,
    role: Role | undefined
  ) => Either.Either<Start, ParseResult.ParseError>
  readonly encode: (value: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

/** The body HttpApi answers a request it cannot decode with (400 `HttpApiDecodeError`). */
export const decodeError = (error: ParseResult.ParseError): unknown =>
  encodeDecodeError(
    new HttpApiDecodeError({
      issues: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
        ...issue,
        message: clipped(issue.message)
      })),
      message: clipped(ParseResult.TreeFormatter.formatErrorSync(error))
    })
  )
const encodeDecodeError = Schema.encodeSync(HttpApiDecodeError)

type RunCallback = ReturnType<typeof Runtime.runCallback<never>>

/** A gathered call (`Gather`): answered on its own, never interrupted. */
const gathered = <I>(call: (input: I, respond: Respond) => void) => (input: I): Start => (respond) => {
  call(input, respond)
  return undefined
}

const checked = (id: JobId, token: LeaseToken, then: Start): Start => {
  const mismatch = HttpChecks.tokenMismatch(id, token)
  return mismatch === undefined ? then : (respond) => (respond(Exit.fail(mismatch)), undefined)
}

/** Endpoint name → its operation over `Operations`: each request passed on as its schemas decoded it. */
const operations = (
  h: OperationsShape,
  alone: (operation: Effect.Effect<unknown, OsqueueError>) => Start,
  enqueue: (options: EnqueueOptions) => Start,
  complete: (request: CompleteRequest) => Start,
  completeAndClaim: (request: CompleteAndClaimRequest) => Start
): Record<string, (input: Input) => Start> =>
  ({
    enqueue: ({ payload }) => enqueue(payload),
    enqueueMany: ({ payload }: { payload: EnqueueManyRequest }) => alone(h.enqueueMany(payload)),
    enqueueFlow: ({ payload }: { payload: FlowRequest }) => alone(h.enqueueFlow(payload)),
    claim: ({ payload }: { payload: ClaimRequest }) => (respond) => h.claimWith(payload, respond),
    heartbeat: ({ path, payload }: { path: IdRequest; payload: HeartbeatRequest }) =>
      checked(path.id, payload.token, alone(h.heartbeat(payload))),
    complete: ({ path, payload }: { path: IdRequest; payload: CompleteRequest }) =>
      checked(path.id, payload.token, complete(payload)),
    completeAndClaim: ({ path, payload }: { path: IdRequest; payload: CompleteAndClaimRequest }) =>
      checked(path.id, payload.token, completeAndClaim(payload)),
    completeMany: ({ payload }: { payload: CompleteManyRequest }) => alone(h.completeMany(payload)),
    fail: ({ path, payload }: { path: IdRequest; payload: FailRequest }) =>
      checked(path.id, payload.token, alone(h.fail(payload))),
    release: ({ path, payload }: { path: IdRequest; payload: TokenRequest }) =>
      checked(path.id, payload.token, alone(h.release(payload))),
    cancel: ({ path }) => alone(h.cancel(path)),
    retry: ({ path }) => alone(h.retry(path)),
    promote: ({ path }) => alone(h.promote(path)),
    setPriority: ({ path, payload }: { path: IdRequest; payload: { priority: number } }) =>
      alone(h.setPriority({ id: path.id, priority: payload.priority })),
    delete: ({ path }) => alone(h.delete(path)),
    purge: ({ payload }: { payload: PurgeRequest }) => alone(h.purge(payload)),
    get: ({ path }) => alone(h.get(path)),
    list: ({ query }) => alone(h.list(query)),
    // An empty body means every type.
    retryDead: ({ payload }: { payload: TypeRequest | null }) => alone(h.retryDead(payload ?? {})),
    pause: ({ payload }: { payload: TypeRequest | null }) => alone(h.pause(payload ?? {})),
    resume: ({ payload }: { payload: TypeRequest | null }) => alone(h.resume(payload ?? {})),
    upsertSchedule: ({ payload }: { payload: ScheduleSpec }) => alone(h.upsertSchedule(payload)),
    removeSchedule: ({ path }: { path: ScheduleIdRequest }) => alone(h.removeSchedule(path)),
    listSchedules: () => alone(h.listSchedules),
    limits: () => alone(h.limits),
    setLimit: ({ payload }: { payload: ClaimLimit }) => alone(h.setLimit(payload)),
    clearLimit: ({ payload }: { payload: TypeRequest | null }) => alone(h.clearLimit(payload ?? {})),
    stats: () => alone(h.stats),
    workers: () => alone(h.workers),
    leader: () => alone(h.leader),
    // The edge lets no request to this route through without a role (`admin` when the broker has no token).
    whoami: ({ role }) => alone(Effect.succeed({ role: role ?? "read" }))
  }) as Record<string, (input: Input) => Start>

const decoder = (ast: { readonly ast: Schema.Schema.AnyNoContext["ast"] } | undefined) =>
  ast === undefined ? undefined : Schema.decodeUnknownEither(Schema.make<unknown>(ast.ast))

/** The routes, by method and path; `find` answers the route of a request line, with its decoded path parameters and query. */
export const make = Effect.gen(function*() {
  const queues = yield* Queues
  const runCallback: RunCallback = Runtime.runCallback(yield* Effect.runtime<never>())
  const alone = (operation: Effect.Effect<unknown, OsqueueError>): Start => (respond) => {
    const cancel = runCallback(operation, { onExit: respond })
    return () => cancel()
  }
  // Each queue's operations by endpoint name, built once.
  const byQueue = new Map(queues.all.map(({ operations: h, name }) => [
    name,
    operations(
      h,
      alone,
      gathered(gather(runCallback, h.enqueueEach)),
      gathered(gather(runCallback, h.completeEach)),
      gathered(gather(runCallback, h.completeAndClaimEach))
    )
  ]))
  /** The operation of endpoint `name` on the queue named (none: the default queue), or a start that answers `UnknownQueue`. */
  const runOn = (queue: string | undefined, name: string): (input: Input) => Start => {
    const served = queues.resolve(queue)
    if (Either.isRight(served)) return byQueue.get(served.right.name)![name]!
    return () => (respond) => (respond(Exit.fail(served.left)), undefined)
  }
  const table = HttpLayerRouter.FindMyWay.make<Route>({})

  HttpApi.reflect(OsqueueApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      const name = endpoint.name
      const operation = Roles.ofEndpoint(name)
      if (operation === undefined || queues.all.some((queue) => byQueue.get(queue.name)![name] === undefined)) {
        throw new Error(`the endpoint ${name} has no operation here`)
      }
      const decodePath = decoder(endpoint.pathSchema._tag === "Some" ? endpoint.pathSchema.value : undefined)
      const decodeQuery = decoder(endpoint.urlParamsSchema._tag === "Some" ? endpoint.urlParamsSchema.value : undefined)
      const decodePayload = decoder(endpoint.payloadSchema._tag === "Some" ? endpoint.payloadSchema.value : undefined)
      const success = Schema.make<unknown>(endpoint.successSchema.ast)
      const route = (queueOf: (params: Readonly<Record<string, string>>) => string | undefined): Route => ({
        name,
        operation,
        status: HttpApiSchema.getStatusSuccess(success),
        encode: Schema.encodeUnknownEither(success),
        prepare: (params, query, body, role) => {
          const path = decodePath === undefined ? Either.right(undefined) : decodePath(params)
          if (Either.isLeft(path)) return Either.left(path.left)
          const urlParams = decodeQuery === undefined ? Either.right(undefined) : decodeQuery(query)
          if (Either.isLeft(urlParams)) return Either.left(urlParams.left)
          const payload = decodePayload === undefined ? Either.right(undefined) : decodePayload(body)
          if (Either.isLeft(payload)) return Either.left(payload.left)
          return Either.right(
            runOn(queueOf(params), name)(
              { path: path.right, query: urlParams.right, payload: payload.right, role } as Input
            )
          )
        }
      })
      table.on(endpoint.method, endpoint.path, route(() => undefined))
      table.on(endpoint.method, `${QueueNames.restPrefixPattern}${endpoint.path}`, route((params) => params.queue))
    }
  })

  return {
    /** The route of `method` on `url` (path and query, as in the request line); HEAD is served by the GET route. */
    find: (method: string, url: string) => table.find(method === "HEAD" ? "GET" : method, url)
  }
})

export type Routes = Effect.Effect.Success<typeof make>
