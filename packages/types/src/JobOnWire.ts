/**
 * `Job` and `EnqueueOptions` as they cross the wire: checked by hand-written guards, the schemas'
 * rules compiled by hand, so a valid job or enqueue costs a few comparisons instead of a Schema
 * decode, and anything a guard does not accept goes to the schema for its verdict and its error.
 */
import * as Schema from "effect/Schema"
import {
  type Guard,
  guarded,
  isArrayOf,
  isInt,
  isMillis,
  isNumberIn,
  isObject,
  isString,
  onlyKeys,
  optional
} from "./internal/guards.js"
import {
  Attempt,
  ChildResult,
  EnqueueOptions,
  isTraceparent,
  Job,
  JobId,
  JobState,
  maxAttemptsLimit,
  maxDelayMs,
  maxIdempotencyKeyLength,
  maxInstant,
  maxJobIdLength,
  maxJobTypeLength,
  maxPriority,
  maxTimeoutMs
} from "./Job.js"
import { isLeaseToken, LeaseToken, publicJob } from "./LeaseToken.js"

const jobStateSet: ReadonlySet<unknown> = new Set(JobState.literals)
const outcomes: ReadonlySet<unknown> = new Set(Attempt.fields.outcome.literals)

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

/** `EnqueueOptions`' verdict, by hand: every enqueued job's (`EnqueueOptionsOnWire`, `EnqueueManyRequestOnWire`). */
export const isEnqueueOptions = (u: unknown): u is EnqueueOptions =>
  isObject(u) &&
  typeof u.type === "string" && u.type.length >= 1 && u.type.length <= maxJobTypeLength &&
  optional(u, "priority", isPriority) && optional(u, "delayMs", isDelayMs) && optional(u, "runAt", isInstant) &&
  optional(u, "maxAttempts", isMaxAttempts) && optional(u, "backoff", isRequestBackoff) &&
  optional(u, "idempotencyKey", isIdempotencyKey) && optional(u, "traceparent", isTraceparent) &&
  optional(u, "timeoutMs", isTimeoutMs) && onlyKeys(u, enqueueKeys)

/**
 * `Job` as answers carry it (RPC and REST): every enqueue, claim and completion answers with jobs.
 * An encode leaves out the lease's secret (`publicJob`).
 */
export const JobOnWire: Schema.Schema<Job> = guarded(Job, isJob, publicJob)

/** `Job` as queue.json holds it: `JobOnWire` that keeps the lease's secret. */
export const HeldJob: Schema.Schema<Job> = guarded(Job, isJob)

/** `EnqueueOptions` as requests carry them: every enqueued job is one. */
export const EnqueueOptionsOnWire: Schema.Schema<EnqueueOptions> = guarded(EnqueueOptions, isEnqueueOptions)

const isJobId = (u: unknown): u is JobId => typeof u === "string" && u.length >= 1 && u.length <= maxJobIdLength

/**
 * `JobId` as a REST path carries it (`/jobs/:id/complete` and the job's other routes): a worker's
 * completion decodes it on every job's path, where walking its refinements cost more than the guard.
 */
export const JobIdOnWire: Schema.Schema<JobId> = guarded(JobId, isJobId)

const isJobOrId = (u: unknown): u is Job | JobId => isJobId(u) || isJob(u)
const jobOrIdToWire = (answer: Job | JobId): Job | JobId => typeof answer === "string" ? answer : publicJob(answer)

/**
 * What `EnqueueMany` answers for each job, and `CompleteMany` for each completed one: the job (as
 * `JobOnWire`), or its id alone when the request asked for a minimal answer
 * (`Rpcs.prefersMinimal`). A client reads either, so it can ask any broker: one that does not
 * know the preference answers whole jobs.
 */
export const JobOrIdOnWire: Schema.Schema<Job | JobId> = guarded(Schema.Union(JobId, Job), isJobOrId, jobOrIdToWire)

/**
 * What `EnqueueMany` answers: `JobOrIdOnWire` for each job, checked by one guard for the whole
 * array. A batch of 100 walked element by element by the array's schema cost more than its guards.
 */
export const JobsOrIdsOnWire: Schema.Schema<ReadonlyArray<Job | JobId>> = guarded(
  Schema.Array(JobOrIdOnWire),
  (u): u is ReadonlyArray<Job | JobId> => isArrayOf(u, isJobOrId),
  (answers) => answers.map(jobOrIdToWire)
)

export const ClaimedJob = Schema.Struct({ job: JobOnWire, token: LeaseToken })
export type ClaimedJob = typeof ClaimedJob.Type

const isClaimedJob: Guard = (u) => isObject(u) && isJob(u.job) && isLeaseToken(u.token)

/**
 * What a claim answers (`Claim`, `CompleteAndClaim`; RPC and REST): `ClaimedJob`s, checked by one
 * guard, each encoded as the struct's schema encodes it (its two fields, the job without its
 * lease's secret). Every claimed job crosses the wire in one.
 */
export const ClaimedJobsOnWire: Schema.Schema<ReadonlyArray<ClaimedJob>> = guarded(
  Schema.Array(ClaimedJob),
  (u): u is ReadonlyArray<ClaimedJob> => isArrayOf(u, isClaimedJob),
  (claimed) => claimed.map(({ job, token }) => ({ job: publicJob(job), token }))
)
