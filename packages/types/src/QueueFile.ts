/**
 * `queue.json`: the whole queue in one object. The broker decodes it with this schema and
 * refuses a `format` it does not know (never guesses). Fencing fields (docs/architecture.md, "queue.json"):
 * `epoch` is bumped on every takeover, `seq` on every commit, `commitId` names the commit
 * (leader id + seq) so an ambiguous write can be recognised when read back.
 */
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { StoredLimit, StoredStarts } from "./ClaimLimits.js"
import { type Attempt, type Backoff, defaultBackoff, type Job } from "./Job.js"
import { HeldJob } from "./JobOnWire.js"
import { Schedule } from "./Schedule.js"
import { Paused } from "./Stats.js"

/**
 * The format brokers write. Format 2 leaves out a job's fields that are at their usual value
 * (`StoredJob`), about a third of a queued job's bytes. Format 3 is the same object as a
 * checkpoint: the state as of log position `seq`, with the commits after it in `log/<position>`
 * (docs/architecture.md, "The log"). Formats 1 and 2 have no log: a broker that takes over such
 * a queue converts it by writing a checkpoint. Format 4 adds `schedules` and the limits on
 * claims (`limits`, `starts`); a format without them has none, and a broker that reads format 3
 * only refuses format 4 rather than drop them. Format 5 adds flows (docs/flows.md): a job's
 * `parentId`, `children`, `onChildFailure` and `childResults`, and the `waiting-children` state;
 * a broker that reads format 4 only would drop those fields, so it refuses format 5. Every
 * format in `readableFormats` is read.
 */
export const currentFormat = 5
export const readableFormats = [1, 2, 3, 4, 5] as const
/** The first format whose commits go to the log. */
export const firstLogFormat = 3

const noHistory: ReadonlyArray<Attempt> = []

/** The fields a stored job may leave out (`leftOutRules`). */
type LeftOut = keyof typeof leftOutRules

/** A job as queue.json holds it: `Job` with the fields at their usual value left out. */
export type StoredJobFields = Omit<Job, LeftOut> & { -readonly [K in LeftOut]?: Job[K] }

const isDefaultBackoff = (backoff: Backoff) =>
  backoff === defaultBackoff ||
  (backoff._tag === "exponential" && backoff.baseMs === defaultBackoff.baseMs &&
    backoff.maxMs === defaultBackoff.maxMs && backoff.jitter === defaultBackoff.jitter)

/**
 * When `storedJob` leaves each of the fields it may leave out: at its usual value. The one
 * statement of that rule: `storedJob` asks it of each of the six, the enqueue's field-by-field
 * writer (core's internal/entry.ts, `enqueuedText`) of each it writes only when set, and what a
 * changed field adds to a job's stored JSON follows from it (`leftOutWhenStored`: a claim's job
 * is sized so, not encoded, core's internal/logEntry.ts). A function per field, called by
 * name: small enough for V8 to inline where a job is written, which a `switch` over the field's
 * name was not (an enqueue's encode took 0.1–0.2 µs longer so).
 */
export const leftOutRules = {
  priority: (job: Job) => job.priority === 0,
  attempts: (job: Job) => job.attempts === 0,
  claims: (job: Job) => job.claims === 0,
  backoff: (job: Job) => isDefaultBackoff(job.backoff),
  runAt: (job: Job) => job.runAt === job.createdAt,
  history: (job: Job) => job.history.length === 0
} as const satisfies { readonly [K in keyof Job]?: (job: Job) => boolean }

/** Whether `storedJob` leaves field `key` of `job` out: at its usual value (`leftOutRules`), or absent. */
export const leftOutWhenStored = (job: Job, key: keyof Job): boolean => {
  const rules: { readonly [K in keyof Job]?: (job: Job) => boolean } = leftOutRules
  const rule = rules[key]
  return rule === undefined ? job[key] === undefined : rule(job)
}

/** `Job`'s optional fields, in its order: the order a job's fields are built in, stored or changed. */
export const optionalJobFields = [
  "startedAt",
  "finishedAt",
  "idempotencyKey",
  "traceparent",
  "timeoutMs",
  "parentId",
  "children",
  "onChildFailure",
  "lease",
  "lastError",
  "result",
  "childResults",
  "progress"
] as const satisfies ReadonlyArray<keyof Job>

/**
 * A job as queue.json holds it: without `priority`, `attempts` and `claims` when 0, `backoff`
 * when it is `defaultBackoff`, `runAt` when it equals `createdAt`, `history` when empty
 * (`leftOutRules`), those six after the others. Every commit rewrites the whole object,
 * so each byte per job is paid on every write.
 *
 * Built as one literal and the fields added in `Job`'s order, as `fromStoredJob` builds a job:
 * the order every job of the state has, so the JSON is the one a rest spread of the job
 * (`{ attempts, …, ...rest }`) gave, which cost V8 a third more to make and to stringify
 * (docs/performance.md, "The state machine's commands, cut again").
 */
