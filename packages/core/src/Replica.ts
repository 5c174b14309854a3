/**
 * This broker's copy of the queue (docs/architecture.md, "The log"; docs/ha.md, "The log and
 * the fence"): the state as of a log position, and the one path by which a change becomes
 * durable — apply, encode what changed as entry n, create `log/<n>`, keep or undo
 * (`internal/appends.ts`). A leader appends; a follower catches up by replaying what the leader
 * appended (`internal/catchUp.ts`). The leader writes the whole state to queue.json (the
 * checkpoint) in the background now and then, and deletes the entries a checkpoint has covered
 * for longer than a grace (`internal/checkpointWriter.ts`).
 *
 * Election (takeover, release) and GroupCommit (every batch) both append through here, one at a
 * time under `lock`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Cas, type CommitError, type LoadError } from "./Cas.js"
import { EngineConfig } from "./EngineConfig.js"
import * as Appends from "./internal/appends.js"
import * as CatchUp from "./internal/catchUp.js"
import type { CatchUpError } from "./internal/catchUp.js"
import * as CheckpointWriter from "./internal/checkpointWriter.js"
import { Log } from "./Log.js"
import { QueueState } from "./QueueState.js"

export { type Appended, type AppendError, Deposed, Reapply, type Sent } from "./internal/appends.js"
export { type CatchUpError, recover } from "./internal/catchUp.js"

/** The state, its appends (`Appends`, which says what each does) and the reads that wait for them. */
export interface ReplicaShape extends Appends.Appends {
  /**
   * Held by whoever changes the state (the commit loop while it has appends in flight, a
   * takeover, a follower's catch-up): one writer at a time.
   */
  readonly lock: Effect.Semaphore
  /** The state as it stands, for synchronous checks (a batch may be applied but not yet durable). */
  readonly current: () => QueueState
  /** The checkpoint's version (undefined before one exists). */
  readonly version: () => string | undefined
  /** A follower's poll: replays new entries (reloading the checkpoint when they are gone). True when anything was new. */
  readonly catchUp: Effect.Effect<boolean, CatchUpError>
  /** Writes a checkpoint of the durable state now and waits for it (a takeover or a release names the leader in it). */
  readonly checkpoint: Effect.Effect<void>
}

export class Replica extends Context.Tag("@osqueue/core/Replica")<Replica, ReplicaShape>() {}

export const make = Effect.gen(function*() {
  const cas = yield* Cas
  const log = yield* Log
  const config = yield* EngineConfig
  const limits = config.limits

  const initial = yield* cas.load.pipe(
    Effect.tapError((error) => Effect.logWarning("could not read queue.json at start; retrying", error)),
    Effect.retry({ schedule: CatchUp.startRetry, while: (error) => error._tag === "StoreUnavailable" })
  )
  const copy = Option.match(initial, {
    onNone: (): CatchUp.Copy => ({
      state: QueueState.empty(limits),
      checkpoint: { version: undefined, position: 0, bytes: 0 },
      legacy: false
    }),
    onSome: (loaded) => CatchUp.copyOf(loaded, limits)
  })
  const lock = yield* Effect.makeSemaphore(1)
  /** The checkpoint loaded covers its position from now: the first one the log's garbage counts. */
  const loaded = { position: copy.checkpoint.position, at: yield* Clock.currentTimeMillis }
  const catchUp = CatchUp.make(cas, log, copy, limits)

  // A new queue: an empty checkpoint at position 0, created only if absent.
  if (Option.isNone(initial)) {
    const body = copy.state.encodeParts(0, "")
    yield* cas.commit(body.parts, undefined, "", CatchUp.metadata(copy.state, 0)).pipe(
      Effect.tap((version) => {
        copy.checkpoint = { version, position: 0, bytes: body.length }
        return Effect.logInfo("created queue.json").pipe(Effect.annotateLogs("key", cas.key))
      }),
      // Another broker created it first: use theirs.
      Effect.catchTag("CasConflict", () => catchUp.reload)
    )
  }

  // Start from the log's end, not the checkpoint's: the queue as it is (who leads) from the
  // first answer on. An entry that does not decode is left to the followers' polls, which keep
  // failing on it: the broker runs, and never leads on it.
  yield* catchUp.catchUp.pipe(
    Effect.retry({ schedule: CatchUp.startRetry, while: (error) => error._tag === "StoreUnavailable" }),
    Effect.catchAll((error) => Effect.logError("could not replay the log at start", error))
  )

  const checkpoints = yield* CheckpointWriter.make({ cas, log, config, copy, lock, loaded })
  const appends = yield* Appends.make({ cas, log, config, copy, catchUp, checkpoints, scope: yield* Effect.scope })

  return Replica.of({
    lock,
    current: () => copy.state,
    version: () => copy.checkpoint.version,
    read: appends.read,
    readIfQuiet: appends.readIfQuiet,
    stats: appends.stats,
    send: appends.send,
    canSendBehind: appends.canSendBehind,
    append: appends.append,
    catchUp: lock.withPermits(1)(catchUp.catchUp),
    checkpoint: checkpoints.writeNow
  })
})

export const layer: Layer.Layer<Replica, LoadError | CommitError, Cas | Log | EngineConfig> = Layer.scoped(
  Replica,
  make
)
