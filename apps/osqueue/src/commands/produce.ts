/** `osqueue produce`: the demo producer loop (enqueues demo jobs at a steady pace). */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { OsqueueClient } from "@osqueue/client"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { connection, layerClient } from "../Connection.js"
import { demoPayload, demoTypes } from "../Demo.js"
import { withDefault } from "../Help.js"

export interface ProduceSettings {
  readonly intervalMs: number
  /** Stop after this many jobs; forever when absent. */
  readonly count?: number | undefined
  readonly types: ReadonlyArray<string>
}

export const produceLoop = (settings: ProduceSettings) =>
  Effect.gen(function*() {
    const client = yield* OsqueueClient
    let n = 0
    const one = Effect.suspend(() => {
      const type = settings.types[n % settings.types.length]!
      n++
      return client.enqueue(type, demoPayload(type, n), { priority: n % 10 === 0 ? -1 : 0 })
    }).pipe(
      Effect.tap((job) => Effect.logDebug("enqueued").pipe(Effect.annotateLogs({ job: job.id, type: job.type }))),
      Effect.catchAll((error) => Effect.logWarning("enqueue failed", error))
    )
    const pace = Schedule.spaced(settings.intervalMs)
    yield* settings.count === undefined
      ? Effect.repeat(one, pace)
      : Effect.repeat(one, pace.pipe(Schedule.intersect(Schedule.recurs(settings.count - 1))))
    yield* Effect.logInfo(`produced ${n} jobs`)
  })

export const produce = Command.make(
  "produce",
  {
    ...connection,
    interval: Options.integer("interval-ms").pipe(
      Options.withDescription("The pause between two jobs, in milliseconds."),
      withDefault(500)
    ),
    count: Options.integer("count").pipe(
      Options.withDescription("Stop after this many jobs. Default: never stop."),
      Options.optional
    ),
    types: Options.text("types").pipe(
      Options.withDescription("The job types to take turns at, comma-separated."),
      withDefault(demoTypes.join(","))
    )
  },
  (args) =>
    produceLoop({
      intervalMs: args.interval,
      count: Option.getOrUndefined(args.count),
      types: args.types.split(",").map((t) => t.trim()).filter((t) => t.length > 0)
    }).pipe(Effect.provide(layerClient(args)))
).pipe(Command.withDescription("Enqueue demo jobs at a steady pace (Ctrl-C stops)"))
