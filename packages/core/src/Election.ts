/**
 * Who leads (docs/ha.md; docs/architecture.md, "Election"). A follower replays the log and takes
 * over when the leader released the queue, or when it has seen no new entry for the TTL on its
 * own monotonic clock — it never compares another machine's timestamps with its own. A takeover
 * creates the next log entry with a new epoch, so at most one of several racing followers wins,
 * and a deposed leader's next append finds its position taken. The leader's renewals are
 * GroupCommit's (it appends at least every TTL/3).
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
import { leaderUrlKey } from "./Cas.js"
import { EngineConfig } from "./EngineConfig.js"
import { Replica } from "./Replica.js"

export type Role =
  | { readonly _tag: "Follower"; readonly leader: Leader | null; readonly epoch: number }
  | { readonly _tag: "Leader"; readonly epoch: number; readonly since: number }

export interface ElectionShape {
  /** Fresh per process, so two processes never pass for one another. */
  readonly id: string
  readonly url: string
  readonly role: Effect.Effect<Role>
  /** `role` as it stands, read without an effect: for a caller that answers by callback (`GroupCommit.claimWaitingWith`). */
  readonly roleNow: () => Role
  readonly roleChanges: Stream.Stream<Role>
  /** The leader's URL as this broker knows it (its own when it leads). */
  readonly leaderUrl: Effect.Effect<string | null>
  /** `leaderUrl`, read without an effect. */
  readonly leaderUrlNow: () => string | null
  /** GroupCommit found its position taken: the replica now follows the new leader; become its follower. */
  readonly stepDown: Effect.Effect<void>
  /** A clean handoff was written: stop leading without waiting to be deposed. */
  readonly resigned: Effect.Effect<void>
  /**
   * Stop leading without a write (this broker cannot commit): name no leader, and take the
   * queue again only by the followers' rules, after a TTL in which another broker may take it.
   */
  readonly abdicate: Effect.Effect<void>
}

export class Election extends Context.Tag("@osqueue/core/Election")<Election, ElectionShape>() {}

/**
 * The leader's URL as queue.json's metadata names it (null when none leads, or it released the
 * queue): how a client given the store location finds the leader without asking a broker. Each
 * takeover and release writes a checkpoint at once, so the name is current within a write.
 */
export const leaderFromStore = (key = "queue.json"): Effect.Effect<string | null, ReadError, ObjectStore> =>
  Effect.flatMap(ObjectStore, (store) => store.head(key)).pipe(
    Effect.map((head) => {
      const url = Option.isSome(head) ? head.value.metadata[leaderUrlKey] : undefined
      return url === undefined || url === "" ? null : url
    }),
    Effect.withSpan("Election.leaderFromStore")
  )

const followerOf = (leader: Leader | null, epoch: number): Role => ({ _tag: "Follower", leader, epoch })

export const make = Effect.gen(function*() {
  const replica = yield* Replica
  const config = yield* EngineConfig
  const id = `${config.advertisedUrl.replace(/^\w+:\/\//, "")}#${crypto.randomUUID().slice(0, 8)}`
  const url = config.advertisedUrl
  const ttlNanos = BigInt(Duration.toMillis(config.electionTtl)) * 1_000_000n
  const following = () => {
    const state = replica.current()
    return followerOf(state.leader, state.epoch)
  }

  const role = yield* SubscriptionRef.make<Role>(following())
  /** The role as last set: `roleNow` reads it without an effect. */
  let latest = yield* SubscriptionRef.get(role)
  const setRole = (next: Role) =>
    Effect.suspend(() => {
      latest = next
      return SubscriptionRef.set(role, next)
    })
  let lastChange = yield* Clock.currentTimeNanos
  // Set by a clean handoff, which only a broker that is stopping makes: from then on it never
  // leads again. (Its silence clock had not moved while it led, so its next poll used to judge
  // the queue silent for a TTL and take it back: docs/ha.md, "Clean handoff".)
  let resigned = false
  /** After an abdication: no takeover before this (monotonic ns), whatever the log says. */
  let quietUntil = 0n

  const takeover = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const previous = replica.current().leader
    const leader: Leader = { id, url, since: now }
    yield* replica.append(id, "epoch", (state) => state.takeover(leader, now))
    yield* setRole({ _tag: "Leader", epoch: replica.current().epoch, since: now })
    yield* Effect.logInfo("took over as leader").pipe(
      Effect.annotateLogs({
        epoch: replica.current().epoch,
        position: replica.current().seq,
        previous: previous?.url ?? "none"
      })
    )
  }).pipe(
    Effect.catchTags({
      // Someone else appended first (another follower's takeover, or the leader renewing).
      Deposed: () => Clock.currentTimeNanos.pipe(Effect.map((nanos) => void (lastChange = nanos))),
      Reapply: () => Clock.currentTimeNanos.pipe(Effect.map((nanos) => void (lastChange = nanos)))
    }),
    Effect.withSpan("Election.takeover")
  )

  const watch = Effect.gen(function*() {
    if (resigned || latest._tag === "Leader") return
    if (yield* replica.catchUp) {
      lastChange = yield* Clock.currentTimeNanos
      yield* setRole(following())
    }
    const leader = replica.current().leader
    const now = yield* Clock.currentTimeNanos
    if (now < quietUntil) return
    const silentFor = now - lastChange
    // Our own release means we are shutting down: leave it to the others.
    const released = leader?.released === true && leader.id !== id
    // The log names us, yet we follow: a takeover whose answer was lost and judged failed.
    // Nobody else will take over for a TTL, so take it (again, with a new epoch) now.
    const ours = leader !== null && leader.id === id && leader.released !== true
    if (leader === null || released || ours || silentFor >= ttlNanos) yield* replica.lock.withPermits(1)(takeover)
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("follower could not read the queue", cause)))

  yield* watch.pipe(
    Effect.repeat(Schedule.spaced(config.pollInterval)),
    Effect.annotateLogs({ module: "Election", broker: url }),
    Effect.forkScoped,
    Effect.interruptible
  )

  const leaderUrlNow = (): string | null => {
    if (latest._tag === "Leader") return url
    // Named but not leading (released, abdicated, or a takeover whose answer was lost): nobody to send clients to yet.
    const leader = latest.leader
    return leader === null || leader.released === true || leader.id === id ? null : leader.url
  }

  return Election.of({
    id,
    url,
    role: Effect.sync(() => latest),
    roleNow: () => latest,
    roleChanges: role.changes,
    leaderUrl: Effect.sync(leaderUrlNow),
    leaderUrlNow,
    stepDown: Effect.gen(function*() {
      lastChange = yield* Clock.currentTimeNanos
      yield* setRole(following())
      yield* Effect.logWarning("stepped down: another broker leads").pipe(
        Effect.annotateLogs({ epoch: replica.current().epoch, leader: replica.current().leader?.url ?? "none" })
      )
    }),
    abdicate: Effect.gen(function*() {
      lastChange = yield* Clock.currentTimeNanos
      quietUntil = lastChange + ttlNanos
      yield* setRole({ _tag: "Follower", leader: null, epoch: replica.current().epoch })
    }),
    resigned: Effect.suspend(() => {
      resigned = true
      return setRole(following())
    })
  })
})

export const layer: Layer.Layer<Election, never, Replica | EngineConfig> = Layer.scoped(Election, make)
