/**
 * The job as producers, workers and dashboards see it, and the options that create one.
 * Times are milliseconds since the Unix epoch, on the leader's clock.
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

/** Longest job id. */
export const maxJobIdLength = 128

export const JobId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(maxJobIdLength),
  Schema.brand("JobId"),
  Schema.annotations({ description: "A job's id, assigned by the broker (e.g. `job-42`)" })
)
export type JobId = typeof JobId.Type

/** Longest job type (and type named by a pause, a claim, a redrive). */
export const maxJobTypeLength = 200

export const JobType = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a job type must not be empty" }),
  Schema.maxLength(maxJobTypeLength, { message: () => `a job type has at most ${maxJobTypeLength} characters` }),
  Schema.annotations({ description: "What kind of work a job is; workers claim by type" })
)

export const JobState = Schema.Literal(
  "queued",
  "delayed",
  "running",
  "completed",
  "failed-waiting-retry",
  "dead",
  "cancelled",
  /** A flow's parent until each of its children finished (docs/flows.md). */
  "waiting-children"
)
export type JobState = typeof JobState.Type
export const jobStates: ReadonlyArray<JobState> = JobState.literals

/** Whole milliseconds, not negative: times and durations as the queue holds them. */
export const Millis = Schema.Int.pipe(Schema.nonNegative())

/**
 * Longest delay a request may ask for (`delayMs`, `retryDelayMs`, a backoff's times): ten years.
 * Requests are bounded so that every time the queue computes from them (`now + delay`) stays a
 * safe integer that queue.json can hold and read back (docs/architecture.md, "Limits").
 */
export const maxDelayMs = 10 * 366 * 24 * 60 * 60 * 1000

/** Latest instant a request may name (`runAt`): the last one a JavaScript `Date` can hold (year 275760). */
export const maxInstant = 8_640_000_000_000_000

/** A delay in a request: whole milliseconds, from 0 to `maxDelayMs`. */
export const DelayMs = Schema.Int.pipe(
  Schema.between(0, maxDelayMs, { message: () => `a delay is whole milliseconds from 0 to ${maxDelayMs} (ten years)` })
)

/** An instant in a request: milliseconds since the Unix epoch, from 0 to `maxInstant`. */
export const Instant = Schema.Int.pipe(
  Schema.between(0, maxInstant, {
    message: () => `an instant is whole milliseconds since 1970 from 0 to ${maxInstant}`
  })
)

const backoffOf = <S extends Schema.Schema<number>>(ms: S) =>
  Schema.Union(
    Schema.TaggedStruct("fixed", { delayMs: ms }),
    Schema.TaggedStruct("exponential", {
      /** Wait after the first failure; doubles after each further one. */
      baseMs: ms,
      /** Upper bound on the wait. */
      maxMs: ms,
      /** Spread each wait uniformly over [wait * (1 - jitter), wait]: 0 = none, 1 = full jitter. */
      jitter: Schema.Number.pipe(Schema.between(0, 1))
    })
  )

/** How long a failed job waits before its next attempt, as a request gives it (times up to `maxDelayMs`). */
export const Backoff = backoffOf(DelayMs)
export type Backoff = typeof Backoff.Type

/**
 * `Backoff` as a job holds it: any safe integer, so that a queue.json written before requests
 * were bounded still reads back (the state machine bounds what it computes from it).
 */
export const JobBackoff = backoffOf(Millis)

export const defaultBackoff: Extract<Backoff, { readonly _tag: "exponential" }> = {
  _tag: "exponential",
  baseMs: 1_000,
  maxMs: 300_000,
  jitter: 0.5
}

/**
 * Longest handler time limit a job may ask for (`timeoutMs`): 24 days, under the longest wait a
 * JavaScript timer takes (2^31 - 1 ms); a longer one would never fire.
 */
export const maxTimeoutMs = 24 * 24 * 60 * 60 * 1000

/** A handler time limit in a request: whole milliseconds, from 1 to `maxTimeoutMs`. */
export const TimeoutMs = Schema.Int.pipe(
  Schema.between(1, maxTimeoutMs, {
    message: () => `a handler time limit (timeoutMs) is whole milliseconds from 1 to ${maxTimeoutMs} (24 days)`
  })
)

/** Highest priority; the lowest is its negative. */
export const maxPriority = 1_000_000

export const Priority = Schema.Int.pipe(
  Schema.between(-maxPriority, maxPriority),
  Schema.annotations({ description: "Lower runs first; jobs of one priority run in enqueue order" })
)

