/**
 * Flows end to end (docs/flows.md): a flow from the client (Effect and Promise), children run by a
 * real worker, the parent's handler reading their ends from `ctx.childResults`, and the awaited
 * result of the root; a dying child under `fail` fails the root's wait naming the child.
 */
import { describe, expect, it } from "@effect/vitest"
import { startBroker } from "@osqueue/broker/testing"
import { OsqueueClient } from "@osqueue/client"
import { OsqueueClient as PromiseClient } from "@osqueue/client/promise"
import { MemoryStore } from "@osqueue/storage"
import type { ChildResult } from "@osqueue/types"
import { type JobContext, NonRetryable, Worker } from "@osqueue/worker"
import { Context, Effect, Layer } from "effect"

const fast = { pollWaitMs: 200, shutdownTimeout: "2 seconds" } as const

/** A part's result, or an inner sum's total. */
const valueOf = (result: unknown): number => (typeof result === "number" ? result : (result as { total: number }).total)

/** Adds its children's results: each part's payload squared, the total in the root. */
const handlers = {
  part: (payload: unknown) =>
    typeof payload === "number" && payload < 0
      ? Effect.fail(new NonRetryable({ message: `negative part ${payload}` }))
      : Effect.succeed((payload as number) ** 2),
  sum: (_: unknown, ctx: JobContext) =>
    Effect.succeed({
      total: Object.values(ctx.childResults).reduce(
        (sum: number, end: ChildResult) => sum + (end.state === "completed" ? valueOf(end.result) : 0),
        0
      ),
      ends: Object.values(ctx.childResults).map((end) => end.state)
    })
}

describe("flows through the client and a worker", () => {
  it.scopedLive("the root's handler reads each child's result; the wait on the root answers its own", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const context = yield* Layer.build(OsqueueClient.layerWebSocket({ urls: [url] }))
      const client = Context.get(context, OsqueueClient)
      yield* Worker.make({ ...fast, handlers }).pipe(Effect.provide(context))
      const jobs = yield* client.enqueueFlow({
        type: "sum",
        children: [{ type: "part", payload: 2 }, { type: "sum", children: [{ type: "part", payload: 3 }] }]
      })
      expect(jobs.map((job) => job.type)).toEqual(["sum", "part", "sum", "part"])
      // The inner sum's result is 9; the root adds 4 and 9.
      expect(yield* client.result(jobs[0]!.id, { waitMs: 20_000 })).toEqual({
        total: 13,
        ends: ["completed", "completed"]
      })

      const ignoring = yield* client.enqueueFlow(
        { type: "sum", children: [{ type: "part", payload: -1 }, { type: "part", payload: 5 }] },
        { onChildFailure: "ignore" }
      )
      expect(yield* client.result(ignoring[0]!.id, { waitMs: 20_000 })).toEqual({
        total: 25,
        ends: ["dead", "completed"]
      })

      const failing = yield* client.enqueueFlow({ type: "sum", children: [{ type: "part", payload: -2 }] })
      const failed = yield* Effect.flip(client.result(failing[0]!.id, { waitMs: 20_000 }))
      expect(failed).toMatchObject({ _tag: "JobFailed", state: "dead" })
      expect(failed.message).toContain(`child ${failing[1]!.id} (part) died: NonRetryable: negative part -2`)

      const refused = yield* Effect.flip(
        client.enqueueFlow({
          type: "sum",
          children: [{ type: "part", idempotencyKey: "k" }, { type: "part", idempotencyKey: "k" }]
        })
      )
      expect(refused).toMatchObject({ _tag: "InvalidRequest", message: expect.stringMatching(/named twice/) })
    }))

  it.scopedLive("the Promise facade enqueues a flow and answers its jobs", () =>
    Effect.gen(function*() {
      const url = yield* startBroker({ store: yield* MemoryStore.make })
      const client = new PromiseClient({ brokerUrl: url, transport: { kind: "http" } })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const jobs = yield* Effect.promise(() =>
        client.enqueueFlow({ type: "sum", children: [{ type: "part", payload: 1 }] }, { onChildFailure: "ignore" })
      )
      expect(jobs.map((job) => [job.type, job.state])).toEqual([["sum", "waiting-children"], ["part", "queued"]])
      expect(jobs[0]!.onChildFailure).toBe("ignore")
    }))
})
