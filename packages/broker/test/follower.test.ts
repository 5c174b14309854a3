/**
 * Two brokers on one store: the follower answers mutations with 421 / NotLeader carrying the
 * leader's URL, serves reads from its latest view, and serves writes once it takes over.
 */
import { describe, expect, it } from "@effect/vitest"
import { FaultyStore, MemoryStore } from "@osqueue/storage"
import type { JobId } from "@osqueue/types"
import { Chunk, Effect, Exit, Fiber, Option, Schedule, Scope, Stream } from "effect"
import { awaitLeader, rest, rpcHttp, rpcWs, startBroker } from "./fixtures.js"

describe("follower", () => {
  it.scopedLive("redirects writes with the leader's URL, serves reads, takes over when the leader stops", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make
      const a = yield* startBroker({ store, url: "http://a.test" })
      yield* awaitLeader(a)
      const b = yield* startBroker({ store, url: "http://b.test" })
      expect((yield* b.election.role)._tag).toBe("Follower")

      const created = (yield* rest(a.base, "POST", "/v1/jobs", { type: "t" })).body as { id: JobId }

      // writes: 421 over REST, NotLeader over RPC, with where to go
      const refused = yield* rest(b.base, "POST", "/v1/jobs", { type: "t" })
      expect(refused.status).toBe(421)
      expect(refused.body).toEqual({ _tag: "NotLeader", leaderUrl: "http://a.test" })
      expect((yield* rest(b.base, "POST", "/v1/pause")).status).toBe(421)
      const httpB = yield* rpcHttp(b.base)
      const wsB = yield* rpcWs(b.base)
      expect(yield* httpB.Enqueue({ type: "t" }).pipe(Effect.flip))
        .toMatchObject({ _tag: "NotLeader", leaderUrl: "http://a.test" })
      // a long-poll claim on a follower answers at once rather than waiting
      const start = Date.now()
      expect(yield* wsB.Claim({ workerId: "w", waitMs: 5_000 }).pipe(Effect.flip)).toMatchObject({ _tag: "NotLeader" })
      expect(Date.now() - start).toBeLessThan(1_000)

      // reads: the follower's view catches up within its poll interval
      const seen = yield* rest(b.base, "GET", `/v1/jobs/${created.id}`).pipe(
        Effect.filterOrFail((reply) => reply.status === 200),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("3 seconds")))
      )
      expect(seen.body).toMatchObject({ id: created.id, state: "queued" })
      expect((yield* wsB.Stats()).counts.queued).toBe(1)
      expect((yield* httpB.List({})).jobs.map((j) => j.id)).toEqual([created.id])
      expect(yield* httpB.Leader()).toMatchObject({
        self: "http://b.test",
        role: "follower",
        leaderUrl: "http://a.test"
      })
      const ready = yield* rest(b.base, "GET", "/readyz")
      expect(ready.status).toBe(200)
      expect(ready.body).toMatchObject({ ready: true, role: "follower", leaderUrl: "http://a.test" })
      expect((yield* rest(b.base, "GET", "/metrics")).body).toContain("osqueue_leader 0")

      // the leader stops (clean handoff): the follower leads and serves writes, and says so on watch
      const watching = yield* wsB.Watch({}).pipe(
        Stream.filter((e) => e._tag === "Leader"),
        Stream.take(2),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.sleep("100 millis")
      yield* Scope.close(a.scope, Exit.void)
      yield* awaitLeader(b)
      const leaders = Chunk.toReadonlyArray(yield* Fiber.join(watching).pipe(Effect.timeout("5 seconds")))
      expect(leaders.map((e) => e._tag === "Leader" ? e.leader.role : "")).toEqual(["follower", "leader"])
      const job = yield* httpB.Enqueue({ type: "t" })
      expect(job.state).toBe("queued")
      expect((yield* httpB.Stats()).counts.queued).toBe(2)
      expect((yield* rest(b.base, "GET", "/v1/leader")).body).toMatchObject({
        role: "leader",
        leaderUrl: "http://b.test",
        epoch: 2
      })
    }))

  it.scopedLive("a leader whose writes hang is not ready, steps down within the TTL, and leads again once it can", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const broker = yield* startBroker({ store })
      yield* awaitLeader(broker)
      const ready = rest(broker.base, "GET", "/readyz")
      expect((yield* ready).status).toBe(200)
      // every store call now takes 2.5 s: the next commit is in flight for more than the TTL (1 s)
      yield* control.set({ latencyMs: 2_500 })
      yield* Effect.fork(rest(broker.base, "POST", "/v1/jobs", { type: "t" }))
      yield* Effect.sleep("800 millis")
      const stalled = yield* ready
      expect(stalled.status).toBe(503)
      expect(stalled.body).toMatchObject({ ready: false, role: "leader" })
      yield* Effect.sleep("600 millis")
      const stepped = yield* ready
      expect(stepped.body).toMatchObject({ ready: false, role: "follower", leaderUrl: null })
      expect((yield* rest(broker.base, "POST", "/v1/jobs", { type: "t" })).status).toBe(421)
      yield* control.set({})
      // nobody else took the queue: after the write in flight ends and a TTL passes, it leads again
      yield* ready.pipe(
        Effect.filterOrFail((reply) => reply.status === 200),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("8 seconds")))
      )
      expect((yield* broker.election.role)._tag).toBe("Leader")
    }))

  it.scopedLive("stats answer from the last durable state while a write is held in flight", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make
      const { control, store } = yield* FaultyStore.wrap(memory, {})
      const broker = yield* startBroker({ store })
      yield* awaitLeader(broker)
      // every store call now takes 3 s: the enqueue's write (or a renewal) is in flight meanwhile
      yield* control.set({ latencyMs: 3_000 })
      const held = yield* Effect.fork(rest(broker.base, "POST", "/v1/jobs", { type: "t" }))
      yield* Effect.sleep("500 millis")
      const asked = Date.now()
      const stats = yield* rest(broker.base, "GET", "/v1/stats")
      // answered before the write settled (it used to wait for it), and without the job it carries
      expect(Date.now() - asked).toBeLessThan(2_000)
      expect(Option.isNone(yield* held.poll)).toBe(true)
      expect(stats.status).toBe(200)
      expect(stats.body).toMatchObject({ counts: { queued: 0 } })
      yield* control.set({})
    }))
})
