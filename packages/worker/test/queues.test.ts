/** A worker's `queue` option: it claims from that queue only, whatever queue its client was made for. */
import { expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { OsqueueClient } from "@osqueue/client"
import { MemoryStore } from "@osqueue/storage"
import { Worker } from "@osqueue/worker"
import { Context, Effect, Layer } from "effect"
import { eventually } from "./fixtures/eventually.js"

it.scopedLive("a worker with the queue option works that queue and no other", () =>
  Effect.gen(function*() {
    const url = yield* startBroker({ store: yield* MemoryStore.make, queues: ["default", "emails"] })
    const context = yield* Layer.build(OsqueueClient.layerHttp({ urls: [url] }))
    const client = Context.get(context, OsqueueClient)
    const emails = yield* client.forQueue("emails")
    const elsewhere = yield* client.enqueue("send", { to: "default" })
    const mine = yield* emails.enqueue("send", { to: "emails" })
    yield* Worker.make({
      queue: "emails",
      pollWaitMs: 200,
      shutdownTimeout: "2 seconds",
      handlers: { send: (payload: unknown) => Effect.succeed({ sent: payload }) }
    }).pipe(Effect.provide(context))
    const done = yield* eventually(emails, mine.id, (job) => job.state === "completed")
    expect(done.result).toEqual({ sent: { to: "emails" } })
    // the default queue's job of the same type is left alone
    yield* Effect.sleep("300 millis")
    expect((yield* client.get(elsewhere.id)).state).toBe("queued")
  }))
