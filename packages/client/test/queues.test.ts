/**
 * The client's `queue` option (docs/architecture.md, "Named queues"): each transport sends its
 * requests to the queue chosen, `forQueue` gives another queue's client, and a queue the brokers
 * do not serve is `UnknownQueue` at once (not retried).
 */
import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { OsqueueClient } from "@osqueue/client"
import { OsqueueClient as PromiseClient } from "@osqueue/client/promise"
import { MemoryStore } from "@osqueue/storage"
import { Context, Effect, Layer } from "effect"

const transports = {
  http: (url: string, queue?: string) => OsqueueClient.layerHttp({ urls: [url], queue }),
  ws: (url: string, queue?: string) => OsqueueClient.layerWebSocket({ urls: [url], queue }),
  rest: (url: string, queue?: string) => OsqueueClient.layerRest({ urls: [url], queue })
} as const

const clientOf = (layer: Layer.Layer<OsqueueClient>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, OsqueueClient))

describe("named queues in the client", () => {
  for (const kind of ["http", "ws", "rest"] as const) {
    it.scopedLive(`the queue option sends every operation to that queue (${kind})`, () =>
      Effect.gen(function*() {
        const url = yield* startBroker({ store: yield* MemoryStore.make, queues: ["default", "emails"] })
        const emails = yield* clientOf(transports[kind](url, "emails"))
        const plain = yield* clientOf(transports[kind](url))
        expect(emails.queue).toBe("emails")
        expect(plain.queue).toBe("default")

        const job = yield* emails.enqueue("send", { to: "a" })
        expect((yield* emails.stats).counts.queued).toBe(1)
        expect((yield* plain.stats).counts.queued).toBe(0)
        expect(yield* plain.claim({ workerId: "w" })).toEqual([])
        yield* emails.pause()
        expect((yield* plain.stats).paused.all).toBe(false)
        yield* emails.resume()
        const [claimed] = yield* emails.claim({ workerId: "w" })
        expect(claimed?.job.id).toBe(job.id)
        expect((yield* emails.complete(claimed!.token, { sent: true })).state).toBe("completed")

        // another queue's client from this one
        const again = yield* plain.forQueue("emails")
        expect((yield* again.get(job.id)).state).toBe("completed")
        expect(yield* plain.forQueue("Not A Name").pipe(Effect.flip)).toMatchObject({ _tag: "InvalidRequest" })
        // a queue no broker serves: UnknownQueue naming the served ones, at once
        const nope = yield* plain.forQueue("nope")
        const started = Date.now()
        expect(yield* nope.stats.pipe(Effect.flip)).toMatchObject({
          _tag: "UnknownQueue",
          queue: "nope",
          served: ["default", "emails"]
        })
        expect(Date.now() - started).toBeLessThan(2_000)
      }))
  }

  it.scopedLive("the Promise facade takes the queue option", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make, queues: ["default", "reports"] })
      const reports = new PromiseClient({ brokerUrl: url, queue: "reports" })
      const plain = new PromiseClient({ brokerUrl: url })
      yield* Effect.promise(async () => {
        try {
          const job = await reports.submitJob("render", {})
          expect((await reports.getStats()).counts.queued).toBe(1)
          expect((await plain.getStats()).counts.queued).toBe(0)
          expect((await reports.claimJob("w"))?.job.id).toBe(job.id)
        } finally {
          await reports.close()
          await plain.close()
        }
      })
    }))
})
