/**
 * A producer in Effect: enqueue typed jobs, read them back, watch the queue.
 * Start a broker first (`pnpm osqueue broker`, or packages/broker/examples/broker.ts), then:
 *   pnpm exec tsx --conditions=source packages/client/examples/effect.ts
 * OSQUEUE_BROKERS (comma-separated) and OSQUEUE_TOKEN are read from the environment.
 */
import { NodeRuntime } from "@effect/platform-node"
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { Config, Effect, Layer, Option, Schema, Stream } from "effect"

// Shared by producers and workers: the payload is validated and encoded before it is sent.
export const SendEmail = JobDefinition.make({
  type: "email",
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String, sendAt: Schema.DateFromString }),
  result: Schema.Struct({ messageId: Schema.String }),
  defaults: { maxAttempts: 5 }
})

const program = Effect.gen(function*() {
  const client = yield* OsqueueClient
  const job = yield* client.enqueue(SendEmail, { to: "ada@example.com", subject: "hi", sendAt: new Date() })
  yield* Effect.log(`enqueued ${job.id} on ${yield* client.currentBroker}`)

  // Typed failures from the broker: catch them by tag.
  const missing = yield* client.get("job-does-not-exist").pipe(
    Effect.catchTag("JobNotFound", (e) => Effect.succeed(e.message))
  )
  yield* Effect.log(missing)

  const stats = yield* client.stats
  yield* Effect.log("queued by type", stats.queuedByType)

  // The next three queue events (RPC transports only).
  yield* client.watch().pipe(
    Stream.take(3),
    Stream.runForEach((event) =>
      Effect.log(event._tag === "Job" ? `${event.event.kind} ${event.event.jobId}` : event._tag)
    ),
    Effect.timeout("3 seconds"),
    Effect.ignore
  )
})

// Pick a transport: layerHttp (RPC over HTTP), layerWebSocket (RPC over WS) or layerRest (/v1).
const ClientLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const urls = yield* Config.string("OSQUEUE_BROKERS").pipe(Config.withDefault("http://localhost:8080"))
    const token = yield* Config.option(Config.string("OSQUEUE_TOKEN"))
    return OsqueueClient.layerWebSocket({ urls, token: Option.getOrUndefined(token) })
  })
)

program.pipe(Effect.provide(ClientLive), NodeRuntime.runMain)
