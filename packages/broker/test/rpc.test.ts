/**
 * Every RPC operation over HTTP (ndjson) and over WebSocket (JSON), with a typed RpcClient:
 * one suite, run once per transport. Also the watch stream and long-poll claims.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, type Scope, Stream } from "effect"
import { awaitLeader, rpcHttp, rpcWs, startBroker, type Started, wholeJobs } from "./fixtures.js"

type Client = Effect.Effect.Success<ReturnType<typeof rpcHttp>>

const transports: ReadonlyArray<readonly [string, (broker: Started) => Effect.Effect<Client, never, Scope.Scope>]> = [
  ["RPC over HTTP", (broker) => rpcHttp(broker.base)],
  ["RPC over WebSocket", (broker) => rpcWs(broker.base)]
]

for (const [name, connect] of transports) {
  describe(name, () => {
    const setup = Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      return { broker, client: yield* connect(broker) }
    })

    it.scopedLive("every operation", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const job = yield* client.Enqueue({ type: "email", payload: { n: 1 } })
        expect(job.state).toBe("queued")
        const many = wholeJobs(yield* client.EnqueueMany({ jobs: [{ type: "sms" }, { type: "sms", maxAttempts: 1 }] }))
        expect(many.length).toBe(2)
        expect((yield* client.Get({ id: job.id })).type).toBe("email")
        const page = yield* client.List({ type: "sms" })
        expect(page.jobs.map((j) => j.id)).toEqual(many.map((j) => j.id))

        const [held] = yield* client.Claim({ workerId: "w", types: ["email"] })
        expect(held!.job.id).toBe(job.id)
        const beat = yield* client.Heartbeat({ token: held!.token, progress: "half" })
        expect(beat.jobId).toBe(job.id)
        const done = yield* client.Complete({ token: held!.token, result: "ok" })
        expect(done.state).toBe("completed")

        const [a] = yield* client.Claim({ workerId: "w", types: ["sms"] })
        expect((yield* client.Release({ token: a!.token })).state).toBe("queued")
        const claimed = yield* client.Claim({ workerId: "w", types: ["sms"], max: 2 })
        const last = claimed.find((c) => c.job.id === many[1]!.id)!
        expect((yield* client.Fail({ token: last.token, error: "nope" })).state).toBe("dead")
        expect(yield* client.RetryDead({})).toEqual({ count: 1 })
        expect((yield* client.Cancel({ id: many[1]!.id })).state).toBe("cancelled")
        expect((yield* client.Retry({ id: many[1]!.id })).state).toBe("queued")

        expect(yield* client.Pause({ type: "sms" })).toEqual({ all: false, types: ["sms"] })
        expect(yield* client.Resume({})).toMatchObject({ all: false })
        const stats = yield* client.Stats()
        expect(stats.counts.completed).toBe(1)
        const leader = yield* client.Leader()
        expect(leader).toMatchObject({ role: "leader", leaderUrl: "http://broker.test" })
      }))

    it.scopedLive("EnqueueMany answers ids alone when a message prefers a minimal answer, whole jobs otherwise", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const jobs = [{ type: "bulk", payload: { n: 1 } }, { type: "bulk", payload: { n: 2 }, priority: 3 }]
        const ids = yield* client.EnqueueMany({ jobs }, { headers: { prefer: "respond-async, Return=Minimal" } })
        expect(ids.every((id) => typeof id === "string")).toBe(true)
        // Enqueued as any batch: the jobs are there, whole, under those ids.
        const page = yield* client.List({ type: "bulk" })
        expect(page.jobs.map((job) => job.id)).toEqual(ids)
        expect(page.jobs.map((job) => job.payload)).toEqual([{ n: 1 }, { n: 2 }])
        // Another preference, or none, is answered with whole jobs.
        for (const headers of [{}, { prefer: "return=representation" }, { "x-prefer": "return=minimal" }]) {
          const whole = wholeJobs(yield* client.EnqueueMany({ jobs }, { headers }))
          expect(whole.map((job) => job.payload)).toEqual([{ n: 1 }, { n: 2 }])
        }
        // The same idempotency keys again: the existing jobs' ids.
        const keyed = jobs.map((job, i) => ({ ...job, idempotencyKey: `k${i}` }))
        const first = yield* client.EnqueueMany({ jobs: keyed }, { headers: { prefer: "return=minimal" } })
        const again = yield* client.EnqueueMany({ jobs: keyed }, { headers: { prefer: "return=minimal" } })
        expect(again).toEqual(first)
      }))

    it.scopedLive("CompleteMany answers each job's id alone when a message prefers a minimal answer, whole jobs otherwise", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        yield* client.EnqueueMany({ jobs: [1, 2, 3, 4].map((n) => ({ type: "done", payload: { n } })) })
        const claimed = yield* client.Claim({ workerId: "w", types: ["done"], max: 4 })
        const [a, b, c, d] = claimed
        const minimal = yield* client.CompleteMany(
          { items: [{ token: a!.token, result: "ok" }, { token: b!.token }, { token: a!.token }] },
          { headers: { prefer: "return=minimal" } }
        )
        // Each item as it went: the first two completed (their ids), the third's lease is gone.
        expect(minimal.slice(0, 2)).toEqual([
          Either.right(a!.job.id),
          Either.right(b!.job.id)
        ])
        expect(Either.isLeft(minimal[2]!)).toBe(true)
        expect((yield* client.Get({ id: a!.job.id })).state).toBe("completed")
        const whole = yield* client.CompleteMany({ items: [{ token: c!.token }, { token: d!.token, result: 2 }] })
        expect(
          whole.map((outcome) =>
            Either.isRight(outcome) && typeof outcome.right !== "string" ? outcome.right.state : outcome
          )
        ).toEqual(["completed", "completed"])
      }))

    it.scopedLive("watch sees enqueued, claimed and completed events, the leader and stats", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const seen = yield* client.Watch({ statsEveryMs: 100 }).pipe(
          Stream.takeUntil((e) => e._tag === "Job" && e.event.kind === "completed"),
          Stream.runCollect,
          Effect.map(Chunk.toReadonlyArray),
          Effect.fork
        )
        yield* Effect.sleep("200 millis")
        const job = yield* client.Enqueue({ type: "w" })
        const [held] = yield* client.Claim({ workerId: "w" })
        yield* client.Complete({ token: held!.token })
        const events = yield* Fiber.join(seen).pipe(Effect.timeout("5 seconds"))
        const kinds = events.flatMap((e) => e._tag === "Job" && e.event.jobId === job.id ? [e.event.kind] : [])
        expect(kinds).toEqual(["enqueued", "claimed", "completed"])
        expect(events[0]).toMatchObject({ _tag: "Leader", leader: { role: "leader" } })
        expect(events.some((e) => e._tag === "Stats")).toBe(true)
      }))

    it.scopedLive("watch sends a burst of events whole and in commit order, in messages of at most 1,000", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const burst = 2_500
        let enqueued = 0
        const seen = yield* client.Watch({}).pipe(
          Stream.chunks,
          Stream.map(Chunk.toReadonlyArray),
          Stream.tap((events) => Effect.sync(() => enqueued += events.filter((e) => e._tag === "Job").length)),
          Stream.takeUntil(() => enqueued >= burst),
          Stream.runCollect,
          Effect.map(Chunk.toReadonlyArray),
          Effect.fork
        )
        yield* Effect.sleep("200 millis")
        const jobs = wholeJobs(
          yield* client.EnqueueMany({ jobs: Array.from({ length: burst }, () => ({ type: "burst" })) })
        )
        const messages = yield* Fiber.join(seen).pipe(Effect.timeout("10 seconds"))
        expect(Math.max(...messages.map((events) => events.length))).toBeLessThanOrEqual(1_000)
        const ids = messages.flat().flatMap((e) => e._tag === "Job" ? [e.event.jobId] : [])
        expect(ids).toEqual(jobs.map((job) => job.id))
      }))

    it.scopedLive("a long-poll claim returns when a job is enqueued during the wait", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const start = Date.now()
        const waiting = yield* client.Claim({ workerId: "w", waitMs: 5_000 }).pipe(Effect.fork)
        yield* Effect.sleep("300 millis")
        const job = yield* client.Enqueue({ type: "late" })
        const claimed = yield* Fiber.join(waiting)
        expect(claimed.map((c) => c.job.id)).toEqual([job.id])
        expect(Date.now() - start).toBeLessThan(2_000)
      }))

    it.scopedLive("a long-poll claim returns [] after waitMs when nothing comes", () =>
      Effect.gen(function*() {
        const { client } = yield* setup
        const start = Date.now()
        const claimed = yield* client.Claim({ workerId: "w", waitMs: 500 })
        const took = Date.now() - start
        expect(claimed).toEqual([])
        expect(took).toBeGreaterThanOrEqual(450)
        expect(took).toBeLessThan(2_000)
      }))
  })
}

describe("long poll", () => {
  it.scopedLive("waiting claimers do not force commits; one enqueue wakes them into one claim batch", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcHttp(broker.base)
      const seqBefore = (yield* client.Stats()).seq
      const waiters = yield* Effect.forkAll(
        Array.from({ length: 20 }, (_, i) => client.Claim({ workerId: `w${i}`, waitMs: 1_500 }))
      )
      yield* Effect.sleep("1 second")
      // only the leader's renewals (every TTL/3 = 333 ms) committed meanwhile, not 20 claims
      const seqWaiting = (yield* client.Stats()).seq
      expect(seqWaiting - seqBefore).toBeLessThanOrEqual(5)
      yield* client.Enqueue({ type: "one" })
      const results = yield* Fiber.join(waiters)
      expect(results.flat().length).toBe(1)
    }))

  it.scopedLive("a delayed job wakes a waiting claimer when it comes due", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcHttp(broker.base)
      const job = yield* client.Enqueue({ type: "later", delayMs: 400 })
      const start = Date.now()
      const claimed = yield* client.Claim({ workerId: "w", waitMs: 3_000 })
      expect(claimed.map((c) => c.job.id)).toEqual([job.id])
      expect(Date.now() - start).toBeLessThan(1_500)
    }))
})
