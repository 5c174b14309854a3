/**
 * One broker as the client sees it: every operation of the contract, failing with the broker's
 * errors or `BrokerUnreachable`. RPC (HTTP, WebSocket, any custom protocol) and REST both
 * produce this shape, so leader discovery and retries are written once, above it.
 */
import type * as RpcClient from "@effect/rpc/RpcClient"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import {
  type ClaimedJob,
  type ClaimLimit,
  type ClaimRequest,
  type CompleteAndClaimRequest,
  type CompletedOnWire,
  type CompleteManyRequest,
  type CompleteOutcomes,
  type CompleteRequest,
  type EnqueueOptions,
  type FailRequest,
  type FlowRequest,
  type HeartbeatRequest,
  type HeartbeatResult,
  type IdRequest,
  type Job,
  type JobId,
  type JobPage,
  type LeaderInfo,
  type LimitStatus,
  type ListQuery,
  type OsqueueError,
  type OsqueueRpcs,
  type Paused,
  preferHeader,
  type PriorityRequest,
  type PurgeRequest,
  QueueNames,
  type RawState,
  returnMinimal,
  type Schedule,
  type ScheduleIdRequest,
  type ScheduleSpec,
  type Stats,
  type TokenRequest,
  type TypeRequest,
  Unauthorized,
  type WatchEvent,
  type WatchRequest,
  type WorkerInfo
} from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as HashSet from "effect/HashSet"
import * as Stream from "effect/Stream"
import { BrokerUnreachable, type ClientError } from "./Errors.js"

type Call<P, A> = (payload: P) => Effect.Effect<A, ClientError>

export interface BrokerApi {
  /** Where this broker is reached (its base URL, or a label for a custom protocol). */
  readonly url: string
  readonly Enqueue: Call<EnqueueOptions, Job>
  readonly EnqueueMany: Call<{ readonly jobs: ReadonlyArray<EnqueueOptions> }, ReadonlyArray<Job>>
  /** `EnqueueMany` answered with the jobs' ids alone, where the transport can ask for that (`prefersMinimal`). */
  readonly EnqueueManyIds: Call<{ readonly jobs: ReadonlyArray<EnqueueOptions> }, ReadonlyArray<JobId>>
  readonly EnqueueFlow: Call<FlowRequest, ReadonlyArray<Job>>
  readonly Claim: Call<ClaimRequest, ReadonlyArray<ClaimedJob>>
  readonly Heartbeat: Call<typeof HeartbeatRequest.Type, HeartbeatResult>
  readonly Complete: Call<typeof CompleteRequest.Type, Job>
  readonly CompleteAndClaim: Call<CompleteAndClaimRequest, ReadonlyArray<ClaimedJob>>
  readonly CompleteMany: Call<typeof CompleteManyRequest.Type, CompleteOutcomes>
  /** `CompleteMany` answered with the jobs' ids alone, where the transport can ask for that (`prefersMinimal`). */
  readonly CompleteManyIds: Call<typeof CompleteManyRequest.Type, ReadonlyArray<Either.Either<JobId, OsqueueError>>>
  readonly Fail: Call<typeof FailRequest.Type, Job>
  readonly Release: Call<typeof TokenRequest.Type, Job>
  readonly Cancel: Call<typeof IdRequest.Type, Job>
  readonly Retry: Call<typeof IdRequest.Type, Job>
  readonly RetryDead: Call<typeof TypeRequest.Type, { readonly count: number }>
  readonly Promote: Call<typeof IdRequest.Type, Job>
  readonly SetPriority: Call<typeof PriorityRequest.Type, Job>
  readonly Delete: Call<typeof IdRequest.Type, Job>
  readonly Purge: Call<typeof PurgeRequest.Type, { readonly count: number }>
  readonly Pause: Call<typeof TypeRequest.Type, Paused>
  readonly Resume: Call<typeof TypeRequest.Type, Paused>
  readonly UpsertSchedule: Call<ScheduleSpec, Schedule>
  readonly RemoveSchedule: Call<typeof ScheduleIdRequest.Type, Schedule>
  readonly ListSchedules: Effect.Effect<ReadonlyArray<Schedule>, ClientError>
  readonly SetLimit: Call<ClaimLimit, ReadonlyArray<ClaimLimit>>
  readonly ClearLimit: Call<typeof TypeRequest.Type, ReadonlyArray<ClaimLimit>>
  readonly Limits: Effect.Effect<ReadonlyArray<LimitStatus>, ClientError>
  readonly Get: Call<typeof IdRequest.Type, Job>
  readonly List: Call<ListQuery, JobPage>
  readonly Stats: Effect.Effect<Stats, ClientError>
  readonly Workers: Effect.Effect<ReadonlyArray<WorkerInfo>, ClientError>
  readonly Leader: Effect.Effect<LeaderInfo, ClientError>
  readonly State: Effect.Effect<RawState, ClientError>
  readonly Watch: (request: typeof WatchRequest.Type) => Stream.Stream<WatchEvent, ClientError>
}

