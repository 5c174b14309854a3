/**
 * The job as producers, workers and dashboards see it, and the options that create one.
 * Times are milliseconds since the Unix epoch, on the leader's clock.
 */
import * as Schema from "effect/Schema"

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
