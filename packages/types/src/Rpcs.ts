/**
 * The broker's RPC contract, shared by the broker (handlers) and every client (HTTP, WebSocket).
 * REST (`Api.ts`) exposes the same operations; both are served by one handler set.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import { ClaimLimit, SetLimitRequest } from "./ClaimLimits.js"
import { OsqueueError } from "./Errors.js"
import { JobEvent } from "./Event.js"
import { FlowRequest } from "./Flow.js"
import { guarded, isArrayOf, isIntIn, isObject, isStringOfLength, onlyKeys, optional } from "./internal/guards.js"
import {
  DelayMs,
  EnqueueOptions,
  JobId,
  JobState,
  JobType,
  maxJobTypeLength,
  Millis,
  Priority,
  strictFields
} from "./Job.js"
import { JobPage, ListQuery } from "./JobList.js"
import {
  ClaimedJobsOnWire,
  EnqueueOptionsOnWire,
  isEnqueueOptions,
  JobOnWire,
  JobOrIdOnWire,
  JobsOrIdsOnWire
} from "./JobOnWire.js"
import { isLeaseToken, LeaseToken } from "./LeaseToken.js"
import { Schedule, ScheduleId, ScheduleSpec } from "./Schedule.js"
import { LimitStatus, Paused, StateCounts, Stats } from "./Stats.js"

/** Longest worker id. */
export const maxWorkerIdLength = 200

export const WorkerId = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a worker id must not be empty" }),
  Schema.maxLength(maxWorkerIdLength, { message: () => `a worker id has at most ${maxWorkerIdLength} characters` })
)

/** Most types one claim may name. */
export const maxClaimTypes = 1_000

/** Most jobs one claim may lease. */
export const maxClaimJobs = 1_000

/** The lease a claim gets when it asks for none, unless the broker sets another (`OSQUEUE_LEASE_TTL`). */
export const defaultLeaseMs = 30_000

/** Longest lease a claim or a heartbeat may ask for: an hour. */
export const maxLeaseMs = 3_600_000

/** Longest a claim may wait for a job (its long poll). */
export const maxClaimWaitMs = 60_000

const LeaseMs = Schema.Int.pipe(Schema.between(1, maxLeaseMs))

/** Longest error a worker may report with `fail`. */
export const maxErrorLength = 10_000

export const ClaimRequest = Schema.Struct({
  workerId: WorkerId,
  /** Only these job types; every unpaused type when absent. */
  types: Schema.optionalWith(
    Schema.Array(JobType).pipe(
      Schema.maxItems(maxClaimTypes, { message: () => `a claim names at most ${maxClaimTypes} types` })
    ),
    { exact: true }
  ),
  /** Most jobs to return (one lease each). */
  max: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, maxClaimJobs)), { exact: true }),
  /** Lease length; the broker's default when absent. */
  leaseMs: Schema.optionalWith(LeaseMs, { exact: true }),
  /** Long poll: wait up to this long for a job when none is ready. */
  waitMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, maxClaimWaitMs)), { exact: true })
}).annotations(strictFields)
export type ClaimRequest = typeof ClaimRequest.Type

const claimKeys: ReadonlySet<string> = new Set(Object.keys(ClaimRequest.fields))
const isJobType = (u: unknown) => isStringOfLength(u, 1, maxJobTypeLength)

/** The fields of a claim that a completion may carry too (`CompleteAndClaimRequest`): all but its wait. */
const isClaimOf = (u: Record<string, unknown>) =>
  isStringOfLength(u.workerId, 1, maxWorkerIdLength) &&
  optional(u, "types", (types) => isArrayOf(types, isJobType) && (types as Array<unknown>).length <= maxClaimTypes) &&
  optional(u, "max", (max) => isIntIn(max, 1, maxClaimJobs)) &&
  optional(u, "leaseMs", (ms) => isIntIn(ms, 1, maxLeaseMs))

/** `ClaimRequest` as requests carry it (RPC and REST): its verdict by hand (`guarded`), a claim being on every job's path. */
export const ClaimRequestOnWire: Schema.Schema<ClaimRequest> = guarded(
  ClaimRequest,
  (u): u is ClaimRequest =>
    isObject(u) && isClaimOf(u) && optional(u, "waitMs", (ms) => isIntIn(ms, 0, maxClaimWaitMs)) &&
    onlyKeys(u, claimKeys)
)