/** Most attempts a job may ask for (`maxAttempts`). */
export const maxAttemptsLimit = 1_000

const MaxAttempts = Schema.Int.pipe(Schema.between(1, maxAttemptsLimit))

/** Longest idempotency key. */
export const maxIdempotencyKeyLength = 512

const IdempotencyKey = Schema.String.pipe(
  Schema.minLength(1, { message: () => "an idempotency key must not be empty" }),
  Schema.maxLength(maxIdempotencyKeyLength, {
    message: () => `an idempotency key has at most ${maxIdempotencyKeyLength} characters`
  })
)

/** A W3C `traceparent` is always this long (version 00). */
export const traceparentLength = 55

const traceparentPattern = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/
const zeroTraceId = "0".repeat(32)
const zeroSpanId = "0".repeat(16)

/**
 * A W3C trace context `traceparent` (version 00): `00-<trace id>-<parent span id>-<flags>`, in
 * lowercase hex, neither id all zeros. A job carries the span that enqueued it, so the span that
 * handles it joins the same trace (docs/tracing.md). It comes from clients: only this exact
 * shape, 55 characters, is taken.
 */
export const isTraceparent = (u: unknown): u is string =>
  typeof u === "string" && u.length === traceparentLength && traceparentPattern.test(u) &&
  u.slice(3, 35) !== zeroTraceId && u.slice(36, 52) !== zeroSpanId

const traceparentMessage = () =>
  "a traceparent is a W3C trace context header: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, lowercase, neither id all zeros"

export const Traceparent = Schema.String.pipe(
  Schema.pattern(traceparentPattern, { message: traceparentMessage }),
  Schema.filter((s) => isTraceparent(s), { message: traceparentMessage }),
  Schema.annotations({
    description: "A W3C trace context `traceparent`: the span that enqueued the job (docs/tracing.md)"
  })
)

/**
 * Parse options of every request that changes the queue: a field the request does not know is
 * refused (`{"typ":"email"}` must not pause every type). Reads stay lenient.
 */
export const strictFields = { parseOptions: { onExcessProperty: "error" } } as const

export const EnqueueOptions = Schema.Struct({
  type: JobType,
  payload: Schema.optionalWith(Schema.Unknown, { exact: true }),
  priority: Schema.optionalWith(Priority, { exact: true }),
  /** Claimable this long after the enqueue is committed. */
  delayMs: Schema.optionalWith(DelayMs, { exact: true }),
  /** Claimable from this instant (ms since epoch); wins over `delayMs`. */
  runAt: Schema.optionalWith(Instant, { exact: true }),
  maxAttempts: Schema.optionalWith(MaxAttempts, { exact: true }),
  backoff: Schema.optionalWith(Backoff, { exact: true }),
  /** Enqueueing a key that exists returns the existing job instead of a new one. */
  idempotencyKey: Schema.optionalWith(IdempotencyKey, { exact: true }),
  /** The producer's span, which the job's trace continues from (docs/tracing.md). */
  traceparent: Schema.optionalWith(Traceparent, { exact: true }),
  /**
   * How long one attempt's handler may run: past it the worker interrupts the handler and fails
   * the attempt with `JobTimeout` (retried with the job's backoff). Wins over the worker's
   * default for the type.
   */
  timeoutMs: Schema.optionalWith(TimeoutMs, { exact: true })
}).annotations({ identifier: "EnqueueOptions", ...strictFields })
export type EnqueueOptions = typeof EnqueueOptions.Type

/**
 * What a flow's parent does when a child dies, is cancelled or is deleted before it finished
 * (docs/flows.md): `fail` sends the parent to the dead-letter list with an error naming the
 * child; `ignore` lets it run once its other children finished, that child's failure in its
 * `childResults`.
 */
export const ChildFailurePolicy = Schema.Literal("fail", "ignore")
export type ChildFailurePolicy = typeof ChildFailurePolicy.Type
export const defaultChildFailurePolicy: ChildFailurePolicy = "fail"

/** How a child of a flow ended, as its parent keeps it (`Job.childResults`). */
export const ChildResult = Schema.Struct({
  state: Schema.Literal("completed", "dead", "cancelled", "deleted"),
  /** The child's result, when it completed with one that fit in the parent (see `resultOmitted`). */
  result: Schema.optionalWith(Schema.Unknown, { exact: true }),
  /**
   * The result did not fit: a parent keeps its children's results up to the payload limit in
   * all. Read it from the child (`get`) while retention keeps it.
   */
  resultOmitted: Schema.optionalWith(Schema.Literal(true), { exact: true }),
  /** Why a dead child died (its last error). */
  error: Schema.optionalWith(Schema.String, { exact: true })
})
export type ChildResult = typeof ChildResult.Type