export type OsqueueRpcClient = RpcClient.FromGroup<typeof OsqueueRpcs, RpcClientError>

/**
 * The HTTP status of a refused WebSocket upgrade, found in the error chain: the socket only
 * reports it as the text of its open error (`ws`: "Unexpected server response: 401").
 */
const refusedUpgrade = (cause: unknown): number | undefined => {
  for (let depth = 0; depth < 5 && typeof cause === "object" && cause !== null; depth++) {
    const message = "message" in cause ? String(cause.message) : ""
    const status = /Unexpected server response: (\d{3})/.exec(message)?.[1]
    if (status !== undefined) return Number(status)
    cause = "cause" in cause ? cause.cause : undefined
  }
  return undefined
}

/**
 * The id a stopping RPC server (or client) interrupts its requests with. The call then ends as an
 * interruption, which no retry rule sees: the caller would be interrupted by someone else's
 * shutdown (found by the chaos run: a leader's SIGTERM silently ended every producer that had a
 * request in flight).
 */
const transientInterrupt = -503

/**
 * A call ended by the broker stopping: `BrokerUnreachable`, retryable like a dropped connection
 * (the request may or may not have been committed). Any other cause passes unchanged.
 */
const stoppedWhileAnswering =
  (url: string) => <A>(cause: Cause.Cause<A>): Effect.Effect<never, A | BrokerUnreachable> => {
    const byServer = Cause.isInterruptedOnly(cause) &&
      Array.from(Cause.interruptors(cause)).some((id) => HashSet.has(FiberId.ids(id), transientInterrupt))
    return byServer
      ? Effect.fail(new BrokerUnreachable({ url, reason: "the broker stopped while answering" }))
      : Effect.failCause(cause)
  }

/**
 * An `EnqueueMany` answer read as whole jobs: one of ids alone comes only to a request that
 * asked for it (`prefersMinimal`), so here it is the broker's mistake.
 */
const wholeJobs = (answer: ReadonlyArray<Job | JobId>): Effect.Effect<ReadonlyArray<Job>> =>
  answer.every((job) => typeof job !== "string")
    ? Effect.succeed(answer as ReadonlyArray<Job>)
    : Effect.dieMessage("the broker answered EnqueueMany with ids where whole jobs were asked for")

/** An `EnqueueMany` answer's ids: the broker's minimal answer is them, an older broker's whole jobs hold them. */
const idsOf = (answer: ReadonlyArray<Job | JobId>): ReadonlyArray<JobId> =>
  answer.map((job) => (typeof job === "string" ? job : job.id))

/** A `CompleteMany` answer read as whole jobs, as `wholeJobs`. */
const wholeOutcomes = (answer: CompletedOnWire): Effect.Effect<CompleteOutcomes> =>
  answer.every((outcome) => Either.isLeft(outcome) || typeof outcome.right !== "string")
    ? Effect.succeed(answer as CompleteOutcomes)
    : Effect.dieMessage("the broker answered CompleteMany with ids where whole jobs were asked for")

