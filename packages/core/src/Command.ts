/**
 * The commands that change the queue. The state machine applies them one by one; the group
 * commit batches them into one write. Inputs arrive already decoded by Schema (RPC/REST), so
 * only rules that depend on the state are checked here; whatever else a command carries (a value
 * that cannot be written as JSON, a time past what queue.json holds) refuses that command alone
 * (`QueueState.apply`).
 */
import type {
  ClaimLimit,
  ClaimRequest,
  CompleteAndClaimRequest,
  CompleteRequest,
  EnqueueManyRequest,
  FailRequest,
  FlowRequest,
  HeartbeatRequest,
  HeartbeatResult,
  IdRequest,
  Job,
  LeaseToken,
  Paused,
  PriorityRequest,
  PurgeRequest,
  Schedule,
  ScheduleIdRequest,
  ScheduleSpec,
  TokenRequest,
  TypeRequest
} from "@osqueue/types"

export type { HeartbeatResult }

/** A request as the state machine takes it: the request's own schema type (`@osqueue/types`) under its operation's tag. */
type Tagged<Tag extends string, Request> = { readonly _tag: Tag } & Request

export type Command =
  | Tagged<"Enqueue", EnqueueManyRequest>
  /** A flow, whole or not at all (docs/flows.md). */
  | Tagged<"EnqueueFlow", FlowRequest>
  /** `max` is the broker's default when the request has none; a claim's wait (`waitMs`) is the broker's, never the state's. */
  | Tagged<"Claim", ClaimRequest & { readonly max: number }>
  | Tagged<"Heartbeat", HeartbeatRequest>
  | Tagged<"Complete", CompleteRequest>
  /** The completion, then the claim (`max` as `Claim`'s), as one command: a refused completion claims nothing. */
  | Tagged<"CompleteAndClaim", CompleteAndClaimRequest & { readonly max: number }>
  | Tagged<"Fail", FailRequest>
  | Tagged<"Release", TokenRequest>
  | Tagged<"Cancel", IdRequest>
  | Tagged<"Retry", IdRequest>
  /** Dead jobs (of `type` only, when given) back to the queue. */
  | Tagged<"RetryDead", TypeRequest>
  /** A delayed or retry-waiting job becomes claimable now. */
  | Tagged<"Promote", IdRequest>
  /** A job that has not started (queued, delayed, waiting to retry) gets a new priority. */
  | Tagged<"SetPriority", PriorityRequest>
  /** Removes a job in any state but running (cancel it first). */
  | Tagged<"Delete", IdRequest>
  /** Removes every job in `state` (never running), of `type` only when given. */
  | Tagged<"Purge", PurgeRequest>
  | Tagged<"Pause", TypeRequest>
  | Tagged<"Resume", TypeRequest>
  /** Sets a schedule (docs/architecture.md, "Schedules"): a new id, or a new rule and job for one that exists. */
  | Tagged<"UpsertSchedule", { readonly schedule: ScheduleSpec }>
  | Tagged<"RemoveSchedule", ScheduleIdRequest>
  /** The limit on claims of a type (or of the whole queue, without `type`) becomes exactly this. */
  | Tagged<"SetLimit", { readonly limit: ClaimLimit }>
  /** Removes the limit of a type (or of the whole queue, without `type`); none is no error. */
  | Tagged<"ClearLimit", TypeRequest>

export interface ClaimResult {
  readonly job: Job
  readonly token: LeaseToken
}

export interface CommandResults {
  readonly Enqueue: ReadonlyArray<Job>
  /** The flow's jobs, each before its children (`flowOrder`). */
  readonly EnqueueFlow: ReadonlyArray<Job>
  readonly Claim: ReadonlyArray<ClaimResult>
  readonly Heartbeat: HeartbeatResult
  readonly Complete: Job
  /** The jobs claimed after the completion (the completed job is the caller's). */
  readonly CompleteAndClaim: ReadonlyArray<ClaimResult>
  readonly Fail: Job
  readonly Release: Job
  readonly Cancel: Job
  readonly Retry: Job
  /** How many dead jobs went back to the queue. */
  readonly RetryDead: number
  readonly Promote: Job
  readonly SetPriority: Job
  /** The job as it was. */
  readonly Delete: Job
  /** How many jobs left. */
  readonly Purge: number
  readonly Pause: Paused
  readonly Resume: Paused
  readonly UpsertSchedule: Schedule
  /** The schedule as it was. */
  readonly RemoveSchedule: Schedule
  /** Every limit, after the change. */
  readonly SetLimit: ReadonlyArray<ClaimLimit>
  readonly ClearLimit: ReadonlyArray<ClaimLimit>
}

export type ResultOf<C extends Command> = CommandResults[C["_tag"]]
