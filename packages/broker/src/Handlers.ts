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
  CompleteManyRequest,
  CompleteOutcomes,
  CompleteRequest,
  EnqueueManyRequest,
  EnqueueOptions,
  FailRequest,
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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as BrokerMetrics from "./BrokerMetrics.js"
import * as ClaimWaiters from "./ClaimWaiters.js"
import * as StatsHistory from "./StatsHistory.js"

/** Each operation takes its request as the request's schema decodes it (`@osqueue/types`, `Rpcs`), as it is. */
export interface HandlersShape {
  readonly enqueue: (options: EnqueueOptions) => Effect.Effect<Job, OsqueueError>
  readonly enqueueMany: (request: EnqueueManyRequest) => Effect.Effect<ReadonlyArray<Job>, OsqueueError>
  /** Waits up to `waitMs` for a job when none is ready (long poll); `[]` when none came. */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ReadonlyArray<ClaimedJob>, OsqueueError>
  readonly heartbeat: (request: HeartbeatRequest) => Effect.Effect<HeartbeatResult, OsqueueError>
  readonly complete: (request: CompleteRequest) => Effect.Effect<Job, OsqueueError>
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
  /**
   * Single claims without a wait (`waitMs` absent or 0) gathered by a transport, as `enqueueEach`:
   * each counted and timed as its own `claim`. A claim that may wait goes through `claim`.
   */
  readonly claimEach: (
    requests: ReadonlyArray<ClaimRequest>
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

export class Handlers extends Context.Tag("@osqueue/broker/Handlers")<Handlers, HandlersShape>() {}

/** Counts every call by operation and outcome (`ok`, the error's tag, or `defect`). */
const requestCounter = BrokerMetrics.requestSeries

const counted = (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
  Effect.onExit(effect, (exit) => Metric.increment(requestCounter(operation, BrokerMetrics.outcomeOf(exit))))

const instrument = (operation: string) => <A, R>(effect: Effect.Effect<A, OsqueueError, R>) =>
  counted(operation)(effect).pipe(Effect.withSpan(`Broker.${operation}`, { captureStackTrace: false }))

/**
 * With spans exported, each job an enqueue creates gets a `Broker.enqueue` span, from the request
 * until the commit that holds the job is durable: a child of the producer's span that the job
 * carried, and the span the job carries from then on, so that the worker's span for it is its
 * child (docs/tracing.md). `enqueue` is given the jobs with their new traceparents and answers
 * each job's outcome, in order.
 */
const withJobSpans = <E>(
  jobs: ReadonlyArray<EnqueueOptions>,
  enqueue: (jobs: ReadonlyArray<EnqueueOptions>) => Effect.Effect<ReadonlyArray<Either.Either<Job, OsqueueError>>, E>
): Effect.Effect<ReadonlyArray<Either.Either<Job, OsqueueError>>, E> =>
  Effect.flatMap(
    Effect.forEach(jobs, (options) => {
      const parent = JobTrace.parentOf(options.traceparent)
      return Effect.makeSpan("Broker.enqueue", {
        kind: "server",
        attributes: { "job.type": options.type },
        captureStackTrace: false,
        ...(parent === undefined ? {} : { parent })
      })
    }),
    (spans) =>
      enqueue(jobs.map((options, i) => {
        const traceparent = JobTrace.traceparentOf(spans[i]!)
        return traceparent === undefined ? options : { ...options, traceparent }
      })).pipe(
        // Ended however the enqueue ends (interrupted too), each with its job's own outcome.
        Effect.onExit((exit) =>
          Effect.map(Clock.currentTimeNanos, (now) =>
            spans.forEach((span, i) => {
              const outcome = Exit.isSuccess(exit) ? exit.value[i]! : undefined
              if (outcome !== undefined && Either.isRight(outcome)) span.attribute("job.id", outcome.right.id)
              span.end(
                now,
                outcome === undefined ? exit : Either.match(outcome, { onLeft: Exit.fail, onRight: Exit.succeed })
              )
            }))
        )
      )
  )

/** Past this many workers remembered, a claim forgets those not seen within a lease TTL. */
const claimersSwept = 1_000

/** A claim whose wake-up time came but found nothing waits at least this long before trying again. */
const minRecheckMs = 25

export const make = Effect.gen(function*() {
  const commit = yield* GroupCommit.GroupCommit
  const election = yield* Election.Election
  const history = yield* StatsHistory.make
  // Completed when the broker shuts down (before its HTTP server closes, as this layer is built
  // after it): long polls answer at once instead of holding the server open for their wait.
  // The leader hands over first, while the server still answers: a follower takes over at its
  // next poll, however long the HTTP connections take to close.
  const closing = yield* Deferred.make<void>()
  const waiters = yield* ClaimWaiters.make(commit)
  // Once, whoever runs it first: the broker's server layer (`Broker.layerQueues`), or this scope's end.
  const close = yield* Effect.once(
    Deferred.succeed(closing, undefined).pipe(Effect.zipRight(waiters.wakeAll), Effect.zipRight(commit.handoff))
  )
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

  const claimCommand = (request: ClaimRequest) => ({ _tag: "Claim" as const, ...request, max: request.max ?? 1 })

  const claimNow = (request: ClaimRequest) => commit.submit(claimCommand(request))

  /**
   * Waiting claimers look at committed state and wait (`ClaimWaiters`) until a commit may have
   * made a job claimable for them, or the next time a delayed job or lease comes due or a rate
   * limit's window lets another claim start (docs/architecture.md, "Limits on claims"); only then
   * do they submit a claim. So a thousand idle workers cost no commits and no work per commit,
   * and an enqueue wakes those it concerns into one batch.
   */
  const claim = (request: ClaimRequest) =>
    // Without a wait there is nothing to look at first: submit at once (a follower answers NotLeader).
    (request.waitMs ?? 0) === 0 ? claimNow(request) : Effect.gen(function*() {
      const waitMs = request.waitMs ?? 0
      const deadline = (yield* Clock.currentTimeMillis) + waitMs
      let triedWake: number | undefined
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const { claimable, wake, seq } = yield* commit.read((state) => ({
          claimable: state.hasClaimable(request.types, now),
          wake: state.nextWakeup(now),
          seq: state.seq
        }))
        const leading = (yield* election.role)._tag === "Leader"
        const wakeDue = wake !== undefined && wake <= now && wake !== triedWake
        // A follower submits at once: it answers NotLeader, which the client must hear now.
        if (waitMs === 0 || !leading || claimable || wakeDue) {
          if (wakeDue) triedWake = wake
          const claimed = yield* claimNow(request)
          if (claimed.length > 0 || now >= deadline) return claimed
        }
        const after = yield* Clock.currentTimeMillis
        if (after >= deadline || (yield* Deferred.isDone(closing))) return []
        const until = wake !== undefined && wake > after ? Math.min(wake, deadline) : deadline
        yield* waiters.wait(request.types, seq, Math.max(until - after, minRecheckMs))
      }
    })

  /**
   * Workers' claim calls on this broker, by worker id: an idle worker long-polling holds no lease,
   * so the state does not know it (`state.workers()` knows those holding jobs). A broker's own
   * memory: after a failover, workers reappear with their next claim.
   */
  const claimers = new Map<string, { at: number; polling: number }>()
  const defaultLeaseMs = yield* commit.read((state) => state.limits.defaultLeaseMs)
  const seenWithin = (now: number) => (seen: { at: number; polling: number }) =>
    seen.polling > 0 || seen.at >= now - defaultLeaseMs

  /** Notes a claim call of `workerId` at `now`: `polling` +1 as it starts, -1 as it ends (0: one that does not wait). */
  const noteClaimer = (workerId: string, polling: -1 | 0 | 1, now: number) => {
    const seen = claimers.get(workerId) ?? { at: now, polling: 0 }
    claimers.set(workerId, { at: now, polling: seen.polling + polling })
    if (claimers.size > claimersSwept) {
      const recent = seenWithin(now)
      for (const [id, other] of claimers) if (!recent(other)) claimers.delete(id)
    }
  }

  const claimCall = (workerId: string, polling: -1 | 1) =>
    Effect.map(Clock.currentTimeMillis, (now) => noteClaimer(workerId, polling, now))

  /** Claims that do not wait, in one submit: each worker noted, each claim timed with the submit. */
  const claimEach = (requests: ReadonlyArray<ClaimRequest>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const request of requests) noteClaimer(request.workerId, 0, now)
      const [took, outcomes] = yield* Effect.timed(commit.submitAll(requests.map(claimCommand)))
      const seconds = Duration.toSeconds(took)
      yield* FiberRef.getWith(FiberRef.currentMetricLabels, (labels) =>
        Effect.sync(() => {
          for (let i = 0; i < requests.length; i++) BrokerMetrics.claimWait.unsafeUpdate(seconds, labels)
        }))
      return outcomes
    })

  const tracked = (request: ClaimRequest) =>
    Effect.acquireUseRelease(
      claimCall(request.workerId, 1),
      () => claim(request),
      () => claimCall(request.workerId, -1)
    )

  const workers = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const byId = new Map((yield* commit.read((state) => state.workers())).map((worker) => [worker.id, { ...worker }]))
    const recent = seenWithin(now)
    for (const [id, seen] of claimers) {
      if (!recent(seen)) continue
      const at = seen.polling > 0 ? now : seen.at
      const worker = byId.get(id)
      if (worker === undefined) byId.set(id, { id, jobs: 0, lastSeenAt: at })
      else worker.lastSeenAt = Math.max(worker.lastSeenAt, at)
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  })

