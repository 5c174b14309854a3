/**
 * Every broker operation, once. RPC (HTTP and WebSocket) and REST are thin adapters over this
 * service, so no operation's logic is written twice. Mutations go through `GroupCommit.submit`
 * (answered after the durable commit; `NotLeader` on a follower); reads come from the latest
 * committed view, so followers serve them too.
 */
import { Election, GroupCommit } from "@osqueue/core"
import type {
  ClaimedJob,
  ClaimLimit,
  ClaimRequest,
  CompleteAndClaimRequest,
  CompleteManyRequest,
  CompleteOutcomes,
  CompleteRequest,
  EnqueueManyRequest,
  EnqueueOptions,
  FailRequest,
  FlowRequest,
  HeartbeatRequest,
  HeartbeatResult,
  IdRequest,
  Job,
  JobPage,
  LeaderInfo,
  LimitStatus,
  ListQuery,
  OsqueueError,
  Paused,
  PriorityRequest,
  PurgeRequest,
  RawState,
  Schedule as JobSchedule,
  ScheduleIdRequest,
  ScheduleSpec,
  Stats,
  TokenRequest,
  TypeRequest,
  WatchEvent,
  WatchRequest,
  WorkerInfo
} from "@osqueue/types"
import { JobNotFound, JobTrace } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Claims from "./internal/claims.js"
import {
  batchSpanner,
  countEach,
  counted,
  countOutcomes,
  instrumenter,
  spanned,
  withJobSpans
} from "./internal/instrumentation.js"
import * as Watch from "./internal/watch.js"
import * as StatsHistory from "./StatsHistory.js"