/** One past attempt, newest last; the job keeps the last few. */
export const Attempt = Schema.Struct({
  attempt: Schema.Int,
  workerId: Schema.String,
  startedAt: Millis,
  endedAt: Schema.optionalWith(Millis, { exact: true }),
  outcome: Schema.Literal("running", "completed", "failed", "expired", "released", "cancelled"),
  error: Schema.optionalWith(Schema.String, { exact: true })
})
export type Attempt = typeof Attempt.Type

/** The lease a running job is held under: its token is `jobId/claims/epoch/secret` (`LeaseToken`). */
export const Lease = Schema.Struct({
  workerId: Schema.String,
  epoch: Schema.Int,
  expiresAt: Millis,
  /** The lease's length: a heartbeat extends it by this much; a takeover grants it again as grace. */
  ttlMs: Millis
})
export type Lease = typeof Lease.Type

export const Job = Schema.Struct({
  id: JobId,
  type: Schema.String,
  payload: Schema.Unknown,
  state: JobState,
  priority: Schema.Int,
  /** Attempts started so far (a release gives one back). */
  attempts: Schema.Int,
  maxAttempts: Schema.Int,
  /** Times the job was ever claimed: lease tokens carry it, so no token is ever issued twice. */
  claims: Schema.Int,
  backoff: JobBackoff,
  /** Enqueue order: FIFO within a priority, kept across redeliveries. */
  seq: Schema.Int,
  createdAt: Millis,
  /** When the job becomes (or became) claimable. */
  runAt: Millis,
  startedAt: Schema.optionalWith(Millis, { exact: true }),
  finishedAt: Schema.optionalWith(Millis, { exact: true }),
  idempotencyKey: Schema.optionalWith(Schema.String, { exact: true }),
  /**
   * The span its handling continues from (docs/tracing.md): the broker's enqueue span when the
   * broker traces, else the producer's. Read leniently, as `idempotencyKey`: requests are checked.
   */
  traceparent: Schema.optionalWith(Schema.String, { exact: true }),
  /** The handler time limit the enqueue asked for (`EnqueueOptions.timeoutMs`). */
  timeoutMs: Schema.optionalWith(Millis, { exact: true }),
  /** The flow's parent this job is a child of (docs/flows.md). */
  parentId: Schema.optionalWith(Schema.String, { exact: true }),
  /** A flow's parent: its children's ids, in the order the flow gave them. */
  children: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  /** A flow's parent: what a child that dies, is cancelled or deleted does to it. */
  onChildFailure: Schema.optionalWith(ChildFailurePolicy, { exact: true }),
  lease: Schema.optionalWith(Lease, { exact: true }),
  lastError: Schema.optionalWith(Schema.String, { exact: true }),
  result: Schema.optionalWith(Schema.Unknown, { exact: true }),
  /** A flow's parent: how each child that finished ended, by id, in `children`'s order. */
  childResults: Schema.optionalWith(Schema.Record({ key: Schema.String, value: ChildResult }), { exact: true }),
  progress: Schema.optionalWith(Schema.Unknown, { exact: true }),
  history: Schema.Array(Attempt)
})
export type Job = typeof Job.Type

/** Random bytes in a lease token's secret: 128 bits. */
export const leaseSecretBytes = 16

/** Characters of a lease token's secret: its bytes in base64url, unpadded (22). */
export const leaseSecretLength = Math.ceil((leaseSecretBytes * 8) / 6)

const secretChars = `[A-Za-z0-9_-]{${leaseSecretLength}}`
const leaseSecretPattern = new RegExp(`^${secretChars}$`)

/**
 * What a claim returns to present with the lease: `jobId/claims/epoch/secret`. `claims` counts
 * every claim of the job (no token is issued twice), `epoch` is the leader's that granted it, and
 * `secret` is random, kept by the broker with the lease and shown in no answer but the claim's:
 * the other parts are public (`GET /v1/jobs/:id`), so without it a token could be forged. A lease
 * granted by a broker that predates the secret has none, and its token is the first three parts
 * (docs/architecture.md, "Lease tokens").
 */
