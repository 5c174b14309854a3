/**
 * The commit loop (docs/architecture.md, "The commit path" and "Appends in flight"): it takes the
 * commands waiting as a batch, applies it and sends it as the next log entry; commands that
 * arrive meanwhile form the next batch, sent behind it (at most two in flight). A batch waits a
 * little for the callers answered since the last write, so that a round of callers shares one
 * write instead of two (`company`). Each command is answered only once the entry that carries
 * it, and every one before it, is durable. An append that finds its position taken by another
 * broker's entry means this broker was deposed: it steps down and answers `NotLeader`. One that
 * finds its own earlier entry there (judged failed, landed after all) applies the batch again on
 * top of it.
 */
import { CommitFailed, EventLoop, type JobEvent, NotLeader, type OsqueueError } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import type { ElectionShape } from "../Election.js"
import type { EngineSettings } from "../EngineConfig.js"
import * as LeaseSecret from "../LeaseSecret.js"
import * as Metrics from "../Metrics.js"
import type { Appended, AppendError, Deposed, ReplicaShape, Sent } from "../Replica.js"
import { answerEach, type CommandQueue, failAll, type IdleWatch, type Pending } from "./commandQueue.js"
import type { LongPolls } from "./longPolls.js"
import * as Timers from "./timers.js"

/** Told what happened in each durable commit (`GroupCommit.onEvents`). */
export type EventListener = (events: ReadonlyArray<JobEvent>) => void

/** A batch sent and not yet settled. */
interface InFlight {
  readonly batch: Array<Pending>
  /** Re-applications so far, after earlier entries of ours were found where it was sent. */
  readonly attempt: number
  /** When it was applied (the leader's clock, ms). */
  readonly started: number
  /** When its entry went to the store (the leader's clock, ms). */
  readonly sentAt: number
  /** When the store answered its write, once it has (the leader's clock, ms). */
  writtenAt: number | undefined
  readonly sent: Sent<ReadonlyArray<Either.Either<unknown, OsqueueError>>>
}

/** Most event-loop turns an idle loop waits for more requests before it commits. */
const maxGatherTurns = 4

/**
 * A batch waits for the callers its loop answered since its last write, while its oldest command
 * has waited less than this share of the store's recent answer time (docs/architecture.md,
 * "Appends in flight").
 */
const waitForCallers = 0.25

/** Weight of the newest write in the store's recent answer time (an exponentially weighted mean). */
const writeTimeWeight = 0.2

/** Re-applications of one batch after conflicts that did not depose us, before giving up. */
const maxReapply = 3

export interface CommitLoop {
  /** One turn of the loop: a follower waits to lead; a leader waits for commands (or its renewal) and commits them. */
  readonly loop: Effect.Effect<void>
  /**
   * Commits `first`, and whatever arrives while an append is in flight, until nothing is in
   * flight. The caller holds the replica's lock.
   */
  readonly commitFrom: (first: Array<Pending>) => Effect.Effect<void>
  /** When the last commit became durable (the leader's clock, ms): the watchdog's and readiness's measure. */
  readonly lastDurable: () => number
  /**
   * A claim came and is held (a long poll, `LongPolls`), so no command of its comes: a wait for
   * company counts it as come.
   */
  readonly claimHeld: () => void
}

