/**
 * The engine (GroupCommit + Election over Replica, Cas and Log) over a real in-memory store, with TestClock driving
 * every time rule: lease expiry, delay, backoff, takeover and the grace leases get after it.
 * Two engines share one store to play two brokers.
 */
import { describe, expect, it } from "@effect/vitest"
import { LogEntry, Metrics } from "@osqueue/core"
import { FaultyStore, MemoryStore, type ObjectStoreShape, OutcomeUnknown, StoreUnavailable } from "@osqueue/storage"
import type { EnqueueOptions, OsqueueError } from "@osqueue/types"
import { Deferred, Duration, Effect, Either, Exit, Metric, Option, Scope, TestClock } from "effect"
import { durable } from "./fixtures/durable.js"
import { advance, settle, type StartedEngine, startEngine, startLeaderAndFollower } from "./fixtures/engine.js"

type Engine = StartedEngine

const job = (type: string, extra: Partial<EnqueueOptions> = {}): EnqueueOptions =>
  ({ type, ...extra }) as EnqueueOptions

const enqueue = (engine: Engine, options: EnqueueOptions) =>
  engine.commit.submit({ _tag: "Enqueue", jobs: [options] }).pipe(Effect.map((jobs) => jobs[0]!))

const claim = (engine: Engine, extra: { types?: Array<string>; leaseMs?: number } = {}) =>
  engine.commit.submit({ _tag: "Claim", workerId: "w1", max: 1, ...extra })

const errorTag = <A>(effect: Effect.Effect<A, OsqueueError>) => effect.pipe(Effect.flip, Effect.map((e) => e._tag))

const single = Effect.gen(function*() {
  const store = yield* MemoryStore.make
  const engine = yield* startEngine(store, "http://a:8080")
  yield* advance(0)
  return engine
})

