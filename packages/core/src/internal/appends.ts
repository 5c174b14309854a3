/**
 * The one path by which a change becomes durable (docs/architecture.md, "The log" and "Appends in
 * flight"): apply, encode what changed as entry n, create `log/<n>`, keep or undo. At most two
 * appends are in flight, settled in the order they were sent; one that did not land undoes itself
 * and every one sent behind it. An entry this broker created long after its last durable one is
 * checked against the checkpoint first (the fence, docs/ha.md "The log and the fence").
 */
import { type StoreFailure, StoreUnavailable } from "@osqueue/storage"
import { type JobEvent, type Leader, type StateCorrupt, type Stats } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { CasShape } from "../Cas.js"
import type { EngineSettings } from "../EngineConfig.js"
import type { LogShape } from "../Log.js"
import { type EntryKind, type LogEntry, logKey } from "../LogEntry.js"
import * as Metrics from "../Metrics.js"
import type { Encoded, QueueState } from "../QueueState.js"
import { type CatchUp, type Copy, metadata } from "./catchUp.js"
import type { CheckpointWriter } from "./checkpointWriter.js"

export interface Appended<A> {
  readonly result: A
  readonly events: ReadonlyArray<JobEvent>
  /** Bytes of the entry (of the checkpoint, for the append that converts a queue from before the log). */
  readonly bytes: number
  /** Time spent applying the change and encoding the entry, in ms. */
  readonly encodeMs: number
}

/**
 * An append sent and not yet settled (docs/architecture.md, "Appends in flight"): settle each
 * in the order they were sent.
 */
export interface Sent<A> {
  /** Calls `callback` once the store has answered the append's write, whatever it answered (at once if it has). */
  readonly onWritten: (callback: () => void) => void
  /**
   * Keeps the change if the entry landed (and every one sent before it did), else undoes it and
   * everything sent behind it. Run it after every earlier append's `outcome`.
   */
  readonly outcome: Effect.Effect<Appended<A>, AppendError>
}

/** Another broker's entry holds the position this broker tried to append at: it no longer leads. */
export class Deposed extends Data.TaggedError("Deposed")<{ readonly leader: Leader | null }> {}

/**
 * An earlier append of ours, judged failed, landed after all: the replica now includes it, and
 * the batch must be applied again on top of it.
 */
export class Reapply extends Data.TaggedError("Reapply") {}

export type AppendError = Deposed | Reapply | StateCorrupt | StoreUnavailable | StoreFailure

/** Whether `leaderId` leads the queue `s` holds (an epoch entry makes it so; a release ends it). */
const leads = (s: QueueState, leaderId: string) =>
  s.leader !== null && s.leader.id === leaderId && s.leader.released !== true

/** What the store said to an append's write. */
type Written =
  | { readonly _tag: "Landed" }
  /** Another entry holds the position (undefined: it was collected already). */
  | { readonly _tag: "Taken"; readonly entry: LogEntry | undefined }
  /** It landed at a position a checkpoint already covers: a deposed leader's re-creation. */
  | { readonly _tag: "Fenced" }
  /** queue.json before the log moved under the conversion. */
  | { readonly _tag: "Conflict" }
type WriteError = StateCorrupt | StoreUnavailable | StoreFailure

const landed: Written = { _tag: "Landed" }

/**
 * The store's answer to one append's write, once it comes, and who waits for it: callbacks, not
 * a `Deferred`, which cost more per append than the rest of its bookkeeping.
 */
class WriteOutcome {
  exit: Exit.Exit<Written, WriteError> | undefined
  private waiting: Array<() => void> = []

  complete(exit: Exit.Exit<Written, WriteError>): void {
    this.exit = exit
    const waiting = this.waiting
    this.waiting = []
    for (const callback of waiting) callback()
  }

  /** Calls `callback` once the answer is in (at once if it is). */
  onDone(callback: () => void): void {
    if (this.exit !== undefined) callback()
    else this.waiting.push(callback)
  }

