/**
 * The job as producers, workers and dashboards see it, and the options that create one.
 * Times are milliseconds since the Unix epoch, on the leader's clock.
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

export const JobId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.brand("JobId"),
  Schema.annotations({ description: "A job's id, assigned by the broker (e.g. `job-42`)" })
)
export type JobId = typeof JobId.Type

export const JobType = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a job type must not be empty" }),
  Schema.maxLength(200, { message: () => "a job type has at most 200 characters" }),
  Schema.annotations({ description: "What kind of work a job is; workers claim by type" })
)

export const JobState = Schema.Literal(
  "queued",
  "delayed",
  "running",
  "completed",
  "failed-waiting-retry",
  "dead",
  "cancelled"
)
export type JobState = typeof JobState.Type
export const jobStates: ReadonlyArray<JobState> = JobState.literals

/** Whole milliseconds, not negative. */
export const Millis = Schema.Int.pipe(Schema.nonNegative())

/** How long a failed job waits before its next attempt. */
export const Backoff = Schema.Union(
  Schema.TaggedStruct("fixed", { delayMs: Millis }),
  Schema.TaggedStruct("exponential", {
    /** Wait after the first failure; doubles after each further one. */
    baseMs: Millis,
    /** Upper bound on the wait. */
    maxMs: Millis,
    /** Spread each wait uniformly over [wait * (1 - jitter), wait]: 0 = none, 1 = full jitter. */
    jitter: Schema.Number.pipe(Schema.between(0, 1))
  })
)
export type Backoff = typeof Backoff.Type

export const defaultBackoff: Extract<Backoff, { readonly _tag: "exponential" }> = { _tag: "exponential", baseMs: 1_000, maxMs: 300_000, jitter: 0.5 }

export const Priority = Schema.Int.pipe(
  Schema.between(-1_000_000, 1_000_000),
  Schema.annotations({ description: "Lower runs first; jobs of one priority run in enqueue order" })
)

const IdempotencyKey = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(512))

export const EnqueueOptions = Schema.Struct({
  type: JobType,
  payload: Schema.optionalWith(Schema.Unknown, { exact: true }),
  priority: Schema.optionalWith(Priority, { exact: true }),
  /** Claimable this long after the enqueue is committed. */
  delayMs: Schema.optionalWith(Millis, { exact: true }),
  /** Claimable from this instant (ms since epoch); wins over `delayMs`. */
  runAt: Schema.optionalWith(Millis, { exact: true }),
  maxAttempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000)), { exact: true }),
  backoff: Schema.optionalWith(Backoff, { exact: true }),
  /** Enqueueing a key that exists returns the existing job instead of a new one. */
  idempotencyKey: Schema.optionalWith(IdempotencyKey, { exact: true })
}).annotations({ identifier: "EnqueueOptions" })
export type EnqueueOptions = typeof EnqueueOptions.Type

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

/** The lease a running job is held under: its token is `jobId/claims/epoch`. */
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
  backoff: Backoff,
  /** Enqueue order: FIFO within a priority, kept across redeliveries. */
  seq: Schema.Int,
  createdAt: Millis,
  /** When the job becomes (or became) claimable. */
  runAt: Millis,
  startedAt: Schema.optionalWith(Millis, { exact: true }),
  finishedAt: Schema.optionalWith(Millis, { exact: true }),
  idempotencyKey: Schema.optionalWith(Schema.String, { exact: true }),
  lease: Schema.optionalWith(Lease, { exact: true }),
  lastError: Schema.optionalWith(Schema.String, { exact: true }),
  result: Schema.optionalWith(Schema.Unknown, { exact: true }),
  progress: Schema.optionalWith(Schema.Unknown, { exact: true }),
  history: Schema.Array(Attempt)
})
export type Job = typeof Job.Type

export const LeaseToken = Schema.String.pipe(
  Schema.pattern(/^[^/]+\/\d+\/\d+$/, { message: () => "a lease token looks like `jobId/claim/epoch`, as returned by claim" }),
  Schema.brand("LeaseToken")
)
export type LeaseToken = typeof LeaseToken.Type

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

const isBackoff: Guard = (u) =>
  isObject(u) &&
  (u._tag === "fixed"
    ? isMillis(u.delayMs)
    : u._tag === "exponential" && isMillis(u.baseMs) && isMillis(u.maxMs) && isNumberIn(u.jitter, 0, 1))

const isLease: Guard = (u) =>
  isObject(u) && isString(u.workerId) && isInt(u.epoch) && isMillis(u.expiresAt) && isMillis(u.ttlMs)

