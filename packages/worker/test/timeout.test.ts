/**
 * A job's own handler time limit (`timeoutMs` at enqueue): a real broker, a real worker.
 */
import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { MemoryStore } from "@osqueue/storage"
import { maxTimeoutMs } from "@osqueue/types"
import { handler, Worker } from "@osqueue/worker"
import { Context, Effect, Exit, Layer, Ref, Schedule, Schema, Scope } from "effect"
import { eventually } from "./fixtures/eventually.js"
import { leaderAndStandby } from "./fixtures/handover.js"

const fast = { pollWaitMs: 200, shutdownTimeout: "2 seconds" } as const

const Work = JobDefinition.make({ type: "work", payload: Schema.Struct({ ms: Schema.Int }) })

const retryAtOnce = { _tag: "fixed", delayMs: 0 } as const

describe("a job's timeoutMs", () => {
  it.scopedLive("wins over the type's timeout both ways; past it the handler is interrupted and the attempt fails with JobTimeout, retried", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const context = yield* Layer.build(OsqueueClient.layerHttp({ urls: [url] }))
      const client = Context.get(context, OsqueueClient)
      const interrupted = yield* Ref.make(0)
      yield* Worker.make({
        ...fast,
        handlers: {
          // The type allows 300 ms; each job says how long it takes.
          work: handler(
            Work,
            ({ ms }) => Effect.sleep(ms).pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))),
            {
              timeout: "300 millis"
            }
          )
        }
      }).pipe(Effect.provide(context))

      const short = yield* client.enqueue(Work, { ms: 60_000 }, {
        timeoutMs: 150,
        maxAttempts: 2,
        backoff: retryAtOnce
      })
      const long = yield* client.enqueue(Work, { ms: 600 }, { timeoutMs: 5_000 })
      const plain = yield* client.enqueue(Work, { ms: 60_000 }, { maxAttempts: 1 })
      expect(short.timeoutMs).toBe(150)

      const dead = yield* eventually(client, short.id, (j) => j.state === "dead")
      expect(dead.attempts).toBe(2)
      expect(dead.lastError).toBe("JobTimeout: the work handler did not finish within 150ms")
      expect(dead.history.map((a) => a.outcome)).toEqual(["failed", "failed"])
      // Under its own 5 s, a job longer than the type's 300 ms completes.
      expect((yield* eventually(client, long.id, (j) => j.state === "completed")).attempts).toBe(1)
      // Without one, the type's limit applies.
      expect((yield* eventually(client, plain.id, (j) => j.state === "dead")).lastError).toContain("within 300ms")
      expect(yield* Ref.get(interrupted)).toBe(3)
    }))

  it.scopedLive("is stored with the job: a broker that takes over applies it", () =>
    Effect.gen(function*() {
      const { client, context, leaderScope, second } = yield* leaderAndStandby
      const job = yield* client.enqueue("stuck", null, { timeoutMs: 200, maxAttempts: 1 })
      yield* Scope.close(leaderScope, Exit.void)
      // The second broker serves reads from its own view: until its next poll it may not have the job yet.
      const read = yield* client.get(job.id).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }))
      expect(read.timeoutMs).toBe(200)
      expect(yield* client.currentBroker).toBe(second)
      yield* Worker.make({ ...fast, handlers: { stuck: () => Effect.never } }).pipe(Effect.provide(context))
      const dead = yield* eventually(client, job.id, (j) => j.state === "dead")
      expect(dead.lastError).toContain("JobTimeout")
    }))

  it.scopedLive("out of bounds is refused naming timeoutMs (InvalidRequest from the client, 400 from REST), and nothing is enqueued", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const client = Context.get(yield* Layer.build(OsqueueClient.layerHttp({ urls: [url] })), OsqueueClient)
      for (const timeoutMs of [0, -1, 1.5, maxTimeoutMs + 1]) {
        const refused = yield* Effect.flip(client.enqueue("t", null, { timeoutMs }))
        expect(refused._tag).toBe("InvalidRequest")
        expect(refused.message).toContain("timeoutMs")
        const response = yield* Effect.promise(() =>
          fetch(`${url}/v1/jobs`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ type: "t", timeoutMs })
          })
        )
        expect(response.status).toBe(400)
        // REST answers a body its schema refuses as every such body: 400 HttpApiDecodeError, with the issue.
        const body = yield* Effect.promise(() => response.json() as Promise<{ _tag: string }>)
        expect(body._tag).toBe("HttpApiDecodeError")
        expect(JSON.stringify(body)).toContain("timeoutMs")
      }
      expect((yield* client.stats).counts.queued).toBe(0)
    }))
})