export const LeaseToken = Schema.String.pipe(
  Schema.maxLength(200, { message: () => "a lease token has at most 200 characters" }),
  Schema.pattern(new RegExp(`^[^/]+/\\d+/\\d+(/${secretChars})?$`), {
    message: () => "a lease token looks like `jobId/claims/epoch/secret`, as returned by claim"
  }),
  Schema.brand("LeaseToken")
)
export type LeaseToken = typeof LeaseToken.Type

export interface LeaseTokenParts {
  readonly jobId: JobId
  readonly claims: number
  readonly epoch: number
  /** Absent in the token of a lease that has none (granted before leases had secrets). */
  readonly secret: string | undefined
}

// Branded values built with casts: the format is ours, and these run on every lease operation.
export const makeLeaseToken = ({ claims, epoch, jobId, secret }: LeaseTokenParts): LeaseToken =>
  (secret === undefined ? `${jobId}/${claims}/${epoch}` : `${jobId}/${claims}/${epoch}/${secret}`) as LeaseToken

/** The parts of a lease token, or `undefined` when it is not one. */
export const parseLeaseToken = (token: string): LeaseTokenParts | undefined => {
  let end = token.length
  let secret: string | undefined
  const last = token.lastIndexOf("/")
  if (last >= 0 && leaseSecretPattern.test(token.slice(last + 1))) {
    secret = token.slice(last + 1)
    end = last
  }
  const second = token.lastIndexOf("/", end - 1)
  const first = second <= 0 ? -1 : token.lastIndexOf("/", second - 1)
  if (first <= 0) return undefined
  const claims = token.slice(first + 1, second)
  const epoch = token.slice(second + 1, end)
  if (!/^\d{1,15}$/.test(claims) || !/^\d{1,15}$/.test(epoch)) return undefined
  return { jobId: token.slice(0, first) as JobId, claims: Number(claims), epoch: Number(epoch), secret }
}

/** A lease as the broker holds it: with its token's secret, which queue.json keeps and answers leave out. */
export type HeldLease = Lease & { readonly secret?: string }

/** The secret of the job's lease, if it is leased and the lease has one. */
export const leaseSecretOf = (job: Job): string | undefined => (job.lease as HeldLease | undefined)?.secret

/** `job` as an answer carries it: its lease without the secret (the same object when there is none). */
export const publicJob = (job: Job): Job => {
  const lease = job.lease as HeldLease | undefined
  if (lease?.secret === undefined) return job
  const { secret: _, ...rest } = lease
  return { ...job, lease: rest }
}

// ---------------------------------------------------------------------------------------------
// `Job` and `EnqueueOptions` checked by hand-written guards: their rules above, compiled by hand.

type Guard = (u: unknown) => boolean

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isString: Guard = (u) => typeof u === "string"
const isInt: Guard = (u) => Number.isSafeInteger(u)
const isMillis: Guard = (u) => Number.isSafeInteger(u) && (u as number) >= 0
const isNumberIn = (u: unknown, min: number, max: number) => typeof u === "number" && u >= min && u <= max
const isArrayOf = (u: unknown, is: Guard) => {
  if (!Array.isArray(u)) return false
  for (let i = 0; i < u.length; i++) if (!is(u[i])) return false
  return true
}
/** An optional field with `exact: true`: absent, or present and valid (never `undefined`). */
const optional = (o: Record<string, unknown>, key: string, is: Guard) => !(key in o) || is(o[key])

const jobStateSet: ReadonlySet<unknown> = new Set(JobState.literals)
const outcomes: ReadonlySet<unknown> = new Set(Attempt.fields.outcome.literals)

/** True when `o` has no key outside `keys` (`strictFields`). */
const onlyKeys = (o: Record<string, unknown>, keys: ReadonlySet<string>) => {
  for (const key in o) if (!keys.has(key)) return false
  return true
}

const isDelayMs: Guard = (u) => isMillis(u) && (u as number) <= maxDelayMs
const isInstant: Guard = (u) => isMillis(u) && (u as number) <= maxInstant

const backoffGuard = (isTime: Guard, exact: boolean): Guard => {
  const fixedKeys = new Set(["_tag", "delayMs"])
  const exponentialKeys = new Set(["_tag", "baseMs", "maxMs", "jitter"])
  return (u) =>
    isObject(u) &&
    (u._tag === "fixed"
      ? isTime(u.delayMs) && (!exact || onlyKeys(u, fixedKeys))
      : u._tag === "exponential" && isTime(u.baseMs) && isTime(u.maxMs) && isNumberIn(u.jitter, 0, 1) &&
        (!exact || onlyKeys(u, exponentialKeys)))
}

