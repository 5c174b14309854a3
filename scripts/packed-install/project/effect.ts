// Effect style: typed jobs enqueued by a producer, run by a worker pool, until all completed.
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { handler, Worker } from "@osqueue/worker"
import { Effect, Layer, Schedule, Schema } from "effect"

const SendEmail = JobDefinition.make({
  type: "email",
  payload: Schema.Struct({ to: Schema.String }),
  result: Schema.Struct({ messageId: Schema.String })
})

const Client = OsqueueClient.layerWebSocket({ urls: process.env.OSQUEUE_BROKERS ?? "http://localhost:8080" })

const Workers = Worker.layer({
  handlers: {
    email: handler(SendEmail, (email, ctx) => Effect.succeed({ messageId: `${ctx.job.id} to ${email.to}` }))
  },
  concurrency: 4
})

const program = Effect.gen(function*() {
  const client = yield* OsqueueClient
  const jobs = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => client.enqueue(SendEmail, { to: `user${n}@example.com` }))
  const done = yield* Effect.forEach(jobs, (job) =>
    client.get(job.id).pipe(
      Effect.filterOrFail((got) => got.state === "completed", () => new Error(`${job.id} not completed yet`)),
      Effect.retry({ times: 100, schedule: Schedule.spaced("100 millis") })
    ))
  console.log(`effect: ${done.length} jobs completed`)
})

program.pipe(Effect.provide(Layer.merge(Client, Workers.pipe(Layer.provide(Client)))), Effect.runPromise).then(
  () => process.exit(0),
  (error) => {
    console.error("effect:", error)
    process.exit(1)
  }
)