  /** Most events in one watch message. */
  const watchBatchMax = 1_000

  const watch = (request: WatchRequest): Stream.Stream<WatchEvent, OsqueueError> =>
    Stream.unwrapScoped(
      Effect.gen(function*() {
        yield* Effect.acquireRelease(
          Metric.increment(BrokerMetrics.watchers),
          () => Metric.incrementBy(BrokerMetrics.watchers, -1)
        )
        const events = yield* commit.events
        const jobs = Stream.fromQueue(events).pipe(Stream.map((event): WatchEvent => ({ _tag: "Job", event })))
        const leaders = election.roleChanges.pipe(
          Stream.mapEffect(() => leaderInfo),
          Stream.changesWith((a, b) => a.role === b.role && a.leaderUrl === b.leaderUrl && a.epoch === b.epoch),
          Stream.map((leader): WatchEvent => ({ _tag: "Leader", leader }))
        )
        const stats = request.statsEveryMs === undefined
          ? Stream.empty
          : Stream.repeatEffectWithSchedule(
            Effect.map(statsNow, (stats): WatchEvent => ({ _tag: "Stats", stats })),
            Schedule.spaced(Duration.millis(request.statsEveryMs))
          )
        // Sent in batches of what came within 100 ms (one RPC message each, one acknowledgement):
        // on a busy queue every commit has events, and a message per commit costs a watching
        // browser more than the events themselves.
        const samples = request.history === true
          ? history.stream.pipe(Stream.map((samples): WatchEvent => ({ _tag: "History", samples })))
          : Stream.empty
        return Stream.mergeAll([jobs, leaders, stats, samples], { concurrency: "unbounded" }).pipe(
          Stream.groupedWithin(watchBatchMax, Duration.millis(100)),
          Stream.flattenChunks,
          // A stopping broker ends every watch (the client goes on at the next leader), on every
          // transport: an open stream would otherwise hold its HTTP server's close.
          Stream.interruptWhen(Deferred.await(closing))
        )
      })
    )

