/**
 * Turns commands into durable commits (docs/architecture.md, "The commit path"). Commands queue
 * up while an append is in flight and form the next batch, which is sent behind it (at most two
 * in flight: "Appends in flight"); each is answered only after the log entry that carries it,
 * and every one before it, is durable. An idle leader still appends every TTL/3 (its renewal). An append that finds its position taken by another broker's entry means
 * this broker was deposed: it steps down and answers `NotLeader`. One that finds its own earlier
 * entry there (judged failed, landed after all) applies the batch again on top of it.
 */
import {
  CommitFailed,
  EventLoop,
  type JobEvent,
  JobTrace,
  NotLeader,
  type OsqueueError,
  Overloaded,
  type Stats
} from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Command, ResultOf } from "./Command.js"
import { Election } from "./Election.js"
import { EngineConfig } from "./EngineConfig.js"
import * as LongPolls from "./internal/longPolls.js"
import * as LeaseSecret from "./LeaseSecret.js"
import * as Metrics from "./Metrics.js"
import type { QueueState } from "./QueueState.js"
import { type Deposed, Replica, type Sent } from "./Replica.js"

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
  /** The last durable state's counts, at once: never waits for a write in flight (docs/ha.md, "A leader that cannot commit"). */
  readonly stats: Effect.Effect<Stats>
  /** What happened in each durable commit, in order. */
  readonly events: Effect.Effect<Queue.Dequeue<JobEvent>, never, Scope.Scope>
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

/** A command and how to answer it (a callback: a `Deferred` per command cost more than applying it). */
interface Pending {
  readonly command: Command
  readonly answer: (exit: Exit.Exit<unknown, OsqueueError>) => void
  /** Set once answered: a batch failed after a defect is never answered twice. */
  answered?: true
}

/** A batch sent and not yet settled. */
interface InFlight {
  readonly batch: Array<Pending>
  /** Re-applications so far, after earlier entries of ours were found where it was sent. */
  readonly attempt: number
  /** When it was applied (the leader's clock, ms). */
  readonly started: number
  readonly sent: Sent<ReadonlyArray<Either.Either<unknown, OsqueueError>>>
}

/** Retries of the release write at shutdown: about a second in all. */
const releaseRetry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

/** Most event-loop turns an idle loop waits for more requests before it commits. */
const maxGatherTurns = 4

/** Re-applications of one batch after conflicts that did not depose us, before giving up. */
const maxReapply = 3