export const HeartbeatRequest = Schema.Struct({
  token: LeaseToken,
  progress: Schema.optionalWith(Schema.Unknown, { exact: true }),
  leaseMs: Schema.optionalWith(LeaseMs, { exact: true })
}).annotations(strictFields)
export type HeartbeatRequest = typeof HeartbeatRequest.Type

export const HeartbeatResult = Schema.Struct({ jobId: JobId, expiresAt: Millis })
export type HeartbeatResult = typeof HeartbeatResult.Type

export const CompleteRequest = Schema.Struct({
  token: LeaseToken,
  result: Schema.optionalWith(Schema.Unknown, { exact: true })
}).annotations(strictFields)
export type CompleteRequest = typeof CompleteRequest.Type

const completeKeys: ReadonlySet<string> = new Set(Object.keys(CompleteRequest.fields))

/** `CompleteRequest` as requests carry it, as `ClaimRequestOnWire`. */
export const CompleteRequestOnWire: Schema.Schema<CompleteRequest> = guarded(
  CompleteRequest,
  (u): u is CompleteRequest => isObject(u) && isLeaseToken(u.token) && onlyKeys(u, completeKeys)
)

/**
 * A completion that claims the worker's next jobs in the same commit, as BullMQ's worker fetches
 * its next job when it moves one to finished: a worker's loop is one request per job, not two
 * (docs/architecture.md, "Complete and claim"). The claim's fields are `ClaimRequest`'s but its
 * wait: the answer comes once the commit is durable, with the jobs claimed (none when none was
 * claimable), never later; a worker that got none long-polls with `Claim`. A completion that is
 * refused claims nothing.
 */
export const CompleteAndClaimRequest = Schema.Struct({
  ...CompleteRequest.fields,
  ...Struct.omit(ClaimRequest.fields, "waitMs")
}).annotations(strictFields)
export type CompleteAndClaimRequest = typeof CompleteAndClaimRequest.Type

const completeAndClaimKeys: ReadonlySet<string> = new Set(Object.keys(CompleteAndClaimRequest.fields))

/** `CompleteAndClaimRequest` as requests carry it, as `ClaimRequestOnWire`. */
export const CompleteAndClaimRequestOnWire: Schema.Schema<CompleteAndClaimRequest> = guarded(
  CompleteAndClaimRequest,
  (u): u is CompleteAndClaimRequest =>
    isObject(u) && isLeaseToken(u.token) && isClaimOf(u) && onlyKeys(u, completeAndClaimKeys)
)

export const FailRequest = Schema.Struct({
  token: LeaseToken,
  error: Schema.String.pipe(
    Schema.maxLength(maxErrorLength, { message: () => `an error has at most ${maxErrorLength} characters` })
  ),
  /** False sends the job to the dead-letter list at once. Default true. */
  retryable: Schema.optionalWith(Schema.Boolean, { exact: true }),
  /** Overrides the job's backoff for this retry (at most `maxDelayMs`). */
  retryDelayMs: Schema.optionalWith(DelayMs, { exact: true })
}).annotations(strictFields)
export type FailRequest = typeof FailRequest.Type

/** Most completions one `CompleteMany` may carry. */
export const maxCompleteBatch = 10_000

/** Many completions in one call; each succeeds or fails on its own (one lost lease fails only its item). */
export const CompleteManyRequest = Schema.Struct({
  items: Schema.Array(CompleteRequestOnWire).pipe(Schema.minItems(1), Schema.maxItems(maxCompleteBatch))
}).annotations(strictFields)
export type CompleteManyRequest = typeof CompleteManyRequest.Type

const completeManyKeys: ReadonlySet<string> = new Set(Object.keys(CompleteManyRequest.fields))

/**
 * `CompleteManyRequest` as RPC requests carry it, as `EnqueueManyRequestOnWire`: one guard for the
 * request and its items, where the RPC client validated the struct (`payloadSchema.make`) and its
 * encode and the broker's decode walked the array and each item apart.
 */
