/**
 * The commit log (docs/architecture.md, "The log"): one object per commit, `log/<position>`,
 * created only if absent, or, where the store keeps logs of its own (the file store's segment
 * files), entry n of its log `log/`. The position is the fence: of all the writers that try to
 * write entry n, exactly one succeeds, and every other reads what it wrote. An append whose
 * outcome is unknown is resolved by reading entry n back: our `commitId` there means it landed.
 */
import {
  type Body,
  bodyLength,
  ObjectStore,
  type ReadError,
  type StoreFailure,
  StoreUnavailable
} from "@osqueue/storage"
import { JobTrace, type StateCorrupt } from "@osqueue/types"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { decode, lastPosition, type LogEntry, logKey, logPrefix, positionOf } from "./LogEntry.js"

/**
 * Another writer created the entry first: here is what it wrote (undefined when it was already
 * collected, which only happens once a checkpoint covers it: this writer is far behind).
 */
export class PositionTaken extends Data.TaggedError("PositionTaken")<{ readonly entry: LogEntry | undefined }> {}

export type AppendError = PositionTaken | StateCorrupt | StoreUnavailable | StoreFailure
export type LogReadError = StateCorrupt | ReadError

export interface LogShape {
  /** Creates entry `position` (which carries `commitId`) if no one has. Never answers with an unknown outcome. */
  readonly append: (position: number, body: Body, commitId: string) => Effect.Effect<void, AppendError>
  /** Entry `position`, or None when it does not exist (not yet, or collected). */
  readonly read: (position: number) => Effect.Effect<Option.Option<LogEntry>, LogReadError>
  /**
   * The entries from `position` on, in order, up to the first absent one (at most `max`),
   * passing over the positions an entry skips. Reads
   * one, then windows of up to 16 at once: a caught-up follower's poll costs one read, and one
   * that is behind catches up at the store's parallelism, not one round trip per entry.
   */
  readonly readFrom: (position: number, max: number) => Effect.Effect<ReadonlyArray<LogEntry>, LogReadError>
  /** Deletes every entry at or below `position`; returns how many it deleted. */
  readonly collect: (position: number) => Effect.Effect<number, ReadError | StoreFailure | StoreUnavailable>
}

export class Log extends Context.Tag("@osqueue/core/Log")<Log, LogShape>() {}

/** Most entries read at once when catching up. */
const readWindow = 16

/** Creates of one entry whose outcome stays unknown before the append fails as unavailable. */
const maxCreates = 3

/** Deletes in flight at once when collecting. */
const deleteConcurrency = 8

