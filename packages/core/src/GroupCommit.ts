/**
 * Turns commands into durable commits (docs/architecture.md, "The commit path"): the service the
 * broker submits commands to. Its parts are in `internal/`: the commands waiting for a batch
 * (`commandQueue.ts`), the loop that commits them (`commitLoop.ts`), long-poll claims held until
 * a commit makes a job claimable for them (`longPolls.ts`), and an idle leader's renewal
 * (`idleRenewal.ts`). Here: who may submit, the watchdog that steps a wedged leader down, and
 * the clean handoff.
 */
import { type JobEvent, JobTrace, NotLeader, type OsqueueError, Overloaded, type Stats } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Command, ResultOf } from "./Command.js"
import { Election } from "./Election.js"
import { EngineConfig } from "./EngineConfig.js"
import * as CommandQueue from "./internal/commandQueue.js"
import * as CommitLoop from "./internal/commitLoop.js"
import * as IdleRenewal from "./internal/idleRenewal.js"
import * as LongPolls from "./internal/longPolls.js"
import * as Timers from "./internal/timers.js"
import type { QueueState } from "./QueueState.js"
import { Replica } from "./Replica.js"

export interface GroupCommitShape {
  /** Applies the command in the next commit; answers once that commit is durable. */
  readonly submit: <C extends Command>(command: C) => Effect.Effect<ResultOf<C>, OsqueueError>
  /**
   * `submit` for each command, answering each on its own once all are durable (one call, no
   * fiber per command). Fails as a whole, submitting nothing, when `submit` would fail before
   * applying (`NotLeader`, `Overloaded`).
   */
  readonly submitAll: <C extends Command>(
    commands: ReadonlyArray<C>
  ) => Effect.Effect<Array<Either.Either<ResultOf<C>, OsqueueError>>, OsqueueError>
  /** Reads committed state (never a batch still in flight). Followers read their latest view. */
  readonly read: <A>(f: (state: QueueState) => A) => Effect.Effect<A>
  /**
   * `read` at once, or none while a write is in flight: for what must answer at once, as stats do
   * (docs/ha.md, "A leader that cannot commit").
   */
  readonly readIfQuiet: <A>(f: (state: QueueState) => A) => Effect.Effect<Option.Option<A>>
  /** The last durable state's counts, at once: never waits for a write in flight (docs/ha.md, "A leader that cannot commit"). */
  readonly stats: Effect.Effect<Stats>
  /**
   * Calls `listener` with what happened in each durable commit, in order, as the commit is
   * answered, until the scope closes: the broker's stats history and its watch streams. A
   * callback, not a queue to take from: a fiber woken per commit cost the broker more than what
   * its consumers do with the events (docs/performance.md, "Events counted without a fiber"). A
   * listener must be quick and must not block; one that throws is logged, and is told of the
   * next commit as before.
   */
  readonly onEvents: (listener: (events: ReadonlyArray<JobEvent>) => void) => Effect.Effect<void, never, Scope.Scope>
  /**
   * A claim that may wait `waitMs` for a job (a long poll; docs/architecture.md, "Long-poll
   * claims"): in the next batch when a job is claimable for it now, else held — no command, no
   * work per commit beyond a lookup — and taken into the first batch after which one is, so it
   * is answered with the commit that made the job claimable. `[]` at `waitMs`; `NotLeader`
   * when the broker hands over or stops leading.
   */
  readonly claimWaiting: (
    command: LongPolls.ClaimCommand,
    waitMs: number
  ) => Effect.Effect<ResultOf<LongPolls.ClaimCommand>, OsqueueError>
  /**
   * `claimWaiting` by callback, with no fiber of its own: `answer` is called once with the
   * claim's outcome (at once when it is refused); what it returns drops the claim, its caller
   * gone. For a caller that answers by callback, as the broker's edge does.
   */
  readonly claimWaitingWith: (
    command: LongPolls.ClaimCommand,
    waitMs: number,
    answer: (outcome: Either.Either<ResultOf<LongPolls.ClaimCommand>, OsqueueError>) => void
  ) => () => void
  /**
   * Clean handoff, once: refuse new work, commit what is queued, write the release so a
   * follower takes over at its next poll. Runs at the latest when the layer closes; the broker
   * runs it before its HTTP server closes, so requests still get answers meanwhile.
   */
  readonly handoff: Effect.Effect<void>
  /** How the commit path is doing: for readiness probes. */
  readonly health: Effect.Effect<CommitHealth>
  /** queue.json's version as this broker last read or wrote it (null before it exists): for the operator's view. */
  readonly checkpointVersion: Effect.Effect<string | null>
}

