import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { MemoryStore } from "@osqueue/storage"
import { handler, NonRetryable, Worker, WorkerMetrics } from "@osqueue/worker"
import { Context, Deferred, Effect, ExecutionStrategy, Exit, Fiber, Layer, Metric, Ref, Schema, Scope } from "effect"
import { eventually } from "./fixtures/eventually.js"
import { leaderAndStandby } from "./fixtures/handover.js"

const transports = {
  http: (url: string) => OsqueueClient.layerHttp({ urls: [url] }),
  ws: (url: string) => OsqueueClient.layerWebSocket({ urls: [url] }),
  rest: (url: string) => OsqueueClient.layerRest({ urls: [url] })
} as const

/** A broker on a fresh store and a client built into the test's scope. */
const setup = (transport: keyof typeof transports = "http") =>
  Effect.gen(function*() {
    const url = yield* startBroker({ store: yield* MemoryStore.make })
    const context = yield* Layer.build(transports[transport](url))
    return { client: Context.get(context, OsqueueClient), context }
  })

const Resize = JobDefinition.make({
  type: "resize",
  payload: Schema.Struct({ width: Schema.Int.pipe(Schema.positive()), at: Schema.DateFromString }),
  result: Schema.Struct({ pixels: Schema.Int })
})

const fast = { pollWaitMs: 200, shutdownTimeout: "2 seconds" } as const

for (const transport of ["http", "ws", "rest"] as const) {
  it.scopedLive(`processes typed and untyped jobs (${transport})`, () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup(transport)
      const seen = yield* Ref.make<ReadonlyArray<unknown>>([])
      yield* Worker.make({
        ...fast,
        handlers: {
          resize: handler(Resize, (payload) =>
            Effect.gen(function*() {
              yield* Ref.update(seen, (s) => [...s, payload.at instanceof Date])
              return { pixels: payload.width * 2 }
            })),
          echo: (payload: unknown) => Effect.succeed({ echoed: payload })
        }
      }).pipe(Effect.provide(context))
      const a = yield* client.enqueue(Resize, { width: 21, at: new Date(5) })
      const b = yield* client.enqueue("echo", "hi")
      const doneA = yield* eventually(client, a.id, (j) => j.state === "completed")
      const doneB = yield* eventually(client, b.id, (j) => j.state === "completed")
      expect(doneA.result).toEqual({ pixels: 42 })
      expect(doneB.result).toEqual({ echoed: "hi" })
      expect(yield* Ref.get(seen)).toEqual([true])
    }))
}

