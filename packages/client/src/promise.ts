/**
 * The Promise facade for code that does not use Effect. Each method runs one operation of the
 * `OsqueueClient` service (leader discovery and retries included) and rejects with the tagged
 * error object itself (`err._tag === "JobNotFound"`, `err instanceof Error`), never a wrapper.
 *
 *   import { OsqueueClient } from "@osqueue/client/promise"
 *   const client = new OsqueueClient({ brokerUrl: "http://localhost:8080", transport: { kind: "http" } })
 */
import type * as RpcClient from "@effect/rpc/RpcClient"
import type {
  ChildFailurePolicy,
  ClaimedJob,
  ClaimLimit,
  FlowJob,
  HeartbeatResult,
  Job,
  JobId,
  JobPage,
  JobState,
  LeaderInfo,
  LimitStatus,
  ListQuery,
  Paused,
  RawState,
  Schedule as JobSchedule,
  ScheduleSpec,
  Stats,
  WatchEvent,
  WorkerInfo
} from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { WaitSettings } from "./Awaiting.js"
import type { EnqueueAndWaitSettings, EnqueueSettings, JobInput, OsqueueClientShape } from "./ClientShape.js"
import type { WaitError } from "./Errors.js"
import * as JobDefinition from "./JobDefinition.js"
import { OsqueueClient as ClientTag } from "./OsqueueClient.js"
import type { Serialization } from "./Protocols.js"
import { defaultRetry } from "./Router.js"

export type { WaitSettings } from "./Awaiting.js"
export type { EnqueueAndWaitSettings, EnqueueSettings, JobInput } from "./ClientShape.js"
export type { ClientError, WaitError } from "./Errors.js"

export type Transport =
  | { readonly kind: "http" }
  | { readonly kind: "ws"; readonly serialization?: Serialization }
  | { readonly kind: "rest" }
  /** Any RPC client protocol layer (one broker). */
  | { readonly kind: "custom"; readonly protocol: Layer.Layer<RpcClient.Protocol> }

export interface PromiseClientOptions {
  /** One broker's base URL, e.g. `http://localhost:8080`. */
  readonly brokerUrl?: string | undefined
  /** Several brokers: the client finds the leader and fails over. */
  readonly brokerUrls?: ReadonlyArray<string> | undefined
  /** Default `{ kind: "http" }` (RPC over HTTP). */
  readonly transport?: Transport | undefined
  readonly token?: string | undefined
  /** One attempt's deadline in ms (default 30 000; a long-poll claim adds its `waitMs`). */
  readonly requestTimeoutMs?: number | undefined
  /** Give up retrying one call after this long in ms (default 30 000). */
  readonly retryForMs?: number | undefined
  /** The queue to use, one of those the brokers serve (default: the default queue). */
  readonly queue?: string | undefined
}

export interface ClaimOptions {
  readonly types?: ReadonlyArray<string>
  readonly leaseMs?: number
  /** Long poll: wait up to this long for a job. */
  readonly waitMs?: number
}

const layerFor = (options: PromiseClientOptions): Layer.Layer<ClientTag> => {
  const urls = options.brokerUrls ?? (options.brokerUrl === undefined ? [] : [options.brokerUrl])
  const transport = options.transport ?? { kind: "http" }
  const retry = options.retryForMs === undefined
    ? defaultRetry
    : Schedule.exponential("100 millis", 2).pipe(
      Schedule.union(Schedule.spaced("2 seconds")),
      Schedule.jittered,
      Schedule.upTo(options.retryForMs)
    )
  const common = {
    retry,
    queue: options.queue,
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs })
  }
  if (transport.kind === "custom") return ClientTag.layerProtocol(transport.protocol, common)
  if (urls.length === 0) throw new TypeError("OsqueueClient needs brokerUrl or brokerUrls")
  const connection = { ...common, urls, token: options.token }
  switch (transport.kind) {
    case "http":
      return ClientTag.layerHttp(connection)
    case "ws":
      return ClientTag.layerWebSocket({ ...connection, serialization: transport.serialization })
    case "rest":
      return ClientTag.layerRest(connection)
  }
}

/** The error itself for a failure; the squashed cause (an Error) for a defect or interruption. */
const unwrap = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  throw Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
}

export class OsqueueClient {
  private readonly runtime: ManagedRuntime.ManagedRuntime<ClientTag, never>

  constructor(options: PromiseClientOptions) {
    this.runtime = ManagedRuntime.make(layerFor(options))
  }

  private run<A, E extends WaitError>(f: (client: OsqueueClientShape) => Effect.Effect<A, E>): Promise<A> {
    return this.runtime.runPromiseExit(Effect.flatMap(ClientTag, f)).then(unwrap)
  }