/** Each operation takes its request as the request's schema decodes it (`@osqueue/types`, `Rpcs`), as it is. */
export interface OperationsShape {
  readonly enqueue: (options: EnqueueOptions) => Effect.Effect<Job, OsqueueError>
  /** A flow in one command (docs/flows.md): its jobs, each before its children. */
  readonly enqueueFlow: (request: FlowRequest) => Effect.Effect<ReadonlyArray<Job>, OsqueueError>
  readonly enqueueMany: (request: EnqueueManyRequest) => Effect.Effect<ReadonlyArray<Job>, OsqueueError>
  /** Waits up to `waitMs` for a job when none is ready (long poll); `[]` when none came. */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ReadonlyArray<ClaimedJob>, OsqueueError>
  /**
   * `claim` by callback, for a transport that answers by callback (the edge): `respond` is called
   * once, unless what it returns (the client hung up) drops the claim first; a claim that does
   * not wait returns nothing: it is queued at once and commits. With spans not exported it runs
   * no fiber (docs/performance.md, "A long-poll claim without a fiber", "A claim that does not
   * wait, by callback").
   */
  readonly claimWith: (
    request: ClaimRequest,
    respond: (exit: Exit.Exit<ReadonlyArray<ClaimedJob>, OsqueueError>) => void
  ) => (() => void) | undefined
  readonly heartbeat: (request: HeartbeatRequest) => Effect.Effect<HeartbeatResult, OsqueueError>
  readonly complete: (request: CompleteRequest) => Effect.Effect<Job, OsqueueError>
  /**
   * Completes the job, then claims up to `max` jobs in the same commit (none when none is
   * claimable: it never waits). A refused completion claims nothing.
   */
  readonly completeAndClaim: (
    request: CompleteAndClaimRequest
  ) => Effect.Effect<ReadonlyArray<ClaimedJob>, OsqueueError>
  /** Each completion on its own (all in the next commit): one item's error fails only that item. */
  readonly completeMany: (request: CompleteManyRequest) => Effect.Effect<CompleteOutcomes, OsqueueError>
  /**
   * Single enqueues gathered by a transport (the edge's, `Gather`): each answered and counted as its
   * own `enqueue`, all from one fiber. Fails as a whole only when the broker cannot take them
   * (`NotLeader`, `Overloaded`).
   */
  readonly enqueueEach: (
    jobs: ReadonlyArray<EnqueueOptions>
  ) => Effect.Effect<ReadonlyArray<Either.Either<Job, OsqueueError>>, OsqueueError>
  /** Single completions gathered by a transport, as `enqueueEach`: each counted as its own `complete`. */
  readonly completeEach: (requests: ReadonlyArray<CompleteRequest>) => Effect.Effect<CompleteOutcomes, OsqueueError>
  /** Single `completeAndClaim` calls gathered by a transport, as `enqueueEach`: each counted as its own. */
  readonly completeAndClaimEach: (
    requests: ReadonlyArray<CompleteAndClaimRequest>
  ) => Effect.Effect<ReadonlyArray<Either.Either<ReadonlyArray<ClaimedJob>, OsqueueError>>, OsqueueError>
  readonly fail: (request: FailRequest) => Effect.Effect<Job, OsqueueError>
  readonly release: (request: TokenRequest) => Effect.Effect<Job, OsqueueError>
  readonly cancel: (request: IdRequest) => Effect.Effect<Job, OsqueueError>
  readonly retry: (request: IdRequest) => Effect.Effect<Job, OsqueueError>
  readonly retryDead: (request: TypeRequest) => Effect.Effect<{ readonly count: number }, OsqueueError>
  readonly promote: (request: IdRequest) => Effect.Effect<Job, OsqueueError>
  readonly setPriority: (request: PriorityRequest) => Effect.Effect<Job, OsqueueError>
  /** Answers the job as it was. */
  readonly delete: (request: IdRequest) => Effect.Effect<Job, OsqueueError>
  readonly purge: (request: PurgeRequest) => Effect.Effect<{ readonly count: number }, OsqueueError>
  readonly pause: (request: TypeRequest) => Effect.Effect<Paused, OsqueueError>
  readonly resume: (request: TypeRequest) => Effect.Effect<Paused, OsqueueError>
  /** Sets a schedule (docs/architecture.md, "Schedules"); answers it as it now stands. */
  readonly upsertSchedule: (spec: ScheduleSpec) => Effect.Effect<JobSchedule, OsqueueError>
  /** Answers the schedule as it was. */
  readonly removeSchedule: (request: ScheduleIdRequest) => Effect.Effect<JobSchedule, OsqueueError>
  readonly listSchedules: Effect.Effect<ReadonlyArray<JobSchedule>, OsqueueError>
  /** Answers every limit after the change. */
  readonly setLimit: (limit: ClaimLimit) => Effect.Effect<ReadonlyArray<ClaimLimit>, OsqueueError>
  readonly clearLimit: (request: TypeRequest) => Effect.Effect<ReadonlyArray<ClaimLimit>, OsqueueError>
  /** Each limit with what its scope uses now. */
  readonly limits: Effect.Effect<ReadonlyArray<LimitStatus>, OsqueueError>
  readonly get: (request: IdRequest) => Effect.Effect<Job, OsqueueError>
  readonly list: (query: ListQuery) => Effect.Effect<JobPage, OsqueueError>
  readonly stats: Effect.Effect<Stats, OsqueueError>
  /** Workers holding leases, and those that called claim on this broker within a lease TTL. */
  readonly workers: Effect.Effect<ReadonlyArray<WorkerInfo>, OsqueueError>
  readonly leader: Effect.Effect<LeaderInfo, OsqueueError>
  readonly state: Effect.Effect<RawState, OsqueueError>
  /** `state` as JSON text, the answer of `GET /state`: the state is spliced in as the broker holds it, not parsed. */
  readonly stateJson: Effect.Effect<string>
  /** Job events as they commit, leader changes (the current leader first), and stats if asked. */
  readonly watch: (request: WatchRequest) => Stream.Stream<WatchEvent, OsqueueError>
  /**
   * The broker is stopping: long polls answer, watch streams end, the leader hands over. Must run
   * before the HTTP server closes, which waits for those connections.
   */
  readonly close: Effect.Effect<void>
}

export class Operations extends Context.Tag("@osqueue/broker/Operations")<Operations, OperationsShape>() {}

