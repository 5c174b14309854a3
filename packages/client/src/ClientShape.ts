/**
 * What an `OsqueueClient` can do: the service's shape, one method per operation with what it
 * answers and how it fails, and the settings its enqueues take. `Operations` builds it over a
 * `Router`.
 */
import type {
  Backoff,
  ChildFailurePolicy,
  ClaimedJob,
  ClaimLimit,
  ClaimRequest,
  FlowJob,
  HeartbeatResult,
  InvalidRequest,
  Job,
  JobId,
  JobPage,
  JobState,
  LeaderInfo,
  LimitStatus,
  ListQuery,
  Paused,
  RawState,
  Schedule,
  ScheduleSpec,
  Stats,
  WatchEvent,
  WorkerInfo
} from "@osqueue/types"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { WaitSettings } from "./Awaiting.js"
import type { ClientError, WaitError } from "./Errors.js"
import type * as JobDefinition from "./JobDefinition.js"

/** Per-enqueue settings; a definition's defaults apply under them. */
export interface EnqueueSettings {
  readonly priority?: number
  /** Claimable this long after the enqueue commits. */
  readonly delayMs?: number
  /** Claimable from this instant (ms since epoch). */
  readonly runAt?: number
  readonly maxAttempts?: number
  readonly backoff?: Backoff
  /**
   * Enqueueing a key that exists returns the existing job. When absent the client generates
   * one before the first attempt, so its own retries never create duplicates.
   */
  readonly idempotencyKey?: string
  /**
   * How long one attempt's handler may run (1 ms to 24 days): past it the worker interrupts the
   * handler and fails the attempt with `JobTimeout`, retried with the backoff. Wins over the
   * worker's default for the type. Not to be confused with `waitMs`, which bounds a wait for the result.
   */
  readonly timeoutMs?: number
}

/** An enqueue's settings and how long to wait for the job to finish. */
export interface EnqueueAndWaitSettings extends EnqueueSettings, WaitSettings {}

/** One job of an untyped `enqueueMany`. */
export interface JobInput extends EnqueueSettings {
  readonly type: string
  readonly payload?: unknown
}

/** The claim a completion makes after it (`completeAndClaim`): a claim's fields but its wait. */
export type NextClaim = Omit<ClaimRequest, "waitMs">