  /** Enqueues a job; with a `JobDefinition` the payload is type-checked and encoded by its schema. */
  submitJob<D extends JobDefinition.Any>(
    definition: D,
    payload: JobDefinition.Payload<D>,
    options?: EnqueueSettings
  ): Promise<Job>
  submitJob(type: string, payload?: unknown, options?: EnqueueSettings): Promise<Job>
  submitJob(typeOrDefinition: string | JobDefinition.Any, payload?: unknown, options?: EnqueueSettings): Promise<Job> {
    return this.run((c) =>
      typeof typeOrDefinition === "string"
        ? c.enqueue(typeOrDefinition, payload, options)
        : c.enqueue(typeOrDefinition, payload, options)
    )
  }

  /**
   * Enqueues a job and resolves with its result once it completes (decoded by the definition's
   * `result` schema), over the event stream (RPC transports only). Rejects with `JobFailed` when
   * the job dies or is cancelled, `WaitTimeout` when it has not finished `waitMs` after it was
   * enqueued (it goes on, not cancelled).
   */
  submitJobAndWait<D extends JobDefinition.Any>(
    definition: D,
    payload: JobDefinition.Payload<D>,
    options?: EnqueueAndWaitSettings
  ): Promise<JobDefinition.Result<D>>
  submitJobAndWait(type: string, payload?: unknown, options?: EnqueueAndWaitSettings): Promise<unknown>
  submitJobAndWait(
    typeOrDefinition: string | JobDefinition.Any,
    payload?: unknown,
    options?: EnqueueAndWaitSettings
  ): Promise<unknown> {
    return this.run((c) =>
      typeof typeOrDefinition === "string"
        ? c.enqueueAndWait(typeOrDefinition, payload, options)
        : c.enqueueAndWait(typeOrDefinition, payload, options)
    )
  }

  /** Resolves with the result of job `id` once it completes (at once if it has), as `submitJobAndWait` does. */
  jobResult<D extends JobDefinition.Any>(
    definition: D,
    id: string,
    options?: WaitSettings
  ): Promise<JobDefinition.Result<D>>
  jobResult(id: string, options?: WaitSettings): Promise<unknown>
  jobResult(
    idOrDefinition: string | JobDefinition.Any,
    idOrOptions?: string | WaitSettings,
    options?: WaitSettings
  ): Promise<unknown> {
    return this.run((c) =>
      JobDefinition.isJobDefinition(idOrDefinition)
        ? c.result(idOrDefinition, idOrOptions as string, options)
        : c.result(idOrDefinition, idOrOptions as WaitSettings | undefined)
    )
  }

  /** Enqueues several jobs in one commit. */
  submitJobs(jobs: ReadonlyArray<JobInput>): Promise<ReadonlyArray<Job>> {
    return this.run((c) => c.enqueueMany(jobs))
  }

  /** `submitJobs` answered with the jobs' ids alone: less for the broker to send and for this client to read. */
  submitJobIds(jobs: ReadonlyArray<JobInput>): Promise<ReadonlyArray<JobId>> {
    return this.run((c) => c.enqueueManyIds(jobs))
  }

  /** Leases one job, or answers null when none is ready (within `waitMs`). */
  claimJob(workerId: string, options: ClaimOptions = {}): Promise<ClaimedJob | null> {
    return this.claimJobs(workerId, { ...options, max: 1 }).then((jobs) => jobs[0] ?? null)
  }

  claimJobs(
    workerId: string,
    options: ClaimOptions & { readonly max?: number } = {}
  ): Promise<ReadonlyArray<ClaimedJob>> {
    return this.run((c) => c.claim({ ...options, workerId }))
  }

  /** Extends the lease (rejects with `LeaseLost` when it is gone: stop working on the job). */
  heartbeat(token: string, progress?: unknown): Promise<HeartbeatResult> {
    return this.run((c) => c.heartbeat(token, progress === undefined ? {} : { progress }))
  }

  completeJob(token: string, result?: unknown): Promise<Job> {
    return this.run((c) => c.complete(token, result))
  }

  /**
   * Completes the job and claims the worker's next jobs in the same commit (`max`, default 1):
   * resolves with those claimed, none when none was ready (it never waits: long-poll with
   * `claimJobs` then).
   */
  completeAndClaimJobs(
    token: string,
    result: unknown,
    workerId: string,
    options: Omit<ClaimOptions, "waitMs"> & { readonly max?: number } = {}
  ): Promise<ReadonlyArray<ClaimedJob>> {
    return this.run((c) => c.completeAndClaim(token, result, { ...options, workerId }))
  }

  /** Fails the job: retried with its backoff unless `retryable` is false (then dead at once). */
  failJob(
    token: string,
    error: string | Error,
    options?: { readonly retryable?: boolean; readonly retryDelayMs?: number }
  ): Promise<Job> {
    const message = typeof error === "string" ? error : `${error.name}: ${error.message}`
    return this.run((c) => c.fail(token, message, options))
  }

  /** Gives a leased job back without counting an attempt. */
  releaseJob(token: string): Promise<Job> {
    return this.run((c) => c.release(token))
  }