export const make = Effect.gen(function*() {
  const commit = yield* GroupCommit.GroupCommit
  const election = yield* Election.Election
  const history = yield* StatsHistory.make
  // Completed when the broker shuts down (before its HTTP server closes, as this layer is built
  // after it): watch streams end, and the leader hands over (its long polls answer at once
  // instead of holding the server open for their wait), while the server still answers: a
  // follower takes over at its next poll, however long the HTTP connections take to close.
  const closing = yield* Deferred.make<void>()
  // Once, whoever runs it first: the broker's server layer (`Broker.layerQueues`), or this scope's end.
  const close = yield* Effect.once(Deferred.succeed(closing, undefined).pipe(Effect.zipRight(commit.handoff)))
  yield* Effect.addFinalizer(() => close)

  const leaderInfo: Effect.Effect<LeaderInfo> = Effect.map(election.role, (role): LeaderInfo =>
    role._tag === "Leader"
      ? { self: election.url, role: "leader", leaderUrl: election.url, epoch: role.epoch, since: role.since }
      : {
        self: election.url,
        role: "follower",
        leaderUrl: role.leader?.url ?? null,
        epoch: role.epoch,
        since: role.leader?.since ?? null
      })

  const { claim, claimWith, completeAndClaimCommand, workers } = yield* Claims.make(commit)

  /** The limits with the starts in each rate's window ending now (the state alone counts those it remembers). */
  const limitsNow = Effect.flatMap(Clock.currentTimeMillis, (now) => commit.read((state) => state.limitStatus(now)))
  // At once (docs/ha.md): with a write in flight the limits are the durable state's own, their
  // starts those it remembers, as the counts are.
  const statsNow = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.zipWith(
      commit.stats,
      commit.readIfQuiet((state) => state.limitStatus(now)),
      (stats, limits): Stats => Option.isSome(limits) ? { ...stats, limits: limits.value } : stats
    ))
  const watch = Watch.make(commit, election, history, closing, leaderInfo, statsNow)

  const get = ({ id }: IdRequest) =>
    commit.read((state) => state.get(id)).pipe(
      Effect.flatMap((job) => job === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(job))
    )

  /** Read once: with tracing off, the operations below make no span (none per call, batch or job). */
  const tracing = yield* JobTrace.exporting
  const runCallback = Runtime.runCallback(yield* Effect.runtime<never>())
  const instrument = instrumenter(tracing)
  const batchSpan = batchSpanner(tracing)

  const completeCommand = (request: CompleteRequest) => ({ _tag: "Complete" as const, ...request })
  const complete = (request: CompleteRequest) => commit.submit(completeCommand(request)).pipe(instrument("complete"))

  const completeAll = (requests: ReadonlyArray<CompleteRequest>) => commit.submitAll(requests.map(completeCommand))

  const stateJson = Effect.flatMap(
    Effect.zip(election.role, commit.checkpointVersion),
    ([role, version]) =>
      commit.read((state) => {
        const header = JSON.stringify(
          {
            version,
            epoch: state.epoch,
            seq: state.seq,
            commitId: state.commitId,
            role: role._tag === "Leader" ? "leader" : "follower"
          } satisfies Omit<RawState, "state">
        )
        return `${header.slice(0, -1)},"state":${state.publicJson(state.seq, state.commitId)}}`
      })
  )

  /** One command for all the jobs (all or nothing). */
  const enqueueAll = (jobs: ReadonlyArray<EnqueueOptions>) => commit.submit({ _tag: "Enqueue", jobs })
  /** A command per job, each answered on its own. */
  const enqueueEach = (jobs: ReadonlyArray<EnqueueOptions>) =>
    commit.submitAll(jobs.map((options) => ({ _tag: "Enqueue" as const, jobs: [options] }))).pipe(
      Effect.map((outcomes) => outcomes.map(Either.map((created) => created[0]!)))
    )
  const tracedAll = (jobs: ReadonlyArray<EnqueueOptions>) =>
    withJobSpans(jobs, (stamped) => Effect.map(enqueueAll(stamped), (created) => created.map(Either.right))).pipe(
      Effect.flatMap((outcomes) => Effect.all(outcomes))
    )

  return Operations.of({
    enqueue: tracing
      // The job's own span stands for the call: one more for the request would start a trace of its own.
      ? (options) => tracedAll([options]).pipe(Effect.map((jobs) => jobs[0]!), counted("enqueue"))
      : (options) => enqueueAll([options]).pipe(Effect.map((jobs) => jobs[0]!), instrument("enqueue")),
    // A flow's jobs keep the traceparents they carry: its spans are the request's.
    enqueueFlow: (request) => commit.submit({ _tag: "EnqueueFlow", ...request }).pipe(instrument("enqueueFlow")),
    enqueueMany: ({ jobs }) =>
      jobs.length === 0
        ? instrument("enqueueMany")(Effect.succeed([]))
        : (tracing ? tracedAll(jobs) : enqueueAll(jobs)).pipe(instrument("enqueueMany")),
    // Counted and timed by `Claims` itself.
    claim: tracing ? (request) => claim(request).pipe(spanned("claim")) : claim,
    // A span needs a fiber: with spans exported the claim runs as an effect.
    claimWith: tracing
      ? (request, respond) => {
        const cancel = runCallback(claim(request).pipe(spanned("claim")), { onExit: respond })
        return Claims.waits(request) ? () => cancel() : undefined
      }
      : claimWith,
    heartbeat: (request) => commit.submit({ _tag: "Heartbeat", ...request }).pipe(instrument("heartbeat")),
    enqueueEach: (jobs) =>
      (tracing ? withJobSpans(jobs, enqueueEach) : enqueueEach(jobs)).pipe(
        countEach("enqueue", jobs.length),
        batchSpan("Broker.enqueueEach", { jobs: jobs.length })
      ),
    complete,
    completeMany: ({ items }) => completeAll(items).pipe(countOutcomes("complete"), instrument("completeMany")),
    completeEach: (requests) =>
      completeAll(requests).pipe(
        countEach("complete", requests.length),
        batchSpan("Broker.completeEach", { items: requests.length })
      ),
    completeAndClaim: (request) => commit.submit(completeAndClaimCommand(request)).pipe(instrument("completeAndClaim")),
    completeAndClaimEach: (requests) =>
      commit.submitAll(requests.map(completeAndClaimCommand)).pipe(
        countEach("completeAndClaim", requests.length),
        batchSpan("Broker.completeAndClaimEach", { items: requests.length })
      ),
    fail: (request) => commit.submit({ _tag: "Fail", ...request }).pipe(instrument("fail")),
    release: (request) => commit.submit({ _tag: "Release", ...request }).pipe(instrument("release")),
    cancel: (request) => commit.submit({ _tag: "Cancel", ...request }).pipe(instrument("cancel")),
    retry: (request) => commit.submit({ _tag: "Retry", ...request }).pipe(instrument("retry")),
    retryDead: (request) =>
      commit.submit({ _tag: "RetryDead", ...request }).pipe(
        Effect.map((count) => ({ count })),
        instrument("retryDead")
      ),
    promote: (request) => commit.submit({ _tag: "Promote", ...request }).pipe(instrument("promote")),
    setPriority: (request) => commit.submit({ _tag: "SetPriority", ...request }).pipe(instrument("setPriority")),
    delete: (request) => commit.submit({ _tag: "Delete", ...request }).pipe(instrument("delete")),
    purge: (request) =>
      commit.submit({ _tag: "Purge", ...request }).pipe(
        Effect.map((count) => ({ count })),
        instrument("purge")
      ),
    pause: (request) => commit.submit({ _tag: "Pause", ...request }).pipe(instrument("pause")),
    resume: (request) => commit.submit({ _tag: "Resume", ...request }).pipe(instrument("resume")),
    upsertSchedule: (schedule) =>
      commit.submit({ _tag: "UpsertSchedule", schedule }).pipe(instrument("upsertSchedule")),
    removeSchedule: (request) =>
      commit.submit({ _tag: "RemoveSchedule", ...request }).pipe(instrument("removeSchedule")),
    listSchedules: commit.read((state) => state.listSchedules()).pipe(instrument("listSchedules")),
    setLimit: (limit) => commit.submit({ _tag: "SetLimit", limit }).pipe(instrument("setLimit")),
    clearLimit: (request) => commit.submit({ _tag: "ClearLimit", ...request }).pipe(instrument("clearLimit")),
    limits: limitsNow.pipe(instrument("limits")),
    get: (request) => get(request).pipe(instrument("get")),
    list: (query) => commit.read((state) => state.list(query)).pipe(instrument("list")),
    stats: statsNow.pipe(instrument("stats")),
    workers: workers.pipe(instrument("workers")),
    leader: leaderInfo.pipe(instrument("leader")),
    state: Effect.map(stateJson, (json): RawState => JSON.parse(json)).pipe(instrument("state")),
    stateJson,
    watch,
    close
  })
})

export const layer: Layer.Layer<Operations, never, GroupCommit.GroupCommit | Election.Election> = Layer.scoped(
  Operations,
  make
)
