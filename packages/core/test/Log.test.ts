/**
 * The log and its checkpoints through the engine (docs/architecture.md, "The log"), over a real
 * in-memory store with TestClock: checkpoints every few entries, collection after the grace,
 * conversion of a queue.json from before the log, and a log entry that does not decode.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cas, type GroupCommit, Log, LogEntry, QueueState, Replica } from "@osqueue/core"
import { MemoryStore, ObjectStore, type ObjectStoreShape } from "@osqueue/storage"
import { Duration, Effect, Either, Exit, Layer, Option, Scope } from "effect"
import { durable } from "./fixtures/durable.js"
import { advance, settle, startEngine as start, startLeaderAndFollower } from "./fixtures/engine.js"

const encoder = new TextEncoder()

/** Small checkpoints, so that a few commits write several. */
const smallCheckpoints = { checkpoint: { entries: 5, minBytes: 1 << 30, interval: Duration.hours(1) } }
const startEngine = (store: ObjectStoreShape, url: string) => start(store, url, smallCheckpoints)

const enqueue = (commit: GroupCommit.GroupCommitShape, type: string) =>
  settle(commit.submit({ _tag: "Enqueue", jobs: [{ type }] }))

const positionOf = (store: ObjectStoreShape) =>
  store.head("queue.json").pipe(Effect.map((head) => Number(Option.getOrThrow(head).metadata["osqueue-position"])))

