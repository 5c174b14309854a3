/**
 * This broker's copy of the queue (docs/architecture.md, "The log"; docs/ha.md, "The log and
 * the fence"): the state as of a log position, and the one path by which a change becomes
 * durable — apply, encode what changed as entry n, create `log/<n>`, keep or undo. A leader
 * appends; a follower catches up by replaying what the leader appended. The leader writes the
 * whole state to queue.json (the checkpoint) in the background now and then, and deletes the
 * entries a checkpoint has covered for longer than a grace.
 *
 * Election (takeover, release) and GroupCommit (every batch) both append through here, one at a
 * time under `lock`.
 */
import { type StoreFailure, StoreUnavailable } from "@osqueue/storage"
import { firstLogFormat, type JobEvent, type Leader, StateCorrupt, type Stats } from "@osqueue/types"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import {
  Cas,
  type CasConflict,
  type CommitError,
  epochKey,
  leaderUrlKey,
  type Loaded,
  type LoadError,
  positionKey
} from "./Cas.js"
import { EngineConfig } from "./EngineConfig.js"
import { Log, type LogReadError } from "./Log.js"
import { type EntryKind, type LogEntry, logKey } from "./LogEntry.js"
import * as Metrics from "./Metrics.js"
import { defaultLimits, type Encoded, QueueState } from "./QueueState.js"

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
export type CatchUpError = LogReadError | LoadError

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

export interface ReplicaShape {
  /**
   * Held by whoever changes the state (the commit loop while it has appends in flight, a
   * takeover, a follower's catch-up): one writer at a time.
   */
  readonly lock: Effect.Semaphore
  /** The state as it stands, for synchronous checks (a batch may be applied but not yet durable). */
  readonly current: () => QueueState
  /** The checkpoint's version (undefined before one exists). */
  readonly version: () => string | undefined
  /** Runs `f` on durable state only: at once, or the moment nothing is in flight (no append is sent behind one meanwhile). */
  readonly read: <A>(f: (state: QueueState) => A) => Effect.Effect<A>
  /** The last durable state's counts, at once: never waits for an append in flight. */
  readonly stats: () => Stats
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
  /** A follower's poll: replays new entries (reloading the checkpoint when they are gone). True when anything was new. */
  readonly catchUp: Effect.Effect<boolean, CatchUpError>
  /** Writes a checkpoint of the durable state now and waits for it (a takeover or a release names the leader in it). */
  readonly checkpoint: Effect.Effect<void>
}

export class Replica extends Context.Tag("@osqueue/core/Replica")<Replica, ReplicaShape>() {}

/** Retries of the first read at start: exponential from 100 ms, each wait at most 2 s, for about 30 s. */
const startRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.upTo("30 seconds")
)

/** Most entries one catch-up replays before it lets the commit path have the lock again. */
const maxCatchUp = 10_000

/** A snapshot of the durable state, ready to be written as the checkpoint. */
interface Snapshot {
  readonly body: Encoded
  readonly position: number
  readonly commitId: string
  readonly metadata: Record<string, string>
  /** The counters at the snapshot: a written checkpoint takes them off what has built up since. */
  readonly entries: number
  readonly logBytes: number
}