  /** The answer, once it is in. */
  readonly await: Effect.Effect<Exit.Exit<Written, WriteError>> = Effect.async((resume) => {
    this.onDone(() => resume(Effect.succeed(this.exit!)))
  })
}

/** One append in flight. */
interface Flight {
  readonly position: number
  /** The last position it accounts for: its own, and the ones it skips. */
  readonly last: number
  readonly kind: EntryKind
  readonly leaderId: string
  readonly commitId: string
  readonly bytes: number
  /** A checkpoint write converting a queue.json from before the log. */
  readonly legacy: boolean
  /** At a position past every one this broker sent before: nothing of ours can be there already. */
  readonly fresh: boolean
  /** Monotonic ms when it was sent: the fence's clock. */
  readonly sentAt: number
  /** The counts once it is durable. */
  readonly stats: Stats | undefined
  readonly written: WriteOutcome
  /** Why it is void: an append sent before it failed, so whatever its write did is not kept. */
  voided: AppendError | undefined
}

/** The replica's appends and the reads that wait for them (part of `ReplicaShape`, Replica.ts). */
export interface Appends {
  /**
   * Applies `mutate` and sends what it changed as the next entry, behind any in flight; the
   * caller holds `lock` and settles what it sent in order.
   */
  readonly send: <A>(leaderId: string, kind: EntryKind, mutate: (state: QueueState) => A) => Effect.Effect<Sent<A>>
  /**
   * Whether a batch may be sent now behind the one in flight: only one is, at a position this
   * broker never sent before, and no reader or checkpoint waits for a quiet moment.
   */
  readonly canSendBehind: () => boolean
  /** `send` and settle, alone: keeps the change only if the entry landed. */
  readonly append: <A>(
    leaderId: string,
    kind: EntryKind,
    mutate: (state: QueueState) => A
  ) => Effect.Effect<Appended<A>, AppendError>
  /** Runs `f` on durable state only: at once, or the moment nothing is in flight (no append is sent behind one meanwhile). */
  readonly read: <A>(f: (state: QueueState) => A) => Effect.Effect<A>
  /** `f` on the durable state, at once, if nothing is in flight; else none (it never waits). */
  readonly readIfQuiet: <A>(f: (state: QueueState) => A) => Option.Option<A>
  /** The last durable state's counts, at once: never waits for an append in flight. */
  readonly stats: () => Stats
}