  /** The limits with the starts in each rate's window ending now (the state alone counts those it remembers). */
  const limitsNow = Effect.flatMap(Clock.currentTimeMillis, (now) => commit.read((state) => state.limitStatus(now)))
  const statsNow = Effect.zipWith(commit.stats, limitsNow, (stats, limits): Stats => ({ ...stats, limits }))

  const get = ({ id }: IdRequest) =>
    commit.read((state) => state.get(id)).pipe(
      Effect.flatMap((job) => job === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(job))
    )

  const completeCommand = (request: CompleteRequest) => ({ _tag: "Complete" as const, ...request })
  const complete = (request: CompleteRequest) => commit.submit(completeCommand(request)).pipe(instrument("complete"))

  /** Counts each outcome as a call of `operation` (in one step: an effect per item costs more than its count). */
  const countOutcomes =
    (operation: string) => <A>(effect: Effect.Effect<ReadonlyArray<Either.Either<A, OsqueueError>>, OsqueueError>) =>
      Effect.tap(effect, (outcomes) =>
        FiberRef.getWith(FiberRef.currentMetricLabels, (labels) =>
          Effect.sync(() => {
            for (const outcome of outcomes) {
              requestCounter(operation, Either.isRight(outcome) ? "ok" : outcome.left._tag).unsafeUpdate(1, labels)
            }
          })))