/** A `CompleteMany` answer's ids, as `idsOf`: an older broker's whole jobs hold them. */
const completedIds = (answer: CompletedOnWire): ReadonlyArray<Either.Either<JobId, OsqueueError>> =>
  answer.map(Either.map((job) => (typeof job === "string" ? job : job.id)))

/**
 * Adapts a typed RPC client; protocol failures become `BrokerUnreachable` (or `Unauthorized` for a
 * refused token). With `queue`, every message names it in its `osqueue-queue` header (none: the
 * broker's default queue).
 */
export const fromRpcClient = (url: string, client: OsqueueRpcClient, queue?: string): BrokerApi => {
  const o = queue === undefined ? undefined : { headers: { [QueueNames.queueHeader]: queue } }
  const minimal = { headers: { ...o?.headers, [preferHeader]: returnMinimal } }
  const unreachable = (error: OsqueueError | RpcClientError): ClientError => {
    if (error._tag !== "RpcClientError") return error
    // Retrying a wrong token cannot help: say so at once.
    if (refusedUpgrade(error.cause) === 401) {
      return new Unauthorized({ reason: "the broker refused the WebSocket connection (401): check the token" })
    }
    return new BrokerUnreachable({ url, reason: error.message, cause: error.cause })
  }
  const lift = <P, A>(f: (payload: P) => Effect.Effect<A, OsqueueError | RpcClientError>): Call<P, A> => (payload) =>
    Effect.mapError(f(payload), unreachable).pipe(Effect.catchAllCause(stoppedWhileAnswering(url)))
  return {
    url,
    Enqueue: lift((p) => client.Enqueue(p, o)),
    EnqueueMany: lift((p) => Effect.flatMap(client.EnqueueMany(p, o), wholeJobs)),
    EnqueueManyIds: lift((p) => Effect.map(client.EnqueueMany(p, minimal), idsOf)),
    EnqueueFlow: lift((p) => client.EnqueueFlow(p, o)),
    Claim: lift((p) => client.Claim(p, o)),
    Heartbeat: lift((p) => client.Heartbeat(p, o)),
    Complete: lift((p) => client.Complete(p, o)),
    CompleteAndClaim: lift((p) => client.CompleteAndClaim(p, o)),
    CompleteMany: lift((p) => Effect.flatMap(client.CompleteMany(p, o), wholeOutcomes)),
    CompleteManyIds: lift((p) => Effect.map(client.CompleteMany(p, minimal), completedIds)),
    Fail: lift((p) => client.Fail(p, o)),
    Release: lift((p) => client.Release(p, o)),
    Cancel: lift((p) => client.Cancel(p, o)),
    Retry: lift((p) => client.Retry(p, o)),
    RetryDead: lift((p) => client.RetryDead(p, o)),
    Promote: lift((p) => client.Promote(p, o)),
    SetPriority: lift((p) => client.SetPriority(p, o)),
    Delete: lift((p) => client.Delete(p, o)),
    Purge: lift((p) => client.Purge(p, o)),
    Pause: lift((p) => client.Pause(p, o)),
    Resume: lift((p) => client.Resume(p, o)),
    UpsertSchedule: lift((p) => client.UpsertSchedule(p, o)),
    RemoveSchedule: lift((p) => client.RemoveSchedule(p, o)),
    ListSchedules: lift(() => client.ListSchedules(undefined, o))(undefined),
    SetLimit: lift((p) => client.SetLimit(p, o)),
    ClearLimit: lift((p) => client.ClearLimit(p, o)),
    Limits: lift(() => client.Limits(undefined, o))(undefined),
    Get: lift((p) => client.Get(p, o)),
    List: lift((p) => client.List(p, o)),
    Stats: lift(() => client.Stats(undefined, o))(undefined),
    Workers: lift(() => client.Workers(undefined, o))(undefined),
    Leader: lift(() => client.Leader(undefined, o))(undefined),
    State: Effect.mapError(client.State(undefined, o), unreachable),
    Watch: (p) => Stream.mapError(client.Watch(p, o), unreachable)
  }
}