export const storedJob = (job: Job): StoredJobFields => {
  const stored: Record<string, unknown> = {
    id: job.id,
    type: job.type,
    payload: job.payload,
    state: job.state,
    maxAttempts: job.maxAttempts,
    seq: job.seq,
    createdAt: job.createdAt
  }
  for (const key of optionalJobFields) {
    const value = job[key]
    if (value !== undefined) stored[key] = value
  }
  if (!leftOutRules.priority(job)) stored.priority = job.priority
  if (!leftOutRules.attempts(job)) stored.attempts = job.attempts
  if (!leftOutRules.claims(job)) stored.claims = job.claims
  if (!leftOutRules.backoff(job)) stored.backoff = job.backoff
  if (!leftOutRules.runAt(job)) stored.runAt = job.runAt
  if (!leftOutRules.history(job)) stored.history = job.history
  return stored as StoredJobFields
}

/**
 * What `storedJob` left out, put back, with the fields in `Job`'s order (as an enqueue creates
 * them, so a job reads the same before and after it was stored). Unchecked: `StoredJob` checks
 * what it returns, and the broker calls it directly only on bytes it wrote from a valid job.
 * (Built as one literal: spreading the stored job and then adding the fields it lacks cost V8
 * twenty times more, and a takeover does it for every job.)
 */
export const fromStoredJob = (stored: { readonly [key: string]: unknown }): Job => {
  const job: Record<string, unknown> = {
    id: stored.id,
    type: stored.type,
    payload: stored.payload,
    state: stored.state,
    priority: stored.priority ?? 0,
    attempts: stored.attempts ?? 0,
    maxAttempts: stored.maxAttempts,
    claims: stored.claims ?? 0,
    backoff: stored.backoff ?? defaultBackoff,
    seq: stored.seq,
    createdAt: stored.createdAt,
    runAt: stored.runAt ?? stored.createdAt
  }
  for (const key of optionalJobFields) if (key in stored) job[key] = stored[key]
  job.history = stored.history ?? noHistory
  return job as Job
}

/**
 * `Job` in queue.json: `storedJob` one way; the other puts back what it left out (format 1
 * has it all). The result is checked as `HeldJob` (`JobOnWire` keeping a lease's secret): a
 * takeover decodes every job, and the guard is ten times faster than walking the schema, which
 * only a job the guard refuses goes through, for an error that names the field.
 */
export const StoredJob: Schema.Schema<Job, unknown> = Schema.transformOrFail(Schema.Unknown, HeldJob, {
  strict: true,
  decode: (input, _, ast) =>
    Predicate.isRecord(input)
      ? ParseResult.succeed(fromStoredJob(input))
      : ParseResult.fail(new ParseResult.Type(ast, input)),
  encode: (job) => ParseResult.succeed(storedJob(job))
})

export const Leader = Schema.Struct({
  /** Fresh per process: two processes never share one. */
  id: Schema.String,
  /** Where clients reach it; never the bind address. */
  url: Schema.String,
  /** The leader's clock when it took over. */
  since: Schema.Int,
  /** True once the leader handed over cleanly (a follower may take over at once). */
  released: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type Leader = typeof Leader.Type

export const Totals = Schema.Struct({
  enqueued: Schema.Int,
  completed: Schema.Int,
  dead: Schema.Int
})
export type Totals = typeof Totals.Type

export const QueueFile = Schema.Struct({
  format: Schema.Literal(...readableFormats),
  epoch: Schema.Int,
  seq: Schema.Int,
  commitId: Schema.String,
  leader: Schema.NullOr(Leader),
  /** The `seq` the next enqueued job gets. */
  nextJobSeq: Schema.Int,
  paused: Paused,
  totals: Totals,
  /** Every schedule, by id; absent when there is none (and in formats before 4). */
  schedules: Schema.optionalWith(Schema.Array(Schedule), { exact: true }),
  /** The limits on claims (format 4; none when absent). */
  limits: Schema.optionalWith(Schema.Array(StoredLimit), { exact: true }),
  /** Each rate-limited scope's remembered start times, oldest first (format 4). */
  starts: Schema.optionalWith(Schema.Array(StoredStarts), { exact: true }),
  jobs: Schema.Array(StoredJob)
})
export type QueueFile = typeof QueueFile.Type

/** Only the header: enough to check the format before decoding every job. */
export const FormatHeader = Schema.Struct({ format: Schema.Number })