export const make = (options: {
  readonly cas: CasShape
  readonly log: LogShape
  readonly config: EngineSettings
  readonly copy: Copy
  readonly catchUp: CatchUp
  readonly checkpoints: CheckpointWriter
  /** Whose end waits for every append's write under way, whatever happened to the one who sent it. */
  readonly scope: Scope.Scope
}): Effect.Effect<Appends> =>
  Effect.gen(function*() {
    const { cas, catchUp, checkpoints, config, copy, log, scope } = options
    const ttlMs = Duration.toMillis(config.electionTtl)
    const clock = yield* Effect.clock
    /** The metric labels the engine was started under (a named queue's), read once. */
    const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)

    /** The appends sent and not yet settled, oldest first: at most two (docs/architecture.md, "Appends in flight"). */
    const flights: Array<Flight> = []
    /** The writes under way: the scope's end waits for each, as whatever sent it must learn its outcome. */
    const writing = new Set<WriteOutcome>()
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => Effect.forEach(Array.from(writing), (pending) => pending.await, { discard: true }))
    )
    /** Readers waiting for a moment with nothing in flight (`read`). */
    const waiting: Array<() => void> = []
    /** The highest position this broker has sent an entry at: an entry re-sent below it skips what may lie above. */
    let sentMax = 0
    /**
     * The durable state's counts while appends are in flight, and the state they are of. A
     * landed append's sealed counts serve the next append too, unless the state changed
     * otherwise since (a replay moves `seq`, a reload replaces the state): one count of every
     * job state fewer per commit.
     */
    let durableStats: Stats | undefined
    let durableStatsOf: QueueState | undefined
    /**
     * When the last durable append was sent (monotonic ms on Effect's clock, as every other TTL
     * rule, so TestClock drives it too): the fence's clock (docs/ha.md). None yet: the first
     * append is checked.
     */
    let lastSentAt = Number.NEGATIVE_INFINITY
    const monotonicMs = () => Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)
    let attempts = 0

    /** Nothing is in flight, so the state is the durable state: waiting readers and a due checkpoint take it now. */
    const quiet = () => {
      for (const run of waiting.splice(0)) run()
      checkpoints.quiet()
    }

    /**
     * An entry this broker created can be one a deposed leader re-created after it was collected
     * only if a checkpoint covers its position by now; that takes a takeover and a grace, more
     * than a TTL after our last durable append was sent. So only a takeover's entry and an
     * append that took that long are checked against the checkpoint (docs/ha.md).
     */
    const fenceHolds = (position: number) =>
      cas.head.pipe(
        Effect.map((head) => {
          const covers = Option.isSome(head) ? head.value.position : undefined
          if (covers === undefined || covers < position) {
            // What the checkpoint covers now is collectable after the grace, whoever wrote it.
            if (covers !== undefined) checkpoints.covers(covers)
            return true
          }
          return false
        })
      )

    /** Someone else's entry holds our position: was it our own late append, or another leader's? */
    const taken = (leaderId: string, entry: LogEntry | undefined): Effect.Effect<never, AppendError> =>
      Effect.gen(function*() {
        if (entry !== undefined && entry.epoch === copy.state.epoch && entry.commitId.startsWith(`${leaderId}:`)) {
          yield* catchUp.apply(entry)
          return yield* new Reapply()
        }
        yield* catchUp.replayLog.pipe(
          Effect.catchAll((error) => Effect.logWarning("could not catch up after being deposed", error))
        )
        return yield* new Deposed({ leader: copy.state.leader })
      })

    /** The store calls of one append, in a fiber of their own: they change nothing but the store (and what a checkpoint covers). */
    const write = (flight: Flight, body: Encoded, meta: Record<string, string>): Effect.Effect<Written, WriteError> =>
      flight.legacy
        ? cas.commit(body.parts, copy.checkpoint.version, flight.commitId, meta).pipe(
          Effect.map((version): Written => {
            copy.checkpoint = { version, position: flight.position, bytes: body.length }
            copy.legacy = false
            checkpoints.covers(flight.position)
            return landed
          }),
          Effect.catchTag("CasConflict", () => Effect.succeed<Written>({ _tag: "Conflict" }))
        )
        : log.append(flight.position, body.parts, flight.commitId).pipe(
          Effect.flatMap(() =>
            flight.kind !== "epoch" && monotonicMs() - lastSentAt <= ttlMs
              ? Effect.succeed(landed)
              : Effect.map(fenceHolds(flight.position), (holds): Written => (holds ? landed : { _tag: "Fenced" }))
          ),
          Effect.catchTag("PositionTaken", (e) => Effect.succeed<Written>({ _tag: "Taken", entry: e.entry }))
        )

    /** Why an append that did not land failed, once the state no longer holds it. */
    const failure = (flight: Flight, written: Written): Effect.Effect<never, AppendError> => {
      switch (written._tag) {
        case "Taken":
          return taken(flight.leaderId, written.entry)
        case "Fenced":
          return Effect.zipRight(
            Effect.logWarning("a checkpoint already covers the entry just created: deposed"),
            taken(flight.leaderId, undefined)
          )
        case "Conflict":
          return catchUp.reload.pipe(
            Effect.zipRight(Effect.suspend(() => Effect.fail(new Deposed({ leader: copy.state.leader }))))
          )
        case "Landed":
          return Effect.dieMessage("a landed append settled as failed")
      }
    }

    /**
     * Settles `flight` once the store has answered it: it must be the oldest in flight (its
     * caller settled every earlier one). Landed, it is durable and answers what it did. Not
     * landed, every append sent behind it was built on a change the log does not hold: they are
     * undone with it, and void whatever their writes did (the next entry skips them).
     */
    const settle = <A>(
      flight: Flight,
      s: QueueState,
      result: A,
      encodeMs: number
    ): Effect.Effect<Appended<A>, AppendError> =>
      Effect.suspend(() => {
        const written = flight.written.exit
        // The usual case, in one step: the write is in, it landed, and nothing before it failed.
        return written !== undefined && flight.voided === undefined && flights[0] === flight &&
            Exit.isSuccess(written) && written.value._tag === "Landed"
          ? Effect.succeed(kept(flight, s, result, encodeMs))
          : settleSlowly(flight, s, result, encodeMs)
      }).pipe(Effect.uninterruptible)

    /** Keeps the oldest append in flight, landed: it is durable and answers what it did. */
    const kept = <A>(flight: Flight, s: QueueState, result: A, encodeMs: number): Appended<A> => {
      flights.shift()
      lastSentAt = flight.sentAt
      // A conversion's counts are the next send's to take: its bytes are the whole checkpoint's.
      durableStats = flight.legacy ? undefined : flight.stats
      durableStatsOf = s
      const events = flight.legacy
        ? s.committed(flight.last, flight.commitId, flight.bytes)
        : s.committed(flight.last, flight.commitId)
      Metrics.bytesWritten.unsafeUpdate(flight.bytes, labels)
      checkpoints.appended(flight.bytes, events.length > 0, flight.kind !== "batch", flights.length > 0)
      if (flights.length === 0) quiet()
      return { result, events, bytes: flight.bytes, encodeMs }
    }

    /** `settle` once the write is in, whatever it answered. */
    const settleSlowly = <A>(
      flight: Flight,
      s: QueueState,
      result: A,
      encodeMs: number
    ): Effect.Effect<Appended<A>, AppendError> =>
      Effect.gen(function*() {
        const written = yield* flight.written.await
        if (flight.voided !== undefined) return yield* flight.voided
        if (flights[0] !== flight) return yield* Effect.dieMessage("appends settled out of order")
        if (Exit.isSuccess(written) && written.value._tag === "Landed") return kept(flight, s, result, encodeMs)
        flights.shift()
        const behind = flights.splice(0)
        for (const later of behind) yield* later.written.await
        s.rollbackAll()
        // A defect in the store's code fails the append as it stands; anything else is judged.
        const failed = Exit.isSuccess(written)
          ? failure(flight, written.value)
          : Option.match(Cause.failureOption(written.cause), {
            onNone: () => Effect.failCause(written.cause),
            onSome: Effect.fail
          })
        const error = yield* Effect.exit(failed)
        for (const later of behind) {
          const cause = Exit.isFailure(error) ? Cause.failureOption(error.cause) : Option.none()
          later.voided = Option.isSome(cause) && (cause.value._tag === "Deposed" || cause.value._tag === "StateCorrupt")
            ? cause.value
            : new StoreUnavailable({
              operation: "append",
              key: logKey(later.position),
              cause: "an append sent before it failed"
            })
        }
        quiet()
        return yield* error
      })

    const send = <A>(leaderId: string, kind: EntryKind, mutate: (state: QueueState) => A): Effect.Effect<Sent<A>> =>
      Effect.withFiberRuntime((sender, { runtimeFlags }) => {
        // From here to the write's start nothing yields: no other change or read sees the state half-done.
        const s = copy.state
        if (kind !== "epoch" && !leads(s, leaderId)) return Effect.succeed(refused<A>(s))
        const written = new WriteOutcome()
        const legacy = copy.legacy
        if (flights.length === 0 && (durableStatsOf !== s || durableStats?.seq !== s.seq)) {
          durableStats = s.stats()
          durableStatsOf = s
        }
        const position = (flights.length > 0 ? flights[flights.length - 1]!.last : s.seq) + 1
        // A takeover skips one: the deposed leader may have that one in flight too.
        const skip = legacy ? 0 : Math.max(kind === "epoch" ? 1 : 0, sentMax - position)
        const fresh = position > sentMax
        sentMax = Math.max(sentMax, position)
        const commitId = `${leaderId}:${position}:${++attempts}`
        const started = performance.now()
        s.begin()
        let result: A
        let body: Encoded
        try {
          result = mutate(s)
          body = legacy ? s.encodeParts(position, commitId) : s.entryParts(kind, position, commitId, skip)
        } catch (defect) {
          s.abandon()
          if (flights.length === 0) quiet()
          return Effect.die(defect)
        }
        const last = position + skip
        s.seal(last)
        const flight: Flight = {
          position,
          last,
          kind,
          leaderId,
          commitId,
          bytes: body.length,
          legacy,
          fresh,
          sentAt: monotonicMs(),
          stats: s.sealedStats(),
          written,
          voided: undefined
        }
        flights.push(flight)
        const meta = metadata(s, position)
        const encodeMs = performance.now() - started
        // Once sent, an append's outcome must be learnt: the write runs to its end whatever happens to the sender.
        const sent: Sent<A> = {
          onWritten: (callback) => written.onDone(callback),
          outcome: settle(flight, s, result, encodeMs)
        }
        // The write starts now, in a fiber of its own with the sender's context, and runs on
        // until it waits for the store (to its end, on a store that answers at once): a fork would
        // start it only after the sender waits for it, one more turn of each fiber per commit.
        writing.add(written)
        Runtime.runFork(
          Runtime.make({
            context: sender.currentContext,
            fiberRefs: sender.getFiberRefs(),
            runtimeFlags
          }),
          write(flight, body, meta).pipe(
            Effect.exit,
            Effect.map((exit) => {
              writing.delete(written)
              written.complete(exit)
            }),
            Effect.uninterruptible
          )
        )
        return Effect.succeed(sent)
      })

    /**
     * Only the broker the state names as its leader writes entries of its epoch (docs/ha.md, "The
     * log and the fence"). One that stepped down while its loop waited for commands may have
     * replayed the new leader's entries since: its next entry would carry the new leader's epoch,
     * and its position would be free. Refused before anything is applied or written.
     */
    const refused = <A>(s: QueueState): Sent<A> => ({
      onWritten: (callback) => callback(),
      outcome: Effect.fail(new Deposed({ leader: s.leader }))
    })

    const append = <A>(leaderId: string, kind: EntryKind, mutate: (state: QueueState) => A) =>
      Effect.uninterruptible(Effect.flatMap(send(leaderId, kind, mutate), (sent) => sent.outcome))

    const canSendBehind = () => {
      const front = flights[0]
      return config.appendsInFlight > 1 && flights.length === 1 && front!.fresh && front!.kind === "batch" &&
        !front!.legacy &&
        waiting.length === 0 && !checkpoints.due()
    }

    const read = <A>(f: (state: QueueState) => A): Effect.Effect<A> =>
      // Decided when it runs, not when it is built (a read built once and run many times).
      Effect.suspend(() =>
        flights.length === 0 ? Effect.sync(() => f(copy.state)) : Effect.async<A>((resume) => {
          // Run at the quiet moment itself: a fiber resumed later could find the next batch applied.
          waiting.push(() => {
            try {
              const value = f(copy.state)
              resume(Effect.succeed(value))
            } catch (defect) {
              resume(Effect.die(defect))
            }
          })
        })
      )

    const readIfQuiet = <A>(f: (state: QueueState) => A): Option.Option<A> =>
      flights.length === 0 ? Option.some(f(copy.state)) : Option.none()

    const stats = () => (flights.length > 0 && durableStats !== undefined ? durableStats : copy.state.stats())

    return { send, canSendBehind, append, read, readIfQuiet, stats }
  })
