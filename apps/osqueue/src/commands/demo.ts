/**
 * `osqueue demo` (what `npm start` runs): a broker on the file store, a worker pool with the
 * demo handlers and the demo producer, in one process. Ctrl-C stops all of it cleanly.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { OsqueueClient } from "@osqueue/client"
import { Worker } from "@osqueue/worker"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { demoHandlers } from "../Demo.js"
import { withDefault } from "../Help.js"
import { brokerOptions, layerBroker } from "./broker.js"
import { produceLoop } from "./produce.js"
import { workerOptions } from "./worker.js"

export const demo = Command.make(
  "demo",
  {
    ...brokerOptions,
    ...workerOptions,
    interval: Options.integer("interval-ms").pipe(
      Options.withDescription("The demo producer's pause between two jobs, in milliseconds."),
      withDefault(250)
    )
  },
  (args) => {
    const url = Option.getOrElse(args.url, () => `http://localhost:${args.port}`)
    const client = OsqueueClient.layerHttp({ urls: url })
    const worker = Worker.layer({
      handlers: demoHandlers({ workMs: args.workMs, failRate: args.failRate }),
      concurrency: args.concurrency,
      prefetch: Option.getOrUndefined(args.prefetch)
    }).pipe(Layer.provide(client))
    const producer = Layer.scopedDiscard(
      Effect.forkScoped(produceLoop({ intervalMs: args.interval, types: ["email", "thumbnail", "report"] }))
    ).pipe(Layer.provide(client))
    return Effect.logInfo(
      `osqueue demo: broker at ${url} (dashboard and API), a worker pool and a producer; Ctrl-C stops`
    ).pipe(
      // The broker starts first and stops last, so that at Ctrl-C the worker can still hand its
      // jobs back (complete, or release) before the broker writes its clean handoff.
      Effect.zipRight(Layer.launch(Layer.mergeAll(worker, producer).pipe(Layer.provide(layerBroker(args)))))
    )
  }
).pipe(Command.withDescription("A broker, a demo worker and a demo producer in one process"))