describe("engine", () => {
  it.scoped("a lone broker takes the empty queue and commits what it answers", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      expect((yield* engine.election.role)._tag).toBe("Leader")
      const created = yield* settle(enqueue(engine, job("email", { payload: { to: "x" } })))
      // acknowledged means durable: a fresh read of the object has it
      const loaded = Option.getOrThrow(yield* durable(store))
      expect(loaded.file.jobs.map((j) => j.id)).toEqual([created.id])
      expect(loaded.file.epoch).toBe(1)
      expect(loaded.file.leader?.url).toBe("http://a:8080")
    }))

  it.scoped("a commit's metrics carry the labels the engine was started under (a named queue's)", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const engine = yield* startEngine(store, "http://a:8080").pipe(Effect.tagMetrics("queue", "labelled"))
      yield* advance(0)
      yield* settle(enqueue(engine, job("email")))
      const commits = yield* Metric.value(Metric.tagged(Metrics.commits, "queue", "labelled"))
      expect(commits.count).toBeGreaterThan(0)
      for (const histogram of [Metrics.batchSize, Metrics.commitLatency, Metrics.encodeLatency]) {
        expect((yield* Metric.value(Metric.tagged(histogram, "queue", "labelled"))).count).toBeGreaterThan(0)
      }
    }))

  it.scoped("onEvents tells a listener each durable commit's events in order, past one that throws, until its scope closes", () =>
    Effect.gen(function*() {
      const engine = yield* single
      const told: Array<string> = []
      const listening = yield* Scope.make()
      yield* engine.commit.onEvents(() => {
        throw new Error("a listener's bug")
      })
      yield* engine.commit.onEvents((events) => told.push(...events.map((e) => `${e.kind} ${e.jobId}`))).pipe(
        Scope.extend(listening)
      )
      const created = yield* settle(enqueue(engine, job("email")))
      const claimed = yield* settle(claim(engine))
      yield* settle(engine.commit.submit({ _tag: "Complete", token: claimed[0]!.token }))
      expect(told).toEqual([`enqueued ${created.id}`, `claimed ${created.id}`, `completed ${created.id}`])
      yield* Scope.close(listening, Exit.void)
      yield* settle(enqueue(engine, job("email")))
      expect(told).toHaveLength(3)
    }))

  it.scoped("osqueue_checkpoint_writing is 1 from a checkpoint's being due until it lands, then 0", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const landing = yield* Deferred.make<void>()
      let held = false
      const store: ObjectStoreShape = {
        ...memory,
        put: (key, body, condition, options) =>
          held && key.endsWith("queue.json")
            ? Effect.zipRight(Deferred.await(landing), memory.put(key, body, condition, options))
            : memory.put(key, body, condition, options)
      }
      const engine = yield* startEngine(store, "http://a:8080", {
        checkpoint: { entries: 1, minBytes: 1 << 30, interval: Duration.hours(1) }
      }).pipe(Effect.tagMetrics("queue", "checkpointed"))
      yield* advance(0)
      const writing = Metric.tagged(Metrics.checkpointWriting, "queue", "checkpointed")
      expect((yield* Metric.value(writing)).value).toBe(0)
      held = true
      yield* settle(enqueue(engine, job("email")))
      for (let i = 0; i < 5; i++) yield* advance(0)
      expect((yield* Metric.value(writing)).value).toBe(1)
      yield* Deferred.succeed(landing, undefined)
      for (let i = 0; i < 5; i++) yield* advance(0)
      expect((yield* Metric.value(writing)).value).toBe(0)
    }))

  it.scoped("a lease that is not renewed expires and counts as a failed attempt", () =>
    Effect.gen(function*() {
      const engine = yield* single
      const created = yield* settle(
        enqueue(engine, job("t", { maxAttempts: 2, backoff: { _tag: "fixed", delayMs: 60_000 } }))
      )
      const [claimed] = yield* settle(claim(engine, { leaseMs: 5_000 }))
      expect(claimed!.job.id).toBe(created.id)
      yield* advance(4_000)
      expect((yield* engine.commit.read((s) => s.get(created.id)))?.state).toBe("running")
      // the idle leader's renewal commits run the tick: the lease expires without any request
      yield* advance(2_000)
      const after = yield* engine.commit.read((s) => s.get(created.id))
      expect(after?.state).toBe("failed-waiting-retry")
      expect(after?.lastError).toMatch(/lease expired/)
      expect(yield* errorTag(settle(engine.commit.submit({ _tag: "Complete", token: claimed!.token })))).toBe(
        "LeaseLost"
      )
    }))

  it.scoped("a delayed job is claimable from its runAt, not before", () =>
    Effect.gen(function*() {
      const engine = yield* single
      yield* settle(enqueue(engine, job("later", { delayMs: 10_000 })))
      expect(yield* settle(claim(engine))).toEqual([])
      yield* advance(9_000)
      expect(yield* settle(claim(engine))).toEqual([])
      yield* advance(1_000)
      expect((yield* settle(claim(engine))).length).toBe(1)
    }))

  it.scoped("a failed job waits its backoff, then runs again, then goes to the dead-letter list", () =>
    Effect.gen(function*() {
      const engine = yield* single
      const backoff = { _tag: "fixed", delayMs: 2_000 } as const
      const created = yield* settle(enqueue(engine, job("flaky", { maxAttempts: 2, backoff })))
      const [first] = yield* settle(claim(engine))
      yield* settle(engine.commit.submit({ _tag: "Fail", token: first!.token, error: "boom" }))
      expect(yield* settle(claim(engine))).toEqual([])
      yield* advance(2_000)
      const [second] = yield* settle(claim(engine))
      expect(second!.job.attempts).toBe(2)
      const dead = yield* settle(engine.commit.submit({ _tag: "Fail", token: second!.token, error: "boom again" }))
      expect(dead.state).toBe("dead")
      expect(dead.lastError).toBe("boom again")
      expect((yield* engine.commit.read((s) => s.get(created.id)))?.state).toBe("dead")
    }))

  it.scoped("reads never see a batch whose write is still in flight, and do not wait once it settled", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      yield* control.set({ latencyMs: 1_000 })
      const pending = yield* Effect.fork(enqueue(engine, job("slow")))
      yield* advance(10)
      // the enqueue is applied in memory and its write is in flight: a read waits for the outcome
      const queued = engine.commit.read((s) => s.stats().counts.queued)
      const read = yield* Effect.fork(queued)
      yield* advance(10)
      expect(Option.isNone(yield* read.poll)).toBe(true)
      yield* advance(1_000)
      expect(yield* read.await.pipe(Effect.flatMap((e) => e))).toBe(1)
      expect((yield* pending.await)._tag).toBe("Success")
      // the same read, built while the write was in flight (as the broker builds its stats read
      // once), answers at once when it runs after: it used to wait for the next commit
      const again = yield* Effect.fork(queued)
      yield* Effect.yieldNow()
      expect(yield* again.poll).toEqual(Option.some(Exit.succeed(1)))
    }))

  it.scoped("stats answer at once from the last durable state while a write hangs", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      yield* settle(enqueue(engine, job("done")))
      // every store call now takes ten minutes: the next write stays in flight
      yield* control.set({ latencyMs: 600_000 })
      const pending = yield* Effect.fork(enqueue(engine, job("held")))
      yield* advance(10)
      const during = yield* Effect.fork(engine.commit.stats)
      yield* Effect.yieldNow()
      const answered = Option.getOrThrow(yield* during.poll)
      // the held enqueue is applied in memory but not durable: the answer is the state before it
      expect(Exit.map(answered, (stats) => stats.counts.queued)).toEqual(Exit.succeed(1))
      yield* control.set({})
      yield* advance(600_000)
      expect((yield* pending.await)._tag).toBe("Success")
      expect((yield* engine.commit.stats).counts.queued).toBe(2)
    }))

  it.scoped("a failed write fails its whole batch with a retryable error and changes nothing", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      yield* control.set({ writeFailureRate: 1 })
      const results = yield* Effect.all(
        [enqueue(engine, job("a")), enqueue(engine, job("b"))].map((e) => settle(Effect.either(e))),
        { concurrency: "unbounded" }
      )
      for (const r of results) expect(Either.isLeft(r) && r.left._tag).toBe("CommitFailed")
      yield* control.set({})
      expect((yield* engine.commit.read((s) => s.stats())).counts.queued).toBe(0)
      const ok = yield* settle(enqueue(engine, job("c")))
      expect(ok.type).toBe("c")
    }))
})

