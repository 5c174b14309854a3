/**
 * The commands that change the queue. The state machine applies them one by one; the group
 * commit batches them into one write. Inputs arrive already decoded by Schema (RPC/REST), so
 * only rules that depend on the state are checked here; whatever else a command carries (a value
 * that cannot be written as JSON, a time past what queue.json holds) refuses that command alone
 * (`QueueState.apply`).
 */
import type {
  ClaimLimit,
  EnqueueOptions,
  Job,
  JobId,
  JobState,
  LeaseToken,
  Paused,
  Schedule,
  ScheduleSpec
} from "@osqueue/types"

export type Command =
  | { readonly _tag: "Enqueue"; readonly jobs: ReadonlyArray<EnqueueOptions> }
  | {
    readonly _tag: "Claim"
    readonly workerId: string
    /** Only these types; all (unpaused) types when absent. */
    readonly types?: ReadonlyArray<string>
    readonly max: number
    readonly leaseMs?: number
  }
  | { readonly _tag: "Heartbeat"; readonly token: LeaseToken; readonly progress?: unknown; readonly leaseMs?: number }
  | { readonly _tag: "Complete"; readonly token: LeaseToken; readonly result?: unknown }
  | {
    readonly _tag: "Fail"
    readonly token: LeaseToken
    readonly error: string
    /** False sends the job to the dead-letter list at once. Default true. */
    readonly retryable?: boolean
    /** Overrides the job's backoff for this retry. */
    readonly retryDelayMs?: number
  }
  | { readonly _tag: "Release"; readonly token: LeaseToken }
  | { readonly _tag: "Cancel"; readonly id: JobId }
  | { readonly _tag: "Retry"; readonly id: JobId }
  | { readonly _tag: "RetryDead"; readonly type?: string }
  /** A delayed or retry-waiting job becomes claimable now. */
  | { readonly _tag: "Promote"; readonly id: JobId }
  /** A job that has not started (queued, delayed, waiting to retry) gets a new priority. */
  | { readonly _tag: "SetPriority"; readonly id: JobId; readonly priority: number }
  /** Removes a job in any state but running (cancel it first). */
  | { readonly _tag: "Delete"; readonly id: JobId }
  /** Removes every job in `state` (never running), of `type` only when given. */
  | { readonly _tag: "Purge"; readonly state: JobState; readonly type?: string }
  | { readonly _tag: "Pause"; readonly type?: string }
  | { readonly _tag: "Resume"; readonly type?: string }
  /** Sets a schedule (docs/architecture.md, "Schedules"): a new id, or a new rule and job for one that exists. */
  | { readonly _tag: "UpsertSchedule"; readonly schedule: ScheduleSpec }
  | { readonly _tag: "RemoveSchedule"; readonly id: string }
  /** The limit on claims of a type (or of the whole queue, without `type`) becomes exactly this. */
  | { readonly _tag: "SetLimit"; readonly limit: ClaimLimit }
  /** Removes the limit of a type (or of the whole queue, without `type`); none is no error. */
  | { readonly _tag: "ClearLimit"; readonly type?: string }

export interface HeartbeatResult {
  readonly jobId: JobId
  readonly expiresAt: number
}

export interface ClaimResult {
  readonly job: Job
  readonly token: LeaseToken
}

export interface CommandResults {
  readonly Enqueue: ReadonlyArray<Job>
  readonly Claim: ReadonlyArray<ClaimResult>
  readonly Heartbeat: HeartbeatResult
  readonly Complete: Job
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
