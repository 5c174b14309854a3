/**
 * Who leads (docs/ha.md; docs/architecture.md, "Election"). A follower watches queue.json and takes over when the leader
 * released it, or when it has seen no new commit for the TTL on its own monotonic clock — it
 * never compares another machine's timestamps with its own. A takeover is a CAS write that
 * bumps the epoch, so at most one of several racing followers wins, and a deposed leader's next
 * write fails. The leader's renewals are GroupCommit's (it commits at least every TTL/3).
 */
import { ObjectStore, type ReadError } from "@osqueue/storage"
import type { Leader } from "@osqueue/types"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { Cas, type CommitError, type Loaded, type LoadError } from "./Cas.js"
import { EngineConfig } from "./EngineConfig.js"
import { QueueState } from "./QueueState.js"
import { Replica } from "./Replica.js"

export type Role =
  | { readonly _tag: "Follower"; readonly leader: Leader | null; readonly epoch: number }
  | { readonly _tag: "Leader"; readonly epoch: number; readonly since: number }

export interface ElectionShape {
  /** Fresh per process, so two processes never pass for one another. */
  readonly id: string
  readonly url: string
  readonly replica: Replica
  readonly role: Effect.Effect<Role>
  readonly roleChanges: Stream.Stream<Role>
  /** The leader's URL as this broker knows it (its own when it leads). */
  readonly leaderUrl: Effect.Effect<string | null>
  /** Object metadata written with every commit, so a HEAD finds the leader. */
  readonly metadata: (state: QueueState) => Record<string, string>
  /** GroupCommit found a newer epoch: become a follower of what it read. Caller holds the lock. */
  readonly stepDown: (loaded: Loaded) => Effect.Effect<void>
  /** A clean handoff was written: stop leading without waiting to be deposed. */
  readonly resigned: Effect.Effect<void>
  /**
   * Stop leading without a write (this broker cannot commit): name no leader, and take the
   * queue again only by the followers' rules, after a TTL in which another broker may take it.
   */
  readonly abdicate: Effect.Effect<void>
}

export class Election extends Context.Tag("@osqueue/core/Election")<Election, ElectionShape>() {}

/** Metadata keys written with every commit: a HEAD of queue.json names the leader. */
export const leaderUrlKey = "osqueue-leader-url"
export const epochKey = "osqueue-epoch"

/**
 * The leader's URL as queue.json's metadata names it (null when none leads, or it released the
 * queue): how a client given the store location finds the leader without asking a broker.
 */
export const leaderFromStore = (key = "queue.json"): Effect.Effect<string | null, ReadError, ObjectStore> =>
  Effect.flatMap(ObjectStore, (store) => store.head(key)).pipe(
    Effect.map((head) => {
      const url = Option.isSome(head) ? head.value.metadata[leaderUrlKey] : undefined
      return url === undefined || url === "" ? null : url
    }),
    Effect.withSpan("Election.leaderFromStore")
  )

/** Retries of the first read at start: exponential from 100 ms, each wait at most 2 s, for about 30 s. */
const startRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("2 seconds")),
  Schedule.upTo("30 seconds")
)

const followerOf = (state: QueueState): Role => ({ _tag: "Follower", leader: state.leader, epoch: state.epoch })