export const make = Effect.gen(function*() {
  const config = yield* EngineConfig
  const election = yield* Election
  const clock = yield* Effect.clock
  const replica = yield* Replica
  const events = yield* PubSub.sliding<JobEvent>(16_384)
  const renewEvery = Duration.divide(config.electionTtl, 3).pipe(Option.getOrElse(() => Duration.seconds(1)))
  const renewMs = Duration.toMillis(renewEvery)
  // Each append creates a new object, so the store's limit on writes to one object does not apply.
  const minGap = Duration.toMillis(config.minCommitInterval)
  let lastWrite = 0
  /** When the last commit became durable (the leader's clock, ms): the watchdog's and readiness's measure. */
  let lastDurable = yield* Clock.currentTimeMillis
  let accepting = true
  /** Read once, as the broker's handlers do: with spans not exported, a commit makes none. */
  const tracing = yield* JobTrace.exporting

  // The commands waiting for a batch, and the one wait of the loop for them, are plain values and
  // callbacks, not a queue, a timeout and a race of fibers: those cost more per commit than a
  // batch of small commands costs to apply.
  /** Commands waiting for the next batch, oldest first (at most `maxPending`). */
  let pending: Array<Pending> = []
  /** Set while the loop waits for a command: the next one queued (or the renewal) resumes it. */
  let wakeup: (() => void) | undefined
  const wake = () => {
    const resume = wakeup
    wakeup = undefined
    resume?.()
  }
  /** The oldest commands waiting, at most `max`. */
  const take = (max: number): Array<Pending> => {
    if (pending.length <= max) {
      const all = pending
      pending = []
      return all
    }
    return pending.splice(0, max)
  }
  /** When the loop began waiting with nothing in flight (the leader's clock, ms): its renewal is due `renewEvery` later. */
  let idleSince: number | undefined
  /** Set while `renewal` waits for the loop to wait with nothing in flight. */
  let renewalParked: (() => void) | undefined
  /**
   * Resumes once a command is queued (at once if one is), or `also` calls back (a registration
   * that calls back at once if its moment has come). `idle`: nothing is in flight, so the
   * renewal resumes it too once due.
   */
  const arrival = (idle: boolean, also?: (callback: () => void) => void): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      let done = false
      const stop = () => {
        done = true
        if (wakeup === go) wakeup = undefined
        if (idle) idleSince = undefined
      }
      const go = () => {
        if (done) return
        stop()
        resume(Effect.void)
      }
      if (pending.length > 0) return resume(Effect.void)
      wakeup = go
      if (idle) {
        idleSince = clock.unsafeCurrentTimeMillis()
        const renew = renewalParked
        renewalParked = undefined
        renew?.()
      }
      also?.(go)
      return Effect.sync(stop)
    })

  const overloaded = () => new Overloaded({ reason: `${config.maxPending} commands are waiting`, retryAfterMs: 100 })

  /** Queues a command (and wakes the loop if it waits for one); false when the queue is full. */
  const offer = (command: Command, answer: Pending["answer"]): boolean => {
    if (pending.length >= config.maxPending) return false
    pending.push({ command, answer })
    wake()
    return true
  }

  const longPolls = LongPolls.make({
    current: replica.current,
    now: () => clock.unsafeCurrentTimeMillis(),
    offer,
    accepting: () => accepting,
    overloaded,
    runFork: Runtime.runFork(yield* Effect.runtime<never>())
  })

  const notLeader = Effect.map(election.leaderUrl, (leaderUrl) => new NotLeader({ leaderUrl }))

  const answer = (
    batch: ReadonlyArray<Pending>,
    outcome: (p: Pending, i: number) => Exit.Exit<unknown, OsqueueError>
  ) =>
    Effect.sync(() =>
      batch.forEach((p, i) => {
        if (p.answered) return
        p.answered = true
        p.answer(outcome(p, i))
      })
    )

  const failAll = (batch: ReadonlyArray<Pending>, error: OsqueueError) => answer(batch, () => Exit.fail(error))

  /** Applies a batch and sends it as the next entry (behind one in flight, if any). */
  const send = (batch: Array<Pending>, attempt: number): Effect.Effect<InFlight> =>
    Effect.gen(function*() {
      const wait = lastWrite + minGap - (yield* Clock.currentTimeMillis)
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      const started = yield* Clock.currentTimeMillis
      lastWrite = started
      const sent = yield* replica.send(election.id, "batch", (state) => {
        state.tick(started)
        // Each command alone: one that is refused or throws is undone and answered by itself.
        const results = batch.map((p) => state.apply(p.command, started, LeaseSecret.random))
        // Held long polls a job is claimable for now join the batch: answered with the commit that made it so.
        longPolls.claimInto(state, started, batch, results)
        return results
      })
      return { batch, attempt, started, sent }
    })

  /** Settles the oldest batch in flight and answers it: what the loop does next. */
  const settle = (flight: InFlight): Effect.Effect<"done" | "reapply"> =>
    Effect.gen(function*() {
      const { attempt, batch, started } = flight
      const written = yield* Effect.either(flight.sent.outcome)
      if (Either.isRight(written)) {
        lastDurable = yield* Clock.currentTimeMillis
        const { result, events: happened, encodeMs } = written.right
        yield* answer(batch, (_, i) => Either.match(result[i]!, { onLeft: Exit.fail, onRight: Exit.succeed }))
        yield* PubSub.publishAll(events, happened)
        const elapsed = (yield* Clock.currentTimeMillis) - started
        yield* Metric.increment(Metrics.commits)
        yield* Metric.update(Metrics.batchSize, batch.length)
        yield* Metric.update(Metrics.commitLatency, elapsed)
        yield* Metric.update(Metrics.encodeLatency, encodeMs)
        return "done"
      }

      yield* Metric.increment(Metrics.commitFailures)
      const error = written.left
      switch (error._tag) {
        case "Deposed": {
          // The batches sent behind it fail with the very same error: only the first steps down
          // (which also restarts the silence clock, so a broker that had abdicated does not take
          // the queue back from the one that deposed it).
          if (error !== lastDeposed) yield* election.stepDown
          lastDeposed = error
          const leader = error.leader
          yield* failAll(
            batch,
            new NotLeader({ leaderUrl: leader === null || leader.released === true ? null : leader.url })
          )
          return "done"
        }
        case "Reapply": {
          if (attempt < maxReapply) return "reapply"
          yield* failAll(batch, new CommitFailed({ reason: "the append kept finding earlier entries of ours" }))
          return "done"
        }
        case "StateCorrupt": {
          yield* Effect.logError("the log could not be read back", error)
          yield* failAll(batch, error)
          return "done"
        }
        default: {
          yield* Effect.logWarning("commit failed", error)
          yield* failAll(batch, new CommitFailed({ reason: error.message }))
          return "done"
        }
      }
    }).pipe((settling) =>
      tracing
        ? Effect.withSpan(settling, "GroupCommit.commit", {
          attributes: { size: flight.batch.length },
          captureStackTrace: false
        })
        : settling
    )

  /** The last `Deposed` answered: the batches in flight behind a deposed one carry it too. */
  let lastDeposed: Deposed | undefined

  /** The batches sent and not yet settled, oldest first (the commit loop's alone). */
  const inFlight: Array<InFlight> = []
  /** Every batch the loop took since it last had nothing in flight: a defect refuses those not yet answered. */
  const taken: Array<Array<Pending>> = []

  /** A second batch may go out now, behind the one in flight. */
  const maySendBehind = Effect.suspend(() =>
    accepting && inFlight.length === 1 && replica.canSendBehind()
      ? Effect.map(election.role, (role) => role._tag === "Leader")
      : Effect.succeed(false)
  )

  /**
   * Commits `first`, and whatever arrives while an append is in flight, until nothing is in
   * flight (docs/architecture.md, "Appends in flight"). Holds the replica's lock throughout.
   */
  const commitFrom = (first: Array<Pending>) =>
    Effect.gen(function*() {
      let next: { readonly batch: Array<Pending>; readonly attempt: number } | undefined = { batch: first, attempt: 0 }
      for (;;) {
        if (next !== undefined) {
          taken.push(next.batch)
          if (next.attempt === 0) yield* gather(next.batch)
          inFlight.push(yield* send(next.batch, next.attempt))
          next = undefined
        }
        if (inFlight.length === 0) return
        if (yield* maySendBehind) {
          // Whichever comes first: the append in flight is answered, or a command to send behind it arrives.
          if (isIdle()) yield* arrival(false, inFlight[0]!.sent.onWritten)
          if (!isIdle() && (yield* maySendBehind)) {
            next = { batch: take(config.maxBatch), attempt: 0 }
            continue
          }
        }
        const oldest = inFlight.shift()!
        const verdict = yield* settle(oldest)
        taken.splice(taken.indexOf(oldest.batch), 1)
        if (verdict === "reapply") next = { batch: Array.from(oldest.batch), attempt: oldest.attempt + 1 }
      }
    })

  /** Nothing waits to be committed. */
  const isIdle = () => pending.length === 0

  const loop = Effect.gen(function*() {
    const role = yield* election.role
    if (role._tag !== "Leader") {
      // Followers answer at once; anything that raced into the queue is refused.
      const stray = take(Infinity)
      if (stray.length > 0) yield* failAll(stray, yield* notLeader)
      longPolls.answerAll(Exit.fail(yield* notLeader))
      yield* election.roleChanges.pipe(Stream.filter((r) => r._tag === "Leader"), Stream.take(1), Stream.runDrain)
      return
    }
    // A command, or with none for `renewEvery` an empty batch: the renewal (`renewal` wakes the loop for it).
    yield* arrival(true)
    const batch = take(config.maxBatch)
    // A bug must not leave callers waiting forever, nor end the loop: what was in flight is
    // settled and refused, and the loop goes on.
    yield* commitFrom(batch).pipe(
      replica.lock.withPermits(1),
      Effect.catchAllDefect((defect) =>
        Effect.gen(function*() {
          yield* Effect.logError("a commit died; its batch is refused", defect)
          const refused = new CommitFailed({ reason: "the broker hit an internal error; retry" })
          for (const flight of inFlight.splice(0)) yield* Effect.exit(flight.sent.outcome)
          for (const unanswered of taken.splice(0)) yield* failAll(unanswered, refused)
        })
      )
    )
  })

  /**
   * An idle loop wakes on the first request; others whose bytes have already arrived wait in
   * the event loop. Letting it turn once puts them in this batch instead of one commit each.
   * Requests still arriving (a worker's claim a moment after its completions) keep it waiting a
   * few more turns, while each turn brings more.
   */
  const gather = (batch: Array<Pending>) =>
    Effect.gen(function*() {
      for (let turn = 0; turn < maxGatherTurns && batch.length > 0 && batch.length < config.maxBatch; turn++) {
        yield* EventLoop.nextTurn
        const more = take(config.maxBatch - batch.length)
        if (more.length === 0) break
        for (const p of more) batch.push(p)
      }
      yield* Metric.set(Metrics.pending, pending.length)
    })

  /** Milliseconds since the last durable commit (or since this broker took over, if later). */
  const sinceProgress: Effect.Effect<number> = Effect.gen(function*() {
    const role = yield* election.role
    const now = yield* Clock.currentTimeMillis
    return now - (role._tag === "Leader" ? Math.max(lastDurable, role.since) : lastDurable)
  })

  const ttlMs = Duration.toMillis(config.electionTtl)

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
    const waiting = take(Infinity)
    if (waiting.length > 0) yield* failAll(waiting, yield* notLeader)
    longPolls.answerAll(Exit.fail(yield* notLeader))
  })

  yield* watchdog.pipe(
    Effect.repeat(Schedule.spaced(config.pollInterval)),
    Effect.annotateLogs({ module: "GroupCommit", broker: election.url }),
    Effect.forkScoped,
    Effect.interruptible
  )

  /**
   * Wakes the loop for its renewal once it has waited `renewEvery` with nothing to commit. One
   * fiber for the loop's whole life, not a timer per wait: it sleeps until the renewal of the
   * wait under way is due (a wait that starts later is due later still, so it never oversleeps
   * one), and while the loop is busy it waits for the loop's next wait.
   */
  const renewal = Effect.suspend(() => {
    if (idleSince === undefined) {
      return Effect.async<void>((resume) => {
        if (idleSince !== undefined) return resume(Effect.void)
        const parked = () => resume(Effect.void)
        renewalParked = parked
        return Effect.sync(() => {
          if (renewalParked === parked) renewalParked = undefined
        })
      })
    }
    const left = idleSince + renewMs - clock.unsafeCurrentTimeMillis()
    if (left > 0) return Effect.sleep(Duration.millis(left))
    wake()
    return Effect.void
  })

  yield* renewal.pipe(
    Effect.forever,
    Effect.forkScoped,
    Effect.interruptible
  )

  // The loop answers every request: nothing but the scope closing may end it. A defect outside a
  // batch (a follower waiting to lead) is logged and the loop goes on.
  yield* loop.pipe(
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
      longPolls.answerAll(Exit.fail(new NotLeader({ leaderUrl: null })))
      if ((yield* election.role)._tag !== "Leader") return
      yield* Effect.logInfo("handing over leadership")
      const rest = take(Infinity)
      yield* replica.lock.withPermits(1)(
        Effect.gen(function*() {
          if (rest.length > 0) yield* commitFrom(rest)
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
  const refusal: Effect.Effect<OsqueueError | undefined> = Effect.suspend(() =>
    accepting
      ? Effect.flatMap(election.role, (role) => (role._tag === "Leader" ? Effect.succeed(undefined) : notLeader))
      : Effect.succeed(new NotLeader({ leaderUrl: null }))
  )

  const submit = <C extends Command>(command: C): Effect.Effect<ResultOf<C>, OsqueueError> =>
    Effect.flatMap(refusal, (refused) =>
      refused !== undefined
        ? Effect.fail(refused)
        : Effect.async<ResultOf<C>, OsqueueError>((resume) => {
          if (!offer(command, resume as Pending["answer"])) resume(Effect.fail(overloaded()))
        }))

  const submitAll = <C extends Command>(
    commands: ReadonlyArray<C>
  ): Effect.Effect<Array<Either.Either<ResultOf<C>, OsqueueError>>, OsqueueError> =>
    Effect.flatMap(refusal, (refused) =>
      refused !== undefined
        ? Effect.fail(refused)
        : pending.length + commands.length > config.maxPending
        ? Effect.fail(overloaded())
        : Effect.async<Array<Either.Either<ResultOf<C>, OsqueueError>>>((resume) => {
          const results = new Array<Either.Either<ResultOf<C>, OsqueueError>>(commands.length)
          let left = commands.length
          if (left === 0) return resume(Effect.succeed(results))
          commands.forEach((command, i) => {
            const answer = (exit: Exit.Exit<unknown, OsqueueError>) => {
              results[i] = Exit.isSuccess(exit)
                ? Either.right(exit.value as ResultOf<C>)
                : Either.left(Option.getOrElse(Cause.failureOption(exit.cause), () =>
                  new CommitFailed({ reason: Cause.pretty(exit.cause) })))
              if (--left === 0) {
                resume(Effect.succeed(results))
              }
            }
            if (!offer(command, answer)) {
              answer(Exit.fail(overloaded()))
            }
          })
        }))

  const claimWaiting = (command: LongPolls.ClaimCommand, waitMs: number) =>
    Effect.flatMap(
      refusal,
      (refused) =>
        refused !== undefined ? Effect.fail(refused) : waitMs > 0 ? longPolls.wait(command, waitMs) : submit(command)
    )

  return GroupCommit.of({
    submit,
    submitAll,
    read: (f) => replica.read(f),
    stats: Effect.sync(replica.stats),
    events: PubSub.subscribe(events),
    claimWaiting,
    handoff,
    checkpointVersion: Effect.sync(() => replica.version() ?? null),
    health: Effect.map(
      sinceProgress,
      (sinceCommitMs) => ({ sinceCommitMs, progressing: sinceCommitMs <= (2 * ttlMs) / 3 })
    )
  })
})

export const layer: Layer.Layer<GroupCommit, never, Replica | Election | EngineConfig> = Layer.scoped(GroupCommit, make)