describe("the log", () => {
  it.scoped("each commit is one small entry; checkpoints follow every K entries; covered entries go after the grace", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const a = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      for (let i = 0; i < 12; i++) yield* enqueue(a.commit, "t")
      const seq = yield* a.commit.read((s) => s.seq)
      // One entry per commit (the takeover's and each enqueue's), none collected yet; the
      // takeover's skips the position after it (docs/architecture.md, "Appends in flight").
      expect((yield* store.list("log/")).length).toBe(seq - 1)
      const entry = Option.getOrThrow(yield* store.get(LogEntry.logKey(seq)))
      expect(entry.bytes.length).toBeLessThan(1_000)
      expect(yield* positionOf(store)).toBeGreaterThanOrEqual(10)
      // Past the grace (2 TTLs) the next checkpoint collects what the earlier ones covered.
      yield* advance(7_000)
      for (let i = 0; i < 6; i++) yield* enqueue(a.commit, "t")
      const left = yield* store.list("log/")
      const checkpointed = yield* positionOf(store)
      expect(left.length).toBeLessThan(checkpointed)
      expect(left.every((key) => LogEntry.positionOf(key)! > 10)).toBe(true)
      expect(checkpointed).toBeGreaterThan(15)
      // What the store holds (checkpoint + what is left of the log) is the leader's state.
      const leader = yield* a.commit.read((s) => JSON.parse(s.toJson(s.seq, s.commitId)))
      const stored = Option.getOrThrow(yield* durable(store)).file
      expect(stored.jobs.length).toBe(18)
      expect(stored.seq).toBe(leader.seq)
      expect(stored.totals).toEqual(leader.totals)
    }))

  it.scoped("a follower replays the log and takes over from checkpoint + log with nothing lost", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const [a, b] = yield* startLeaderAndFollower(store, smallCheckpoints)
      for (let i = 0; i < 13; i++) yield* enqueue(a.commit, `t${i % 3}`)
      yield* advance(700)
      // The follower serves reads from what it replayed.
      expect(yield* b.commit.read((s) => s.stats().counts.queued)).toBe(13)
      // a is killed (its scope is never closed: no release); b takes over after the TTL.
      yield* a.election.abdicate
      for (let i = 0; i < 10; i++) yield* advance(600)
      expect((yield* b.election.role)._tag).toBe("Leader")
      expect(yield* b.commit.read((s) => s.stats().counts.queued)).toBe(13)
      expect((yield* enqueue(b.commit, "after"))[0]!.id).toBe("job-14")
    }))

  it.scoped("a job's traceparent survives the log, the checkpoint and a takeover (docs/tracing.md)", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const [a, b] = yield* startLeaderAndFollower(store, smallCheckpoints)
      const traceparentOf = (i: number) => `00-${"ab".repeat(15)}${String(i).padStart(2, "0")}-${"12".repeat(8)}-01`
      // Seven jobs: the first ones end up in a checkpoint (every 5 entries), the last only in the log.
      for (let i = 0; i < 7; i++) {
        yield* settle(a.commit.submit({ _tag: "Enqueue", jobs: [{ type: "t", traceparent: traceparentOf(i) }] }))
      }
      yield* settle(a.commit.submit({ _tag: "Enqueue", jobs: [{ type: "t" }] }))
      expect(yield* positionOf(store)).toBeGreaterThanOrEqual(5)
      yield* advance(700)
      yield* a.election.abdicate
      for (let i = 0; i < 10; i++) yield* advance(600)
      expect((yield* b.election.role)._tag).toBe("Leader")
      const jobs = yield* b.commit.read((s) => s.list({ limit: 100 }).jobs)
      expect(jobs.map((job) => job.traceparent)).toEqual([
        ...Array.from({ length: 7 }, (_, i) => traceparentOf(i)),
        undefined
      ])
      // The worker that claims a job gets it with its traceparent.
      const claimed = yield* settle(b.commit.submit({ _tag: "Claim", workerId: "w", max: 1 }))
      expect(claimed[0]!.job.traceparent).toBe(traceparentOf(0))
    }))

  it.scoped("the interval checkpoints a small queue; one bigger than minBytes waits for the log to write as much", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const a = yield* start(store, "http://a:8080", {
        checkpoint: { entries: 1_000, minBytes: 2_000, interval: Duration.seconds(1) }
      })
      yield* advance(0)
      const tick = (type: string, payload?: unknown) =>
        Effect.zipRight(advance(1_500), settle(a.commit.submit({ _tag: "Enqueue", jobs: [{ type, payload }] })))
      // Small (under 2,000 bytes): a change after the interval brings a checkpoint.
      yield* tick("small")
      const small = yield* positionOf(store)
      expect(small).toBe(yield* a.commit.read((s) => s.seq))
      // A 3 KB job: its entry passes minBytes and is checkpointed; queue.json is now past minBytes.
      yield* tick("big", { pad: "x".repeat(3_000) })
      const big = yield* positionOf(store)
      expect(big).toBe(yield* a.commit.read((s) => s.seq))
      // Small changes after the interval no longer rewrite it, until the log has written as much.
      for (let i = 0; i < 3; i++) yield* tick("small")
      expect(yield* positionOf(store)).toBe(big)
      yield* tick("big", { pad: "x".repeat(4_000) })
      expect(yield* positionOf(store)).toBe(yield* a.commit.read((s) => s.seq))
    }))

  it.scoped("a queue.json from before the log (format 2) is converted by the broker that takes it over", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const old = QueueState.empty()
      old.begin()
      old.apply({ _tag: "Enqueue", jobs: [{ type: "kept" }] }, 1_700_000_000_000, () => "s")
      const text = old.toJson(7, "old:7").replace("\"format\":5", "\"format\":2")
      yield* store.put("queue.json", encoder.encode(text), { ifAbsent: true })
      const a = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      expect((yield* a.election.role)._tag).toBe("Leader")
      const converted = Option.getOrThrow(yield* store.get("queue.json"))
      const file = Either.getOrThrow(Cas.decode(converted.bytes))
      expect(file.format).toBe(5)
      expect(file.seq).toBeGreaterThanOrEqual(8)
      yield* enqueue(a.commit, "new")
      const stored = Option.getOrThrow(yield* durable(store)).file
      expect(stored.jobs.map((job) => job.type)).toEqual(["kept", "new"])
    }))

  it.scoped("a log entry that does not decode is StateCorrupt naming its key; no broker leads on it or overwrites it", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const a = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      yield* enqueue(a.commit, "t")
      const next = (yield* a.commit.read((s) => s.seq)) + 1
      yield* a.election.abdicate
      yield* Scope.close(a.scope, Exit.void)
      const garbage = encoder.encode("{\"format\":1,\"kind\":\"batch\"")
      yield* store.put(LogEntry.logKey(next), garbage, { ifAbsent: true })
      const error = yield* Replica.recover().pipe(
        Effect.provide(Layer.merge(Cas.layer(), Log.layer).pipe(Layer.provide(Layer.succeed(ObjectStore, store)))),
        Effect.flip
      )
      expect(error._tag).toBe("StateCorrupt")
      expect(error.message).toMatch(new RegExp(`^${LogEntry.logKey(next)} is unreadable`))
      const b = yield* startEngine(store, "http://b:8080")
      for (let i = 0; i < 15; i++) yield* advance(600)
      expect((yield* b.election.role)._tag).toBe("Follower")
      expect(Option.getOrThrow(yield* store.get(LogEntry.logKey(next))).bytes).toEqual(garbage)
    }))
})