const isJobBackoff = backoffGuard(isMillis, false)
const isRequestBackoff = backoffGuard(isDelayMs, true)

const childResultStates: ReadonlySet<unknown> = new Set(ChildResult.fields.state.literals)
const isPolicy: Guard = (u) => u === "fail" || u === "ignore"

const isChildResult: Guard = (u) =>
  isObject(u) && childResultStates.has(u.state) && optional(u, "resultOmitted", (r) => r === true) &&
  optional(u, "error", isString)

const isChildResults: Guard = (u) => {
  if (!isObject(u)) return false
  for (const key in u) if (!isChildResult(u[key])) return false
  return true
}

const isLease: Guard = (u) =>
  isObject(u) && isString(u.workerId) && isInt(u.epoch) && isMillis(u.expiresAt) && isMillis(u.ttlMs)

const isAttempt: Guard = (u) =>
  isObject(u) && isInt(u.attempt) && isString(u.workerId) && isMillis(u.startedAt) &&
  optional(u, "endedAt", isMillis) && outcomes.has(u.outcome) && optional(u, "error", isString)

/** `Job`'s verdict, by hand (`guarded`): the broker also checks every job it is about to store with it. */
export const isJob = (u: unknown): u is Job =>
  isObject(u) &&
  typeof u.id === "string" && u.id.length >= 1 && u.id.length <= maxJobIdLength &&
  isString(u.type) && "payload" in u && jobStateSet.has(u.state) &&
  isInt(u.priority) && isInt(u.attempts) && isInt(u.maxAttempts) && isInt(u.claims) &&
  isJobBackoff(u.backoff) && isInt(u.seq) && isMillis(u.createdAt) && isMillis(u.runAt) &&
  optional(u, "startedAt", isMillis) && optional(u, "finishedAt", isMillis) &&
  optional(u, "idempotencyKey", isString) && optional(u, "traceparent", isString) &&
  optional(u, "timeoutMs", isMillis) && optional(u, "parentId", isString) &&
  optional(u, "children", (c) => isArrayOf(c, isString)) && optional(u, "onChildFailure", isPolicy) &&
  optional(u, "lease", isLease) && optional(u, "lastError", isString) &&
  optional(u, "childResults", isChildResults) && isArrayOf(u.history, isAttempt)

const isPriority: Guard = (p) => isInt(p) && (p as number) >= -maxPriority && (p as number) <= maxPriority
const isMaxAttempts: Guard = (m) => isInt(m) && (m as number) >= 1 && (m as number) <= maxAttemptsLimit
const isTimeoutMs: Guard = (t) => isInt(t) && (t as number) >= 1 && (t as number) <= maxTimeoutMs
const isIdempotencyKey: Guard = (k) => typeof k === "string" && k.length >= 1 && k.length <= maxIdempotencyKeyLength
const enqueueKeys: ReadonlySet<string> = new Set(Object.keys(EnqueueOptions.fields))

const isEnqueueOptions = (u: unknown): u is EnqueueOptions =>
  isObject(u) &&
  typeof u.type === "string" && u.type.length >= 1 && u.type.length <= maxJobTypeLength &&
  optional(u, "priority", isPriority) && optional(u, "delayMs", isDelayMs) && optional(u, "runAt", isInstant) &&
  optional(u, "maxAttempts", isMaxAttempts) && optional(u, "backoff", isRequestBackoff) &&
  optional(u, "idempotencyKey", isIdempotencyKey) && optional(u, "traceparent", isTraceparent) &&
  optional(u, "timeoutMs", isTimeoutMs) && onlyKeys(u, enqueueKeys)

/**
 * `schema`, checked first by `guard`, which must give the schema's verdicts (`Job.test.ts` holds
 * each guard to its schema on every value and every field of one replaced or removed). A value
 * the guard accepts passes as it is; only one it refuses goes through the schema, so the error
 * still names what is wrong. Walking a schema costs about 6 µs per job here, 25 times the
 * guard. JSON Schema and the OpenAPI document describe `schema` (the surrogate).
 */
const guarded = <A, I>(
  schema: Schema.Schema<A, I>,
  guard: (u: unknown) => u is A,
  /** What an encode sends of a value the guard accepts (the schema's own encode leaves out what it does not know). */
  toWire: (a: A) => A = (a) => a
): Schema.Schema<A> =>
  Schema.declare([], {
    decode: () => (input, options) =>
      guard(input) ? ParseResult.succeed(input) : ParseResult.decodeUnknown(schema)(input, options),
    // `I` is `A` without brands: the same JSON.
    encode: () => (input, options) =>
      guard(input)
        ? ParseResult.succeed(toWire(input))
        : ParseResult.map(ParseResult.encodeUnknown(schema)(input, options), (encoded) => encoded as unknown as A)
  }, { [SchemaAST.SurrogateAnnotationId]: schema.ast })