export const make = Effect.gen(function*() {
  const cas = yield* Cas
  const log = yield* Log
  const config = yield* EngineConfig
  const limits = config.limits
  const ttlMs = Duration.toMillis(config.electionTtl)
  const graceMs = 2 * ttlMs
  const clock = yield* Effect.clock

  const initial = yield* cas.load.pipe(
    Effect.tapError((error) => Effect.logWarning("could not read queue.json at start; retrying", error)),
    Effect.retry({ schedule: startRetry, while: (error) => error._tag === "StoreUnavailable" })
  )

  let state = Option.match(initial, {
    onNone: () => QueueState.empty(limits),
    onSome: (loaded) => QueueState.fromFile(loaded.file, loaded.bytes, limits, loaded.kept)
  })
  /** queue.json as last read or written by this broker. */
  let checkpoint = Option.match(initial, {
    onNone: () => ({ version: undefined as string | undefined, position: 0, bytes: 0 }),
    onSome: (loaded) => ({
      version: loaded.version as string | undefined,
      position: loaded.file.seq,
      bytes: loaded.bytes
    })
  })
  /** True while queue.json predates the log: the next append converts it by writing a checkpoint. */
  let legacy = Option.match(initial, { onNone: () => false, onSome: (loaded) => loaded.file.format < firstLogFormat })

  /** The appends sent and not yet settled, oldest first: at most two (docs/architecture.md, "Appends in flight"). */
  const flights: Array<Flight> = []
  /** Readers waiting for a moment with nothing in flight (`read`). */
  const waiting: Array<() => void> = []
  /** The highest position this broker has sent an entry at: an entry re-sent below it skips what may lie above. */
  let sentMax = 0

  /** The counts as of the last durable append, while later ones are in flight. */
  let durableStats: Stats | undefined
  const lock = yield* Effect.makeSemaphore(1)

  // What the log holds beyond the checkpoint, for the checkpoint policy.
  let entriesSince = 0
  let logBytesSince = 0
  let jobsChangedSince = false
  let lastCheckpointAt = yield* Clock.currentTimeMillis
  let writing = false
  /** A checkpoint is due but appends are in flight: its snapshot waits for the quiet moment after them. */
  let checkpointDue = false
  /** Checkpoints this broker wrote or loaded, oldest first: entries they cover are collected after the grace. */
  const covered: Array<{ readonly position: number; readonly at: number }> = [
    { position: checkpoint.position, at: lastCheckpointAt }
  ]
  /**
   * When the last durable append was sent (monotonic ms on Effect's clock, as every other TTL
   * rule, so TestClock drives it too): the fence's clock (docs/ha.md). None yet: the first
   * append is checked.
   */
  let lastSentAt = Number.NEGATIVE_INFINITY
  const monotonicMs = () => Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)
  let attempts = 0

  const metadata = (s: QueueState, position: number): Record<string, string> => ({
    // A released leader is named by no one: its URL would send clients to a broker that is going.
    [leaderUrlKey]: s.leader !== null && s.leader.released !== true ? s.leader.url : "",
    [epochKey]: String(s.epoch),
    [positionKey]: String(position)
  })

  const replace = (loaded: Loaded) => {
    state = QueueState.fromFile(loaded.file, loaded.bytes, limits, loaded.kept)
    checkpoint = { version: loaded.version, position: loaded.file.seq, bytes: loaded.bytes }
    legacy = loaded.file.format < firstLogFormat
  }

  const reload = cas.load.pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.fail(new StateCorrupt({ reason: "queue.json is gone: restore it or start a fresh store" })),
      onSome: (loaded) => Effect.sync(() => replace(loaded))
    }))
  )

  // A new queue: an empty checkpoint at position 0, created only if absent.
  if (Option.isNone(initial)) {
    const body = state.encodeParts(0, "")
    yield* cas.commit(body.parts, undefined, "", metadata(state, 0)).pipe(
      Effect.tap((version) => {
        checkpoint = { version, position: 0, bytes: body.length }
        return Effect.logInfo("created queue.json").pipe(Effect.annotateLogs("key", cas.key))
      }),
      // Another broker created it first: use theirs.
      Effect.catchTag("CasConflict", () => reload)
    )
  }

  /**
   * Entries must follow one another: the same epoch, or one more in an epoch entry. Anything
   * else is not the log this state came from — an entry a deposed leader re-created after it
   * was collected (docs/ha.md, "The log and the fence") — and the checkpoint is read again.
   */
  const follows = (entry: LogEntry) =>
    entry.epoch === state.epoch || (entry.kind === "epoch" && entry.epoch === state.epoch + 1)

  /** Replays `entry` onto the state; one that does not apply to it is corrupt (docs/ha.md). */
  const apply = (entry: LogEntry): Effect.Effect<void, StateCorrupt> => {
    const problem = state.replay(entry)
    return problem === undefined
      ? Effect.void
      : Effect.fail(new StateCorrupt({ key: logKey(entry.position), reason: problem }))
  }

  /** Replays the entries after the state's position; reloads the checkpoint once if the log has moved past us. */
  const replayLog: Effect.Effect<boolean, CatchUpError> = Effect.gen(function*() {
    let progressed = false
    for (let pass = 0; pass < 2; pass++) {
      const entries = yield* log.readFrom(state.seq + 1, maxCatchUp)
      let broken = false
      for (const entry of entries) {
        if (!follows(entry)) {
          broken = true
          break
        }
        yield* apply(entry)
        progressed = true
      }
      if (!broken && entries.length === maxCatchUp) return progressed
      const head = yield* cas.head
      if (Option.isNone(head)) {
        return yield* new StateCorrupt({ reason: "queue.json is gone: restore it or start a fresh store" })
      }
      // The next entry is absent and the checkpoint is at or past it: it was collected.
      const behind = head.value.position !== undefined
        ? head.value.position > state.seq || (broken && head.value.version !== checkpoint.version)
        : head.value.version !== checkpoint.version
      if (!behind && !broken) return progressed
      if (broken) yield* Effect.logWarning("the log does not follow this replica's state; reading the checkpoint again")
      yield* reload
      progressed = true
      if (legacy) return progressed
    }
    return progressed
  })

  const catchUp: Effect.Effect<boolean, CatchUpError> = Effect.suspend(() => {
    if (!legacy) return replayLog
    // Before the log, queue.json is the whole state: a new version is a new commit.
    return cas.head.pipe(
      Effect.flatMap((head) =>
        Option.isSome(head) && head.value.version !== checkpoint.version
          ? Effect.zipRight(reload, Effect.suspend(() => (legacy ? Effect.succeed(true) : Effect.as(replayLog, true))))
          : Effect.succeed(false)
      )
    )
  }).pipe(Effect.withSpan("Replica.catchUp"))

  // Start from the log's end, not the checkpoint's: the queue as it is (who leads) from the
  // first answer on. An entry that does not decode is left to the followers' polls, which keep
  // failing on it: the broker runs, and never leads on it.
  yield* catchUp.pipe(
    Effect.retry({ schedule: startRetry, while: (error) => error._tag === "StoreUnavailable" }),
    Effect.catchAll((error) => Effect.logError("could not replay the log at start", error))
  )

  // ------------------------------------------------------------------ checkpoints

  const snapshots = yield* Queue.sliding<Snapshot>(1)

  const takeSnapshot = (): Snapshot => ({
    body: state.encodeParts(state.seq, state.commitId),
    position: state.seq,
    commitId: state.commitId,
    metadata: metadata(state, state.seq),
    entries: entriesSince,
    logBytes: logBytesSince
  })

  /** After a durable append: hands a snapshot to the writer when a checkpoint is due. */
  const maybeCheckpoint = (now: number, force: boolean) => {
    if (writing) return
    // The interval bounds how stale a small checkpoint gets. One past minBytes waits for the
    // log to write as much as it would: rewritten every interval, a queue of a million jobs
    // (365 MB) cost 17 KB per job drained at 200 jobs/s (docs/performance.md).
    const due = force ||
      entriesSince >= config.checkpoint.entries ||
      logBytesSince >= Math.max(config.checkpoint.minBytes, checkpoint.bytes) ||
      (jobsChangedSince && checkpoint.bytes <= config.checkpoint.minBytes &&
        now - lastCheckpointAt >= Duration.toMillis(config.checkpoint.interval))
    if (!due) return
    writing = true
    if (flights.length > 0) checkpointDue = true
    else snapshots.unsafeOffer(takeSnapshot())
  }

  /** Deletes the entries covered by the newest checkpoint that has stood for the grace. */
  const collect = (now: number) =>
    Effect.suspend(() => {
      let upTo: number | undefined
      while (covered.length > 1 && covered[1]!.at <= now - graceMs) covered.shift()
      if (covered[0]!.at <= now - graceMs) upTo = covered[0]!.position
      if (upTo === undefined || upTo === 0) return Effect.void
      return log.collect(upTo).pipe(
        Effect.tap((deleted) => Metric.incrementBy(Metrics.logEntriesCollected, deleted)),
        Effect.catchAll((error) => Effect.logWarning("could not collect old log entries; trying again later", error))
      )
    })

  /** The store's least gap between writes to one object (GCS: 1 s) applies to queue.json alone now. */
  const minGapMs = Duration.toMillis(cas.minWriteInterval)
  let lastCheckpointWrite = 0

  /**
   * queue.json is not at the version this broker last read or wrote. A follower replays the log
   * without reading queue.json again, so after a takeover it still holds the version from before
   * the earlier leader's last checkpoint. A checkpoint covering less than the snapshot is such an
   * earlier one (a newer leader's covers its takeover entry, past every entry of ours): write
   * over it. Anything else is another broker's, and stays.
   */
  const overOlder = (snapshot: Snapshot, conflict: CasConflict) =>
    cas.head.pipe(
      Effect.flatMap((head): Effect.Effect<string, CommitError> =>
        Option.isSome(head) && head.value.position !== undefined && head.value.position < snapshot.position
          ? cas.commit(snapshot.body.parts, head.value.version, snapshot.commitId, snapshot.metadata)
          : Effect.fail(conflict)
      )
    )

  const writeCheckpoint = (snapshot: Snapshot) =>
    Effect.gen(function*() {
      const wait = lastCheckpointWrite + minGapMs - (yield* Clock.currentTimeMillis)
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      const started = yield* Clock.currentTimeMillis
      lastCheckpointWrite = started
      const version = yield* cas.commit(snapshot.body.parts, checkpoint.version, snapshot.commitId, snapshot.metadata)
        .pipe(
          Effect.catchTag("CasConflict", (conflict) => overOlder(snapshot, conflict))
        )
      const now = yield* Clock.currentTimeMillis
      // A follower's reload may have moved it meanwhile; only a newer position replaces it.
      if (snapshot.position >= checkpoint.position) {
        checkpoint = { version, position: snapshot.position, bytes: snapshot.body.length }
      }
      entriesSince -= snapshot.entries
      logBytesSince -= snapshot.logBytes
      jobsChangedSince = entriesSince > 0 && jobsChangedSince
      lastCheckpointAt = now
      covered.push({ position: snapshot.position, at: now })
      yield* Metric.increment(Metrics.checkpoints)
      yield* Metric.incrementBy(Metrics.bytesWritten, snapshot.body.length)
      yield* Metric.set(Metrics.stateBytes, snapshot.body.length)
      yield* Metric.update(Metrics.checkpointLatency, now - started)
      yield* collect(now)
    }).pipe(
      Effect.catchAll((error: CommitError) =>
        error._tag === "CasConflict"
          // Another broker wrote one: it leads now, and this broker learns so at its next append.
          ? Effect.logWarning("another broker wrote the checkpoint; not overwriting it")
          : Effect.logWarning("could not write the checkpoint; trying again after the next commit", error)
      ),
      Effect.ensuring(Effect.sync(() => void (writing = false))),
      Effect.withSpan("Replica.checkpoint", { attributes: { position: snapshot.position }, captureStackTrace: false })
    )

  /** One checkpoint write at a time: the background writer's and `checkpoint`'s. */
  const writer = yield* Effect.makeSemaphore(1)

  yield* Queue.take(snapshots).pipe(
    Effect.flatMap((snapshot) => writer.withPermits(1)(writeCheckpoint(snapshot))),
    Effect.forever,
    Effect.annotateLogs({ module: "Replica" }),
    Effect.forkScoped,
    Effect.interruptible
  )

  // After a checkpoint in flight, one of the durable state as it is now.
  const checkpointNow: Effect.Effect<void> = writer.withPermits(1)(
    lock.withPermits(1)(Effect.sync(takeSnapshot)).pipe(Effect.flatMap(writeCheckpoint))
  )

  // ------------------------------------------------------------------ appends

  /** Nothing is in flight, so the state is the durable state: waiting readers and a due checkpoint take it now. */
  const quiet = () => {
    for (const run of waiting.splice(0)) run()
    if (checkpointDue) {
      checkpointDue = false
      snapshots.unsafeOffer(takeSnapshot())
    }
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
          if (covers !== undefined && covers > covered[covered.length - 1]!.position) {
            covered.push({ position: covers, at: clock.unsafeCurrentTimeMillis() })
          }
          return true
        }
        return false
      })
    )

  /** Someone else's entry holds our position: was it our own late append, or another leader's? */
  const taken = (leaderId: string, entry: LogEntry | undefined): Effect.Effect<never, AppendError> =>
    Effect.gen(function*() {
      if (entry !== undefined && entry.epoch === state.epoch && entry.commitId.startsWith(`${leaderId}:`)) {
        yield* apply(entry)
        return yield* new Reapply()
      }
      yield* replayLog.pipe(
        Effect.catchAll((error) => Effect.logWarning("could not catch up after being deposed", error))
      )
      return yield* new Deposed({ leader: state.leader })
    })

  /** The store calls of one append, in a fiber of their own: they change nothing but the store (and what a checkpoint covers). */
  const write = (flight: Flight, body: Encoded, meta: Record<string, string>): Effect.Effect<Written, WriteError> =>
    flight.legacy
      ? cas.commit(body.parts, checkpoint.version, flight.commitId, meta).pipe(
        Effect.map((version): Written => {
          checkpoint = { version, position: flight.position, bytes: body.length }
          legacy = false
          covered.push({ position: flight.position, at: clock.unsafeCurrentTimeMillis() })
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
        return reload.pipe(Effect.zipRight(Effect.suspend(() => Effect.fail(new Deposed({ leader: state.leader })))))
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
    Effect.gen(function*() {
      const written = yield* flight.written.await
      if (flight.voided !== undefined) return yield* flight.voided
      if (flights[0] !== flight) return yield* Effect.dieMessage("appends settled out of order")
      flights.shift()
      if (Exit.isSuccess(written) && written.value._tag === "Landed") {
        lastSentAt = flight.sentAt
        durableStats = flight.stats
        const events = flight.legacy
          ? s.committed(flight.last, flight.commitId, flight.bytes)
          : s.committed(flight.last, flight.commitId)
        entriesSince++
        logBytesSince += flight.bytes
        jobsChangedSince ||= events.length > 0
        yield* Metric.incrementBy(Metrics.bytesWritten, flight.bytes)
        maybeCheckpoint(clock.unsafeCurrentTimeMillis(), flight.kind !== "batch")
        if (flights.length === 0) quiet()
        return { result, events, bytes: flight.bytes, encodeMs }
      }
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
    }).pipe(Effect.uninterruptible)

  const scope = yield* Effect.scope

  const send = <A>(leaderId: string, kind: EntryKind, mutate: (state: QueueState) => A): Effect.Effect<Sent<A>> =>
    Effect.gen(function*() {
      const written = new WriteOutcome()
      // From here to the fork nothing yields: no other change or read sees the state half-done.
      const s = state
      if (flights.length === 0) durableStats = s.stats()
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
        return yield* Effect.die(defect)
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
      yield* write(flight, body, meta).pipe(
        Effect.exit,
        Effect.map((exit) => written.complete(exit)),
        Effect.uninterruptible,
        Effect.forkIn(scope)
      )
      return {
        onWritten: (callback) => written.onDone(callback),
        outcome: settle(flight, s, result, encodeMs)
      }
    })

  const append = <A>(leaderId: string, kind: EntryKind, mutate: (state: QueueState) => A) =>
    Effect.uninterruptible(Effect.flatMap(send(leaderId, kind, mutate), (sent) => sent.outcome))

  const canSendBehind = () => {
    const front = flights[0]
    return config.appendsInFlight > 1 && flights.length === 1 && front!.fresh && front!.kind === "batch" &&
      !front!.legacy &&
      waiting.length === 0 && !checkpointDue
  }

  const read = <A>(f: (state: QueueState) => A): Effect.Effect<A> =>
    // Decided when it runs, not when it is built (a read built once and run many times).
    Effect.suspend(() =>
      flights.length === 0 ? Effect.sync(() => f(state)) : Effect.async<A>((resume) => {
        // Run at the quiet moment itself: a fiber resumed later could find the next batch applied.
        waiting.push(() => {
          try {
            const value = f(state)
            resume(Effect.succeed(value))
          } catch (defect) {
            resume(Effect.die(defect))
          }
        })
      })
    )

  return Replica.of({
    lock,
    current: () => state,
    version: () => checkpoint.version,
    read,
    stats: () => (flights.length > 0 && durableStats !== undefined ? durableStats : state.stats()),
    send,
    canSendBehind,
    append,
    catchUp: lock.withPermits(1)(catchUp),
    checkpoint: checkpointNow
  })
})

export const layer: Layer.Layer<Replica, LoadError | CommitError, Cas | Log | EngineConfig> = Layer.scoped(
  Replica,
  make
)

/**
 * The state the store holds now: the checkpoint with every entry after it replayed (None when
 * there is no queue.json). Writes nothing: for tools, the chaos run's final check and tests.
 */
export const recover = (limits = defaultLimits): Effect.Effect<Option.Option<QueueState>, CatchUpError, Cas | Log> =>
  Effect.gen(function*() {
    const cas = yield* Cas
    const log = yield* Log
    for (;;) {
      const loaded = yield* cas.load
      if (Option.isNone(loaded)) return Option.none()
      const state = QueueState.fromFile(loaded.value.file, loaded.value.bytes, limits, loaded.value.kept)
      if (loaded.value.file.format < firstLogFormat) return Option.some(state)
      for (;;) {
        const entries = yield* log.readFrom(state.seq + 1, maxCatchUp)
        for (const entry of entries) {
          const problem = state.replay(entry)
          if (problem !== undefined) return yield* new StateCorrupt({ key: logKey(entry.position), reason: problem })
        }
        // Only an empty read means the next entry is absent (a refused read can cut one short).
        if (entries.length === 0) break
      }
      // A newer checkpoint means the entries after ours may have been collected while we read: again.
      const head = yield* cas.head
      if (Option.isNone(head) || head.value.position === undefined || head.value.position <= state.seq) {
        return Option.some(state)
      }
    }
  })
