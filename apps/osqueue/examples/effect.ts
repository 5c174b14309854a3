// The README's Effect example, type-checked by `pnpm typecheck`.
import { JobDefinition, OsqueueClient } from "@osqueue/client"
import { Worker } from "@osqueue/worker"
import { Effect, Layer, Schema } from "effect"

const SendEmail = JobDefinition.make({ type: "email", payload: Schema.Struct({ to: Schema.String }) })

const Client = OsqueueClient.layerWebSocket({ urls: ["http://broker-1:8080", "http://broker-2:8080"] })

const produce = Effect.flatMap(OsqueueClient, (client) => client.enqueue(SendEmail, { to: "a@example.com" }))

const Workers = Worker.layer({
  handlers: { email: (payload: { to: string }) => Effect.log(`sending to ${payload.to}`) },
  concurrency: 16
})

Layer.launch(Workers).pipe(Effect.provide(Client), Effect.runFork)
Effect.runPromise(produce.pipe(Effect.provide(Client)))