const isAttempt: Guard = (u) =>
  isObject(u) && isInt(u.attempt) && isString(u.workerId) && isMillis(u.startedAt) &&
  optional(u, "endedAt", isMillis) && outcomes.has(u.outcome) && optional(u, "error", isString)

const isJob = (u: unknown): u is Job =>
  isObject(u) &&
  typeof u.id === "string" && u.id.length >= 1 && u.id.length <= 128 &&
  isString(u.type) && "payload" in u && jobStateSet.has(u.state) &&
  isInt(u.priority) && isInt(u.attempts) && isInt(u.maxAttempts) && isInt(u.claims) &&
  isBackoff(u.backoff) && isInt(u.seq) && isMillis(u.createdAt) && isMillis(u.runAt) &&
  optional(u, "startedAt", isMillis) && optional(u, "finishedAt", isMillis) &&
  optional(u, "idempotencyKey", isString) && optional(u, "lease", isLease) &&
  optional(u, "lastError", isString) && isArrayOf(u.history, isAttempt)

const isPriority: Guard = (p) => isInt(p) && (p as number) >= -1_000_000 && (p as number) <= 1_000_000
const isMaxAttempts: Guard = (m) => isInt(m) && (m as number) >= 1 && (m as number) <= 1_000
const isIdempotencyKey: Guard = (k) => typeof k === "string" && k.length >= 1 && k.length <= 512

const isEnqueueOptions = (u: unknown): u is EnqueueOptions =>
  isObject(u) &&
  typeof u.type === "string" && u.type.length >= 1 && u.type.length <= 200 &&
  optional(u, "priority", isPriority) && optional(u, "delayMs", isMillis) && optional(u, "runAt", isMillis) &&
  optional(u, "maxAttempts", isMaxAttempts) && optional(u, "backoff", isBackoff) &&
  optional(u, "idempotencyKey", isIdempotencyKey)

/**
 * `schema`, checked first by `guard`, which must give the schema's verdicts (`Job.test.ts` holds
 * each guard to its schema on every value and every field of one replaced or removed). A value
 * the guard accepts passes as it is; only one it refuses goes through the schema, so the error
 * still names what is wrong. Walking a schema costs about 6 µs per job here, 25 times the
 * guard. JSON Schema and the OpenAPI document describe `schema` (the surrogate).
 */
const guarded = <A, I>(schema: Schema.Schema<A, I>, guard: (u: unknown) => u is A): Schema.Schema<A> =>
  Schema.declare([], {
    decode: () => (input, options) =>
      guard(input) ? ParseResult.succeed(input) : ParseResult.decodeUnknown(schema)(input, options),
    // `I` is `A` without brands: the same JSON.
    encode: () => (input, options) =>
      guard(input)
        ? ParseResult.succeed(input)
        : ParseResult.map(ParseResult.encodeUnknown(schema)(input, options), (encoded) => encoded as unknown as A)
  }, { [SchemaAST.SurrogateAnnotationId]: schema.ast })

/** `Job` as answers carry it (RPC and REST): every enqueue, claim and completion answers with jobs. */
export const JobOnWire: Schema.Schema<Job> = guarded(Job, isJob)

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
  cancelled: Schema.Int
})
export type StateCounts = typeof StateCounts.Type

export const Paused = Schema.Struct({
  all: Schema.Boolean,
  types: Schema.Array(Schema.String)
})
export type Paused = typeof Paused.Type

export const Stats = Schema.Struct({
  counts: StateCounts,
  /** Queued jobs by type. */
  queuedByType: Schema.Record({ key: Schema.String, value: Schema.Int }),
  paused: Paused,
  epoch: Schema.Int,
  seq: Schema.Int,
  /** Bytes of the last committed queue.json. */
  stateBytes: Schema.Int,
  completedTotal: Schema.Int,
  deadTotal: Schema.Int,
  enqueuedTotal: Schema.Int
})
export type Stats = typeof Stats.Type

export const ListQuery = Schema.Struct({
  state: Schema.optionalWith(JobState, { exact: true }),
  type: Schema.optionalWith(Schema.String, { exact: true }),
  /** Return jobs whose `seq` is greater than this (from the previous page's `next`). */
  after: Schema.optionalWith(Schema.Int, { exact: true }),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000)), { exact: true })
})
export type ListQuery = typeof ListQuery.Type

export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobOnWire),
  /** Pass as `after` for the next page; absent on the last page. */
  next: Schema.optionalWith(Schema.Int, { exact: true })
})
export type JobPage = typeof JobPage.Type
