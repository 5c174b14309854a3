/**
 * A worker pool: four jobs at most in hand, typed handlers, graceful shutdown on Ctrl-C
 * (stop claiming, let running jobs finish for up to 10 s, then release the rest). Start a
 * broker first, then:
 *   pnpm exec tsx --conditions=source packages/worker/examples/worker.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { handler, NonRetryable, Worker } from "@osqueue/worker"
import { Effect, Schema } from "effect"

const SendEmail = JobDefinition.make({
  type: "email",
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String, sendAt: Schema.DateFromString }),
  result: Schema.Struct({ messageId: Schema.String })
})

const worker = Worker.run({
  concurrency: 4,
  shutdownTimeout: "10 seconds",
  handlers: {
    // The payload arrives decoded (sendAt is a Date); a payload that does not decode is
    // failed as non-retryable without running the handler.
    email: handler(SendEmail, (email, ctx) =>
      Effect.gen(function*() {
        if (!email.to.includes("@")) return yield* new NonRetryable({ message: `not an address: ${email.to}` })
        yield* ctx.progress({ stage: "sending" })
        yield* Effect.sleep("200 millis")
        yield* Effect.log(`sent "${email.subject}" to ${email.to} (attempt ${ctx.attempt})`)
        return { messageId: `msg-${ctx.job.id}` }
      }), { timeout: "30 seconds" }),
    // A plain function gets the raw JSON payload; any failure is retried with the job's backoff.
    resize: (payload: unknown) => Effect.log("resizing", payload).pipe(Effect.zipRight(Effect.sleep("100 millis")))
  }
})

worker.pipe(
  Effect.provide(OsqueueClient.layerHttp({ urls: process.env.OSQUEUE_BROKERS ?? "http://localhost:8080" })),
  NodeRuntime.runMain
)