export interface CommitHealth {
  /** Milliseconds since this broker's last durable commit (or its takeover, if later). */
  readonly sinceCommitMs: number
  /**
   * False once a leader has gone two renewal periods (2/3 of the election TTL) without a durable
   * commit: its commit path is stuck. At a whole TTL it steps down.
   */
  readonly progressing: boolean
}

export class GroupCommit extends Context.Tag("@osqueue/core/GroupCommit")<GroupCommit, GroupCommitShape>() {}

const noDrop = () => {}

/** Retries of the release write at shutdown: about a second in all. */
const releaseRetry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

export const make = Effect.gen(function*() {
  const config = yield* EngineConfig
  const election = yield* Election
  const clock = yield* Effect.clock
  const replica = yield* Replica
  const listeners = new Set<CommitLoop.EventListener>()
  const renewEvery = Duration.divide(config.electionTtl, 3).pipe(Option.getOrElse(() => Duration.seconds(1)))
  const ttlMs = Duration.toMillis(config.electionTtl)
  let accepting = true
  /** Read once, as the broker's handlers do: with spans not exported, a commit makes none. */
  const tracing = yield* JobTrace.exporting

  const queue = CommandQueue.make(config.maxPending, () => clock.unsafeCurrentTimeMillis())
  const renewal = IdleRenewal.make(Duration.toMillis(renewEvery), clock, queue.wake)
  const overloaded = () => new Overloaded({ reason: `${config.maxPending} commands are waiting`, retryAfterMs: 100 })
  const notLeaderNow = () => new NotLeader({ leaderUrl: election.leaderUrlNow() })
  const notLeader = Effect.sync(notLeaderNow)

  const longPolls = LongPolls.make({
    current: replica.current,
    now: () => clock.unsafeCurrentTimeMillis(),
    offer: queue.offer,
    accepting: () => accepting,
    overloaded,
    after: yield* Timers.make,
    // Only ever called once a claim comes, long after the loop below is made.
    heldOnArrival: () => commits.claimHeld()
  })

  const commits = yield* CommitLoop.make({
    config,
    election,
    replica,
    queue,
    longPolls,
    idle: renewal,
    listeners,
    accepting: () => accepting,
    tracing,
    notLeader
  })

  /** Milliseconds since the last durable commit (or since this broker took over, if later). */
  const sinceProgress: Effect.Effect<number> = Effect.gen(function*() {
    const role = yield* election.role
    const now = yield* Clock.currentTimeMillis
    const lastDurable = commits.lastDurable()
    return now - (role._tag === "Leader" ? Math.max(lastDurable, role.since) : lastDurable)
  })

  /**
   * A leader that has not made a commit durable for a whole TTL (it commits at least every
   * TTL/3) is wedged — a put that hangs, a loop that is stuck — and standbys are about to take
   * over: it steps down at once, so clients stop waiting on a leader that can commit nothing
   * (docs/ha.md, "A leader that cannot commit").
   */
  const watchdog = Effect.gen(function*() {
    if ((yield* election.role)._tag !== "Leader" || !accepting) return
    const silent = yield* sinceProgress
    if (silent <= ttlMs) return
    yield* Effect.logError("no commit for longer than the election TTL: stepping down").pipe(
      Effect.annotateLogs({ silentMs: silent })
    )
    yield* election.abdicate
    const waiting = queue.take(Infinity)
    if (waiting.length > 0) yield* CommandQueue.failAll(waiting, yield* notLeader)
    longPolls.refuseAll(yield* notLeader)
  })

  yield* watchdog.pipe(
    Effect.repeat(Schedule.spaced(config.pollInterval)),
    Effect.annotateLogs({ module: "GroupCommit", broker: election.url }),
    Effect.forkScoped,
    Effect.interruptible
  )

  yield* renewal.run.pipe(
    Effect.forkScoped,
    Effect.interruptible
  )

  // The loop answers every request: nothing but the scope closing may end it. A defect outside a
  // batch (a follower waiting to lead) is logged and the loop goes on.
  yield* commits.loop.pipe(
    Effect.catchAllDefect((defect) => Effect.logError("the commit loop hit an internal error; it goes on", defect)),
    Effect.forever,
    Effect.annotateLogs({ module: "GroupCommit", broker: election.url }),
    Effect.forkScoped,
    Effect.interruptible
  )

  // Clean handoff: refuse new work, commit what is queued, then write the release.
  const handoff = yield* Effect.once(
    Effect.gen(function*() {
      accepting = false
      // Told NotLeader, a held claim's client goes on at the next leader.
      longPolls.refuseAll(new NotLeader({ leaderUrl: null }))
      if ((yield* election.role)._tag !== "Leader") return
      yield* Effect.logInfo("handing over leadership")
      const rest = queue.take(Infinity)
      yield* replica.lock.withPermits(1)(
        Effect.gen(function*() {
          if (rest.length > 0) yield* commits.commitFrom(rest)
          // A refused append is retried a few times: a lost release costs every client a full TTL.
          yield* replica.append(election.id, "release", (state) => state.release()).pipe(
            Effect.retry({
              schedule: releaseRetry,
              while: (error) => error._tag === "StoreUnavailable" || error._tag === "StoreFailure"
            })
          )
          yield* election.resigned
          yield* Effect.logInfo("released leadership")
        })
      ).pipe(
        // The checkpoint stops naming this broker to clients that look the leader up in the store.
        Effect.zipRight(replica.checkpoint),
        Effect.catchAll((e) => Effect.logWarning("could not release leadership; followers will wait for the TTL", e))
      )
    })
  )
  yield* Effect.addFinalizer(() => handoff)

  /** Why this broker takes no commands now, if it does not. */
  const refusalNow = (): OsqueueError | undefined =>
    !accepting
      ? new NotLeader({ leaderUrl: null })
      : election.roleNow()._tag === "Leader"
      ? undefined
      : notLeaderNow()

  const submit = <C extends Command>(command: C): Effect.Effect<ResultOf<C>, OsqueueError> =>
    Effect.async<ResultOf<C>, OsqueueError>((resume) => {
      const refused = refusalNow()
      if (refused !== undefined) resume(Effect.fail(refused))
      else if (!queue.offer(command, resume as CommandQueue.Pending["answer"])) resume(Effect.fail(overloaded()))
    })

  // An `Either` is an `Effect`: the caller resumes with it as it stands.
  const submitAll = <C extends Command>(
    commands: ReadonlyArray<C>
  ): Effect.Effect<Array<Either.Either<ResultOf<C>, OsqueueError>>, OsqueueError> =>
    Effect.async((resume) => {
      const refused = refusalNow() ??
        (queue.size() + commands.length > config.maxPending ? overloaded() : undefined)
      if (refused !== undefined) return resume(Either.left(refused))
      const results = new Array<Either.Either<ResultOf<C>, OsqueueError>>(commands.length)
      let left = commands.length
      if (left === 0) return resume(Either.right(results))
      commands.forEach((command, i) => {
        const answered = (outcome: CommandQueue.Outcome) => {
          results[i] = outcome as Either.Either<ResultOf<C>, OsqueueError>
          if (--left === 0) resume(Either.right(results))
        }
        if (!queue.offer(command, answered)) answered(Either.left(overloaded()))
      })
    })

  const claimWaitingWith: GroupCommitShape["claimWaitingWith"] = (command, waitMs, answer) => {
    const refused = refusalNow()
    if (refused !== undefined) {
      answer(Either.left(refused))
      return noDrop
    }
    if (waitMs > 0) return longPolls.wait(command, waitMs, answer)
    // Without a wait the claim is a command like any: once queued it commits, its caller there or not.
    let dropped = false
    const answered = (outcome: CommandQueue.Outcome) => {
      if (!dropped) answer(outcome as Either.Either<ResultOf<LongPolls.ClaimCommand>, OsqueueError>)
    }
    if (!queue.offer(command, answered)) answered(Either.left(overloaded()))
    return () => {
      dropped = true
    }
  }

  const claimWaiting = (command: LongPolls.ClaimCommand, waitMs: number) =>
    Effect.async<ResultOf<LongPolls.ClaimCommand>, OsqueueError>((resume) =>
      Effect.sync(claimWaitingWith(command, waitMs, resume))
    )

  return GroupCommit.of({
    submit,
    submitAll,
    read: (f) => replica.read(f),
    readIfQuiet: (f) => Effect.sync(() => replica.readIfQuiet(f)),
    stats: Effect.sync(replica.stats),
    onEvents: (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => void listeners.add(listener)),
        () => Effect.sync(() => void listeners.delete(listener))
      ),
    claimWaiting,
    claimWaitingWith,
    handoff,
    checkpointVersion: Effect.sync(() => replica.version() ?? null),
    health: Effect.map(
      sinceProgress,
      (sinceCommitMs) => ({ sinceCommitMs, progressing: sinceCommitMs <= (2 * ttlMs) / 3 })
    )
  })
})

export const layer: Layer.Layer<GroupCommit, never, Replica | Election | EngineConfig> = Layer.scoped(GroupCommit, make)