describe("two brokers on one store", () => {
  it.scoped("a follower redirects writes to the leader and serves reads", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const [a, b] = yield* startLeaderAndFollower(store)
      expect((yield* b.election.role)._tag).toBe("Follower")
      const error = yield* settle(enqueue(b, job("x"))).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "NotLeader", leaderUrl: "http://a:8080" })
      const created = yield* settle(enqueue(a, job("x")))
      yield* advance(1_000) // a follower poll
      expect((yield* b.commit.read((s) => s.get(created.id)))?.id).toBe(created.id)
    }))

  it.scoped("a silent leader is replaced after the TTL; its next write fails with NotLeader; nothing acknowledged is lost", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const faultyA = yield* FaultyStore.wrap(memory, {})
      const a = yield* startEngine(faultyA.store, "http://a:8080")
      yield* advance(0)
      const b = yield* startEngine(memory, "http://b:8080")
      yield* advance(0)

      const acknowledged = yield* settle(
        Effect.forEach(["1", "2", "3"], (n) => enqueue(a, job("t", { idempotencyKey: n })))
      )
      const [held] = yield* settle(claim(a, { leaseMs: 10_000 }))
      const claimedAt = yield* TestClock.currentTimeMillis

      // A can no longer reach the store (a pause, a partition): B sees no new seq for the TTL.
      yield* faultyA.control.set({ writeFailureRate: 1, readFailureRate: 1 })
      yield* advance(2_000)
      expect((yield* b.election.role)._tag).toBe("Follower")
      yield* advance(2_000)
      const roleB = yield* b.election.role
      expect(roleB._tag).toBe("Leader")
      expect(roleB.epoch).toBe(2)

      // A had not committed for a TTL either: it stepped down on its own (the watchdog), and once it
      // reads the store again it sends clients to B.
      expect((yield* a.election.role)._tag).toBe("Follower")
      yield* faultyA.control.set({})
      yield* advance(700)
      const zombie = yield* settle(enqueue(a, job("late"))).pipe(Effect.flip)
      expect(zombie).toMatchObject({ _tag: "NotLeader", leaderUrl: "http://b:8080" })
      expect((yield* a.election.role)._tag).toBe("Follower")

      // Every acknowledged job is there; the running lease survived with a grace of one TTL.
      const states = yield* b.commit.read((s) => acknowledged.map((j) => s.get(j.id)?.state))
      expect(states).toEqual(["running", "queued", "queued"])
      const lease = yield* b.commit.read((s) => s.get(held!.job.id)?.lease)
      expect(lease!.expiresAt).toBeGreaterThanOrEqual(claimedAt + 4_000 + 10_000 - 1_000)
      const beat = yield* settle(b.commit.submit({ _tag: "Heartbeat", token: held!.token }))
      expect(beat.jobId).toBe(held!.job.id)

      // A producer retrying at the new leader with its key gets the same job, not a duplicate.
      const again = yield* settle(enqueue(b, job("t", { idempotencyKey: "2" })))
      expect(again.id).toBe(acknowledged[1]!.id)
    }))

  it.scoped("a leader that stepped down while its loop waited writes nothing once it has replayed the new leader's entries", () =>
    Effect.gen(function*() {
      // The loop checks its role, then waits for commands; a leader paused there (a SIGSTOP, a
      // partition) comes back to a watchdog that steps it down and a poll that replays the new
      // leader's entries, all before the loop wakes. Its next entry would carry the new leader's
      // epoch at a free position: readers would take it for the new leader's own.
      const memory = yield* MemoryStore.make
      const faultyA = yield* FaultyStore.wrap(memory, {})
      const fast = { pollInterval: Duration.millis(50) }
      const a = yield* startEngine(faultyA.store, "http://a:8080", fast)
      yield* advance(0)
      const b = yield* startEngine(memory, "http://b:8080", fast)
      yield* advance(0)
      yield* settle(enqueue(a, job("t")))

      yield* faultyA.control.set({ writeFailureRate: 1 })
      for (let i = 0; i < 200; i++) {
        const role = yield* a.election.role
        if (role._tag === "Follower" && role.leader?.url === "http://b:8080") break
        yield* advance(50)
      }
      expect(yield* a.election.role).toMatchObject({ _tag: "Follower", leader: { url: "http://b:8080" } })
      yield* faultyA.control.set({})
      const takeover = (yield* b.election.role).epoch

      // A's loop wakes (its renewal is due within TTL/3), and B goes on committing.
      yield* advance(1_500)
      const created = yield* settle(enqueue(b, job("after")))
      expect(yield* b.election.role).toMatchObject({ _tag: "Leader", epoch: takeover })
      expect((yield* b.commit.read((s) => s.get(created.id)))?.state).toBe("queued")
      const written = yield* Effect.forEach(
        (yield* memory.list(LogEntry.logPrefix)).filter((key) => LogEntry.positionOf(key) !== undefined),
        (key) => Effect.map(memory.get(key), (got) => LogEntry.decode(key, Option.getOrThrow(got).bytes))
      )
      const ofTakeover = written.map(Either.getOrThrow).filter((entry) => entry.epoch >= takeover)
      expect(ofTakeover.length).toBeGreaterThan(0)
      for (const entry of ofTakeover) expect(entry.commitId).toMatch(/^b:8080#/)
    }))

  it.scoped("a clean shutdown hands over at once, well under the TTL", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const [a, b] = yield* startLeaderAndFollower(store)
      const queued = yield* settle(enqueue(a, job("t")))
      yield* Scope.close(a.scope, Exit.void)
      yield* advance(700) // one follower poll (TTL / 5 = 600 ms), far less than the 3 s TTL
      expect((yield* b.election.role)._tag).toBe("Leader")
      expect((yield* b.commit.read((s) => s.get(queued.id)))?.state).toBe("queued")
    }))

  it.scoped("a broker that handed over never takes the queue back, however long it led", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      // lead for several TTLs (renewals every TTL / 3), then hand over while the poll keeps running
      for (let i = 0; i < 10; i++) yield* advance(1_000)
      expect((yield* engine.election.role)._tag).toBe("Leader")
      const epoch = (yield* engine.election.role).epoch
      yield* settle(engine.commit.handoff)
      expect((yield* engine.election.role)._tag).toBe("Follower")
      for (let i = 0; i < 10; i++) yield* advance(600)
      expect((yield* engine.election.role)._tag).toBe("Follower")
      const stored = Option.getOrThrow(yield* store.head("queue.json")).metadata
      expect(stored["osqueue-epoch"]).toBe(String(epoch))
      expect(stored["osqueue-leader-url"]).toBe("")
    }))

  it.scoped("a leader whose writes hang stops being ready, steps down after a TTL, refuses what waits; a standby takes over", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const a = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      const b = yield* startEngine(memory, "http://b:8080")
      yield* advance(0)
      expect((yield* a.election.role)._tag).toBe("Leader")
      expect((yield* a.commit.health).progressing).toBe(true)
      // every store call of a's now takes a minute (twenty TTLs): its next write is in flight for good.
      // (Not longer: moving TestClock past it runs every poll and renewal of b in between.)
      yield* control.set({ latencyMs: 60_000 })
      const stuck = yield* Effect.fork(enqueue(a, job("stuck")))
      yield* advance(10)
      // sent behind the stuck one (docs/architecture.md, "Appends in flight"), and stuck with it
      const behind = yield* Effect.fork(enqueue(a, job("behind")))
      yield* advance(10)
      const waiting = yield* Effect.fork(enqueue(a, job("waiting")))
      yield* advance(2_100)
      expect((yield* a.commit.health).progressing).toBe(false)
      for (let i = 0; i < 10; i++) yield* advance(200)
      expect((yield* a.election.role)._tag).toBe("Follower")
      expect(yield* errorTag(Effect.flatten(waiting.await))).toBe("NotLeader")
      expect(yield* errorTag(enqueue(a, job("late")))).toBe("NotLeader")
      expect(yield* a.election.leaderUrl).not.toBe("http://a:8080")
      expect((yield* b.election.role)._tag).toBe("Leader")
      // the writes in flight end at last, against b's epoch: refused, never acknowledged (the
      // second lands where b's takeover entry skips, and is void with the first)
      yield* control.set({})
      yield* advance(60_000)
      expect(yield* errorTag(Effect.flatten(stuck.await))).toBe("NotLeader")
      expect(yield* errorTag(Effect.flatten(behind.await))).toBe("NotLeader")
      expect(yield* b.commit.read((s) => s.list({ limit: 10 }).jobs.map((j) => j.type))).toEqual([])
    }))

  it.scoped("a defect in a commit fails its batch alone; the loop goes on committing", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      let explode = false
      const store: ObjectStoreShape = {
        ...memory,
        put: (key, body, condition, options) =>
          explode ? Effect.dieMessage("a bug in the store") : memory.put(key, body, condition, options)
      }
      const engine = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      explode = true
      expect(yield* errorTag(settle(enqueue(engine, job("one"))))).toBe("CommitFailed")
      explode = false
      const next = yield* settle(enqueue(engine, job("two")))
      expect(next.type).toBe("two")
      expect(yield* engine.commit.read((s) => s.stats().counts.queued)).toBe(1)
    }))

  it.scoped("a release the store refuses is retried, so the handoff stays quick", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const a = yield* startEngine(store, "http://a:8080")
      yield* advance(0)
      const b = yield* startEngine(memory, "http://b:8080")
      yield* advance(0)
      // The next two writes are refused: the release's first attempt and its first retry.
      yield* control.set({ writeFailureRate: 1 })
      const closing = yield* Effect.fork(Scope.close(a.scope, Exit.void))
      yield* advance(60)
      yield* control.set({})
      yield* advance(200)
      yield* closing.await
      expect(Option.getOrUndefined(yield* Effect.map(memory.head("queue.json"), Option.map((h) => h.metadata))))
        .toMatchObject({
          "osqueue-leader-url": ""
        })
      yield* advance(700)
      expect((yield* b.election.role)._tag).toBe("Leader")
    }))

  it.scoped("a follower that finds itself named (a takeover whose answer was lost) leads at once", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      // b's store: while `lossy`, a write lands but answers OutcomeUnknown and reads fail, so the
      // read-back cannot tell that the takeover landed.
      let lossy = false
      let loseNextAnswer = true
      const store: ObjectStoreShape = {
        ...memory,
        get: (key) => (lossy ? Effect.fail(new StoreUnavailable({ operation: "get", key })) : memory.get(key)),
        head: (key) => (lossy ? Effect.fail(new StoreUnavailable({ operation: "head", key })) : memory.head(key)),
        put: (key, bytes, condition, options) =>
          Effect.flatMap(memory.put(key, bytes, condition, options), (version) =>
            Effect.suspend(() => {
              if (!loseNextAnswer) return Effect.succeed(version)
              loseNextAnswer = false
              lossy = true
              return Effect.fail(new OutcomeUnknown({ key }))
            }))
      }
      const a = yield* startEngine(memory, "http://a:8080")
      yield* advance(0)
      const b = yield* startEngine(store, "http://b:8080")
      yield* advance(0)
      yield* Scope.close(a.scope, Exit.void)
      for (let i = 0; i < 30 && !lossy; i++) yield* advance(200)
      for (let i = 0; i < 30; i++) yield* advance(500)
      expect((yield* b.election.role)._tag).toBe("Follower")
      const named = Option.getOrThrow(yield* durable(memory)).file.leader?.url
      expect(named).toBe("http://b:8080")
      // The store answers again: at its next poll b sees itself named and takes over, not a TTL later.
      lossy = false
      yield* advance(600)
      expect((yield* b.election.role)._tag).toBe("Leader")
    }))
})