export const CompleteManyRequestOnWire: Schema.Schema<CompleteManyRequest> = guarded(
  CompleteManyRequest,
  (u): u is CompleteManyRequest =>
    isObject(u) && Array.isArray(u.items) && u.items.length >= 1 && u.items.length <= maxCompleteBatch &&
    isArrayOf(u.items, (item) => isObject(item) && isLeaseToken(item.token) && onlyKeys(item, completeKeys)) &&
    onlyKeys(u, completeManyKeys)
)

/** One answer per item of a `CompleteMany`, in order. */
export const CompleteOutcomes = Schema.Array(Schema.Either({ right: JobOnWire, left: OsqueueError }))
export type CompleteOutcomes = typeof CompleteOutcomes.Type

/**
 * `CompleteOutcomes` as RPC answers carry them: each completed job whole, or its id alone when the
 * request asked for a minimal answer (`prefersMinimal`, `JobOrIdOnWire`). A worker needs no
 * more than that its completion was taken; a broker that does not know the preference answers
 * whole jobs, which a client reads too.
 */
export const CompletedOnWire = Schema.Array(Schema.Either({ right: JobOrIdOnWire, left: OsqueueError }))
export type CompletedOnWire = typeof CompletedOnWire.Type

export const TokenRequest = Schema.Struct({ token: LeaseToken }).annotations(strictFields)
export type TokenRequest = typeof TokenRequest.Type
export const IdRequest = Schema.Struct({ id: JobId }).annotations(strictFields)
export type IdRequest = typeof IdRequest.Type
/** Pause, resume or redrive one type; every type when absent. */
export const TypeRequest = Schema.Struct({ type: Schema.optionalWith(JobType, { exact: true }) }).annotations(
  strictFields
)
export type TypeRequest = typeof TypeRequest.Type

/** A new priority for a job that has not started (queued, delayed or waiting to retry). */
export const PriorityRequest = Schema.Struct({ id: JobId, priority: Priority }).annotations(strictFields)
export type PriorityRequest = typeof PriorityRequest.Type

/** The states a purge may empty: every one but `running` (cancel running jobs first). */
export const PurgeableState = JobState.pipe(
  Schema.filter((state) =>
    state !== "running" || "running jobs cannot be purged: cancel them first (that revokes their leases)"
  )
)

/** Removes every job in `state` (of `type` only, when given), for good. */
export const PurgeRequest = Schema.Struct({
  state: PurgeableState,
  type: Schema.optionalWith(JobType, { exact: true })
}).annotations(strictFields)
export type PurgeRequest = typeof PurgeRequest.Type

export const Count = Schema.Struct({ count: Schema.Int })

/** A schedule by its id (`RemoveSchedule`). */
export const ScheduleIdRequest = Schema.Struct({ id: ScheduleId }).annotations(strictFields)
export type ScheduleIdRequest = typeof ScheduleIdRequest.Type

/** A worker as the queue sees it: the jobs it holds now and when it last claimed, heartbeat or was seen polling. */
export const WorkerInfo = Schema.Struct({
  id: Schema.String,
  /** Running jobs leased to it. */
  jobs: Schema.Int,
  /** Its latest claim or heartbeat, or its latest claim call on this broker (ms since epoch). */
  lastSeenAt: Millis
})
export type WorkerInfo = typeof WorkerInfo.Type

/** Most jobs one `EnqueueMany` may carry. */
export const maxEnqueueBatch = 10_000

export const EnqueueManyRequest = Schema.Struct({
  jobs: Schema.Array(EnqueueOptions).pipe(Schema.maxItems(maxEnqueueBatch))
}).annotations(strictFields)
export type EnqueueManyRequest = typeof EnqueueManyRequest.Type

const enqueueManyKeys: ReadonlySet<string> = new Set(Object.keys(EnqueueManyRequest.fields))

/**
 * `EnqueueManyRequest` as requests carry it (RPC and REST), as `ClaimRequestOnWire`: one guard
 * for the request and its jobs, where the schema walked the array and checked each job apart.
 */