  /** Gathered single calls: each counted as its own call of `operation`, a refusal of all of them too. */
  const countEach =
    (operation: string, items: number) =>
    <A>(effect: Effect.Effect<ReadonlyArray<Either.Either<A, OsqueueError>>, OsqueueError>) =>
      countOutcomes(operation)(effect).pipe(
        Effect.tapError((error) => Metric.incrementBy(requestCounter(operation, error._tag), items))
      )

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

  /** Read once: with tracing off, enqueues take the paths below unchanged (no span per job). */
  const tracing = yield* JobTrace.exporting

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

  return Handlers.of({
    enqueue: tracing
      // The job's own span stands for the call: one more for the request would start a trace of its own.
      ? (options) => tracedAll([options]).pipe(Effect.map((jobs) => jobs[0]!), counted("enqueue"))
      : (options) => enqueueAll([options]).pipe(Effect.map((jobs) => jobs[0]!), instrument("enqueue")),
    enqueueMany: ({ jobs }) =>
      jobs.length === 0
        ? instrument("enqueueMany")(Effect.succeed([]))
        : (tracing ? tracedAll(jobs) : enqueueAll(jobs)).pipe(instrument("enqueueMany")),
    claim: (request) =>
      tracked(request).pipe(
        Effect.timed,
        Effect.flatMap(([took, claimed]) =>
          Effect.as(Metric.update(BrokerMetrics.claimWait, Duration.toSeconds(took)), claimed)
        ),
        instrument("claim")
      ),
    heartbeat: (request) => commit.submit({ _tag: "Heartbeat", ...request }).pipe(instrument("heartbeat")),
    enqueueEach: (jobs) =>
      (tracing ? withJobSpans(jobs, enqueueEach) : enqueueEach(jobs)).pipe(
        countEach("enqueue", jobs.length),
        Effect.withSpan("Broker.enqueueEach", { captureStackTrace: false, attributes: { jobs: jobs.length } })
      ),
    complete,
    completeMany: ({ items }) => completeAll(items).pipe(countOutcomes("complete"), instrument("completeMany")),
    completeEach: (requests) =>
      completeAll(requests).pipe(
        countEach("complete", requests.length),
        Effect.withSpan("Broker.completeEach", { captureStackTrace: false, attributes: { items: requests.length } })
      ),
    claimEach: (requests) =>
      claimEach(requests).pipe(
        countEach("claim", requests.length),
        Effect.withSpan("Broker.claimEach", { captureStackTrace: false, attributes: { claims: requests.length } })
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

export const layer: Layer.Layer<Handlers, never, GroupCommit.GroupCommit | Election.Election> = Layer.scoped(
  Handlers,
  make
)