describe("Worker", () => {
  it.scopedLive("never runs more than `concurrency` handlers at once", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const current = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const worker = yield* Worker.make({
        ...fast,
        concurrency: 4,
        handlers: {
          load: () =>
            Effect.gen(function*() {
              const n = yield* Ref.updateAndGet(current, (x) => x + 1)
              yield* Ref.update(peak, (p) => Math.max(p, n))
              yield* Effect.sleep(`${10 + Math.floor(Math.random() * 40)} millis`)
              yield* Ref.update(current, (x) => x - 1)
            })
        }
      }).pipe(Effect.provide(context))
      const completedBefore = (yield* Metric.value(WorkerMetrics.processed("completed"))).count
      const jobs = yield* client.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ type: "load", payload: i })))
      for (const job of jobs) yield* eventually(client, job.id, (j) => j.state === "completed", 15_000)
      expect(yield* Ref.get(peak)).toBe(4)
      yield* Effect.sleep("50 millis") // the last outcome is counted right after its ack
      expect((yield* Metric.value(WorkerMetrics.processed("completed"))).count - completedBefore).toBe(40)
      const stats = yield* client.stats
      expect(stats.counts.running).toBe(0)
      expect(yield* worker.inHand).toBe(0)
    }))

  it.scopedLive("prefetch leases jobs ahead of free slots, runs them in claim order, and gives them back at shutdown", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const workerScope = yield* Effect.flatMap(Effect.scope, (s) => Scope.fork(s, ExecutionStrategy.sequential))
      const gate = yield* Deferred.make<void>()
      const order = yield* Ref.make<ReadonlyArray<number>>([])
      const worker = yield* Worker.make({
        pollWaitMs: 200,
        concurrency: 2,
        prefetch: 3,
        shutdownTimeout: "2 seconds",
        handlers: {
          held: (n: unknown) => Effect.zipRight(Ref.update(order, (o) => [...o, n as number]), Deferred.await(gate))
        }
      }).pipe(Effect.provide(context), Scope.extend(workerScope))
      const jobs = yield* client.enqueueMany(Array.from({ length: 8 }, (_, i) => ({ type: "held", payload: i })))
      // Two running and three in line: five leases, never a third handler.
      for (const job of jobs.slice(0, 5)) yield* eventually(client, job.id, (j) => j.state === "running")
      yield* Effect.sleep("300 millis")
      expect(yield* worker.inHand).toBe(5)
      expect(yield* Ref.get(order)).toEqual([0, 1])
      for (const job of jobs.slice(5)) expect((yield* client.get(job.id)).state).toBe("queued")

      // Shutdown: the three in line go back at once, untouched; the two running finish.
      const closing = yield* Effect.fork(Scope.close(workerScope, Exit.void))
      for (const job of jobs.slice(2, 5)) {
        const back = yield* eventually(client, job.id, (j) => j.state === "queued")
        expect(back.attempts).toBe(0)
      }
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(closing)
      for (const job of jobs.slice(0, 2)) expect((yield* client.get(job.id)).state).toBe("completed")
      expect(yield* Ref.get(order)).toEqual([0, 1])
    }))

  it.scopedLive("without prefetch, a pool leases only for free slots", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const gate = yield* Deferred.make<void>()
      const order = yield* Ref.make<ReadonlyArray<number>>([])
      const worker = yield* Worker.make({
        ...fast,
        concurrency: 2,
        prefetch: 0,
        handlers: {
          held: (n: unknown) => Effect.zipRight(Ref.update(order, (o) => [...o, n as number]), Deferred.await(gate))
        }
      }).pipe(Effect.provide(context))
      const jobs = yield* client.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ type: "held", payload: i })))
      for (const job of jobs.slice(0, 2)) yield* eventually(client, job.id, (j) => j.state === "running")
      yield* Effect.sleep("300 millis")
      expect(yield* worker.inHand).toBe(2)
      expect((yield* client.stats).counts.running).toBe(2)
      yield* Deferred.succeed(gate, undefined)
      for (const job of jobs) yield* eventually(client, job.id, (j) => j.state === "completed")
      // FIFO within a priority: later claims take later jobs.
      expect(yield* Ref.get(order)).toEqual([0, 1, 2, 3, 4, 5])
    }))

  it.effect("refuses a negative or fractional prefetch", () =>
    Effect.gen(function*() {
      for (const prefetch of [-1, 1.5]) {
        const exit = yield* Effect.exit(Effect.scoped(
          Worker.make({ handlers: { x: () => Effect.void }, prefetch }).pipe(
            Effect.provideService(OsqueueClient, {} as OsqueueClient["Type"])
          )
        ))
        expect(Exit.isFailure(exit) && String(exit.cause)).toContain("prefetch must be an integer of 0 or more")
      }
    }))

  it.scopedLive("a cancelled job's handler is interrupted at the next heartbeat", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const startedJob = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      yield* Worker.make({
        ...fast,
        leaseMs: 600,
        handlers: {
          slow: () =>
            Deferred.succeed(startedJob, undefined).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
            )
        }
      }).pipe(Effect.provide(context))
      const job = yield* client.enqueue("slow")
      yield* Deferred.await(startedJob)
      yield* client.cancel(job.id)
      yield* Deferred.await(interrupted).pipe(Effect.timeout("3 seconds"))
      expect((yield* client.get(job.id)).state).toBe("cancelled")
    }))

  it.scopedLive("a payload that does not decode is failed as non-retryable, never run", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const ran = yield* Ref.make(false)
      yield* Worker.make({
        ...fast,
        handlers: { resize: handler(Resize, () => Effect.as(Ref.set(ran, true), { pixels: 1 })) }
      }).pipe(Effect.provide(context))
      const job = yield* client.enqueue("resize", { width: -1, at: "not a date" }, { maxAttempts: 5 })
      const dead = yield* eventually(client, job.id, (j) => j.state === "dead")
      expect(dead.lastError).toContain("payload does not match the resize schema")
      expect(dead.attempts).toBe(1)
      expect(yield* Ref.get(ran)).toBe(false)
    }))

  it.scopedLive("a result that cannot travel as JSON fails the job for good, saying why", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup("ws")
      yield* Worker.make({ ...fast, handlers: { count: () => Effect.succeed({ total: 1n }) } }).pipe(
        Effect.provide(context)
      )
      const job = yield* client.enqueue("count", null, { maxAttempts: 5 })
      const dead = yield* eventually(client, job.id, (j) => j.state === "dead")
      expect(dead.attempts).toBe(1)
      expect(dead.lastError).toContain("the handler's result was refused: the result cannot be sent as JSON")
      expect(dead.lastError).toContain("BigInt")
    }))

  it.scopedLive("a failing handler is retried, then dead; NonRetryable goes dead at once", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const runs = yield* Ref.make(0)
      yield* Worker.make({
        ...fast,
        handlers: {
          flaky: () => Effect.zipRight(Ref.update(runs, (n) => n + 1), Effect.fail(new Error("boom"))),
          fatal: () => Effect.fail(new NonRetryable({ message: "bad input" }))
        }
      }).pipe(Effect.provide(context))
      const backoff = { _tag: "fixed", delayMs: 0 } as const
      const flaky = yield* client.enqueue("flaky", null, { maxAttempts: 3, backoff })
      const fatal = yield* client.enqueue("fatal", null, { maxAttempts: 3, backoff })
      const deadFlaky = yield* eventually(client, flaky.id, (j) => j.state === "dead")
      expect(deadFlaky.attempts).toBe(3)
      expect(deadFlaky.lastError).toBe("Error: boom")
      expect(yield* Ref.get(runs)).toBe(3)
      const deadFatal = yield* eventually(client, fatal.id, (j) => j.state === "dead")
      expect(deadFatal.attempts).toBe(1)
      expect(deadFatal.lastError).toBe("NonRetryable: bad input")
    }))

  it.scopedLive("a handler over its timeout fails the job", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      yield* Worker.make({
        ...fast,
        handlers: { stuck: handler(() => Effect.never, { timeout: "200 millis" }) }
      }).pipe(Effect.provide(context))
      const job = yield* client.enqueue("stuck", null, { maxAttempts: 1 })
      const dead = yield* eventually(client, job.id, (j) => j.state === "dead")
      expect(dead.lastError).toContain("did not finish within")
    }))

  it.scopedLive("progress is reported through heartbeats", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const gate = yield* Deferred.make<void>()
      yield* Worker.make({
        ...fast,
        handlers: {
          long: (_payload: unknown, ctx) => Effect.zipRight(ctx.progress({ step: 1, of: 2 }), Deferred.await(gate))
        }
      }).pipe(Effect.provide(context))
      const job = yield* client.enqueue("long")
      const running = yield* eventually(client, job.id, (j) => j.progress !== undefined)
      expect(running.progress).toEqual({ step: 1, of: 2 })
      expect(running.state).toBe("running")
      yield* Deferred.succeed(gate, undefined)
      yield* eventually(client, job.id, (j) => j.state === "completed")
    }))

  it.scopedLive("shutdown drains short jobs and releases the ones left after the timeout", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const workerScope = yield* Effect.flatMap(Effect.scope, (s) => Scope.fork(s, ExecutionStrategy.sequential))
      const interrupted = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      yield* Worker.make({
        pollWaitMs: 200,
        concurrency: 2,
        shutdownTimeout: "500 millis",
        handlers: {
          short: () => Effect.zipRight(Ref.update(started, (n) => n + 1), Effect.sleep("200 millis")),
          long: () =>
            Ref.update(started, (n) => n + 1).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
            )
        }
      }).pipe(Effect.provide(context), Scope.extend(workerScope))
      const short = yield* client.enqueue("short")
      const long = yield* client.enqueue("long")
      yield* eventually(client, long.id, (j) => j.state === "running")
      yield* eventually(client, short.id, (j) => j.state === "running" || j.state === "completed")
      const before = Date.now()
      yield* Scope.close(workerScope, Exit.void)
      const took = Date.now() - before
      expect(yield* Deferred.isDone(interrupted)).toBe(true)
      expect((yield* client.get(short.id)).state).toBe("completed")
      const released = yield* client.get(long.id)
      expect(released.state).toBe("queued")
      expect(released.attempts).toBe(0)
      expect(took).toBeGreaterThanOrEqual(400)
      expect(took).toBeLessThan(3_000)
    }))

  it.scopedLive("keeps processing across a leader handover (client given both brokers)", () =>
    Effect.gen(function*() {
      const { client, context, leaderScope, second } = yield* leaderAndStandby
      yield* Worker.make({
        ...fast,
        concurrency: 3,
        leaseMs: 2_000,
        handlers: { step: () => Effect.sleep("80 millis") }
      }).pipe(Effect.provide(context))
      const before = yield* client.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ type: "step", payload: i })))
      yield* Effect.sleep("150 millis")
      yield* Scope.close(leaderScope, Exit.void)
      const after = yield* client.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ type: "step", payload: 10 + i })))
      for (const job of [...before, ...after]) {
        yield* eventually(client, job.id, (j) => j.state === "completed", 15_000)
      }
      expect(yield* client.currentBroker).toBe(second)
    }))

  it.scopedLive("interrupting Worker.run drains running jobs, then releases what is left", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const running = yield* Deferred.make<void>()
      const drainable = yield* Worker.run({
        pollWaitMs: 5_000,
        shutdownTimeout: "3 seconds",
        handlers: { brief: () => Effect.zipRight(Deferred.succeed(running, undefined), Effect.sleep("300 millis")) }
      }).pipe(Effect.provide(context), Effect.fork)
      const brief = yield* client.enqueue("brief")
      yield* Deferred.await(running)
      yield* Fiber.interrupt(drainable)
      expect((yield* client.get(brief.id)).state).toBe("completed")

      const started = yield* Deferred.make<void>()
      const stuck = yield* Worker.run({
        pollWaitMs: 5_000,
        shutdownTimeout: "100 millis",
        handlers: { hold: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never) }
      }).pipe(Effect.provide(context), Effect.fork)
      const held = yield* client.enqueue("hold")
      yield* Deferred.await(started)
      yield* Fiber.interrupt(stuck)
      expect((yield* client.get(held.id)).state).toBe("queued")
    }))

  it.scopedLive("an idle worker stops without waiting for its long poll, or for a broker that is gone", () =>
    Effect.gen(function*() {
      const { context } = yield* setup()
      const idle = yield* Worker.run({ pollWaitMs: 10_000, handlers: { none: () => Effect.void } }).pipe(
        Effect.provide(context),
        Effect.fork
      )
      yield* Effect.sleep("300 millis")
      const t0 = Date.now()
      yield* Fiber.interrupt(idle)
      expect(Date.now() - t0).toBeLessThan(1_000)

      const orphan = yield* Layer.build(OsqueueClient.layerHttp({ urls: "http://127.0.0.1:1" }))
      const lonely = yield* Worker.run({ handlers: { none: () => Effect.void } }).pipe(
        Effect.provide(orphan),
        Effect.fork
      )
      yield* Effect.sleep("300 millis")
      const t1 = Date.now()
      yield* Fiber.interrupt(lonely)
      expect(Date.now() - t1).toBeLessThan(1_000)
    }))

  it.scopedLive("Worker.layer runs for the layer's life", () =>
    Effect.gen(function*() {
      const { client, context } = yield* setup()
      const layered = yield* client.enqueue("quick")
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* Layer.build(Worker.layer({ ...fast, handlers: { quick: () => Effect.succeed("ok") } }))
          yield* eventually(client, layered.id, (j) => j.state === "completed")
        })
      ).pipe(Effect.provide(context))
    }))

  it.scopedLive("a worker whose claims are refused (wrong token) stops with the error", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make, token: "right" })
      const context = yield* Layer.build(OsqueueClient.layerHttp({ urls: url, token: "wrong" }))
      const error = yield* Worker.run({ handlers: { x: () => Effect.void } }).pipe(
        Effect.provide(context),
        Effect.flip,
        Effect.timeout("5 seconds")
      )
      expect(error._tag).toBe("Unauthorized")
    }))
})