/**
 * `Job` as answers carry it (RPC and REST): every enqueue, claim and completion answers with jobs.
 * An encode leaves out the lease's secret (`publicJob`).
 */
export const JobOnWire: Schema.Schema<Job> = guarded(Job, isJob, publicJob)

/** `Job` as queue.json holds it: `JobOnWire` that keeps the lease's secret. */
export const HeldJob: Schema.Schema<Job> = guarded(Job, isJob)

/** `EnqueueOptions` as requests carry them: every enqueued job is one. */
export const EnqueueOptionsOnWire: Schema.Schema<EnqueueOptions> = guarded(EnqueueOptions, isEnqueueOptions)

export const ClaimedJob = Schema.Struct({ job: JobOnWire, token: LeaseToken })
export type ClaimedJob = typeof ClaimedJob.Type

export const StateCounts = Schema.Struct({
  queued: Schema.Int,
  delayed: Schema.Int,
  running: Schema.Int,
  completed: Schema.Int,
  "failed-waiting-retry": Schema.Int,
  dead: Schema.Int,
  cancelled: Schema.Int,
  /** Absent from brokers without flows: none. */
  "waiting-children": Schema.optionalWith(Schema.Int, { default: () => 0 })
})
export type StateCounts = typeof StateCounts.Type

/** Most types paused one by one (pausing every type has no limit). */
export const maxPausedTypes = 100

export const Paused = Schema.Struct({
  all: Schema.Boolean,
  types: Schema.Array(Schema.String)
})
export type Paused = typeof Paused.Type

/**
 * A limit on claims as stats show it (`ClaimLimits.ts`): the limit (`type` absent: the whole
 * queue), the scope's jobs running now, and with a rate the claims started within the window
 * ending now.
 */
export const LimitStatus = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { exact: true }),
  concurrency: Schema.optionalWith(Schema.Int, { exact: true }),
  rate: Schema.optionalWith(Schema.Struct({ max: Schema.Int, windowMs: Schema.Int }), { exact: true }),
  running: Schema.Int,
  startsInWindow: Schema.optionalWith(Schema.Int, { exact: true })
})
export type LimitStatus = typeof LimitStatus.Type

export const Stats = Schema.Struct({
  counts: StateCounts,
  /** Queued jobs by type. */
  queuedByType: Schema.Record({ key: Schema.String, value: Schema.Int }),
  paused: Paused,
  /** The limits on claims, with what each scope uses of its limit (absent from brokers without limits). */
  limits: Schema.optionalWith(Schema.Array(LimitStatus), { exact: true }),
  epoch: Schema.Int,
  seq: Schema.Int,
  /** Bytes of the last committed queue.json. */
  stateBytes: Schema.Int,
  completedTotal: Schema.Int,
  deadTotal: Schema.Int,
  enqueuedTotal: Schema.Int
})
export type Stats = typeof Stats.Type

/** Most jobs one page of `list` holds. */
export const maxPageSize = 1_000

/** Longest text a `list` search looks for. */
export const maxSearchLength = 200

/** Enqueue order, oldest first (`asc`, the default) or newest first (`desc`). */
export const ListOrder = Schema.Literal("asc", "desc")

export const ListSearch = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a search must not be empty: leave it out to list every job" }),
  Schema.maxLength(maxSearchLength, { message: () => `a search has at most ${maxSearchLength} characters` })
)

export const ListQuery = Schema.Struct({
  state: Schema.optionalWith(JobState, { exact: true }),
  type: Schema.optionalWith(Schema.String, { exact: true }),
  /** Return the jobs past this `seq` in the order asked (from the previous page's `next`). */
  after: Schema.optionalWith(Schema.Int, { exact: true }),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, maxPageSize)), { exact: true }),
  order: Schema.optionalWith(ListOrder, { exact: true }),
  /** Only jobs whose id, payload or last error contains this text (case-sensitive; payloads as JSON). */
  search: Schema.optionalWith(ListSearch, { exact: true })
})
export type ListQuery = typeof ListQuery.Type

export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobOnWire),
  /** Pass as `after` for the next page; absent on the last page. */
  next: Schema.optionalWith(Schema.Int, { exact: true })
})
export type JobPage = typeof JobPage.Type
