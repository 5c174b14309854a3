/**
 * The broker's stats history (`StatsHistory`), served by `watch({ history: true })`: a sample
 * every 5 s with what committed during it (enqueued, completed, failed, dead, commits), how long
 * jobs waited and ran, and the same per type; a watcher that comes later gets the kept samples first.
 */
import { describe, expect, it } from "@effect/vitest"
import type { JobEvent, LeaseToken, StatsSample } from "@osqueue/types"
import { Chunk, Effect, Fiber, Option, Stream } from "effect"
import { awaitLeader, rpcWs, startBroker } from "./fixtures.js"

describe("stats history", () => {
  it.scopedLive("samples what committed, with wait and run times, overall and by type; later watchers get the ring first", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcWs(broker.base)
      yield* client.EnqueueMany({
        jobs: [{ type: "email" }, { type: "email" }, { type: "email", maxAttempts: 1 }, { type: "sms" }]
      })
      const claimed = yield* client.Claim({ workerId: "w1", types: ["email"], max: 3 })
      expect(claimed.length).toBe(3)
      yield* Effect.sleep("120 millis")
      yield* client.Complete({ token: claimed[0]!.token as LeaseToken })
      yield* client.Complete({ token: claimed[1]!.token as LeaseToken })
      yield* client.Fail({ token: claimed[2]!.token as LeaseToken, error: "boom", retryable: false })

      // The first sample after these: within one interval (5 s).
      const first = yield* client.Watch({ history: true }).pipe(
        Stream.flatMap((event) => (event._tag === "History" ? Stream.fromIterable(event.samples) : Stream.empty)),
        Stream.filter((sample) => sample.completed > 0),
        Stream.runHead,
        Effect.timeout("12 seconds")
      )
      const sample: StatsSample = Option.getOrThrow(first)
      expect(sample).toMatchObject({
        enqueued: 4,
        completed: 2,
        failed: 1,
        dead: 1,
        counts: { queued: 1, completed: 2, dead: 1 }
      })
      expect(sample.commits).toBeGreaterThan(0)
      expect(sample.events).toBeGreaterThanOrEqual(4 + 3 + 3)
      expect(sample.intervalMs).toBeGreaterThan(0)
      expect(sample.run.p50).toBeGreaterThanOrEqual(100)
      expect(sample.wait.p50).not.toBeNull()
      expect(sample.byType["email"]).toMatchObject({
        completed: 2,
        failed: 1,
        counts: { completed: 2, dead: 1, queued: 0 }
      })
      expect(sample.byType["sms"]).toMatchObject({ completed: 0, counts: { queued: 1 }, run: { p50: null, p95: null } })

      // A watcher that comes now gets the samples kept, at once.
      const kept = yield* client.Watch({ history: true }).pipe(
        Stream.filter((event) => event._tag === "History"),
        Stream.runHead,
        Effect.timeout("2 seconds")
      )
      const samples = Option.getOrThrow(kept)
      expect(samples._tag === "History" && samples.samples.some((s) => s.at === sample.at)).toBe(true)
      // Without `history`, no samples.
      const plain = yield* client.Watch({}).pipe(
        Stream.filter((event) => event._tag === "History"),
        Stream.runHead,
        Effect.timeoutOption("6 seconds")
      )
      expect(Option.isNone(plain)).toBe(true)
    }))
  it.scopedLive("a claim's event says how long the job waited, a completion's how long it ran", () =>
    Effect.gen(function*() {
      const broker = yield* startBroker()
      yield* awaitLeader(broker)
      const client = yield* rpcWs(broker.base)
      const seen = yield* client.Watch({}).pipe(
        Stream.filterMap((event) => (event._tag === "Job" ? Option.some(event.event) : Option.none<JobEvent>())),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.sleep("200 millis")
      yield* client.EnqueueMany({ jobs: [{ type: "email" }] })
      yield* Effect.sleep("150 millis")
      const [claimed] = yield* client.Claim({ workerId: "w1", types: ["email"], max: 1 })
      yield* Effect.sleep("120 millis")
      yield* client.Complete({ token: claimed!.token as LeaseToken })
      const [enqueued, claim, completion] = Chunk.toReadonlyArray(
        yield* Fiber.join(seen).pipe(Effect.timeout("5 seconds"))
      )
      expect(enqueued).not.toHaveProperty("waitedMs")
      expect(claim).toMatchObject({ kind: "claimed", workerId: "w1" })
      expect(claim!.waitedMs).toBe(claim!.at - enqueued!.at)
      expect(claim!.waitedMs).toBeGreaterThanOrEqual(140)
      expect(claim).not.toHaveProperty("ranMs")
      expect(completion).toMatchObject({ kind: "completed" })
      expect(completion!.ranMs).toBe(completion!.at - claim!.at)
      expect(completion!.ranMs).toBeGreaterThanOrEqual(110)
    }))
})
