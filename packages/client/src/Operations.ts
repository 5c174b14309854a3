/**
 * The operations of the `OsqueueClient` service (`ClientShape`) over a `Router` (leader discovery + retries).
 * Inputs are validated here so that a bad call fails with `InvalidRequest` before it is sent.
 */
import {
  ClaimRequestOnWire,
  CompleteAndClaimRequestOnWire,
  type CompleteRequest,
  type EnqueueOptions,
  EnqueueOptionsOnWire,
  FailRequest,
  FlowRequest,
  HeartbeatRequest,
  InvalidRequest,
  isEnqueueOptions,
  isLeaseToken,
  type Job,
  JobId,
  JobTrace,
  LeaseToken,
  ListQuery,
  maxEnqueueBatch,
  type OsqueueError,
  PriorityRequest,
  PurgeRequest,
  ScheduleIdRequest,
  ScheduleSpec,
  SetLimitRequest,
  WatchRequest
} from "@osqueue/types"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { identity } from "effect/Function"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { outcome, resultWithin, waitLimit, type WaitSettings } from "./Awaiting.js"
import type {
  EnqueueAndWaitSettings,
  EnqueueSettings,
  JobInput,
  OsqueueClientShape,
  QueueOperations
} from "./ClientShape.js"
import type { ClientError, WaitError } from "./Errors.js"
import * as Coalesce from "./internal/coalesce.js"
import { watchLeader } from "./internal/watchLeader.js"
import * as JobDefinition from "./JobDefinition.js"
import { isRetryableClientError, type Router } from "./Router.js"
import type { BrokerApi } from "./Transport.js"