export interface OsqueueClientShape {
  readonly enqueue: {
    <D extends JobDefinition.Any>(
      definition: D,
      payload: JobDefinition.Payload<D>,
      options?: EnqueueSettings
    ): Effect.Effect<Job, ClientError>
    (type: string, payload?: unknown, options?: EnqueueSettings): Effect.Effect<Job, ClientError>
  }
  readonly enqueueMany: {
    <D extends JobDefinition.Any>(
      definition: D,
      payloads: ReadonlyArray<JobDefinition.Payload<D>>,
      options?: Omit<EnqueueSettings, "idempotencyKey">
    ): Effect.Effect<ReadonlyArray<Job>, ClientError>
    (jobs: ReadonlyArray<JobInput>): Effect.Effect<ReadonlyArray<Job>, ClientError>
  }
  /**
   * `enqueueMany` for a producer that needs only the jobs' ids: the broker answers each job's id
   * instead of the whole job (its payload included), which costs both sides a fraction of the
   * CPU per job. A broker that predates it answers whole jobs, of which the ids are kept.
   */
  readonly enqueueManyIds: {
    <D extends JobDefinition.Any>(
      definition: D,
      payloads: ReadonlyArray<JobDefinition.Payload<D>>,
      options?: Omit<EnqueueSettings, "idempotencyKey">
    ): Effect.Effect<ReadonlyArray<JobId>, ClientError>
    (jobs: ReadonlyArray<JobInput>): Effect.Effect<ReadonlyArray<JobId>, ClientError>
  }
  /**
   * Enqueues a job and waits for it to finish, over the leader's event stream (RPC transports
   * only): the events are subscribed to first. Succeeds with the job's result (decoded by the
   * definition's `result` schema); fails with `JobFailed` when the job dies or is cancelled, and
   * with `WaitTimeout` when it has not finished `waitMs` after it was enqueued (it goes on).
   */
  readonly enqueueAndWait: {
    <D extends JobDefinition.Any>(
      definition: D,
      payload: JobDefinition.Payload<D>,
      options?: EnqueueAndWaitSettings
    ): Effect.Effect<JobDefinition.Result<D>, WaitError>
    (type: string, payload?: unknown, options?: EnqueueAndWaitSettings): Effect.Effect<unknown, WaitError>
  }
  /**
   * Waits for the job `id` to finish, as `enqueueAndWait` does; a job that has already finished
   * answers at once. `waitMs` counts from the call.
   */
  readonly result: {
    <D extends JobDefinition.Any>(
      definition: D,
      id: string,
      options?: WaitSettings
    ): Effect.Effect<JobDefinition.Result<D>, WaitError>
    (id: string, options?: WaitSettings): Effect.Effect<unknown, WaitError>
  }
  /** Leases up to `max` jobs (default 1); with `waitMs` the broker holds the call until one is ready. */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ReadonlyArray<ClaimedJob>, ClientError>
  readonly heartbeat: (
    token: string,
    options?: { readonly progress?: unknown; readonly leaseMs?: number }
  ) => Effect.Effect<HeartbeatResult, ClientError>
  readonly complete: (token: string, result?: unknown) => Effect.Effect<Job, ClientError>
  /**
   * `complete` for a worker that needs only that the completion was taken: the broker answers
   * the job's id instead of the whole job (its payload and result included). A broker that
   * predates it answers the job, of which the id is kept.
   */
  readonly completeId: (token: string, result?: unknown) => Effect.Effect<JobId, ClientError>
  /**
   * Completes the job and, in the same commit, claims up to `next.max` jobs (default 1) for
   * `next.workerId`: a worker's loop in one call per job, as BullMQ's worker fetches its next
   * job when it finishes one. Answers the jobs claimed, none when none was claimable: it never
   * waits (long-poll with `claim` then). A refused completion claims nothing.
   */
  readonly completeAndClaim: (
    token: string,
    result: unknown,
    next: NextClaim
  ) => Effect.Effect<ReadonlyArray<ClaimedJob>, ClientError>
  readonly fail: (
    token: string,
    error: string,
    options?: { readonly retryable?: boolean; readonly retryDelayMs?: number }
  ) => Effect.Effect<Job, ClientError>
  /** Gives a leased job back to the queue without counting an attempt. */
  readonly release: (token: string) => Effect.Effect<Job, ClientError>
  readonly cancel: (id: string) => Effect.Effect<Job, ClientError>
  readonly retry: (id: string) => Effect.Effect<Job, ClientError>
  /** Sends dead jobs (of one type, or all) back to the queue; answers how many. */
  readonly retryDead: (type?: string) => Effect.Effect<number, ClientError>
  /** Makes a delayed or retry-waiting job claimable now. */
  readonly promote: (id: string) => Effect.Effect<Job, ClientError>
  /** Changes the priority of a job that has not started (queued, delayed, waiting to retry). */
  readonly setPriority: (id: string, priority: number) => Effect.Effect<Job, ClientError>
  /** Removes a job for good, in any state but running (cancel it first); answers the job as it was. */
  readonly delete: (id: string) => Effect.Effect<Job, ClientError>
  /** Removes every job in `state` (not running), of `type` only when given, for good; answers how many. */
  readonly purge: (state: JobState, type?: string) => Effect.Effect<number, ClientError>
  readonly pause: (type?: string) => Effect.Effect<Paused, ClientError>
  readonly resume: (type?: string) => Effect.Effect<Paused, ClientError>
  /**
   * Sets a schedule: a job enqueued at each slot of `cron` (in `timezone`, UTC by default) or
   * every `everyMs`; an id that exists is replaced and keeps its last run (docs/architecture.md,
   * "Schedules"). Answers it as it now stands, with its next slot.
   */
  readonly upsertSchedule: (spec: ScheduleSpec) => Effect.Effect<Schedule, ClientError>
  /**
   * Enqueues a flow in one commit, all or nothing (docs/flows.md): `job` and its `children`,
   * nested. A parent runs once each of its children ended and reads their ends in
   * `job.childResults`; `onChildFailure` (`fail` by default) says whether a child that dies,
   * is cancelled or deleted fails its parent or is left out. Answers the jobs, each before its
   * children (`[0]` is the root). A flow past `maxFlowDepth` levels or `maxFlowJobs` jobs, or
   * naming an idempotency key twice, is refused before it leaves.
   */
  readonly enqueueFlow: (
    job: FlowJob,
    options?: { readonly onChildFailure?: ChildFailurePolicy | undefined }
  ) => Effect.Effect<ReadonlyArray<Job>, ClientError>
  /** Removes a schedule (runs already enqueued stay); answers it as it was. */
  readonly removeSchedule: (id: string) => Effect.Effect<Schedule, ClientError>
  /** Every schedule, by id, with its next slot and last run. */
  readonly listSchedules: Effect.Effect<ReadonlyArray<Schedule>, ClientError>
  /**
   * Sets the limit on claims of `limit.type` (of the whole queue without it): at most
   * `concurrency` of its jobs running at once across every worker, at most `rate.max` claims
   * starting per `rate.windowMs`. The scope's limit becomes exactly this; answers every limit.
   */
  readonly setLimit: (limit: ClaimLimit) => Effect.Effect<ReadonlyArray<ClaimLimit>, ClientError>
  /** Removes the limit on claims of `type` (of the whole queue without it); answers every limit. */
  readonly clearLimit: (type?: string) => Effect.Effect<ReadonlyArray<ClaimLimit>, ClientError>
  /** Each limit on claims, with its scope's running jobs and (with a rate) the starts in its window now. */
  readonly limits: Effect.Effect<ReadonlyArray<LimitStatus>, ClientError>
  readonly get: (id: string) => Effect.Effect<Job, ClientError>
  readonly list: (query?: ListQuery) => Effect.Effect<JobPage, ClientError>
  readonly stats: Effect.Effect<Stats, ClientError>
  /** Workers seen in the last lease TTL: the jobs each holds and when it was last seen. */
  readonly workers: Effect.Effect<ReadonlyArray<WorkerInfo>, ClientError>
  readonly leader: Effect.Effect<LeaderInfo, ClientError>
  /** The committed `queue.json` as the broker holds it (a follower's view may lag). */
  readonly state: Effect.Effect<RawState, ClientError>
  /** Queue events from the leader; reconnects (events in the gap are not replayed). */
  readonly watch: (
    options?: { readonly statsEveryMs?: number; readonly history?: boolean }
  ) => Stream.Stream<WatchEvent, ClientError>
  /** The broker requests go to now. */
  readonly currentBroker: Effect.Effect<string>
  /** The queue this client's requests are for (`default` unless the connection named one). */
  readonly queue: string
  /**
   * A client of the same brokers, with the same settings, for the queue `name` (its own leader
   * following: each queue may have another leader), living as long as the scope.
   */
  readonly forQueue: (name: string) => Effect.Effect<OsqueueClientShape, InvalidRequest, Scope.Scope>
}

/** What `make` builds; the connection adds which queue (`queue`, `forQueue`). */
export type QueueOperations = Omit<OsqueueClientShape, "queue" | "forQueue">
