/**
 * The leader's checkpoints and the log's garbage (docs/architecture.md, "Checkpoints" and
 * "Garbage"): now and then the durable state is written whole to queue.json, in the background
 * and never in a commit's way, and the log entries a checkpoint has covered for longer than a
 * grace (two TTLs) are deleted, so that a deposed leader's late entry is never taken for a live
 * one (docs/ha.md, "The log and the fence"). How queue.json is encoded is `checkpoint.ts`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { CasConflict, CasShape, CommitError } from "../Cas.js"
import type { EngineSettings } from "../EngineConfig.js"
import type { LogShape } from "../Log.js"
import * as Metrics from "../Metrics.js"
import type { Encoded } from "../QueueState.js"
import { type Copy, metadata } from "./catchUp.js"

export interface CheckpointWriter {
  /**
   * After a durable append of `bytes`: counts what the log holds beyond the checkpoint, and
   * hands a snapshot to the writer when one is due (`force`: whatever the policy says), or
   * marks it due once `inFlight` appends settle.
   */
  readonly appended: (bytes: number, jobsChanged: boolean, force: boolean, inFlight: boolean) => void
  /** Nothing is in flight, so the state is the durable state: a checkpoint that waited for this takes its snapshot. */
  readonly quiet: () => void
  /** Whether a checkpoint waits for the appends in flight to settle. */
  readonly due: () => boolean
  /** A checkpoint covers `position` from now on (one this broker converted, or another broker's the fence saw), unless a newer one is known. */
  readonly covers: (position: number) => void
  /** Writes a checkpoint of the durable state now and waits for it (after one in flight). */
  readonly writeNow: Effect.Effect<void>
}

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

/** Starts the background writer in `Scope`. `lock` is the replica's: a snapshot is taken under it. */
export const make = (options: {
  readonly cas: CasShape
  readonly log: LogShape
  readonly config: EngineSettings
  readonly copy: Copy
  readonly lock: Effect.Semaphore
  /** The checkpoint the copy was loaded from (or created), and when. */
  readonly loaded: { readonly position: number; readonly at: number }
}): Effect.Effect<CheckpointWriter, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { cas, config, copy, lock, log } = options
    const graceMs = 2 * Duration.toMillis(config.electionTtl)
    const clock = yield* Effect.clock
    // The engine's labels (a named queue's), for the gauge set outside an effect.
    const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)

    // What the log holds beyond the checkpoint, for the checkpoint policy.
    let entriesSince = 0
    let logBytesSince = 0
    let jobsChangedSince = false
    let lastCheckpointAt = options.loaded.at
    let writing = false
    /** A checkpoint is due but appends are in flight: its snapshot waits for the quiet moment after them. */
    let checkpointDue = false
    /** Checkpoints this broker wrote or loaded, oldest first: entries they cover are collected after the grace. */
    const covered: Array<{ readonly position: number; readonly at: number }> = [options.loaded]

    const snapshots = yield* Queue.sliding<Snapshot>(1)

    const takeSnapshot = (): Snapshot => {
      const state = copy.state
      return {
        body: state.encodeParts(state.seq, state.commitId),
        position: state.seq,
        commitId: state.commitId,
        metadata: metadata(state, state.seq),
        entries: entriesSince,
        logBytes: logBytesSince
      }
    }

    const appended = (bytes: number, jobsChanged: boolean, force: boolean, inFlight: boolean) => {
      entriesSince++
      logBytesSince += bytes
      jobsChangedSince ||= jobsChanged
      if (writing) return
      const now = clock.unsafeCurrentTimeMillis()
      // The interval bounds how stale a small checkpoint gets. One past minBytes waits for the
      // log to write as much as it would: rewritten every interval, a queue of a million jobs
      // (365 MB) cost 17 KB per job drained at 200 jobs/s (docs/performance.md).
      const due = force ||
        entriesSince >= config.checkpoint.entries ||
        logBytesSince >= Math.max(config.checkpoint.minBytes, copy.checkpoint.bytes) ||
        (jobsChangedSince && copy.checkpoint.bytes <= config.checkpoint.minBytes &&
          now - lastCheckpointAt >= Duration.toMillis(config.checkpoint.interval))
      if (!due) return
      writing = true
      Metrics.checkpointWriting.unsafeUpdate(1, labels)
      if (inFlight) checkpointDue = true
      else snapshots.unsafeOffer(takeSnapshot())
    }

    const quiet = () => {
      if (checkpointDue) {
        checkpointDue = false
        snapshots.unsafeOffer(takeSnapshot())
      }
    }

    const covers = (position: number) => {
      if (position > covered[covered.length - 1]!.position) {
        covered.push({ position, at: clock.unsafeCurrentTimeMillis() })
      }
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
        const version = yield* cas.commit(
          snapshot.body.parts,
          copy.checkpoint.version,
          snapshot.commitId,
          snapshot.metadata
        ).pipe(
          Effect.catchTag("CasConflict", (conflict) => overOlder(snapshot, conflict))
        )
        const now = yield* Clock.currentTimeMillis
        // A follower's reload may have moved it meanwhile; only a newer position replaces it.
        if (snapshot.position >= copy.checkpoint.position) {
          copy.checkpoint = { version, position: snapshot.position, bytes: snapshot.body.length }
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
        Effect.ensuring(Effect.sync(() => {
          writing = false
          Metrics.checkpointWriting.unsafeUpdate(0, labels)
        })),
        Effect.withSpan("Replica.checkpoint", { attributes: { position: snapshot.position }, captureStackTrace: false })
      )

    /** One checkpoint write at a time: the background writer's and `writeNow`'s. */
    const writer = yield* Effect.makeSemaphore(1)

    yield* Queue.take(snapshots).pipe(
      Effect.flatMap((snapshot) => writer.withPermits(1)(writeCheckpoint(snapshot))),
      Effect.forever,
      Effect.annotateLogs({ module: "Replica" }),
      Effect.forkScoped,
      Effect.interruptible
    )

    // After a checkpoint in flight, one of the durable state as it is now.
    const writeNow: Effect.Effect<void> = writer.withPermits(1)(
      lock.withPermits(1)(Effect.sync(takeSnapshot)).pipe(Effect.flatMap(writeCheckpoint))
    )

    return { appended, quiet, due: () => checkpointDue, covers, writeNow }
  })