export const EnqueueManyRequestOnWire: Schema.Schema<EnqueueManyRequest> = guarded(
  EnqueueManyRequest,
  (u): u is EnqueueManyRequest =>
    isObject(u) && Array.isArray(u.jobs) && u.jobs.length <= maxEnqueueBatch && isArrayOf(u.jobs, isEnqueueOptions) &&
    onlyKeys(u, enqueueManyKeys)
)

/**
 * The RPC message header by which a request asks for a minimal answer, as HTTP's `Prefer:
 * return=minimal` (RFC 7240) does: `EnqueueMany` then answers each job's id alone
 * (`JobOrIdOnWire`), a few bytes where the whole job (its payload included) was hundreds, for
 * a producer that needs no more, and `CompleteMany` each completed job's id (`CompletedOnWire`),
 * for a worker. A broker may ignore it, as one that predates it does: a client that asks reads
 * whole jobs too. No other operation's answer changes.
 */
export const preferHeader = "prefer"
export const returnMinimal = "return=minimal"

/** Whether a message's headers ask for a minimal answer (`preferHeader`; preferences are comma-separated). */
export const prefersMinimal = (headers: ReadonlyArray<readonly [string, string]>): boolean => {
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== preferHeader) continue
    for (const preference of value.split(",")) if (preference.trim().toLowerCase() === returnMinimal) return true
  }
  return false
}

export const LeaderInfo = Schema.Struct({
  /** This broker's advertised URL. */
  self: Schema.String,
  role: Schema.Literal("leader", "follower"),
  leaderUrl: Schema.NullOr(Schema.String),
  epoch: Schema.Int,
  /** The leader's clock when it took over. */
  since: Schema.NullOr(Schema.Int)
})
export type LeaderInfo = typeof LeaderInfo.Type

/** The committed `queue.json` as this broker holds it, with the object version it was read at. */
export const RawState = Schema.Struct({
  /** The store's version token (ETag, generation, file generation); null before the first load. */
  version: Schema.NullOr(Schema.String),
  epoch: Schema.Int,
  seq: Schema.Int,
  commitId: Schema.String,
  /** Whether this broker leads (its view is the latest) or follows (its view may lag). */
  role: Schema.Literal("leader", "follower"),
  /** The decoded `queue.json`. */
  state: Schema.Unknown
})
export type RawState = typeof RawState.Type

/** Milliseconds at the 50th and 95th percentile of what was seen; null when nothing was. */
export const Percentiles = Schema.Struct({ p50: Schema.NullOr(Schema.Number), p95: Schema.NullOr(Schema.Number) })
export type Percentiles = typeof Percentiles.Type

/** What one job type did within a sample's interval (the per-type table). */
export const TypeSample = Schema.Struct({
  /** Jobs of the type in each state at the sample's end. */
  counts: StateCounts,
  completed: Schema.Int,
  /** Failed attempts (retried or dead-lettered). */
  failed: Schema.Int,
  /** From runnable to claimed. */
  wait: Percentiles,
  /** From claimed to completed. */
  run: Percentiles
})
export type TypeSample = typeof TypeSample.Type

/**
 * The queue over one interval, as the broker samples it (a ring of the last half hour, kept by
 * each broker): counts at its end, what happened during it, and how long jobs waited and ran.
 */
export const StatsSample = Schema.Struct({
  /** The interval's end (the broker's clock). */
  at: Schema.Int,
  intervalMs: Schema.Int,
  counts: StateCounts,
  enqueued: Schema.Int,
  completed: Schema.Int,
  failed: Schema.Int,
  dead: Schema.Int,
  /** Durable commits (writes of queue.json). */
  commits: Schema.Int,
  /** Job events those commits carried. */
  events: Schema.Int,
  wait: Percentiles,
  run: Percentiles,
  paused: Paused,
  /** By job type: in the last minute's samples only (older ones carry none). */
  byType: Schema.Record({ key: Schema.String, value: TypeSample })
})
export type StatsSample = typeof StatsSample.Type

export const WatchEvent = Schema.Union(
  Schema.Struct({ _tag: Schema.Literal("Job"), event: JobEvent }),
  Schema.Struct({ _tag: Schema.Literal("Leader"), leader: LeaderInfo }),
  Schema.Struct({ _tag: Schema.Literal("Stats"), stats: Stats }),
  /** With `history`: the broker's samples, oldest first, once at the start, then each new one as it is taken. */
  Schema.Struct({ _tag: Schema.Literal("History"), samples: Schema.Array(StatsSample) })
)
export type WatchEvent = typeof WatchEvent.Type