export const make = (options: {
  readonly config: EngineSettings
  readonly election: ElectionShape
  readonly replica: ReplicaShape
  readonly queue: CommandQueue
  readonly longPolls: LongPolls
  /** Told when the loop waits with nothing in flight (the renewal). */
  readonly idle: IdleWatch
  /** Called with what happened in each durable commit, in order, as it is answered. */
  readonly listeners: ReadonlySet<EventListener>
  /** Whether the broker still takes commands (false from its handoff on). */
  readonly accepting: () => boolean
  /** Whether commits make spans (read once: with spans not exported, a commit makes none). */
  readonly tracing: boolean
  readonly notLeader: Effect.Effect<NotLeader>
}): Effect.Effect<CommitLoop> =>
  Effect.gen(function*() {
    const { config, election, idle, listeners, longPolls, notLeader, queue, replica, tracing } = options
    // Each append creates a new object, so the store's limit on writes to one object does not apply.
    const minGap = Duration.toMillis(config.minCommitInterval)
    let lastWrite = 0
    let lastDurable = yield* Clock.currentTimeMillis
    const clock = yield* Effect.clock
    const after = yield* Timers.make
    /**
     * The metric labels the engine was started under (a named queue's): the loop's fiber keeps
     * them for its life, so they are read once, not per commit.
     */
    const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
    /** The store's recent answer time to a log write that landed (ms; 0 before the first). */
    let recentWriteMs = 0
    /** Commands answered since the last batch was sent: callers on their way back, most of them, under load. */
    let answeredSinceSend = 0

    /** Applies a batch and sends it as the next entry (behind one in flight, if any). */
    const send = (batch: Array<Pending>, attempt: number): Effect.Effect<InFlight> =>
      Effect.suspend(() => {
        const wait = lastWrite + minGap - clock.unsafeCurrentTimeMillis()
        return wait > 0
          ? Effect.zipRight(Effect.sleep(Duration.millis(wait)), sendNow(batch, attempt))
          : sendNow(batch, attempt)
      })

    const sendNow = (batch: Array<Pending>, attempt: number): Effect.Effect<InFlight> =>
      Effect.suspend(() => {
        const started = clock.unsafeCurrentTimeMillis()
        lastWrite = started
        answeredSinceSend = 0
        return Effect.map(
          replica.send(election.id, "batch", (state) => {
            state.tick(started)
            // Each command alone: one that is refused or throws is undone and answered by itself.
            const results = batch.map((p) => state.apply(p.command, started, LeaseSecret.random))
            // Held long polls a job is claimable for now join the batch: answered with the commit that made it so.
            longPolls.claimInto(state, started, batch, results)
            return results
          }),
          (sent) => {
            const flight: InFlight = {
              batch,
              attempt,
              started,
              sentAt: clock.unsafeCurrentTimeMillis(),
              writtenAt: undefined,
              sent
            }
            sent.onWritten(() => {
              flight.writtenAt = clock.unsafeCurrentTimeMillis()
            })
            return flight
          }
        )
      })

    /** A durable commit's figures. */
    const recordCommit = (size: number, elapsedMs: number, encodeMs: number) => {
      Metrics.commits.unsafeUpdate(1, labels)
      Metrics.batchSize.unsafeUpdate(size, labels)
      Metrics.commitLatency.unsafeUpdate(elapsedMs, labels)
      Metrics.encodeLatency.unsafeUpdate(encodeMs, labels)
    }

    /** The last `Deposed` answered: the batches in flight behind a deposed one carry it too. */
    let lastDeposed: Deposed | undefined

    /** Settles the oldest batch in flight and answers it: what the loop does next. */
    const settle = (flight: InFlight): Effect.Effect<"done" | "reapply"> =>
      Effect.matchEffect(flight.sent.outcome, {
        onSuccess: (appended) => durable(flight, appended),
        onFailure: (error) => refused(flight, error)
      }).pipe((settling) =>
        tracing
          ? Effect.withSpan(settling, "GroupCommit.commit", {
            attributes: { size: flight.batch.length },
            captureStackTrace: false
          })
          : settling
      )

    const done = Effect.succeed("done" as const)

    /** Tells each listener what a durable commit did: the logging of those that threw, if any did. */
    const tell = (happened: ReadonlyArray<JobEvent>): Effect.Effect<void> | undefined => {
      let failed: Effect.Effect<void> | undefined
      for (const listener of listeners) {
        try {
          listener(happened)
        } catch (defect) {
          const logged = Effect.logError("a listener of commits' events failed", Cause.die(defect))
          failed = failed === undefined ? logged : Effect.zipRight(failed, logged)
        }
      }
      return failed
    }

    /** A batch whose entry is durable: each command answered, its events told. */
    const durable = (
      flight: InFlight,
      { encodeMs, events: happened, result }: Appended<ReadonlyArray<Either.Either<unknown, OsqueueError>>>
    ): Effect.Effect<"done"> => {
      const { batch, started } = flight
      lastDurable = clock.unsafeCurrentTimeMillis()
      const writeMs = (flight.writtenAt ?? lastDurable) - flight.sentAt
      recentWriteMs = recentWriteMs === 0 ? writeMs : recentWriteMs + writeTimeWeight * (writeMs - recentWriteMs)
      answerEach(batch, (_, i) => result[i]!)
      recordCommit(batch.length, clock.unsafeCurrentTimeMillis() - started, encodeMs)
      const failed = happened.length === 0 ? undefined : tell(happened)
      return failed === undefined ? done : Effect.as(failed, "done" as const)
    }

    /** A batch whose append failed: answered with why, or applied again. */
    const refused = (flight: InFlight, error: AppendError): Effect.Effect<"done" | "reapply"> =>
      Effect.gen(function*() {
        const { attempt, batch } = flight
        yield* Metric.increment(Metrics.commitFailures)
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
      })

    /** The batches sent and not yet settled, oldest first (the commit loop's alone). */
    const inFlight: Array<InFlight> = []
    /** Every batch the loop took since it last had nothing in flight: a defect refuses those not yet answered. */
    const taken: Array<Array<Pending>> = []

    /** A second batch may go out now, behind the one in flight. */
    const maySendBehind = () =>
      options.accepting() && inFlight.length === 1 && replica.canSendBehind() &&
      election.roleNow()._tag === "Leader"

    /**
     * An idle loop wakes on the first request; others whose bytes have already arrived wait in
     * the event loop. Letting it turn once puts them in this batch instead of one commit each.
     * Requests still arriving (a worker's claim a moment after its completions) keep it waiting a
     * few more turns, while each turn brings more. The turns are callbacks under one wait: a
     * fiber resumed per turn cost more than the turn's work.
     */
    const gather = (batch: Array<Pending>) =>
      Effect.zipRight(
        Effect.async<void>((resume) => {
          if (batch.length === 0 || batch.length >= config.maxBatch) return resume(Effect.void)
          let turn = 0
          let cancel = EventLoop.afterIo(function turned() {
            const more = queue.take(config.maxBatch - batch.length)
            for (const p of more) batch.push(p)
            if (more.length === 0 || ++turn >= maxGatherTurns || batch.length >= config.maxBatch) {
              return resume(Effect.void)
            }
            cancel = EventLoop.afterIo(turned)
          })
          return Effect.sync(() => cancel())
        }),
        Effect.sync(() => Metrics.pending.unsafeUpdate(queue.size(), labels))
      )

    /**
     * How many more commands the batch that holds `held` waits for, and for how long (ms) at most:
     * as many as the callers answered since the last write (under load most of them send their
     * next call at once; sent as they arrive, the first few would make a write of their own), while
     * its oldest command, queued at `since`, has waited less than `waitForCallers` of the store's
     * recent answer time. Nothing answered, or no write timed yet: it goes at once.
     */
    const company = (held: number, since: number) => ({
      more: Math.min(answeredSinceSend, config.maxBatch) - held,
      left: since + waitForCallers * recentWriteMs - clock.unsafeCurrentTimeMillis()
    })

    /** Resumes the wait for company under way, if one is. */
    let companyCame: (() => void) | undefined

    /**
     * A caller's claim is held, not queued: one fewer command to wait for. A worker's claim that
     * a commit answers comes back as the next commit's long poll; counted as a command still to
     * come, every commit of a pool's round waited out its whole wait for company
     * (docs/performance.md, "A held claim is company that came").
     */
    const claimHeld = () => {
      if (answeredSinceSend === 0) return
      answeredSinceSend--
      companyCame?.()
    }

    /**
     * Resumes once `count` commands wait, `also` calls back, or `ms` have passed: a timer of its
     * own only while commands wait for company, so an idle wait costs none, and no fiber on the
     * live clock (`Timers`): the loop waits in about a third of its commits.
     */
    const arrivalWithin = (count: number, ms: number, also?: (callback: () => void) => void) =>
      Effect.suspend(() => {
        let stop: (() => void) | undefined
        return Effect.map(
          queue.arrival({
            count,
            also: (callback) => {
              stop = after(ms, callback)
              companyCame = callback
              also?.(callback)
            }
          }),
          () => {
            stop?.()
            companyCame = undefined
          }
        )
      })

    /** With nothing in flight: the batch taken waits for company (`company`), then goes. */
    const fill = (batch: Array<Pending>) =>
      Effect.gen(function*() {
        const since = batch[0]?.queuedAt
        if (since === undefined) return
        for (;;) {
          const { left, more } = company(batch.length, since)
          if (more <= 0 || left <= 0) return
          yield* arrivalWithin(more, left)
          for (const p of queue.take(config.maxBatch - batch.length)) batch.push(p)
        }
      })

    /**
     * While one append is in flight: waits until the commands waiting should go behind it (true:
     * take them) or it is answered, or nothing may go behind it (false: settle it). They go once
     * they have company (`company`): sending at once would make every arrival during a write a
     * write of its own.
     */
    const sendsBehind = Effect.gen(function*() {
      for (;;) {
        if (!maySendBehind()) return false
        const front = inFlight[0]!
        if (front.writtenAt !== undefined) return false
        const since = queue.oldest()
        if (since === undefined) {
          // The first command to send behind, or the store's answer.
          yield* queue.arrival({ also: front.sent.onWritten })
          continue
        }
        const { left, more } = company(queue.size(), since)
        if (more <= 0 || left <= 0) return true
        yield* arrivalWithin(queue.size() + more, left, front.sent.onWritten)
      }
    })

    const commitFrom = (first: Array<Pending>) =>
      Effect.gen(function*() {
        let next: { readonly batch: Array<Pending>; readonly attempt: number } | undefined = {
          batch: first,
          attempt: 0
        }
        for (;;) {
          if (next !== undefined) {
            taken.push(next.batch)
            if (next.attempt === 0) {
              yield* gather(next.batch)
              if (inFlight.length === 0) yield* fill(next.batch)
            }
            inFlight.push(yield* send(next.batch, next.attempt))
            next = undefined
          }
          if (inFlight.length === 0) return
          if (yield* sendsBehind) {
            next = { batch: queue.take(config.maxBatch), attempt: 0 }
            continue
          }
          const oldest = inFlight.shift()!
          const verdict = yield* settle(oldest)
          taken.splice(taken.indexOf(oldest.batch), 1)
          if (verdict === "done") answeredSinceSend += oldest.batch.length
          if (verdict === "reapply") next = { batch: Array.from(oldest.batch), attempt: oldest.attempt + 1 }
        }
      })

    const loop = Effect.gen(function*() {
      if (election.roleNow()._tag !== "Leader") {
        // Followers answer at once; anything that raced into the queue is refused.
        const stray = queue.take(Infinity)
        if (stray.length > 0) yield* failAll(stray, yield* notLeader)
        longPolls.refuseAll(yield* notLeader)
        yield* election.roleChanges.pipe(Stream.filter((r) => r._tag === "Leader"), Stream.take(1), Stream.runDrain)
        return
      }
      // A command, or with none for TTL/3 an empty batch: the renewal (`internal/idleRenewal.ts` wakes the loop for it).
      yield* queue.arrival({ idle })
      // It may have stepped down while it waited (the watchdog, a poll that found a new leader):
      // the next turn refuses what waits, as a follower's does.
      if (election.roleNow()._tag !== "Leader") return
      const batch = queue.take(config.maxBatch)
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

    return { loop, commitFrom, lastDurable: () => lastDurable, claimHeld }
  })
