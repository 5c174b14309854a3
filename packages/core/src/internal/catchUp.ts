/**
 * How a replica's copy of the queue follows the store (docs/ha.md, "The log and the fence"): the
 * copy itself (the state, and queue.json as this broker last read or wrote it), reading the
 * checkpoint again, and replaying the log's entries onto the state. A follower's poll is a
 * catch-up; a leader catches up when another broker's entry holds its position. `recover` does
 * the same without a broker, for tools.
 */
import { firstLogFormat, StateCorrupt } from "@osqueue/types"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { Cas, type CasShape, epochKey, leaderUrlKey, type Loaded, type LoadError, positionKey } from "../Cas.js"
import { Log, type LogReadError, type LogShape } from "../Log.js"
import { type LogEntry, logKey } from "../LogEntry.js"
import { defaultLimits, type Limits, QueueState } from "../QueueState.js"

export type CatchUpError = LogReadError | LoadError

/** Retries of the first read at start: exponential from 100 ms, each wait at most 2 s, for about 30 s. */
export const startRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.upTo("30 seconds")
)

/** Most entries one catch-up replays before it lets the commit path have the lock again. */
const maxCatchUp = 10_000

/**
 * This broker's copy of the queue: one object shared by the replica's parts (appends,
 * checkpoints, catch-up), changed only by whoever holds the replica's lock, or by a write it sent.
 */
export interface Copy {
  state: QueueState
  /** queue.json as last read or written by this broker (version undefined before one exists). */
  checkpoint: { readonly version: string | undefined; readonly position: number; readonly bytes: number }
  /** True while queue.json predates the log: the next append converts it by writing a checkpoint. */
  legacy: boolean
}

/** The copy that `loaded` (queue.json as just read) makes. */
export const copyOf = (loaded: Loaded, limits: Limits): Copy => ({
  state: QueueState.fromFile(loaded.file, loaded.bytes, limits, loaded.kept),
  checkpoint: { version: loaded.version, position: loaded.file.seq, bytes: loaded.bytes },
  legacy: loaded.file.format < firstLogFormat
})

/** The metadata a checkpoint (or a conversion) at `position` is written with: a HEAD names the leader and the position. */
export const metadata = (s: QueueState, position: number): Record<string, string> => ({
  // A released leader is named by no one: its URL would send clients to a broker that is going.
  [leaderUrlKey]: s.leader !== null && s.leader.released !== true ? s.leader.url : "",
  [epochKey]: String(s.epoch),
  [positionKey]: String(position)
})

export interface CatchUp {
  /** Reads queue.json again and makes the copy of it. */
  readonly reload: Effect.Effect<void, LoadError>
  /** Replays `entry` onto the state; one that does not apply to it is corrupt (docs/ha.md). */
  readonly apply: (entry: LogEntry) => Effect.Effect<void, StateCorrupt>
  /** Replays the entries after the state's position; reloads the checkpoint once if the log has moved past us. */
  readonly replayLog: Effect.Effect<boolean, CatchUpError>
  /** A follower's poll: replays new entries (reloading the checkpoint when they are gone). True when anything was new. */
  readonly catchUp: Effect.Effect<boolean, CatchUpError>
}

export const make = (cas: CasShape, log: LogShape, copy: Copy, limits: Limits): CatchUp => {
  const reload = cas.load.pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.fail(new StateCorrupt({ reason: "queue.json is gone: restore it or start a fresh store" })),
      onSome: (loaded) => Effect.sync(() => void Object.assign(copy, copyOf(loaded, limits)))
    }))
  )

  /**
   * Entries must follow one another: the same epoch, or one more in an epoch entry. Anything
   * else is not the log this state came from — an entry a deposed leader re-created after it
   * was collected (docs/ha.md, "The log and the fence") — and the checkpoint is read again.
   */
  const follows = (entry: LogEntry) =>
    entry.epoch === copy.state.epoch || (entry.kind === "epoch" && entry.epoch === copy.state.epoch + 1)

  const apply = (entry: LogEntry): Effect.Effect<void, StateCorrupt> => {
    const problem = copy.state.replay(entry)
    return problem === undefined
      ? Effect.void
      : Effect.fail(new StateCorrupt({ key: logKey(entry.position), reason: problem }))
  }

  const replayLog: Effect.Effect<boolean, CatchUpError> = Effect.gen(function*() {
    let progressed = false
    for (let pass = 0; pass < 2; pass++) {
      const entries = yield* log.readFrom(copy.state.seq + 1, maxCatchUp)
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
        ? head.value.position > copy.state.seq || (broken && head.value.version !== copy.checkpoint.version)
        : head.value.version !== copy.checkpoint.version
      if (!behind && !broken) return progressed
      if (broken) yield* Effect.logWarning("the log does not follow this replica's state; reading the checkpoint again")
      yield* reload
      progressed = true
      if (copy.legacy) return progressed
    }
    return progressed
  })

  const catchUp: Effect.Effect<boolean, CatchUpError> = Effect.suspend(() => {
    if (!copy.legacy) return replayLog
    // Before the log, queue.json is the whole state: a new version is a new commit.
    return cas.head.pipe(
      Effect.flatMap((head) =>
        Option.isSome(head) && head.value.version !== copy.checkpoint.version
          ? Effect.zipRight(
            reload,
            Effect.suspend(() => (copy.legacy ? Effect.succeed(true) : Effect.as(replayLog, true)))
          )
          : Effect.succeed(false)
      )
    )
  }).pipe(Effect.withSpan("Replica.catchUp"))

  return { reload, apply, replayLog, catchUp }
}

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