export const WatchRequest = Schema.Struct({
  /** Send a `Stats` event this often (none when absent). */
  statsEveryMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(100, 3_600_000)), { exact: true }),
  /** Send the broker's stats samples (`History`): those it keeps, then each new one. */
  history: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type WatchRequest = typeof WatchRequest.Type

export class OsqueueRpcs extends RpcGroup.make(
  Rpc.make("Enqueue", { payload: EnqueueOptionsOnWire, success: JobOnWire, error: OsqueueError }),
  /** Answers each job, or only its id when the message's headers prefer a minimal answer (`prefersMinimal`). */
  Rpc.make("EnqueueMany", {
    payload: EnqueueManyRequestOnWire,
    success: JobsOrIdsOnWire,
    error: OsqueueError
  }),
  /** A flow (docs/flows.md): its jobs, each before its children. */
  Rpc.make("EnqueueFlow", { payload: FlowRequest, success: Schema.Array(JobOnWire), error: OsqueueError }),
  Rpc.make("Claim", { payload: ClaimRequestOnWire, success: ClaimedJobsOnWire, error: OsqueueError }),
  Rpc.make("Heartbeat", { payload: HeartbeatRequest, success: HeartbeatResult, error: OsqueueError }),
  Rpc.make("Complete", { payload: CompleteRequestOnWire, success: JobOnWire, error: OsqueueError }),
  /** Completes the job, then claims up to `max` jobs in the same commit: those claimed, none when none was claimable. */
  Rpc.make("CompleteAndClaim", {
    payload: CompleteAndClaimRequestOnWire,
    success: ClaimedJobsOnWire,
    error: OsqueueError
  }),
  /** Answers each item's outcome: its job, or only the job's id when the message's headers prefer a minimal answer. */
  Rpc.make("CompleteMany", {
    payload: CompleteManyRequestOnWire,
    success: CompletedOnWire,
    error: OsqueueError
  }),
  Rpc.make("Fail", { payload: FailRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("Release", { payload: TokenRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("Cancel", { payload: IdRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("Retry", { payload: IdRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("RetryDead", { payload: TypeRequest, success: Count, error: OsqueueError }),
  Rpc.make("Promote", { payload: IdRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("SetPriority", { payload: PriorityRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("Delete", { payload: IdRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("Purge", { payload: PurgeRequest, success: Count, error: OsqueueError }),
  Rpc.make("Pause", { payload: TypeRequest, success: Paused, error: OsqueueError }),
  Rpc.make("Resume", { payload: TypeRequest, success: Paused, error: OsqueueError }),
  Rpc.make("UpsertSchedule", { payload: ScheduleSpec, success: Schedule, error: OsqueueError }),
  Rpc.make("RemoveSchedule", { payload: ScheduleIdRequest, success: Schedule, error: OsqueueError }),
  Rpc.make("ListSchedules", { success: Schema.Array(Schedule), error: OsqueueError }),
  Rpc.make("SetLimit", { payload: SetLimitRequest, success: Schema.Array(ClaimLimit), error: OsqueueError }),
  Rpc.make("ClearLimit", { payload: TypeRequest, success: Schema.Array(ClaimLimit), error: OsqueueError }),
  Rpc.make("Limits", { success: Schema.Array(LimitStatus), error: OsqueueError }),
  Rpc.make("Get", { payload: IdRequest, success: JobOnWire, error: OsqueueError }),
  Rpc.make("List", { payload: ListQuery, success: JobPage, error: OsqueueError }),
  Rpc.make("Stats", { success: Stats, error: OsqueueError }),
  Rpc.make("Workers", { success: Schema.Array(WorkerInfo), error: OsqueueError }),
  Rpc.make("Leader", { success: LeaderInfo, error: OsqueueError }),
  Rpc.make("State", { success: RawState, error: OsqueueError }),
  Rpc.make("Watch", { payload: WatchRequest, success: WatchEvent, error: OsqueueError, stream: true })
) {}