const invalid = (what: string) => (error: ParseResult.ParseError) =>
  new InvalidRequest({ message: `${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })

/** A valid token (every call of a worker) is checked by the guard alone; the schema words the refusal. */
const decodeToken = (token: string): Effect.Effect<LeaseToken, InvalidRequest> =>
  isLeaseToken(token)
    ? Effect.succeed(token)
    : Schema.decodeUnknown(LeaseToken)(token).pipe(Effect.mapError(invalid("invalid lease token")))
const decodeId = (id: string) => Schema.decodeUnknown(JobId)(id).pipe(Effect.mapError(invalid("invalid job id")))

/** Most single calls merged into one batch call. */
const maxCoalesced = 1_000

/**
 * A merged batch refused as a whole for something one item may have caused (a job too large, a
 * body past the broker's limit, a queue too full for all of them): each item is sent alone.
 */
const mayBeOneItem = (error: ClientError): boolean =>
  error._tag === "InvalidRequest" || error._tag === "PayloadTooLarge" || error._tag === "QueueFull"

/** Checks a request against the contract's schema, so a bad one fails here instead of as a defect. */
const validated = <A, I>(schema: Schema.Schema<A, I>, what: string) => (value: A): Effect.Effect<A, InvalidRequest> =>
  Effect.as(Effect.mapError(Schema.validate(schema)(value), invalid(`invalid ${what}`)), value)

/** Levels of nesting `plainJson` looks into before it leaves the verdict to `JSON.stringify` (a cycle's too). */
const plainDepth = 32

/**
 * True when `value` is made of plain JSON values only — primitives, arrays, objects of
 * `Object.prototype` (or none) without `toJSON`, at most `plainDepth` deep — which
 * `JSON.stringify` writes without throwing. False says nothing: the value may still be JSON.
 * A look at each value, where a stringify writes each string out: for jobs of 200-byte payloads
 * about a tenth of its cost (docs/performance.md, "An enqueued job written field by field, and
 * the client's batch checked once").
 */
const plainJson = (value: unknown, depth: number): boolean => {
  if (typeof value !== "object" || value === null) return typeof value !== "bigint"
  if (depth === 0) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!plainJson(value[i], depth - 1)) return false
    return true
  }
  const prototype: unknown = Object.getPrototypeOf(value)
  if ((prototype !== Object.prototype && prototype !== null) || "toJSON" in value) return false
  for (const key in value) if (!plainJson((value as Record<string, unknown>)[key], depth - 1)) return false
  return true
}

/**
 * Payloads, results and progress travel as JSON. One that cannot (a BigInt, a cycle) is refused
 * here: past this point it would die in the transport's encoder, with every call merged with it.
 * A value of plain JSON values is known to write without writing it (`plainJson`); any other is
 * written once to know.
 */
const sendable = <A>(
  what: string,
  value: unknown,
  then: Effect.Effect<A, ClientError>
): Effect.Effect<A, ClientError> => {
  try {
    if (!plainJson(value, plainDepth)) JSON.stringify(value)
    return then
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return Effect.fail(
      new InvalidRequest({ message: `the ${what} cannot be sent as JSON (${reason}); use plain JSON values` })
    )
  }
}

const validateEnqueueOptions = Schema.validateEither(EnqueueOptionsOnWire)

/**
 * A job's options as sent, with an idempotency key (a new one each time, unless given). Valid
 * options (every job, as a rule) are checked by the guard alone, as `decodeToken` checks a token;
 * the schema words a refusal.
 */
const enqueueOptions = (input: JobInput): Either.Either<EnqueueOptions, InvalidRequest> => {
  const idempotencyKey = input.idempotencyKey ?? crypto.randomUUID()
  // Copied by `Object.assign`, which gives the spread's fields in their order: V8 checked the
  // copy a spread makes several times slower (docs/performance.md, "An enqueued job written
  // field by field, and the client's batch checked once"). An own `__proto__` (as JSON makes
  // one) would set the copy's prototype rather than be copied: such options are spread, and
  // refused for that key.
  const options: EnqueueOptions = Object.hasOwn(input, "__proto__")
    ? { ...input, idempotencyKey }
    : Object.assign({}, input, { idempotencyKey })
  return isEnqueueOptions(options)
    ? Either.right(options)
    : Either.mapLeft(validateEnqueueOptions(options), (error) => invalid(`invalid job of type ${input.type}`)(error))
}

const encodePayload = (definition: JobDefinition.Any, payload: unknown): Effect.Effect<unknown, InvalidRequest> =>
  Schema.encode(definition.payload)(payload).pipe(
    Effect.mapError(invalid(`invalid payload for job type ${definition.type}`))
  )

const typedInput = (
  definition: JobDefinition.Any,
  payload: unknown,
  options: EnqueueSettings | undefined
): Effect.Effect<JobInput, InvalidRequest> =>
  Effect.map(encodePayload(definition, payload), (encoded) => ({
    ...definition.defaults,
    ...options,
    type: definition.type,
    payload: encoded
  }))

/**
 * The service over a router; every transport layer ends here. Single enqueues and completions
 * made in the same turn of the event loop go out as one `EnqueueMany` / `CompleteMany`.
 */
export const make = (router: Router): Effect.Effect<QueueOperations, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sendEnqueue = yield* Coalesce.make<EnqueueOptions, Job, ClientError>({
      maxItems: maxCoalesced,
      single: (job) => router.call("enqueue", (api) => api.Enqueue(job)),
      batch: (jobs) =>
        router.call("enqueueMany", (api) =>
          Effect.map(api.EnqueueMany({ jobs }), Coalesce.succeedEach<Job, ClientError>)),
      retryAlone: mayBeOneItem
    })

    /**
     * Completions made in one turn go out as one `CompleteMany` (`many`), each answered as
     * `single` answers one alone.
     */
    const completions = <B>(
      single: (api: BrokerApi, request: typeof CompleteRequest.Type) => Effect.Effect<B, ClientError>,
      many: (
        api: BrokerApi,
        items: ReadonlyArray<typeof CompleteRequest.Type>
      ) => Effect.Effect<ReadonlyArray<Either.Either<B, OsqueueError>>, ClientError>
    ) =>
      Coalesce.make<typeof CompleteRequest.Type, B, ClientError>({
        maxItems: maxCoalesced,
        single: (request) =>
          router.call("complete", (api) => single(api, request)),
        batch: (items) =>
          router.call("completeMany", (api) =>
            Effect.map(many(api, items), (outcomes) =>
              outcomes.map(Either.match({ onLeft: Exit.fail, onRight: Exit.succeed })))),
        retryAlone: mayBeOneItem,
        retryItem: isRetryableClientError
      })

    const sendComplete = yield* completions(
      (api, request) => api.Complete(request),
      (api, items) => api.CompleteMany({ items })
    )

    // The worker's completions, answered with the jobs' ids (`CompleteManyIds`): apart from
    // `complete`'s, whose callers get the jobs.
    const sendCompleteId = yield* completions(
      (api, request) => Effect.map(api.Complete(request), (job) => job.id),
      (api, items) => api.CompleteManyIds({ items })
    )

    /** A completion's token and result checked, then sent through `send`. */
    const completing =
      <B>(send: (request: typeof CompleteRequest.Type) => Effect.Effect<B, ClientError>) =>
      (token: string, result?: unknown): Effect.Effect<B, ClientError> =>
        Effect.flatMap(decodeToken(token), (t) =>
          sendable("result", result, send(result === undefined ? { token: t } : { token: t, result })))

    /**
     * With spans exported, an enqueue is a `Producer.enqueue` span and each job carries it as its
     * `traceparent`: the broker's and the worker's spans for the job join its trace
     * (docs/tracing.md). Otherwise nothing is added.
     */
    const tracing = yield* JobTrace.exporting

    const traced = <A>(
      name: string,
      attributes: () => Record<string, unknown>,
      send: (stamp: (options: EnqueueOptions) => EnqueueOptions) => Effect.Effect<A, ClientError>,
      annotate?: (sent: A, span: Tracer.Span) => void
    ): Effect.Effect<A, ClientError> =>
      !tracing
        ? send(identity)
        : Effect.useSpan(name, { kind: "producer", attributes: attributes(), captureStackTrace: false }, (span) => {
          const traceparent = JobTrace.traceparentOf(span)
          return send(traceparent === undefined ? identity : (options) => ({ ...options, traceparent })).pipe(
            Effect.tap((sent) =>
              annotate?.(sent, span)
            ),
            Effect.withParentSpan(span)
          )
        })

    /** One job checked and sent, merged with the other single enqueues of its turn. */
    const sendOne = (
      input: JobInput,
      stamp: (options: EnqueueOptions) => EnqueueOptions
    ): Effect.Effect<Job, ClientError> =>
      Either.match(enqueueOptions(input), {
        onLeft: Effect.fail,
        onRight: (options) => sendable(`payload of a ${input.type} job`, input.payload, sendEnqueue(stamp(options)))
      })

    const enqueue = (
      typeOrDefinition: string | JobDefinition.Any,
      payload?: unknown,
      options?: EnqueueSettings
    ): Effect.Effect<Job, ClientError> =>
      traced(
        "Producer.enqueue",
        () => ({
          "job.type": JobDefinition.isJobDefinition(typeOrDefinition) ? typeOrDefinition.type : typeOrDefinition
        }),
        (stamp) =>
          JobDefinition.isJobDefinition(typeOrDefinition)
            ? Effect.flatMap(typedInput(typeOrDefinition, payload, options), (input) => sendOne(input, stamp))
            // Suspended: each run of the effect is a job of its own, with an idempotency key of its own.
            : Effect.suspend(() =>
              sendOne(
                payload === undefined
                  ? { ...options, type: typeOrDefinition }
                  : { ...options, type: typeOrDefinition, payload },
                stamp
              )
            ),
        (job, span) => span.attribute("job.id", job.id)
      )

    /**
     * A batch checked and sent in one call; `send` is the call (whole jobs answered, or ids).
     * The operation's name is the router's (retries, the leader's discovery), the same for both.
     */
    const enqueueBatch = <A>(
      send: (api: BrokerApi, request: { readonly jobs: ReadonlyArray<EnqueueOptions> }) => Effect.Effect<A, ClientError>
    ) =>
    (
      first: ReadonlyArray<JobInput> | JobDefinition.Any,
      payloads?: ReadonlyArray<unknown>,
      options?: EnqueueSettings
    ): Effect.Effect<A, ClientError> =>
      Effect.gen(function*() {
        const inputs: ReadonlyArray<JobInput> = JobDefinition.isJobDefinition(first)
          ? yield* Effect.forEach(payloads ?? [], (payload) => typedInput(first, payload, options))
          : first
        if (inputs.length > maxEnqueueBatch) {
          return yield* new InvalidRequest({
            message: `at most ${maxEnqueueBatch} jobs per enqueueMany, got ${inputs.length}`
          })
        }
        return yield* traced(
          "Producer.enqueueMany",
          () => ({ jobs: inputs.length }),
          (stamp) => {
            const jobs: Array<EnqueueOptions> = []
            for (const input of inputs) {
              const checked = enqueueOptions(input)
              if (Either.isLeft(checked)) return Effect.fail(checked.left)
              jobs.push(stamp(checked.right))
            }
            return sendable(
              "payload of a job in this batch",
              jobs.map((job) => job.payload),
              router.call("enqueueMany", (api) => send(api, { jobs }))
            )
          }
        )
      })

    const enqueueAndWait = (
      typeOrDefinition: string | JobDefinition.Any,
      payload?: unknown,
      options?: EnqueueAndWaitSettings
    ): Effect.Effect<unknown, WaitError> =>
      Effect.scoped(Effect.gen(function*() {
        const { waitMs: _, ...settings } = options ?? {}
        const waitMs = yield* waitLimit(options)
        const id = yield* Deferred.make<JobId>()
        const subscribed = yield* Deferred.make<void>()
        const waiting = yield* Effect.forkScoped(
          outcome(router, Deferred.await(id), Deferred.succeed(subscribed, undefined))
        )
        // Enqueue only once the broker sends events (or fail, e.g. over REST, with nothing sent).
        yield* Effect.raceFirst(Deferred.await(subscribed), Effect.asVoid(Fiber.join(waiting)))
        const job = yield* enqueue(typeOrDefinition, payload, settings)
        yield* Deferred.succeed(id, job.id)
        return yield* resultWithin(
          Fiber.join(waiting),
          job.id,
          waitMs,
          JobDefinition.isJobDefinition(typeOrDefinition) ? typeOrDefinition : undefined
        )
      }))

    const result = (
      idOrDefinition: string | JobDefinition.Any,
      idOrOptions?: string | WaitSettings,
      options?: WaitSettings
    ): Effect.Effect<unknown, WaitError> => {
      const [definition, id, settings] = JobDefinition.isJobDefinition(idOrDefinition)
        ? [idOrDefinition, idOrOptions as string, options]
        : [undefined, idOrDefinition, idOrOptions as WaitSettings | undefined]
      return Effect.flatMap(
        Effect.zip(decodeId(id), waitLimit(settings)),
        ([jobId, waitMs]) =>
          resultWithin(outcome(router, Effect.succeed(jobId), Effect.void), jobId, waitMs, definition)
      )
    }

    const byToken = <A>(
      operation: string,
      token: string,
      f: (token: LeaseToken) => (api: BrokerApi) => Effect.Effect<A, ClientError>
    ) => Effect.flatMap(decodeToken(token), (decoded) => router.call(operation, f(decoded)))

    const byId = <A>(
      operation: string,
      id: string,
      f: (id: JobId) => (api: BrokerApi) => Effect.Effect<A, ClientError>
    ) => Effect.flatMap(decodeId(id), (decoded) => router.call(operation, f(decoded)))

    const typeRequest = (type: string | undefined) => (type === undefined ? {} : { type })

    return {
      enqueue: enqueue as OsqueueClientShape["enqueue"],
      enqueueMany: enqueueBatch((api, request) => api.EnqueueMany(request)) as OsqueueClientShape["enqueueMany"],
      enqueueManyIds: enqueueBatch((api, request) => api.EnqueueManyIds(request)) as OsqueueClientShape[
        "enqueueManyIds"
      ],
      enqueueAndWait: enqueueAndWait as OsqueueClientShape["enqueueAndWait"],
      result: result as OsqueueClientShape["result"],
      claim: (request) =>
        Effect.flatMap(validated(ClaimRequestOnWire, "claim request")(request), () =>
          router.call("claim", (api) =>
            api.Claim(request), {
            extraTime: Duration.millis(request.waitMs ?? 0)
          })),
      heartbeat: (token, options) =>
        byToken("heartbeat", token, (t) => {
          const request = {
            token: t,
            ...(options?.progress === undefined ? {} : { progress: options.progress }),
            ...(options?.leaseMs === undefined ? {} : { leaseMs: options.leaseMs })
          }
          return (api) =>
            sendable(
              "progress",
              request.progress,
              Effect.flatMap(validated(HeartbeatRequest, "heartbeat")(request), api.Heartbeat)
            )
        }),
      complete: completing(sendComplete),
      completeId: completing(sendCompleteId),
      // Never coalesced: each answers its own jobs.
      completeAndClaim: (token, result, next) =>
        byToken("completeAndClaim", token, (t) => {
          const request = { ...next, token: t, ...(result === undefined ? {} : { result }) }
          return (api) =>
            sendable(
              "result",
              result,
              Effect.flatMap(
                validated(CompleteAndClaimRequestOnWire, "complete-and-claim request")(request),
                api.CompleteAndClaim
              )
            )
        }),
      fail: (token, error, options) =>
        byToken("fail", token, (t) => (api) =>
          Effect.flatMap(validated(FailRequest, "fail request")({ ...options, token: t, error }), api.Fail)),
      release: (token) =>
        byToken("release", token, (t) => (api) =>
          api.Release({ token: t })),
      cancel: (id) =>
        byId("cancel", id, (i) => (api) =>
          api.Cancel({ id: i })),
      retry: (id) =>
        byId("retry", id, (i) => (api) => api.Retry({ id: i })),
      retryDead: (type) =>
        router.call("retryDead", (api) => Effect.map(api.RetryDead(typeRequest(type)), (r) => r.count)),
      promote: (id) => byId("promote", id, (i) => (api) => api.Promote({ id: i })),
      setPriority: (id, priority) =>
        byId("setPriority", id, (i) => (api) =>
          Effect.flatMap(validated(PriorityRequest, "priority request")({ id: i, priority }), api.SetPriority)),
      delete: (id) =>
        byId("delete", id, (i) => (api) =>
          api.Delete({ id: i })),
      purge: (state, type) =>
        Effect.flatMap(validated(PurgeRequest, "purge request")({ state, ...typeRequest(type) }), (request) =>
          router.call("purge", (api) =>
            Effect.map(api.Purge(request), (r) =>
              r.count))),
      pause: (type) =>
        router.call("pause", (api) =>
          api.Pause(typeRequest(type))),
      resume: (type) => router.call("resume", (api) => api.Resume(typeRequest(type))),
      upsertSchedule: (spec) =>
        sendable(
          "schedule's payload",
          spec.job?.payload,
          Effect.flatMap(
            validated(ScheduleSpec, "schedule")(spec),
            (valid) => router.call("upsertSchedule", (api) => api.UpsertSchedule(valid))
          )
        ),
      enqueueFlow: (job, options) =>
        sendable(
          "flow's payloads",
          job,
          Effect.flatMap(
            validated(FlowRequest, "flow")({
              job,
              ...(options?.onChildFailure === undefined ? {} : { onChildFailure: options.onChildFailure })
            }),
            (request) => router.call("enqueueFlow", (api) => api.EnqueueFlow(request))
          )
        ),
      removeSchedule: (id) =>
        Effect.flatMap(validated(ScheduleIdRequest, "schedule id")({ id }), (request) =>
          router.call("removeSchedule", (api) =>
            api.RemoveSchedule(request))),
      listSchedules: router.call("listSchedules", (api) =>
        api.ListSchedules),
      setLimit: (limit) =>
        Effect.flatMap(validated(SetLimitRequest, "limit")(limit), (request) =>
          router.call("setLimit", (api) =>
            api.SetLimit(request))),
      clearLimit: (type) =>
        router.call("clearLimit", (api) => api.ClearLimit(typeRequest(type))),
      limits: router.call("limits", (api) => api.Limits),
      get: (id) => byId("get", id, (i) => (api) => api.Get({ id: i })),
      list: (query) =>
        Effect.flatMap(
          validated(ListQuery, "list query")(query ?? {}),
          (q) => router.call("list", (api) => api.List(q))
        ),
      stats: router.call("stats", (api) => api.Stats),
      workers: router.call("workers", (api) => api.Workers),
      leader: router.call("leader", (api) => api.Leader),
      state: router.call("state", (api) => api.State),
      watch: (options) =>
        Stream.unwrap(
          Effect.map(
            validated(WatchRequest, "watch request")(options ?? {}),
            (request) => router.stream((api) => watchLeader(api, request))
          )
        ),
      currentBroker: router.current
    }
  })