  cancelJob(id: string): Promise<Job> {
    return this.run((c) => c.cancel(id))
  }

  retryJob(id: string): Promise<Job> {
    return this.run((c) => c.retry(id))
  }

  /** Sends dead jobs (of one type, or all) back to the queue; answers how many. */
  retryDeadJobs(type?: string): Promise<number> {
    return this.run((c) => c.retryDead(type))
  }

  /** Makes a delayed or retry-waiting job claimable now. */
  promoteJob(id: string): Promise<Job> {
    return this.run((c) => c.promote(id))
  }

  /** Changes the priority of a job that has not started. */
  setJobPriority(id: string, priority: number): Promise<Job> {
    return this.run((c) => c.setPriority(id, priority))
  }

  /** Removes a job for good, in any state but running (cancel it first); resolves to the job as it was. */
  deleteJob(id: string): Promise<Job> {
    return this.run((c) => c.delete(id))
  }

  /** Removes every job in `state` (not running), of `type` only when given; resolves to how many. */
  purgeJobs(state: JobState, type?: string): Promise<number> {
    return this.run((c) => c.purge(state, type))
  }

  /** Workers seen in the last lease TTL: the jobs each holds and when it was last seen. */
  getWorkers(): Promise<ReadonlyArray<WorkerInfo>> {
    return this.run((c) => c.workers)
  }

  pause(type?: string): Promise<Paused> {
    return this.run((c) => c.pause(type))
  }

  resume(type?: string): Promise<Paused> {
    return this.run((c) => c.resume(type))
  }

  /**
   * Sets a schedule: a job enqueued at each slot of `cron` (in `timezone`, UTC by default) or
   * every `everyMs`; an id that exists is replaced and keeps its last run. Resolves to it as it
   * now stands, with its next slot.
   */
  upsertSchedule(spec: ScheduleSpec): Promise<JobSchedule> {
    return this.run((c) => c.upsertSchedule(spec))
  }

  /**
   * Enqueues a flow in one commit, all or nothing (docs/flows.md): `job` and its `children`,
   * nested. A parent runs once each child ended, with their ends in `job.childResults`.
   * Resolves to the jobs, each before its children (`[0]` is the root).
   */
  enqueueFlow(
    job: FlowJob,
    options?: { readonly onChildFailure?: ChildFailurePolicy | undefined }
  ): Promise<ReadonlyArray<Job>> {
    return this.run((c) => c.enqueueFlow(job, options))
  }

  /** Removes a schedule (runs already enqueued stay); resolves to it as it was. */
  removeSchedule(id: string): Promise<JobSchedule> {
    return this.run((c) => c.removeSchedule(id))
  }

  /** Every schedule, by id, with its next slot and last run. */
  listSchedules(): Promise<ReadonlyArray<JobSchedule>> {
    return this.run((c) => c.listSchedules)
  }

  /**
   * Sets the limit on claims of `limit.type` (of the whole queue without it): at most
   * `concurrency` running at once across every worker, at most `rate.max` starts per
   * `rate.windowMs`. Resolves to every limit.
   */
  setLimit(limit: ClaimLimit): Promise<ReadonlyArray<ClaimLimit>> {
    return this.run((c) => c.setLimit(limit))
  }

  /** Removes the limit on claims of `type` (of the whole queue without it); resolves to every limit. */
  clearLimit(type?: string): Promise<ReadonlyArray<ClaimLimit>> {
    return this.run((c) => c.clearLimit(type))
  }

  /** Each limit on claims, with its scope's running jobs and the starts in its window now. */
  getLimits(): Promise<ReadonlyArray<LimitStatus>> {
    return this.run((c) => c.limits)
  }

  getJob(id: string): Promise<Job> {
    return this.run((c) => c.get(id))
  }

  listJobs(query?: ListQuery): Promise<JobPage> {
    return this.run((c) => c.list(query))
  }

  getStats(): Promise<Stats> {
    return this.run((c) => c.stats)
  }

  getLeader(): Promise<LeaderInfo> {
    return this.run((c) => c.leader)
  }

  /** The committed `queue.json` with its version, epoch and seq (RPC transports only). */
  getState(): Promise<RawState> {
    return this.run((c) => c.state)
  }

  /** Queue events as an async iterable (RPC transports only); `break` out of the loop to stop. */
  async *watch(options?: { readonly statsEveryMs?: number; readonly history?: boolean }): AsyncIterable<WatchEvent> {
    const runtime = await this.runtime.runtime()
    const events = Stream.unwrap(Effect.map(ClientTag, (c) => c.watch(options)))
    yield* Stream.toAsyncIterableRuntime(events, runtime)
  }

  /** Closes connections; the client cannot be used afterwards. */
  close(): Promise<void> {
    return this.runtime.dispose()
  }
}

/** The same as `new OsqueueClient(options)`. */
export const createClient = (options: PromiseClientOptions): OsqueueClient => new OsqueueClient(options)