export const make = Effect.gen(function*() {
  const cas = yield* Cas
  const config = yield* EngineConfig
  const id = `${config.advertisedUrl.replace(/^\w+:\/\//, "")}#${crypto.randomUUID().slice(0, 8)}`
  const url = config.advertisedUrl
  const ttlNanos = BigInt(Duration.toMillis(config.electionTtl)) * 1_000_000n

  // A released leader is named by no one: its URL would send clients to a broker that is going.
  const metadata = (state: QueueState): Record<string, string> => ({
    [leaderUrlKey]: state.leader !== null && state.leader.released !== true ? state.leader.url : "",
    [epochKey]: String(state.epoch)
  })

  // The object must exist before anyone leads it; creating it is a create-only write.
  // A store that refuses a read for a moment must not stop the broker from starting (found by
  // the chaos run: every broker of a run died on one refused first read).
  const initial = yield* cas.load.pipe(
    Effect.tapError((error) => Effect.logWarning("could not read queue.json at start; retrying", error)),
    Effect.retry({ schedule: startRetry, while: (error) => error._tag === "StoreUnavailable" })
  )
  const replica = new Replica(
    Option.match(initial, {
      onNone: () => QueueState.empty(config.limits),
      onSome: (loaded) => QueueState.fromFile(loaded.file, loaded.bytes, config.limits)
    }),
    Option.match(initial, { onNone: () => undefined, onSome: (loaded) => loaded.version }),
    yield* Effect.makeSemaphore(1),
    cas
  )
  if (Option.isNone(initial)) {
    yield* replica.write(id, metadata, () => undefined).pipe(
      Effect.tap(() => Effect.logInfo("created queue.json").pipe(Effect.annotateLogs("key", cas.key))),
      Effect.catchTag("CasConflict", () =>
        // Another broker created it first: use theirs.
        cas.load.pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.dieMessage("queue.json vanished right after it was created"),
            onSome: (loaded) => Effect.sync(() => replica.replace(QueueState.fromFile(loaded.file, loaded.bytes, config.limits), loaded.version))
          }))
        ))
    )
  }

  const role = yield* SubscriptionRef.make<Role>(followerOf(replica.state))
  let lastChange = yield* Clock.currentTimeNanos
  // Set by a clean handoff, which only a broker that is stopping makes: from then on it never
  // leads again. (Its silence clock had not moved while it led, so its next poll used to judge
  // the queue silent for a TTL and take it back: docs/ha.md, "Clean handoff".)
  let resigned = false
  /** After an abdication: no takeover before this (monotonic ns), whatever the object says. */
  let quietUntil = 0n

  const takeover = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const previous = replica.state.leader
    const leader: Leader = { id, url, since: now }
    yield* replica.write(id, metadata, (state) => state.takeover(leader, now))
    yield* SubscriptionRef.set(role, { _tag: "Leader", epoch: replica.state.epoch, since: now })
    yield* Effect.logInfo("took over as leader").pipe(
      Effect.annotateLogs({ epoch: replica.state.epoch, previous: previous?.url ?? "none" })
    )
  }).pipe(
    Effect.catchTag("CasConflict", () =>
      // Someone else wrote first (another follower's takeover, or the leader renewing).
      Clock.currentTimeNanos.pipe(Effect.map((nanos) => void (lastChange = nanos)))
    ),
    Effect.withSpan("Election.takeover")
  )

  const watch = Effect.gen(function*() {
    if (resigned || (yield* SubscriptionRef.get(role))._tag === "Leader") return
    const version = yield* cas.version
    if (Option.isNone(version)) {
      return yield* Effect.logError("queue.json is gone: refusing to recreate it; restore it or start a fresh store")
    }
    if (version.value !== replica.version) {
      const loaded = yield* cas.load
      if (Option.isSome(loaded)) {
        replica.replace(QueueState.fromFile(loaded.value.file, loaded.value.bytes, config.limits), loaded.value.version)
        lastChange = yield* Clock.currentTimeNanos
        yield* SubscriptionRef.set(role, followerOf(replica.state))
      }
    }
    const leader = replica.state.leader
    const now = yield* Clock.currentTimeNanos
    if (now < quietUntil) return
    const silentFor = now - lastChange
    // Our own release means we are shutting down: leave it to the others.
    const released = leader?.released === true && leader.id !== id
    // The object names us, yet we follow: a takeover whose answer was lost and judged failed.
    // Nobody else will take over for a TTL, so take it (again, with a new epoch) now.
    const ours = leader !== null && leader.id === id && leader.released !== true
    if (leader === null || released || ours || silentFor >= ttlNanos) yield* takeover
  }).pipe(
    replica.lock.withPermits(1),
    Effect.catchAllCause((cause) => Effect.logWarning("follower could not read queue.json", cause))
  )

  yield* watch.pipe(
    Effect.repeat(Schedule.spaced(config.pollInterval)),
    Effect.annotateLogs({ module: "Election", broker: url }),
    Effect.forkScoped,
    Effect.interruptible
  )

  return Election.of({
    id,
    url,
    replica,
    role: SubscriptionRef.get(role),
    roleChanges: role.changes,
    leaderUrl: Effect.map(SubscriptionRef.get(role), (current) => {
      if (current._tag === "Leader") return url
      // Named but not leading (released, abdicated, or a takeover whose answer was lost): nobody to send clients to yet.
      const leader = current.leader
      return leader === null || leader.released === true || leader.id === id ? null : leader.url
    }),
    metadata,
    stepDown: (loaded) =>
      Effect.gen(function*() {
        replica.replace(QueueState.fromFile(loaded.file, loaded.bytes, config.limits), loaded.version)
        lastChange = yield* Clock.currentTimeNanos
        yield* SubscriptionRef.set(role, followerOf(replica.state))
        yield* Effect.logWarning("stepped down: another broker leads").pipe(
          Effect.annotateLogs({ epoch: replica.state.epoch, leader: replica.state.leader?.url ?? "none" })
        )
      }),
    abdicate: Effect.gen(function*() {
      lastChange = yield* Clock.currentTimeNanos
      quietUntil = lastChange + ttlNanos
      yield* SubscriptionRef.set(role, { _tag: "Follower", leader: null, epoch: replica.state.epoch })
    }),
    resigned: Effect.suspend(() => {
      resigned = true
      return SubscriptionRef.set(role, followerOf(replica.state))
    })
  })
})

export const layer: Layer.Layer<Election, LoadError | CommitError, Cas | EngineConfig> =
  Layer.scoped(Election, make)