export const make = Effect.gen(function*() {
  const store = yield* ObjectStore
  /** Read once: with spans not exported, an append (one per commit) makes none. */
  const tracing = yield* JobTrace.exporting
  const logs = store.appendLogs

  const readObject = (position: number): Effect.Effect<Option.Option<LogEntry>, LogReadError> => {
    const key = logKey(position)
    return store.get(key).pipe(
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeedNone,
        onSome: (stored) => Effect.map(decode(key, stored.bytes), Option.some)
      }))
    )
  }

  // Where the store keeps logs of its own, an entry it does not hold may still be an object: one
  // written before the store kept logs (a directory of an older release), never rewritten there.
  const read = logs === undefined ? readObject : (position: number): Effect.Effect<
    Option.Option<LogEntry>,
    LogReadError
  > =>
    logs.read(logPrefix, position).pipe(
      Effect.flatMap(Option.match({
        onNone: () => readObject(position),
        onSome: (bytes) => Effect.map(decode(logKey(position), bytes), Option.some)
      }))
    )

  /** Writes entry `position` unless someone has: whether this writer's entry holds it (or may: then read it to know). */
  const place = logs === undefined
    ? (position: number, body: Body, _commitId: string) =>
      store.put(logKey(position), body, { ifAbsent: true }).pipe(
        Effect.as(true),
        Effect.catchTag("PreconditionFailed", () => Effect.succeed(false))
      )
    : (position: number, body: Body, commitId: string) =>
      Effect.map(logs.append(logPrefix, position, commitId, body), (tag) => tag === commitId)

  // An unknown outcome: read back until the store answers, then decide by what is there.
  const resolve = (position: number, body: Body, commitId: string, tries: number): Effect.Effect<void, AppendError> =>
    read(position).pipe(
      Effect.retry({
        schedule: Schedule.exponential("50 millis"),
        times: 8,
        while: (e) => e._tag === "StoreUnavailable"
      }),
      Effect.flatMap(Option.match({
        // Not landed: the entry is still ours to create, with the same bytes (a few times at most).
        onNone: () =>
          tries < maxCreates
            ? create(position, body, commitId, tries + 1)
            : Effect.fail(
              new StoreUnavailable({ operation: "append", key: logKey(position), cause: "outcome unknown, every time" })
            ),
        onSome: (entry) => entry.commitId === commitId ? Effect.void : Effect.fail(new PositionTaken({ entry }))
      })),
      Effect.tap(() => Effect.logInfo("resolved an unknown append outcome by reading back")),
      Effect.withSpan("Log.resolve")
    )

  const create = (position: number, body: Body, commitId: string, tries = 1): Effect.Effect<void, AppendError> =>
    place(position, body, commitId).pipe(
      Effect.flatMap((ours) =>
        ours ? Effect.void : read(position).pipe(
          Effect.flatMap(Option.match({
            // Created and collected between our write and this read: someone else's, long gone.
            onNone: () => Effect.fail(new PositionTaken({ entry: undefined })),
            onSome: (entry) => entry.commitId === commitId ? Effect.void : Effect.fail(new PositionTaken({ entry }))
          }))
        )
      ),
      Effect.catchTag("OutcomeUnknown", () => resolve(position, body, commitId, tries))
    )

  const append = (position: number, body: Body, commitId: string) =>
    tracing
      ? create(position, body, commitId).pipe(
        Effect.withSpan("Log.append", { attributes: { position, bytes: bodyLength(body) }, captureStackTrace: false })
      )
      : create(position, body, commitId)

  const readFrom = (position: number, max: number): Effect.Effect<ReadonlyArray<LogEntry>, LogReadError> =>
    Effect.gen(function*() {
      const entries: Array<LogEntry> = []
      /** The next position to take: past the positions an entry skips (docs/architecture.md, "Appends in flight"). */
      let next = position
      // One read when caught up (the usual poll); twice as many at once while every one is there.
      let window = 1
      while (entries.length < max) {
        const from = next
        const size = Math.min(window, max - entries.length)
        const reads = yield* Effect.forEach(
          Array.from({ length: size }, (_, i) => from + i),
          (p) => Effect.either(read(p)),
          { concurrency: size }
        )
        for (const [i, result] of reads.entries()) {
          // A skipped position is never read: what is there (or not) does not matter.
          if (from + i < next) continue
          // What was read before a refused read stands (the next catch-up goes on from there);
          // anything else, or a refusal of the first read, fails the catch-up.
          if (result._tag === "Left") {
            return result.left._tag === "StoreUnavailable" && entries.length > 0 ? entries : yield* result.left
          }
          if (Option.isNone(result.right)) return entries
          entries.push(result.right.value)
          next = lastPosition(result.right.value) + 1
          if (entries.length === max) break
        }
        window = Math.min(window * 2, readWindow)
      }
      return entries
    }).pipe(Effect.withSpan("Log.readFrom", { attributes: { position }, captureStackTrace: false }))

  const collectObjects = (position: number) =>
    store.list(logPrefix).pipe(
      Effect.flatMap((keys) => {
        const doomed = keys.filter((key) => (positionOf(key) ?? Infinity) <= position)
        return Effect.forEach(doomed, (key) => store.delete(key), { concurrency: deleteConcurrency, discard: true })
          .pipe(
            Effect.as(doomed.length)
          )
      }),
      Effect.catchTag("PreconditionFailed", () => Effect.succeed(0)),
      Effect.catchTag(
        "OutcomeUnknown",
        (e) => Effect.fail(new StoreUnavailable({ operation: "delete", key: e.key, cause: e }))
      )
    )

  const collect = (position: number) =>
    (logs === undefined
      ? collectObjects(position)
      : Effect.zipWith(logs.collect(logPrefix, position), collectObjects(position), (a, b) => a + b)).pipe(
        Effect.withSpan("Log.collect", { attributes: { position } })
      )

  return Log.of({ append, read, readFrom, collect })
})

export const layer: Layer.Layer<Log, never, ObjectStore> = Layer.effect(Log, make)
